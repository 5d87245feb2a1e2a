"""`calc report` (and `calc sweep --report`, `calc compare --report`): one self-contained HTML file.

The page is a template (``assets/report.html``) with its style and script (``report.css``,
``report.js``) put inline and the computed results embedded as JSON, so that it works offline
from ``file://``: no network, nothing fetched. Everything the page shows is computed here first
— every row's counts under every convention, the totals by layer type, each layer's explanation
(the steps of `calc explain`, as text), the network's structure for the graph — and the script
only draws, sorts and filters. Nothing here computes a count of its own or prints.

Counts are exact integers. JavaScript's numbers hold integers exactly only up to 2**53, so a
larger count travels as a string of digits and the page prints it as given (sorting and the
lengths of bars may round; printed numbers never do).
"""
from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any, Iterable, Sequence

from ..analysis import DTYPE_BYTES, FOLD, Analysis
from ..shapes import fmt_shape
from .explain import _args, format_step
from .report import _type_label, to_dict

_SAFE = 2**53 - 1


def _n(value):
    """An exact integer as JSON: a number when JavaScript holds it exactly, else its digits."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _SAFE:
        return str(value)
    return value


def _label(r, count: int) -> str:
    """The type column as the terminal table writes it."""
    label = _type_label(r.kind) + ("" if r.is_leaf else f" ({r.leaves:,} layers)" if r.leaves != 1 else "")
    if r.tied_to:
        label += f" (tied to {r.tied_to})"
    if count > 1:
        label += f" ×{count:,}"
    return label


ROW_COLUMNS = ("name", "depth", "type", "label", "input", "output", "params", "macs", "flops",
               "param_bytes", "activation_bytes", "leaf", "count", "explanation")


def model_data(a: Analysis, others: Iterable[Analysis] = (), failed: dict[str, str] | None = None,
               extras: dict[str, Any] | None = None) -> dict:
    """Everything the page shows for analysis ``a``. ``others``: the same model analysed under
    other conventions (their per-row counts feed the convention switch); ``failed``: conventions
    that cannot count this model, with the reason. ``extras`` adds optional sections, shown only
    when present: ``training_memory`` and ``latency`` (each a list of ``{"label", "value",
    "detail"}`` cards), which later analyses fill in."""
    from ..explain import row_entry
    from .graphview import graph_tree

    rows = list(a.rows(fold=FOLD))
    size = DTYPE_BYTES[a.dtype]
    index = {row.name: i for i, row in enumerate(rows)}
    explanations: list = []
    by_result: dict = {}
    table = []
    for i, row in enumerate(rows):
        r, k = row.result, row.count
        if k > 1:
            expl = len(explanations)
            explanations.append({"h": f"{k:,} more identical iterations", "s": [[
                "the sum of its parts", f"a run of identical iterations, folded: {k:,} × the "
                "iteration above, whose layers the table lists (explain that one)", []]]})
        elif r.is_leaf and id(r) in by_result:
            expl = by_result[id(r)]
        else:
            expl = len(explanations)
            entry = row_entry(a, rows, i)
            explanations.append({"h": _args(r.layer) if r.is_leaf else _type_label(r.kind),
                                 "s": [[s.title, s.note, [format_step(x) for x in s.steps]]
                                       for s in entry.sections]})
            if r.is_leaf:
                by_result[id(r)] = expl
        inputs = " + ".join(fmt_shape(s) for s in r.inputs) if r.inputs else fmt_shape(r.input_shape)
        table.append([row.name, row.depth, _type_label(r.kind), _label(r, k), inputs,
                      fmt_shape(r.output_shape), _n(k * r.params), _n(a.macs_of(r, k)), _n(a.flops_of(r, k)),
                      _n(k * r.params * size), _n(k * r.activations * size * a.batch), int(r.is_leaf), k, expl])

    conventions = {a.convention: a, **{o.convention: o for o in others}}
    conv = {}
    for name, o in conventions.items():
        orows = list(o.rows(fold=FOLD))
        conv[name] = {"macs": [_n(o.macs_of(x.result, x.count)) for x in orows],
                      "flops": [_n(o.flops_of(x.result, x.count)) for x in orows],
                      "total_macs": _n(o.totals.macs), "total_flops": _n(o.totals.flops)}
    types: dict[str, dict] = {}
    for i, row in enumerate(rows):
        r, k = row.result, row.count
        if not r.is_leaf and k == 1:
            continue
        for leaf, times in _leaves(r, k):
            t = types.setdefault(leaf.kind, {"layers": 0, "params": 0, "param_bytes": 0,
                                             "activation_bytes": 0, "macs": {}, "flops": {}})
            t["layers"] += times
            t["params"] += times * leaf.params
            t["param_bytes"] += times * leaf.params * size
            t["activation_bytes"] += times * leaf.activations * size * a.batch
    for name, o in conventions.items():
        for row in o.rows(fold=FOLD):
            if not row.result.is_leaf and row.count == 1:
                continue
            for leaf, times in _leaves(row.result, row.count):
                t = types[leaf.kind]
                t["macs"][name] = t["macs"].get(name, 0) + o.macs_of(leaf, times)
                t["flops"][name] = t["flops"].get(name, 0) + o.flops_of(leaf, times)
    for t in types.values():
        for key in ("params", "param_bytes", "activation_bytes"):
            t[key] = _n(t[key])
        for key in ("macs", "flops"):
            t[key] = {c: _n(v) for c, v in t[key].items()}

    info = to_dict(a)
    info.pop("layers")
    info["totals"] = {k: _n(v) for k, v in info["totals"].items()}
    return {
        "kind": "model",
        "title": f"{a.model.name} · calc report",
        "header": (f"{a.model.name} · input {fmt_shape(a.input_shape)} · batch {a.batch} · "
                   f"convention {a.convention} · {a.dtype}"),
        "info": info,
        "columns": ROW_COLUMNS,
        "rows": table,
        "explanations": explanations,
        "conventions": conv,
        "failed": failed or {},
        "types": types,
        "graph": graph_tree(a, index),
        # Optional sections (absent until an analysis provides them): see docs/report.md.
        "training_memory": (extras or {}).get("training_memory"),
        "latency": (extras or {}).get("latency"),
        "roofline": (extras or {}).get("roofline"),     # the roofline plot (calc.render.roofline_html)
    }


def _leaves(r, count: int):
    """(leaf result, times) for every leaf under ``r`` taken ``count`` times (results are
    shared: a repeat's identical iterations are one child with a count)."""
    if r.is_leaf:
        yield r, count
        return
    for ch in r.children:
        yield from _leaves(ch.result, count * ch.count)


def sweep_data(title: str, header: str, records: Sequence[dict], names: Sequence[str],
               pareto: Sequence[str] | None = None) -> dict:
    """A sweep's page: its variants (as `calc sweep --format json` writes them) and the two
    columns whose Pareto front is drawn first (``-COLUMN``: larger is better)."""
    recs = [{**rec, **{k: _n(rec[k]) for k in ("params", "macs", "flops", "param_bytes", "activation_bytes")
                       if rec.get(k) is not None}} for rec in records]
    return {"kind": "sweep", "title": title, "header": header, "variables": list(names),
            "variants": recs, "pareto": list(pareto or ("macs", "params"))}


def format_html(data: dict) -> str:
    """The page for ``data`` (from :func:`model_data` or :func:`sweep_data`)."""
    assets = resources.files("calc.render") / "assets"
    page = (assets / "report.html").read_text(encoding="utf-8")
    css = "".join((assets / f).read_text(encoding="utf-8") for f in ("report.css", "roofline.css"))
    js = "".join((assets / f).read_text(encoding="utf-8") for f in ("report.js", "roofline.js"))
    # Inside <script>, "</" could end the element and "<!--" open a comment: JSON's \u003c
    # escape keeps every "<" out of the embedded text.
    blob = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
    title = (data.get("title") or "calc report").replace("&", "&amp;").replace("<", "&lt;")
    parts = {"{{title}}": title, "/*{{css}}*/": css, "/*{{js}}*/": js.replace("</", "<\\/"), "{{data}}": blob}
    # one pass: text put in (a model named "{{data}}") is never read as a placeholder
    return re.sub("|".join(map(re.escape, parts)), lambda m: parts[m.group(0)], page)
