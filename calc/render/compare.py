"""`calc compare` (and `calc analyze --compare-conventions`) output: a :class:`calc.compare.Comparison`
as a table or JSON. Nothing here prints."""
from __future__ import annotations

import json

from ..compare import Comparison
from ..shapes import fmt_shape
from .numbers import human, signed
from .table import left, right, table


def format_comparison(c: Comparison, limit: int | None = 50) -> str:
    """Totals per convention (and each one's distance from standard); with a diff, the layer
    types and then the layers (the first ``limit``) where the two conventions differ."""
    lines = [f"{c.model} · input {fmt_shape(c.input_shape)} · batch {c.batch} · every convention", ""]
    base = next((t.macs for t in c.totals if t.name == "standard" and t.macs is not None), None)
    rows = []
    for t in c.totals:
        if t.error:
            rows.append((t.name, "-", "-", "-", "-", "cannot count: " + t.error))
            continue
        delta = "" if base is None else signed(t.macs - base)
        tool = "" if t.reported is None else f"{t.reported:,} {'FLOPs' if t.reports == 'flops' else 'MACs'}"
        rows.append((t.name, f"{t.macs:,}", human(t.macs), f"{t.flops:,}", delta, tool))
    lines += table((left("convention"), right("MACs"), right(""), right("FLOPs"), right("MACs − standard"),
                    left("the tool prints")), rows)
    d = c.diff
    if d is not None:
        lines += ["", f"where {d.a} and {d.b} part ways: {d.a} {d.total_a:,} MACs, {d.b} {d.total_b:,} MACs "
                      f"({signed(d.total_b - d.total_a)})"]
        if not d.layers:
            lines.append("no layer differs")
        else:
            lines += ["", "by layer type:"]
            lines += table((left("type"), right("layers"), right(d.a), right(d.b), right(f"{d.b} − {d.a}")),
                           [(t.type, str(t.layers), f"{t.a:,}", f"{t.b:,}", signed(t.b - t.a)) for t in d.by_type])
            shown = d.layers if limit is None else d.layers[:limit]
            lines += ["", f"by layer ({len(d.layers)} differ" + (f", first {limit} shown" if len(shown) < len(d.layers)
                                                                 else "") + "):"]
            lines += table((left("name"), left("type"), right(d.a), right(d.b), right(f"{d.b} − {d.a}"),
                            left(f"rule {d.a}"), left(f"rule {d.b}")),
                           [(x.name, x.type, f"{x.a:,}", f"{x.b:,}", signed(x.b - x.a), x.rule_a, x.rule_b)
                            for x in shown])
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


def format_json(c: Comparison) -> str:
    return json.dumps(comparison_dict(c), indent=2) + "\n"


FORMATS = {"table": format_comparison, "json": format_json}
