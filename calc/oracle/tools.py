"""The counting tools (thop, ptflops, fvcore, torchinfo, FlopCounterMode) run on the oracle's
module, for `calc verify` to compare with calc's preset of each name. Each tool is imported only
when it runs; none is a dependency of calc."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def _thop(module, x, shape):
    from thop import profile
    macs, _ = profile(module, inputs=(x,), verbose=False)
    return int(macs)


def _ptflops(backend):
    def run(module, x, shape):
        from ptflops import get_model_complexity_info
        macs, _ = get_model_complexity_info(module, tuple(shape), as_strings=False, backend=backend,
                                            print_per_layer_stat=False, verbose=False)
        return int(macs)
    return run


def _fvcore(module, x, shape):
    from fvcore.nn import FlopCountAnalysis
    analysis = FlopCountAnalysis(module, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(analysis.total())


def _torchinfo(module, x, shape):
    from torchinfo import summary
    return int(summary(module, input_data=[x], verbose=0).total_mult_adds)


def _torch_counter(module, x, shape):
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(x)
    return int(counter.get_total_flops())


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

TOOLS: dict[str, Tool] = {
    "torch": Tool("torch", _torch_counter, measure="flops"),
    "thop": Tool("thop", _thop),
    "ptflops": Tool("ptflops", _ptflops("pytorch"), batch_one=True),
    "ptflops-aten": Tool("ptflops", _ptflops("aten"), batch_one=True),
    "fvcore": Tool("fvcore", _fvcore),
    "torchinfo": Tool("torchinfo", _torchinfo),
}


def tool_available(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(TOOLS[name].package) is not None


def run_tool(name: str, module, input_shape: tuple, batch: int) -> int:
    """The tool's figure for ``module`` on a batch of zeros (on a copy: some tools leave
    attributes or buffers on the modules they profile)."""
    import copy
    tool = TOOLS[name]
    shape = tuple(input_shape)
    x = torch.zeros(1 if tool.batch_one else batch, *shape,
                    dtype=torch.long if getattr(module, "tokens", False) else torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tool.run(copy.deepcopy(module), x, shape)


