"""Checking what a user expects (issue 18): ``expect:`` in a spec (:mod:`.expectations`),
the same expectations at many drawn sizes with shrinking (:mod:`.property`), and every count as
an exact formula in the input sizes (:mod:`.symbolic`, on :mod:`.algebra`).

``run_check`` is the `calc check` command: (text, exit status) — 0 when every expectation
holds, 1 when any fails; a spec error raises (exit 2 in the CLI).
"""
from __future__ import annotations



def __getattr__(name: str):
    # Imported on first use: `calc schema` reads only calc.check.quantities, and should not load
    # the analysis for it.
    if name in ("check_model", "Outcome"):
        from . import expectations
        return getattr(expectations, name)
    raise AttributeError(name)


def run_check(args) -> tuple[str, int]:
    from ..cli import open_spec, parse_sets, parse_shape
    from .expectations import check_model
    from ..render.check import check_json, format_check, format_property, property_json
    spec, variant = open_spec(args.spec)
    overrides = parse_sets(args.set)
    shape = parse_shape(args.input) if args.input else None
    if args.property:
        from .property import search
        report = search(spec, overrides, shape, variant, examples=args.examples, seed=args.seed)
        render = property_json if args.format == "json" else format_property
        return render(spec.name, report), 0 if report.counterexample is None else 1
    model = spec.build(overrides, input_shape=shape, variant=variant)
    write_notes(model)
    outcomes = check_model(model)
    text = check_json(model.name, outcomes) if args.format == "json" else \
        format_check(model.name, outcomes, model.source_name)
    return text, 0 if all(o.ok for o in outcomes) else 1


def write_notes(model, stream=None) -> None:
    """What the spec says that changes nothing (a hint no tool preset reads), one line each on
    standard error: it is not a failure, but likely not what the writer meant."""
    import sys
    from ..errors import format_path
    stream = stream or sys.stderr
    for path, message in model.notes:
        file, line = model.locate(path)
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        stream.write(f"note: {where}{format_path(path)}: {message}\n")
