"""The oracle's core: the PyTorch module tree that mirrors a calc model, calc's names for its
leaves, and one measured run.

Independence is the point. Every leaf builds its PyTorch layer lazily, on its first call, from
the tensor that actually reaches it (:class:`LazyLeaf`, with the builders of
:data:`calc.oracle.registry.BUILDERS`); calc's own shape inference is never consulted, so the
parameters PyTorch allocates, the output shapes it produces and the FLOPs that
``torch.utils.flop_counter.FlopCounterMode`` counts are independent measurements.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..analysis import name_segment
from ..errors import OracleError
from ..graph import Branches, Leaf, Model, Repeat, Seq
from ..layers import Join, Layer
from .registry import Refused, TorchRejected, builder_for

# The oracle allocates every layer of the model: a model that expands to more layer instances
# than MAX_ORACLE_LAYERS (repeats counted in full) is refused rather than built.
from ..limits import MAX_ORACLE_LAYERS  # noqa: E402

_TOO_DEEP = ("the model nests too deeply for calc's oracle to run it (Python's recursion limit in "
             "calc's module tree, not a verdict of PyTorch); verify a shallower part of it")


# ---------------------------------------------------------------------------- the module tree

class LazyLeaf(nn.Module):
    """One calc leaf. Builds its PyTorch layer (child ``op``) on the first call, from the actual
    input; parameters are allocated uninitialised and zeroed, since only shapes matter. A leaf
    with ``tie`` shares the weight of the earlier leaf of that name (counted once by PyTorch)."""

    def __init__(self, layer: Layer, name: str, node: Leaf | None = None):
        super().__init__()
        self.layer = layer
        self.calc_name = name
        self.node_name = node.name if node is not None else None
        self.trainable = node.trainable if node is not None else True
        self.tie = getattr(node, "tie", None)
        self.many = isinstance(layer, Join) or bool(layer.refs())
        # A layer the PyTorch code calls as a function (F.relu in a forward) is not a module
        # call that hook-based tools see: run the module's forward without __call__.
        hints = dict(getattr(node, "hints", ()) or ())
        self.functional = hints.get("call") in ("functional", "operator", "method")
        self.call = hints.get("call")
        self.strided = hints.get("contiguous") is False
        self.op = None
        self.named = None   # the model's registry of named leaves, set by OracleModel

    def _materialize(self, x):
        if isinstance(x, (list, tuple)):
            shape = [tuple(t.shape[1:]) for t in x]
        else:
            shape = tuple(x.shape[1:])
        build = builder_for(self.layer.type_name)
        with torch.device("meta"):
            op = build(self.layer, shape)
        op = op.to_empty(device="cpu")
        with torch.no_grad():
            for t in (*op.parameters(), *op.buffers()):
                if t.is_floating_point():
                    t.zero_()
                else:
                    t.fill_(0)
        if hasattr(op, "handed"):
            op.handed = self.named     # what a layer hands to later ones in one forward (T5's bias)
        if self.call and hasattr(op, "call_hint"):
            op.call_hint = self.call   # which form the PyTorch code calls (torch.matmul or @)
        op.eval()
        op.requires_grad_(self.trainable)
        if self.tie is not None:
            target = (self.named or {}).get(self.tie)
            if target is None or target.op is None or not hasattr(target.op, "weight"):
                raise Refused(f"tie: no earlier layer named '{self.tie}' with a weight")
            if not hasattr(op, "weight"):
                raise Refused(f"tie: {self.layer.type_name} has no weight to share")
            op.weight = target.op.weight
        self.op = op

    def forward(self, x):
        try:
            if self.op is None:
                self._materialize(x)
            if self.strided and not isinstance(x, (list, tuple)) and x.dim() >= 2:
                x = x.transpose(-1, -2).contiguous().transpose(-1, -2)   # same values, not contiguous
            out = self.op.forward(x) if self.functional else self.op(x)
            if 0 in out.shape[1:]:
                # PyTorch returns an empty tensor where calc refuses a size of zero; calc's rule
                # is that every size is at least 1, so an empty output counts as a refusal.
                raise Refused(f"the output {tuple(out.shape[1:])} is empty (a size of 0)")
        except OracleError:
            raise
        except RecursionError:   # calc's own walk of a deeply nested model, not PyTorch's verdict
            raise OracleError(_TOO_DEEP) from None
        except Refused as exc:
            raise TorchRejected(f"{self.calc_name} ({self.layer.type_name}): the oracle refuses "
                                f"{_shapes(x)}: {exc}", layer=self.calc_name,
                                type_name=self.layer.type_name) from None
        except Exception as exc:  # whatever PyTorch raises is its verdict on this input
            if type(exc).__name__ == "_StopRecomputationError":
                raise     # torch.utils.checkpoint ends a recomputation early by raising it
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TorchRejected(f"{self.calc_name} ({self.layer.type_name}): PyTorch refuses "
                                f"{_shapes(x)}: {text}", layer=self.calc_name,
                                type_name=self.layer.type_name) from None
        if self.node_name and self.named is not None:
            self.named[self.node_name] = self
            self.named[self.calc_name] = self   # a tie may name it by its dotted path
        return out


def _shapes(x) -> str:
    def one(t):
        return "×".join(map(str, t.shape[1:])) or "scalar"
    if isinstance(x, (list, tuple)):
        return "inputs " + " and ".join(one(t) for t in x)
    return "input " + one(x)


def _lookup(name, scopes):
    for scope in scopes:
        if name in scope:
            return scope[name]
    raise OracleError(f"no earlier output named '{name}'")


class SeqModule(nn.Module):
    """Items in order; ``from:``, ``with:`` and ``kv:`` names resolve in this scope, then outer ones."""

    unit = False    # a block instance or a repeat's iteration (see _build_node)

    def __init__(self, entries):
        super().__init__()
        self.steps = []   # (child, source, output name, names read besides the flow)
        for i, (module, node) in enumerate(entries):
            self.add_module(str(i), module)
            refs = node.layer.refs() if isinstance(module, LazyLeaf) and module.many else None
            keeps = isinstance(module, LazyLeaf) and module.layer.keeps_flow
            self.steps.append((str(i), node.source, node.name, refs, getattr(node, "runs", True), keeps))
        self.idle_built: set = set()   # items that do not run at inference, built once

    def forward(self, x, scopes):
        scope: dict = {}
        inner = (scope, *scopes)
        for child, source, out_name, refs, runs, keeps in self.steps:
            inp = x if source is None else _lookup(source, inner)
            module = self._modules[child]
            if not runs:
                # inference: false (an auxiliary classifier): run once, outside any FLOP counter,
                # so that its layers are built and hold their parameters; then never again, so
                # that no tool counts its operations. The flow goes on from its input.
                if child not in self.idle_built:
                    from torch.utils._python_dispatch import _disable_current_modes
                    with _disable_current_modes():
                        out = self._step(module, inp, refs, inner)
                    self.idle_built.add(child)
                    if out_name:
                        scope[out_name] = out
                continue
            out = self._step(module, inp, refs, inner)
            if out_name:
                scope[out_name] = out
            if not keeps:      # a parameter or buffer: the flow passes around it
                x = out
        return x

    @staticmethod
    def _step(module, inp, refs, inner):
        if refs is not None:
            return module([inp, *(_lookup(n, inner) for n in refs)])
        if isinstance(module, LazyLeaf):
            return module(inp)
        return module(inp, inner)


class RepeatModule(nn.Module):
    def __init__(self, bodies):
        super().__init__()
        for i, body in enumerate(bodies):
            self.add_module(str(i), body)

    def forward(self, x, scopes):
        for body in self._modules.values():
            x = body(x, scopes)
        return x


class BranchesModule(nn.Module):
    def __init__(self, branches, join: LazyLeaf):
        super().__init__()
        self.count = len(branches)
        for i, module in enumerate(branches):
            self.add_module(f"branch{i}", module)
        self.join = join

    def forward(self, x, scopes):
        outs = [self._modules[f"branch{i}"](x, scopes) for i in range(self.count)]
        return self.join(outs)


class OracleModel(SeqModule):
    """The whole model: ``forward(x)`` takes a batched tensor (of token ids for a model whose
    input is tokens); the name ``input`` refers to it. A model with several named inputs
    (``inputs:``, an encoder–decoder) takes one tensor per input, in the spec's order, as
    separate arguments or as one tuple (the form a counting tool passes), or by name as keywords;
    each is known by its name, and the flow starts from the first, as in calc's analysis."""

    def __init__(self, entries, model: Model):
        super().__init__(entries)
        self.calc_model_name = model.name
        self.tokens = getattr(model, "input_kind", "values") == "tokens"
        self.input_names = tuple(name for name, _ in getattr(model, "inputs", ()) or ())
        named: dict = {}
        for m in self.modules():
            if isinstance(m, LazyLeaf):
                m.named = named
        self._named = named

    def forward(self, *xs, **by_name):
        if by_name and not xs and set(by_name) == set(self.input_names):
            xs = tuple(by_name[n] for n in self.input_names)   # as keywords (ptflops passes a dict so)
        if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
            xs = tuple(xs[0])
        want = max(len(self.input_names), 1)
        if len(xs) != want:
            raise OracleError(f"the oracle's module takes {want} input tensor(s), got {len(xs)}")
        self._named.clear()
        scope = {"input": xs[0], **dict(zip(self.input_names, xs))}
        return super().forward(xs[0], (scope,))


def input_shapes(model: Model, input_shape: tuple | None = None) -> tuple:
    """The per-sample shape of each input tensor the module takes: the first (``input_shape``
    when given, as ``calc verify --input`` overrides it), then the spec's other inputs."""
    first = tuple(input_shape) if input_shape is not None else tuple(model.input_shape)
    return (first, *(tuple(dims) for _, dims in tuple(getattr(model, "inputs", ()) or ())[1:]))


def zeros_inputs(module: OracleModel, shapes: tuple, batch: int, dtype=None) -> tuple:
    """A batch of zeros per input: int64 token ids for a model of tokens, else ``dtype`` (fp32)."""
    kind = torch.long if module.tokens else (dtype or torch.float32)
    return tuple(torch.zeros(batch, *s, dtype=kind) for s in shapes)


def count_layers(node, memo=None) -> int:
    """Leaf instances after expanding repeats (exact; shared sub-trees are counted once each use)."""
    memo = {} if memo is None else memo
    key = id(node)
    if key in memo:
        return memo[key]
    if isinstance(node, Leaf):
        n = 1
    elif isinstance(node, Seq):
        n = sum(count_layers(i, memo) for i in node.items)
    elif isinstance(node, Repeat):
        bodies = getattr(node, "bodies", None)
        n = (sum(count_layers(b, memo) for b in bodies) if bodies is not None
             else node.times * count_layers(node.body, memo))
    elif isinstance(node, Branches):
        n = sum(count_layers(b, memo) for b in node.branches) + 1
    else:  # pragma: no cover - the builder makes only these
        raise TypeError(node)
    memo[key] = n
    return n


# calc's names (see calc.analysis.Analysis.rows): namespaces are named items and block
# instances, as PyTorch modules; unnamed structure is flattened into the enclosing namespace,
# where an unnamed item is called by its position and a name used again gets #2, #3…
# (calc.analysis.name_segment, shared so that the two can never name differently).

def _join_name(prefix: str, seg: str) -> str:
    return f"{prefix}.{seg}" if prefix else seg


def _namespace(node, prefix: str, taken: dict):
    """(prefix, taken) for the children of a container node."""
    named = node.name is not None or (isinstance(node, Seq) and node.kind.startswith("block:"))
    if named:
        return _join_name(prefix, name_segment(node.name, taken)), {}
    return prefix, taken


def _build_node(node, prefix: str, taken: dict):
    if isinstance(node, Leaf):
        return LazyLeaf(node.layer, _join_name(prefix, name_segment(node.name, taken)), node)
    # A block instance and each iteration of a repeat is a unit that activation checkpointing
    # may wrap (calc.memory's units: the outermost ones are checkpointed).
    if isinstance(node, Seq):
        ns, inner = _namespace(node, prefix, taken)
        module = _build_seq(node, ns, inner)
        module.unit = node.kind.startswith("block:")
        return module
    if isinstance(node, Repeat):
        ns, inner = _namespace(node, prefix, taken)
        bodies = getattr(node, "bodies", None) or (node.body,) * node.times
        module = RepeatModule([_build_seq(body, ns, inner) for body in bodies])
        for body in module.children():
            body.unit = True
        return module
    if isinstance(node, Branches):
        ns, inner = _namespace(node, prefix, taken)
        branches = [_build_seq(b, ns, inner) for b in node.branches]
        join = LazyLeaf(node.join.layer, _join_name(ns, name_segment(node.join.name, inner)), node.join)
        return BranchesModule(branches, join)
    raise TypeError(node)  # pragma: no cover


def _build_seq(seq: Seq, prefix: str, taken: dict) -> SeqModule:
    return SeqModule([(_build_node(item, prefix, taken), item) for item in seq.items])


def build_module(model: Model) -> OracleModel:
    """An unmaterialised PyTorch module for ``model``; its layers are built on the first call."""
    n = count_layers(model.root)
    if n > MAX_ORACLE_LAYERS:
        raise OracleError(f"the model expands to {n:,} layers; the oracle builds at most "
                          f"{MAX_ORACLE_LAYERS:,}")
    taken: dict = {}
    entries = [(_build_node(item, "", taken), item) for item in model.root.items]
    module = OracleModel(entries, model)
    module.eval()
    return module


# ---------------------------------------------------------------------------- measurement

@dataclass(frozen=True)
class MeasuredLeaf:
    name: str             # calc's dotted name
    type: str
    output_shape: tuple   # per sample
    params: int
    flops: int            # FlopCounterMode, whole batch


@dataclass(frozen=True)
class Measured:
    """What PyTorch says about a model at one batch size."""

    torch_version: str
    batch: int
    input_shape: tuple    # per sample, the first input
    output_shape: tuple   # per sample
    params: int
    trainable_params: int
    buffers: int
    flops: int            # FlopCounterMode total (2 per MAC), whole batch
    leaves: tuple         # of MeasuredLeaf, in call order
    module: object = field(default=None, compare=False, repr=False)
    input_shapes: tuple = ()   # per sample, every input (several for a spec with `inputs:`)


@contextmanager
def pytorch_errors():
    """What running the oracle's module raises, as calc says it: a model nested past Python's
    recursion limit is calc's limit; any other RuntimeError (a tensor too large to allocate …) is
    PyTorch refusing the model."""
    try:
        yield
    except RecursionError:   # before RuntimeError, its base class: the nesting, not PyTorch
        raise OracleError(_TOO_DEEP) from None
    except RuntimeError as exc:
        raise TorchRejected(f"PyTorch fails: {str(exc).strip().splitlines()[0]}") from None


def measure(model: Model, batch: int = 1, input_shape: tuple | None = None) -> Measured:
    """Build the module, run one batch of zeros through it under FlopCounterMode, and report
    parameters, buffers, each leaf's output shape and FLOPs. Raises :class:`TorchRejected`
    when PyTorch refuses the model."""
    shapes = input_shapes(model, input_shape)
    shape = shapes[0]
    module = build_module(model)
    records: list = []

    def hook(mod, inputs, output):
        records.append((mod, tuple(output.shape)))

    leaves = [m for m in module.modules() if isinstance(m, LazyLeaf)]
    handles = [m.register_forward_hook(hook) for m in leaves]
    root_name = type(module).__name__
    counter = FlopCounterMode(display=False)
    try:
        with pytorch_errors():
            xs = zeros_inputs(module, shapes, batch)
            with warnings.catch_warnings(), torch.no_grad(), counter:
                warnings.simplefilter("ignore")
                out = module(*xs)
    finally:
        for h in handles:
            h.remove()
    counts = counter.get_flop_counts()
    fqn = {m: n for n, m in module.named_modules()}
    measured_leaves = []
    seen: set = set()   # a shared (tied) parameter belongs to the first leaf that uses it
    for mod, out_shape in records:
        per_leaf = counts.get(f"{root_name}.{fqn[mod]}", {})
        own = [p for p in mod.parameters() if id(p) not in seen]
        seen.update(id(p) for p in own)
        measured_leaves.append(MeasuredLeaf(
            mod.calc_name, mod.layer.type_name, _per_sample(out_shape, batch, mod.calc_name),
            sum(p.numel() for p in own), int(sum(per_leaf.values()))))
    return Measured(
        torch_version=torch.__version__, batch=batch, input_shape=shape,
        output_shape=_per_sample(tuple(out.shape), batch, "output"),
        params=sum(p.numel() for p in module.parameters()),
        trainable_params=sum(p.numel() for p in module.parameters() if p.requires_grad),
        buffers=sum(b.numel() for b in module.buffers()),
        flops=int(counter.get_total_flops()), leaves=tuple(measured_leaves), module=module,
        input_shapes=shapes)


def _per_sample(shape: tuple, batch: int, where: str) -> tuple:
    if not shape or shape[0] != batch:
        raise OracleError(f"{where}: the batch dimension was lost (shape {shape}); an oracle bug")
    return tuple(shape[1:])


