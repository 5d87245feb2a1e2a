"""Time on hardware: a roofline per layer built on exact bytes moved. Computes; never prints.

For every leaf layer of an :class:`~calc.analysis.Analysis` (a folded run of identical layers
once, with its count):

    ops        = the layer's FLOPs under the analysis's convention (whole batch)
    bytes      = weights + inputs + outputs + KV read + KV written + intermediates (see traffic)
    intensity  = ops / bytes                           (FLOPs per byte, an exact Fraction)
    t_compute  = ops / (peak[dtype] · e_compute)
    t_memory   = bytes / (bandwidth · e_memory)
    time       = max(t_compute, t_memory)              (seconds, exact)
    bound      = 'compute' if t_compute ≥ t_memory else 'memory'

and the model's time is the sum over layers (one kernel after another, none overlapping). This
is a lower bound: no launch overhead, no cache misses beyond the counted traffic, every kernel
at the stated fraction of peak. Efficiencies (fractions of the peaks) come, most specific first,
from the options (``'<layer type>.compute'``, ``'<layer type>.memory'``, then ``'compute'`` and
``'memory'``), then from the hardware's own ``efficiency``, else 1.

:func:`roofline` is the API (the HTML roofline plot is built on it); :mod:`calc.roofline.phases`
times the inference phases of token models (prefill, decode, a whole generation).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Mapping

from ..analysis import DTYPE_BYTES, Analysis
from ..errors import SpecError
from ..hardware import Hardware
from ..inference import KV_BYTES, leaf_rows
from .traffic import FIELDS, RULES, Sizes, Traffic, attention_kernels, traffic

ATTENTION = ("eager", "fused")
ASSUMPTIONS = ("a roofline lower bound: each layer takes max(FLOPs / (peak × compute efficiency), "
               "bytes moved / (bandwidth × memory efficiency)), layers run one after another with no launch "
               "overhead, every tensor crosses device memory once per kernel (weights, inputs and outputs read "
               "or written once; KV cache and attention intermediates as listed)")


@dataclass(frozen=True)
class Options:
    """How to time a model. ``dtype`` is the peak used (default: the analysis's dtype);
    ``weights``: a quantised weight format of :mod:`calc.quant` for the weight matrices;
    ``kv_dtype``: the KV cache's dtype (default: the analysis's); ``attention``: 'eager'
    (scores and probabilities go through memory) or 'fused' (a FlashAttention-style kernel
    keeps them on chip); ``efficiency``: fractions of peak by key (see the module docstring)."""

    dtype: str | None = None
    weights: str | None = None
    group_size: int | None = None
    scale_dtype: str = "fp16"
    zero_point: bool = False
    kv_dtype: str | None = None
    attention: str = "eager"
    efficiency: Mapping[str, Fraction] = field(default_factory=dict)


@dataclass(frozen=True)
class Part:
    """One kernel of a layer: its FLOPs, its bytes, and the two times of the roofline."""

    name: str
    flops: int
    traffic: Traffic
    compute_time: Fraction   # seconds
    memory_time: Fraction

    @property
    def bytes(self) -> int:
        return self.traffic.total

    @property
    def time(self) -> Fraction:
        return max(self.compute_time, self.memory_time)

    @property
    def bound(self) -> str:
        if not self.flops and not self.bytes:
            return "none"
        return "compute" if self.compute_time >= self.memory_time else "memory"


@dataclass(frozen=True)
class LayerTime:
    """One row: a leaf layer (``count`` identical ones for a folded run; everything here covers
    them all), timed as the sum of its kernels (``parts``; one for most layers)."""

    name: str
    type: str
    count: int
    parts: tuple[Part, ...]

    @property
    def flops(self) -> int:
        return sum(p.flops for p in self.parts)

    @property
    def traffic(self) -> Traffic:
        return Traffic(*(sum(getattr(p.traffic, f) for p in self.parts) for f in FIELDS))

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.parts)

    @property
    def time(self) -> Fraction:
        return sum((p.time for p in self.parts), Fraction(0))

    @property
    def compute_time(self) -> Fraction:
        return sum((p.compute_time for p in self.parts), Fraction(0))

    @property
    def memory_time(self) -> Fraction:
        return sum((p.memory_time for p in self.parts), Fraction(0))

    @property
    def bound(self) -> str:
        """'compute' or 'memory': the bound of the kernels taking most of the layer's time
        ('none' for a layer that moves nothing)."""
        if len(self.parts) == 1:
            return self.parts[0].bound
        by = {"compute": Fraction(0), "memory": Fraction(0)}
        for p in self.parts:
            if p.bound in by:
                by[p.bound] += p.time
        if not by["compute"] and not by["memory"]:
            return "none"
        return "compute" if by["compute"] >= by["memory"] else "memory"

    @property
    def intensity(self) -> Fraction | None:
        """FLOPs per byte moved (None when nothing moves)."""
        return Fraction(self.flops, self.bytes) if self.bytes else None

    @property
    def attained(self) -> Fraction | None:
        """FLOPs per second the roofline allows this layer: flops / time (the y of a roofline plot;
        None for a layer that takes no time)."""
        t = self.time
        return Fraction(self.flops) / t if t else None


@dataclass(frozen=True)
class Roofline:
    hardware: Hardware
    dtype: str               # the peak's dtype
    peak: int                # operations per second
    batch: int
    attention: str
    rows: tuple[LayerTime, ...]
    weight_memory: int = 0   # bytes every weight and buffer takes in device memory (quantised as asked)

    @property
    def flops(self) -> int:
        return sum(r.flops for r in self.rows)

    @property
    def traffic(self) -> Traffic:
        return Traffic(*(sum(getattr(r.traffic, f) for r in self.rows) for f in FIELDS))

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.rows)

    @property
    def time(self) -> Fraction:
        """Seconds for one pass of the whole batch (exact)."""
        return sum((r.time for r in self.rows), Fraction(0))

    @property
    def throughput(self) -> Fraction | None:
        """Samples per second: batch / time (None for a pass that takes no time)."""
        t = self.time
        return Fraction(self.batch) / t if t else None

    @property
    def intensity(self) -> Fraction | None:
        return Fraction(self.flops, self.bytes) if self.bytes else None

    def share(self, bound: str) -> Fraction:
        """The fraction of the time spent in kernels with this bound."""
        t = self.time
        return sum((p.time for r in self.rows for p in r.parts if p.bound == bound), Fraction(0)) / t if t \
            else Fraction(0)


def efficiency(options: Options, hardware: Hardware, layer_type: str, which: str) -> Fraction:
    for key in (f"{layer_type}.{which}", which):
        if key in options.efficiency:
            return Fraction(options.efficiency[key])
    return Fraction(hardware.efficiency.get(which, 1))


def check_efficiency(values: Mapping[str, Fraction]) -> None:
    for key, v in values.items():
        kind, _, which = key.rpartition(".")
        if which not in ("compute", "memory") or (kind and kind not in RULES):
            raise SpecError(f"efficiency {key!r}: expected compute, memory, or <layer type>.compute / .memory "
                            "(e.g. linear.compute)")
        if not 0 < v <= 1:
            raise SpecError(f"efficiency {key}={v}: a fraction of peak, above 0 and at most 1")


def weight_bytes_of(a: Analysis, options: Options):
    """A function: leaf result -> bytes of all the weights it reads (its matrices quantised as
    ``options.weights`` says, everything else in the analysis's dtype)."""
    size = DTYPE_BYTES[a.dtype]
    if not options.weights:
        if options.group_size or options.zero_point:
            raise SpecError("--group-size and --zero-point go with --weights FORMAT")

        def plain(r, experts_only: bool = False) -> int:
            if experts_only:
                f = r.facts
                return f["experts"] * (f["expert_w"] + f["expert_b"]) * size
            return (r.facts["params"] + r.buffers) * size
        return plain
    from ..quant import FORMATS, _matrices, matrix_bytes, quantised_weights
    quantised_weights(a, options.weights, options.group_size, options.scale_dtype, options.zero_point)  # checks
    group = options.group_size if options.group_size is not None else FORMATS[options.weights][1]

    def matrix(rows: int, cols: int) -> int:
        return matrix_bytes(rows, cols, options.weights, group, options.scale_dtype, options.zero_point)

    def quantised(r, experts_only: bool = False) -> int:
        mats = _matrices(r._replace(tied_to=None))   # a tied head still reads the matrix it shares
        if experts_only:
            f = r.facts
            expert = mats[: f["experts"] * f["mats"]]   # the routed experts come first
            return sum(matrix(*m) for m in expert) + f["experts"] * f["expert_b"] * size
        elements = sum(m[0] * m[1] for m in mats)
        return sum(matrix(*m) for m in mats) + (r.facts["params"] + r.buffers - elements) * size
    return quantised


def roofline(a: Analysis, hardware: Hardware, options: Options = Options()) -> Roofline:
    """Per-layer times of one pass of ``a`` (its batch) on ``hardware``; see the module docstring."""
    if options.attention == "sdpa":     # PyTorch's name for the fused kernels (as calc memory says it)
        options = dataclasses.replace(options, attention="fused")
    if options.attention not in ATTENTION:
        raise SpecError(f"unknown attention kernel '{options.attention}'; known: {', '.join(ATTENTION)} (sdpa: fused)")
    check_efficiency(options.efficiency)
    dtype = options.dtype or a.dtype
    peak = hardware.peak_for(dtype)
    kv = options.kv_dtype or a.dtype
    if kv not in KV_BYTES:
        raise SpecError(f"unknown KV-cache dtype '{kv}'; known: {', '.join(KV_BYTES)}")
    sizes = Sizes(act=DTYPE_BYTES[a.dtype], kv=KV_BYTES[kv], batch=a.batch,
                  weight_bytes=weight_bytes_of(a, options), attention=options.attention)
    rows = []
    for name, r, count in leaf_rows(a):
        flops = a.flops_of(r)
        kernels = attention_kernels(r, sizes, flops) if r.kind == "attention" else [(r.kind, flops, traffic(r, sizes))]
        ec = peak * efficiency(options, hardware, r.kind, "compute")
        em = hardware.bandwidth * efficiency(options, hardware, r.kind, "memory")
        if len(kernels) == 1:     # the analysis's own total for the run (exact, as in its reports)
            kernels = [(kernels[0][0], a.flops_of(r, count), kernels[0][2].scaled(count))]
        else:
            kernels = [(k, count * ops, moved.scaled(count)) for k, ops, moved in kernels]
        parts = tuple(Part(k, ops, moved, Fraction(ops) / ec, Fraction(moved.total) / em) for k, ops, moved in kernels)
        rows.append(LayerTime(name, r.kind, count, parts))
    if options.weights:
        from ..quant import quantised_weights
        held = quantised_weights(a, options.weights, options.group_size, options.scale_dtype, options.zero_point).bytes
    else:
        held = (a.root.params + a.root.buffers) * DTYPE_BYTES[a.dtype]
    return Roofline(hardware, dtype, peak, a.batch, options.attention, tuple(rows), held)


def ridge(hardware: Hardware, dtype: str, options: Options = Options()) -> Fraction:
    """The intensity (FLOPs per byte) where the roof turns: peak · e_c / (bandwidth · e_m)."""
    return (hardware.peak_for(dtype) * efficiency(options, hardware, "", "compute")
            / (hardware.bandwidth * efficiency(options, hardware, "", "memory")))


__all__ = ["ASSUMPTIONS", "ATTENTION", "LayerTime", "Part", "Options", "Roofline", "Traffic", "ridge", "roofline"]
