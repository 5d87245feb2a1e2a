"""Time of the inference phases of a token model (see :mod:`calc.inference`): prefill (time to
first token), one decode step at a context (time per output token), and a whole generation of
N new tokens after a prompt of P — the prefill, then N − 1 decode steps at contexts P + 1 …
P + N − 1, summed exactly. Computes; never prints.

The sum: between the edges of the sliding windows, every kernel's FLOPs and bytes are affine in
the context S (checked at the middle of each stretch, as :func:`calc.inference.generate` does),
so its compute and memory times are affine too, and the sum of their maximum over the integers of
a stretch splits at the one context where the two lines cross into two arithmetic series.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..errors import SpecError
from ..graph import Model
from ..hardware import Hardware
from ..inference import KVCache, _windows, run_phase
from . import Options, Roofline, roofline


@dataclass(frozen=True)
class PhaseTime:
    phase: str               # 'prefill' or 'decode'
    context: int             # the prompt length (prefill) or the keys attended over (decode)
    tokens: int              # tokens processed per sequence: P (prefill) or 1 (decode)
    roofline: Roofline
    kv: KVCache

    @property
    def time(self) -> Fraction:
        return self.roofline.time

    @property
    def tokens_per_second(self) -> Fraction | None:
        """Tokens processed per second, the whole batch: batch × tokens / time."""
        t = self.time
        return Fraction(self.roofline.batch * self.tokens) / t if t else None


def time_phase(model: Model, phase: str, context: int, hardware: Hardware, options: Options = Options(), *,
               batch: int = 1, convention: str = "standard", dtype: str = "fp32") -> PhaseTime:
    p = run_phase(model, phase, context, batch=batch, convention=convention, dtype=dtype, kv_dtype=options.kv_dtype)
    return PhaseTime(p.phase, p.context, p.tokens, roofline(p.analysis, hardware, options), p.kv)


@dataclass(frozen=True)
class GenerationTime:
    prompt: int
    new: int
    batch: int
    prefill: PhaseTime
    decode_time: Fraction    # the N − 1 decode steps together (seconds, exact)
    last: PhaseTime | None   # the last decode step (its KV cache is the final one)

    @property
    def time_to_first_token(self) -> Fraction:
        return self.prefill.time

    @property
    def time(self) -> Fraction:
        return self.prefill.time + self.decode_time

    @property
    def time_per_output_token(self) -> Fraction | None:
        """The mean decode step (the N − 1 tokens after the first); None when N = 1."""
        return self.decode_time / (self.new - 1) if self.new > 1 else None

    @property
    def tokens_per_second(self) -> Fraction | None:
        """New tokens per second over the whole generation, the whole batch: batch × N / time."""
        t = self.time
        return Fraction(self.batch * self.new) / t if t else None


def sum_max(ca: Fraction, cb: Fraction, ma: Fraction, mb: Fraction, a: int, b: int) -> Fraction:
    """Σ_{S=a}^{b} max(c(S), m(S)) for c and m affine in S with c(a)=ca, c(b)=cb, m(a)=ma, m(b)=mb."""
    if b == a:
        return max(ca, ma)
    dc, dm = (cb - ca) / (b - a), (mb - ma) / (b - a)

    def series(x0: Fraction, slope: Fraction, lo: int, hi: int) -> Fraction:   # Σ_{S=lo}^{hi} x0 + (S − a)·slope
        if hi < lo:
            return Fraction(0)
        n = hi - lo + 1
        return n * x0 + slope * Fraction((lo - a + hi - a) * n, 2)

    diff, slope = ca - ma, dc - dm       # c − m at a, and its slope
    if slope == 0:
        return series(ca, dc, a, b) if diff >= 0 else series(ma, dm, a, b)
    # c ≥ m where diff + (S − a)·slope ≥ 0
    root = a - diff / slope              # where the lines cross
    if slope > 0:                        # c ≥ m from the crossing on
        split = max(a, min(b + 1, -(-root.numerator // root.denominator)))   # first S ≥ root
        return series(ma, dm, a, split - 1) + series(ca, dc, split, b)
    split = max(a - 1, min(b, root.numerator // root.denominator))          # last S ≤ root
    return series(ca, dc, a, split) + series(ma, dm, split + 1, b)


def _steps_time(model: Model, lo: int, hi: int, hardware: Hardware, options: Options, run) -> Fraction:
    """The decode steps at contexts lo … hi together (exact; see the module docstring)."""
    if hi < lo:
        return Fraction(0)
    edges = sorted({lo, hi + 1, *(w + 1 for w in _windows(model) if lo < w + 1 <= hi)})
    total = Fraction(0)
    for a, b in zip(edges, edges[1:]):
        b -= 1
        ra, rb = run(a).roofline, run(b).roofline
        rm = run((a + b) // 2).roofline if b - a > 1 else None
        pa, pb = _parts(ra), _parts(rb)
        if len(pa) != len(pb) or (rm is not None and len(_parts(rm)) != len(pa)):
            raise SpecError(f"the layers differ between decode steps at contexts {a} and {b}; calc cannot sum them")
        pm = _parts(rm) if rm is not None else None
        mid = (a + b) // 2
        for k, (x, y) in enumerate(zip(pa, pb)):
            if pm is not None:
                z = pm[k]
                for f in ("compute_time", "memory_time"):
                    xa, xb, xm = getattr(x, f), getattr(y, f), getattr(z, f)
                    if xm * (b - a) != xa * (b - mid) + xb * (mid - a):
                        raise SpecError(f"the decode time is not affine in the context between {a} and {b}; "
                                        "calc cannot sum it in closed form")
            total += sum_max(x.compute_time, y.compute_time, x.memory_time, y.memory_time, a, b)
    return total


def _parts(r: Roofline) -> list:
    return [p for row in r.rows for p in row.parts]


def time_generation(model: Model, prompt: int, new: int, hardware: Hardware, options: Options = Options(), *,
                    batch: int = 1, convention: str = "standard", dtype: str = "fp32") -> GenerationTime:
    if new < 1:
        raise SpecError("--new must be at least 1 (the prefill yields the first new token)")
    cache: dict[int, PhaseTime] = {}

    def run(s: int) -> PhaseTime:
        if s not in cache:
            cache[s] = time_phase(model, "decode", s, hardware, options, batch=batch, convention=convention,
                                  dtype=dtype)
        return cache[s]

    pre = time_phase(model, "prefill", prompt, hardware, options, batch=batch, convention=convention, dtype=dtype)
    lo, hi = prompt + 1, prompt + new - 1
    steps = _steps_time(model, lo, hi, hardware, options, run)
    return GenerationTime(prompt, new, batch, pre, steps, run(hi) if hi >= lo else None)
