"""One model under every convention side by side, and where two conventions part ways.

:func:`compare` computes (it analyses the model once per convention); :mod:`calc.render.compare`
renders the result. Nothing here prints.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import conventions as conv_mod
from .analysis import analyze
from .errors import ConventionError
from .graph import Model
from .shapes import Shape


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
