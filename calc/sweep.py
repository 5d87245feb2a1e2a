"""Sweeps: one spec evaluated over a grid of variable values, input shapes and batch sizes.

Computes; never prints (rendering is in :mod:`calc.render.sweep`). The grid is the Cartesian
product of its axes, in the order given, the batch size varying fastest. Each variant becomes a
small :class:`Variant` of totals — or of an error message, because an invalid variant (channels
that ``groups`` cannot divide, an input too small) is a result of the sweep, not its end.

Work is shared between variants: a model is built once per assignment of the variables and
analysed once per input shape (the batch size only scales totals, except under a convention
that counts part of a layer once per batch); validated layers, block bodies and the results of
identical layers and blocks on identical inputs are reused across variants (bounded caches). Large
grids are cut into chunks of consecutive variants evaluated by worker processes; the rows come
back in grid order as a stream, so a sweep of any length runs in bounded memory.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass, replace
from itertools import product
from typing import Any, Callable, Iterator, NamedTuple, Sequence

from . import conventions as conv_mod
from .analysis import DTYPE_BYTES, analyze
from .caches import result_cache
from .errors import CalcError, SpecError, format_path
from .expr import _Undefined, compile_expr, names_in
from .limits import MAX_EXPR_CHARS, MAX_GRID, MAX_HELD, MAX_JOBS, clip
from .spec import Spec, parse_spec
from .sweep_compile import COMPILE_FROM, Compiled, same_totals

TOTALS = ("params", "macs", "flops", "param_bytes", "activation_bytes")
TIMES = ("latency", "throughput")    # with a grid's hardware
CHUNK_TARGET = 400          # variants per task sent to a worker process
PARALLEL_FROM = 4000        # grids at least this large use every core by default


class Variant(NamedTuple):
    """The totals of one variant (whole batch, like ``Analysis.totals``), or its error."""

    index: int
    params: int | None
    macs: int | None
    flops: int | None
    param_bytes: int | None
    activation_bytes: int | None
    input_shape: tuple | None     # as analysed (the spec's own when the grid gives none)
    output_shape: tuple | None
    error: str | None
    latency: float | None = None      # seconds per batch on the grid's hardware (roofline lower bound)
    throughput: float | None = None   # samples per second
    # with --phase (see calc.sweep_phase): the KV cache after it, MACs and FLOPs per token
    kv_bytes: int | None = None
    macs_per_token: Any = None
    flops_per_token: Any = None


@dataclass(frozen=True)
class Grid:
    """The axes of a sweep. ``inputs`` holds per-sample shapes; ``None`` is the spec's own."""

    variables: tuple[tuple[str, tuple], ...]
    inputs: tuple[tuple | None, ...] = (None,)
    batches: tuple[int, ...] = (1,)
    hardware: str | None = None       # a preset or YAML file: adds latency and throughput (calc.roofline)
    phase: str | None = None        # an inference phase: the last variables are its axes (calc.sweep_phase)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.variables)

    @property
    def sizes(self) -> tuple[int, ...]:
        return (*(len(v) for _, v in self.variables), len(self.inputs), len(self.batches))

    @property
    def size(self) -> int:
        """The number of variants (exact: a grid may hold more than ``len()`` can return)."""
        n = 1
        for size in self.sizes:
            n *= size
        return n

    def __len__(self) -> int:
        return self.size

    def point(self, index: int) -> tuple[tuple, tuple | None, int]:
        """(variable values, input shape, batch) of variant ``index`` (mixed radix, batch fastest)."""
        digits = []
        for size in reversed(self.sizes):
            index, digit = divmod(index, size)
            digits.append(digit)
        digits.reverse()
        values = tuple(vals[d] for (_, vals), d in zip(self.variables, digits))
        return values, self.inputs[digits[-2]], self.batches[digits[-1]]

    def points(self) -> Iterator[tuple[tuple, tuple | None, int]]:
        axes = [vals for _, vals in self.variables]
        for *values, shape, batch in product(*axes, self.inputs, self.batches):
            yield tuple(values), shape, batch


def make_grid(spec: Spec, variables: Sequence[tuple[str, Sequence[Any]]] = (),
              inputs: Sequence[tuple] | None = None, batches: Sequence[int] | None = None,
              hardware: str | None = None, phase: str | None = None,
              phase_axes: Sequence[tuple[str, Sequence[int]]] = ()) -> Grid:
    """Check the axes against the spec and return the grid (errors here end the sweep). With
    ``phase``, ``phase_axes`` (from calc.sweep_phase.phase_axes) follow the variables."""
    known = spec.doc.variables
    seen = set()
    if phase is not None and inputs:
        raise SpecError("--input does not go with --phase: --context sets the sequence length")
    for name, _ in phase_axes:
        if name in known:
            raise SpecError(f"variable '{name}' has the name of a --phase axis; rename it to sweep a phase")
    for name, values in variables:
        if name not in known:
            raise SpecError(f"--set {name}: the spec has no such variable "
                            f"(variables: {', '.join(known) or 'none'})")
        if name in seen:
            raise SpecError(f"--set {name} given twice; list its values once, separated by commas")
        if name in TOTALS or name in TIMES or name in ("index", "batch", "input"):
            raise SpecError(f"variable '{name}' has the name of a sweep column; rename it to sweep it")
        if not values:
            raise SpecError(f"--set {name}: no values")
        seen.add(name)
    for b in batches or ():
        if not isinstance(b, int) or isinstance(b, bool) or b < 1:
            raise SpecError(f"batch sizes must be positive whole numbers, got {b!r}")
    if hardware is not None:
        from .hardware import get
        get(hardware)           # an unknown preset or a bad file ends the sweep here
    return Grid(variables=tuple((n, tuple(v)) for n, v in (*variables, *phase_axes)),
                inputs=tuple(tuple(s) for s in inputs) if inputs else (None,),
                batches=tuple(batches) if batches else (1,), hardware=hardware, phase=phase)


def check_size(grid: Grid, held: bool = False) -> None:
    """Refuse a grid larger than a sweep runs: MAX_GRID variants written as a stream, MAX_HELD
    when every variant is held (a table, --sort, --pareto)."""
    limit = MAX_HELD if held else MAX_GRID
    if grid.size > limit:
        how = "to sort, mark or lay out as a table" if held else "in one sweep"
        raise SpecError(f"the grid has {grid.size:,} variants; calc evaluates at most {limit:,} {how}"
                        + ("; --format csv or json streams up to {:,}".format(MAX_GRID) if held else ""))


def _short(err: CalcError) -> str:
    where = format_path(err.path)
    return f"{where}: {err.message}" if where else err.message


class Evaluator:
    """Evaluates variants of one spec, remembering the last build and analysis (consecutive
    variants differ first in batch, then input) and sharing layer results across variants."""

    def __init__(self, spec: Spec, grid: Grid, convention: str = "standard", dtype: str = "fp32",
                 compile: bool | None = None):
        self.spec = spec
        self.grid = grid
        self.convention = conv_mod.get(convention)
        if dtype not in DTYPE_BYTES:
            raise SpecError(f"unknown dtype '{dtype}'; known: {', '.join(DTYPE_BYTES)}")
        self.dtype = dtype
        self.cache = result_cache()
        # Counts scale with the batch unless a rule counts for the whole batch (see
        # calc.conventions); then every batch size is analysed on its own.
        self.batch_free = all(rule.batch == "0" for table in (self.convention.macs, self.convention.flops or {})
                              for rule in table.values())
        self.hardware = None
        if grid.hardware is not None:
            from .hardware import get
            self.hardware = get(grid.hardware)
            self.hardware.peak_for(dtype)      # a device without this dtype's peak ends the sweep here
        self._built: tuple = (None, None)      # (values, model or error text)
        self._analysed: tuple = (None, None)   # ((values, shape), Analysis or error text)
        # Straight-line programs over the swept numbers (calc.sweep_compile); the roofline
        # times every layer and a phase runs calc.inference, so not with a hardware or a phase.
        self.compiled = None
        self.mismatches = 0
        if compile is not False and grid.hardware is None and grid.phase is None:
            self.compiled = Compiled(spec, grid.names, self.convention, dtype)
            # By default only where a program would answer enough networks to repay its trace.
            if compile is None and self.compiled.networks_per_program(grid) < COMPILE_FROM:
                self.compiled = None

    def _model(self, values: tuple):
        # Types are part of the key: 1 and 1.0 are equal but may build different models.
        key = (values, tuple(map(type, values)))
        if self._built[0] != key:
            try:
                model = self.spec.build(dict(zip(self.grid.names, values)))
            except CalcError as err:
                model = _short(err)
            self._built = (key, model)
        return self._built[1]

    def _analysis(self, values: tuple, shape, batch: int):
        key = (values, tuple(map(type, values)), shape, batch)
        if self._analysed[0] != key:
            found, check = self.compiled.analysis(values, shape, batch) if self.compiled else (None, False)
            if found is None or check:
                plain = self._plain(values, shape, batch)
                if self.compiled is not None and self.compiled.pending is not None:
                    self.compiled.settle(not isinstance(plain, str))
                if check and (isinstance(plain, str) or not same_totals(found, plain)):
                    self.mismatches += 1     # a bug: the plain path's row stands, and is used from now on
                    self.compiled = None
                found = plain
                self._trim()      # (a program's answer adds nothing to the caches)
            self._analysed = (key, found)
        return self._analysed[1]

    def _plain(self, values: tuple, shape, batch: int):
        model = self._model(values)
        if isinstance(model, str):
            return model
        try:
            if model.reads_in and shape is not None and tuple(shape) != tuple(model.input_shape):
                # sizes read from `in` follow the input only when the spec is built for it
                model = self.spec.build(dict(zip(self.grid.names, values)), input_shape=shape)
            return analyze(model, batch=batch, convention=self.convention, dtype=self.dtype,
                           input_shape=shape, cache=self.cache)
        except CalcError as err:
            return _short(err)

    def _trim(self):
        # Bounded caches keep a sweep of any length within a fixed amount of memory.
        self.cache.trim()
        self.spec.cache.trim()

    def variant(self, index: int) -> Variant:
        values, shape, batch = self.grid.point(index)
        if self.grid.phase is not None:
            return self._phase_variant(index, values, batch)
        found = self._analysis(values, shape, 1 if self.batch_free else batch)
        if not isinstance(found, str) and found.batch != batch:
            if found.root.macs_batch or found.root.flops_batch:
                # A fractional count per sample is exact only for a whole batch: no scaling.
                self.batch_free = False
                found = self._analysis(values, shape, batch)
            else:
                # The batch only scales totals: one analysis serves every batch size.
                found = replace(found, batch=batch)
        if isinstance(found, str):
            return Variant(index, None, None, None, None, None, shape, None, found)
        t = found.totals
        latency = throughput = None
        if self.hardware is not None:
            try:
                from .roofline import roofline
                rf = roofline(found, self.hardware)
            except CalcError as err:
                return Variant(index, None, None, None, None, None, shape, None, _short(err))
            latency = float(rf.time)
            throughput = None if rf.throughput is None else float(rf.throughput)
        return Variant(index, t.params, t.macs, t.flops, t.param_bytes, t.activation_bytes,
                       tuple(found.input_shape), found.output_shape, None, latency, throughput)

    def _phase_variant(self, index: int, values: tuple, batch: int) -> Variant:
        from .sweep_phase import AXES, phase_totals
        k = len([n for n in self.grid.names if n not in AXES])
        model = self._model(values[:k])
        if isinstance(model, str):
            return Variant(index, None, None, None, None, None, None, None, model)
        try:
            sizes = dict(zip(self.grid.names[k:], values[k:]))
            a, macs, flops, kv, mpt, fpt, done = phase_totals(model, self.grid.phase, sizes, batch,
                                                              self.convention, self.dtype)
            latency = throughput = None
            if self.hardware is not None:
                latency, throughput = self._phase_time(model, sizes, batch, done)
        except CalcError as err:
            return Variant(index, None, None, None, None, None, None, None, _short(err))
        finally:
            self._trim()
        t = a.totals
        return Variant(index, t.params, macs, flops, t.param_bytes, t.activation_bytes, tuple(a.input_shape),
                       a.output_shape, None, latency, throughput, kv_bytes=kv, macs_per_token=mpt, flops_per_token=fpt)

    def _phase_time(self, model, sizes: dict, batch: int, done) -> tuple:
        """(seconds, tokens per second) of the phase on the grid's hardware (calc.roofline.phases):
        the pass already analysed (``done``) for prefill and decode, the whole generation (new
        tokens per second) for generate."""
        from .roofline import Options, roofline
        from .roofline.phases import PhaseTime, time_generation
        if done is None:
            t = time_generation(model, sizes["context"], sizes["new"], self.hardware, Options(), batch=batch,
                                convention=self.convention, dtype=self.dtype)
        else:
            t = PhaseTime(done.phase, done.context, done.tokens, roofline(done.analysis, self.hardware), done.kv)
        rate = t.tokens_per_second
        return float(t.time), None if rate is None else float(rate)

    def run(self, start: int, stop: int) -> list[Variant]:
        """Variants ``start`` to ``stop - 1``. The garbage collector waits until the end: the
        caches hold many objects, and its passes over them, found nothing and took half the
        time of a sweep of distinct networks. At the end, what exists is set aside from its
        passes (``gc.freeze``; :func:`sweep` undoes it): otherwise its first pass goes over
        everything the chunk added to the caches, a fifth of the time again."""
        if not gc.isenabled():
            return [self.variant(i) for i in range(start, stop)]
        gc.disable()
        try:
            return [self.variant(i) for i in range(start, stop)]
        finally:
            gc.freeze()
            gc.enable()


# ---------------------------------------------------------------------------- running

_worker: Evaluator | None = None


def _init_worker(text, name, grid, convention, dtype, compile=None):
    global _worker
    _worker = Evaluator(parse_spec(text, name), grid, convention, dtype, compile)


def _run_chunk(bounds: tuple[int, int]) -> list[Variant]:
    return _worker.run(*bounds)


def chunk_size(grid: Grid) -> int:
    """Consecutive variants per task: whole multiples of the inputs × batches of one build, so
    that a network is built by one worker. When one network has more variants than that (a grid
    of one network over many inputs and batches), its variants are split instead, at whole
    multiples of the batches of one input where those are few enough, so that such grids use
    every core too; a worker then builds that network again, which costs less than a chunk."""
    inner = len(grid.inputs) * len(grid.batches)
    if inner <= CHUNK_TARGET:
        return inner * max(1, round(CHUNK_TARGET / inner))
    batches = len(grid.batches)
    return batches * max(1, round(CHUNK_TARGET / batches)) if batches <= CHUNK_TARGET else CHUNK_TARGET


def sweep(text: str, name: str | None, grid: Grid, *, convention: str = "standard",
          dtype: str = "fp32", jobs: int | None = None, compile: bool | None = None) -> Iterator[Variant]:
    """Every variant of ``grid`` in order, as a stream. ``jobs`` worker processes (default:
    every core when the grid has at least PARALLEL_FROM variants, else 1). ``compile``: whether
    to compile the spec into straight-line programs over the swept numbers (calc.sweep_compile;
    default: where one program would answer at least COMPILE_FROM networks); the rows are the
    same either way."""
    spec = parse_spec(text, name)
    evaluator = Evaluator(spec, grid, convention, dtype, compile)   # checks convention and dtype first
    check_size(grid)
    total = grid.size
    if jobs is None:
        jobs = (os.cpu_count() or 1) if total >= PARALLEL_FROM else 1
    if not isinstance(jobs, int) or isinstance(jobs, bool) or not 1 <= jobs <= MAX_JOBS:
        raise SpecError(f"jobs must be a whole number from 1 to {MAX_JOBS}, got {clip(jobs)}")
    # More workers than chunks or cores would only cost memory.
    jobs = min(jobs, os.cpu_count() or 1, -(-total // chunk_size(grid)))
    step = chunk_size(grid)
    if jobs <= 1 or total <= step:
        frozen = gc.get_freeze_count()
        try:
            for start in range(0, total, step):
                yield from evaluator.run(start, min(start + step, total))
        finally:
            if not frozen:   # the caller's own frozen objects (if any) stay so
                gc.unfreeze()
        return
    yield from _parallel(text, name, grid, convention, dtype, jobs, step, total, compile)


def _parallel(text, name, grid, convention, dtype, jobs, step, total, compile=None) -> Iterator[Variant]:
    from concurrent.futures import ProcessPoolExecutor
    bounds = ((s, min(s + step, total)) for s in range(0, total, step))
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                             initargs=(text, name, grid, convention, dtype, compile)) as pool:
        # A bounded window of chunks in flight: results stay in order and memory stays small.
        window = []
        try:
            for b in bounds:
                window.append(pool.submit(_run_chunk, b))
                if len(window) >= 4 * jobs:
                    yield from window.pop(0).result()
            while window:
                yield from window.pop(0).result()
        finally:
            for fut in window:      # the reader stopped early: drop the work not yet started
                fut.cancel()


# ---------------------------------------------------------------------------- selecting

def _totals(grid: Grid) -> tuple[str, ...]:
    from .sweep_phase import COLUMNS
    return (*TOTALS, *(COLUMNS if grid.phase else ()), *(TIMES if grid.hardware else ()))


def columns(grid: Grid) -> tuple[str, ...]:
    """Names usable in --sort, --filter and --pareto (latency and throughput with a hardware)."""
    return ("index", *grid.names, "batch", *_totals(grid))


def column(grid: Grid, v: Variant, name: str):
    """One column of a variant (totals are None for an invalid variant)."""
    if name in _totals(grid) or name == "index":
        return getattr(v, name)
    values, _, batch = grid.point(v.index)
    return batch if name == "batch" else values[grid.names.index(name)]


def values_of(grid: Grid, v: Variant) -> dict[str, Any]:
    """A variant as a flat mapping of column -> value, plus ``input`` (the shape, or None)."""
    values, shape, batch = grid.point(v.index)
    row = dict(zip(grid.names, values))
    row.update(index=v.index, batch=batch, input=shape, params=v.params, macs=v.macs, flops=v.flops,
               param_bytes=v.param_bytes, activation_bytes=v.activation_bytes)
    if grid.hardware:
        row.update(latency=v.latency, throughput=v.throughput)
    if grid.phase:
        row.update(kv_bytes=v.kv_bytes, macs_per_token=v.macs_per_token, flops_per_token=v.flops_per_token)
    return row


def compile_filter(text: str, grid: Grid) -> Callable[[Variant], bool]:
    """A filter such as ``macs < 2e9 and width >= 0.5`` over the sweep's columns; an invalid
    variant passes only filters that use no totals."""
    allowed = columns(grid)
    if len(text) > MAX_EXPR_CHARS:
        raise SpecError(f"--filter: an expression of {len(text):,} characters is longer than "
                        f"{MAX_EXPR_CHARS} characters ({clip(text, 40)})")
    names = names_in(text)
    unknown = sorted(names - set(allowed))
    if unknown:
        raise SpecError(f"--filter {text!r}: unknown column {unknown[0]!r} (columns: {', '.join(allowed)})")
    try:
        fn = compile_expr(text)
    except SpecError as err:
        raise SpecError(f"--filter {text!r}: {err.message}") from None
    uses_totals = bool(names & set(_totals(grid)))

    def keep(v: Variant) -> bool:
        if uses_totals and v.error is not None:
            return False
        try:
            return bool(fn(values_of(grid, v)))
        except _Undefined as exc:  # pragma: no cover - names checked above
            raise SpecError(f"--filter: unknown column {exc.name!r}") from None
        except CalcError as err:
            raise SpecError(f"--filter {text!r}: {err.message}") from None
        except TypeError as exc:
            raise SpecError(f"--filter {text!r}: {exc}") from None
    return keep


def parse_order(text: str, grid: Grid) -> tuple[str, bool]:
    """'macs' -> ('macs', False); '-macs' -> ('macs', True): descending for --sort, larger is
    better for --pareto."""
    name = text.strip()
    descending = name.startswith("-")
    name = name.lstrip("-+").strip()
    if name not in columns(grid):
        raise SpecError(f"unknown column {name!r} (columns: {', '.join(columns(grid))})")
    return name, descending


def _order_key(value):
    # Numbers before words, so that a variable with values of both kinds still sorts.
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def sort_variants(grid: Grid, variants: list[Variant], key: str, descending: bool = False) -> list[Variant]:
    """Sorted by one column; invalid variants (no totals) last, in grid order."""
    valid = [v for v in variants if column(grid, v, key) is not None]
    invalid = [v for v in variants if column(grid, v, key) is None]
    valid.sort(key=lambda v: v.index)
    # Python's sort is stable, also in reverse: equal values keep grid order either way.
    valid.sort(key=lambda v: _order_key(column(grid, v, key)), reverse=descending)
    return valid + invalid


def pareto(points: Sequence[tuple | None]) -> list[bool]:
    """For each (a, b) (None: not comparable), whether no other point is at least as small in
    both and smaller in one. O(n log n)."""
    order = sorted((i for i, p in enumerate(points) if p is not None), key=lambda i: points[i])
    flags = [False] * len(points)
    best_b = None            # the smallest b among points with a smaller a
    k = 0
    while k < len(order):
        a = points[order[k]][0]
        group = []
        while k < len(order) and points[order[k]][0] == a:
            group.append(order[k])
            k += 1
        low = points[group[0]][1]          # sorted by (a, b): the group's smallest b comes first
        if best_b is None or low < best_b:
            for i in group:
                if points[i][1] == low:
                    flags[i] = True
            best_b = low
    return flags


def pareto_flags(grid: Grid, variants: Sequence[Variant], cols: Sequence[tuple[str, bool]]) -> list[bool]:
    """Pareto-optimal variants for two columns, each minimised unless flagged 'larger is better'."""
    if len(cols) != 2:
        raise SpecError("--pareto takes two columns, e.g. macs,params")

    def point(v):
        pair = []
        for name, larger in cols:
            value = column(grid, v, name)
            if value is None:
                return None
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise SpecError(f"--pareto: column {name!r} has a value that is not a number ({value!r})")
            pair.append(-value if larger else value)
        return tuple(pair)
    return pareto([point(v) for v in variants])


def split_values(text: str) -> list[str]:
    """'0.5,[3, 4],1' -> ['0.5', '[3, 4]', '1']: commas inside brackets belong to a list value."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_values(text: str) -> list:
    """'0.5,0.75,1' -> [0.5, 0.75, 1]; '[2,2,2,2],[3,4,6,3]' -> two lists (each value is read
    as a YAML scalar or a flow list of scalars)."""
    import math

    from .spec.loader import parse_value
    out = []
    for part in split_values(text):
        if not part:
            raise SpecError(f"empty value in {clip(text)}")
        try:
            value = parse_value(part)
        except CalcError as err:
            if "YAML" in err.message and "ambiguous" not in err.message:
                value = part    # not YAML: a word or an expression
            else:
                raise SpecError(err.message) from None
        scalar = (int, float, str, bool)
        if value is None or not (isinstance(value, scalar) or
                                 isinstance(value, list) and all(isinstance(x, scalar) for x in value)):
            raise SpecError(f"expected numbers, true/false, words or lists of them, got {clip(part)}")
        if any(isinstance(x, float) and not math.isfinite(x) for x in (value if isinstance(value, list) else [value])):
            raise SpecError(f"expected finite numbers, got {clip(part)}")
        out.append(value)
    return out
