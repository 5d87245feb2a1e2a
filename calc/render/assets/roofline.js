"use strict";
// calc report: the roofline plot (calc report --hardware NAME). Draws the points calc computed
// (calc.render.roofline_html, the numbers of `calc time`): x = FLOPs per byte moved, y = attained
// FLOPs per second, both log scales, under the roof min(peak, x × bandwidth). Computes no count.
(function () {
  // the data report.js has already parsed (parsing a long model's data twice would cost time)
  const D = (window.calcReport && window.calcReport.data) || JSON.parse(document.getElementById("calc-data").textContent);
  const R = D.roofline;
  if (D.kind !== "model" || !R) return;
  const SVG = "http://www.w3.org/2000/svg";
  const sv = (tag, attrs) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  };
  const si = (v, unit) => {
    for (const [f, u] of [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]]) if (v >= f) return +(v / f).toPrecision(3) + " " + u + unit;
    return +v.toPrecision(3) + " " + unit;
  };
  const secs = (t) => {
    for (const [u, s] of [["s", 1], ["ms", 1e-3], ["µs", 1e-6], ["ns", 1e-9]]) if (t >= s) return (t / s).toFixed(3) + " " + u;
    return t ? (t / 1e-9).toPrecision(3) + " ns" : "0";
  };
  const group = (v) => String(v).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const sec = document.getElementById("roofline-section");
  sec.hidden = false;
  const nav = document.getElementById("nav");
  if (nav) { const a = document.createElement("a"); a.href = "#roofline-section"; a.textContent = "Roofline"; nav.append(a); }
  document.getElementById("roofline-caption").textContent =
    `${R.caption}. Batch ${R.batch}; ridge at ${R.ridge.toFixed(1)} FLOPs per byte: left of it a layer is memory-bound. ` +
    "Each point is a layer (a folded run counts once, with all its iterations); hover for its numbers.";
  const notDrawn = R.not_drawn.length ? ` ${R.not_drawn.length} layer(s) with no FLOPs or no bytes are not drawn on the log axes ` +
    `(${(100 * R.not_drawn_share).toFixed(1)}% of the time): ${R.not_drawn.slice(0, 8).join(", ")}${R.not_drawn.length > 8 ? ", …" : ""}.` +
    (R.not_drawn_share > 0 && R.convention !== "exact" ? " A convention that counts element-wise work (--convention exact) places those that do some." : "") : "";
  const legend = document.getElementById("roofline-legend");
  legend.replaceChildren();
  for (const [cls, label] of [["memory", "memory-bound"], ["compute", "compute-bound"]]) {
    const i = document.createElement("i"); i.className = cls; legend.append(i, " " + label + "  ");
  }
  legend.append(`· ${R.points.length} layers drawn`);
  document.getElementById("roofline-note").textContent = `Estimate: ${R.assumptions}.${notDrawn}`;

  const svg = document.getElementById("roofline"), hover = document.getElementById("roofline-hover");
  const P = R.points, peak = R.roof_peak, bw = R.roof_bandwidth;
  const lg = Math.log10;
  let xa = Infinity, xb = -Infinity, ya = Infinity;
  for (const p of P) { xa = Math.min(xa, p.intensity); xb = Math.max(xb, p.intensity); ya = Math.min(ya, p.performance); }
  if (!P.length) { xa = R.ridge / 10; xb = R.ridge * 10; ya = peak / 100; }
  // decades that hold every point, the ridge and the roof's top
  const x0 = Math.floor(lg(Math.min(xa, R.ridge)) - 0.3), x1 = Math.ceil(lg(Math.max(xb, R.ridge)) + 0.3);
  const y0 = Math.floor(lg(Math.min(ya, peak)) - 0.3), y1 = Math.ceil(lg(peak) + 0.2);
  const W = svg.clientWidth || 800, H = svg.clientHeight || 440, L = 64, B = 40, Rm = 20, T = 16;
  const X = (x) => L + (lg(x) - x0) / (x1 - x0) * (W - L - Rm), Y = (y) => H - B - (lg(y) - y0) / (y1 - y0) * (H - B - T);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.append(sv("line", { x1: L, y1: H - B, x2: W - Rm, y2: H - B, class: "axis" }), sv("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  for (let k = x0; k <= x1; k++) {
    const x = X(10 ** k);
    svg.append(sv("line", { x1: x, y1: T, x2: x, y2: H - B, class: "grid" }));
    const t = sv("text", { x, y: H - B + 15, "text-anchor": k === x1 ? "end" : "middle" }); t.textContent = k < 0 ? String(+(10 ** k).toPrecision(1)) : group(10 ** k); svg.append(t);
  }
  for (let k = y0; k <= y1; k++) {
    const y = Y(10 ** k);
    svg.append(sv("line", { x1: L, y1: y, x2: W - Rm, y2: y, class: "grid" }));
    const t = sv("text", { x: 4, y: y + 4 }); t.textContent = si(10 ** k, ""); svg.append(t);
  }
  const xl = sv("text", { x: W - Rm - 250, y: H - 6 }); xl.textContent = "arithmetic intensity (FLOPs per byte, log)"; svg.append(xl);
  const yl = sv("text", { x: L + 6, y: T + 12 }); yl.textContent = "attained FLOPs per second (log)"; svg.append(yl);
  // the roof: bandwidth × intensity up to the ridge, then the peak
  const xs = Math.max(10 ** x0, 10 ** y0 / bw), xe = 10 ** x1;
  const roof = sv("path", { class: "roof", d: `M${X(xs)},${Y(xs * bw)} L${X(R.ridge)},${Y(peak)} L${X(xe)},${Y(peak)}` });
  roof.dataset.ridge = R.ridge; svg.append(roof);
  svg.append(sv("line", { class: "ridge", x1: X(R.ridge), y1: Y(peak), x2: X(R.ridge), y2: H - B }));
  const pk = sv("text", { x: X(R.ridge) + 6, y: Y(peak) - 6 }); pk.textContent = `peak ${si(peak, "FLOPS")} · ${si(bw, "B/s")}`; svg.append(pk);
  P.forEach((p, i) => {
    const c = sv("circle", { cx: X(p.intensity), cy: Y(p.performance), r: 4.5, class: p.bound, "data-index": i,
      "data-name": p.name, "data-flops": p.flops, "data-bytes": p.bytes, "data-time": p.time_s });
    const lines = [`${p.name} (${p.type}${p.count > 1 ? ` ×${p.count}` : ""})`, `FLOPs ${group(p.flops)}`, `bytes ${group(p.bytes)}`,
      `intensity ${p.intensity.toFixed(2)} FLOPs/B`, `time ${secs(p.time_s)} · ${p.bound}-bound`, `attained ${si(p.performance, "FLOPS")}`];
    const tip = sv("title"); tip.textContent = lines.join("\n"); c.append(tip);
    c.addEventListener("mouseenter", () => {
      c.classList.add("on"); hover.hidden = false; hover.textContent = lines.join("\n");
      const box = svg.getBoundingClientRect(), sx = box.width / W, sy = box.height / H;
      hover.style.left = Math.min(X(p.intensity) * sx + 12, box.width - 220) + "px"; hover.style.top = (Y(p.performance) * sy + 12) + "px";
    });
    c.addEventListener("mouseleave", () => { c.classList.remove("on"); hover.hidden = true; });
    svg.append(c);
  });
  svg.dataset.points = String(P.length);
})();
