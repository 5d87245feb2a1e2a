"""Rendering of analyses: pure functions from results to strings. Nothing here prints."""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from .analysis import FOLD, Analysis, Row
from .shapes import fmt_shape

_UNITS = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))


def human(n: int) -> str:
    """Readable SI form of an exact count: 714188480 -> '714.19 M'."""
    for factor, unit in _UNITS:
        if abs(n) >= factor:
            return f"{n / factor:.2f} {unit}"
    return str(n)


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 1024**2:.2f} MiB"


def _type_label(kind: str) -> str:
    return kind[6:] if kind.startswith("block:") else kind


# Reports show a run of more than FOLD identical iterations as its first iteration and one
# row for the others, so that a block repeated a million times stays a short report.


def layer_record(row: Row, a: Analysis) -> dict[str, Any]:
    r, k = row.result, row.count
    macs, flops = a.macs_of(r, k), a.flops_of(r, k)
    rec = {
        "name": row.name,
        "type": _type_label(r.kind),
        "input_shape": list(r.input_shape),
        "output_shape": list(r.output_shape),
        "params": k * r.params,
        "weights": k * r.weights,
        "bias": k * r.bias,
        "buffers": k * r.buffers,
        "macs": macs,
        "flops": flops,
        "tied_to": r.tied_to,
    }
    if k > 1:
        rec["count"] = k    # a folded run of identical iterations; the counts cover all of them
    return rec


def to_dict(a: Analysis, depth: int | None = None) -> dict[str, Any]:
    t = a.totals
    return {
        "model": a.model.name,
        "description": a.model.description,
        "input_shape": list(a.input_shape),
        "input_kind": a.model.input_kind,
        "batch": a.batch,
        "convention": a.convention,
        "dtype": a.dtype,
        "variables": a.model.variables,
        "output_shape": list(a.output_shape),
        "totals": {
            "params": t.params,
            "trainable_params": t.trainable_params,
            "weights": t.weights,
            "bias": t.bias,
            "buffers": t.buffers,
            "macs": t.macs,
            "flops": t.flops,
            "param_bytes": t.param_bytes,
            "activation_bytes": t.activation_bytes,
            "activation_bytes_per_sample": t.activation_bytes_per_sample,
        },
        "layers": [layer_record(row, a) for row in a.rows(depth=depth, leaves_only=True, fold=FOLD)],
    }


def format_json(a: Analysis, depth: int | None = None) -> str:
    """``layers`` lists every leaf layer, or with ``depth`` the rows at most that deep (a
    collapsed container stands for its layers). A run of more than FOLD identical iterations
    is its first iteration and one entry (with ``count``) for the others."""
    return json.dumps(to_dict(a, depth), indent=2) + "\n"


_COLUMNS = ("name", "type", "input_shape", "output_shape", "params", "macs", "flops")


def format_csv(a: Analysis, depth: int | None = None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for row in a.rows(depth=depth, leaves_only=True, fold=FOLD):
        rec = layer_record(row, a)
        writer.writerow([rec["name"], rec["type"], "x".join(map(str, rec["input_shape"])),
                         "x".join(map(str, rec["output_shape"])), rec["params"], rec["macs"], rec["flops"]])
    return buf.getvalue()


def _header(a: Analysis) -> str:
    return (f"{a.model.name} · input {fmt_shape(a.input_shape)} · batch {a.batch} · "
            f"convention {a.convention} · {a.dtype}")


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def _rows(a: Analysis, depth: int | None):
    total = a.totals.macs
    out = []
    for row in a.rows(depth=depth, fold=FOLD):
        r, k = row.result, row.count
        indent = "  " * (row.depth - 1)
        label = _type_label(r.kind) + ("" if r.is_leaf else f" ({r.leaves:,} layers)" if r.leaves != 1 else "")
        if r.tied_to:
            label += f" (tied to {r.tied_to})"
        if k > 1:
            label += f" ×{k:,}"
        macs = a.macs_of(r, k)
        out.append((indent + row.name, label, fmt_shape(r.output_shape), f"{k * r.params:,}",
                    f"{macs:,}", human(macs), _share(macs, total)))
    return out


def totals_lines(a: Analysis) -> list[tuple[str, str]]:
    t = a.totals
    return [
        ("output", fmt_shape(a.output_shape) + (f" per sample, batch {a.batch}" if a.batch > 1 else "")),
        ("parameters", f"{t.params:,} ({human(t.params)}); trainable {t.trainable_params:,}; "
                       f"weights {t.weights:,}, bias {t.bias:,}"),
        ("buffers", f"{t.buffers:,} (not parameters: e.g. batch-norm running statistics)"),
        ("MACs", f"{t.macs:,} ({human(t.macs)})"),
        ("FLOPs", f"{t.flops:,} ({human(t.flops)})"),
        ("parameter memory", f"{t.param_bytes:,} B ({mib(t.param_bytes)}, {a.dtype})"),
        ("activation memory", f"{t.activation_bytes_per_sample:,} B per sample "
                              f"({mib(t.activation_bytes_per_sample)}); {t.activation_bytes:,} B per batch "
                              f"({mib(t.activation_bytes)})"),
    ]


def format_table(a: Analysis, depth: int | None = None) -> str:
    head = ("name", "type", "output", "params", "MACs", "", "share")
    rows = _rows(a, depth)
    t = a.totals
    foot = ("total", "", fmt_shape(a.output_shape), f"{t.params:,}", f"{t.macs:,}", human(t.macs),
            "100.00%" if t.macs else "-")
    widths = [max(len(r[i]) for r in [head, *rows, foot]) for i in range(len(head))]
    right = {3, 4, 5, 6}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    rule = "─" * len(line(head))
    lines = [_header(a), "", line(head), rule, *(line(r) for r in rows), rule, line(foot), ""]
    label_w = max(len(k) for k, _ in totals_lines(a))
    lines += [f"{k.ljust(label_w)}  {v}" for k, v in totals_lines(a)]
    return "\n".join(lines) + "\n"


def format_markdown(a: Analysis, depth: int | None = None) -> str:
    lines = [f"**{_header(a)}**", "", "| name | type | output | params | MACs | share |",
             "|---|---|---|---:|---:|---:|"]
    for name, label, shape, params, macs, hmacs, share in _rows(a, depth):
        lines.append(f"| {name.strip()} | {label} | {shape} | {params} | {macs} | {share} |")
    t = a.totals
    lines.append(f"| **total** | | {fmt_shape(a.output_shape)} | {t.params:,} | {t.macs:,} | 100% |")
    lines.append("")
    lines += [f"- **{k}**: {v}" for k, v in totals_lines(a)]
    return "\n".join(lines) + "\n"


FORMATS = {"table": format_table, "json": format_json, "csv": format_csv, "markdown": format_markdown}
