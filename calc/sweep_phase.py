"""`calc sweep --phase prefill|decode|generate`: the inference phases of :mod:`calc.inference`
over a grid. Computes; never prints.

The phase's sizes are axes of the grid, after the spec's variables: ``context`` (the prompt
length for prefill and generate, the keys attended for decode) and, for generate, ``new`` (the
tokens generated). A variant's totals are those of the phase: the pass (prefill, one decode step)
or the whole generation, for the whole batch; it adds the KV cache after it (bytes for the batch,
in the KV dtype) and the MACs and FLOPs per token (per processed token for prefill and decode, per
generated token for generate; exact, a fraction where not whole).
"""
from __future__ import annotations

from fractions import Fraction

from .errors import SpecError
from .inference import PHASES, generate, run_phase

AXES = ("context", "new")            # the grid's phase axes, in this order, after the variables
COLUMNS = ("kv_bytes", "macs_per_token", "flops_per_token")


def phase_axes(phase: str | None, contexts, news) -> list[tuple[str, list[int]]]:
    """The phase's axes of a sweep (checked): [('context', [...])] and, for generate, ('new', [...])."""
    if phase is None:
        if contexts or news:
            raise SpecError("--context and --new go with --phase prefill, decode or generate")
        return []
    if phase not in PHASES:
        raise SpecError(f"unknown phase '{phase}'; known: {', '.join(PHASES)}")
    if not contexts:
        raise SpecError(f"sweep --phase {phase} needs --context N,N,... (the prompt length for prefill and "
                        "generate, the keys attended for decode)")
    if phase == "generate" and not news:
        raise SpecError("sweep --phase generate needs --new N,N,... (the tokens to generate)")
    if phase != "generate" and news:
        raise SpecError("--new goes with --phase generate")
    for name, values in (("context", contexts), ("new", news)):
        for v in values:
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 10**9:
                raise SpecError(f"--{name}: values must be whole numbers from 1 to 1,000,000,000, got {v!r}")
    return [("context", list(contexts))] + ([("new", list(news))] if phase == "generate" else [])


def phase_totals(model, phase: str, sizes: dict, batch: int, convention, dtype: str, kv_dtype: str | None = None):
    """(analysis giving params, param and activation bytes and the shapes; macs; flops; kv bytes;
    MACs per token; FLOPs per token; the pass itself, for a time on hardware: the Phase of
    calc.inference, or None for generate) of one variant."""
    context = sizes["context"]
    if phase == "generate":
        new = sizes["new"]
        g = generate(model, context, new, batch=batch, convention=convention, dtype=dtype, kv_dtype=kv_dtype)
        n = batch * new
        return (g.prefill.analysis, g.macs, g.flops, (g.last or g.prefill).kv.bytes,
                Fraction(g.macs, n), Fraction(g.flops, n), None)
    p = run_phase(model, phase, context, batch=batch, convention=convention, dtype=dtype, kv_dtype=kv_dtype)
    macs, flops = p.per_token
    t = p.analysis.totals
    return p.analysis, t.macs, t.flops, p.kv.bytes, macs, flops, p


def exact(x):
    """A per-token figure for JSON and CSV: an int when whole, else "a/b"."""
    if x is None or isinstance(x, int) or x.denominator != 1:
        return x if not isinstance(x, Fraction) else f"{x.numerator}/{x.denominator}"
    return x.numerator
