"""Optimizer states, exactly, per optimizer as its reference implementation allocates them.

* ``sgd``: torch.optim.SGD without momentum keeps no state.
* ``sgd-momentum``: one momentum buffer per parameter (``momentum_buffer``, like the parameter).
* ``adam`` / ``adamw``: two moments per parameter (``exp_avg``, ``exp_avg_sq``). PyTorch also keeps a
  ``step`` scalar per tensor, on the CPU unless ``capturable``/``fused``: not device memory.
* ``adafactor`` (Shazeer & Stern 2018, arXiv:1804.04235; as Hugging Face's ``transformers.Adafactor``
  and ``torch.optim.Adafactor`` allocate it, default ``beta1=None``: no first moment): the second
  moment of a tensor of two or more dimensions is factored into a row statistic of
  ∏shape[:-1] elements and a column statistic of ∏shape[:-2]·shape[-1]; a vector keeps a full
  second moment.
* ``adam8bit`` (bitsandbytes ``Adam8bit``/``AdamW8bit``, optimizer.py ``Optimizer2State.init_state``,
  bitsandbytes 0.50): a tensor of fewer than ``min_8bit_size`` = 4,096 elements keeps two fp32
  states (8 B/element); a larger one keeps two uint8 states (2 B/element) plus one fp32 absmax per
  block of 256 elements for each state (2·4·⌈n/256⌉ bytes); the two 256-entry fp32 quantisation
  maps (dynamic, unsigned dynamic) are shared by every tensor: 2·256·4 = 2,048 bytes once.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

from ..errors import SpecError

OPTIMIZERS = {
    "sgd": "torch.optim.SGD, momentum 0: no state",
    "sgd-momentum": "torch.optim.SGD with momentum: one buffer per parameter",
    "adam": "torch.optim.Adam: exp_avg and exp_avg_sq per parameter",
    "adamw": "torch.optim.AdamW: exp_avg and exp_avg_sq per parameter",
    "adafactor": "Adafactor (beta1=None): factored second moment (row + column) for tensors of 2+ dims",
    "adam8bit": "bitsandbytes Adam8bit/AdamW8bit: uint8 states, fp32 absmax per 256-element block",
}
# states per parameter of the element-wise optimizers
ELEMENTWISE = {"sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2}
BNB_MIN_8BIT = 4096       # bitsandbytes min_8bit_size default
BNB_BLOCK = 256           # bitsandbytes blockwise state quantisation block
BNB_QMAPS = 2 * 256 * 4   # the shared dynamic and unsigned-dynamic maps, fp32


@dataclass(frozen=True)
class OptimizerState:
    name: str
    bytes: int
    formula: str


def check(name: str) -> str:
    if name not in OPTIMIZERS:
        raise SpecError(f"unknown optimizer '{name}'; known: {', '.join(OPTIMIZERS)}")
    return name


def elementwise(name: str, trainable: int, state_bytes: int) -> OptimizerState:
    k = ELEMENTWISE[name]
    return OptimizerState(name, k * trainable * state_bytes,
                          f"{k} state{'s' if k != 1 else ''} × {trainable:,} trainable parameters × {state_bytes} B")


def adafactor(tensors, state_bytes: int) -> OptimizerState:
    """``tensors``: (shape, count, trainable) of every parameter tensor."""
    n = 0
    for shape, k, trainable in tensors:
        if not trainable:
            continue
        if len(shape) >= 2:
            n += k * (prod(shape[:-1]) + prod(shape[:-2]) * shape[-1])
        else:
            n += k * prod(shape)
    return OptimizerState("adafactor", n * state_bytes,
                          f"{n:,} second-moment statistics (rows + columns of each matrix, whole vectors) × "
                          f"{state_bytes} B")


def adam8bit(tensors) -> OptimizerState:
    small = big = blocks = 0
    for shape, k, trainable in tensors:
        if not trainable:
            continue
        e = prod(shape)
        if e < BNB_MIN_8BIT:
            small += k * e
        else:
            big += k * e
            blocks += k * -(-e // BNB_BLOCK)
    total = 8 * small + 2 * big + 8 * blocks + (BNB_QMAPS if big else 0)
    return OptimizerState("adam8bit", total,
                          f"8 B × {small:,} elements of tensors < {BNB_MIN_8BIT:,} + 2 B × {big:,} elements + "
                          f"2 × 4 B × {blocks:,} blocks of {BNB_BLOCK} + {BNB_QMAPS if big else 0:,} B of maps")
