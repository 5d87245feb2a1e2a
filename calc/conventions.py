"""Counting conventions: data that decides what counts as a MAC and a FLOP.

A convention maps a layer (by type, then by kind, then ``*``) to an expression over the
layer's facts — the elementary operations from :mod:`calc.layers` plus ``in`` and ``out``
(elements per sample), ``params``, ``weights`` and ``biases``. The formulas never look at the
convention; the convention never recomputes a formula.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ConventionError
from .expr import compile_expr

# Every fact name a rule may use; missing ones are zero for a layer.
OP_NAMES = ("mac", "dots", "bias_add", "add", "mul", "div", "cmp", "exp", "sqrt", "fn")
BASE_FACTS = dict.fromkeys(OP_NAMES, 0)


@dataclass(frozen=True)
class Convention:
    name: str
    description: str
    macs: Mapping[str, str]
    flops: Mapping[str, str] | None = None   # None: FLOPs = 2 × MACs
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def rule(self, table: Mapping[str, str], type_name: str, kind: str) -> str:
        for key in (type_name, kind, "*"):
            if key in table:
                return table[key]
        raise ConventionError(f"convention '{self.name}' cannot count layer type '{type_name}'")

    def rules(self, type_name: str, kind: str) -> tuple[str, str]:
        """The (MAC rule, FLOP rule) texts for a layer type."""
        macs = self.rule(self.macs, type_name, kind)
        flops = self.rule(self.flops, type_name, kind) if self.flops is not None else f"2 * ({macs})"
        return macs, flops

    def count(self, type_name: str, kind: str, facts: Mapping[str, Any]) -> tuple[int, int]:
        """(MACs, FLOPs) of one layer for one sample."""
        compiled = self._cache.get(type_name)
        if compiled is None:
            compiled = tuple(compile_expr(r) for r in self.rules(type_name, kind))
            self._cache[type_name] = compiled
        env = facts
        return int(compiled[0](env)), int(compiled[1](env))


# Kinds whose `mac` fact is counted by `standard`: attention's are its projections and both
# attention matmuls (Q·Kᵀ, attention·V), in full even when causal; recurrent layers' are W_ih·x and
# W_hh·h at every step.
_DOT = ("conv", "conv_transpose", "linear", "matmul", "attention", "recurrent")

CONVENTIONS: dict[str, Convention] = {}


def _add(conv: Convention) -> Convention:
    if conv.name in CONVENTIONS:
        raise RuntimeError(f"convention {conv.name!r} defined twice")
    CONVENTIONS[conv.name] = conv
    return conv


_add(Convention(
    "standard",
    "Multiply-accumulates of convolutions, linear layers, matrix products, attention (projections "
    "and both attention matmuls, in full even when causal) and recurrent layers, without bias; "
    "FLOPs = 2 × MACs. Activations, pooling, normalisation and element-wise sums cost nothing. "
    "This is what torch.utils.flop_counter reports (FLOPs) and what torchvision publishes as GFLOPS "
    "(torch's counter on CPU sees neither the attention matmuls nor LSTMs; torchvision's ViT figures "
    "include the attention matmuls).",
    macs={**{k: "mac" for k in _DOT}, "*": "0"},
))


def get(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ConventionError(f"unknown convention '{name}'; known: {', '.join(CONVENTIONS)}") from None
