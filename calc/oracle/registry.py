"""The builders' registry and what every builder module shares.

This module is the first of the package to import PyTorch: without it, importing
:mod:`calc.oracle` raises :class:`calc.errors.OracleError` here, before any builder module runs.

A builder is ``builder(layer, shape) -> nn.Module``: it gets the calc layer and the per-sample
input shape (a list of shapes for a layer with several inputs) and makes the PyTorch layer.
Builders form ONE registry keyed by layer type (:data:`BUILDERS`, filled by :func:`builds`).
"""
from __future__ import annotations

import warnings
from typing import Callable

from ..errors import OracleError

def require_torch():
    """Import PyTorch, or say how to install it (an OracleError)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Failed to initialize NumPy" when numpy is absent
            import torch
            from torch import nn
    except ImportError:  # exercised in a venv without torch, and by making torch unimportable
        raise OracleError("the PyTorch oracle needs PyTorch, which is not installed; "
                          "install it with: pip install 'calc[torch]' (or pip install torch)") from None
    return torch, nn


torch, nn = require_torch()

from ..layers import Layer  # noqa: E402


class TorchRejected(OracleError):
    """PyTorch (or the translation of per-sample arguments to batched ones) refuses the model."""

    def __init__(self, message: str, *, layer: str | None = None, type_name: str | None = None):
        super().__init__(message)
        self.layer = layer
        self.type_name = type_name


Builder = Callable[[Layer, object], "nn.Module"]
BUILDERS: dict[str, Builder] = {}


def builds(*type_names: str):
    """Register one builder for several layer types (a type registered twice is a bug)."""
    def deco(fn):
        for name in type_names:
            if name in BUILDERS:
                raise RuntimeError(f"oracle builder for {name!r} registered twice")
            BUILDERS[name] = fn
        return fn
    return deco


def builder_for(type_name: str) -> Builder:
    try:
        return BUILDERS[type_name]
    except KeyError:
        raise OracleError(f"the PyTorch oracle has no builder for layer type '{type_name}'; "
                          "add one to calc.oracle.BUILDERS") from None


# ---------------------------------------------------------------------------- per-sample → batched
# calc shapes are per sample; the module takes a batched tensor (N, *shape).

class Refused(Exception):
    """The oracle's own translation of a per-sample argument to a batched one fails."""


def require_rank(shape, rank: int, what: str):
    if len(shape) != rank:
        raise Refused(f"{what} takes a per-sample rank-{rank} input, got rank {len(shape)} "
                      "(PyTorch would read it as unbatched)")


def require_sequence(shape, what: str):
    """A sequence is (L, *F) per sample, (N, L, *F) batched."""
    if len(shape) < 2:
        raise Refused(f"{what} takes a sequence (L, features…), got rank {len(shape)}")


def batched_dim(d: int, rank: int) -> int:
    """Per-sample dimension -> batched dimension (never the batch dimension)."""
    if d >= 0:
        return d + 1
    if d < -rank:
        raise Refused(f"dimension {d} reaches the batch dimension of a rank-{rank} sample")
    return d


class Fn(nn.Module):
    """A parameter-free function of the batched tensor (reshape, permute, mean ...)."""

    def __init__(self, fn, label: str):
        super().__init__()
        self.fn = fn
        self.label = label

    def forward(self, x):
        return self.fn(x)

    def extra_repr(self):
        return self.label


__all__ = ["BUILDERS", "Builder", "Fn", "Refused", "TorchRejected", "batched_dim", "builder_for",
           "builds", "nn", "require_rank", "require_sequence", "torch"]
