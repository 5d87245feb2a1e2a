"""Builders for the convolution family: convolutions, transposed convolutions, linear layers."""
from __future__ import annotations

from torch import nn

from .registry import Refused, builds, require_rank


def _in_channels(layer, shape, dims):
    require_rank(shape, dims + 1, layer.type_name)
    return layer.in_ if layer.in_ is not None else shape[0]


@builds("conv1d", "conv2d", "conv3d")
def _conv(layer, shape):
    dims = layer.dims
    cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
    return cls(_in_channels(layer, shape, dims), layer.out, layer.kernel, stride=layer.stride,
               padding=layer.padding, dilation=layer.dilation, groups=layer.groups, bias=layer.bias)


@builds("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
def _conv_transpose(layer, shape):
    dims = layer.dims
    cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[dims - 1]
    return cls(_in_channels(layer, shape, dims), layer.out, layer.kernel, stride=layer.stride,
               padding=layer.padding, output_padding=layer.output_padding, groups=layer.groups,
               bias=layer.bias, dilation=layer.dilation)


@builds("linear")
def _linear(layer, shape):
    if not shape:
        raise Refused("linear needs a per-sample rank of at least 1")
    return nn.Linear(layer.in_ if layer.in_ is not None else shape[-1], layer.out, bias=layer.bias)
