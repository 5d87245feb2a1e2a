"""`calc analyze` output: an analysis as a table, JSON, CSV or Markdown. Nothing here prints."""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..analysis import FOLD, Analysis, Row
from ..shapes import fmt_shape
from .numbers import human, mib
from .table import left, pairs, right, table


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


def _active(a: Analysis):
    from ..inference import active_parameters   # a mixture of experts: total vs active parameters
    return active_parameters(a)


def to_dict(a: Analysis, depth: int | None = None) -> dict[str, Any]:
    out = _to_dict(a, depth)
    act = _active(a)
    if act is not None:
        out["totals"]["active_params"] = {"active": act.active, "active_non_embedding": act.active_non_embedding,
                                          "embedding": act.embedding}
    return out


def _to_dict(a: Analysis, depth: int | None = None) -> dict[str, Any]:
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


_CSV_COLUMNS = ("name", "type", "input_shape", "output_shape", "params", "macs", "flops")


def format_csv(a: Analysis, depth: int | None = None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
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


def _rows(a: Analysis, depth: int | None) -> tuple[list[tuple[str, ...]], list[int]]:
    """The cells of every row (name, type, output, params, MACs, MACs readable, share) and each
    row's nesting level below the top."""
    total = a.totals.macs
    out, levels = [], []
    for row in a.rows(depth=depth, fold=FOLD):
        r, k = row.result, row.count
        label = _type_label(r.kind) + ("" if r.is_leaf else f" ({r.leaves:,} layers)" if r.leaves != 1 else "")
        if r.tied_to:
            label += f" (tied to {r.tied_to})"
        if k > 1:
            label += f" ×{k:,}"
        macs = a.macs_of(r, k)
        out.append((row.name, label, fmt_shape(r.output_shape), f"{k * r.params:,}",
                    f"{macs:,}", human(macs), _share(macs, total)))
        levels.append(row.depth - 1)
    return out, levels


def _active_lines(a: Analysis) -> list[tuple[str, str]]:
    act = _active(a)
    if act is None:
        return []
    return [("active parameters", f"{act.active:,} ({human(act.active)}) per token: the router, top-k and shared "
                                  f"experts of each mixture of experts, every other layer whole (embeddings "
                                  f"included); {act.active_non_embedding:,} without the embedding tables")]


def totals_lines(a: Analysis) -> list[tuple[str, str]]:
    t = a.totals
    return [
        ("output", fmt_shape(a.output_shape) + (f" per sample, batch {a.batch}" if a.batch > 1 else "")),
        ("parameters", f"{t.params:,} ({human(t.params)}); trainable {t.trainable_params:,}; "
                       f"weights {t.weights:,}, bias {t.bias:,}"),
        *_active_lines(a),
        ("buffers", f"{t.buffers:,} (not parameters: e.g. batch-norm running statistics)"),
        ("MACs", f"{t.macs:,} ({human(t.macs)})"),
        ("FLOPs", f"{t.flops:,} ({human(t.flops)})"),
        ("parameter memory", f"{t.param_bytes:,} B ({mib(t.param_bytes)}, {a.dtype})"),
        ("activation memory", f"{t.activation_bytes_per_sample:,} B per sample "
                              f"({mib(t.activation_bytes_per_sample)}); {t.activation_bytes:,} B per batch "
                              f"({mib(t.activation_bytes)})"),
    ]


_TABLE = (left("name"), left("type"), left("output"), right("params"), right("MACs"), right(""),
          right("share"))


def format_table(a: Analysis, depth: int | None = None) -> str:
    rows, levels = _rows(a, depth)
    t = a.totals
    foot = ("total", "", fmt_shape(a.output_shape), f"{t.params:,}", f"{t.macs:,}", human(t.macs),
            "100.00%" if t.macs else "-")
    lines = [_header(a), "", *table(_TABLE, rows, indent=levels, total=foot), "", *pairs(totals_lines(a))]
    return "\n".join(lines) + "\n"


def format_markdown(a: Analysis, depth: int | None = None) -> str:
    lines = [f"**{_header(a)}**", "", "| name | type | output | params | MACs | share |",
             "|---|---|---|---:|---:|---:|"]
    for name, label, shape, params, macs, hmacs, share in _rows(a, depth)[0]:
        lines.append(f"| {name} | {label} | {shape} | {params} | {macs} | {share} |")
    t = a.totals
    lines.append(f"| **total** | | {fmt_shape(a.output_shape)} | {t.params:,} | {t.macs:,} | 100% |")
    lines.append("")
    lines += [f"- **{k}**: {v}" for k, v in totals_lines(a)]
    return "\n".join(lines) + "\n"


FORMATS = {"table": format_table, "json": format_json, "csv": format_csv, "markdown": format_markdown}
