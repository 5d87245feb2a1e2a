"""Builders for the pooling family: windowed, adaptive and global pools."""
from __future__ import annotations

from torch import nn

from .registry import Fn, Refused, builds, require_rank


@builds("maxpool1d", "maxpool2d", "maxpool3d")
def _maxpool(layer, shape):
    require_rank(shape, layer.dims + 1, layer.type_name)
    cls = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[layer.dims - 1]
    return cls(layer.kernel, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
               ceil_mode=layer.ceil_mode)


@builds("avgpool1d", "avgpool2d", "avgpool3d")
def _avgpool(layer, shape):
    require_rank(shape, layer.dims + 1, layer.type_name)
    cls = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[layer.dims - 1]
    return cls(layer.kernel, stride=layer.stride, padding=layer.padding, ceil_mode=layer.ceil_mode,
               count_include_pad=layer.count_include_pad)


@builds("adaptive_avgpool1d", "adaptive_avgpool2d", "adaptive_avgpool3d",
        "adaptive_maxpool1d", "adaptive_maxpool2d", "adaptive_maxpool3d")
def _adaptive(layer, shape):
    require_rank(shape, layer.dims + 1, layer.type_name)
    avg = layer.type_name.startswith("adaptive_avg")
    cls = ((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d) if avg else
           (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d))[layer.dims - 1]
    # PyTorch's 1-d adaptive pools take no None ("keep this size"); it means the input size.
    size = (layer.size[0] or shape[1]) if layer.dims == 1 else tuple(layer.size)
    return cls(size)


@builds("global_avgpool", "global_maxpool")
def _global(layer, shape):
    if len(shape) < 2:
        raise Refused("global pooling needs (C, spatial…)")
    dims = tuple(range(2, len(shape) + 1))
    keep = layer.keepdim
    if layer.type_name == "global_avgpool":
        return Fn(lambda x: x.mean(dim=dims, keepdim=keep), f"mean{dims}")
    return Fn(lambda x: x.amax(dim=dims, keepdim=keep), f"amax{dims}")
