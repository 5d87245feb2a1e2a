"""Builders for the element-wise family: activations, softmax, dropout, stochastic depth,
identity, layer scale and constant scale."""
from __future__ import annotations

import torch
from torch import nn

from .registry import batched_dim, builds


class DropPath(nn.Module):
    """Stochastic depth (torchvision is not a dependency): the identity in evaluation; in
    training, as torchvision's stochastic_depth, the input times a noise of 0 or 1/(1 − p) per
    sample ("row") or per batch."""

    def __init__(self, p: float, mode: str):
        super().__init__()
        if not 0.0 <= p <= 1.0 or mode not in ("row", "batch"):
            raise ValueError(f"bad stochastic depth p={p} mode={mode}")
        self.p, self.mode = p, mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        shape = [x.shape[0] if self.mode == "row" else 1] + [1] * (x.dim() - 1)
        noise = x.new_empty(shape).bernoulli_(1.0 - self.p)
        if self.p < 1.0:
            noise.div_(1.0 - self.p)
        return x * noise


class Scale(nn.Module):
    """Per-channel learned scale along one per-sample dimension (layer_scale)."""

    def __init__(self, size: int, trailing: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(size))
        self.trailing = trailing

    def forward(self, x):
        return x * self.gamma.view(-1, *([1] * self.trailing))


_SIMPLE = {"relu": nn.ReLU, "relu6": nn.ReLU6, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
           "silu": nn.SiLU, "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid,
           "identity": nn.Identity}


@builds(*_SIMPLE)
def _simple(layer, shape):
    if getattr(layer, "inplace", False):
        return _SIMPLE[layer.type_name](inplace=True)
    return _SIMPLE[layer.type_name]()


@builds("leaky_relu")
def _leaky(layer, shape):
    return nn.LeakyReLU(layer.negative_slope, inplace=layer.inplace)


@builds("elu")
def _elu(layer, shape):
    return nn.ELU(layer.alpha, inplace=layer.inplace)


@builds("softplus")
def _softplus(layer, shape):
    return nn.Softplus(layer.beta, layer.threshold)


@builds("gelu")
def _gelu(layer, shape):
    return nn.GELU(approximate=layer.approximate)


@builds("prelu")
def _prelu(layer, shape):
    return nn.PReLU(layer.num_parameters)


@builds("softmax")
def _softmax(layer, shape):
    return nn.Softmax(batched_dim(layer.dim, len(shape)))


@builds("dropout")
def _dropout(layer, shape):
    return nn.Dropout(layer.p)


@builds("stochastic_depth")
def _drop_path(layer, shape):
    return DropPath(layer.p, layer.mode)


@builds("layer_scale")
def _layer_scale(layer, shape):
    d = batched_dim(layer.dim, len(shape)) % (len(shape) + 1)
    return Scale(shape[d - 1], len(shape) - d)
