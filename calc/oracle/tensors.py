"""Builders for the free tensors and their operations: parameter, buffer, gather, scale,
matmul, and the functions Swin V2 applies to them (exp, clamp, normalize).

A parameter or buffer is one tensor for the whole batch, as in PyTorch; the module returns it
repeated over the batch (a copy: nothing is computed), so that the per-sample tensors it meets
line up as calc's per-sample shapes do."""
from __future__ import annotations

import torch
from torch import nn

from .registry import Fn, batched_dim, builds


class Tensor(nn.Module):
    """A parameter, a buffer (register_buffer) or a tensor made in the forward pass and held
    nowhere (a non-persistent calc buffer), returned expanded over the batch of its input."""

    def __init__(self, shape, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "parameter":
            self.value = nn.Parameter(torch.zeros(shape))
        elif kind == "buffer":
            self.register_buffer("value", torch.zeros(shape))
        else:
            self.shape = tuple(shape)

    # The memory oracle sets this: a held tensor then reaches its consumers as a view of the
    # parameter or buffer expanded over the batch (what autograd keeps of it is the parameter's
    # own storage, which is not an activation), not as a per-sample copy.
    expand = False

    def forward(self, x):
        # a made tensor in the flow's dtype (as Swin's mask, new_zeros), so half precision stays half
        made = torch.zeros(self.shape, dtype=x.dtype if x.is_floating_point() else None) if self.kind == "made" else None
        value = self.value if self.kind != "made" else made
        if self.expand and self.kind != "made":
            return value.unsqueeze(0).expand(x.shape[0], *value.shape)
        # a copy per sample, not a view: FlopCounterMode's module tracker refuses a view of a
        # parameter made under no_grad; no tool counts the copy
        return value.unsqueeze(0).repeat(x.shape[0], *([1] * value.dim()))

    def extra_repr(self):
        return self.kind


class Gather(nn.Module):
    """``table[index]`` per sample (the index is the same for every sample, as a buffer is)."""

    def forward(self, xs):
        table, index = xs
        return table[:, index[0].long().flatten()]


class ScaleBy(nn.Module):
    """``x * c`` (the operator) or ``torch.mul(x, c)`` (call: functional)."""

    call_hint = "operator"

    def __init__(self, by: float):
        super().__init__()
        self.by = by

    def forward(self, x):
        return torch.mul(x, self.by) if self.call_hint == "functional" else x * self.by

    def extra_repr(self):
        return f"by={self.by}"


class MatMul(nn.Module):
    """torch.matmul of the flow and a named input (``a @ b`` with call: operator); per-sample
    operands of different ranks are aligned after the batch dimension, as calc broadcasts
    per-sample shapes."""

    call_hint = "functional"

    def __init__(self, transpose: bool):
        super().__init__()
        self.transpose = transpose

    def forward(self, xs):
        a, b = xs
        rank = max(a.dim(), b.dim())
        a = a.reshape(a.shape[0], *([1] * (rank - a.dim())), *a.shape[1:])
        b = b.reshape(b.shape[0], *([1] * (rank - b.dim())), *b.shape[1:])
        if self.call_hint == "einsum":
            # torch.einsum over explicit indices, as MaxViT writes it ("bghid,bghjd->bghij"):
            # operands expanded to their broadcast batch (einsum repeats no index of size 1)
            lead = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
            a, b = a.expand(*lead, *a.shape[-2:]), b.expand(*lead, *b.shape[-2:])
            idx = "abcdefgh"[:len(lead)]
            return torch.einsum(f"{idx}xy,{idx}{'zy' if self.transpose else 'yz'}->{idx}xz", a, b)
        if self.transpose:
            b = b.transpose(-2, -1)
        return a @ b if self.call_hint == "operator" else torch.matmul(a, b)

    def extra_repr(self):
        return f"transpose={self.transpose}"


@builds("parameter", "buffer")
def _tensor(layer, shape):
    kind = "parameter" if layer.type_name == "parameter" else "buffer" if layer.persistent else "made"
    return Tensor(tuple(layer.shape), kind)


@builds("gather")
def _gather(layer, shapes):
    return Gather()


@builds("scale")
def _scale(layer, shape):
    return ScaleBy(layer.by)


@builds("matmul")
def _matmul(layer, shapes):
    return MatMul(layer.transpose)


@builds("exp")
def _exp(layer, shape):
    return Fn(torch.exp, "torch.exp")


@builds("clamp")
def _clamp(layer, shape):
    return Fn(lambda x: torch.clamp(x, min=layer.min, max=layer.max), f"torch.clamp({layer.min}, {layer.max})")


@builds("normalize")
def _normalize(layer, shape):
    import torch.nn.functional as F
    d = batched_dim(layer.dim, len(shape))
    return Fn(lambda x: F.normalize(x, dim=d, eps=layer.eps), f"F.normalize(dim={d})")
