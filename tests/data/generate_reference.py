"""Regenerates tests/data/torchvision_reference.json: torchvision models measured by PyTorch and
every counting tool.

Usage (from the repository root, with torch 2.13.0, the tools (pip install '.[tools]') and
torchvision 0.28.0 importable)::

    python tests/data/generate_reference.py            # rewrite tests/data/torchvision_reference.json
    python tests/data/generate_reference.py --check    # measure, compare with the committed file
    python tests/data/generate_reference.py --check --only resnet18 vit_b_16
    python tests/data/generate_reference.py --add swin_t swin_v2_t   # measure these, merge them in

torchvision is needed for its model definitions only. The CPU build of torchvision is not on
PyPI, and the compiled operators of the PyPI wheel are built for another torch; none of them is
used by these models, so when they cannot be registered the script skips registering them (it
pre-empts the two torchvision modules that register them) and goes on. For example::

    pip download --no-deps torchvision==0.28.0 -d /tmp/tv && unzip -q /tmp/tv/*.whl -d /tmp/tv/site
    PYTHONPATH=/tmp/tv/site python tests/data/generate_reference.py --check

Each case builds ``torchvision.models.<name>(weights=None, **kwargs)`` after
``torch.manual_seed(0)``, in eval mode, and measures it on one input (``input_shape`` includes the
batch): ``torch.randn`` for torch's FlopCounterMode, fvcore and thop; torchinfo makes its own from
``input_size``; ptflops makes its own batch of one, or is given the batch where it is larger.
Every tool gets a freshly built model. Recorded per case:

* parameters (``params_total``, ``params_trainable``), buffers (tensors, elements, elements
  without BatchNorm's ``num_batches_tracked``) and the batched ``output_shape``;
* ``torch_flops`` (FlopCounterMode, grad mode on, 2 per MAC), ``torch_flops_no_grad``,
  ``torch_by_op``; ``fvcore_flops`` (1 per MAC), ``fvcore_by_operator``, ``fvcore_unsupported_ops``,
  ``fvcore_params``; ``torchinfo_mult_adds`` with its parameter counts and memory lines in bytes;
  ``ptflops_aten_macs``, ``ptflops_pytorch_macs`` (with their parameter counts) and
  ``ptflops_pytorch_parts`` (module hooks' raw sum / batch counter + functional sum); ``thop_macs``,
  ``thop_params``;
* ``leaves``: one row per leaf module (``leaf_columns``): qualified name, class, output shape of its
  last call in a plain forward (null: never called as a module), calls, own parameters, and each
  tool's count for it: thop (total_ops), ptflops_mod (its module hook, raw), ptflops_func (patched
  functions run while it was the innermost module), fvcore (by_module), torch (FlopCounterMode
  per module) and torchinfo (LayerInfo.macs over its calls);
* ``nonleaf_self_counts``: the same counts for modules with children, less their children's
  (``<root>`` is the model itself), where not zero.

The first version of these figures was recorded by the project's reference generator outside
this repository (``ref/make_reference.py``, whose output was shared/reference/
torchvision_public.json, with tool timings that are not kept here); this script measures the same
cases anew.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import platform
import sys
import types
import warnings
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from generate_probe import differences, dumps, ptflops_parts

HERE = Path(__file__).resolve().parent
OUT = HERE / "torchvision_reference.json"
TOOLS = ("torchvision", "thop", "ptflops", "fvcore", "torchinfo")
LEAF_COLUMNS = ["name", "class", "out_shape", "calls", "params", "thop", "ptflops_mod", "ptflops_func",
                "fvcore", "torch", "torchinfo"]
ROOT = "<root>"

# key -> (torchvision builder, its keyword arguments, batched input shape)
IMAGE = (1, 3, 224, 224)
CASES = {name: (name, {}, IMAGE) for name in [
    "alexnet", "vgg11", "vgg16", "vgg19", "vgg16_bn", "resnet18", "resnet34", "resnet50", "resnet101",
    "resnet152", "mobilenet_v2"]}
CASES["googlenet"] = ("googlenet", {"aux_logits": False, "init_weights": False}, IMAGE)
CASES.update({name: (name, {}, IMAGE) for name in ["densenet121", "squeezenet1_0", "efficientnet_b0", "vit_b_16"]})
# Swin V1 and V2 at their weights' crop sizes (added with --add; see provenance.added)
CASES["swin_t"] = ("swin_t", {}, IMAGE)
CASES["swin_v2_t"] = ("swin_v2_t", {}, (1, 3, 256, 256))
CASES["alexnet@1x3x512x512"] = ("alexnet", {}, (1, 3, 512, 512))
CASES["alexnet@8x3x224x224"] = ("alexnet", {}, (8, 3, 224, 224))
CASES["resnet50@4x3x224x224"] = ("resnet50", {}, (4, 3, 224, 224))


def import_torchvision():
    try:
        import torchvision
    except RuntimeError:   # its compiled operators do not fit this torch: the models need none
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
            sys.modules[name] = types.ModuleType(name)
        import torchvision
    return torchvision


def _fresh(case):
    builder, kwargs, _ = CASES[case]
    torch.manual_seed(0)
    return getattr(import_torchvision().models, builder)(weights=None, **kwargs).eval()


def _randn(shape):
    torch.manual_seed(0)
    return torch.randn(shape)


@contextlib.contextmanager
def _innermost(model):
    """Tracks the innermost running module (its qualified name, ``<root>`` for the model)."""
    names = {m: (n or ROOT) for n, m in model.named_modules()}
    stack: list = []

    def enter(module, args):
        stack.append(names.get(module, "?"))

    def leave(module, args, output):
        stack.pop()
    handles = [torch.nn.modules.module.register_module_forward_pre_hook(enter),
               torch.nn.modules.module.register_module_forward_hook(leave)]
    try:
        yield lambda: stack[-1] if stack else ROOT
    finally:
        for h in handles:
            h.remove()


def _self_counts(per_module: dict, model) -> tuple[dict, dict]:
    """(leaf counts, non-leaf self counts) from cumulative per-module counts keyed by name."""
    leaves, selves = {}, {}
    for name, module in model.named_modules():
        children = [f"{name}.{c}" if name else c for c, _ in module.named_children()]
        own = per_module.get(name or ROOT, 0) - sum(per_module.get(c, 0) for c in children)
        if children:
            if own:
                selves[name or ROOT] = own
        else:
            leaves[name] = per_module.get(name, 0)
    return leaves, selves


def _plain(case, x):
    model = _fresh(case)
    shapes, calls = {}, {}
    names = {m: n for n, m in model.named_modules()}

    def hook(module, args, output):
        name = names[module]
        calls[name] = calls.get(name, 0) + 1
        shapes[name] = list(output.shape) if isinstance(output, torch.Tensor) else None
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        out = model(x)
    for h in handles:
        h.remove()
    buffers = dict(model.named_buffers())
    rec = {"params_total": sum(p.numel() for p in model.parameters()),
           "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
           "buffers_tensors": len(buffers), "buffers_numel": sum(b.numel() for b in buffers.values()),
           "buffers_numel_excl_num_batches_tracked": sum(b.numel() for n, b in buffers.items()
                                                         if not n.endswith("num_batches_tracked")),
           "output_shape": list(out.shape)}
    return model, rec, shapes, calls


def _torch(case, x):
    model = _fresh(case)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    per_module = {}
    for key, ops in counts.items():
        if key == "Global":
            continue
        name = key[len(root) + 1:] if key.startswith(root + ".") else (ROOT if key == root else None)
        if name is not None:
            per_module[name] = int(sum(ops.values()))
    by_op = {str(op): int(n) for op, n in counts.get("Global", {}).items() if n}
    no_grad = FlopCounterMode(display=False)
    with torch.no_grad(), no_grad:
        _fresh(case)(x)
    return int(counter.get_total_flops()), int(no_grad.get_total_flops()), by_op, per_module, model


def _fvcore(case, x):
    from fvcore.nn import FlopCountAnalysis, parameter_count
    model = _fresh(case)
    analysis = FlopCountAnalysis(model, (x,))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    per_module = {(n or ROOT): int(v) for n, v in analysis.by_module().items()}
    return (int(analysis.total()), {k: int(v) for k, v in analysis.by_operator().items()},
            {k: int(v) for k, v in analysis.unsupported_ops().items()}, int(parameter_count(model)[""]),
            per_module, model)


def _torchinfo(case, shape):
    from torchinfo import summary
    model = _fresh(case)
    stats = summary(model, input_size=tuple(shape), verbose=0)
    names = {m: n for n, m in model.named_modules()}
    per_leaf: dict = {}
    for info in stats.summary_list:
        name = names.get(info.module)
        if name is not None and info.is_leaf_layer:
            per_leaf[name] = per_leaf.get(name, 0) + int(info.macs)
    rec = {"torchinfo_mult_adds": int(stats.total_mult_adds), "torchinfo_params": int(stats.total_params),
           "torchinfo_trainable": int(stats.trainable_params), "torchinfo_input_bytes": int(stats.total_input),
           "torchinfo_fwd_bwd_bytes": int(stats.total_output_bytes),
           "torchinfo_params_bytes": int(stats.total_param_bytes)}
    rec["torchinfo_total_bytes"] = (rec["torchinfo_input_bytes"] + rec["torchinfo_fwd_bwd_bytes"]
                                    + rec["torchinfo_params_bytes"])
    # the memory lines as torchinfo prints them: megabytes (bytes / 1e6) with 2 decimals
    rec["torchinfo_report_MB"] = {line: f"{rec[f'torchinfo_{line}_bytes'] / 1e6:0.2f}"
                                  for line in ("input", "fwd_bwd", "params", "total")}
    return rec, per_leaf


def _ptflops(case, shape, backend, parts=None):
    from ptflops import get_model_complexity_info
    model = _fresh(case)
    batch = shape[0]
    constructor = (lambda _: _randn(shape)) if batch > 1 else None
    context = contextlib.nullcontext(lambda: ROOT)
    if parts is not None:
        context = _innermost(model)
    with context as where:
        spy = ptflops_parts(parts, where) if parts is not None else contextlib.nullcontext()
        with spy:
            macs, params = get_model_complexity_info(model, tuple(shape[1:]), input_constructor=constructor,
                                                     as_strings=False, backend=backend,
                                                     print_per_layer_stat=False, verbose=False)
    if macs is None:
        raise RuntimeError(f"ptflops ({backend}) failed on {case}")
    return int(macs), int(params), model


def _thop(case, x):
    from thop import profile
    model = _fresh(case)
    macs, params, tree = profile(model, inputs=(x,), verbose=False, ret_layer_info=True)
    per_leaf = {}

    def walk(prefix, node):
        for name, (ops, _, children) in node.items():
            full = f"{prefix}.{name}" if prefix else name
            if children:
                walk(full, children)
            else:
                per_leaf[full] = int(ops)
    walk("", tree)
    return int(macs), int(params), per_leaf


def measure(case: str) -> dict:
    builder, kwargs, shape = CASES[case]
    x = _randn(shape)
    model, rec, shapes, calls = _plain(case, x)
    rec = {"model": builder, "kwargs": kwargs, "input_shape": list(shape), **rec}
    rec["torch_flops"], rec["torch_flops_no_grad"], rec["torch_by_op"], torch_per, _ = _torch(case, x)
    (rec["fvcore_flops"], rec["fvcore_by_operator"], rec["fvcore_unsupported_ops"], rec["fvcore_params"],
     fvcore_per, _) = _fvcore(case, x)
    info, torchinfo_leaf = _torchinfo(case, shape)
    rec.update(info)
    rec["ptflops_aten_macs"], rec["ptflops_aten_params"], _ = _ptflops(case, shape, "aten")
    parts: dict = {}
    rec["ptflops_pytorch_macs"], rec["ptflops_pytorch_params"], pt_model = _ptflops(case, shape, "pytorch", parts)
    by_op: dict = {}
    func_per: dict = {}
    for op, macs, where in parts["functional"]:
        by_op[op] = by_op.get(op, 0) + macs
        func_per[where] = func_per.get(where, 0) + macs
    rec["ptflops_pytorch_parts"] = {"module_hooks_sum_raw": parts["module_hooks_raw"],
                                    "batch_counter": parts["batch_counter"],
                                    "functional_sum": sum(by_op.values()), "functional_by_op": by_op,
                                    "formula": "int(module_hooks_sum_raw / batch_counter + functional_sum)"}
    made_up = int(parts["module_hooks_raw"] / parts["batch_counter"] + sum(by_op.values()))
    if made_up != rec["ptflops_pytorch_macs"]:
        raise AssertionError(f"{case}: ptflops parts do not make up {rec['ptflops_pytorch_macs']}")
    pt_names = {m: n for n, m in pt_model.named_modules()}
    mod_per = {(pt_names[m] or ROOT): v for m, v in parts["modules"].items()}
    rec["thop_macs"], rec["thop_params"], thop_leaf = _thop(case, x)

    torch_leaf, torch_self = _self_counts(torch_per, model)
    fvcore_leaf, fvcore_self = _self_counts(fvcore_per, model)
    # ptflops' raw hook sums and functional MACs are each a module's own, not cumulative
    func_self = {n: v for n, v in func_per.items() if v and _has_children(model, n)}
    mod_self = {n: v for n, v in mod_per.items() if v and _has_children(model, n)}
    rec["nonleaf_self_counts"] = {"torch": torch_self, "fvcore": fvcore_self, "ptflops_func": func_self,
                                  "ptflops_mod": mod_self}
    rec["leaf_columns"] = LEAF_COLUMNS
    rec["leaves"] = [[name, type(m).__name__, shapes.get(name), calls.get(name, 0),
                      sum(p.numel() for p in m.parameters()), thop_leaf.get(name, 0), mod_per.get(name, 0),
                      func_per.get(name, 0), fvcore_leaf.get(name, 0), torch_leaf.get(name, 0),
                      torchinfo_leaf.get(name, 0)]
                     for name, m in model.named_modules() if not any(True for _ in m.children())]
    return rec


def _has_children(model, name: str) -> bool:
    module = model if name == ROOT else dict(model.named_modules()).get(name)
    return module is not None and any(True for _ in module.children())


def provenance() -> dict:
    versions = {tool: importlib.metadata.version(tool) for tool in TOOLS}
    return {
        "what": "torchvision models (weights=None, eval mode, torch.manual_seed(0)) measured by PyTorch and "
                "each counting tool; keys with @ are a model at another input (the shape includes the batch).",
        "units": "torch_flops*: FLOPs (2 per multiply-add); fvcore_flops: 1 per multiply-add; thop_macs, "
                 "ptflops_*_macs, torchinfo_mult_adds: multiply-adds as each tool counts them; *_bytes: bytes.",
        "input": "torch.randn(shape) for torch, fvcore and thop; torchinfo makes its own from input_size; ptflops "
                 "makes an uninitialised batch of one, or is given torch.randn(shape) for a larger batch.",
        "generated_by": "tests/data/generate_reference.py (python tests/data/generate_reference.py)",
        "generated_at_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_num_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        **versions,
        "first_recorded": "shared/reference/torchvision_public.json of the project's steering area, generated "
                          "2026-11-22T04:06:46Z by ref/make_reference.py (torch 2.13.0+cpu, torchvision 0.28.0, "
                          "thop 0.1.1-2209072238, ptflops 0.7.5, fvcore 0.1.5.post20221221, torchinfo 1.8.0, "
                          "Python 3.11.7, 2 threads); this script reproduces every figure of that file (see "
                          "--check), its tool timings (not kept here) aside.",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file; write nothing")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write (default: %(default)s)")
    parser.add_argument("--only", nargs="*", help="measure these cases only (with --check)")
    parser.add_argument("--add", nargs="*", help="measure these cases only and merge them into the committed "
                                                  "file (its provenance lists them under 'added')")
    args = parser.parse_args(argv)
    if args.add:
        unknown = set(args.add) - set(CASES)
        if unknown:
            parser.error(f"no such case: {sorted(unknown)}")
        if args.check or args.only:
            parser.error("--add goes alone")
        args.only = args.add
    if args.only and not args.add:
        unknown = set(args.only) - set(CASES)
        if unknown:
            parser.error(f"no such case: {sorted(unknown)}")
        if not args.check:
            parser.error("--only goes with --check")
    names = args.only or list(CASES)
    cases = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            cases[name] = measure(name)
            print(f"measured {name}", file=sys.stderr)
    if args.check:
        committed = json.loads(OUT.read_text(encoding="utf-8"))["models"]
        diff = differences({k: committed[k] for k in names if k in committed}, cases)
        print("\n".join(diff) if diff else f"all {len(cases)} cases reproduce the committed figures")
        return 1 if diff else 0
    if args.add:
        doc = json.loads(OUT.read_text(encoding="utf-8"))
        now = provenance()
        doc["provenance"].setdefault("added", []).append(
            {"cases": list(cases), "generated_at_utc": now["generated_at_utc"],
             **{k: now[k] for k in ("torch", "torchvision", "thop", "ptflops", "fvcore", "torchinfo") if k in now}})
        doc["models"].update(cases)
    else:
        doc = {"provenance": provenance(), "models": cases}
    args.out.write_text(dumps(doc, depth=4) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
