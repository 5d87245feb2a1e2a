"""One model under every convention side by side, and where two conventions part ways.

:func:`compare` computes (it analyses the model once per convention); :func:`format_comparison`
and :func:`comparison_dict` render. Nothing here prints.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import conventions as conv_mod
from .analysis import analyze
from .errors import ConventionError
from .graph import Model
from .render.numbers import human
from .shapes import Shape, fmt_shape


@dataclass(frozen=True)
class ConventionTotal:
    name: str
    macs: int | None
    flops: int | None
    reports: str                  # the figure the tool prints: macs or flops
    error: str | None = None      # why the convention cannot count this model
    tool: bool = False            # a tool preset (its figure is what the tool prints)

    @property
    def reported(self) -> int | None:
        if not self.tool:
            return None
        return self.flops if self.reports == "flops" else self.macs


@dataclass(frozen=True)
class LayerDiff:
    name: str
    type: str
    a: int                        # MACs under the first convention (whole batch)
    b: int
    rule_a: str
    rule_b: str


@dataclass(frozen=True)
class TypeDiff:
    type: str
    layers: int
    a: int
    b: int


@dataclass(frozen=True)
class Diff:
    a: str
    b: str
    layers: tuple[LayerDiff, ...]
    by_type: tuple[TypeDiff, ...]
    total_a: int
    total_b: int


@dataclass(frozen=True)
class Comparison:
    model: str
    input_shape: Shape
    batch: int
    totals: tuple[ConventionTotal, ...]
    diff: Diff | None = None


def compare(model: Model, *, batch: int = 1, dtype: str = "fp32", input_shape: Shape | None = None,
            names: list[str] | None = None, diff: tuple[str, str] | None = None) -> Comparison:
    """Totals under each convention in ``names`` (default: all) and, with ``diff=(a, b)``,
    the leaf layers whose MACs differ between conventions a and b."""
    names = list(names or conv_mod.CONVENTIONS)
    for n in [*names, *(diff or ())]:
        conv_mod.get(n)  # unknown names are an error before any work
    analyses = {}
    totals = []
    for n in dict.fromkeys([*names, *(diff or ())]):
        conv = conv_mod.get(n)
        try:
            a = analyze(model, batch=batch, convention=conv, dtype=dtype, input_shape=input_shape)
        except ConventionError as err:
            if n in names:
                totals.append(ConventionTotal(n, None, None, conv.reports, err.message, bool(conv.source)))
            if diff and n in diff:
                raise
            continue
        analyses[n] = a
        if n in names:
            totals.append(ConventionTotal(n, a.totals.macs, a.totals.flops, conv.reports, tool=bool(conv.source)))
    first = next(iter(analyses.values()), None)
    shape = first.input_shape if first else tuple(input_shape or model.input_shape)
    return Comparison(model.name, shape, batch, tuple(totals),
                      _diff(analyses[diff[0]], analyses[diff[1]]) if diff else None)


def _diff(a, b) -> Diff:
    ca, cb = conv_mod.get(a.convention), conv_mod.get(b.convention)
    layers = []
    by_type: dict[str, list[int]] = {}
    for ra, rb in zip(a.rows(leaves_only=True), b.rows(leaves_only=True)):
        # a folded row stands for `count` identical layers
        ma, mb = a.macs_of(ra.result, ra.count), b.macs_of(rb.result, rb.count)
        if ma == mb:
            continue
        layer = ra.result.layer
        rule_a = ca.rules(layer.type_name, layer.kind)[0].text()
        rule_b = cb.rules(layer.type_name, layer.kind)[0].text()
        layers.append(LayerDiff(ra.name, layer.type_name, ma, mb, rule_a, rule_b))
        acc = by_type.setdefault(layer.type_name, [0, 0, 0])
        acc[0] += 1
        acc[1] += ma
        acc[2] += mb
    types = sorted((TypeDiff(t, n, x, y) for t, (n, x, y) in by_type.items()),
                   key=lambda d: -abs(d.b - d.a))
    return Diff(a.convention, b.convention, tuple(layers), tuple(types), a.totals.macs, b.totals.macs)


# ---------------------------------------------------------------------------- rendering

def _table(head, rows, right) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return [line(head), "─" * len(line(head)), *(line(r) for r in rows)]


def _signed(n: int) -> str:
    return f"{n:+,}"


def format_comparison(c: Comparison, limit: int | None = 50) -> str:
    lines = [f"{c.model} · input {fmt_shape(c.input_shape)} · batch {c.batch} · every convention", ""]
    base = next((t.macs for t in c.totals if t.name == "standard" and t.macs is not None), None)
    rows = []
    for t in c.totals:
        if t.error:
            rows.append((t.name, "-", "-", "-", "-", "cannot count: " + t.error))
            continue
        delta = "" if base is None else _signed(t.macs - base)
        tool = "" if t.reported is None else f"{t.reported:,} {'FLOPs' if t.reports == 'flops' else 'MACs'}"
        rows.append((t.name, f"{t.macs:,}", human(t.macs), f"{t.flops:,}", delta, tool))
    lines += _table(("convention", "MACs", "", "FLOPs", "MACs − standard", "the tool prints"), rows, {1, 2, 3, 4})
    d = c.diff
    if d is not None:
        lines += ["", f"where {d.a} and {d.b} part ways: {d.a} {d.total_a:,} MACs, {d.b} {d.total_b:,} MACs "
                      f"({_signed(d.total_b - d.total_a)})"]
        if not d.layers:
            lines.append("no layer differs")
        else:
            lines += ["", "by layer type:"]
            lines += _table(("type", "layers", d.a, d.b, f"{d.b} − {d.a}"),
                            [(t.type, str(t.layers), f"{t.a:,}", f"{t.b:,}", _signed(t.b - t.a)) for t in d.by_type],
                            {1, 2, 3, 4})
            shown = d.layers if limit is None else d.layers[:limit]
            lines += ["", f"by layer ({len(d.layers)} differ" + (f", first {limit} shown" if len(shown) < len(d.layers)
                                                                 else "") + "):"]
            lines += _table(("name", "type", d.a, d.b, f"{d.b} − {d.a}", f"rule {d.a}", f"rule {d.b}"),
                            [(x.name, x.type, f"{x.a:,}", f"{x.b:,}", _signed(x.b - x.a), x.rule_a, x.rule_b)
                             for x in shown], {2, 3, 4})
    return "\n".join(lines) + "\n"


def comparison_dict(c: Comparison) -> dict:
    out = {"model": c.model, "input_shape": list(c.input_shape), "batch": c.batch,
           "conventions": [{"name": t.name, "macs": t.macs, "flops": t.flops, "reports": t.reports,
                            "reported": t.reported, "error": t.error} for t in c.totals]}
    if c.diff is not None:
        d = c.diff
        out["diff"] = {"a": d.a, "b": d.b, "total_a": d.total_a, "total_b": d.total_b,
                       "by_type": [vars(t) for t in d.by_type],
                       "layers": [vars(x) for x in d.layers]}
    return out
