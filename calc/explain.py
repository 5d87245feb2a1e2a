"""Explanations: every number of an analysis as a formula with its values (`calc explain`).

Computing and rendering are separate: :func:`explain` returns :class:`Entry` records built from
the layers' own steps (:meth:`calc.layers.Layer.explain`) and the convention's rules;
:func:`calc.render.explain.format_explanation` turns them into text. Nothing here prints.

A leaf shows its output shape, parameters and elementary operations, then the convention's
rule for its type with the layer's facts put in. A block, repeat or branch shows its subtotals
as the sum of its children.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import conventions as conv_mod
from .analysis import Analysis, Result
from .errors import SpecError
from .formula import Step, _num
from .limits import FOLD, MAX_EXPLAINED

_SHAPE = ("shape", "ceil")
_PARAMS = ("weights", "bias", "params", "buffers")


@dataclass(frozen=True)
class Section:
    title: str
    steps: tuple[Step, ...]
    note: str = ""


@dataclass(frozen=True)
class Entry:
    """The explanation of one layer or namespace (a named item or block instance), named as
    `calc analyze` names it; ``parts`` are the rows directly inside a namespace."""

    name: str
    depth: int
    result: Result
    sections: tuple[Section, ...]


def explain(a: Analysis, layer: str | None = None) -> list[Entry]:
    """Entries for every row of ``a`` (as `calc analyze` lists them) and the model total last,
    or for the row named ``layer`` and everything inside it."""
    # Folded as the reports fold them: a repeat of a billion iterations is two entries.
    rows = list(a.rows(fold=FOLD))
    if layer is None:
        _check_size(len(rows) + 1, "the model")
        entries = [_entry(a, rows, i, 0) for i in range(len(rows))]
        top = [r for r in rows if r.depth == 1]
        entries.append(Entry("total", 0, a.root, _container_sections(a, a.root, top)))
        return entries
    for i, row in enumerate(rows):
        if row.name == layer:
            end = next((j for j in range(i + 1, len(rows)) if rows[j].depth <= row.depth), len(rows))
            _check_size(end - i, f"'{layer}'")
            return [_entry(a, rows, j, row.depth) for j in range(i, end)]
    names = [row.name for row in rows]
    raise SpecError(f"no layer named '{layer}'; names look like {', '.join(names[:6])}"
                    + (", …" if len(names) > 6 else "") + " (see `calc analyze`)")


def _check_size(n: int, what: str) -> None:
    if n > MAX_EXPLAINED:
        raise SpecError(f"{what} has {n:,} entries to explain; calc explains at most {MAX_EXPLAINED:,} "
                        "at a time: choose a part with --layer NAME (a name as `calc analyze --depth 2` "
                        "shows it)")


def row_entry(a: Analysis, rows, i: int) -> Entry:
    """The explanation of ``rows[i]``, for any list of rows as :meth:`Analysis.rows` gives
    them (the HTML report explains the rows of its table this way)."""
    return _entry(a, rows, i, 0)


def _entry(a: Analysis, rows, i: int, base: int) -> Entry:
    row = rows[i]
    depth = row.depth - 1 - (base - 1 if base else 0)
    if row.count > 1:
        return Entry(row.name, depth, row.result, _folded_sections(a, row))
    if row.result.is_leaf:
        return Entry(row.name, depth, row.result, _leaf_sections(a, row.result))
    parts = []
    for j in range(i + 1, len(rows)):
        if rows[j].depth <= row.depth:
            break
        if rows[j].depth == row.depth + 1:
            parts.append(rows[j])
    return Entry(row.name, depth, row.result, _container_sections(a, row.result, parts))


# ---------------------------------------------------------------------------- leaves

def layer_steps(r: Result) -> list[Step]:
    """The layer's own steps for the shapes it saw."""
    if r.inputs:
        return r.layer.explain_many(list(r.inputs), r.output_shape)
    return r.layer.explain(r.input_shape, r.output_shape)


def _leaf_sections(a: Analysis, r: Result) -> tuple[Section, ...]:
    steps = layer_steps(r)
    shape = tuple(s for s in steps if s.key.split(".")[0] in _SHAPE)
    params = tuple(s for s in steps if s.key in _PARAMS)
    ops = tuple(s for s in steps if s not in shape and s not in params)
    sections = [Section("output", shape)]
    sections.append(Section("parameters", params) if params else Section("parameters", (), "none"))
    sections.append(Section("operations per sample", ops) if ops else Section("operations per sample", (), "none"))
    sections.append(convention_section(a, r))
    return tuple(sections)


def convention_section(a: Analysis, r: Result) -> Section:
    """The convention's rules for this layer with its facts put in; the last two steps'
    values are the layer's MACs and FLOPs for the whole batch. The steps are the convention's
    own trace of the count the analysis made (:meth:`calc.conventions.Convention.trace`)."""
    conv = conv_mod.get(a.convention)
    t = conv.trace(r.layer, r.facts, a.batch, r.inputs or r.input_shape, r.output_shape)
    return Section(f"convention {conv.name} (rule for {t.key})", t.steps, t.why)


# ---------------------------------------------------------------------------- containers

def _folded_sections(a: Analysis, row) -> tuple[Section, ...]:
    """A folded run of identical repetitions: each is the one explained just above it."""
    k, r = row.count, row.result

    def times(key: str, label: str, value: int) -> Step:
        return Step(key, label, "", f"{k:,}·{_num(value)}", k * value)

    steps = (times("params", "params", r.params), times("macs", "MACs", a.macs_of(r)),
             times("flops", "FLOPs", a.flops_of(r)))
    return (Section(f"{k:,} more repetitions, each the same as the first one above", steps),)


def _container_sections(a: Analysis, r: Result, parts) -> tuple[Section, ...]:
    """Subtotals of a namespace as the sum of the rows directly inside it."""
    names = [p.name.rsplit(".", 1)[-1] for p in parts]

    def total(key: str, label: str, value_of) -> Step:
        # Summed here, not through the expression evaluator: a concat of a thousand inputs has a
        # thousand terms, and counts are exact however large.
        values = [v for v in (value_of(part.result, part.count) for part in parts) if v]  # zeros left out
        return Step(key, label, "", " + ".join(map(_num, values)) or "0", sum(values))

    steps = (total("params", "params", lambda x, k: k * x.params),
             total("macs", "MACs", a.macs_of),
             total("flops", "FLOPs", a.flops_of))
    kind = r.kind[6:] if r.kind.startswith("block:") else r.kind
    return (Section(f"{kind}: the sum of its parts ({', '.join(names)}; zeros left out)"
                    + (", MACs and FLOPs for the whole batch" if a.batch > 1 else ""), steps),)
