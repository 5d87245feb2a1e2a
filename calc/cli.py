"""Command line: parse arguments, call the library, print, exit. The only place that prints."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

import yaml

from . import __version__
from .analysis import DTYPE_BYTES, analyze
from .errors import CalcError, InputError, SpecError
from .layers import MAX_SIZE
from .render.report import FORMATS


def parse_shape(text: str) -> tuple[int, ...]:
    """'3x512x512' (or '3,512,512') -> (3, 512, 512)."""
    parts = [p for p in re.split(r"[x×,\s]+", text.strip()) if p]
    if not parts or not all(p.isascii() and p.isdigit() and len(p) <= 20 for p in parts) \
            or not all(1 <= int(p) <= MAX_SIZE for p in parts):
        raise SpecError(f"--input: expected sizes from 1 to 2**40 such as 3x224x224, got {_clip(text)}")
    return tuple(int(p) for p in parts)


def parse_sets(pairs: list[str]) -> dict:
    """['width=0.75', 'layers=[2,2,2,2]'] -> {'width': 0.75, 'layers': [2, 2, 2, 2]} (values read as YAML)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--set: expected NAME=VALUE, got {pair!r}")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except (yaml.YAMLError, ValueError):  # ValueError: an integer of more than 4300 digits
            parsed = value
        scalars = (int, float, str, bool)
        if not (isinstance(parsed, scalars) or (isinstance(parsed, list) and parsed
                                                 and all(isinstance(v, scalars) for v in parsed))):
            raise SpecError(f"--set {key}: expected a number, true/false, a word or a list such as "
                            f"[3,4,6,3], got {_clip(value)}")
        out[key] = parsed
    return out


def _clip(text: str, limit: int = 60) -> str:
    """A user's value for a message, shortened when absurdly long."""
    text = repr(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {_clip(text)}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {_clip(text)}")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage mistakes read like every other error: ``error: ...`` and exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def parse_pair(text: str) -> tuple[str, str]:
    """'thop,ptflops' -> ('thop', 'ptflops')."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise SpecError(f"--diff: expected two conventions such as thop,ptflops, got {text!r}")
    return parts[0], parts[1]


def _spec_args(p: argparse.ArgumentParser):
    p.add_argument("spec", help="spec file (YAML), or - for standard input")
    p.add_argument("--input", help="per-sample input shape, e.g. 3x512x512 (overrides the spec)")
    p.add_argument("--batch", type=_positive, default=1, help="batch size (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a spec variable (repeatable)")
    p.add_argument("--convention", default="standard", help="counting convention (see `calc conventions`)")
    p.add_argument("--dtype", default="fp32", choices=sorted(DTYPE_BYTES), help="parameter/activation dtype")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="calc", description="Static calculator of neural-network cost: "
                                     "shapes, parameters, MACs, FLOPs and memory from a YAML spec.")
    parser.add_argument("--version", action="version", version=f"calc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("analyze", help="per-layer shapes, parameters, MACs and totals")
    _spec_args(p)
    p.add_argument("--format", default="table", choices=sorted(FORMATS), help="output format")
    p.add_argument("--depth", type=_positive, help="collapse the table below this nesting depth")
    p.add_argument("--compare-conventions", action="store_true",
                   help="instead of the table: totals under every convention side by side (as `calc compare`)")
    p.add_argument("--diff", metavar="A,B", help="with --compare-conventions: the layers where conventions A and B differ")
    p = sub.add_parser("explain", help="every layer's shape, parameters and operations as formulas with their values")
    _spec_args(p)
    p.add_argument("--layer", metavar="NAME", help="explain this layer or block only (a name as `calc analyze` shows it)")
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
    p = sub.add_parser("sweep", help="totals for every variant of a grid of variables, inputs and batches")
    p.add_argument("spec", help="spec file (YAML), or - for standard input")
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
    p.add_argument("--jobs", type=_positive, help="worker processes (default: every core for large grids)")
    p.add_argument("--report", metavar="FILE",
                   help="also write an HTML page: a scatter of any two columns with the Pareto front")
    p = sub.add_parser("verify", help="calc's numbers beside PyTorch's (needs PyTorch: pip install "
                       "'calc[torch]'); exit status 1 on any disagreement")
    p.add_argument("spec", help="spec file (YAML), or - for standard input")
    p.add_argument("--input", help="per-sample input shape, e.g. 3x512x512 (overrides the spec)")
    p.add_argument("--batch", type=_positive, default=1, help="batch size (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a spec variable (repeatable)")
    sub.add_parser("layers", help="list every layer type with its arguments and formulas")
    sub.add_parser("schema", help="print the JSON Schema of the spec format")
    p = sub.add_parser("conventions", help="list the counting conventions with their rules")
    p.add_argument("name", nargs="?", help="show one convention")
    return parser


def load_model(args):
    from .spec import load_spec
    spec = load_spec(args.spec)
    shape = parse_shape(args.input) if args.input else None
    return spec.build(parse_sets(args.set), input_shape=shape)


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

    text, name = read_text(args.spec)
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
    batches = []
    for arg in args.batch:
        for part in arg.split(","):
            if not part.strip().isdigit() or int(part) < 1:
                raise SpecError(f"--batch: expected positive whole numbers, got {part.strip()!r}")
            batches.append(int(part))
    grid = sw.make_grid(spec, variables, inputs, batches)
    keep = [sw.compile_filter(f, grid) for f in args.filter]
    order = sw.parse_order(args.sort, grid) if args.sort else None
    pareto_cols = [sw.parse_order(c, grid) for c in args.pareto.split(",")] if args.pareto else None
    if pareto_cols is not None and len(pareto_cols) != 2:
        raise SpecError("--pareto takes two columns, e.g. macs,params")

    total = len(grid)
    stream = sw.sweep(text, name, grid, convention=args.convention, dtype=args.dtype, jobs=args.jobs)
    if sys.stderr.isatty() and total >= 1000:
        stream = _with_progress(stream, total, rep.progress_bar, time.perf_counter)
    selected = (v for v in stream if all(k(v) for k in keep))
    out = sys.stdout
    if args.format != "table" and order is None and pareto_cols is None and not args.report:
        lines = rep.csv_lines(grid, selected) if args.format == "csv" else rep.json_lines(grid, selected)
        for line in lines:           # streamed: a long sweep is written as it runs
            out.write(line)
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
        out.write(rep.format_table(grid, variants, flags, title=title, pareto_cols=labels, total=total))
    else:
        lines = rep.csv_lines(grid, variants, flags) if args.format == "csv" else \
            rep.json_lines(grid, variants, flags)
        for line in lines:
            out.write(line)


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
    data = model_data(main, others, failed)
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
            sys.stdout.write(run_compare(args, "json" if args.format == "json" else "table"))
            return 0
        if args.diff:
            raise SpecError("--diff needs --compare-conventions (or use `calc compare --diff A,B`)")
        analysis = load_and_analyze(args)
        sys.stdout.write(FORMATS[args.format](analysis, depth=args.depth))
    elif args.command == "verify":
        from .verify import format_verification, verify
        result = verify(load_model(args), batch=args.batch)
        sys.stdout.write(format_verification(result))
        return 0 if result.ok else 1
    elif args.command == "compare":
        sys.stdout.write(run_compare(args, args.format))
        if args.report:
            write_page(args.report, run_report(args, focus="conventions"))
    elif args.command == "report":
        write_page(args.output, run_report(args))
    elif args.command == "explain":
        from .explain import explain
        from .render.explain import format_explanation
        analysis = load_and_analyze(args)
        sys.stdout.write(format_explanation(analysis, explain(analysis, args.layer)))
    elif args.command == "layers":
        from .render.catalog import describe_layers
        sys.stdout.write(describe_layers())
    elif args.command == "schema":
        from .catalog import spec_schema
        sys.stdout.write(json.dumps(spec_schema(), indent=2) + "\n")
    elif args.command == "conventions":
        from .render.catalog import describe_conventions
        sys.stdout.write(describe_conventions(args.name))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except CalcError as err:
        sys.stderr.write(f"error: {err}\n")
        return err.exit_code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


def entry() -> None:
    code = main()
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
