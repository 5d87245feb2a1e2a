"""`calc explain --symbolic --vary NAME`: the totals' formulas in the input sizes *and* in whole-
number variables of the spec (channels, a depth). A variable passes through the builder (and
pydantic's validation of each layer) as a plain number, so it cannot be carried symbolically as
the sizes are; instead the formulas in the sizes are computed at several values of the variable
and each coefficient is interpolated exactly (Lagrange over rationals) by the polynomial of the
lowest degree that fits every value sampled. What this assumes is said in the output: the count
is a polynomial of degree at most MAX_DEGREE in each varied variable over the sampled values;
the result is then checked against the numeric analysis at values that were not sampled. A
rounding in the spec (make_divisible, int(width·64)) or a structure that depends on the value
(`when: C > 64`) shows as "not a polynomial" rather than as a wrong formula.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from itertools import product

from ..analysis import analyze
from ..errors import CalcError, SpecError
from .algebra import Poly, on_residue_class
from .symbolic import full_shape, symbolic

from ..limits import MAX_DEGREE, MAX_VARIED, VARY_TRIES as _TRIES  # noqa: E402 - stated in calc.limits
_POINTS = MAX_DEGREE + 2     # samples per variable: enough for degree 4 and one value to spare


@dataclass
class VariedFormulas:
    names: list[str]
    samples: dict                   # name -> the values sampled
    params: Poly | None = None
    macs: Poly | None = None
    params_class: Poly | None = None
    macs_class: Poly | None = None
    modulus: int | None = None
    reason: str = ""                # why there is no formula, when there is none
    checked: list = field(default_factory=list)   # ({variable: value, size: value}, True or why not)


def vary(spec, names: list[str], overrides: dict, shape, variant, base) -> VariedFormulas:
    """Formulas in the sizes of ``base`` (the Symbolic of the spec as given) and ``names``."""
    if len(names) > MAX_VARIED:
        raise SpecError(f"--vary takes at most {MAX_VARIED} variables")
    defaults = {**spec.doc.variables, **overrides}
    for n in names:
        value = defaults.get(n)
        if n not in spec.doc.variables:
            raise SpecError(f"--vary {n}: the spec has no such variable (variables: "
                            f"{', '.join(spec.doc.variables) or 'none'})")
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"--vary {n}: only whole-number variables can be varied, {n} is {value!r}")
    samples = {n: _valid_values(spec, n, defaults, overrides, shape, variant) for n in names}
    out = VariedFormulas(list(names), samples)
    if any(len(v) < _POINTS for v in samples.values()):
        short = next(n for n, v in samples.items() if len(v) < _POINTS)
        out.reason = f"fewer than {_POINTS} values of {short} near {defaults[short]} give a valid network"
        return out
    grid = {}
    for point in product(*(samples[n] for n in names)):
        values = dict(zip(names, point))
        model = spec.build({**overrides, **values}, input_shape=shape, variant=variant)
        sym = symbolic(model, check_sizes=[], names=base.names, sizes=base.symbols)
        grid[point] = (sym.params, sym.macs)
    fitted = []
    for which in (0, 1):
        poly = _fit({p: polys[which] for p, polys in grid.items()}, names, [samples[n] for n in names])
        if poly is None:
            out.reason = (f"the {'parameters' if which == 0 else 'MACs'} are not a polynomial of degree at most "
                          f"{MAX_DEGREE} in {', '.join(names)} over the values sampled")
            return out
        fitted.append(poly)
    out.params, out.macs = fitted
    found = [on_residue_class(p, base.symbols, base.modulus, base.residue) for p in fitted]
    if all(found):
        (out.params_class, m), (out.macs_class, _) = found
        out.modulus = m
    out.checked = _check(spec, out, names, samples, defaults, overrides, shape, variant, base)
    return out


def _valid_values(spec, name, defaults, overrides, shape, variant) -> list[int]:
    """Values of ``name`` around its default (default, +1, −1, +2, …) that build and analyse."""
    start = defaults[name]
    found = []
    for k in range(_TRIES):
        v = start + (k + 1) // 2 * (1 if k % 2 else -1) if k else start
        if v < 1:
            continue
        try:
            analyze(spec.build({**overrides, name: v}, input_shape=shape, variant=variant))
        except CalcError:
            continue
        found.append(v)
        if len(found) == _POINTS:
            break
    return sorted(found)


def _later_values(spec, name, after, defaults, overrides, shape, variant, count: int = 2) -> list[int]:
    """The first ``count`` valid values of ``name`` above the sampled ones (not sampled: a check)."""
    found = []
    for v in range(after + 1, after + 1 + _TRIES):
        try:
            analyze(spec.build({**overrides, name: v}, input_shape=shape, variant=variant))
        except CalcError:
            continue
        found.append(v)
        if len(found) == count:
            break
    return found


def _fit(values: dict, names: list[str], axes: list[list[int]]) -> Poly | None:
    """The polynomial in ``names`` (coefficients: polynomials in the sizes) through ``values``
    at the grid ``axes``, of the lowest degree per variable that fits every sampled point."""
    if not names:
        return values[()]
    name, rest = names[0], names[1:]
    inner = {}
    for x in axes[0]:
        sub = {k[1:]: v for k, v in values.items() if k[0] == x}
        fit = _fit(sub, rest, axes[1:])
        if fit is None:
            return None
        inner[x] = fit
    return _fit_1d(inner, name)


def _fit_1d(points: dict, name: str) -> Poly | None:
    xs = sorted(points)
    for degree in range(min(MAX_DEGREE, len(xs) - 1) + 1):
        base = xs[:degree + 1]
        poly = _lagrange({x: points[x] for x in base}, name)
        if all(_equal(poly.substitute({name: Poly.const(x)}), points[x]) for x in xs[degree + 1:]):
            return poly
    return None


def _lagrange(points: dict, name: str) -> Poly:
    v = Poly.symbol(name)
    total = Poly()
    for xi, yi in points.items():
        term = yi
        for xj in points:
            if xj != xi:
                term = term * (v - Poly.const(xj)).scale(Fraction(1, xi - xj))
        total = total + term
    return total


def _equal(a: Poly, b: Poly) -> bool:
    return (a - b).terms == {}


def _check(spec, out, names, samples, defaults, overrides, shape, variant, base) -> list:
    """Compare with the numeric analysis at values not sampled and sizes not the spec's."""
    results = []
    later = {n: _later_values(spec, n, max(samples[n]), defaults, overrides, shape, variant) for n in names}
    for k in range(min(len(v) for v in later.values())):
        values = {n: later[n][k] for n in names}
        sizes = {s: v + 7 for s, v in base.at.items()}
        try:
            model = spec.build({**overrides, **values}, input_shape=shape, variant=variant)
            full = full_shape(base, sizes, tuple(model.input_shape))
            a = analyze(model, input_shape=full)
        except CalcError as err:
            results.append(({**values, **sizes}, f"the network cannot take it ({err.message})"))
            continue
        at = {**values, **sizes}
        ok = out.params.evaluate(at) == a.totals.params and out.macs.evaluate(at) == a.totals.macs
        results.append((at, True if ok else
                        f"the formulas give {int(out.params.evaluate(at)):,} parameters and "
                        f"{int(out.macs.evaluate(at)):,} MACs, calc counts {a.totals.params:,} and {a.totals.macs:,}"))
    return results
