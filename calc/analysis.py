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
from .errors import CalcError, ShapeError, SpecError, format_path
from .graph import Branches, Leaf, Model, Repeat, Seq
from .layers import Join, Params
from .shapes import Shape, Tokens, fmt_shape, numel

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "fp64": 8}
MAX_FRESH_ITERATIONS = 100_000
# Layer instances analysed one by one (identical repeat iterations are analysed once and
# multiplied, and do not count); a spec whose blocks fan out beyond this is refused.
MAX_ANALYSED = 1_000_000
# Reports list every leaf; beyond this many, identical repeat iterations are listed once,
# as one row that stands for all of them (Row.count).
MAX_ROWS = 100_000


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
    tied_to: str | None = None  # a leaf sharing the weights of the leaf of that name (weights 0 here)
    # Whole-batch counts that do not scale with the batch (exact; see calc.conventions.Rule).
    macs_batch: Union[int, Fraction] = 0
    flops_batch: Union[int, Fraction] = 0
    inputs: tuple = ()       # every input shape of a layer with several (joins, cross attention)

    @property
    def params(self) -> int:
        return self.weights + self.bias

    @property
    def is_leaf(self) -> bool:
        return self.layer is not None


@dataclass(frozen=True, slots=True)
class Child:
    name: str | None         # the user's name (joins: their type); None when unnamed
    result: Result
    count: int = 1           # identical consecutive repetitions (a repeat at a fixed point)
    first: int | None = None  # with count > 1: the first iteration's number


@dataclass(frozen=True, slots=True)
class Row:
    """A flattened view of one result for reports. ``count`` > 1: the row stands for that many
    identical consecutive results (repeat iterations listed once; see ``MAX_ROWS``)."""

    name: str
    depth: int
    result: Result
    count: int = 1


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
        self.analysed = 0
        self.named_leaves: dict = {}   # name -> (layer, input shape): the targets of `tie`

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
    def check_tokens(self, layer, shapes, origin, ctx):
        """Token ids go to a token embedding and nowhere else."""
        if layer.takes_tokens and not isinstance(shapes[0], Tokens):
            self.fail(f"{layer.type_name} reads token ids, but its input {fmt_shape(shapes[0])} holds values "
                      "(a spec whose input is token ids says input_kind: tokens)", origin, ctx)
        if not layer.takes_tokens and any(isinstance(s, Tokens) for s in shapes):
            got = " and ".join(fmt_shape(s) for s in shapes)
            self.fail(f"{layer.type_name} cannot take token ids ({got}); an embedding turns them into "
                      "vectors first", origin, ctx)

    def leaf(self, node: Leaf, shape: Shape, scopes, ctx) -> Result:
        layer = node.layer
        refs = layer.refs()
        many = isinstance(layer, Join) or bool(refs)
        shapes = [shape] + [self.lookup(n, scopes, node.origin, ctx) for n in refs]
        self.check_tokens(layer, shapes, node.origin, ctx)
        if node.name:
            self.named_leaves[node.name] = (layer, shape)
        key = (id(layer), tuple(shapes), node.trainable, node.tie, node.hints)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        try:
            if many:
                if isinstance(layer, Join) and len(shapes) < 2:
                    raise ValueError(f"needs at least two inputs; give earlier outputs with 'with'")
                out = layer.infer_many(shapes)
                ops = layer.ops_many(shapes, out)
                p = layer.params_many(shapes)
            else:
                out = layer.infer(shape)
                ops = layer.ops(shape, out)
                p = layer.params(shape)
        except ValueError as exc:
            got = " and ".join(fmt_shape(s) for s in shapes)
            self.fail(f"{layer.type_name} cannot take input {got}: {exc}", node.origin, ctx)
        # Facts describe the weights the layer uses, shared or not; the result owns only its own.
        facts = {**BASE_FACTS, **layer.hint_facts(dict(node.hints)), **ops, "in": numel(shape),
                 "out": numel(out), "x": numel(shape), "y": numel(out), "params": p.total,
                 "weights": p.weights, "biases": p.bias, "tied": int(node.tie is not None)}
        if node.tie is not None:
            p = self.tie(node, layer, shape, p, ctx)
        count = self.count(layer, facts, node.origin, ctx)
        result = Result(layer.type_name, shape, out, p.weights, p.bias, p.buffers,
                        0 if node.trainable else p.total, count.macs, count.flops, numel(out), 1,
                        layer=layer, facts=facts, tied_to=node.tie, macs_batch=count.macs_batch,
                        flops_batch=count.flops_batch, inputs=tuple(shapes) if many else ())
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

    def tie(self, node: Leaf, layer, shape: Shape, p: Params, ctx) -> Params:
        """A tied layer shares the weight of an earlier named leaf: counted there, once. Its
        bias (if any) stays its own."""
        target = self.named_leaves.get(node.tie)
        if target is None:
            known = ", ".join(sorted(self.named_leaves)) or "none"
            self.fail(f"tie: no earlier layer named '{node.tie}' (named layers so far: {known})",
                      node.origin + ("tie",), ctx)
        other, other_shape = target
        mine, theirs = layer.weight_shape(shape), other.weight_shape(other_shape)
        if mine is None or theirs is None:
            which = layer if mine is None else other
            self.fail(f"tie: {which.type_name} has no weight matrix to share (embedding and linear do)",
                      node.origin + ("tie",), ctx)
        if mine != theirs:
            self.fail(f"tie: the weight of this {layer.type_name} is {fmt_shape(mine)}, that of "
                      f"'{node.tie}' ({other.type_name}) is {fmt_shape(theirs)}; tied weights must have "
                      "the same shape", node.origin + ("tie",), ctx)
        return Params(0, p.bias, p.buffers)

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
            children.append(Child(item.name, res))
            x = res.output_shape
        return _sum(children, kind, shape, x)

    def node(self, node, shape: Shape, scopes, ctx) -> Result:
        self.analysed += 1
        if self.analysed > MAX_ANALYSED:
            raise SpecError(f"the model expands to more than {MAX_ANALYSED:,} layers and structures "
                            "(blocks inside blocks, or repeats whose iterations change the shape); "
                            "calc analyses at most that many", path=node.origin,
                            file=self.model.source_name, line=self.model.line_of(node.origin))
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
            body = node.body if node.bodies is None else node.bodies[i]
            res = self.seq(body, x, scopes,
                           ctx + (f"in repetition {i + 1} of {node.times}",), "group")
            if node.bodies is None and res.output_shape == x and node.times - i > 1:
                # Every later iteration sees the same shape, so it gives the same result.
                children.append(Child(None, res, node.times - i, i))
                break
            children.append(Child(None, res))
            x = res.output_shape
            i += 1
        out = children[-1].result.output_shape if children else shape
        return _sum(children, "repeat", shape, out)

    def branches(self, node: Branches, shape: Shape, scopes, ctx) -> Result:
        children = []
        outs = []
        labels = []
        for i, branch in enumerate(node.branches):
            labels.append(("main", "shortcut")[i] if node.kind == "residual" else f"branch {i}")
            res = self.seq(branch, shape, scopes, ctx, "branch")
            children.append(Child(None, res))
            outs.append(res.output_shape)
        join = node.join
        self.check_tokens(join.layer, outs, node.origin, ctx)
        try:
            out = join.layer.infer_many(outs)
        except ValueError as exc:
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


def _width(r: Result) -> int:
    """Positions one unnamed structure takes in its namespace (one per item it lists there)."""
    n = 0
    for ch in r.children:
        cr = ch.result
        flat = not (cr.is_leaf or ch.name is not None or cr.kind.startswith("block:"))
        n += ch.count * (_width(cr) if flat else 1)
    return n


def _segment(name: str | None, taken: dict) -> str:
    """The next name in a namespace: the item's own name, or its position when unnamed."""
    position = taken.get(None, 0)
    taken[None] = position + 1
    seg = str(position) if name is None else name
    if seg in taken:
        k = 2
        while f"{seg}#{k}" in taken:
            k += 1
        seg = f"{seg}#{k}"
    taken[seg] = True
    return seg


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
        """Depth-first rows with dotted names, one per leaf layer and one per namespace.

        Namespaces are named items and block instances (like PyTorch modules); unnamed
        structure (group, repeat, its iterations, residual, parallel, branches) is syntax
        only: its items are numbered in the enclosing namespace. Within a namespace an
        unnamed item is called by its position (``features.3``); a name used again gets
        ``#2``, ``#3``… (a reused ReLU). Repeated identical iterations are expanded, unless the
        model has more than ``MAX_ROWS`` leaves: then each run of them is listed once, as a
        namespace ``[first-last]`` (the iterations' numbers in their repeat) whose rows have
        ``count`` = the run's length, and the enclosing positions advance as if every
        iteration had been listed.
        ``depth`` stops descending (1 = top level): a namespace there stands for its subtree.
        """
        collapse = self.root.leaves > MAX_ROWS

        def walk(result: Result, prefix: str, level: int, taken: dict, mult: int):
            for child in result.children:
                if collapse and child.count > 1:
                    yield from run(child, prefix, level, taken, mult)
                    continue
                for _ in range(child.count):
                    yield from visit(child.name, child.result, prefix, level, taken, mult)

        def visit(name, r: Result, prefix: str, level: int, taken: dict, mult: int):
            if not (r.is_leaf or name is not None or r.kind.startswith("block:")):
                yield from walk(r, prefix, level, taken, mult)
                return
            full = f"{prefix}.{_segment(name, taken)}" if prefix else _segment(name, taken)
            if r.is_leaf or (depth is not None and level >= depth):
                yield Row(full, level, r, mult)
                return
            if not leaves_only:
                yield Row(full, level, r, mult)
            yield from walk(r, full, level + 1, {}, mult)

        def run(child: Child, prefix: str, level: int, taken: dict, mult: int):
            seg = f"[{child.first}-{child.first + child.count - 1}]"
            full = f"{prefix}.{seg}" if prefix else seg
            k = mult * child.count
            taken[None] = taken.get(None, 0) + child.count * _width(child.result)
            if depth is not None and level >= depth:
                yield Row(full, level, child.result, k)
                return
            if not leaves_only:
                yield Row(full, level, child.result, k)
            yield from walk(child.result, full, level + 1, {}, k)

        yield from walk(self.root, "", 1, {}, 1)


def analyze(model: Model, *, batch: int = 1, convention: str | Convention = "standard",
            dtype: str = "fp32", input_shape: Shape | None = None) -> Analysis:
    """Infer every shape and count parameters, MACs and FLOPs under ``convention``."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise SpecError(f"batch must be a positive whole number, got {batch!r}")
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype '{dtype}'; known: {', '.join(DTYPE_BYTES)}")
    conv = conv_mod.get(convention) if isinstance(convention, str) else convention
    if input_shape is not None:
        from .spec import check_size
        shape = tuple(check_size(v, ("input", i)) for i, v in enumerate(input_shape))
        if not shape:
            raise SpecError("input shape needs at least one size")
    else:
        shape = tuple(model.input_shape)
    if model.input_kind == "tokens":
        shape = Tokens(shape)
    analyzer = _Analyzer(model, conv, batch)
    root = analyzer.seq(model.root, shape, ({"input": shape},), (), "model")
    return Analysis(model, shape, batch, conv.name, dtype, root)
