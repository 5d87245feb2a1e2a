"""`calc explain --symbolic`: each layer's and the total's parameters and MACs (convention
standard) as exact formulas in the input sizes, with the floors the network needs, and the plain
polynomial they reduce to on a residue class ("for H, W divisible by 32").

The model is walked as the analysis walks it, with the sizes of the input after the channels
(H and W of an image; L of a sequence) replaced by :class:`calc.check.algebra.Dual` values, so
each layer's own declared formulas build the symbolic counts. The variables keep their values
(they pass through rounding such as make_divisible, which has no closed form). Before anything
is shown the formulas are evaluated at other sizes and compared with calc's numeric analysis
there; where they differ, or a layer's computation could not be followed, the output says so
and where.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import lcm

from ..analysis import analyze
from ..conventions.calc_own import DOT
from ..errors import SpecError
from ..graph import Leaf, Model, Repeat, Seq
from ..layers import Join
from ..shapes import Tokens
from . import algebra
from .algebra import Dual, Poly, on_residue_class
from ..analysis import name_segment
from .expectations import _DIMS

_DOT = set(DOT.split())
from ..limits import MAX_SYMBOLIC_LEAVES, MAX_SYMBOLIC_STEPS  # noqa: E402 - stated in calc.limits


@dataclass(frozen=True)
class LayerFormula:
    name: str
    type_name: str
    params: Poly
    macs: Poly            # per sample
    lost: tuple = ()      # what its computation could not follow symbolically


@dataclass
class Symbolic:
    model: str
    symbols: list[str]            # e.g. ['H', 'W']
    at: dict                      # the spec's own sizes
    layers: list[LayerFormula] = field(default_factory=list)
    params: Poly = None
    macs: Poly = None             # per sample; the batch multiplies it
    modulus: int | None = None
    residue: int = 0
    params_class: Poly | None = None
    macs_class: Poly | None = None
    checked: list = field(default_factory=list)      # (sizes, ok or the reason)
    lost: list = field(default_factory=list)
    suggest: int | None = None    # with a --modulus too small: one that makes every floor exact
    dims: list = field(default_factory=list)         # (input dimension, its symbol) for each symbolic one
    names: list = field(default_factory=list)        # a name for every input dimension


def symbolic(model: Model, modulus: int | None = None, residue: int = 0, check_sizes: list | None = None,
             names: list | None = None, sizes: list[str] | None = None) -> Symbolic:
    """The formulas of ``model``. ``names``: a name per input dimension (the spec's own, where it
    writes a variable such as ``input: [3, H, H]``; None: C, H, W … by rank). ``sizes``: the names
    of the dimensions to make symbols (default: all but the channels; every one of a token input)."""
    shape = tuple(model.input_shape)
    if not shape:
        raise SpecError("--symbolic needs an input with at least one size")
    if model.reads_in:
        # an item's sizes were computed from the shape entering it when the spec was built: they
        # are numbers now, not expressions in the input's sizes
        raise SpecError(f"--symbolic: {model.name} reads the shape entering its items (`in`), so its sizes are "
                        "fixed when it is built and its counts are no single formula in the input sizes; "
                        "analyse each size with --input (or calc sweep --input)", file=model.source_name)
    start = 0 if model.input_kind == "tokens" or len(shape) == 1 else 1
    letters = ("L",) if model.input_kind == "tokens" and len(shape) == 1 else (
        _DIMS.get(len(shape)) or tuple(f"S{i}" for i in range(len(shape))))
    dim_names = [(names[i] if names and i < len(names) and names[i] else letters[i]) for i in range(len(shape))]
    if sizes:
        unknown = [n for n in sizes if n not in dim_names]
        if unknown:
            raise SpecError(f"--sizes {unknown[0]}: the input's dimensions are {', '.join(dim_names)}")
        chosen = [i for i, n in enumerate(dim_names) if n in sizes]
    else:
        chosen = list(range(start, len(shape)))
    at: dict = {}
    for i in chosen:
        if at.setdefault(dim_names[i], shape[i]) != shape[i]:   # input: [3, H, H] given 3×224×300
            dim_names = list(letters)
            return symbolic(model, modulus, residue, check_sizes, None, None if not sizes else
                            [letters[j] for j in chosen])
    dual_shape = tuple(Dual(n, Poly.symbol(dim_names[i])) if i in chosen else n for i, n in enumerate(shape))
    if model.input_kind == "tokens":
        dual_shape = Tokens(dual_shape)
    out = Symbolic(model.name, list(at), at)
    out.dims = [(i, dim_names[i]) for i in chosen]
    out.names = list(dim_names)
    walker = _Walker(out)
    walker.seq(model.root.items, dual_shape, ({"input": dual_shape},), "", {})
    out.params = sum((lf.params for lf in out.layers), Poly())
    out.macs = sum((lf.macs for lf in out.layers), Poly())
    out.lost = sorted({f"{lf.name}: {w}" for lf in out.layers for w in lf.lost})
    symbols = out.symbols
    found = [on_residue_class(p, symbols, modulus, residue) for p in (out.params, out.macs)]
    if modulus and any(f is None for f in found):
        auto = [on_residue_class(p, symbols, None, residue) for p in (out.params, out.macs)]
        out.suggest = lcm(auto[0][1], auto[1][1]) if all(auto) else None
    if all(f is not None for f in found):
        m = lcm(found[0][1], found[1][1])
        out.modulus = m
        out.params_class = on_residue_class(out.params, symbols, m, residue)[0]
        out.macs_class = on_residue_class(out.macs, symbols, m, residue)[0]
    out.residue = residue % out.modulus if out.modulus else residue
    for sizes in check_sizes if check_sizes is not None else _sizes(out):
        out.checked.append((sizes, _check_at(model, out, sizes, shape)))
    return out


def _sizes(out: Symbolic) -> list[dict]:
    """The spec's sizes and others around them (odd and even, larger and smaller, and on the
    residue class), where the formulas are compared with the numeric analysis."""
    base = out.at
    m = out.modulus or 1
    sizes = []
    on_class = [{s: v - (v - out.residue) % m + k * m for s, v in base.items()} for k in (0, 1)]
    for cand in [{s: v + delta for s, v in base.items()} for delta in (0, 1, -1, 2, 3, 7, -5)] + on_class:
        if all(v >= 1 for v in cand.values()) and cand not in sizes:
            sizes.append(cand)
    sizes.append({s: 2 * v for s, v in base.items()})
    return sizes


def full_shape(out: Symbolic, sizes: dict, shape: tuple) -> tuple:
    """The input shape with each symbolic dimension at its size in ``sizes``."""
    full = list(shape)
    for i, name in out.dims:
        full[i] = sizes[name]
    return tuple(full)


def _check_at(model: Model, out: Symbolic, sizes: dict, shape: tuple):
    full = full_shape(out, sizes, shape)
    try:
        a = analyze(model, input_shape=full)
    except Exception as err:   # noqa: BLE001 - a CalcError: the network cannot take this size
        return f"the network cannot take it ({getattr(err, 'message', err)})"
    params, macs = out.params.evaluate(sizes), out.macs.evaluate(sizes)
    if params != a.totals.params or macs != a.totals.macs:
        return (f"the formulas give {int(params):,} parameters and {int(macs):,} MACs, calc counts "
                f"{a.totals.params:,} and {a.totals.macs:,}")
    if out.modulus and all((v - out.residue) % out.modulus == 0 for v in sizes.values()) and (
            out.params_class.evaluate(sizes) != a.totals.params or out.macs_class.evaluate(sizes) != a.totals.macs):
        return "the polynomial of the residue class differs from calc's count"   # pragma: no cover
    return True


def _poly(value) -> Poly:
    return value.p if isinstance(value, Dual) else Poly.const(int(value))


class _Walker:
    def __init__(self, out: Symbolic):
        self.out = out
        self.steps = 0

    def lookup(self, name, scopes):
        for scope in scopes:
            if name in scope:
                return scope[name]
        raise SpecError(f"no earlier output named '{name}'")   # pragma: no cover - the analysis checked

    def seq(self, items, shape, scopes, prefix, taken, runs=True):
        scope: dict = {}
        inner = (scope, *scopes)
        x = shape
        for item in items:
            inp = x if item.source is None else self.lookup(item.source, inner)
            # inference: false (an auxiliary classifier): parameters count, operations do not
            y = self.node(item, inp, inner, prefix, taken, runs and item.runs)
            if item.name:
                scope[item.name] = y
            if item.runs:
                x = y
        return x

    def node(self, node, shape, scopes, prefix, taken, runs):
        namespace = isinstance(node, Leaf) or node.name is not None or (
            isinstance(node, Seq) and node.kind.startswith("block:"))
        if namespace:
            full = f"{prefix}.{name_segment(node.name, taken)}" if prefix else name_segment(node.name, taken)
            prefix, taken = full, {}
        if isinstance(node, Leaf):
            return self.leaf(node, node.layer, shape, scopes, prefix, runs)
        if isinstance(node, Seq):
            return self.seq(node.items, shape, scopes, prefix, taken, runs)
        if isinstance(node, Repeat):
            x = shape
            for i in range(node.times):
                self.steps += 1
                if self.steps > MAX_SYMBOLIC_STEPS:
                    raise SpecError(f"--symbolic follows at most {MAX_SYMBOLIC_STEPS:,} repeat iterations")
                body = node.body if node.bodies is None else node.bodies[i]
                x = self.seq(body.items, x, scopes, prefix, taken, runs)
            return x
        outs = [self.seq(b.items, shape, scopes, prefix, taken, runs) for b in node.branches]
        full = f"{prefix}.{name_segment(node.join.name, taken)}" if prefix else name_segment(node.join.name, taken)
        return self.leaf(node.join, node.join.layer, outs[0], scopes, full, runs, outs)

    def leaf(self, node, layer, shape, scopes, name, runs, many=None):
        if len(self.out.layers) >= MAX_SYMBOLIC_LEAVES:
            raise SpecError(f"--symbolic follows at most {MAX_SYMBOLIC_LEAVES:,} layers")
        algebra.LOST.clear()
        refs = layer.refs()
        if many is None and (refs or isinstance(layer, Join)):
            many = [shape] + [self.lookup(n, scopes) for n in refs]
        try:
            out, p, ops = layer.evaluate_many(many) if many else layer.evaluate(shape)
        except ValueError as exc:   # pragma: no cover - the analysis took the spec's own size
            raise SpecError(f"{name}: {exc}") from None
        weights = Poly() if getattr(node, "tie", None) else _poly(p.weights)
        params = weights + _poly(p.bias)
        macs = _poly(ops.get("mac", 0)) if layer.kind in _DOT and runs else Poly()
        self.out.layers.append(LayerFormula(name, layer.type_name, params, macs, tuple(dict.fromkeys(algebra.LOST))))
        return out


def run_symbolic(args) -> str:
    from ..render.symbolic import format_symbolic
    if args.convention != "standard":
        raise SpecError("--symbolic counts MACs under the standard convention; leave out --convention")
    if args.layer:
        raise SpecError("--symbolic shows every layer; leave out --layer (or use `calc explain --layer`)")
    from ..cli import open_spec, parse_sets, parse_shape
    spec, variant = open_spec(args.spec)   # once: `-` reads standard input
    model = spec.build(parse_sets(args.set), input_shape=parse_shape(args.input) if args.input else None,
                       variant=variant)
    written = [d if isinstance(d, str) and d.isidentifier() and d in spec.doc.variables else None
               for d in spec.doc.input]
    sym = symbolic(model, args.modulus, args.residue, names=written,
                   sizes=[n for n in (args.sizes or "").split(",") if n] or None)
    varied = None
    if args.vary:
        from .variables import vary
        varied = vary(spec, args.vary, parse_sets(args.set), parse_shape(args.input) if args.input else None,
                      variant, sym)
    return format_symbolic(sym, args.batch, varied)

