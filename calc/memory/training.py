"""Training and inference memory per device, exact in bytes, under stated conventions.

Training keeps, per device: the weights, the gradients, the optimizer states (see
:mod:`calc.memory.optimizers`), under mixed precision an fp32 master copy or 16-bit working
copies (``master``: which convention), and the activations autograd saves for backward for one
micro-batch (from :mod:`calc.memory.activations`). ZeRO (DeepSpeed; FSDP's shardings are the same
three cuts) partitions across the data-parallel devices: stage 1 the optimizer states (master
copy included), stage 2 the gradients too, stage 3 (FSDP FULL_SHARD) the weights too; a device
holds at most ⌈n/dp⌉ of n elements (the padded flat partition). Tensor parallelism (Megatron
style) splits the weight matrices of linear, attention, MLA and MoE layers and the embedding
tables across ``tp`` devices (⌈n/tp⌉ each); biases, norms and convolutions stay whole.

Precision (``precision``) and the two conventions of mixed precision (``master``):

* ``fp32``: weights, gradients, states fp32. ``bf16``/``fp16``: all 16-bit (states like the parameter).
* ``bf16-mixed``/``fp16-mixed`` with ``master="amp"`` (PyTorch autocast, Lightning, HF Trainer's
  fp16/bf16): the parameters stay fp32 (so do gradients and states); autocast casts the weights of
  matmul layers (linear, convolution, attention, MLA, MoE, recurrent) to 16 bits and caches the
  copies for the forward pass; backward uses them: 2 B per such parameter (under ZeRO-3 only the
  gathered layer's copy, the largest layer's).
* ``master="copy"`` (Megatron-LM, DeepSpeed fp16/bf16): the model's weights and gradients are 16-bit;
  the optimizer keeps an fp32 master copy (4 B/param) beside fp32 states.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..analysis import DTYPE_BYTES, Analysis, analyze
from ..errors import SpecError
from ..inference import leaf_counts
from . import optimizers as opt

from ..choices import CHECKPOINTING, MASTERS, PRECISIONS  # noqa: E402  (the command line reads them there)
# the layer kinds whose weights autocast casts (matmul-based ops) and tensor parallelism splits
CAST_KINDS = {"linear", "conv", "conv_transpose", "attention", "mla", "moe", "recurrent"}
TP_KINDS = {"linear", "attention", "mla", "moe", "embedding"}
MAX_SEARCH = 2**40


@dataclass(frozen=True)
class Part:
    name: str          # weights, buffers, working copies, master weights, gradients, optimizer states, ...
    bytes: int | None  # per device; None: not computed (said in note)
    formula: str
    note: str = ""


@dataclass(frozen=True)
class Memory:
    """A memory breakdown per device; ``total`` sums the parts that are computed."""

    mode: str                         # 'training' or 'inference'
    settings: dict
    parts: tuple[Part, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        return sum(p.bytes for p in self.parts if p.bytes is not None)

    @property
    def complete(self) -> bool:
        return all(p.bytes is not None for p in self.parts)

    def part(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)


def _ceil(n: int, d: int) -> int:
    return -(-n // d)


def _counts(a: Analysis, tp: int):
    """(all parameters, trainable, cast parameters, largest cast layer) per device under tp."""
    split = rep = split_t = rep_t = cast = largest = 0
    for r, k in leaf_counts(a):
        p = r.params
        if not p:
            continue
        fam = r.layer.kind      # the family (r.kind is the layer type)
        s = r.weights if fam in TP_KINDS and tp > 1 else 0
        split += k * s
        rep += k * (p - s)
        if r.frozen == 0:
            split_t += k * s
            rep_t += k * (p - s)
        if fam in CAST_KINDS:
            cast += k * p
            largest = max(largest, _ceil(s, tp) + p - s)
    return _ceil(split, tp) + rep, _ceil(split_t, tp) + rep_t, _ceil(cast, tp) if tp > 1 else cast, largest


def buffer_bytes(a: Analysis, size: int) -> int:
    """Buffers in the float dtype ``size``; batch norm's num_batches_tracked is an int64 (8 B)."""
    n = 0
    for r, k in leaf_counts(a):
        if r.buffers:
            track = r.layer.kind == "batchnorm" and getattr(r.layer, "track_running_stats", False)
            n += k * ((r.buffers - 1) * size + 8 if track else r.buffers * size)
    return n


def _too_many(a: Analysis, limit: int | None) -> str:
    if limit is not None and a.root.leaves > limit:
        return (f"not computed here: the model runs {a.root.leaves:,} layers and this report walks at most "
                f"{limit:,} (calc memory walks up to calc.memory.activations.MAX_OPS)")
    return ""


def _walked(a: Analysis, dtype: str, attention: str, shared: dict | None):
    """From ``shared`` (a dict one caller passes to both training_memory and inference_memory of
    the same analysis): (saved bytes, inference peak or None) of one walk, or the CalcError that
    walk raised; None without ``shared``. Made on first use, keyed by what the walk depends on."""
    from ..errors import CalcError
    from .activations import training_and_inference
    if shared is None:
        return None
    key = (id(a), DTYPE_BYTES[dtype], attention)
    if key not in shared:
        try:
            shared[key] = training_and_inference(a, dtype=dtype, attention=attention)
        except CalcError as err:
            shared[key] = err
    return shared[key]


def _saved(a: Analysis, dtype: str, checkpointing: str, attention: str,
           limit: int | None = None, shared: dict | None = None) -> tuple[int | None, str]:
    """(bytes, "") or (None, why not): a layer without a rule leaves the part uncounted, said."""
    from ..errors import CalcError
    from .activations import saved_activations
    if _too_many(a, limit):
        return None, _too_many(a, limit)
    try:
        both = _walked(a, dtype, attention, shared) if checkpointing == "none" else None
        if isinstance(both, CalcError):
            raise both
        if both is not None:
            return both[0], ""
        return saved_activations(a, dtype=dtype, checkpointing=checkpointing, attention=attention).bytes, ""
    except CalcError as err:
        return None, f"not computed: {err.message}"


def _peak(a: Analysis, dtype: str, attention: str, limit: int | None = None,
          shared: dict | None = None) -> tuple[int | None, str]:
    from ..errors import CalcError
    from .activations import inference_peak
    if _too_many(a, limit):
        return None, _too_many(a, limit)
    both = _walked(a, dtype, attention, shared)
    if isinstance(both, tuple) and both[1] is not None:
        return both[1], ""
    try:     # no shared walk, or one that cannot answer for inference (or failed): walk again
        return inference_peak(a, dtype=dtype, attention=attention).bytes, ""
    except CalcError as err:
        return None, f"not computed: {err.message}"


def training_memory(a: Analysis, *, optimizer: str = "adamw", precision: str = "fp32", master: str = "amp",
                    accumulate: int = 1, checkpointing: str = "none", attention: str = "eager",
                    zero: int = 0, devices: int = 1, tp: int = 1, walk_limit: int | None = None,
                    shared: dict | None = None) -> Memory:
    """Memory per device of one training step of ``a`` (its batch: the batch per data-parallel
    replica per optimizer step, run as ``accumulate`` micro-batches). ``walk_limit``: leave the
    activations uncounted (said) for a model of more layers, to bound a report's time.
    ``shared``: a dict passed also to :func:`inference_memory` of the same analysis, so that the
    two walk the activations once where they can (the same figures)."""
    opt.check(optimizer)
    if precision not in PRECISIONS:
        raise SpecError(f"unknown precision '{precision}'; known: {', '.join(PRECISIONS)}")
    if master not in MASTERS:
        raise SpecError(f"unknown master-weights convention '{master}'; known: amp, copy")
    if checkpointing not in CHECKPOINTING:
        raise SpecError(f"unknown checkpointing '{checkpointing}'; known: {', '.join(CHECKPOINTING)}")
    if zero not in (0, 1, 2, 3):
        raise SpecError(f"--zero takes a stage 0, 1, 2 or 3, got {zero}")
    if devices % tp:
        raise SpecError(f"--devices {devices} is not a multiple of --tp {tp}")
    if a.batch % accumulate:
        raise SpecError(f"--accumulate {accumulate} does not divide the batch {a.batch}: every micro-batch "
                        "has the same size")
    dp = devices // tp
    if zero and dp == 1:
        zero_note = "ZeRO with one data-parallel device partitions nothing"
    else:
        zero_note = ""
    mixed = precision.endswith("-mixed")
    half = precision.split("-")[0]
    copy = mixed and master == "copy"
    w_size = 2 if precision in ("bf16", "fp16") or copy else 4
    state_size = 2 if precision in ("bf16", "fp16") else 4
    params, trainable, cast, largest = _counts(a, tp)

    def shard(n: int, stage: int) -> int:
        return _ceil(n, dp) if zero >= stage else n

    parts = []
    wb = shard(params, 3) * w_size
    parts.append(Part("weights", wb, f"{shard(params, 3):,} parameters × {w_size} B"
                      + (f" (⌈{params:,}/{dp}⌉, ZeRO-3)" if zero >= 3 and dp > 1 else "")))
    buf_size = 4 if mixed else DTYPE_BYTES.get(half, 4)
    parts.append(Part("buffers", buffer_bytes(a, buf_size), f"buffers × {buf_size} B (int64 counters 8 B)"))
    if mixed and not copy:
        n = largest if zero >= 3 and dp > 1 else cast
        parts.append(Part("working copies", n * 2, f"{n:,} parameters of matmul layers × 2 B ({half} autocast cache)"))
    if copy:
        m = shard(trainable, 1)
        parts.append(Part("master weights", m * 4, f"{m:,} trainable parameters × 4 B (fp32 master copy)"))
    g_size = 2 if copy or precision in ("bf16", "fp16") else 4
    g = shard(trainable, 2)
    parts.append(Part("gradients", g * g_size, f"{g:,} trainable parameters × {g_size} B"))
    if optimizer in opt.ELEMENTWISE:
        st = opt.elementwise(optimizer, shard(trainable, 1), state_size)
    else:
        if tp > 1 or (zero and dp > 1):
            raise SpecError(f"{optimizer}'s state depends on each tensor's shape; calc does not model how "
                            "tensor parallelism or ZeRO partitions it (use adam, adamw, sgd or sgd-momentum)")
        from .tensors import model_tensors
        tensors = model_tensors(a)
        st = opt.adafactor(tensors, state_size) if optimizer == "adafactor" else opt.adam8bit(tensors)
    parts.append(Part("optimizer states", st.bytes, st.formula))
    micro = a.batch // accumulate
    act_dtype = half if precision != "fp32" else "fp32"
    am = a if micro == a.batch else analyze(a.model, batch=micro, convention=a.convention, dtype=a.dtype,
                                            input_shape=tuple(a.input_shape))
    saved, why = _saved(am, act_dtype, checkpointing, attention, walk_limit, shared)
    parts.append(Part("saved activations", saved,
                      f"what autograd saves for one micro-batch of {micro:,} in {act_dtype}, checkpointing {checkpointing}",
                      why))
    notes = [n for n in (zero_note,) if n]
    if mixed:
        notes.append(f"mixed precision: every saved activation is counted in {half}; autocast runs some "
                     "operations (softmax, norms, losses) in fp32, whose saved outputs take 4 B")
    if tp > 1:
        notes.append("tensor parallelism: activations are counted whole on each device (calc does not "
                     "model their split), an upper bound")
    settings = {"optimizer": optimizer, "precision": precision, "master": master if mixed else None,
                "batch": a.batch, "micro_batch": micro, "accumulate": accumulate, "checkpointing": checkpointing,
                "attention": attention, "zero": zero, "devices": devices, "tp": tp, "dp": dp,
                "params": a.root.params, "trainable": a.root.params - a.root.frozen}
    return Memory("training", settings, tuple(parts), tuple(notes))


def inference_memory(a: Analysis, *, dtype: str | None = None, weights: str | None = None,
                     kv_dtype: str | None = None, attention: str = "eager", walk_limit: int | None = None,
                     shared: dict | None = None) -> Memory:
    """Weights (in ``dtype`` or a quantised ``weights`` format), KV cache of a sequence model and
    the peak of live activations of one forward pass of ``a``'s batch (``shared``: see
    :func:`training_memory`)."""
    dtype = dtype or a.dtype
    size = DTYPE_BYTES[dtype]
    parts = []
    if weights:
        from ..quant import quantised_weights
        q = quantised_weights(a, weights)
        parts.append(Part("weights", q.bytes, f"{q.matrices:,} weights of matrices in {weights} with "
                          f"{q.scales:,} scales + {q.other:,} other parameters and buffers × {size} B"))
    else:
        parts.append(Part("weights", a.root.params * size, f"{a.root.params:,} parameters × {size} B"))
        parts.append(Part("buffers", buffer_bytes(a, size), f"buffers × {size} B (int64 counters 8 B)"))
    from ..inference import kv_cache
    from ..inference import KV_BYTES
    kv = kv_cache(a, kv_dtype or (dtype if dtype in KV_BYTES else "fp32"))
    if kv.layers:
        parts.append(Part("KV cache", kv.bytes, f"{kv.bytes_per_sequence:,} B per sequence × batch {a.batch:,}"))
    peak, why = _peak(a, dtype, attention, walk_limit, shared)
    parts.append(Part("activation peak", peak, "the most bytes of activations alive at once (eager order)", why))
    settings = {"dtype": dtype, "weights": weights, "batch": a.batch, "attention": attention,
                "params": a.root.params}
    return Memory("inference", settings, tuple(parts))


@dataclass(frozen=True)
class Fit:
    limit: int        # bytes available per device
    largest: int      # the largest value that fits (0: not even 1)
    over: str         # 'batch' or 'context'
    total: int        # the per-device total at `largest` (0 when nothing fits)
    evaluations: int
    stopped_by: str = ""   # when the next value is impossible rather than too large: why


def fits(total_at, limit: int, *, over: str = "batch", step: int = 1, upper: int = MAX_SEARCH) -> Fit:
    """The largest multiple of ``step`` n ≤ ``upper`` whose ``total_at(n)`` ≤ ``limit`` bytes,
    by doubling then bisection over exact totals (the total grows with n). ``total_at`` may
    raise an error where n is impossible (a context beyond a model's positions): that n does
    not fit; an error at the first n tried is the user's to see."""
    from ..errors import CalcError
    evals = 0
    errors: dict = {}

    def ok(n: int):
        nonlocal evals
        evals += 1
        try:
            t = total_at(n)
        except CalcError as err:
            if evals == 1:
                raise
            errors[n] = err.message
            return None
        return t if t <= limit else None

    lo, lo_total = 0, 0
    hi = step
    while hi <= upper:
        t = ok(hi)
        if t is None:
            break
        lo, lo_total, hi = hi, t, hi * 2
    hi = min(hi, upper + step)
    while hi - lo > step:        # invariant: lo fits (or is 0), hi does not (or exceeds upper)
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            break
        t = ok(mid)
        if t is None:
            hi = mid
        else:
            lo, lo_total = mid, t
    return Fit(limit, lo, over, lo_total, evals, errors.get(hi, ""))
