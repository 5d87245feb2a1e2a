"""The PyTorch oracle: turns a built calc model into a ``torch.nn.Module`` and measures it.

PyTorch is an optional extra (``pip install '.[torch]'``); nothing else in calc imports this
package, and importing it without PyTorch raises :class:`calc.errors.OracleError`.

Independence is the point. The module is built from the spec's layer arguments and the shapes
of the *actual tensors* that reach each layer: every PyTorch layer is constructed lazily, on its
first call, from the tensor it receives. calc's own shape inference is never consulted, so the
parameters PyTorch allocates, the output shapes it produces and the FLOPs that
``torch.utils.flop_counter.FlopCounterMode`` counts are independent measurements that calc's
numbers can be checked against.

calc shapes are per sample; the module takes a batched tensor ``(N, *shape)``. Where a spec
argument names a dimension (``dim``, ``start``, ``dims``), per-sample dimension ``d ≥ 0`` is
batched dimension ``d + 1`` and a negative one counts from the end as before; a dimension that
would reach the batch dimension is refused, and so is a per-sample rank that PyTorch would read
as an *unbatched* input (a spec has no batch dimension to give).

The package:

* :mod:`.registry` — the guarded PyTorch import, ONE registry of builders keyed by layer type
  (:data:`BUILDERS`, filled by the decorator :func:`builds`; a type without a builder is an
  :class:`OracleError` naming it) and the helpers builders share;
* one builder module per family of layer types, as in the layer registry: :mod:`.convolution`,
  :mod:`.pooling`, :mod:`.normalisation`, :mod:`.activation`, :mod:`.shape`, :mod:`.joins`,
  :mod:`.tokens`, :mod:`.attention`, :mod:`.moe` (moe and mla), :mod:`.recurrent`;
* :mod:`.core` — the module tree, calc's names for its leaves, and :func:`measure`;
* :mod:`.tools` — the counting tools run on the oracle's module (:func:`run_tool`).
"""
from ..errors import OracleError
from .registry import BUILDERS, Builder, Fn, TorchRejected, builder_for, builds, require_torch

# Checked on every import of the package, not only the first: its modules may already be loaded
# (a test makes PyTorch unimportable after they were).
require_torch()

# Importing a builder module registers its builders.
from . import activation, attention, convolution, joins, moe, normalisation, pooling, recurrent, shape, tensors, tokens
from .activation import DropPath, Scale
from .attention import MultiHeadAttention
from .core import (MAX_ORACLE_LAYERS, BranchesModule, LazyLeaf, Measured, MeasuredLeaf,
                   OracleModel, RepeatModule, SeqModule, build_module, count_layers, measure)
from .joins import JoinOp
from .normalisation import ChannelsLayerNorm
from .recurrent import Recurrent
from .tokens import AddedTable, ClassTokens
from .tools import NOT_AS_TOOLS_SEE, TOOLS, Tool, run_tool, tool_available

# The entry points (what `calc verify`, the tests and the benchmarks use), then the module
# classes, importable from here as they were from the single-module oracle; the builder modules
# are imported for the builders they register.
__all__ = ["BUILDERS", "MAX_ORACLE_LAYERS", "Measured", "MeasuredLeaf", "NOT_AS_TOOLS_SEE", "OracleError",
           "TOOLS", "Tool", "TorchRejected", "build_module", "builder_for", "builds", "count_layers",
           "measure", "run_tool", "tool_available",
           "AddedTable", "BranchesModule", "Builder", "ChannelsLayerNorm", "ClassTokens", "DropPath", "Fn",
           "JoinOp", "LazyLeaf", "MultiHeadAttention", "OracleModel", "Recurrent", "RepeatModule", "Scale",
           "SeqModule",
           "activation", "attention", "convolution", "joins", "moe", "normalisation", "pooling", "recurrent", "shape",
           "tensors", "tokens"]
