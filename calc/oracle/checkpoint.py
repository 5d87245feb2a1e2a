"""The oracle for activation checkpointing: one training forward pass with
``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)`` around calc's checkpointed units.

* ``full``: the outermost units (block instances, iterations of repeats outside blocks) each run
  under checkpoint. What is kept at the end of the forward pass: the tensors autograd saves
  outside every unit (``saved_tensors_hooks``: inside a checkpoint, its own hooks take their place)
  and each unit's input, which the checkpoint holds to run the unit again. During the backward
  pass each unit is run again and its saved tensors exist while its gradients are computed: the
  oracle measures what one unit saves by running it (from the same input) under
  ``saved_tensors_hooks``, beyond the storages kept anyway; the largest unit is the figure.
* ``selective`` (Korthikanti et al. 2022): in each eager attention the core from Q, K, V to the
  context (scores, mask, softmax, probabilities · V) runs under checkpoint; Q, K and V are what
  it holds.

The backward pass is run as well (the checkpoints recompute), so a unit that cannot be checkpointed
fails here. Parameters and buffers are excluded, as in :mod:`calc.oracle.memory`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

from ..errors import OracleError
from ..graph import Model
from .attention import MultiHeadAttention
from .core import pytorch_errors, SeqModule, build_module, input_shapes, zeros_inputs
from .memory import TORCH_DTYPES, prepared_module


@dataclass(frozen=True)
class MeasuredCheckpoint:
    torch_version: str
    batch: int
    dtype: str
    mode: str
    kept: int          # distinct storages held at the end of the forward pass
    recompute: int     # full: the most one unit saves again while it is recomputed (beyond `kept`)
    units: int         # units checkpointed

    @property
    def bytes(self) -> int:
        return self.kept + self.recompute


def _outermost_units(module):
    for child in module.children():
        if isinstance(child, SeqModule) and child.unit:
            yield child
        else:
            yield from _outermost_units(child)


def measure_checkpointed(model: Model, batch: int = 1, dtype: str = "fp32", mode: str = "full") -> MeasuredCheckpoint:
    if dtype not in TORCH_DTYPES:
        raise OracleError(f"the memory oracle runs in {', '.join(TORCH_DTYPES)}, not {dtype}")
    if mode not in ("full", "selective"):
        raise OracleError(f"the checkpointing oracle measures 'full' or 'selective', not {mode!r}")
    module = build_module(model)
    shapes = input_shapes(model)
    with pytorch_errors():
        prepared_module(module, shapes, batch, dtype)
        module.train()
        exclude = {t.untyped_storage().data_ptr() for t in (*module.parameters(), *module.buffers())}
        kept: dict = {}

        def keep(t):
            s = t.untyped_storage()
            if s.data_ptr() not in exclude:
                kept.setdefault(s.data_ptr(), s.nbytes())

        def pack(t):
            keep(t)
            return t

        calls: list = []     # (unit, its input, the scopes it read), for the recompute measure
        units = list(_outermost_units(module)) if mode == "full" else []
        for u in units:
            def run(x, scopes, u=u, plain=u.forward):
                calls.append((plain, x, scopes))
                keep(x)
                return checkpoint(plain, x, scopes, use_reentrant=False)
            u.forward = run
        cores = [m for m in module.modules() if isinstance(m, MultiHeadAttention)] if mode == "selective" else []
        for m in cores:
            m.selective = []
        xs = zeros_inputs(module, shapes, batch, TORCH_DTYPES[dtype])
        with warnings.catch_warnings(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            warnings.simplefilter("ignore")
            out = module(*xs)
        for m in cores:
            for t in m.selective:
                keep(t)
            m.selective = None
        held = sum(kept.values())
        # the recompute: what each unit saves again, beyond what is kept anyway
        worst = 0
        for plain, x, scopes in calls:
            again: dict = {}

            def pack_again(t):
                s = t.untyped_storage()
                if s.data_ptr() not in exclude and s.data_ptr() not in kept:
                    again.setdefault(s.data_ptr(), s.nbytes())
                return t
            with warnings.catch_warnings(), torch.autograd.graph.saved_tensors_hooks(pack_again, lambda t: t):
                warnings.simplefilter("ignore")
                plain(x, scopes)
            worst = max(worst, sum(again.values()))
        if out.requires_grad:     # the checkpoints recompute: a unit that cannot be run again fails here
            out.float().sum().backward()
    return MeasuredCheckpoint(torch.__version__, batch, dtype, mode, held, worst, len(units))
