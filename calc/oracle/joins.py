"""Builders for the join family: add, mul and concat of several inputs."""
from __future__ import annotations

import functools

import torch
from torch import nn

from .registry import batched_dim, builds


class JoinOp(nn.Module):
    """Combines a list of tensors: add (equal shapes: torch.stack refuses others; with
    broadcast, as mul), mul
    (broadcast per sample: lower-rank samples are aligned after the batch dimension), concat."""

    def __init__(self, kind: str, dim: int = 0, broadcast: bool = False):
        super().__init__()
        self.kind, self.dim, self.broadcast = kind, dim, broadcast

    def forward(self, xs):
        if self.kind == "add" and not self.broadcast:
            return torch.stack(list(xs)).sum(0)
        if self.kind in ("add", "mul"):
            rank = max(x.dim() for x in xs)
            xs = [x.reshape(x.shape[0], *([1] * (rank - x.dim())), *x.shape[1:]) for x in xs]
            if self.kind == "add":   # broadcast: true
                return functools.reduce(lambda a, b: a + b, xs)
            return functools.reduce(lambda a, b: a * b, xs)
        return torch.cat(list(xs), batched_dim(self.dim, xs[0].dim() - 1))

    def extra_repr(self):
        return self.kind


@builds("add", "mul", "concat")
def _join(layer, shapes):
    return JoinOp(layer.type_name, getattr(layer, "dim", 0), getattr(layer, "broadcast", False))
