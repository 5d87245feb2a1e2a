"""Shape inference and counting over a built model. Computes; never prints.

``analyze(model, ...)`` returns an :class:`Analysis`: a tree of frozen :class:`Result`
nodes (one per layer, block, repeat, branch) and the totals. Counts in results are per
sample; :class:`Analysis` scales them by the batch. A subtree whose output shape equals its
input shape inside a repeat is analysed once and multiplied.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

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
    count: int = 1           # > 1: a folded run of identical iterations (see Analysis.rows)


def _sum(children, kind, in_shape, out_shape) -> Result:
    w = b = buf = fr = macs = flops = act = leaves = 0
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
    return Result(kind, in_shape, out_shape, w, b, buf, fr, macs, flops, act, leaves,
                  children=tuple(children))


class _Analyzer:
    def __init__(self, model: Model, convention: Convention, memo: dict | None = None):
        self.model = model
        self.convention = convention
        # Leaf results keyed by (id(layer), input shape(s), trainable). Each result holds its
        # layer, so an id in the memo cannot be reused by another object while the entry lives.
        self.memo: dict = {} if memo is None else memo

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
            key = (id(layer), tuple(shapes), node.trainable)
        else:
            key = (id(layer), shape, node.trainable)
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
        facts = {**BASE_FACTS, **ops, "in": numel(shape), "out": numel(out),
                 "params": p.total, "weights": p.weights, "biases": p.bias}
        try:
            macs, flops = self.convention.count(layer.type_name, layer.kind, facts)
        except CalcError as err:
            err.path = err.path or node.origin
            raise
        result = Result(layer.type_name, shape, out, p.weights, p.bias, p.buffers,
                        0 if node.trainable else p.total, macs, flops, numel(out), 1,
                        layer=layer, facts=facts)
        self.memo[key] = result
        return result

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
                return self.block(node, shape, scopes, ctx + (lambda: self.block_context(node, shape),))
            return self.seq(node, shape, scopes, ctx, node.kind)
        if isinstance(node, Repeat):
            return self.repeat(node, shape, scopes, ctx)
        if isinstance(node, Branches):
            return self.branches(node, shape, scopes, ctx)
        raise TypeError(node)  # pragma: no cover - the builder makes only these

    def block(self, node: Seq, shape: Shape, scopes, ctx) -> Result:
        # The builder shares the items of identical block instances (also across builds of a
        # spec); a body that reads no name from outside gives the same result on the same input.
        items = node.items
        key = ("block", id(items), shape, node.kind)
        hit = self.memo.get(key)
        if hit is not None and hit[0] is items:
            return hit[1]
        result = self.seq(node, shape, scopes, ctx, node.kind)
        closed = self.memo.get(("closed", id(items)))
        if closed is None or closed[0] is not items:
            closed = self.memo[("closed", id(items))] = (items, _closed(items, frozenset()))
        if closed[1]:
            self.memo[key] = (items, result)   # holding items keeps their id from being reused
        return result

    def block_context(self, node: Seq, shape: Shape) -> str:
        line = self.model.line_of(node.origin)
        where = format_path(node.origin) + (f" (line {line})" if line else "")
        return f"in block '{node.kind[6:]}' used at {where}, input {fmt_shape(shape)}"

    def repeat(self, node: Repeat, shape: Shape, scopes, ctx) -> Result:
        children = []
        x = shape
        i = 0
        while i < node.times:
            if i >= MAX_FRESH_ITERATIONS:
                self.fail(f"the repeated items change the shape at every one of {MAX_FRESH_ITERATIONS:,} "
                          "iterations; calc analyses at most that many distinct iterations", node.origin, ctx)
            res = self.seq(node.body, x, scopes,
                           ctx + (lambda i=i: f"in repetition {i + 1} of {node.times}",), "group")
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
        key = (id(join.layer), tuple(outs), "join")
        jres = self.memo.get(key)
        if jres is None:
            try:
                out = join.layer.infer_many(outs)
            except ValueError as exc:
                labels = [c.name for c in children]
                got = ", ".join(f"{n} {fmt_shape(s)}" for n, s in zip(labels, outs))
                self.fail(f"{node.kind} branches cannot be joined by {join.layer.type_name} ({got}): {exc}",
                          node.origin, ctx + (f"input {fmt_shape(shape)}",))
            ops = join.layer.ops_many(outs, out)
            facts = {**BASE_FACTS, **ops, "in": sum(numel(s) for s in outs), "out": numel(out),
                     "params": 0, "weights": 0, "biases": 0}
            macs, flops = self.convention.count(join.layer.type_name, join.layer.kind, facts)
            jres = Result(join.layer.type_name, outs[0], out, 0, 0, 0, 0, macs, flops, numel(out), 1,
                          layer=join.layer, facts=facts)
            self.memo[key] = jres
        children.append(Child(join.name, jres))
        return _sum(children, node.kind, shape, jres.output_shape)


def _closed(items: tuple, visible: frozenset) -> bool:
    """Whether every name read inside ``items`` (``from``, ``with``) is defined inside them,
    following the analysis's scoping: an item sees the names of earlier items of its sequence
    and of the sequences around it."""
    local = set(visible)
    for item in items:
        if item.source is not None and item.source not in local:
            return False
        if isinstance(item, Leaf):
            if isinstance(item.layer, Join) and any(n not in local for n in item.layer.with_):
                return False
        elif isinstance(item, Seq):
            if not _closed(item.items, frozenset(local)):
                return False
        elif isinstance(item, Repeat):
            if not _closed(item.body.items, frozenset(local)):
                return False
        elif isinstance(item, Branches):
            if not all(_closed(b.items, frozenset(local)) for b in item.branches):
                return False
        if item.name:
            local.add(item.name)
    return True


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

    @property
    def totals(self) -> Totals:
        r, n, size = self.root, self.batch, DTYPE_BYTES[self.dtype]
        return Totals(params=r.params, trainable_params=r.params - r.frozen, weights=r.weights,
                      bias=r.bias, buffers=r.buffers, macs=r.macs * n, flops=r.flops * n,
                      param_bytes=r.params * size, activation_bytes_per_sample=r.activations * size,
                      activation_bytes=r.activations * size * n)

    def rows(self, depth: int | None = None, leaves_only: bool = False,
             fold: int | None = None) -> Iterator[Row]:
        """Depth-first rows with dotted names. ``depth`` stops descending (1 = top level);
        repeated identical iterations are expanded with their own names, except that with
        ``fold`` a run of more than ``fold`` of them is its first iteration followed by one
        row (``count`` = the others) named ``first+1…last``."""
        def walk(result: Result, prefix: str, level: int):
            for child in result.children:
                r = child.result
                folded = fold is not None and child.count > fold
                if child.count == 1:
                    names = (child.name,)
                elif folded:
                    names = (str(child.first),)
                else:
                    names = (str(child.first + k) for k in range(child.count))
                for nm in names:
                    full = f"{prefix}.{nm}" if prefix else nm
                    stop = depth is not None and level >= depth
                    if r.is_leaf or stop:
                        if not leaves_only or r.is_leaf or stop:
                            yield Row(full, level, r)
                    else:
                        if not leaves_only:
                            yield Row(full, level, r)
                        yield from walk(r, full, level + 1)
                if folded:
                    first, last = (f"{prefix}.{i}" if prefix else str(i)
                                   for i in (child.first + 1, child.first + child.count - 1))
                    yield Row(f"{first}…{last}", level, r, child.count - 1)
        yield from walk(self.root, "", 1)


def analyze(model: Model, *, batch: int = 1, convention: str | Convention = "standard",
            dtype: str = "fp32", input_shape: Shape | None = None, cache: dict | None = None) -> Analysis:
    """Infer every shape and count parameters, MACs and FLOPs under ``convention``.

    ``cache`` (an empty dict to start) lets many analyses share the results of identical
    layers on identical inputs, e.g. the variants of a sweep; it grows with the distinct
    (layer, input shape) pairs seen."""
    from .errors import SpecError
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise SpecError(f"batch must be a positive whole number, got {batch!r}")
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype '{dtype}'; known: {', '.join(DTYPE_BYTES)}")
    conv = conv_mod.get(convention) if isinstance(convention, str) else convention
    shape = tuple(input_shape) if input_shape is not None else model.input_shape
    memo = None
    if cache is not None:
        # Results depend on the convention: one memo per convention object.
        entry = cache.get(id(conv))
        if entry is None or entry[0] is not conv:
            entry = cache[id(conv)] = (conv, {})
        memo = entry[1]
    analyzer = _Analyzer(model, conv, memo)
    root = analyzer.seq(model.root, shape, ({"input": shape},), (), "model")
    return Analysis(model, shape, batch, conv.name, dtype, root)
