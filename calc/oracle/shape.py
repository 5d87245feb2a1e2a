"""Builders for the shape family: layers that move values without arithmetic (flatten, reshape,
permute, channel shuffle and split) and upsampling."""
from __future__ import annotations

import torch
from torch import nn

from .registry import Fn, Refused, batched_dim, builds


@builds("flatten")
def _flatten(layer, shape):
    if not shape:  # a scalar per sample flattens to one value, as calc defines it
        return Fn(lambda x: x.reshape(x.shape[0], 1), "to (N, 1)")
    return nn.Flatten(batched_dim(layer.start, len(shape)), batched_dim(layer.end, len(shape)))


@builds("reshape")
def _reshape(layer, shape):
    target = tuple(layer.shape)
    return Fn(lambda x: x.reshape(x.shape[0], *target), f"reshape{target}")


@builds("permute")
def _permute(layer, shape):
    order = (0, *(batched_dim(d, len(shape)) % (len(shape) + 1) for d in layer.dims))
    # Memory layout is no part of calc's model: the permuted tensor is made contiguous (PyTorch's
    # local_response_norm, for one, refuses some non-contiguous 5-d inputs). A linear layer's
    # `contiguous: false` hint gives it a non-contiguous input instead (see core.LazyLeaf).
    return Fn(lambda x: x.permute(*order).contiguous(), f"permute{order}")


@builds("channel_shuffle")
def _shuffle(layer, shape):
    return nn.ChannelShuffle(layer.groups)


@builds("channel_split")
def _split(layer, shape):
    d = batched_dim(layer.dim, len(shape))
    if (layer.parts is None) == (layer.sections is None):
        raise Refused("give exactly one of parts and sections")
    if layer.parts is not None:
        return Fn(lambda x: torch.chunk(x, layer.parts, d)[layer.index], f"chunk{layer.parts}[{layer.index}]")
    sections = list(layer.sections)
    return Fn(lambda x: torch.split(x, sections, d)[layer.index], f"split{sections}[{layer.index}]")


@builds("upsample")
def _upsample(layer, shape):
    interpolating = layer.mode != "nearest"
    return nn.Upsample(size=layer.size, scale_factor=layer.scale, mode=layer.mode,
                       align_corners=layer.align_corners if interpolating or layer.align_corners else None)


@builds("pad")
def _pad(layer, shape):
    pad, mode, value = list(layer.pad), layer.mode, layer.value
    if mode == "constant":
        return Fn(lambda x: torch.nn.functional.pad(x, pad, mode, value), f"pad{pad}")
    # reflect, replicate and circular pad the last 1-3 dims of a batched (N, C, …) tensor
    return Fn(lambda x: torch.nn.functional.pad(x, pad, mode), f"pad{pad}, {mode}")


@builds("roll")
def _roll(layer, shape):
    dims = tuple(batched_dim(d, len(shape)) % (len(shape) + 1) for d in layer.dims)
    shifts = tuple(layer.shifts)
    return Fn(lambda x: torch.roll(x, shifts, dims), f"roll{shifts}, dims {dims}")
