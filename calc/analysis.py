"""Shape inference and counting over a built model. Computes; never prints.

``analyze(model, ...)`` returns an :class:`Analysis`: a tree of frozen :class:`Result`
nodes (one per layer, block, repeat, branch) and the totals. Counts in results are per
sample; :class:`Analysis` scales them by the batch. A few tool conventions count part of a
layer for the whole batch, not in proportion to it (see :mod:`calc.conventions`): that part is
kept apart in ``macs_batch``/``flops_batch`` and added unscaled. A subtree whose output shape
equals its input shape inside a repeat is analysed once and multiplied.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Union

from . import conventions as conv_mod
from .conventions import BASE_FACTS, Convention
from .errors import CalcError, ShapeError, format_path
from .graph import Branches, Leaf, Model, Repeat, Seq
from .layers import Join
from .shapes import Shape, fmt_shape, numel

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "fp64": 8}
MAX_FRESH_ITERATIONS = 100_000


@dataclass(frozen=True, slots=True)
class Result:
    """One node of the analysed tree. Counts are per sample and include the children."""

    kind: str                # layer type, or 'block:<name>', 'repeat', 'residual', 'parallel', 'group', 'model'
    input_shape: Shape
    output_shape: Shape
    weights: int
    bias: int
    buffers: int
    frozen: int              # parameters that are not trainable
    macs: int
    flops: int
    activations: int         # elements of every leaf output
    leaves: int              # leaf layers inside (with multiplicity)
    layer: object = None     # the Layer, for leaves
    facts: dict | None = None
    children: tuple = ()     # of Child
    # Whole-batch counts that do not scale with the batch (exact; see calc.conventions.Rule).
    macs_batch: Union[int, Fraction] = 0
    flops_batch: Union[int, Fraction] = 0
    inputs: tuple = ()       # every input shape, for joins (input_shape is the first)

    @property
    def params(self) -> int:
        return self.weights + self.bias

    @property
    def is_leaf(self) -> bool:
        return self.layer is not None


@dataclass(frozen=True, slots=True)
class Child:
    name: str
    result: Result
    count: int = 1           # identical consecutive repetitions (a repeat at a fixed point)
    first: int | None = None  # with count > 1: names are first, first+1, …


@dataclass(frozen=True, slots=True)
class Row:
    """A flattened view of one result for reports."""

    name: str
    depth: int
    result: Result


def _sum(children, kind, in_shape, out_shape) -> Result:
    w = b = buf = fr = macs = flops = act = leaves = 0
    macs_b = flops_b = 0
    for ch in children:
        r, k = ch.result, ch.count
        w += k * r.weights
        b += k * r.bias
        buf += k * r.buffers
        fr += k * r.frozen
        macs += k * r.macs
        flops += k * r.flops
        act += k * r.activations
        leaves += k * r.leaves
        macs_b += k * r.macs_batch
        flops_b += k * r.flops_batch
    return Result(kind, in_shape, out_shape, w, b, buf, fr, macs, flops, act, leaves,
                  children=tuple(children), macs_batch=macs_b, flops_batch=flops_b)


class _Analyzer:
    def __init__(self, model: Model, convention: Convention, batch: int = 1):
        self.model = model
        self.convention = convention
        self.batch = batch
        self.memo: dict = {}

    def fail(self, message, origin, ctx):
        raise ShapeError(message, path=origin, file=self.model.source_name,
                         line=self.model.line_of(origin), context=ctx)

    def lookup(self, name, scopes, origin, ctx) -> Shape:
        for scope in scopes:
            if name in scope:
                return scope[name]
        known = sorted({n for s in scopes for n in s})
        self.fail(f"no earlier output named '{name}' (names so far: {', '.join(known) or 'none'})",
                  origin, ctx)

    # -- leaves
    def leaf(self, node: Leaf, shape: Shape, scopes, ctx) -> Result:
        layer = node.layer
        if isinstance(layer, Join):
            shapes = [shape] + [self.lookup(n, scopes, node.origin, ctx) for n in layer.with_]
            key = (id(layer), tuple(shapes), node.trainable, node.hints)
        else:
            key = (id(layer), shape, node.trainable, node.hints)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        try:
            if isinstance(layer, Join):
                if len(shapes) < 2:
                    raise ValueError(f"needs at least two inputs; give earlier outputs with 'with'")
                out = layer.infer_many(shapes)
                ops = layer.ops_many(shapes, out)
            else:
                out = layer.infer(shape)
                ops = layer.ops(shape, out)
            p = layer.params(shape)
        except ValueError as exc:
            if isinstance(layer, Join):
                got = " and ".join(fmt_shape(s) for s in shapes)
            else:
                got = fmt_shape(shape)
            self.fail(f"{layer.type_name} cannot take input {got}: {exc}", node.origin, ctx)
        facts = {**BASE_FACTS, **layer.hint_facts(dict(node.hints)), **ops, "in": numel(shape),
                 "out": numel(out), "x": numel(shape), "y": numel(out), "params": p.total, "weights": p.weights, "biases": p.bias}
        count = self.count(layer, facts, node.origin, ctx)
        result = Result(layer.type_name, shape, out, p.weights, p.bias, p.buffers,
                        0 if node.trainable else p.total, count.macs, count.flops, numel(out), 1,
                        layer=layer, facts=facts, macs_batch=count.macs_batch,
                        flops_batch=count.flops_batch, inputs=tuple(shapes) if isinstance(layer, Join) else ())
        self.memo[key] = result
        return result

    def count(self, layer, facts, origin, ctx):
        try:
            return self.convention.count(layer.type_name, layer.kind, facts, self.batch)
        except CalcError as err:
            err.path = err.path or origin
            err.file = err.file or self.model.source_name
            err.line = err.line or self.model.line_of(origin)
            err.context = err.context or ctx
            raise

    # -- containers
    def seq(self, node: Seq, shape: Shape, scopes, ctx, kind: str) -> Result:
        scope: dict = {}
        inner = (scope, *scopes)
        children = []
        x = shape
        for i, item in enumerate(node.items):
            inp = x if item.source is None else self.lookup(item.source, inner, item.origin, ctx)
            res = self.node(item, inp, inner, ctx)
            if item.name:
                scope[item.name] = res.output_shape
            children.append(Child(item.name or str(i), res))
            x = res.output_shape
        return _sum(children, kind, shape, x)

    def node(self, node, shape: Shape, scopes, ctx) -> Result:
        if isinstance(node, Leaf):
            return self.leaf(node, shape, scopes, ctx)
        if isinstance(node, Seq):
            if node.kind.startswith("block:"):
                line = self.model.line_of(node.origin)
                where = format_path(node.origin) + (f" (line {line})" if line else "")
                ctx = ctx + (f"in block '{node.kind[6:]}' used at {where}, input {fmt_shape(shape)}",)
            return self.seq(node, shape, scopes, ctx, node.kind)
        if isinstance(node, Repeat):
            return self.repeat(node, shape, scopes, ctx)
        if isinstance(node, Branches):
            return self.branches(node, shape, scopes, ctx)
        raise TypeError(node)  # pragma: no cover - the builder makes only these

    def repeat(self, node: Repeat, shape: Shape, scopes, ctx) -> Result:
        children = []
        x = shape
        i = 0
        while i < node.times:
            if i >= MAX_FRESH_ITERATIONS:
                self.fail(f"the repeated items change the shape at every one of {MAX_FRESH_ITERATIONS:,} "
                          "iterations; calc analyses at most that many distinct iterations", node.origin, ctx)
            res = self.seq(node.body, x, scopes,
                           ctx + (f"in repetition {i + 1} of {node.times}",), "group")
            if res.output_shape == x and node.times - i > 1:
                # Every later iteration sees the same shape, so it gives the same result.
                children.append(Child(str(i), res, node.times - i, i))
                break
            children.append(Child(str(i), res))
            x = res.output_shape
            i += 1
        out = children[-1].result.output_shape if children else shape
        return _sum(children, "repeat", shape, out)

    def branches(self, node: Branches, shape: Shape, scopes, ctx) -> Result:
        children = []
        outs = []
        for i, branch in enumerate(node.branches):
            name = ("main", "shortcut")[i] if node.kind == "residual" else str(i)
            res = self.seq(branch, shape, scopes, ctx, "branch")
            children.append(Child(name, res))
            outs.append(res.output_shape)
        join = node.join
        try:
            out = join.layer.infer_many(outs)
        except ValueError as exc:
            labels = [c.name for c in children]
            got = ", ".join(f"{n} {fmt_shape(s)}" for n, s in zip(labels, outs))
            self.fail(f"{node.kind} branches cannot be joined by {join.layer.type_name} ({got}): {exc}",
                      node.origin, ctx + (f"input {fmt_shape(shape)}",))
        ops = join.layer.ops_many(outs, out)
        facts = {**BASE_FACTS, **join.layer.hint_facts(dict(join.hints)), **ops,
                 "in": sum(numel(s) for s in outs), "out": numel(out), "x": sum(numel(s) for s in outs),
                 "y": numel(out), "params": 0, "weights": 0, "biases": 0}
        count = self.count(join.layer, facts, node.origin, ctx)
        jres = Result(join.layer.type_name, outs[0], out, 0, 0, 0, 0, count.macs, count.flops, numel(out), 1,
                      layer=join.layer, facts=facts, macs_batch=count.macs_batch, flops_batch=count.flops_batch,
                      inputs=tuple(outs))
        children.append(Child(join.name, jres))
        return _sum(children, node.kind, shape, out)


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    weights: int
    bias: int
    buffers: int
    macs: int
    flops: int
    param_bytes: int
    activation_bytes_per_sample: int
    activation_bytes: int


@dataclass(frozen=True)
class Analysis:
    """The result of analysing a model; counts in ``totals`` and ``rows`` cover the whole batch."""

    model: Model
    input_shape: Shape
    batch: int
    convention: str
    dtype: str
    root: Result

    @property
    def output_shape(self) -> Shape:
        return self.root.output_shape

    def macs_of(self, r: Result) -> int:
        """A result's MACs for the whole batch. A tool that divides (ptflops) truncates its total
        with int(); calc does the same with the exact value."""
        return int(r.macs * self.batch + r.macs_batch)

    def flops_of(self, r: Result) -> int:
        """A result's FLOPs for the whole batch (see :meth:`macs_of`)."""
        return int(r.flops * self.batch + r.flops_batch)

    @property
    def totals(self) -> Totals:
        r, n, size = self.root, self.batch, DTYPE_BYTES[self.dtype]
        return Totals(params=r.params, trainable_params=r.params - r.frozen, weights=r.weights,
                      bias=r.bias, buffers=r.buffers, macs=self.macs_of(r), flops=self.flops_of(r),
                      param_bytes=r.params * size, activation_bytes_per_sample=r.activations * size,
                      activation_bytes=r.activations * size * n)

    def rows(self, depth: int | None = None, leaves_only: bool = False) -> Iterator[Row]:
        """Depth-first rows with dotted names. ``depth`` stops descending (1 = top level);
        repeated identical iterations are expanded with their own names."""
        def walk(result: Result, prefix: str, level: int):
            for child in result.children:
                names = ([child.name] if child.count == 1 else
                         [str(child.first + k) for k in range(child.count)])
                for nm in names:
                    full = f"{prefix}.{nm}" if prefix else nm
                    r = child.result
                    stop = depth is not None and level >= depth
                    if r.is_leaf or stop:
                        if not leaves_only or r.is_leaf or stop:
                            yield Row(full, level, r)
                    else:
                        if not leaves_only:
                            yield Row(full, level, r)
                        yield from walk(r, full, level + 1)
        yield from walk(self.root, "", 1)


def analyze(model: Model, *, batch: int = 1, convention: str | Convention = "standard",
            dtype: str = "fp32", input_shape: Shape | None = None) -> Analysis:
    """Infer every shape and count parameters, MACs and FLOPs under ``convention``."""
    from .errors import SpecError
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise SpecError(f"batch must be a positive whole number, got {batch!r}")
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype '{dtype}'; known: {', '.join(DTYPE_BYTES)}")
    conv = conv_mod.get(convention) if isinstance(convention, str) else convention
    shape = tuple(input_shape) if input_shape is not None else model.input_shape
    analyzer = _Analyzer(model, conv, batch)
    root = analyzer.seq(model.root, shape, ({"input": shape},), (), "model")
    return Analysis(model, shape, batch, conv.name, dtype, root)
