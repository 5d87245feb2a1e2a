"""Regenerates tests/data/layer_probe.json: single PyTorch layers measured by every counting tool.

Usage (from the repository root, with torch and the tools installed: pip install '.[tools]')::

    python tests/data/generate_probe.py            # rewrite tests/data/layer_probe.json
    python tests/data/generate_probe.py --check    # measure, compare with the committed file, write nothing

Each probe builds one PyTorch layer (or a few lines of forward code) after
``torch.manual_seed(0)``, in eval mode, and runs it on one input at batch 2: the input's first
dimension, except for the seq-first probes, whose first dimension is the sequence and second
the batch. Every tool gets its own freshly built copy of the module and its own copy of the
input, since some tools leave state on what they profile (and ``ReLU(inplace)`` writes into its
input). Recorded per probe:

* ``input_shape``, ``output_shape`` (batched, as PyTorch gives them), ``params`` (every parameter);
* ``torch``: ``torch.utils.flop_counter.FlopCounterMode`` total with grad mode on (FLOPs, 2 per
  MAC), ``torch_by_op`` its split by aten op, ``torch_no_grad`` the total under ``torch.no_grad()``
  (they differ where PyTorch takes a fused fast path, as nn.MultiheadAttention does);
* ``fvcore``: ``FlopCountAnalysis(...).total()`` (one per MAC), ``fvcore_by_op`` (by_operator)
  and ``fvcore_unsupported`` (the aten ops it saw but has no formula for, with their counts);
* ``torchinfo``: ``summary(...).total_mult_adds``, with its forward/backward and parameter bytes;
* ``ptflops_aten``: ``get_model_complexity_info(..., backend='aten')`` MACs;
* ``ptflops_pytorch``: the same with backend='pytorch', and ``ptflops_pytorch_parts``: how it is
  made up, ``int(module_hooks_raw / batch_counter + sum(functional))``, where module_hooks_raw is
  the MACs its module hooks collected, batch_counter the length of the root module's first input
  and functional the (function, MACs) calls its patched torch functions saw, in call order;
* ``thop`` and ``thop_params``: ``thop.profile`` (MACs, and the parameters it attributes; it only
  attributes those of hooked children of the root, so 0 for a bare layer).

The first version of these figures was recorded by the project's reference generator outside
this repository (``ref/probe_layers.py``, whose output was shared/reference/layer_probe.json);
this script measures the same probes anew so that the figures can be reproduced from here.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import platform
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.linear import NonDynamicallyQuantizableLinear
from torch.utils.flop_counter import FlopCounterMode

HERE = Path(__file__).resolve().parent
OUT = HERE / "layer_probe.json"
TOOLS = ("thop", "ptflops", "fvcore", "torchinfo")


# ---------------------------------------------------------------------------- probe modules

class Call(nn.Module):
    """A few lines of forward code without parameters (an operator, a functional call)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class First(nn.Module):
    """The first element of a layer's output: the output sequence of an RNN (not its states), the
    output of attention (not its weights). On a plain tensor that is its first row, which is what
    the single-step cells (returning one tensor) give here."""

    def __init__(self, layer, **kwargs):
        super().__init__()
        self.layer = layer
        self.kwargs = kwargs

    def forward(self, x):
        if isinstance(self.layer, nn.MultiheadAttention):
            return self.layer(x, x, x, **self.kwargs)[0]
        return self.layer(x)[0]


class SeqFirstToBatchFirst(nn.Module):
    """A linear layer fed a transposed view: the probe's input is (L, N, F), the layer sees a
    non-contiguous (N, L, F)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x.transpose(0, 1))


def _add_inplace(x):
    y = x.clone()
    y += x
    return y


# name -> (input shape, integer input below this bound or None, builder). In the order of the
# first recording. Image-like inputs: 6 channels of 15×17 (2-d), 6×17 (1-d), 4×7×8×9 (3-d).
I1, I2, I3 = (2, 6, 17), (2, 6, 15, 17), (2, 4, 7, 8, 9)
PROBES = {
    "Conv1d(6,10,k3,bias)": (I1, None, lambda: nn.Conv1d(6, 10, 3)),
    "Conv1d(6,10,k3,nobias)": (I1, None, lambda: nn.Conv1d(6, 10, 3, bias=False)),
    "Conv2d(6,10,k3x5,s2,p1,bias)": (I2, None, lambda: nn.Conv2d(6, 10, (3, 5), stride=2, padding=1)),
    "Conv2d(6,10,k3x5,s2,p1,nobias)": (I2, None, lambda: nn.Conv2d(6, 10, (3, 5), stride=2, padding=1,
                                                                   bias=False)),
    "Conv2d(6,9,k3,g3,bias)": (I2, None, lambda: nn.Conv2d(6, 9, 3, groups=3)),
    "Conv2d(6,6,k3,g6,depthwise,nobias)": (I2, None, lambda: nn.Conv2d(6, 6, 3, groups=6, bias=False)),
    "Conv2d(6,10,k3,dil2,bias)": (I2, None, lambda: nn.Conv2d(6, 10, 3, dilation=2)),
    "Conv3d(4,6,k3,bias)": (I3, None, lambda: nn.Conv3d(4, 6, 3)),
    "ConvTranspose1d(6,10,k3,s2,bias)": (I1, None, lambda: nn.ConvTranspose1d(6, 10, 3, stride=2)),
    "ConvTranspose2d(6,10,k3,s2,bias)": ((2, 6, 7, 9), None, lambda: nn.ConvTranspose2d(6, 10, 3, stride=2)),
    "ConvTranspose2d(6,10,k3,s2,g2,nobias)": ((2, 6, 7, 9), None,
                                              lambda: nn.ConvTranspose2d(6, 10, 3, stride=2, groups=2, bias=False)),
    "ConvTranspose3d(4,6,k3,s2,bias)": ((2, 4, 3, 4, 5), None, lambda: nn.ConvTranspose3d(4, 6, 3, stride=2)),
    "Linear(20,30,bias)": ((2, 20), None, lambda: nn.Linear(20, 30)),
    "Linear(20,30,nobias)": ((2, 20), None, lambda: nn.Linear(20, 30, bias=False)),
    "Linear(20,30,bias)_3d_input": ((2, 7, 20), None, lambda: nn.Linear(20, 30)),
    "BatchNorm1d(6)": (I1, None, lambda: nn.BatchNorm1d(6)),
    "BatchNorm2d(6)": (I2, None, lambda: nn.BatchNorm2d(6)),
    "BatchNorm2d(6,affine=False)": (I2, None, lambda: nn.BatchNorm2d(6, affine=False)),
    "BatchNorm3d(4)": (I3, None, lambda: nn.BatchNorm3d(4)),
    "LayerNorm(17)": (I1, None, lambda: nn.LayerNorm(17)),
    "LayerNorm([6,17])": (I1, None, lambda: nn.LayerNorm([6, 17])),
    "LayerNorm(17,no_affine)": (I1, None, lambda: nn.LayerNorm(17, elementwise_affine=False)),
    "GroupNorm(3,6)": (I2, None, lambda: nn.GroupNorm(3, 6)),
    "GroupNorm(3,6,affine=False)": (I2, None, lambda: nn.GroupNorm(3, 6, affine=False)),
    "InstanceNorm2d(6)": (I2, None, lambda: nn.InstanceNorm2d(6)),
    "InstanceNorm2d(6,affine)": (I2, None, lambda: nn.InstanceNorm2d(6, affine=True)),
    "ReLU": (I2, None, lambda: nn.ReLU()),
    "ReLU(inplace)": (I2, None, lambda: nn.ReLU(inplace=True)),
    "ReLU6": (I2, None, lambda: nn.ReLU6()),
    "LeakyReLU": (I2, None, lambda: nn.LeakyReLU()),
    "PReLU": (I2, None, lambda: nn.PReLU()),
    "ELU": (I2, None, lambda: nn.ELU()),
    "Sigmoid": (I2, None, lambda: nn.Sigmoid()),
    "Tanh": (I2, None, lambda: nn.Tanh()),
    "GELU": (I2, None, lambda: nn.GELU()),
    "SiLU": (I2, None, lambda: nn.SiLU()),
    "Hardswish": (I2, None, lambda: nn.Hardswish()),
    "Hardsigmoid": (I2, None, lambda: nn.Hardsigmoid()),
    "Softmax(dim=1)": (I2, None, lambda: nn.Softmax(dim=1)),
    "Softmax(dim=-1)": (I2, None, lambda: nn.Softmax(dim=-1)),
    "MaxPool1d(3,2)": (I1, None, lambda: nn.MaxPool1d(3, 2)),
    "MaxPool2d(3,2)": (I2, None, lambda: nn.MaxPool2d(3, 2)),
    "MaxPool2d(3,2,ceil)": (I2, None, lambda: nn.MaxPool2d(3, 2, ceil_mode=True)),
    "MaxPool3d(2)": (I3, None, lambda: nn.MaxPool3d(2)),
    "AvgPool1d(3,2)": (I1, None, lambda: nn.AvgPool1d(3, 2)),
    "AvgPool2d(3,2)": (I2, None, lambda: nn.AvgPool2d(3, 2)),
    "AvgPool3d(2)": (I3, None, lambda: nn.AvgPool3d(2)),
    "AdaptiveAvgPool1d(5)": (I1, None, lambda: nn.AdaptiveAvgPool1d(5)),
    "AdaptiveAvgPool2d(1)": (I2, None, lambda: nn.AdaptiveAvgPool2d(1)),
    "AdaptiveAvgPool2d((5,5))_nondivisible": (I2, None, lambda: nn.AdaptiveAvgPool2d((5, 5))),
    "AdaptiveAvgPool2d((5,17))_divisible": (I2, None, lambda: nn.AdaptiveAvgPool2d((5, 17))),
    "AdaptiveAvgPool3d(1)": (I3, None, lambda: nn.AdaptiveAvgPool3d(1)),
    "AdaptiveMaxPool2d(1)": (I2, None, lambda: nn.AdaptiveMaxPool2d(1)),
    "Upsample(x2,nearest)": (I2, None, lambda: nn.Upsample(scale_factor=2)),
    "Upsample(x2,bilinear)": (I2, None, lambda: nn.Upsample(scale_factor=2, mode="bilinear")),
    "Upsample(size=(20,30),bilinear,align)": (I2, None, lambda: nn.Upsample(size=(20, 30), mode="bilinear",
                                                                            align_corners=True)),
    "Dropout": (I2, None, lambda: nn.Dropout()),
    "Flatten": (I2, None, lambda: nn.Flatten()),
    "Identity": (I2, None, lambda: nn.Identity()),
    "ZeroPad2d(1)": (I2, None, lambda: nn.ZeroPad2d(1)),
    "Embedding(100,16)": ((2, 9), 100, lambda: nn.Embedding(100, 16)),
    "add: x + x (operator)": (I2, None, lambda: Call(lambda x: x + x)),
    "add: torch.add(x,x)": (I2, None, lambda: Call(lambda x: torch.add(x, x))),
    "add: x.add(x)": (I2, None, lambda: Call(lambda x: x.add(x))),
    "add: y += x (inplace)": (I2, None, lambda: Call(_add_inplace)),
    "mul: x * x (operator)": (I2, None, lambda: Call(lambda x: x * x)),
    "mul: torch.mul(x,x)": (I2, None, lambda: Call(lambda x: torch.mul(x, x))),
    "mean: x.mean((2,3))": (I2, None, lambda: Call(lambda x: x.mean((2, 3)))),
    "F.relu (functional)": (I2, None, lambda: Call(lambda x: F.relu(x))),
    "F.adaptive_avg_pool2d(x,1) (functional)": (I2, None, lambda: Call(lambda x: F.adaptive_avg_pool2d(x, 1))),
    "torch.flatten (functional)": (I2, None, lambda: Call(lambda x: torch.flatten(x, 1))),
    "torch.cat": (I2, None, lambda: Call(lambda x: torch.cat([x, x], 1))),
    "matmul: torch.matmul(x, x^T) 4d": ((2, 5, 7, 11), None,
                                        lambda: Call(lambda x: torch.matmul(x, x.transpose(-2, -1)))),
    "matmul: x @ x^T 4d (operator)": ((2, 5, 7, 11), None, lambda: Call(lambda x: x @ x.transpose(-2, -1))),
    "matmul: x.matmul(x^T) 4d": ((2, 5, 7, 11), None, lambda: Call(lambda x: x.matmul(x.transpose(-2, -1)))),
    "bmm: torch.bmm(x, x^T)": ((10, 7, 11), None, lambda: Call(lambda x: torch.bmm(x, x.transpose(1, 2)))),
    "sdpa: F.scaled_dot_product_attention(x,x,x)": ((2, 4, 9, 16), None,
                                                    lambda: Call(lambda x: F.scaled_dot_product_attention(x, x, x))),
    "MultiheadAttention(32,4,batch_first,need_weights=False)": (
        (2, 9, 32), None, lambda: First(nn.MultiheadAttention(32, 4, batch_first=True), need_weights=False)),
    "MultiheadAttention(32,4,seq_first,need_weights=True)": (
        (9, 2, 32), None, lambda: First(nn.MultiheadAttention(32, 4), need_weights=True)),
    "LSTM(16,32,layers=1,seq_first)": ((9, 2, 16), None, lambda: First(nn.LSTM(16, 32))),
    "LSTM(16,32,layers=2,batch_first)": ((2, 9, 16), None, lambda: First(nn.LSTM(16, 32, 2, batch_first=True))),
    "LSTM(16,32,layers=2,bidir,batch_first)": (
        (2, 9, 16), None, lambda: First(nn.LSTM(16, 32, 2, batch_first=True, bidirectional=True))),
    "GRU(16,32,layers=1,batch_first)": ((2, 9, 16), None, lambda: First(nn.GRU(16, 32, batch_first=True))),
    "RNN(16,32,layers=1,batch_first)": ((2, 9, 16), None, lambda: First(nn.RNN(16, 32, batch_first=True))),
    "RNN(16,32,layers=1,nobias,batch_first)": (
        (2, 9, 16), None, lambda: First(nn.RNN(16, 32, bias=False, batch_first=True))),
    "LSTMCell(16,32)": ((2, 16), None, lambda: First(nn.LSTMCell(16, 32))),
    "GRU(16,32,layers=2,bidir,seq_first)": ((9, 2, 16), None, lambda: First(nn.GRU(16, 32, 2, bidirectional=True))),
    "RNN(16,32,layers=2,batch_first)": ((2, 9, 16), None, lambda: First(nn.RNN(16, 32, 2, batch_first=True))),
    "GRUCell(16,32)": ((2, 16), None, lambda: First(nn.GRUCell(16, 32))),
    "RNNCell(16,32)": ((2, 16), None, lambda: First(nn.RNNCell(16, 32))),
    "Linear(20,30,bias)_4d_input": ((2, 3, 7, 20), None, lambda: nn.Linear(20, 30)),
    "Linear(20,30,bias)_3d_noncontiguous_input": ((7, 2, 20), None, lambda: SeqFirstToBatchFirst(nn.Linear(20, 30))),
    "NonDynamicallyQuantizableLinear(20,30) (Linear subclass)": ((2, 20), None,
                                                                 lambda: NonDynamicallyQuantizableLinear(20, 30)),
    "UpsamplingNearest2d(x2) (Upsample subclass)": (I2, None, lambda: nn.UpsamplingNearest2d(scale_factor=2)),
    "Upsample(x2,trilinear)": (I3, None, lambda: nn.Upsample(scale_factor=2, mode="trilinear")),
    "Softmax(dim=1)_2d": ((2, 20), None, lambda: nn.Softmax(dim=1)),
    "ConvNormActivation-like Sequential(Conv2d,BN,ReLU)": (
        I2, None, lambda: nn.Sequential(nn.Conv2d(6, 10, 3, bias=False), nn.BatchNorm2d(10), nn.ReLU(inplace=True))),
}


# ---------------------------------------------------------------------------- the tools

def _fresh(build):
    torch.manual_seed(0)
    return build().eval()


def _input(shape, ints):
    torch.manual_seed(0)
    return torch.randint(0, ints, shape) if ints else torch.randn(shape)


def _torch(model, x, grad: bool):
    counter = FlopCounterMode(display=False)
    with (contextlib.nullcontext() if grad else torch.no_grad()), counter:
        model(x)
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items() if n}
    return int(counter.get_total_flops()), by_op


def _fvcore(model, x):
    from fvcore.nn import FlopCountAnalysis
    analysis = FlopCountAnalysis(model, (x,))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    total = int(analysis.total())
    return (total, {k: int(v) for k, v in analysis.by_operator().items()},
            {k: int(v) for k, v in analysis.unsupported_ops().items()})


def _torchinfo(model, x):
    from torchinfo import summary
    stats = summary(model, input_data=[x], verbose=0)
    return int(stats.total_mult_adds), int(stats.total_output_bytes), int(stats.total_param_bytes)


def _ptflops(model, x, backend: str):
    from ptflops import get_model_complexity_info
    macs, _ = get_model_complexity_info(model, tuple(x.shape[1:]), input_constructor=lambda _: x,
                                        as_strings=False, backend=backend, print_per_layer_stat=False,
                                        verbose=False)
    if macs is None:
        raise RuntimeError(f"ptflops ({backend}) failed on this probe")
    return int(macs)


@contextlib.contextmanager
def _ptflops_parts(parts: dict):
    """Records how ptflops' pytorch backend makes up its figure: its patched torch functions get
    a handler that notes (function, MACs) before counting, and the final division by the batch
    counter is watched to read the raw sum of the module hooks."""
    from ptflops import pytorch_engine as engine
    wrapper_init, average = engine.torch_function_wrapper.__init__, engine.compute_average_flops_cost
    functional = parts.setdefault("functional", [])

    def init(self, op, handler, collector):
        def noting(*args, **kwargs):
            macs = handler(*args, **kwargs)
            functional.append([op.__name__, int(macs)])
            return macs
        wrapper_init(self, op, noting, collector)

    def raw(module):   # as ptflops' accumulate_flops: a counted module's own, else its children's
        if engine.is_supported_instance(module):
            return module.__flops__
        return sum(raw(child) for child in module.children())

    def spied(self):
        parts["module_hooks_raw"], parts["batch_counter"] = int(raw(self)), int(self.__batch_counter__)
        return average(self)

    engine.torch_function_wrapper.__init__, engine.compute_average_flops_cost = init, spied
    try:
        yield
    finally:
        engine.torch_function_wrapper.__init__, engine.compute_average_flops_cost = wrapper_init, average


def _thop(model, x):
    from thop import profile
    macs, params = profile(model, inputs=(x,), verbose=False)
    return int(macs), int(params)


def measure(name: str) -> dict:
    shape, ints, build = PROBES[name]
    x = _input(shape, ints)
    model = _fresh(build)
    with torch.no_grad():
        out = model(x.clone())
    rec = {"input_shape": list(shape), "params": sum(p.numel() for p in model.parameters()),
           "output_shape": list(out.shape)}
    rec["torch"], rec["torch_by_op"] = _torch(_fresh(build), x.clone(), grad=True)
    rec["torch_no_grad"], _ = _torch(_fresh(build), x.clone(), grad=False)
    rec["fvcore"], rec["fvcore_by_op"], rec["fvcore_unsupported"] = _fvcore(_fresh(build), x.clone())
    (rec["torchinfo"], rec["torchinfo_fwd_bwd_bytes"],
     rec["torchinfo_params_bytes"]) = _torchinfo(_fresh(build), x.clone())
    rec["ptflops_aten"] = _ptflops(_fresh(build), x.clone(), "aten")
    parts: dict = {}
    with _ptflops_parts(parts):
        rec["ptflops_pytorch"] = _ptflops(_fresh(build), x.clone(), "pytorch")
    rec["ptflops_pytorch_parts"] = {"module_hooks_raw": parts["module_hooks_raw"],
                                    "batch_counter": parts["batch_counter"], "functional": parts["functional"]}
    made_up = int(parts["module_hooks_raw"] / parts["batch_counter"] + sum(m for _, m in parts["functional"]))
    if made_up != rec["ptflops_pytorch"]:
        raise AssertionError(f"{name}: ptflops parts {parts} do not make up {rec['ptflops_pytorch']}")
    rec["thop"], rec["thop_params"] = _thop(_fresh(build), x.clone())
    return rec


# ---------------------------------------------------------------------------- the file

def provenance() -> dict:
    versions = {tool: importlib.metadata.version(tool) for tool in TOOLS}
    return {
        "what": "Single PyTorch layers measured by each counting tool, batch 2 (seq-first probes: the "
                "input's first dimension is the sequence, its second the batch).",
        "units": "torch, torch_no_grad: FLOPs (2 per multiply-add); fvcore: 1 per multiply-add; thop, "
                 "ptflops_*, torchinfo: multiply-adds as each tool counts them. ptflops_pytorch = "
                 "int(module_hooks_raw / batch_counter + sum(functional)); batch_counter = length of the "
                 "root module's first input.",
        "generated_by": "tests/data/generate_probe.py (python tests/data/generate_probe.py)",
        "generated_at_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        **versions,
        "first_recorded": "shared/reference/layer_probe.json of the project's steering area, by "
                          "ref/probe_layers.py (torch 2.13.0+cpu, thop 0.1.1-2209072238, ptflops 0.7.5, "
                          "fvcore 0.1.5.post20221221, torchinfo 1.8.0); this script reproduces every figure "
                          "of that file (see --check).",
    }


def dumps(obj, depth: int = 2, level: int = 0) -> str:
    """JSON with the top ``depth`` levels of objects spread over lines and everything deeper on
    one line: one line per probe, which keeps the file readable and its diffs small."""
    if level >= depth or not isinstance(obj, dict) or not obj:
        return json.dumps(obj, ensure_ascii=False)
    pad = " " * (level + 1)
    items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {dumps(v, depth, level + 1)}" for k, v in obj.items()]
    return "{\n" + ",\n".join(items) + "\n" + " " * level + "}"


def differences(old: dict, new: dict) -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in old or name not in new:
            out.append(f"{name}: only in the {'new' if name in new else 'committed'} figures")
            continue
        for key in sorted(set(old[name]) | set(new[name])):
            if old[name].get(key) != new[name].get(key):
                out.append(f"{name}: {key}: committed {old[name].get(key)!r}, measured {new[name].get(key)!r}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file; write nothing")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write (default: %(default)s)")
    parser.add_argument("--only", nargs="*", help="measure these probes only (with --check)")
    args = parser.parse_args(argv)
    if args.only:
        unknown = set(args.only) - set(PROBES)
        if unknown:
            parser.error(f"no such probe: {sorted(unknown)}")
        if not args.check:
            parser.error("--only goes with --check")
    names = args.only or list(PROBES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probes = {}
        for name in names:
            probes[name] = measure(name)
            print(f"measured {name}", file=sys.stderr)
    if args.check:
        committed = json.loads(OUT.read_text())["probes"]
        diff = differences({k: committed[k] for k in names if k in committed}, probes)
        print("\n".join(diff) if diff else f"all {len(probes)} probes reproduce the committed figures")
        return 1 if diff else 0
    doc = {"provenance": provenance(), "probes": probes}
    args.out.write_text(dumps(doc) + "\n")
    print(f"wrote {len(probes)} probes to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
