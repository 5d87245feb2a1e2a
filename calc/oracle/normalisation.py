"""Builders for the normalisation family: batch, layer, group, local response and RMS norms."""
from __future__ import annotations

from torch import nn

from .registry import Refused, builds


class ChannelsLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a channels-first map (as torchvision's LayerNorm2d)."""

    def forward(self, x):
        last = x.dim() - 1
        return super().forward(x.movedim(1, last)).movedim(last, 1)


def _trailing(layer, shape) -> tuple:
    """The trailing dimensions a layer or RMS norm normalises over."""
    if layer.normalized > len(shape):
        raise Refused(f"cannot normalise {layer.normalized} dims of a rank-{len(shape)} sample")
    return tuple(shape[len(shape) - layer.normalized:])


@builds("batchnorm1d", "batchnorm2d", "batchnorm3d")
def _batchnorm(layer, shape):
    if not shape:
        raise Refused("batch norm needs channels")
    cls = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[layer.dims - 1]
    return cls(shape[0], eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
               track_running_stats=layer.track_running_stats)


@builds("layernorm")
def _layernorm(layer, shape):
    if layer.channels:
        if len(shape) < 2:
            raise Refused("channels layer norm needs (C, spatial…)")
        return ChannelsLayerNorm(shape[0], eps=layer.eps, elementwise_affine=layer.affine,
                                 bias=layer.bias)
    return nn.LayerNorm(_trailing(layer, shape), eps=layer.eps, elementwise_affine=layer.affine,
                        bias=layer.bias)


@builds("groupnorm")
def _groupnorm(layer, shape):
    if not shape:
        raise Refused("group norm needs channels")
    return nn.GroupNorm(layer.groups, shape[0], eps=layer.eps, affine=layer.affine)


@builds("local_response_norm")
def _lrn(layer, shape):
    return nn.LocalResponseNorm(layer.size, alpha=layer.alpha, beta=layer.beta, k=layer.k)


@builds("rmsnorm")
def _rmsnorm(layer, shape):
    return nn.RMSNorm(_trailing(layer, shape), eps=layer.eps, elementwise_affine=layer.affine)
