"""Memory: what a model needs in bytes, exact under stated rules (see docs/memory.md).

:mod:`calc.memory.activations` counts activations (saved for backward, and the inference peak);
:mod:`calc.memory.saved` holds the per-layer-type rules of what PyTorch keeps;
:mod:`calc.memory.training` the weights, gradients, optimizer states (:mod:`calc.memory.optimizers`),
mixed precision and sharding per device, and what fits; :mod:`calc.memory.tools` other tools'
memory conventions. Computes; never prints (the renderer is calc.render.memory).
"""
from .activations import Peak, Saved, inference_peak, saved_activations  # noqa: F401
