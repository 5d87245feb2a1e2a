"""What an ``expect:`` may state: one entry per quantity, read from an analysed result.

A new figure (activation memory, KV cache) becomes checkable by adding one entry here; the
JSON Schema (`calc schema`) and the error for an unknown key list these names.
"""
from __future__ import annotations

from typing import Callable, NamedTuple


class Quantity(NamedTuple):
    name: str
    what: str
    # (analysis, result, dtype bytes) -> the actual value; MACs and FLOPs are for the batch the
    # analysis was made with (1 unless the expectation says otherwise).
    read: Callable
    # the explanation section that derives it (see calc.check.derive)
    section: str


QUANTITIES: dict[str, Quantity] = {q.name: q for q in (
    Quantity("params", "parameters (weights + bias)", lambda a, r, size: r.params, "parameters"),
    Quantity("weights", "weights", lambda a, r, size: r.weights, "parameters"),
    Quantity("bias", "bias parameters", lambda a, r, size: r.bias, "parameters"),
    Quantity("buffers", "buffers (running statistics)", lambda a, r, size: r.buffers, "parameters"),
    Quantity("macs", "multiply-accumulates under the convention", lambda a, r, size: a.macs_of(r), "operations"),
    Quantity("flops", "floating-point operations under the convention", lambda a, r, size: a.flops_of(r),
             "operations"),
    Quantity("output", "the output shape (per sample)", lambda a, r, size: tuple(r.output_shape), "output"),
    Quantity("bytes", "parameter memory: params × bytes of the dtype", lambda a, r, size: r.params * size,
             "parameters"),
)}

# Keys of an `expect:` that are settings, not quantities.
SETTINGS = ("convention", "dtype")
