"""Command line: parse arguments, call the library, print, exit. The only place that prints."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys


from . import __version__
from .choices import DTYPE_BYTES, KV_BYTES, PHASES, SCALE_BYTES, WEIGHT_FORMATS
from .errors import CalcError, InputError, SpecError
from .limits import MAX_BATCH, MAX_JOBS, MAX_RANK, MAX_SIZE, clip, exact_digits

# Start-up: this module imports only what parsing the arguments needs (no pydantic, no layer
# type), so that `calc --version` and `calc --help` answer at once; each command imports the
# modules it uses inside its branch of `run` (see docs/contributing.md).

# The formats of `calc analyze` (the keys of calc.render.report.FORMATS; tests/test_startup.py
# checks that they agree), written here so that the parser does not load the renderer.
REPORT_FORMATS = ("csv", "json", "markdown", "table")


def analyze(*args, **kwargs):
    """:func:`calc.analysis.analyze`, imported on first use."""
    from .analysis import analyze as run_analysis
    return run_analysis(*args, **kwargs)


# Control characters from a spec (a name, a type) must not reach a terminal raw: ESC starts
# escape sequences, BEL rings. Tabs and newlines are calc's own; everything else is shown as \xNN.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with control characters written as escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def _out(text: str) -> None:
    sys.stdout.write(visible(text))


def parse_shape(text: str) -> tuple[int, ...]:
    """'3x512x512' (or '3,512,512') -> (3, 512, 512)."""
    if len(text) > 64 * (MAX_RANK + 1):
        raise SpecError(f"--input: expected sizes such as 3x224x224, got {_clip(text)}")
    parts = [p for p in re.split(r"[x×,\s]+", text.strip()) if p]
    if not parts or not all(p.isascii() and p.isdigit() and len(p) <= 20 for p in parts) \
            or not all(1 <= int(p) <= MAX_SIZE for p in parts):
        raise SpecError(f"--input: expected sizes from 1 to 2**40 such as 3x224x224, got {_clip(text)}")
    if len(parts) > MAX_RANK:
        raise SpecError(f"--input: {len(parts)} dimensions; a shape has at most {MAX_RANK}")
    return tuple(int(p) for p in parts)


def parse_sets(pairs: list[str]) -> dict:
    """['width=0.75', 'layers=[2,2,2,2]'] -> {'width': 0.75, 'layers': [2, 2, 2, 2]} (values read as YAML)."""
    from .spec.loader import parse_value
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--set: expected NAME=VALUE, got {_clip(pair)}")
        try:
            parsed = parse_value(value)
        except CalcError as err:
            if "YAML" in err.message and "ambiguous" not in err.message:
                parsed = value  # not YAML: read as an expression or a word
            else:
                raise SpecError(f"--set {key}: {err.message}") from None
        if not _settable(parsed):
            raise SpecError(f"--set {key}: expected a number, true/false, a word or a list such as "
                            f"[3,4,6,3], [] or [[1,16],[6,24]] (lists nest up to three levels), got {_clip(value)}")
        out[key] = parsed
    return out


_clip = clip


def _settable(value, depth: int = 0) -> bool:
    """A value --set may give: a scalar, or a list (possibly empty) nesting up to three levels."""
    if isinstance(value, (int, float, str, bool)):
        return True
    return isinstance(value, list) and depth < 3 and all(_settable(v, depth + 1) for v in value)


def _bounded(limit: int, shown: str):
    def parse(text: str) -> int:
        value = None
        if len(text) <= 110:
            try:
                value = int(text)
            except ValueError:
                pass
        if value is None or not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"expected a positive whole number (at most {shown}), got {_clip(text)}")
        return value
    return parse


_positive = _bounded(10**9, "1,000,000,000")
_batch = _bounded(MAX_BATCH, "10**100")
_jobs = _bounded(MAX_JOBS, f"{MAX_JOBS}")


class _Parser(argparse.ArgumentParser):
    """Usage mistakes read like every other error: ``error: ...`` and exit status 2."""

    def error(self, message):
        self.exit(2, visible(f"error: {self.prog}: {message} (see {self.prog} --help)") + "\n")


def parse_pair(text: str) -> tuple[str, str]:
    """'thop,ptflops' -> ('thop', 'ptflops')."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise SpecError(f"--diff: expected two conventions such as thop,ptflops, got {text!r}")
    return parts[0], parts[1]


def _spec_args(p: argparse.ArgumentParser):
    p.add_argument("spec", help="spec file (YAML), - for standard input, or a bundled model's name")
    p.add_argument("--input", help="per-sample input shape, e.g. 3x512x512 (overrides the spec)")
    p.add_argument("--batch", type=_batch, default=1, help="batch size (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a spec variable (repeatable)")
    p.add_argument("--convention", default="standard", help="counting convention (see `calc conventions`)")
    p.add_argument("--dtype", default="fp32", choices=sorted(DTYPE_BYTES), help="parameter/activation dtype")


def _phase_args(p: argparse.ArgumentParser):
    p.add_argument("--phase", choices=PHASES, help="inference phase of a sequence model: prefill (the prompt of "
                   "--context tokens), decode (one new token per sequence attending over --context keys, the "
                   "KV cache plus itself), generate (prefill of --context tokens, then --new tokens); see docs/llm.md")
    p.add_argument("--context", type=_positive, help="with --phase: the prompt length (prefill, generate) or the "
                   "keys a decode step attends over (decode)")
    p.add_argument("--new", type=_positive, help="with --phase generate: how many tokens to generate")
    p.add_argument("--kv-dtype", choices=sorted(KV_BYTES), help="KV-cache dtype (default: --dtype)")
    p.add_argument("--weights", choices=list(WEIGHT_FORMATS), help="format of the weight matrices for the weight "
                   "memory (int8, fp8_e4m3, fp8_e5m2, int4, nf4 with scales); the rest stays in --dtype")
    p.add_argument("--group-size", type=_positive, help="with --weights: weights per scale along a row "
                   "(default: int4 128, nf4 64, int8/fp8 one scale per row)")
    p.add_argument("--scale-dtype", default="fp16", choices=list(SCALE_BYTES), help="with --weights: the scales' dtype")
    p.add_argument("--zero-point", action="store_true", help="with --weights int8/int4: a zero point per group")


def _memory_args(p: argparse.ArgumentParser):
    from .choices import CHECKPOINTING, MASTERS, MEMORY_ATTENTION, MEMORY_TOOLS as TOOLS, \
        OPTIMIZER_NAMES as OPTIMIZERS, PRECISIONS
    p.add_argument("spec", help="spec file (YAML), - for standard input, or a bundled model's name")
    p.add_argument("--input", help="per-sample input shape, e.g. 3x512x512 (overrides the spec)")
    p.add_argument("--batch", type=_batch, default=1, help="batch per device (per data-parallel replica) per step")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a spec variable")
    p.add_argument("--dtype", default="fp32", choices=sorted(DTYPE_BYTES), help="inference dtype (default fp32)")
    p.add_argument("--weights", choices=list(WEIGHT_FORMATS), help="inference: quantised weight matrices")
    p.add_argument("--train", action="store_true", help="one training step instead of inference")
    p.add_argument("--optimizer", default="adamw", choices=list(OPTIMIZERS), help="with --train (default adamw)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help="with --train (default fp32)")
    p.add_argument("--master", default="amp", choices=MASTERS, help="mixed precision: amp (fp32 weights, 16-bit "
                   "autocast copies; PyTorch) or copy (16-bit weights, fp32 master copy; Megatron, DeepSpeed)")
    p.add_argument("--accumulate", type=_positive, default=1, help="gradient accumulation: micro-batches per step")
    p.add_argument("--checkpointing", default="none", choices=CHECKPOINTING, help="activation checkpointing")
    p.add_argument("--attention", default="eager", choices=MEMORY_ATTENTION, help="attention implementation")
    p.add_argument("--zero", type=int, default=0, choices=(0, 1, 2, 3), help="ZeRO / FSDP stage")
    p.add_argument("--devices", type=_positive, default=1, help="devices (data parallel × tensor parallel)")
    p.add_argument("--tp", type=_positive, default=1, help="tensor-parallel devices")
    p.add_argument("--fits", metavar="SIZE|HARDWARE", help="the largest batch (or --over context) whose total per "
                   "device fits, e.g. 80GB, 40GiB or a hardware preset's name")
    p.add_argument("--over", default="batch", choices=("batch", "context"), help="what --fits searches")
    p.add_argument("--convention", default="calc", choices=("calc", *TOOLS), help="also show a tool's figures")
    p.add_argument("--compare", action="store_true", help="every tool's convention beside calc's, with why they differ")
    p.add_argument("--format", default="table", choices=("table", "json"), help="output format")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="calc", description="Static calculator of neural-network cost: "
                                     "shapes, parameters, MACs, FLOPs and memory from a YAML spec.")
    parser.add_argument("--version", action="version", version=f"calc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("analyze", help="per-layer shapes, parameters, MACs and totals")
    _spec_args(p)
    p.add_argument("--format", default="table", choices=REPORT_FORMATS, help="output format")
    p.add_argument("--depth", type=_positive, help="collapse the table below this nesting depth")
    p.add_argument("--compare-conventions", action="store_true",
                   help="instead of the table: totals under every convention side by side (as `calc compare`)")
    p.add_argument("--diff", metavar="A,B", help="with --compare-conventions: the layers where conventions A and B differ")
    _phase_args(p)
    p = sub.add_parser("import", help="write a spec from another format: hf CONFIG.json (a Hugging Face config)")
    p.add_argument("source", choices=("hf",), help="the format: hf (a Hugging Face config.json, read offline)")
    p.add_argument("config", help="the config file")
    p.add_argument("--name", help="the spec's name (default: the config's model_type)")
    p.add_argument("-o", "--output", help="write the spec to this file (default: standard output)")
    p = sub.add_parser("explain", help="every layer's shape, parameters and operations as formulas with their values")
    _spec_args(p)
    p.add_argument("--layer", metavar="NAME", help="explain this layer or block only (a name as `calc analyze` shows it)")
    p.add_argument("--symbolic", action="store_true", help="parameters and MACs as exact formulas in the input "
                   "sizes and the batch, and the polynomial on a residue class (see docs/commands.md)")
    p.add_argument("--modulus", type=_positive, help="with --symbolic: the residue class's modulus (default: the "
                   "smallest that makes every floor exact)")
    p.add_argument("--residue", type=int, default=0, help="with --symbolic: the sizes' residue modulo --modulus "
                   "(default 0: sizes divisible by it)")
    p.add_argument("--sizes", metavar="A,B", help="with --symbolic: the input dimensions to make symbols, by name "
                   "(default: all but the channels), e.g. --sizes L for an input [L, d]")
    p.add_argument("--vary", action="append", default=[], metavar="NAME",
                   help="with --symbolic: also a whole-number variable of the spec as a symbol (up to 2)")
    p = sub.add_parser("check", help="check the spec's expect: figures against calc's counts; exit 1 if any fails")
    p.add_argument("spec", help="spec file (YAML), - for standard input, or a bundled model's name")
    p.add_argument("--input", help="per-sample input shape, e.g. 3x512x512 (overrides the spec)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a spec variable (repeatable)")
    p.add_argument("--format", default="table", choices=("table", "json"), help="output format")
    p.add_argument("--property", action="store_true", help="check the expression expectations at values drawn "
                   "from the spec's ranges:, shrinking a failure to a minimal counterexample")
    p.add_argument("--examples", type=_positive, default=100, help="with --property: examples to draw (default 100)")
    p.add_argument("--seed", type=int, default=0, help="with --property: the random seed (default 0)")
    p = sub.add_parser("compare", help="totals under every convention side by side, and where two of them differ")
    _spec_args(p)
    p.add_argument("--diff", metavar="A,B", help="list the layers where conventions A and B differ, e.g. thop,ptflops")
    p.add_argument("--conventions", metavar="A,B,...", help="compare only these conventions")
    p.add_argument("--format", default="table", choices=("table", "json"), help="output format")
    p.add_argument("--report", metavar="FILE", help="also write the HTML report, opened at the conventions side by side")
    p = sub.add_parser("report", help="one self-contained HTML page: totals, the layer table with explanations, "
                       "charts, the graph and every convention (works offline)")
    _spec_args(p)
    p.add_argument("-o", "--output", default="report.html", metavar="FILE",
                   help="the page to write (default report.html; - for standard output)")
    p.add_argument("--hardware", metavar="NAME|FILE", help="add the roofline plot and latency cards "
                   "on this device (a preset, see `calc hardware`, or a hardware YAML file)")
    p.add_argument("--peak-dtype", help="the peak to use with --hardware (default --dtype)")
    p.add_argument("--attention", default="eager", help="eager or fused attention kernels (with --hardware)")
    p.add_argument("--efficiency", action="append", default=[], metavar="KEY=FRACTION",
                   help="fraction of peak reached, as for `calc time` (with --hardware)")
    p = sub.add_parser("sweep", help="totals for every variant of a grid of variables, inputs and batches")
    p.add_argument("spec", help="spec file (YAML), - for standard input, or a bundled model's name")
    p.add_argument("--set", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="values of a spec variable to sweep (repeatable)")
    p.add_argument("--input", action="append", default=[], metavar="SHAPE,SHAPE,...",
                   help="per-sample input shapes, e.g. 3x160x160,3x224x224 (default: the spec's)")
    p.add_argument("--batch", action="append", default=[], metavar="N,N,...", help="batch sizes (default 1)")
    p.add_argument("--convention", default="standard", help="counting convention (see `calc conventions`)")
    p.add_argument("--dtype", default="fp32", choices=sorted(DTYPE_BYTES), help="parameter/activation dtype")
    p.add_argument("--format", default="table", choices=("table", "csv", "json"),
                   help="table, csv, or json (JSON Lines: one object per variant)")
    p.add_argument("--sort", metavar="COLUMN", help="sort by a column; --sort=-COLUMN sorts descending")
    p.add_argument("--filter", action="append", default=[], metavar="EXPR",
                   help="keep variants where EXPR holds, e.g. 'macs < 2e9 and width >= 0.5' (repeatable)")
    p.add_argument("--pareto", metavar="A,B",
                   help="mark the Pareto-optimal variants for two columns, minimising both "
                        "(-COLUMN: larger is better), e.g. macs,params")
    p.add_argument("--jobs", type=_jobs, help="worker processes (default: every core for large grids)")
    p.add_argument("--hardware", metavar="NAME|FILE", help="add latency and throughput columns: the roofline "
                   "estimate on this hardware (see `calc time`)")
    p.add_argument("--report", metavar="FILE",
                   help="also write an HTML page: a scatter of any two columns with the Pareto front")
    p.add_argument("--phase", choices=("prefill", "decode", "generate"),
                   help="sweep an inference phase of a sequence model (see docs/sweeps.md)")
    p.add_argument("--context", action="append", default=[], metavar="N,N,...",
                   help="with --phase: prompt lengths (prefill, generate) or keys attended (decode)")
    p.add_argument("--new", action="append", default=[], metavar="N,N,...", help="with --phase generate: tokens generated")
    p = sub.add_parser("verify", help="calc's numbers beside PyTorch's (needs PyTorch: pip install "
                       "'calc[torch]'); exit status 1 on any disagreement")
    p.add_argument("spec", help="spec file (YAML), - for standard input, or a bundled model's name")
    p.add_argument("--input", help="per-sample input shape, e.g. 3x512x512 (overrides the spec)")
    p.add_argument("--batch", type=_batch, default=1, help="batch size (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a spec variable (repeatable)")
    p.add_argument("--time", action="store_true", help="also time the forward on this CPU beside calc's roofline "
                   "estimate (see docs/time.md)")
    p.add_argument("--hardware", metavar="FILE", help="with --time: this machine's description (default: derived)")
    p.add_argument("--memory", action="store_true",
                   help="compare the activations saved for backward in one training pass, to the byte")
    p.add_argument("--inference", action="store_true", help="with --memory: compare the inference peak instead")
    p.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16", "fp64"),
                   help="with --memory: the dtype the model runs in (default fp32)")
    p = sub.add_parser("time", help="roofline time per layer on a hardware preset: latency, FPS, tokens/s "
                       "(a lower bound; see docs/time.md)")
    from .render.time import add_arguments as time_arguments
    time_arguments(p, _phase_args)
    p = sub.add_parser("models", help="every bundled model and variant by name, with torchvision's "
                       "published parameters and GFLOPS beside calc's")
    p.add_argument("--format", default="table", choices=("table", "json"), help="output format")
    p = sub.add_parser("memory", help="memory per device in bytes: weights, KV cache and activation peak, or "
                       "with --train gradients, optimizer states and saved activations; what fits (docs/memory.md)")
    _memory_args(p)
    sub.add_parser("layers", help="list every layer type with its arguments and formulas")
    sub.add_parser("schema", help="print the JSON Schema of the spec format")
    p = sub.add_parser("conventions", help="list the counting conventions with their rules")
    p.add_argument("name", nargs="?", help="show one convention")
    p = sub.add_parser("hardware", help="the hardware presets with their sources, or one device "
                       "(a preset or your YAML file) in full with its peak formulas")
    p.add_argument("name", nargs="?", metavar="NAME|FILE", help="a preset's name or a hardware YAML file")
    p.add_argument("--format", default="table", choices=("table", "json"), help="output format")
    return parser


def open_spec(path: str):
    """(Spec, variant or None): a file, or else a bundled model or variant by name."""
    from .spec import load_spec
    from . import models
    if models.looks_like_name(path) and not os.path.exists(path):
        return models.open_named(path)
    return load_spec(path), None


def load_model(args):
    spec, variant = open_spec(args.spec)
    shape = parse_shape(args.input) if args.input else None
    return spec.build(parse_sets(args.set), input_shape=shape, variant=variant)


def load_and_analyze(args):
    return analyze(load_model(args), batch=args.batch, convention=args.convention, dtype=args.dtype)


def run_compare(args, fmt: str = "table") -> str:
    from .compare import compare
    from .render.compare import FORMATS as COMPARE_FORMATS
    names = [n.strip() for n in args.conventions.split(",")] if getattr(args, "conventions", None) else None
    diff = parse_pair(args.diff) if args.diff else None
    result = compare(load_model(args), batch=args.batch, dtype=args.dtype, names=names, diff=diff)
    return COMPARE_FORMATS[fmt](result)


def run_sweep(args) -> None:
    import time

    from . import sweep as sw
    from .render import sweep as rep
    from .spec.loader import read_text
    from .spec import parse_spec

    spec_path, variant = args.spec, None
    from . import models
    if models.looks_like_name(spec_path) and not os.path.exists(spec_path):
        models.open_named(spec_path)          # the error for an unknown name
        entry = models.find(spec_path)
        spec_path, variant = str(entry.path), entry.variant
    text, name = read_text(spec_path)
    spec = parse_spec(text, name)
    variables = []
    for pair in args.set:
        key, sep, values = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set: expected NAME=V1,V2,..., got {pair!r}")
        try:
            variables.append((key.strip(), sw.parse_values(values)))
        except SpecError as err:
            raise SpecError(f"--set {key.strip()}: {err.message}") from None
    inputs = [parse_shape(s) for arg in args.input for s in arg.split(",") if s.strip()]
    if variant is not None:
        # A variant's values are one-valued axes (shown as columns) unless swept here.
        chosen = spec.variants[variant]
        swept = {k for k, _ in variables}
        variables = [(k, [v]) for k, v in chosen.variables.items() if k not in swept] + variables
        if not inputs and chosen.input is not None:
            inputs = [chosen.input]
    batches = []
    for arg in args.batch:
        for part in arg.split(","):
            try:
                batches.append(_batch(part.strip()))
            except argparse.ArgumentTypeError as exc:
                raise SpecError(f"--batch: {exc}") from None
    from .sweep_phase import phase_axes
    try:
        sizes = {k: [_positive(x.strip()) for arg in getattr(args, k) for x in arg.split(",") if x.strip()]
                 for k in ("context", "new")}
    except argparse.ArgumentTypeError as exc:
        raise SpecError(f"--context/--new: {exc}") from None
    grid = sw.make_grid(spec, variables, inputs, batches, phase=args.phase, phase_axes=
                        phase_axes(args.phase, sizes["context"], sizes["new"]),
                        hardware=args.hardware)
    keep = [sw.compile_filter(f, grid) for f in args.filter]
    order = sw.parse_order(args.sort, grid) if args.sort else None
    pareto_cols = [sw.parse_order(c, grid) for c in args.pareto.split(",")] if args.pareto else None
    if pareto_cols is not None and len(pareto_cols) != 2:
        raise SpecError("--pareto takes two columns, e.g. macs,params")

    total = grid.size
    sw.check_size(grid, held=args.format == "table" or order is not None or pareto_cols is not None)
    stream = sw.sweep(text, name, grid, convention=args.convention, dtype=args.dtype, jobs=args.jobs)
    if sys.stderr.isatty() and total >= 1000:
        stream = _with_progress(stream, total, rep.progress_bar, time.perf_counter)
    selected = (v for v in stream if all(k(v) for k in keep))
    out = sys.stdout
    if args.format != "table" and order is None and pareto_cols is None and not args.report:
        lines = rep.csv_lines(grid, selected) if args.format == "csv" else rep.json_lines(grid, selected)
        for line in lines:           # streamed: a long sweep is written as it runs
            out.write(visible(line))
        return
    variants = list(selected)        # small tuples: totals only
    flags = sw.pareto_flags(grid, variants, pareto_cols) if pareto_cols else None
    if order is not None:
        position = {v.index: k for k, v in enumerate(variants)}
        variants = sw.sort_variants(grid, variants, *order)
        if flags is not None:
            flags = [flags[position[v.index]] for v in variants]
    title = (f"{spec.name} · sweep of {total:,} variant{'s' if total != 1 else ''} · "
             f"convention {args.convention} · {args.dtype}")
    if args.report:
        from .render.html import format_html, sweep_data
        pareto = [("-" if larger else "") + c for c, larger in pareto_cols] if pareto_cols else None
        data = sweep_data(f"{spec.name} · calc sweep", title, [rep.record(grid, v) for v in variants],
                          grid.names, pareto)
        data["description"] = spec.doc.description
        write_page(args.report, format_html(data))
    if args.format == "table":
        labels = [f"{c} ({'max' if larger else 'min'})" for c, larger in pareto_cols or ()]
        title = (f"{spec.name} · sweep of {total:,} variant{'s' if total != 1 else ''} · "
                 f"convention {args.convention} · {args.dtype}")
        out.write(visible(rep.format_table(grid, variants, flags, title=title, pareto_cols=labels, total=total)))
    else:
        lines = rep.csv_lines(grid, variants, flags) if args.format == "csv" else \
            rep.json_lines(grid, variants, flags)
        for line in lines:
            out.write(visible(line))


def _with_progress(stream, total, bar, clock):
    """Passes the variants through, redrawing a progress bar on standard error."""
    start = last = clock()
    done = 0
    try:
        for v in stream:
            done += 1
            now = clock()
            if now - last >= 0.1:
                sys.stderr.write("\r" + bar(done, total, now - start))
                sys.stderr.flush()
                last = now
            yield v
    finally:
        sys.stderr.write("\r" + bar(done, total, clock() - start) + "\n")


def run_report(args, focus: str | None = None) -> str:
    """The HTML report of a spec: analysed under the chosen convention, and under every other
    one for the page's convention switch (one that cannot count the model is listed with why)."""
    from . import conventions as conv_mod
    from .errors import ConventionError
    from .render.html import format_html, model_data
    model = load_model(args)
    main = analyze(model, batch=args.batch, convention=args.convention, dtype=args.dtype)
    others, failed = [], {}
    for name in conv_mod.CONVENTIONS:
        if name == main.convention:
            continue
        try:
            others.append(analyze(model, batch=args.batch, convention=name, dtype=args.dtype))
        except ConventionError as err:
            failed[name] = err.message
    extras = None
    if getattr(args, "hardware", None):
        from .render.roofline_html import roofline_extras
        from .render.time import parse_efficiency
        extras = roofline_extras(main, args.hardware, args.peak_dtype, args.attention,
                                 parse_efficiency(args.efficiency))
    data = model_data(main, others, failed, extras)
    if focus:
        data["focus"] = focus
    return format_html(data)


def write_page(path: str, page: str) -> None:
    """Writes a report to ``path`` (``-``: standard output), saying so on standard error."""
    if path == "-":
        sys.stdout.write(page)
        return
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as exc:
        raise InputError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
    sys.stderr.write(f"wrote {path} ({len(page.encode()):,} bytes)\n")


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sweep":
        run_sweep(args)
    elif args.command == "analyze":
        if args.compare_conventions:
            _out(run_compare(args, "json" if args.format == "json" else "table"))
            return 0
        if args.diff:
            raise SpecError("--diff needs --compare-conventions (or use `calc compare --diff A,B`)")
        if args.phase or args.context or args.new or args.kv_dtype or args.weights:
            from .render.inference import run_phase_command
            sys.stdout.write(run_phase_command(args, load_model(args)))
            return 0
        from .render.report import STREAMS
        from ._gc import paused
        with paused():      # from reading the spec to the report's last line (see calc._gc)
            analysis = load_and_analyze(args)
            for piece in STREAMS[args.format](analysis, depth=args.depth):   # long reports are streamed
                _out(piece)
    elif args.command == "import":
        from .importer import import_hf
        text = import_hf(args.config, args.name)
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
    elif args.command == "verify" and (args.memory or args.inference):
        from .memory.verify import run_verify_memory
        return run_verify_memory(args, load_model(args), _out)
    elif args.command == "verify":
        from .verify import format_verification, verify
        model = load_model(args)
        result = verify(model, batch=args.batch)
        _out(format_verification(result))
        if args.time or args.hardware:
            from .roofline.measure import run_verify_time
            _out(run_verify_time(args, model))
        return 0 if result.ok else 1
    elif args.command == "compare":
        _out(run_compare(args, args.format))
        if args.report:
            write_page(args.report, run_report(args, focus="conventions"))
    elif args.command == "report":
        write_page(args.output, run_report(args))
    elif args.command == "check":
        from .check import run_check
        text, code = run_check(args)
        _out(text)
        return code
    elif args.command == "explain" and args.symbolic:
        from .check.symbolic import run_symbolic
        _out(run_symbolic(args))
    elif args.command == "explain":
        from .explain import explain
        from .render.explain import format_explanation
        analysis = load_and_analyze(args)
        _out(format_explanation(analysis, explain(analysis, args.layer)))
    elif args.command == "time":
        from .render.time import run_time
        _out(run_time(args, load_model(args), _batch))
    elif args.command == "models":
        from . import models
        from .render.models import FORMATS as MODEL_FORMATS
        _out(MODEL_FORMATS[args.format](models.catalog(), models.published()["provenance"], models.not_bundled()))
    elif args.command == "memory":
        from .render.memory import run_memory
        _out(run_memory(args))
    elif args.command == "layers":
        from .render.catalog import describe_layers
        sys.stdout.write(describe_layers())
    elif args.command == "schema":
        from .catalog import spec_schema
        sys.stdout.write(json.dumps(spec_schema(), indent=2) + "\n")
    elif args.command == "conventions":
        from .render.catalog import describe_conventions
        sys.stdout.write(describe_conventions(args.name))
    elif args.command == "hardware":
        from .render.hardware import hardware_text
        _out(hardware_text(args.name, args.format))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        # Counts are exact however large: lift Python's limit on writing long integers as text
        # (reading them, from YAML and --set, keeps it; see calc.limits.exact_digits).
        with exact_digits():
            return run(argv)
    except CalcError as err:
        sys.stderr.write(visible(f"error: {err}") + "\n")
        return err.exit_code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


def entry() -> None:
    # pydantic looks for its plugins (monitoring hooks) by reading the metadata of every installed
    # package when calc first validates a spec; the command loads none unless the user sets
    # PYDANTIC_DISABLE_PLUGINS themselves (to an empty string for all). See docs/performance.md.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        code = main()
    except SystemExit as exc:   # argparse's --version, --help and usage errors: the same fast exit
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    # The interpreter's own exit would free every module and object one by one and run the
    # collector over them, about a sixth of a short command's time. calc leaves nothing to
    # clean up (no atexit work, files closed, sweep workers joined), so once the output is
    # flushed the process ends at once.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left: as in main, not an error
        pass
    os._exit(code)
