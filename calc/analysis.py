"""Shape inference and counting over a built model. Computes; never prints.

``analyze(model, ...)`` returns an :class:`Analysis`: a tree of frozen :class:`Result`
nodes (one per layer, block, repeat, branch) and the totals. Counts in results are per
sample; :class:`Analysis` scales them by the batch. A few tool conventions count part of a
layer for the whole batch, not in proportion to it (see :mod:`calc.conventions`): that part is
kept apart in ``macs_batch``/``flops_batch`` and added unscaled. A subtree whose output shape
equals its input shape inside a repeat is analysed once and multiplied. Results of identical
layers, and of identical self-contained block bodies, on identical inputs are computed once
(also across analyses, with ``cache``).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, NamedTuple, Union

from . import conventions as conv_mod
from ._gc import gc_paused
from .conventions import Convention
from .errors import CalcError, ShapeError, SpecError, format_path
from .facts import LeafFacts, _base_facts, _leaf_facts
from .graph import Branches, Leaf, Model, Repeat, Seq
from .layers import Join, Params
from .shapes import Shape, Tokens, fmt_shape, numel

from .choices import DTYPE_BYTES  # noqa: E402,F401 - also imported from here
# MAX_ANALYSED: layers and structures analysed one by one (a memoised block or leaf still counts
# each time it is reached; identical repeat iterations are analysed once and multiplied).
# Reports fold a long run of identical repeat iterations into two rows (see folds); a model whose
# report would still list more than MAX_LISTED rows (blocks that use blocks twice, 40 deep,
# expand to 2**40 layers) is refused, so that every report stays bounded.
from .limits import (FOLD, FOLD_ROWS, MAX_ANALYSED, MAX_BATCH, MAX_FRESH_ITERATIONS, MAX_LISTED, MAX_RANK,  # noqa: E402
                     MAX_TIED_WALK)


def folds(count: int, rows_each: int) -> bool:
    """Whether a run of ``count`` identical iterations, each listing ``rows_each`` rows, is folded
    into its first iteration and one row: a run of more than FOLD, or one that would list more
    than FOLD_ROWS rows (a repeat of 500 iterations of 1,000 layers)."""
    return count > FOLD or (count > 1 and count * rows_each > FOLD_ROWS)


class Result(NamedTuple):
    """One node of the analysed tree. Counts are per sample and include the children.
    (An immutable record; a named tuple because analyses create many of them.)"""

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


class Child(NamedTuple):
    name: str | None         # the user's name (joins: their type); None when unnamed
    result: Result
    count: int = 1           # identical consecutive repetitions (a repeat at a fixed point)
    first: int | None = None  # with count > 1: the first iteration's number


@dataclass(frozen=True, slots=True)
class Row:
    """A flattened view of one result for reports."""

    name: str
    depth: int
    result: Result
    count: int = 1           # > 1: a folded run of identical iterations (see Analysis.rows)


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


def _idle(r: Result) -> Result:
    """``r`` for an item that does not run at inference: parameters and buffers kept; no
    operations and no activations, in it and in everything inside it."""
    return r._replace(macs=0, flops=0, activations=0, macs_batch=0, flops_batch=0,
                      children=tuple(c._replace(result=_idle(c.result)) for c in r.children))


class _ShapesOnly:
    """Not a convention: the builder's analyser infers shapes and counts nothing."""
    name = "shapes only"


SHAPES_ONLY = _ShapesOnly()
_NO_COUNT = conv_mod.Count(0, 0)


def shape_analyzer(model: Model) -> "_Analyzer":
    """An analyser that infers shapes only (no counting, no tie checks), for the builder."""
    return _Analyzer(model, SHAPES_ONLY)


class _Analyzer:
    def __init__(self, model: Model, convention: Convention, batch: int = 1, memo: dict | None = None):
        self.model = model
        self.convention = convention
        self.batch = batch
        # Leaf results keyed by (id(layer), input shapes, trainable, tie, hints); block results
        # (see block). Each entry holds its layer or items, so that their ids cannot be reused by
        # other objects while the entry lives.
        self.memo: dict = {} if memo is None else memo
        self.named_leaves: dict = {}   # name -> (layer, input shape) of named leaves
        self.named_log: list = []      # every registration in named_leaves, in order (see block)
        self.ties: dict = {}           # id(result) -> (leaf, context) of each leaf with `tie`
        self.analysed = 0

    def fail(self, message, origin, ctx):
        file, line = self.model.locate(origin)
        raise ShapeError(message, path=origin, file=file, line=line, context=ctx)

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
        if refs:
            shapes = [shape] + [self.lookup(n, scopes, node.origin, ctx) for n in refs]
            self.check_tokens(layer, shapes, node.origin, ctx)
        else:
            shapes = [shape]
            if layer.takes_tokens or isinstance(shape, Tokens):   # else nothing to check
                self.check_tokens(layer, shapes, node.origin, ctx)
        if node.name:
            self.named_leaves[node.name] = (layer, shape)
            self.named_log.append((node.name, layer, shape))
        key = (id(layer), tuple(shapes) if refs else shape)
        if not node.trainable or node.tie is not None or node.hints:     # the usual leaf: a short key
            key += (node.trainable, node.tie, node.hints)
        hit = self.memo.get(key) if node.tie is None else None   # a tie is checked every time
        if hit is not None:
            return hit
        try:
            if many:
                if isinstance(layer, Join) and len(shapes) < 2:
                    raise ValueError("needs at least two inputs; give earlier outputs with 'with'")
                out, p, ops = layer.evaluate_many(shapes)
            else:
                out, p, ops = layer.evaluate(shape)
        except ValueError as exc:
            got = " and ".join(fmt_shape(s) for s in shapes)
            self.fail(f"{layer.type_name} cannot take input {got}: {exc}", node.origin, ctx)
        if len(out) > MAX_RANK:
            self.fail(f"{layer.type_name} gives a shape of {len(out):,} dimensions; calc takes at most {MAX_RANK}",
                      node.origin, ctx)
        tied = int(node.tie is not None)
        facts = _leaf_facts(layer, shape, node.hints, tied, out, p, ops)
        if node.tie is not None:
            # Its weight is counted at the layer it shares (checked once every name is known, by
            # check_ties); its bias stays its own.
            p = Params(0, p.bias, p.buffers)
        inputs = tuple(shapes) if many else ()
        count = self.count(layer, facts, inputs or shape, out, node.origin, ctx)
        result = Result(layer.type_name, shape, out, p.weights, p.bias, p.buffers,
                        0 if node.trainable else p.total, count.macs, count.flops, numel(out), 1,
                        layer=layer, facts=LeafFacts(layer, shape, inputs, node.hints, tied), tied_to=node.tie,
                        macs_batch=count.macs_batch, flops_batch=count.flops_batch, inputs=inputs)
        self.memo[key] = result
        if node.tie is not None:
            self.ties[id(result)] = (node, ctx)
        return result

    def count(self, layer, facts, shape, out, origin, ctx):
        if self.convention is SHAPES_ONLY:
            return _NO_COUNT
        try:
            return self.convention.count(layer, facts, self.batch, shape, out)
        except CalcError as err:
            file, line = self.model.locate(origin)
            err.locate(path=origin, file=file, line=line, context=ctx)
            raise

    # -- containers
    def seq(self, node: Seq, shape: Shape, scopes, ctx, kind: str) -> Result:
        scope: dict = {}
        inner = (scope, *scopes)
        children: list = []
        x = shape
        for item in node.items:
            x = self.step(item, x, scope, inner, ctx, children)
        return _sum(children, kind, shape, x)

    def step(self, item, x: Shape, scope: dict, inner: tuple, ctx, children: list) -> Shape:
        """Analyse one item of a sequence whose flow is ``x``; the flow after it. (The builder
        also steps through the items built so far to know the shape an `in.` expression reads.)"""
        inp = x if item.source is None else self.lookup(item.source, inner, item.origin, ctx)
        res = self.node(item, inp, inner, ctx)
        if item.name:
            scope[item.name] = res.output_shape
        if not item.runs:
            # inference: false (an auxiliary classifier): its parameters count, its operations
            # and activations do not, and the flow goes on from its input.
            children.append(Child(item.name, _idle(res)))
            return x
        children.append(Child(item.name, res if item.counted else _idle(res)))
        if isinstance(item, Leaf) and item.layer.keeps_flow:
            return x   # a parameter or buffer: read by name later; the flow passes around it
        return res.output_shape

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
        key = ("block", id(items), type(shape), shape, node.kind)
        hit = self.memo.get(key)
        if hit is not None and hit[0] is items:
            for name, layer, at in hit[2]:       # names a later `tie` may need
                self.named_leaves[name] = (layer, at)
            self.named_log.extend(hit[2])
            return hit[1]
        start = len(self.named_log)
        result = self.seq(node, shape, scopes, ctx, node.kind)
        if not self.free(items):
            self.memo[key] = (items, result, tuple(self.named_log[start:]))
        return result

    def free(self, items: tuple) -> frozenset:
        """The names ``items`` read from outside themselves (``from``, ``with``, a layer's
        other inputs), following the analysis's scoping: an item sees the names of earlier
        items of its sequence and of the sequences around it. A tie (which looks at the whole
        model) counts as the name ``tie:<target>``. Memoised: bodies are shared."""
        key = ("free", id(items))
        hit = self.memo.get(key)
        if hit is not None and hit[0] is items:
            return hit[1]
        local: set = set()
        out: set = set()
        for item in items:
            if item.source is not None and item.source not in local:
                out.add(item.source)
            if isinstance(item, Leaf):
                if item.tie is not None:
                    out.add("tie:" + item.tie)
                out.update(n for n in item.layer.refs() if n not in local)
            else:
                if isinstance(item, Seq):
                    bodies = (item,)
                elif isinstance(item, Repeat):
                    bodies = item.bodies if item.bodies is not None else (item.body,)
                else:
                    bodies = item.branches
                for body in bodies:
                    out.update(n for n in self.free(body.items) if n not in local)
            if item.name:
                local.add(item.name)
        result = frozenset(out)
        self.memo[key] = (items, result)
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
            body = node.body if node.bodies is None else node.bodies[i]
            res = self.seq(body, x, scopes,
                           ctx + (lambda i=i: f"in repetition {i + 1} of {node.times}",), "group")
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
        key = (id(join.layer), tuple(outs), "join", join.hints)
        jres = self.memo.get(key)
        if jres is None:
            try:
                out, _, ops = join.layer.evaluate_many(outs)
            except ValueError as exc:
                got = ", ".join(f"{n} {fmt_shape(s)}" for n, s in zip(labels, outs))
                self.fail(f"{node.kind} branches cannot be joined by {join.layer.type_name} ({got}): {exc}",
                          node.origin, ctx + (f"input {fmt_shape(shape)}",))
            facts = {**_base_facts(join.layer, join.hints), **ops,
                     "in": sum(numel(s) for s in outs), "out": numel(out), "x": sum(numel(s) for s in outs),
                     "y": numel(out), "params": 0, "weights": 0, "biases": 0}
            count = self.count(join.layer, facts, tuple(outs), out, node.origin, ctx)
            jres = Result(join.layer.type_name, outs[0], out, 0, 0, 0, 0, count.macs, count.flops, numel(out), 1,
                          layer=join.layer, facts=facts, macs_batch=count.macs_batch, flops_batch=count.flops_batch,
                          inputs=tuple(outs))
            self.memo[key] = jres
        children.append(Child(join.name, jres))
        return _sum(children, node.kind, shape, jres.output_shape)


def _positions(name: str | None, r: Result) -> int:
    """How many positions of the enclosing namespace an item takes (see Analysis.rows)."""
    if r.is_leaf or name is not None or r.kind.startswith("block:"):
        return 1
    return sum(c.count * _positions(c.name, c.result) for c in r.children)


def name_segment(name: str | None, taken: dict) -> str:
    """The next name in a namespace: the item's own name, or its position when unnamed."""
    position = taken.get(None, 0)
    taken[None] = position + 1
    if name is None:
        # Positions only grow and no name is a number (names are identifiers): a position is
        # never taken, and need not be remembered (a namespace of 100,000 layers would keep
        # every one).
        return str(position)
    seg = name
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

    def macs_of(self, r: Result, count: int = 1) -> int:
        """A result's MACs for the whole batch (``count`` times, for a folded run of identical
        repetitions). A tool that divides (ptflops) truncates its total with int(); calc does
        the same with the exact value."""
        return int(count * (r.macs * self.batch + r.macs_batch))

    def flops_of(self, r: Result, count: int = 1) -> int:
        """A result's FLOPs for the whole batch (see :meth:`macs_of`)."""
        return int(count * (r.flops * self.batch + r.flops_batch))

    @property
    def totals(self) -> Totals:
        r, n, size = self.root, self.batch, DTYPE_BYTES[self.dtype]
        return Totals(params=r.params, trainable_params=r.params - r.frozen, weights=r.weights,
                      bias=r.bias, buffers=r.buffers, macs=self.macs_of(r), flops=self.flops_of(r),
                      param_bytes=r.params * size, activation_bytes_per_sample=r.activations * size,
                      activation_bytes=r.activations * size * n)

    def rows(self, depth: int | None = None, leaves_only: bool = False,
             fold: int | None = None) -> Iterator[Row]:
        """Depth-first rows with dotted names, one per leaf layer and one per namespace.

        Namespaces are named items and block instances (like PyTorch modules); unnamed
        structure (group, repeat, its iterations, residual, parallel, branches) is syntax
        only: its items are numbered in the enclosing namespace. Within a namespace an
        unnamed item is called by its position (``features.3``); a name used again gets
        ``#2``, ``#3``… (a reused ReLU). Repeated identical iterations are expanded.
        ``depth`` stops descending (1 = top level): a namespace there stands for its subtree.
        With ``fold``, a run of more than ``fold`` identical iterations is its first iteration
        and one row (``count`` = the others) named by the positions the others take
        (``first…last``), so that a block repeated a million times stays a short report.
        """
        listed: dict = {}

        def walk(result: Result, prefix: str, level: int, taken: dict):
            for child in result.children:
                if fold is None or child.count == 1 or not (
                        child.count > fold or folds(child.count, _listed(child.result, listed))):
                    for _ in range(child.count):
                        yield from visit(child.name, child.result, prefix, level, taken)
                    continue
                yield from visit(child.name, child.result, prefix, level, taken)
                per = _positions(child.name, child.result)
                if per:
                    start = taken.get(None, 0)
                    end = start + per * (child.count - 1) - 1
                    taken[None] = end + 1
                    first, last = (f"{prefix}.{i}" if prefix else str(i) for i in (start, end))
                    yield Row(f"{first}…{last}", level, child.result, child.count - 1)

        def visit(name, r: Result, prefix: str, level: int, taken: dict):
            if not (r.is_leaf or name is not None or r.kind.startswith("block:")):
                yield from walk(r, prefix, level, taken)
                return
            full = f"{prefix}.{name_segment(name, taken)}" if prefix else name_segment(name, taken)
            if r.is_leaf or (depth is not None and level >= depth):
                yield Row(full, level, r)
                return
            if not leaves_only:
                yield Row(full, level, r)
            yield from walk(r, full, level + 1, {})

        yield from walk(self.root, "", 1, {})


@gc_paused
def analyze(model: Model, *, batch: int = 1, convention: str | Convention = "standard",
            dtype: str = "fp32", input_shape: Shape | None = None, cache: dict | None = None) -> Analysis:
    """Infer every shape and count parameters, MACs and FLOPs under ``convention``.

    ``cache`` (an empty dict to start) lets many analyses share the results of identical
    layers and blocks on identical inputs, e.g. the variants of a sweep; it grows with the
    distinct (layer, input shape) pairs seen."""
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= MAX_BATCH:
        from .limits import clip
        raise SpecError(f"batch must be a whole number from 1 to 10**100, got {clip(batch)}")
    if not isinstance(model, Model):
        from .errors import ArgumentTypeError
        raise ArgumentTypeError(f"analyze takes a Model (from Spec.build), got {type(model).__name__}")
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}")
    if not isinstance(convention, (str, Convention)):
        from .errors import ArgumentTypeError
        raise ArgumentTypeError(f"convention must be a name such as 'standard', got {type(convention).__name__}")
    conv = conv_mod.get(convention) if isinstance(convention, str) else convention
    if input_shape is not None:
        from .spec import check_rank, check_size
        if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
            raise SpecError(f"input shape must be a sequence of sizes, got {type(input_shape).__name__}")
        shape = tuple(check_size(v, ("input", i)) for i, v in enumerate(input_shape))
        check_rank(shape, ("input",))
        if not shape:
            raise SpecError("input shape needs at least one size")
    else:
        shape = tuple(model.input_shape)
    if model.reads_in and tuple(shape) != tuple(model.input_shape):
        raise SpecError(f"{model.name} reads the shape entering its items (`in`), which is fixed when the spec is "
                        f"built: this model was built for input {fmt_shape(tuple(model.input_shape))}; build it "
                        f"again for {fmt_shape(shape)} (spec.build(input_shape=...), as --input does)",
                        file=model.source_name)
    if model.input_kind == "tokens":
        shape = Tokens(shape)
    memo = None
    if cache is not None:
        # Results depend on the convention and, for some conventions, on the batch size.
        entry = cache.get((id(conv), batch))
        if entry is None or entry[0] is not conv:
            entry = cache[(id(conv), batch)] = (conv, {})
        memo = entry[1]
    analyzer = _Analyzer(model, conv, batch, memo)
    scope = {"input": shape}
    for i, (name, dims) in enumerate(model.inputs):   # several inputs: each by its name
        scope[name] = shape if i == 0 else (Tokens(dims) if model.input_kind == "tokens" else dims)
    root = analyzer.seq(model.root, shape, (scope,), (), "model")
    listed = _listed(root, {}) - 1    # the model itself is not a row
    if listed > MAX_LISTED:
        raise SpecError(f"the model has {root.leaves:,} layers and a report would list {listed:,} rows "
                        f"even with long repeats folded; calc reports at most {MAX_LISTED:,}"
                        + (" (blocks that use other blocks several times multiply)"
                           if any(getattr(n, "kind", "").startswith("block:") for n in model.root.items) else ""),
                        file=model.source_name)
    result = Analysis(model, shape, batch, conv.name, dtype, root)
    if analyzer.ties:
        if root.leaves > MAX_TIED_WALK:   # the check walks every layer: bounded time
            raise SpecError(f"the model has {root.leaves:,} layers and uses tie; calc checks ties layer by layer "
                            f"in models of at most {MAX_TIED_WALK:,} layers", file=model.source_name)
        from .ties import check_ties
        check_ties(result, analyzer.ties)
    return result


def _listed(r: Result, memo: dict) -> int:
    """Rows a report lists for ``r`` (leaves and namespaces), folding long runs of identical
    iterations as ``Analysis.rows(fold=FOLD)`` does. Results are shared: memoised by id."""
    hit = memo.get(id(r))
    if hit is not None:
        return hit
    n = 1
    for ch in r.children:
        sub = ch.result
        each = _listed(sub, memo) if sub.children else 1
        n += each + 1 if folds(ch.count, each) else ch.count * each
    memo[id(r)] = n
    return n
