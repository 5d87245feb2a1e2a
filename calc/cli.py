"""Command line: parse arguments, call the library, print, exit. The only place that prints."""
from __future__ import annotations

import argparse
import json
import re
import sys

import yaml

from . import __version__
from .analysis import DTYPE_BYTES, analyze
from .conventions import CONVENTIONS
from .errors import CalcError, SpecError
from .report import FORMATS


def parse_shape(text: str) -> tuple[int, ...]:
    """'3x512x512' (or '3,512,512') -> (3, 512, 512)."""
    parts = [p for p in re.split(r"[x×,\s]+", text.strip()) if p]
    if not parts or not all(p.isdigit() for p in parts) or any(int(p) < 1 for p in parts):
        raise SpecError(f"--input: expected sizes such as 3x224x224, got {text!r}")
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
        except yaml.YAMLError:
            parsed = value
        scalars = (int, float, str, bool)
        if not (isinstance(parsed, scalars) or (isinstance(parsed, list) and parsed
                                                 and all(isinstance(v, scalars) for v in parsed))):
            raise SpecError(f"--set {key}: expected a number, true/false, a word or a list such as "
                            f"[3,4,6,3], got {value!r}")
        out[key] = parsed
    return out


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _spec_args(p: argparse.ArgumentParser):
    p.add_argument("spec", help="spec file (YAML), or - for standard input")
    p.add_argument("--input", help="per-sample input shape, e.g. 3x512x512 (overrides the spec)")
    p.add_argument("--batch", type=_positive, default=1, help="batch size (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a spec variable (repeatable)")
    p.add_argument("--convention", default="standard", help="counting convention (see `calc conventions`)")
    p.add_argument("--dtype", default="fp32", choices=sorted(DTYPE_BYTES), help="parameter/activation dtype")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calc", description="Static calculator of neural-network cost: "
                                     "shapes, parameters, MACs, FLOPs and memory from a YAML spec.")
    parser.add_argument("--version", action="version", version=f"calc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("analyze", help="per-layer shapes, parameters, MACs and totals")
    _spec_args(p)
    p.add_argument("--format", default="table", choices=sorted(FORMATS), help="output format")
    p.add_argument("--depth", type=_positive, help="collapse the table below this nesting depth")
    sub.add_parser("layers", help="list every layer type with its arguments and formulas")
    sub.add_parser("schema", help="print the JSON Schema of the spec format")
    sub.add_parser("conventions", help="list the counting conventions")
    return parser


def load_and_analyze(args):
    from .spec import load_spec
    spec = load_spec(args.spec)
    shape = parse_shape(args.input) if args.input else None
    model = spec.build(parse_sets(args.set), input_shape=shape)
    return analyze(model, batch=args.batch, convention=args.convention, dtype=args.dtype)


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "analyze":
        analysis = load_and_analyze(args)
        sys.stdout.write(FORMATS[args.format](analysis, depth=args.depth))
    elif args.command == "layers":
        from .catalog import describe_layers
        sys.stdout.write(describe_layers())
    elif args.command == "schema":
        from .catalog import spec_schema
        sys.stdout.write(json.dumps(spec_schema(), indent=2) + "\n")
    elif args.command == "conventions":
        for conv in CONVENTIONS.values():
            sys.stdout.write(f"{conv.name}\n    {conv.description}\n\n")
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
    sys.exit(main())
