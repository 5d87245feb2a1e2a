"""`calc analyze` output: an analysis as a table, JSON, CSV or Markdown. Nothing here prints."""
from __future__ import annotations

import json
from typing import Any

from .._gc import gc_paused
from ..analysis import FOLD, Analysis, Row
from ..limits import with_exact_digits
from ..shapes import fmt_shape
from .numbers import human, mib
from .table import csv_line, left, pairs, right, stream_table


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
    return {**_head(a), "layers": [layer_record(row, a) for row in a.rows(depth=depth, leaves_only=True, fold=FOLD)]}


def _head(a: Analysis) -> dict[str, Any]:
    head = _summary(a)
    act = _active(a)
    if act is not None:
        head["totals"]["active_params"] = {"active": act.active, "active_non_embedding": act.active_non_embedding,
                                           "embedding": act.embedding}
    from .memory import analysis_memory
    head["memory"] = analysis_memory(a)      # inference and one AdamW training step (calc memory)
    return head


def _summary(a: Analysis) -> dict[str, Any]:
    t = a.totals
    return {
        "model": a.model.name,
        "description": a.model.description,
        "input_shape": list(a.input_shape),
        **({"inputs": {name: list(a.input_shape if i == 0 else shape)
                       for i, (name, shape) in enumerate(a.model.inputs)}} if a.model.inputs else {}),
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
    }


def _dumps(value, indent: int | None = 2) -> str:
    # Strict JSON: a value JSON cannot hold (inf, nan) is an error, never 'Infinity'. The spec's
    # variables are finite (calc.spec.build), so this is a guard.
    try:
        return json.dumps(value, indent=indent, allow_nan=False)
    except ValueError as exc:   # pragma: no cover - inputs are checked before
        from ..errors import SpecError
        raise SpecError(f"cannot write JSON: {exc}") from None


def _record_text(rec: dict[str, Any]) -> str:
    """One layer record as ``json.dumps(rec, indent=2)`` writes it inside the ``layers`` list,
    built directly: with ``indent`` the json module falls back to its pure-Python encoder, several
    times slower on a long report. Values are strings, integers, None and lists of integers."""
    keys = tuple(rec)
    if keys == _RECORD_KEYS or keys == _RECORD_KEYS_COUNT:     # what layer_record makes: one template
        text = _RECORD % (_string(rec["name"]), _string(rec["type"]), _ints(rec["input_shape"]),
                          _ints(rec["output_shape"]), rec["params"], rec["weights"], rec["bias"],
                          rec["buffers"], rec["macs"], rec["flops"],
                          "null" if rec["tied_to"] is None else _string(rec["tied_to"]))
        return text + (f',\n      "count": {rec["count"]:d}\n    }}' if len(keys) == 12 else "\n    }")
    parts = []
    for key, value in rec.items():
        kind = type(value)
        if kind is int:
            text = f"{value:d}"
        elif kind is str:
            text = _string(value)
        elif kind is list:
            text = ("[\n        " + ",\n        ".join(map("{:d}".format, value)) + "\n      ]") if value else "[]"
        elif value is None:
            text = "null"
        else:
            text = f"{value:d}"
        parts.append(f'      "{key}": {text}')
    return "{\n" + ",\n".join(parts) + "\n    }"


_RECORD_KEYS = ("name", "type", "input_shape", "output_shape", "params", "weights", "bias", "buffers", "macs",
                "flops", "tied_to")
_RECORD_KEYS_COUNT = (*_RECORD_KEYS, "count")
_RECORD = "{\n" + ",\n".join(f'      "{k}": ' + ("%d" if k in ("params", "weights", "bias", "buffers", "macs", "flops")
                                                 else "%s") for k in _RECORD_KEYS)


def _ints(value: list) -> str:
    return ("[\n        " + ",\n        ".join(map("{:d}".format, value)) + "\n      ]") if value else "[]"


def _string(value: str) -> str:
    """``json.dumps(value)``: quoted as it is when nothing in it needs escaping (printable ASCII
    without quotes or backslashes: json escapes only those, control characters and non-ASCII)."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value)


def iter_json(a: Analysis, depth: int | None = None):
    """:func:`format_json` in pieces, one layer at a time, so that a long report is written as it
    is made (the same text as ``json.dumps(to_dict(a, depth), indent=2)``)."""
    head = _dumps({**_head(a), "layers": []})
    assert head.endswith('"layers": []\n}')
    yield head[:-len("[]\n}")]
    first = True
    for row in a.rows(depth=depth, leaves_only=True, fold=FOLD):
        yield ("[\n    " if first else ",\n    ") + _record_text(layer_record(row, a))
        first = False
    yield "[]\n}\n" if first else "\n  ]\n}\n"


@gc_paused   # a record per layer: see calc._gc.paused
@with_exact_digits
def format_json(a: Analysis, depth: int | None = None) -> str:
    """``layers`` lists every leaf layer, or with ``depth`` the rows at most that deep (a
    collapsed container stands for its layers). A run of more than FOLD identical iterations
    is its first iteration and one entry (with ``count``) for the others."""
    return "".join(iter_json(a, depth))


_CSV_COLUMNS = ("name", "type", "input_shape", "output_shape", "params", "macs", "flops")


def iter_csv(a: Analysis, depth: int | None = None):
    """:func:`format_csv` one line at a time."""
    line = csv_line()
    yield line(_CSV_COLUMNS)
    for row in a.rows(depth=depth, leaves_only=True, fold=FOLD):
        rec = layer_record(row, a)
        yield line([rec["name"], rec["type"], "x".join(map(str, rec["input_shape"])),
                    "x".join(map(str, rec["output_shape"])), rec["params"], rec["macs"], rec["flops"]])


@gc_paused   # a record per layer: see calc._gc.paused
@with_exact_digits
def format_csv(a: Analysis, depth: int | None = None) -> str:
    return "".join(iter_csv(a, depth))


def _header(a: Analysis) -> str:
    return (f"{a.model.name} · input {fmt_shape(a.input_shape)} · batch {a.batch} · "
            f"convention {a.convention} · {a.dtype}")


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def _rows(a: Analysis, depth: int | None) -> tuple[list[tuple[str, ...]], list[int]]:
    """The cells of every row (name, type, output, params, MACs, MACs readable, share) and each
    row's nesting level below the top."""
    out, levels = [], []
    for cells, level in _iter_rows(a, depth):
        out.append(cells)
        levels.append(level)
    return out, levels


def _iter_rows(a: Analysis, depth: int | None):
    """(cells, nesting level) of every row, one at a time (see :func:`_rows`)."""
    total = a.totals.macs
    for row in a.rows(depth=depth, fold=FOLD):
        r, k = row.result, row.count
        label = _type_label(r.kind) + ("" if r.is_leaf else f" ({r.leaves:,} layers)" if r.leaves != 1 else "")
        if r.tied_to:
            label += f" (tied to {r.tied_to})"
        if k > 1:
            label += f" ×{k:,}"
        macs = a.macs_of(r, k)
        yield ((row.name, label, fmt_shape(r.output_shape), f"{k * r.params:,}",
                f"{macs:,}", human(macs), _share(macs, total)), row.depth - 1)


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


def iter_table(a: Analysis, depth: int | None = None):
    """:func:`format_table` a line at a time: the rows are made twice (once to measure the
    columns), never held, so that a long report stays in bounded memory."""
    t = a.totals
    foot = ("total", "", fmt_shape(a.output_shape), f"{t.params:,}", f"{t.macs:,}", human(t.macs),
            "100.00%" if t.macs else "-")
    yield _header(a) + "\n\n"
    for line in stream_table(_TABLE, lambda: _iter_rows(a, depth), total=foot):
        yield line + "\n"
    yield "\n" + "\n".join(pairs(totals_lines(a))) + "\n"


@gc_paused   # a record per layer: see calc._gc.paused
@with_exact_digits
def format_table(a: Analysis, depth: int | None = None) -> str:
    return "".join(iter_table(a, depth))


@gc_paused   # a record per layer: see calc._gc.paused
@with_exact_digits
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


def _whole(fmt):
    def run(a, depth=None):
        yield fmt(a, depth)
    return run


# The same outputs as pieces to write one after another (the CLI streams JSON and CSV).
STREAMS = {"table": iter_table, "json": iter_json, "csv": iter_csv, "markdown": _whole(format_markdown)}
