"""`calc sweep` output: the variants of a sweep as a table, CSV or JSON Lines. Nothing here prints.

CSV and JSON Lines are produced one variant at a time (generators), so that a long sweep can be
written as it runs; the table needs every row first, for its column widths.
"""
from __future__ import annotations

import json
from typing import Iterable, Iterator, Sequence

from ..shapes import fmt_shape
from ..sweep import Grid, Variant, values_of
from ..sweep_phase import AXES as _AXES, exact
from .numbers import human, mib_value
from .table import csv_line, left, right, table


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"     # as written in specs and on the command line
    return "" if value is None else str(value)


def _shape(shape, sep: str = "x") -> str:
    return "" if shape is None else sep.join(map(str, shape))


def record(grid: Grid, v: Variant, pareto: bool | None = None) -> dict:
    """One variant as a JSON-ready mapping (totals cover the whole batch)."""
    values, _, batch = grid.point(v.index)
    named = dict(zip(grid.names, values))
    axes = {n: named.pop(n) for n in _AXES if grid.phase and n in named}   # a phase's sizes, not variables
    out = {"index": v.index, "variables": named, **({"phase": grid.phase, **axes} if grid.phase else {}),
           "input_shape": list(v.input_shape) if v.input_shape is not None else None, "batch": batch,
           "params": v.params, "macs": v.macs, "flops": v.flops, "param_bytes": v.param_bytes,
           "activation_bytes": v.activation_bytes,
           "output_shape": list(v.output_shape) if v.output_shape is not None else None}
    if grid.hardware:
        out.update(latency_s=v.latency, throughput=v.throughput)
    if grid.phase:
        out.update(kv_cache_bytes=v.kv_bytes, macs_per_token=exact(v.macs_per_token),
                   flops_per_token=exact(v.flops_per_token))
    if pareto is not None:
        out["pareto"] = pareto
    out["error"] = v.error
    return out


def json_lines(grid: Grid, variants: Iterable[Variant], flags: Sequence[bool] | None = None) -> Iterator[str]:
    """JSON Lines: one object per variant."""
    for k, v in enumerate(variants):
        yield json.dumps(record(grid, v, None if flags is None else flags[k])) + "\n"


def csv_header(grid: Grid, with_pareto: bool = False) -> list[str]:
    return ["index", *grid.names, "input", "batch", "params", "macs", "flops", "param_bytes",
            "activation_bytes", "output", *(["kv_cache_bytes", "macs_per_token", "flops_per_token"] if grid.phase
                                             else []), *(["latency_s", "throughput"] if grid.hardware else []),
            *(["pareto"] if with_pareto else []), "error"]


def csv_lines(grid: Grid, variants: Iterable[Variant], flags: Sequence[bool] | None = None) -> Iterator[str]:
    line = csv_line()
    yield line(csv_header(grid, flags is not None))
    for k, v in enumerate(variants):
        values, _, batch = grid.point(v.index)
        mark = [] if flags is None else [int(flags[k])]
        yield line([v.index, *map(_value, values), _shape(v.input_shape), batch, *(_value(x) for x in (
            v.params, v.macs, v.flops, v.param_bytes, v.activation_bytes)),
            _shape(v.output_shape), *_phase_cells(grid, v),
            *((_value(v.latency), _value(v.throughput)) if grid.hardware else ()), *mark, _value(v.error)])


def _phase_cells(grid: Grid, v: Variant) -> list[str]:
    if not grid.phase:
        return []
    return [_value(v.kv_bytes), *(_value(exact(x)) for x in (v.macs_per_token, v.flops_per_token))]


def format_table(grid: Grid, variants: Sequence[Variant], flags: Sequence[bool] | None = None, *,
                 title: str = "", pareto_cols: Sequence[str] = (), total: int | None = None) -> str:
    """An aligned table, one row per variant; '*' marks the Pareto-optimal ones."""
    # numbers right, shapes and messages left
    columns = [right("#"), *map(right, grid.names), left("input"), right("batch"), right("params"), right("MACs"),
               right(""), right("FLOPs"), right("param MiB"), right("act MiB"), left("output")]
    if grid.phase:
        columns += [right("KV MiB"), right("MACs/token")]
    timed = grid.hardware is not None
    if timed:
        columns += [right("latency ms"), right("tokens/s" if grid.phase else "samples/s")]
    if flags is not None:
        columns.append(right("pareto"))
    columns.append(left("error"))
    rows = []
    for k, v in enumerate(variants):
        row = values_of(grid, v)
        shape = v.input_shape
        cells = [str(v.index), *(_value(row[n]) for n in grid.names),
                 fmt_shape(shape) if shape is not None else "spec's", str(row["batch"])]
        if v.error is None:
            cells += [f"{v.params:,}", f"{v.macs:,}", human(v.macs), f"{v.flops:,}",
                      mib_value(v.param_bytes), mib_value(v.activation_bytes),
                      fmt_shape(v.output_shape)]
            if grid.phase:
                cells += [mib_value(v.kv_bytes), human(int(v.macs_per_token))]
            if timed:
                cells += ["-" if v.latency is None else f"{v.latency * 1e3:,.4g}",
                          "-" if v.throughput is None else f"{v.throughput:,.1f}"]
        else:
            cells += ["-"] * (7 + (2 if grid.phase else 0) + (2 if timed else 0))
        if flags is not None:
            cells.append("*" if flags[k] else "")
        cells.append(v.error or "")
        rows.append(cells)
    if not any(r[-1] for r in rows):
        columns.pop()
        rows = [r[:-1] for r in rows]
    out = [title, ""] if title else []
    out += table(columns, rows, closed=True)
    shown = len(rows)
    invalid = sum(1 for v in variants if v.error is not None)
    summary = f"{shown:,} variant{'s' if shown != 1 else ''}"
    if total is not None and total != shown:
        summary += f" shown of {total:,}"
    if invalid:
        summary += f"; {invalid:,} invalid"
    if flags is not None:
        summary += f"; {sum(flags):,} Pareto-optimal (*) for {' and '.join(pareto_cols)}"
    out.append(summary)
    if timed:
        rate = "tokens/s" if grid.phase else "samples/s"
        out.append(f"latency and {rate} on {grid.hardware}: a roofline lower bound (see docs/time.md)")
    return "\n".join(out) + "\n"


def progress_bar(done: int, total: int, elapsed: float, width: int = 30) -> str:
    """'[#########.....]  45%  45,000/100,000  12,345/s  ETA 4s' (no newline)."""
    frac = done / total if total else 1.0
    filled = int(frac * width)
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else 0.0
    return (f"[{'#' * filled}{'.' * (width - filled)}] {100 * frac:3.0f}%  {done:,}/{total:,}  "
            f"{rate:,.0f}/s  ETA {eta:.0f}s")
