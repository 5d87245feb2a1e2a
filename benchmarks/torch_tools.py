"""The torch-based counting tools on the ResNet-50 that calc's PyTorch oracle builds from a spec.

Run by benchmarks/run.py in an interpreter that has PyTorch (the oracle extra); prints one JSON
document on standard output. Two modes:

    torch_tools.py inprocess SPEC [--repeats N]
        builds the module once (materialised by one forward pass), then times each tool's count
        of it: median seconds of N calls after a warm-up call;
    torch_tools.py whole SPEC TOOL
        does everything one command-line use of TOOL would: import torch and the tool, build the
        module, count once (the caller times the whole process).

A tool that is not installed, or an oracle that is missing, is reported as skipped with the reason.
"""
from __future__ import annotations

import copy
import json
import os
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TOOLS = ("torch FlopCounterMode", "thop", "fvcore", "ptflops (pytorch)", "ptflops (aten)", "torchinfo")


def _module(spec_path):
    import torch
    from calc import load_spec
    from calc.oracle import build_module   # the oracle extra
    model = load_spec(spec_path).build()
    module = build_module(model)
    x = torch.zeros(1, *model.input_shape)
    with torch.no_grad():
        module(x)                          # materialises the lazily built layers
    return module, x


def _counter(name):
    """A function (module, x) -> count for the tool, or raise ImportError."""
    import torch
    if name == "torch FlopCounterMode":
        from torch.utils.flop_counter import FlopCounterMode

        def run(module, x):
            counter = FlopCounterMode(display=False)
            with torch.no_grad(), counter:
                module(x)
            return counter.get_total_flops()
        return run, False
    if name == "thop":
        from thop import profile

        def run(module, x):
            return profile(module, inputs=(x,), verbose=False)[0]
        return run, True                   # thop leaves buffers on the modules: count a copy
    if name == "fvcore":
        from fvcore.nn import FlopCountAnalysis

        def run(module, x):
            analysis = FlopCountAnalysis(module, x)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return analysis.total()
        return run, False
    if name.startswith("ptflops"):
        from ptflops import get_model_complexity_info
        backend = name[len("ptflops ("):-1]

        def run(module, x):
            macs, _ = get_model_complexity_info(module, tuple(x.shape[1:]), as_strings=False, backend=backend,
                                                print_per_layer_stat=False, verbose=False)
            return macs
        return run, False
    if name == "torchinfo":
        from torchinfo import summary

        def run(module, x):
            return summary(module, input_data=[x], verbose=0).total_mult_adds
        return run, False
    raise ValueError(name)


def inprocess(spec_path, repeats):
    out = {"tools": {}}
    try:
        start = time.perf_counter()
        module, x = _module(spec_path)
        out["build_seconds"] = time.perf_counter() - start
    except Exception as exc:  # the oracle is missing or refuses the spec
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    import torch
    out["torch"] = torch.__version__
    for name in TOOLS:
        try:
            run, needs_copy = _counter(name)
        except ImportError as exc:
            out["tools"][name] = {"skipped": f"not installed ({exc.name})"}
            continue
        times = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(repeats + 1):
                m = copy.deepcopy(module) if needs_copy else module
                start = time.perf_counter()
                count = run(m, x)
                times.append(time.perf_counter() - start)
        out["tools"][name] = {"seconds": statistics.median(times[1:]), "count": int(count)}
    return out


def whole(spec_path, name):
    run, _ = _counter(name)                # imports torch and the tool
    module, x = _module(spec_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"count": int(run(module, x))}


def main(argv):
    mode, spec_path = argv[0], argv[1]
    if mode == "inprocess":
        repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else 5
        result = inprocess(spec_path, repeats)
    else:
        try:
            result = whole(spec_path, argv[2])
        except ImportError as exc:
            result = {"skipped": f"not installed ({exc.name})"}
        except Exception as exc:  # the oracle is missing or refuses the spec
            result = {"skipped": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
