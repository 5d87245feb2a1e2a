"""The counting tools (thop, ptflops, fvcore, torchinfo, FlopCounterMode) run on the oracle's
module, for `calc verify` to compare with calc's preset of each name. Each tool is imported only
when it runs; none is a dependency of calc."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from ..conventions import CONVENTIONS


@dataclass(frozen=True)
class Tool:
    """A counting tool run on the oracle's module, to compare with calc's preset of that name.
    ``measure`` is the calc quantity the tool's figure corresponds to; ``batch_one`` marks a
    tool that always counts one sample."""

    package: str
    run: Callable
    measure: str = "macs"
    batch_one: bool = False


# The oracle writes these layers for exact FLOP counting (explicit matrix products, LSTM
# equations), not as the PyTorch modules a tool preset describes (nn.MultiheadAttention, the
# fused LSTM): a tool run on them would measure a different module, so verify skips the presets.
NOT_AS_TOOLS_SEE = frozenset({"attention", "lstm"})

# How each tool is run lives in its preset's module (calc/conventions/tools/); torch's own
# counter first, as it needs no other package.
TOOLS: dict[str, Tool] = {
    name: Tool(conv.runner.package, conv.runner.run, conv.reports, conv.runner.batch_one)
    for name, conv in sorted(CONVENTIONS.items(), key=lambda item: item[0] != "torch")
    if conv.runner is not None}


def tool_available(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(TOOLS[name].package) is not None


def run_tool(name: str, module, input_shape: tuple, batch: int, shapes: tuple = ()) -> int:
    """The tool's figure for ``module`` on a batch of zeros (on a copy: some tools leave
    attributes or buffers on the modules they profile). ``shapes``: every input's per-sample
    shape for a model of several inputs, which each tool is given as one tuple of tensors (the
    module's forward takes it as its inputs in order)."""
    import copy
    tool = TOOLS[name]
    shape = tuple(input_shape)
    kind = torch.long if getattr(module, "tokens", False) else torch.float32
    n = 1 if tool.batch_one else batch
    if len(shapes) > 1:
        x = tuple(torch.zeros(n, *s, dtype=kind) for s in shapes)
    else:
        x = torch.zeros(n, *shape, dtype=kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tool.run(copy.deepcopy(module), x, shape)


