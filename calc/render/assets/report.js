"use strict";
// calc report: draws the results embedded in #calc-data. Computes no count: every number shown
// is one calc computed (counts above 2**53 arrive as strings of digits and are printed as given).
(function () {
  const t0 = performance.now();
  const D = JSON.parse(document.getElementById("calc-data").textContent);
  const $ = (s) => document.querySelector(s);
  const SVG = "http://www.w3.org/2000/svg";
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  function sv(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }
  // Exact integers with thousands separators, from the number or the digits calc wrote.
  const fmt = (v) => v == null ? "–" : (typeof v === "number" && !Number.isInteger(v)) ? String(v)
    : String(v).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const num = (v) => v == null ? NaN : Number(v);
  function human(v) {
    const n = num(v);
    for (const [f, u] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]]) if (Math.abs(n) >= f) return (n / f).toFixed(2) + " " + u;
    return String(v);
  }
  const mib = (v) => (num(v) / 1048576).toFixed(2) + " MiB";
  function card(box, label, value, detail) {
    box.append(el("div", { class: "card" }, el("div", { class: "label", text: label }),
      el("div", { class: "value", text: value }), detail ? el("div", { class: "detail", text: detail }) : null));
  }
  function optionalCards(id, cards) {   // training memory, latency: only when the data has them
    if (!cards || !cards.length) return;
    const sec = $("#" + id); sec.hidden = false;
    for (const c of cards) card(sec.querySelector(".cards"), c.label, c.value, c.detail);
  }
  function sortable(th, key, state, redraw) {
    th.dataset.col = key;
    th.addEventListener("click", () => {
      state.dir = state.col === key ? (state.dir === 1 ? -1 : state.dir === -1 ? 0 : 1) : 1;
      state.col = state.dir ? key : null;
      th.parentNode.querySelectorAll("th").forEach((h) => h.classList.remove("sorted-asc", "sorted-desc"));
      if (state.dir) th.classList.add(state.dir === 1 ? "sorted-asc" : "sorted-desc");
      redraw();
    });
  }
  function cmp(a, b) {
    const x = num(a), y = num(b);
    if (!Number.isNaN(x) && !Number.isNaN(y)) return x - y;
    if (a == null) return b == null ? 0 : 1; if (b == null) return -1;
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }
  $("#title").textContent = D.title;
  $("#header").textContent = D.header;
  document.title = D.title;
  const nav = $("#nav");
  function section(id, label) { $("#" + id).hidden = false; nav.append(el("a", { href: "#" + id, text: label })); }

  if (D.kind === "model") model(); else sweep();
  window.calcReport = { ready: true, start: t0, renderMs: performance.now() - t0, data: D };
  document.body.dataset.ready = "1";

  // ------------------------------------------------------------------ a model
  function model() {
    const I = D.info, T = I.totals, C = {};
    D.columns.forEach((c, i) => { C[c] = i; });
    const rows = D.rows, n = rows.length;
    if (I.description) $("#description").textContent = I.description;
    const cards = $("#cards");
    card(cards, "parameters", fmt(T.params), `${human(T.params)} · trainable ${fmt(T.trainable_params)} · weights ${fmt(T.weights)}, bias ${fmt(T.bias)}`);
    card(cards, "buffers", fmt(T.buffers), "not parameters: e.g. batch-norm running statistics");
    card(cards, "MACs", fmt(T.macs), `${human(T.macs)} · convention ${I.convention}`);
    card(cards, "FLOPs", fmt(T.flops), human(T.flops));
    card(cards, "parameter memory", fmt(T.param_bytes) + " B", `${mib(T.param_bytes)}, ${I.dtype}`);
    card(cards, "activation memory", fmt(T.activation_bytes) + " B", `${mib(T.activation_bytes)} per batch of ${I.batch}; ${fmt(T.activation_bytes_per_sample)} B per sample; nothing freed or done in place`);
    card(cards, "output", I.output_shape.join("×"), `input ${I.input_shape.join("×")}`);
    optionalCards("training-memory", D.training_memory);
    optionalCards("latency", D.latency);
    // the convention switch and the metric of bars and colours
    const convSel = $("#convention"), metricSel = $("#metric");
    for (const name of Object.keys(D.conventions)) convSel.append(el("option", { value: name, text: name }));
    for (const [name, why] of Object.entries(D.failed)) convSel.append(el("option", { value: name, text: `${name} (cannot count: ${why})`, disabled: "" }));
    convSel.value = I.convention;
    const METRICS = { macs: "MACs", flops: "FLOPs", params: "parameters", param_bytes: "parameter memory (B)", activation_bytes: "activation memory (B)" };
    for (const [k, v] of Object.entries(METRICS)) metricSel.append(el("option", { value: k, text: v }));
    $("#controls").hidden = false;
    const value = (i, m) => (m === "macs" || m === "flops") ? D.conventions[convSel.value][m][i] : rows[i][C[m]];

    // tree of rows
    const parent = new Array(n).fill(-1), kids = [], roots = [], stack = [];
    for (let i = 0; i < n; i++) {
      const d = rows[i][C.depth];
      while (stack.length && rows[stack[stack.length - 1]][C.depth] >= d) stack.pop();
      parent[i] = stack.length ? stack[stack.length - 1] : -1;
      (parent[i] < 0 ? roots : kids[parent[i]] || (kids[parent[i]] = [])).push(i);
      stack.push(i);
    }
    const hasKids = (i) => !!(kids[i] && kids[i].length);
    const collapsed = new Set();
    if (n > 60) for (let i = 0; i < n; i++) if (hasKids(i)) collapsed.add(i);
    // the table, as the terminal draws it, with FLOPs and memory added
    const COLS = [["name", "name"], ["type", "label"], ["output", "output"], ["params", "params", 1], ["MACs", "macs", 1],
      ["", "macs_h", 1], ["share", "share", 1], ["FLOPs", "flops", 1], ["activations B", "activation_bytes", 1]];
    const sortState = { col: null, dir: 0 };
    const headRow = el("tr");
    for (const [label, key, right] of COLS) {
      const th = el("th", { class: right ? "num" : "", text: label || "MACs (readable)" });
      if (!label) th.classList.add("hide-narrow");
      sortable(th, key, sortState, draw); headRow.append(th);
    }
    $("#layers thead").append(headRow);
    const tbody = $("#layers tbody");
    const trs = new Array(n), cells = new Array(n);
    const key = (i, k) => k === "macs_h" || k === "share" ? num(value(i, "macs")) : k === "name" || k === "label" || k === "output" ? rows[i][C[k]] : value(i, k);
    function buildRow(i) {
      const r = rows[i], tr = el("tr", { "data-i": i, "data-name": r[C.name] });
      if (hasKids(i)) tr.classList.add("ns");
      const nameTd = el("td", { class: "mono" });
      nameTd.style.paddingLeft = (6 + 14 * (r[C.depth] - 1)) + "px";
      if (hasKids(i)) {
        const b = el("button", { class: "tog", type: "button", "aria-label": "fold or unfold" });
        b.addEventListener("click", (ev) => { ev.stopPropagation(); collapsed.has(i) ? collapsed.delete(i) : collapsed.add(i); draw(); });
        nameTd.append(b);
      } else nameTd.append(el("span", { class: "tog" }));
      nameTd.append(r[C.name]);
      tr.append(nameTd, el("td", { text: r[C.label] }), el("td", { class: "mono", text: r[C.output] }));
      const numeric = [];
      for (let k = 3; k < COLS.length; k++) { const td = el("td", { class: "num" }); if (COLS[k][1] === "macs_h") td.classList.add("hide-narrow"); numeric.push(td); tr.append(td); }
      cells[i] = numeric;
      tr.addEventListener("click", () => explain(i));
      return tr;
    }
    function fillNumbers(i) {
      const c = cells[i], macs = value(i, "macs"), tot = num(D.conventions[convSel.value].total_macs);
      c[0].textContent = fmt(rows[i][C.params]); c[1].textContent = fmt(macs); c[2].textContent = num(macs) ? human(macs) : "0";
      c[3].textContent = tot ? (100 * num(macs) / tot).toFixed(2) + "%" : "-";
      c[4].textContent = fmt(value(i, "flops")); c[5].textContent = fmt(rows[i][C.activation_bytes]);
    }
    const foot = el("tr");
    $("#layers tfoot").append(foot);
    function fillFoot() {
      const cv = D.conventions[convSel.value];
      foot.replaceChildren(el("td", { text: "total" }), el("td"), el("td", { class: "mono", text: I.output_shape.join("×") }),
        el("td", { class: "num", text: fmt(T.params) }), el("td", { class: "num", text: fmt(cv.total_macs) }), el("td", { class: "num hide-narrow", text: human(cv.total_macs) }),
        el("td", { class: "num", text: num(cv.total_macs) ? "100.00%" : "-" }), el("td", { class: "num", text: fmt(cv.total_flops) }),
        el("td", { class: "num", text: fmt(T.activation_bytes) }));
    }
    const filterBox = $("#filter"), LIMIT = 200;
    let showAll = false;
    function draw() {
      const q = filterBox.value.trim().toLowerCase();
      let show = null;
      if (q) {
        show = new Uint8Array(n);
        for (let i = 0; i < n; i++) {
          if (rows[i][C.name].toLowerCase().includes(q) || rows[i][C.label].toLowerCase().includes(q))
            for (let j = i; j >= 0 && !show[j]; j = parent[j]) show[j] = 1;
        }
      }
      const order = [];
      const visit = (list) => {
        const l = sortState.col ? list.slice().sort((a, b) => sortState.dir * cmp(key(a, sortState.col), key(b, sortState.col)) || a - b) : list;
        for (const i of l) {
          if (show && !show[i]) continue;
          order.push(i);
          if (hasKids(i) && (show || !collapsed.has(i))) visit(kids[i]);
        }
      };
      visit(roots);
      for (const i of order.slice(0, showAll ? order.length : LIMIT)) {
        if (!trs[i]) { trs[i] = buildRow(i); fillNumbers(i); }
        const b = trs[i].querySelector("button.tog");
        if (b) { const open = show || !collapsed.has(i); b.textContent = open ? "▾" : "▸"; trs[i].dataset.open = open ? "1" : "0"; }
      }
      // A long table is drawn LIMIT rows at a time (a browser lays out thousands of rows slowly);
      // the rest is one click away, and the filter and sorting always cover every row.
      const cut = showAll ? order.length : Math.min(order.length, LIMIT);
      const shown = order.slice(0, cut).map((i) => trs[i]);
      if (cut < order.length) {
        const more = el("button", { type: "button", id: "show-all", text: `show all ${order.length} rows` });
        more.addEventListener("click", (ev) => { ev.stopPropagation(); showAll = true; draw(); });
        shown.push(el("tr", { class: "more" }, el("td", { colspan: String(COLS.length) }, `${order.length - cut} more rows · `, more)));
      }
      tbody.replaceChildren(...shown);
      $("#shown").textContent = `${cut} of ${n} rows shown`;
    }
    filterBox.addEventListener("input", draw);
    $("#expand-all").addEventListener("click", () => { collapsed.clear(); draw(); });
    $("#collapse-all").addEventListener("click", () => { for (let i = 0; i < n; i++) if (hasKids(i)) collapsed.add(i); draw(); });
    let selected = -1;
    function explain(i) {
      if (selected >= 0 && trs[selected]) trs[selected].classList.remove("selected");
      selected = i;
      for (let j = parent[i]; j >= 0; j = parent[j]) collapsed.delete(j);
      if (!trs[i] || !trs[i].isConnected) draw();
      if (!trs[i] || !trs[i].isConnected) { filterBox.value = ""; showAll = true; draw(); }
      trs[i].classList.add("selected");
      const r = rows[i], e = D.explanations[r[C.explanation]], box = $("#explain");
      box.replaceChildren(el("h3", { text: r[C.name] }), el("p", { class: "mono", text: `${e.h} · ${r[C.input]} → ${r[C.output]}` }));
      for (const [title, note, steps] of e.s) {
        box.append(el("div", { text: title + (note && steps.length ? " — " + note : note ? ": " + note : "") }));
        if (steps.length) box.append(el("div", { class: "steps" }, ...steps.map((s) => el("div", { text: s }))));
      }
      graphSelect(i);
    }
    section("layers-section", "layers");

    // bar charts
    function bars(box, items, total) {
      const max = Math.max(1, ...items.map((x) => num(x[1])));
      box.replaceChildren(...items.map(([name, v, title]) => el("div", { class: "bar", title: title || name },
        el("span", { class: "name", text: name }),
        el("span", { class: "track" }, (() => { const f = el("span", { class: "fill" }); f.style.width = (100 * num(v) / max) + "%"; return f; })(),
          el("span", { class: "v", text: `${fmt(v)}${total ? "  " + (100 * num(v) / total).toFixed(1) + "%" : ""}` })))));
    }
    function charts() {
      const m = metricSel.value, label = METRICS[m], conv = convSel.value;
      const leaves = [];
      for (let i = 0; i < n; i++) if (!hasKids(i)) leaves.push(i);
      const total = m === "macs" ? num(D.conventions[conv].total_macs) : m === "flops" ? num(D.conventions[conv].total_flops) : num(T[m]);
      leaves.sort((a, b) => num(value(b, m)) - num(value(a, m)) || a - b);
      const top = leaves.slice(0, 25).filter((i) => num(value(i, m)) > 0);
      bars($("#by-layer"), top.map((i) => [rows[i][C.name], value(i, m), `${rows[i][C.name]} · ${rows[i][C.label]}`]), total);
      $("#by-layer-caption").textContent = `${label} by layer (the ${top.length} largest of ${leaves.length}${m === "macs" || m === "flops" ? ", convention " + conv : ""})`;
      const types = Object.entries(D.types).map(([t, x]) => [t, m === "macs" || m === "flops" ? x[m][conv] : x[m], `${t}: ${x.layers} layers`]);
      types.sort((a, b) => num(b[1]) - num(a[1]));
      bars($("#by-type"), types, total);
      $("#by-type-caption").textContent = `${label} by layer type`;
    }
    section("charts-section", "charts");

    // the graph
    const G = graphView(value, () => metricSel.value, explain, rows, C);
    function graphSelect(i) { G.select(i); }
    section("graph-section", "graph");
    conventions();
    section("conventions-section", "conventions");
    function refresh() { for (let i = 0; i < n; i++) if (trs[i]) fillNumbers(i); fillFoot(); charts(); G.draw(); }
    convSel.addEventListener("change", refresh);
    metricSel.addEventListener("change", () => { charts(); G.draw(); });
    fillFoot(); draw(); charts(); G.draw();
    if (location.hash === "#conventions-section" || D.focus === "conventions") $("#conventions-section").scrollIntoView();
  }

  function conventions() {
    const names = [...Object.keys(D.conventions), ...Object.keys(D.failed)];
    const base = D.conventions.standard ? num(D.conventions.standard.total_macs) : null;
    const tab = $("#conventions");
    tab.append(el("thead", {}, el("tr", {}, ...["convention", "MACs", "", "FLOPs", "MACs − standard"].map((h, k) => el("th", { class: k ? "num" : "", text: h })))));
    const body = el("tbody");
    for (const name of names) {
      const c = D.conventions[name];
      if (!c) { body.append(el("tr", { "data-conv": name }, el("td", { text: name }), el("td", { colspan: "4", text: "cannot count: " + D.failed[name] }))); continue; }
      const d = base == null ? "" : num(c.total_macs) - base;
      body.append(el("tr", { "data-conv": name }, el("td", { text: name }), el("td", { class: "num", text: fmt(c.total_macs) }), el("td", { class: "num", text: human(c.total_macs) }),
        el("td", { class: "num", text: fmt(c.total_flops) }), el("td", { class: "num", text: d === "" ? "" : (d >= 0 ? "+" : "−") + fmt(Math.abs(d)) })));
    }
    tab.append(body);
    const ok = Object.keys(D.conventions), tt = $("#conventions-types");
    tt.append(el("thead", {}, el("tr", {}, el("th", { text: "type" }), el("th", { class: "num", text: "layers" }), ...ok.map((c) => el("th", { class: "num", text: c })))));
    const tb = el("tbody");
    for (const [t, x] of Object.entries(D.types)) tb.append(el("tr", {}, el("td", { text: t }), el("td", { class: "num", text: fmt(x.layers) }), ...ok.map((c) => el("td", { class: "num", text: fmt(x.macs[c]) }))));
    tt.append(tb);
  }

  // ------------------------------------------------------------------ the graph view
  function graphView(value, metric, onPick, rows, C) {
    const svg = $("#graph"), NW = 178, NH = 24, GAP = 14, HG = 16, PAD = 8, HEAD = 18;
    let nextId = 0, leafCount = 0;
    const kidsOf = (p) => [...(p.i || []), ...(p.b ? (p.k === "g" ? [p.b] : p.b) : []), ...(p.j ? [p.j] : [])];
    (function prep(p, depth) {
      p.id = nextId++; p.depth = depth;
      if (p.k === "l") leafCount++;
      for (const q of kidsOf(p)) prep(q, depth + (p.k === "g" || p.k === "r" ? 1 : 0));
    })(D.graph, 0);
    const open = new Set();
    function defaults() {
      open.clear();
      (function walk(p) {
        if ((p.k === "g" || p.k === "r") && (leafCount <= 100 || (p.k === "r" && p.i.length <= 8 && p.depth > 0))) open.add(p.id);
        for (const q of kidsOf(p)) walk(q);
      })(D.graph);
    }
    defaults();
    const isBox = (p) => p.k === "l" || ((p.k === "g" || p.k === "r") && !open.has(p.id));
    function size(p) {
      if (isBox(p)) return (p.w = NW, p.h = NH, p);
      if (p.k === "s") {
        let w = 0, h = 0;
        p.i.forEach((q, k) => { size(q); w = Math.max(w, q.w); h += q.h + (k ? GAP : 0); });
        return (p.w = p.i.length ? w : 24, p.h = h, p);
      }
      if (p.k === "g" || p.k === "r") {
        const inner = p.k === "g" ? [p.b] : p.i;
        let w = 0, h = 0;
        inner.forEach((q, k) => { size(q); w = Math.max(w, q.w); h += q.h + (k ? GAP : 0); });
        if (p.k === "r" && p.m) { w = Math.max(w, NW); h += GAP + NH; }
        return (p.w = Math.max(w, NW) + 2 * PAD, p.h = h + HEAD + 2 * PAD, p);
      }
      // branches
      let w = 0, h = 0;
      p.b.forEach((q, k) => { size(q); w += q.w + (k ? HG : 0); h = Math.max(h, q.h); });
      size(p.j);
      return (p.w = Math.max(w, NW), p.h = GAP + h + GAP + NH, p);
    }
    let edges, anchors, byRow, layer, skips = 0;
    function edge(a, b, cls) {
      const my = (a[1] + b[1]) / 2;
      // a skip leaves the right side of its source and enters the right side of its reader, in a lane of its own
      const lane = Math.max(a[0], b[0]) + NW / 2 + 24 + 12 * (skips++ % 6);
      const d = cls === "skip" ? `M${a[0] + NW / 2},${a[1] - NH / 2} C${lane},${a[1] - NH / 2} ${lane},${b[1] + NH / 2} ${b[0] + NW / 2},${b[1] + NH / 2}`
        : `M${a[0]},${a[1]} C${a[0]},${my} ${b[0]},${my} ${b[0]},${b[1]}`;
      edges.append(sv("path", { d, class: "edge" + (cls ? " " + cls : "") }));
    }
    function colour(v, max) {
      const x = num(v);
      if (!(x > 0) || !(max > 0)) return "var(--zero)";
      // a log scale from the cheapest layer that costs anything to the dearest
      // (a folded box holds several layers: it may exceed the dearest one, and gets its colour)
      const t = max > min ? Math.min(1, Math.max(0, Math.log(x / min)) / Math.log(max / min)) : 1;
      return `hsl(${48 - 40 * t}, 95%, ${90 - 32 * t}%)`;
    }
    function partValue(p, m) {
      if (p.r != null && p.r >= 0) return num(value(p.r, m));
      let s = 0;
      for (const q of kidsOf(p)) s += partValue(q, m);
      if (p.k === "r" && p.m && p.i.length) s += p.m * partValue(p.i[p.i.length - 1], m);
      return s;
    }
    let max = 1, min = 1;
    function box(p, x, y, label, sub) {
      const m = metric(), v = partValue(p, m);
      const g = sv("g", { "data-id": p.id });
      const r = sv("rect", { x, y, width: NW, height: NH, rx: 5, class: "node", fill: colour(v, max) });
      if (p.r != null && p.r >= 0) { r.dataset.row = p.r; byRow[p.r] = r; }
      const t = sv("text", { x: x + 6, y: y + 16, class: num(v) > 0 ? "" : "zero" });
      t.textContent = (label.length > 28 ? label.slice(0, 27) + "…" : label);
      const tip = sv("title");
      tip.textContent = `${p.n || label}${sub ? " · " + sub : ""}\n${m}: ${Number.isFinite(v) ? fmt(p.r >= 0 ? value(p.r, m) : Math.round(v)) : "–"}`;
      g.append(tip, r, t);
      g.addEventListener("click", () => {
        if (p.k === "g" || p.k === "r") { open.add(p.id); draw(); } else if (p.r >= 0) onPick(p.r);
      });
      layer.append(g);
      return [[x + NW / 2, y], [x + NW / 2, y + NH]];
    }
    const short = (name) => name ? name.slice(name.lastIndexOf(".") + 1) : "";
    function place(p, x, y, prev) {     // returns [top, bottom]
      const cx = x + p.w / 2;
      let ports;
      if (p.k === "l") {
        const type = p.r >= 0 ? rows[p.r][C.type] : "";
        ports = box(p, cx - NW / 2, y, `${short(p.n)} · ${type}`, p.r >= 0 ? rows[p.r][C.label] + " → " + rows[p.r][C.output] : "");
        for (const w of p.x || []) if (anchors[w]) edge(anchors[w], ports[0], "skip");
      } else if (isBox(p)) {
        const label = p.k === "g" ? `▸ ${short(p.n)} · ${p.r >= 0 ? rows[p.r][C.label] : ""}` : `▸ repeat ×${p.t}`;
        ports = box(p, cx - NW / 2, y, label, p.k === "r" ? `${p.t} iterations` : "");
        // names inside a folded box are read from the box
        (function names(q) { for (const s of kidsOf(q)) { if (s.a) anchors[s.a] = ports[1]; names(s); } })(p);
      } else if (p.k === "s") {
        let top = null, bottom = prev, yy = y;
        if (!p.i.length) return [[cx, y], [cx, y]];
        for (const q of p.i) {
          const ports2 = place(q, cx - q.w / 2, yy, bottom);
          if (q.f != null) { if (anchors[q.f]) edge(anchors[q.f], ports2[0], "skip"); }
          else if (bottom) edge(bottom, ports2[0]);
          if (top == null) top = ports2[0];
          bottom = ports2[1]; yy += q.h + GAP;
          if (q.a) anchors[q.a] = bottom;
        }
        return [top, bottom];
      } else if (p.k === "g" || p.k === "r") {
        layer.append(sv("rect", { x, y, width: p.w, height: p.h, rx: 8, class: "frame" }));
        const title = sv("text", { x: x + 8, y: y + 13, class: "frame-title" });
        title.textContent = "▾ " + (p.k === "g" ? `${short(p.n)} · ${p.r >= 0 ? rows[p.r][C.label] : ""}` : `repeat ×${p.t}`);
        title.addEventListener("click", () => { open.delete(p.id); draw(); });
        layer.append(title);
        let yy = y + HEAD + PAD, top = null, bottom = null;
        for (const q of (p.k === "g" ? [p.b] : p.i)) {
          const pp = place(q, cx - q.w / 2, yy, bottom);
          if (bottom && q.k !== "s") edge(bottom, pp[0]);
          if (top == null) top = pp[0];
          bottom = pp[1]; yy += q.h + GAP;
        }
        if (p.k === "r" && p.m) {
          const more = box({ k: "m", r: -1, n: "", i: [] }, cx - NW / 2, yy, `… ${fmt(p.m)} more identical iterations`, "");
          edge(bottom, more[0]); bottom = more[1];
        }
        ports = [top || [cx, y], bottom || [cx, y + p.h]];
      } else {   // branches, then their join
        const top = [cx, y];
        let bx = x + (p.w - (p.b.reduce((s, q) => s + q.w, 0) + HG * (p.b.length - 1))) / 2;
        const jy = y + p.h - NH, outs = [];
        for (const q of p.b) {
          if (!q.i.length) { outs.push(null); edges.append(sv("path", { d: `M${top[0]},${top[1]} C${bx + q.w / 2},${top[1] + 10} ${bx + q.w / 2},${jy - 10} ${cx},${jy}`, class: "edge" })); }
          else { const pp = place(q, bx, y + GAP, top); edge(top, pp[0]); outs.push(pp[1]); }
          bx += q.w + HG;
        }
        const jp = place(p.j, cx - NW / 2, jy, null);
        for (const o of outs) if (o) edge(o, jp[0]);
        if (p.j.a) anchors[p.j.a] = jp[1];
        ports = [top, jp[1]];
      }
      return ports;
    }
    function draw() {
      const m = metric();
      max = 0; min = Infinity;
      for (let i = 0; i < rows.length; i++) if (!rows[i + 1] || rows[i + 1][C.depth] <= rows[i][C.depth]) {
        const v = num(value(i, m)) || 0;
        if (v > 0) { max = Math.max(max, v); min = Math.min(min, v); }
      }
      if (!(max > 0)) { max = 1; min = 1; }
      size(D.graph);
      svg.replaceChildren();
      edges = sv("g"); layer = sv("g"); anchors = { input: null }; byRow = {};
      svg.append(edges, layer);
      const start = box({ k: "in", r: -1, n: "input" }, 10 + (D.graph.w - NW) / 2, 10, "input · " + D.info.input_shape.join("×"), "");
      anchors = { input: start[1] };
      const ports = place(D.graph, 10, 10 + NH + GAP, start[1]);
      if (D.graph.i.length && D.graph.i[0].f == null) edge(start[1], ports[0]);
      const W = D.graph.w + 120, H = D.graph.h + NH + GAP + 20;
      svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
      const lg = $("#legend");
      lg.replaceChildren("cost: ", el("i", { style: "background:var(--zero)" }), "0", el("i", { style: `background:${colour(min, max)}` }), human(Math.round(min)), el("i", { style: `background:${colour(Math.sqrt(min * max), max)}` }),
        el("i", { style: `background:${colour(max, max)}` }), `${human(Math.round(max))} (log scale)`);
      if (sel >= 0 && byRow[sel]) byRow[sel].classList.add("sel");
    }
    let sel = -1;
    $("#graph-expand").addEventListener("click", () => { (function walk(p) { if (p.k === "g" || p.k === "r") open.add(p.id); for (const q of kidsOf(p)) walk(q); })(D.graph); draw(); });
    $("#graph-collapse").addEventListener("click", () => { open.clear(); draw(); });
    return {
      draw,
      select(i) {
        if (sel >= 0 && byRow[sel]) byRow[sel].classList.remove("sel");
        sel = i;
        if (byRow[i]) byRow[i].classList.add("sel");
      },
    };
  }

  // ------------------------------------------------------------------ a sweep
  function sweep() {
    const V = D.variants, names = D.variables;
    const ok = V.filter((v) => !v.error);
    if (D.description) $("#description").textContent = D.description;
    const cards = $("#cards");
    card(cards, "variants", fmt(V.length), `${fmt(V.length - ok.length)} invalid`);
    const best = (k) => ok.length ? ok.reduce((a, b) => num(b[k]) < num(a[k]) ? b : a) : null;
    for (const [k, label] of [["params", "fewest parameters"], ["macs", "fewest MACs"]]) {
      const b = best(k);
      if (b) card(cards, label, fmt(b[k]), "variant #" + b.index + " " + describe(b));
    }
    const COLS = ["index", ...names, "input", "batch", "params", "macs", "flops", "param_bytes", "activation_bytes",
      "kv_cache_bytes", "macs_per_token", "flops_per_token", "latency_s", "throughput", "output", "error"];
    const get = (v, c) => names.includes(c) ? v.variables[c] : c === "input" ? (v.input_shape || []).join("×") : c === "output" ? (v.output_shape || []).join("×") : v[c];
    const numeric = COLS.filter((c) => c !== "error" && c !== "input" && c !== "output" && V.some((v) => typeof get(v, c) === "number" || /^\d+$/.test(String(get(v, c)))));
    for (const s of ["#sx", "#sy"]) for (const c of numeric) $(s).append(el("option", { value: c, text: c }));
    // --pareto names two columns as --sort does; the JSON calls two of them differently
    const JSON_NAME = { latency: "latency_s", kv_bytes: "kv_cache_bytes" };
    const [px, py] = D.pareto.map((c) => c.replace(/^[-+]/, "")).map((c) => JSON_NAME[c] || c);
    $("#sx").value = numeric.includes(px) ? px : "macs"; $("#sy").value = numeric.includes(py) ? py : "params";
    $("#sx-dir").value = D.pareto[0].startsWith("-") ? "max" : "min"; $("#sy-dir").value = (D.pareto[1] || "").startsWith("-") ? "max" : "min";
    for (const s of ["#sx", "#sy", "#sx-dir", "#sy-dir", "#slog"]) $(s).addEventListener("change", scatter);
    section("scatter-section", "variants");
    function describe(v) { return Object.entries(v.variables).map(([k, x]) => `${k}=${JSON.stringify(x)}`).join(" ") + (v.input_shape ? " input " + v.input_shape.join("×") : "") + " batch " + v.batch; }
    // the Pareto front of two columns: no other variant at least as good in both and better in one
    function front(points) {
      const idx = points.map((_, i) => i).sort((a, b) => points[a][0] - points[b][0] || points[a][1] - points[b][1]);
      const flags = new Array(points.length).fill(false);
      let bestY = Infinity;
      for (let k = 0; k < idx.length;) {
        const x = points[idx[k]][0], group = [];
        while (k < idx.length && points[idx[k]][0] === x) group.push(idx[k++]);
        const low = points[group[0]][1];
        if (low < bestY) { for (const i of group) if (points[i][1] === low) flags[i] = true; bestY = low; }
      }
      return flags;
    }
    const hover = $("#hover");
    function scatter() {
      const svg = $("#scatter"), xs = $("#sx").value, ys = $("#sy").value, log = $("#slog").checked;
      const sx = $("#sx-dir").value === "max" ? -1 : 1, sy = $("#sy-dir").value === "max" ? -1 : 1;
      const pts = ok.map((v) => [num(get(v, xs)), num(get(v, ys)), v]).filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
      if (!pts.length) {
        svg.replaceChildren(); $("#pareto-count").textContent = "no valid variant has both columns"; svg.dataset.front = ""; return;
      }
      const useLog = (k) => log && pts.every((p) => p[k] > 0);
      const lx = useLog(0), ly = useLog(1);
      const tx = (x) => lx ? Math.log10(x) : x, ty = (y) => ly ? Math.log10(y) : y;
      const W = svg.clientWidth || 800, H = svg.clientHeight || 460, L = 70, B = 40, R = 24, Tp = 26;
      const ext = (f) => { let a = Infinity, b = -Infinity; for (const p of pts) { a = Math.min(a, f(p)); b = Math.max(b, f(p)); } if (a === b) { a -= 1; b += 1; } return [a, b]; };
      const [x0, x1] = ext((p) => tx(p[0])), [y0, y1] = ext((p) => ty(p[1]));
      const X = (x) => L + (tx(x) - x0) / (x1 - x0) * (W - L - R), Y = (y) => H - B - (ty(y) - y0) / (y1 - y0) * (H - B - Tp);
      svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
      svg.replaceChildren(sv("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }), sv("line", { x1: L, y1: Tp, x2: L, y2: H - B, class: "axis" }));
      for (const [k, lab] of [[0, xs], [1, ys]]) {
        const [a, b] = k ? [y0, y1] : [x0, x1];
        for (let s = 0; s <= 4; s++) {
          const tv = a + (b - a) * s / 4, v = (k ? ly : lx) ? Math.pow(10, tv) : tv;
          const t = sv("text", k ? { x: 4, y: Y(v) + 4 } : { x: X(v) - 20, y: H - B + 16 });
          t.textContent = Math.abs(v) >= 1000 ? human(Math.round(v)) : String(+v.toPrecision(3)); svg.append(t);
        }
        const t = sv("text", k ? { x: 4, y: 14 } : { x: W - R - 160, y: H - 6 });
        t.textContent = lab + ((k ? ly : lx) ? " (log)" : ""); svg.append(t);
      }
      const flags = front(pts.map((p) => [sx * p[0], sy * p[1]]));
      const fr = pts.filter((_, i) => flags[i]).sort((a, b) => a[0] - b[0]);
      if (fr.length > 1) svg.append(sv("path", { class: "front", d: fr.map((p, k) => `${k ? "L" : "M"}${X(p[0])},${Y(p[1])}`).join(" ") }));
      pts.forEach((p, i) => {
        const c = sv("circle", { cx: X(p[0]), cy: Y(p[1]), r: flags[i] ? 5 : 3.5, class: flags[i] ? "front" : "", "data-index": p[2].index });
        const tip = sv("title"); tip.textContent = `#${p[2].index} ${describe(p[2])}\n${xs} ${fmt(get(p[2], xs))}\n${ys} ${fmt(get(p[2], ys))}`;
        c.append(tip);
        c.addEventListener("mouseenter", () => { hover.hidden = false; hover.textContent = tip.textContent + (flags[i] ? "\nPareto-optimal" : ""); hover.style.left = (X(p[0]) + 12) + "px"; hover.style.top = (Y(p[1]) + 12) + "px"; });
        c.addEventListener("mouseleave", () => { hover.hidden = true; });
        svg.append(c);
      });
      $("#pareto-count").textContent = `${fr.length} Pareto-optimal of ${pts.length} (orange, joined)`;
      svg.dataset.front = pts.filter((_, i) => flags[i]).map((p) => p[2].index).join(",");
    }
    // the variants table
    const state = { col: null, dir: 0 }, head = el("tr");
    for (const c of COLS) { const th = el("th", { class: numeric.includes(c) ? "num" : "", text: c }); sortable(th, c, state, table); head.append(th); }
    $("#variants thead").append(head);
    const trs = V.map((v) => el("tr", { "data-index": v.index }, ...COLS.map((c) => el("td", { class: numeric.includes(c) ? "num" : "", text: c === "error" ? (v.error || "") : c === "input" || c === "output" ? get(v, c) : numeric.includes(c) && typeof get(v, c) !== "number" && !/^\d+$/.test(String(get(v, c))) ? JSON.stringify(get(v, c)) : typeof get(v, c) === "object" && get(v, c) !== null ? JSON.stringify(get(v, c)) : fmt(get(v, c)) }))));
    function table() {
      const q = $("#vfilter").value.trim().toLowerCase();
      let order = V.map((_, i) => i).filter((i) => !q || trs[i].textContent.toLowerCase().includes(q));
      if (state.col) order.sort((a, b) => state.dir * cmp(get(V[a], state.col), get(V[b], state.col)) || a - b);
      $("#variants tbody").replaceChildren(...order.map((i) => trs[i]));
    }
    $("#vfilter").addEventListener("input", table);
    table(); scatter();
    window.addEventListener("resize", scatter);
  }
})();
