"""The oracle for activation memory: one training forward pass under
``torch.autograd.graph.saved_tensors_hooks``, counting the bytes of the distinct storages autograd
keeps for backward (parameters and buffers excluded), each at the first leaf that keeps it."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from ..errors import OracleError
from ..graph import Model
from .core import pytorch_errors, LazyLeaf, build_module, input_shapes, zeros_inputs

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}


def prepared_module(module, shapes, batch: int, dtype: str):
    """Ready the oracle's module for a memory measure (each measure calls it inside its own
    handling of PyTorch's errors): one pass in fp32 on zeros makes every layer from the tensors
    that reach it, then the module is cast to ``dtype`` and its parameter and buffer items hand
    on views, as PyTorch code reads them."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        module(*zeros_inputs(module, shapes, batch))
    module.to(TORCH_DTYPES[dtype])
    from .tensors import Tensor
    for m in module.modules():
        if isinstance(m, Tensor):
            m.expand = True
    return module


@dataclass(frozen=True)
class MeasuredSaved:
    torch_version: str
    batch: int
    dtype: str
    bytes: int        # distinct storages kept for backward
    leaves: tuple     # (calc name, type, bytes first kept there), in call order


def measure_saved(model: Model, batch: int = 1, dtype: str = "fp32") -> MeasuredSaved:
    """Run one forward pass of the oracle's module in training mode (batch norm on batch
    statistics, dropout active) on a batch of zeros (token ids 0) in ``dtype``, and sum the bytes
    of the distinct tensor storages autograd saves."""
    if dtype not in TORCH_DTYPES:
        raise OracleError(f"the memory oracle runs in {', '.join(TORCH_DTYPES)}, not {dtype}")
    module = build_module(model)
    shapes = input_shapes(model)
    xs = zeros_inputs(module, shapes, batch, TORCH_DTYPES[dtype])
    current = [None]
    order: list = []
    leaves = [m for m in module.modules() if isinstance(m, LazyLeaf)]

    def enter(mod, inputs):
        current[0] = mod
        order.append(mod)

    with pytorch_errors():
        prepared_module(module, shapes, batch, dtype)
        module.train()
        exclude = {t.untyped_storage().data_ptr() for t in (*module.parameters(), *module.buffers())}
        first: dict = {}                    # storage -> (bytes, leaf)
        # Every packed tensor is held until the pass ends: a branch whose output nothing reads
        # frees its graph, and a later storage could reuse the address (miscounted as seen).
        held: list = []

        def pack(t):
            held.append(t)
            s = t.untyped_storage()
            ptr = s.data_ptr()
            if ptr not in exclude and ptr not in first:
                first[ptr] = (s.nbytes(), current[0])
            return t

        handles = [m.register_forward_pre_hook(enter) for m in leaves]
        order.clear()
        try:
            with warnings.catch_warnings(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                warnings.simplefilter("ignore")
                module(*xs)
        finally:
            for h in handles:
                h.remove()
    per: dict = {}
    for nbytes, leaf in first.values():
        per[id(leaf)] = per.get(id(leaf), 0) + nbytes
    rows = []
    for m in order:
        rows.append((m.calc_name, m.layer.type_name, per.pop(id(m), 0)))
    return MeasuredSaved(torch.__version__, batch, dtype, sum(b for b, _ in first.values()), tuple(rows))
