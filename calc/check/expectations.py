"""`expect:` checked against calc's own counts (`calc check`). Computes; never prints.

Every item of a spec (layer, block use, group, repeat, residual, parallel) and the spec itself
may carry ``expect: {params: …, macs: …, convention: …}``. The builder keeps each mapping on its
node with the names its expressions may read (variables, block parameters, a repeat's index);
here the model is analysed once per convention the expectations name, the built tree is walked
beside the analysed one, and each expected value is evaluated with the item's dimensions added
(see :func:`item_names`) and compared, exactly, with the analysis's number.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..analysis import DTYPE_BYTES, Analysis, _positions, analyze, name_segment
from ..errors import CalcError, SpecError, close_matches, format_path
from ..expr import evaluate
from ..graph import Branches, Leaf, Model, Repeat, Seq
from .quantities import QUANTITIES, SETTINGS

_DIMS = {1: ("F",), 2: ("C", "L"), 3: ("C", "H", "W"), 4: ("C", "D", "H", "W")}


@dataclass(frozen=True)
class Outcome:
    """One expected quantity of one item, and what calc counts."""

    item: str            # the item's name as `calc analyze` shows it, or its place in the spec
    path: tuple          # where the expectation is written (…expect.macs)
    line: int | None
    quantity: str
    convention: str
    written: Any         # the value as the spec writes it (a number, an expression, a list)
    expected: Any
    actual: Any
    note: str = ""       # e.g. "and 5 identical repetitions after it"
    derivation: tuple = field(default=(), compare=False)   # calc's own steps, on a mismatch

    @property
    def ok(self) -> bool:
        return _equal(self.expected, self.actual)

    @property
    def difference(self):
        """actual − expected for numbers; None for shapes."""
        if isinstance(self.actual, tuple) or isinstance(self.expected, (tuple, list)):
            return None
        diff = Fraction(self.actual) - Fraction(self.expected)
        return int(diff) if diff.denominator == 1 else diff

    @property
    def is_expression(self) -> bool:
        return _is_expression(self.written)


def _is_expression(written) -> bool:
    if isinstance(written, list):
        return any(_is_expression(w) for w in written)
    return isinstance(written, str)


def _equal(expected, actual) -> bool:
    if isinstance(actual, tuple):
        return isinstance(expected, (list, tuple)) and len(expected) == len(actual) and all(
            _equal(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, bool) or not isinstance(expected, (int, float, Fraction)):
        return False
    try:
        return Fraction(expected) == actual
    except (OverflowError, ValueError):   # inf, nan
        return False


@dataclass(frozen=True)
class Site:
    """An expectation found in the built tree, with the analysed result it is checked against."""

    item: str
    mapping: dict
    env: dict
    path: tuple
    result: Any          # a Result (per convention: see collect)
    node: Any            # the graph node (None for the spec's own expect)
    count: int = 1


def item_names(model: Model, node, result, env: dict) -> dict[str, Any]:
    """The names an expected value may use: the item's input and output dimensions (C_in, H_in,
    W_in, C_out, H_out, W_out by rank; see docs/spec-format.md §9), ``in_shape`` and
    ``out_shape``, a leaf's own symbols as `calc explain` shows them (K_h, s_h, F_in, R …, and
    K, s, p, d when they are equal in every dimension), and, first of all, the spec's variables,
    block parameters and repeat index."""
    names: dict[str, Any] = {}
    for label, shape in (("in", result.input_shape), ("out", result.output_shape)):
        for letter, size in zip(_DIMS.get(len(shape), ()), shape):
            names[f"{letter}_{label}"] = size
        names[f"{label}_shape"] = list(shape)
    if isinstance(node, Leaf):
        layer = result.layer
        try:
            values = layer.values_many(list(result.inputs)) if result.inputs else layer.values(result.input_shape)
        except ValueError:   # pragma: no cover - the analysis took this shape
            values = {}
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                names[key] = value
        for short in ("K", "s", "p", "d"):
            per_dim = [v for k, v in values.items() if k.startswith(short + "_") and len(k) == len(short) + 2
                       and k[-1] in "lhwd"]
            if per_dim and len(set(per_dim)) == 1 and short not in values:
                names[short] = per_dim[0]
    # calc's own counts of the item, so that a formula may build on them (the teaching count
    # "params * H_out * W_out"); a layer's 0/1 flag `bias` would only confuse here.
    names.update(params=result.params, weights=result.weights, bias=result.bias)
    names.update(env)
    return names


def _sites(model: Model, a: Analysis) -> list[Site]:
    """Every expectation in the tree with the result of its item, named as the reports name it."""
    out: list[Site] = []
    if model.expect:
        sites, env = model.expect
        out += [Site("the model", mapping, env, path, a.root, None) for mapping, path in sites]

    def seq(items, result, prefix, taken, count):
        for item, child in zip(items, result.children):
            visit(item, child.result, prefix, taken, count * child.count)

    def visit(node, r, prefix, taken, count):
        namespace = isinstance(node, Leaf) or node.name is not None or (
            isinstance(node, Seq) and node.kind.startswith("block:"))
        if namespace:
            full = f"{prefix}.{name_segment(node.name, taken)}" if prefix else name_segment(node.name, taken)
            label, inner_prefix, inner_taken = full, full, {}
        else:
            label = (f"{prefix}: " if prefix else "") + format_path(node.origin)
            inner_prefix, inner_taken = prefix, taken
        if node.expect is not None:
            sites, env = node.expect
            out.extend(Site(label, mapping, env, path, r, node, count) for mapping, path in sites)
        if isinstance(node, Leaf):
            return
        if isinstance(node, Seq):
            seq(node.items, r, inner_prefix, inner_taken, 1)
        elif isinstance(node, Repeat):
            for j, child in enumerate(r.children):
                body = node.body if node.bodies is None else node.bodies[j]
                seq(body.items, child.result, inner_prefix, inner_taken, child.count)
                if child.count > 1:   # identical iterations after it: their positions are taken
                    per = _positions(None, child.result)
                    inner_taken[None] = inner_taken.get(None, 0) + per * (child.count - 1)
        elif isinstance(node, Branches):
            for branch, child in zip(node.branches, r.children):
                seq(branch.items, child.result, inner_prefix, inner_taken, 1)
            name_segment(node.join.name, inner_taken)   # the join takes its place, as in the reports

    seq(model.root.items, a.root, "", {}, 1)
    return out


def _settings(mapping: dict, path: tuple) -> tuple[str, str]:
    for key in mapping:
        if key not in QUANTITIES and key not in SETTINGS:
            known = list(QUANTITIES) + list(SETTINGS)
            near = close_matches(str(key), known, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise SpecError(f"expect: unknown key '{key}'{hint}; it takes {', '.join(known)}", path=path + (key,))
    conv = mapping.get("convention", "standard")
    dtype = mapping.get("dtype", "fp32")
    if not isinstance(conv, str):
        raise SpecError(f"convention must be a name such as standard, got {conv!r}", path=path + ("convention",))
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}", path=path + ("dtype",))
    if not any(k in QUANTITIES for k in mapping):
        raise SpecError(f"expect states no quantity; it takes {', '.join(QUANTITIES)}", path=path)
    return conv, dtype


def _expected(written, names: dict, path: tuple):
    if isinstance(written, bool) or written is None or isinstance(written, dict):
        raise SpecError(f"an expected value is a number or an expression, got {written!r}", path=path)
    if isinstance(written, list):
        return [_expected(w, names, path + (i,)) for i, w in enumerate(written)]
    if isinstance(written, str):
        try:
            value = evaluate(written, names)
        except SpecError as err:
            hint = ("; write the shape as a YAML list of numbers or expressions, e.g. output: [C_out, H_out, W_out]"
                    if path[-1] == "output" and written.strip().startswith("[") else "")
            raise SpecError(err.message + hint, path=path) from None
        if isinstance(value, list) and path[-1] == "output":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{written!r} gives {value!r}, not a number", path=path)
        return value
    return written


def check_model(model: Model, *, derive: bool = True, cache: dict | None = None) -> list[Outcome]:
    """Every expectation of ``model`` evaluated and compared; mismatches carry calc's own
    derivation of the quantity for that item (``derive``)."""
    analyses: dict[str, Analysis] = {}
    # Sites are found in the analysis under standard (shapes do not depend on the convention);
    # an expectation under another convention reads the same item of that convention's analysis.
    base = _analysis(model, "standard", analyses, cache, ("layers",))
    try:
        return _check(model, analyses, base, derive, cache)
    except CalcError as err:
        if err.path and err.file is None:
            err.file, err.line = model.source_name, model.line_of(err.path)
        raise


def _check(model, analyses, base, derive, cache) -> list[Outcome]:
    from .derive import derivation
    outcomes = []
    sites = _sites(model, base)
    by_conv = {"standard": sites}
    for index, site in enumerate(sites):
        conv, dtype = _settings(site.mapping, site.path)
        a = _analysis(model, conv, analyses, cache, site.path + ("convention",))
        if conv not in by_conv:
            by_conv[conv] = _sites(model, a)
        result = by_conv[conv][index].result
        names = item_names(model, site.node, result, site.env) if site.node is not None else \
            _model_names(model, a, site.env)
        for key, written in site.mapping.items():
            if key in SETTINGS:
                continue
            qpath = site.path + (key,)
            if key == "output" and not isinstance(written, (list, str)):
                raise SpecError(f"output is a shape such as [96, 55, 55], got {written!r}", path=qpath)
            expected = _expected(written, names, qpath)
            actual = QUANTITIES[key].read(a, result, DTYPE_BYTES[dtype])
            note = f"and {site.count - 1:,} identical repetitions after it" if site.count > 1 else ""
            outcome = Outcome(site.item, qpath, model.line_of(qpath), key, a.convention, written, expected,
                              actual, note)
            if derive and not outcome.ok:
                outcome = _with(outcome, derivation(a, result, key, site.item))
            outcomes.append(outcome)
    return outcomes


def _with(outcome: Outcome, steps: tuple) -> Outcome:
    from dataclasses import replace
    return replace(outcome, derivation=steps)


def _model_names(model: Model, a: Analysis, env: dict) -> dict[str, Any]:
    names: dict[str, Any] = {"batch": a.batch}
    for label, shape in (("in", a.input_shape), ("out", a.output_shape)):
        for letter, size in zip(_DIMS.get(len(shape), ()), shape):
            names[f"{letter}_{label}"] = size
        names[f"{label}_shape"] = list(shape)
    names.update(env)
    return names


def _analysis(model, conv, analyses, cache, path) -> Analysis:
    a = analyses.get(conv)
    if a is None:
        try:
            a = analyses[conv] = analyze(model, convention=conv, cache=cache)
        except CalcError as err:
            if not err.path and conv != "standard":
                err.path = path
                err.line = model.line_of(path)
            raise
    return a

