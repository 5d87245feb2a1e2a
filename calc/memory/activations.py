"""Activation memory, exact to the byte: what autograd saves for backward (training) and the peak
of live tensors at inference, both under eager execution in the order calc's oracle runs.

The model is walked once into a list of operations (one per leaf layer, in execution order), each
reading values and producing one; a value lives in a storage, shared by views (flatten, a split)
and by in-place layers. What each layer keeps is a rule of :mod:`calc.memory.saved`.

* Saved activations: the bytes of the DISTINCT storages the rules keep (a storage kept by several
  layers, the output of a convolution kept by the batch norm after it and by a residual's later
  use, counts once, in the row of the first layer that keeps it). With ``checkpointing="full"``
  each checkpointed unit (a block instance, or an iteration of a repeat, outermost first) keeps
  only its input, and one unit's own saved tensors exist again while it is recomputed in the
  backward pass; ``"selective"`` (Korthikanti et al. 2022) drops attention's probabilities and
  mask, recomputed from the kept Q, K, V.
* Inference peak: while operation i runs, the live storages are those made by an earlier operation
  (or the input) and read by operation i or a later one (the model's output lives to the end),
  its own output, and the intermediates it holds inside (``Effect.work``). Dropout and stochastic
  depth are the identity at inference.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

from ..analysis import DTYPE_BYTES, Analysis
from ..errors import SpecError
from ..graph import Branches, Leaf, Repeat, Seq
from ..shapes import Tokens
from .saved import INDEX_BYTES, Effect, MemoryError_, Op, effect

from ..choices import CHECKPOINTING, MEMORY_ATTENTION as ATTENTION  # noqa: E402
DEVICES = ("cuda", "cpu")
MAX_OPS = 1_000_000      # operations walked (repeats expanded); a larger model is refused
_IDENTITY_AT_INFERENCE = ("dropout", "stochastic_depth")


@dataclass(frozen=True)
class SavedRow:
    name: str
    kind: str
    bytes: int


@dataclass(frozen=True)
class Saved:
    """The activations autograd keeps for backward: ``bytes`` for the whole batch; ``rows`` per
    layer (a tensor kept by several layers counted at the first; with full checkpointing, rows for
    the checkpointed units' inputs and for the recompute of the largest unit)."""

    bytes: int
    rows: tuple
    dtype: str
    batch: int
    checkpointing: str
    attention: str
    device: str
    notes: tuple = ()


@dataclass(frozen=True)
class PeakRow:
    name: str
    kind: str
    bytes: int       # live while the layer runs


@dataclass(frozen=True)
class Peak:
    """The peak of live activation bytes at inference (no autograd): ``bytes`` at layer ``where``;
    ``rows``: per layer, the bytes live while it runs."""

    bytes: int
    where: str
    rows: tuple
    dtype: str
    batch: int
    attention: str
    notes: tuple = ()


@dataclass
class _Value:
    storage: int
    grad: bool
    contiguous: bool
    # its dimensions laid out in another order (to_tokens' transposed view, the channels-form
    # layer norm's output): an element-wise operation lays its output out in the same order
    # (TensorIterator follows its input's stride order), so that is not contiguous either; a
    # slice keeps the natural order, and element-wise results of it are contiguous
    permuted: bool = False


# element-wise layers whose output takes its input's order of dimensions (one input, a new tensor)
LAYOUT_KEEPING = {"relu", "sigmoid", "tanh", "relu6", "leaky_relu", "elu", "gelu", "silu", "hardswish",
                  "hardsigmoid", "softplus", "exp", "clamp", "scale"}
# views that keep their input's order of dimensions (the tensor itself, or a slice of it)
SAME_ORDER_VIEWS = {"identity", "dropout", "stochastic_depth", "channel_split", "select_token"}


@dataclass(frozen=True)
class _Op:
    name: str
    kind: str
    inputs: tuple     # value ids
    output: int
    effect: Effect
    unit: int | None  # the checkpointed unit around it (outermost block or repeat iteration)
    op: Op
    # storages a layer makes or reads besides its inputs and output (inference only): T5's
    # relative position bias, made by the stack's first attention and read by the later ones
    makes: tuple = ()
    reads: tuple = ()


def _segment(name, taken: dict) -> str:
    from ..analysis import name_segment
    return name_segment(name, taken)


def _join(prefix: str, seg: str) -> str:
    return f"{prefix}.{seg}" if prefix else seg


class _Walk:
    """The model's leaf operations in execution order, with calc's dotted names (the naming of
    Analysis.rows and of the oracle's modules)."""

    def __init__(self, analysis: Analysis, size: int, device: str, attention: str, inference: bool,
                 names: bool = True):
        self.a = analysis
        self.names = names           # False: the operations go unnamed (only byte totals are wanted)
        self.size = size
        self.device = device
        self.attention = attention
        self.inference = inference
        self.values: list = []
        self.storage_bytes: list = []
        self.ops: list = []
        self.units: list = []        # (name, input value id)
        self.unit = None
        # A training walk also says how the inference walk would differ: there dropout and
        # stochastic depth are views of their input (``alias``: their output storage -> the
        # input's), which changes nothing else when that input is contiguous and of the same
        # kind (activation or held tensor) as the training output; ``inference_exact`` says so.
        self.alias: dict = {}
        self.inference_exact = True

    def storage(self, nbytes: int) -> int:
        self.storage_bytes.append(nbytes)
        return len(self.storage_bytes) - 1

    def value(self, storage: int, grad: bool, contiguous: bool = True) -> int:
        self.values.append(_Value(storage, grad, contiguous))
        return len(self.values) - 1

    def run(self) -> None:
        a = self.a
        per = INDEX_BYTES if isinstance(a.input_shape, Tokens) else self.size
        x = self.value(self.storage(a.batch * prod(a.input_shape) * per), False)
        self.input = x
        scope = {"input": x}
        # several inputs (an encoder–decoder): each its own storage, known by its name; the flow
        # starts from the first (as in calc.analysis and calc's oracle)
        self.inputs = [x]
        for i, (name, dims) in enumerate(getattr(a.model, "inputs", ()) or ()):
            if i:
                self.inputs.append(self.value(self.storage(a.batch * prod(dims) * per), False))
            scope[name] = self.inputs[i]
        self.output = self.seq(a.model.root, a.root, x, (scope,), "", {})

    @staticmethod
    def lookup(name, scopes):
        for scope in scopes:
            if name in scope:
                return scope[name]
        raise SpecError(f"no earlier output named '{name}'")   # the analysis has checked this

    def seq(self, node: Seq, result, x: int, scopes, prefix: str, taken: dict) -> int:
        scope: dict = {}
        inner = (scope, *scopes)
        for item, child in zip(node.items, result.children):
            inp = x if item.source is None else self.lookup(item.source, inner)
            if not item.runs:
                # inference: false (an auxiliary head): the oracle does not run it; walked only
                # for the names it takes, then forgotten.
                marks = len(self.ops), len(self.values), len(self.storage_bytes), len(self.units)
                self.node(item, child.result, inp, inner, prefix, taken)
                del self.ops[marks[0]:], self.values[marks[1]:], self.storage_bytes[marks[2]:], self.units[marks[3]:]
                continue
            out = self.node(item, child.result, inp, inner, prefix, taken)
            if item.name:
                scope[item.name] = out
            if not (isinstance(item, Leaf) and item.layer.keeps_flow):
                x = out     # a parameter or buffer is read by name later; the flow passes around it
        return x

    def name(self, prefix: str, name, taken: dict) -> str:
        return _join(prefix, _segment(name, taken)) if self.names else ""

    def namespace(self, node, prefix, taken):
        if not self.names:
            return "", taken
        named = node.name is not None or (isinstance(node, Seq) and node.kind.startswith("block:"))
        if named:
            return _join(prefix, _segment(node.name, taken)), {}
        return prefix, taken

    def enter(self, name: str, x: int):
        """Start a checkpointed unit, unless inside one already."""
        if self.unit is not None:
            return False
        self.units.append((name, x))
        self.unit = len(self.units) - 1
        return True

    def node(self, node, result, x: int, scopes, prefix: str, taken: dict) -> int:
        if isinstance(node, Leaf):
            return self.leaf(node, result, [x] + [self.lookup(n, scopes) for n in node.layer.refs()],
                             self.name(prefix, node.name, taken))
        ns, inner = self.namespace(node, prefix, taken)
        if isinstance(node, Seq):
            opened = node.kind.startswith("block:") and self.enter(ns or node.kind, x)
            out = self.seq(node, result, x, scopes, ns, inner)
            if opened:
                self.unit = None
            return out
        if isinstance(node, Repeat):
            i = 0
            for child in result.children:
                for _ in range(child.count):
                    body = node.body if node.bodies is None else node.bodies[i]
                    opened = self.enter(f"{ns or 'repeat'} iteration {i + 1}", x)
                    x = self.seq(body, child.result, x, scopes, ns, inner)
                    if opened:
                        self.unit = None
                    i += 1
            return x
        if isinstance(node, Branches):
            outs = [self.seq(b, c.result, x, scopes, ns, inner)
                    for b, c in zip(node.branches, result.children)]
            join = node.join
            return self.leaf(join, result.children[-1].result, outs, self.name(ns, join.name, inner))
        raise TypeError(node)  # pragma: no cover

    def leaf(self, node: Leaf, r, inputs: list, name: str) -> int:
        if len(self.ops) >= MAX_OPS:
            raise MemoryError_(f"the model runs more than {MAX_OPS:,} layers; calc's memory walk "
                               "takes at most that many")
        layer = r.layer
        shapes = tuple(r.inputs) if r.inputs else (r.input_shape,)
        vals = [self.values[v] for v in inputs]
        # Does the layer hold a trainable parameter (its facts' "params": the weights it uses,
        # shared or not)? A result's own params say so without making its facts again (see
        # calc.facts), except for a tied layer, whose shared weight is counted at the other.
        own = bool(node.trainable) and (r.params > 0 or (r.tied_to is not None and (r.facts or {}).get("params", 0) > 0))
        # A parameter or buffer item does not read the flow around it: its tensor requires a
        # gradient only if it is a trainable parameter.
        grads = (False,) * len(vals) if getattr(layer, "keeps_flow", False) else tuple(v.grad for v in vals)
        op = Op(layer, tuple(tuple(s) for s in shapes), tuple(r.output_shape), self.a.batch, self.size,
                grads, own, tuple(v.contiguous for v in vals), dict(node.hints),
                self.device, self.attention, tuple(self.storage_bytes[v.storage] == 0 for v in vals),
                tuple(v.permuted for v in vals))
        if self.inference and layer.type_name in _IDENTITY_AT_INFERENCE:
            eff = Effect(output="view", contiguous=vals[0].contiguous)
        else:
            try:
                eff = effect(op)
            except MemoryError_ as err:
                err.locate(path=node.origin, file=self.a.model.source_name,
                           line=self.a.model.line_of(node.origin))
                raise
        if eff.output in ("view", "inplace"):
            storage = vals[0].storage
        elif eff.output == "held":
            storage = self.storage(0)    # a parameter or buffer: not an activation, never counted
        else:
            storage = self.storage(op.b(op.out))
        contiguous, permuted = eff.contiguous, not eff.contiguous
        if eff.output == "inplace":
            contiguous, permuted = vals[0].contiguous, vals[0].permuted
        elif eff.output == "view" and layer.type_name in SAME_ORDER_VIEWS:
            permuted = vals[0].permuted
        elif eff.output == "view" and layer.type_name not in ("to_tokens", "to_image"):
            permuted = False
        elif eff.output == "new" and layer.type_name in LAYOUT_KEEPING and vals:
            contiguous, permuted = not vals[0].permuted, vals[0].permuted
        elif eff.output == "held":
            permuted = False
        out = self.value(storage, op.grad, contiguous)
        self.values[out].permuted = permuted
        if not self.inference and layer.type_name in _IDENTITY_AT_INFERENCE and storage != vals[0].storage:
            self.alias[storage] = vals[0].storage
            if not vals[0].contiguous or (self.storage_bytes[storage] == 0) != (self.storage_bytes[vals[0].storage] == 0):
                self.inference_exact = False
        # (in a training walk too: analyze's memory section reads the peak from that one)
        makes = reads = ()
        if layer.type_name == "attention" and getattr(layer, "rel_bias", False):
            if layer.rel_buckets:   # the (1, h, L, S) bias, handed to the stack's later layers
                self.bias = self.storage(layer.heads * op.ins[0][0] * op.ins[-1][0] * op.size)
                makes = (self.bias,)
            elif getattr(self, "bias", None) is not None:
                reads = (self.bias,)
        self.ops.append(_Op(name, layer.type_name, tuple(inputs), out, eff, self.unit, op, makes, reads))
        return out

    # -- what an operation keeps
    def kept(self, o: _Op, drop: bool):
        """(storage, bytes) of each tensor ``o`` keeps."""
        for entry in o.effect.saved + (o.effect.selective if drop else ()):
            if entry[0] == "new":
                if drop and entry[1] in o.effect.drop:
                    continue
                yield ("new", id(o), entry[1]), entry[2]
            else:
                v = o.output if entry[0] == "out" else o.inputs[entry[1]]
                s = self.values[v].storage
                yield s, self.storage_bytes[s]


def _check(analysis, dtype, checkpointing, attention, device):
    if not isinstance(analysis, Analysis):
        from ..errors import ArgumentTypeError
        raise ArgumentTypeError(f"expected an Analysis (from calc.analyze), got {type(analysis).__name__}")
    for what, value, known in (("dtype", dtype, tuple(DTYPE_BYTES)), ("checkpointing", checkpointing, CHECKPOINTING),
                               ("attention", attention, ATTENTION), ("device", device, DEVICES)):
        if value not in known:
            raise SpecError(f"unknown {what} {value!r}; known: {', '.join(known)}")


def saved_activations(analysis: Analysis, *, dtype: str = "fp32", checkpointing: str = "none",
                      attention: str = "eager", device: str = "cuda") -> Saved:
    """The bytes autograd keeps for backward after one training forward pass of the analysis's
    batch, every tensor in ``dtype`` (int64 indices and bool masks excepted). ``device`` matters
    for dropout only: CUDA keeps a bool mask, the CPU a mask of the input's dtype."""
    _check(analysis, dtype, checkpointing, attention, device)
    w = _Walk(analysis, DTYPE_BYTES[dtype], device, attention, inference=False)
    w.run()
    return _saved(w, dtype, checkpointing, attention, device)


def _saved(w: _Walk, dtype: str, checkpointing: str, attention: str, device: str) -> Saved:
    analysis = w.a
    notes = []
    drop = checkpointing == "selective"
    seen: set = set()
    rows = []
    unit_saved: dict = {}
    for o in w.ops:
        own = 0
        for key, nbytes in w.kept(o, drop):
            if checkpointing == "full" and o.unit is not None:
                unit_saved.setdefault(o.unit, {})[key] = nbytes
                continue
            if key not in seen:
                seen.add(key)
                own += nbytes
        rows.append(SavedRow(o.name, o.kind, own))
    if checkpointing == "full":
        if not w.units:
            notes.append("no blocks or repeats: nothing to checkpoint")
        for name, x in w.units:
            s = w.values[x].storage
            key = s
            nbytes = w.storage_bytes[s] if key not in seen else 0
            seen.add(key)
            rows.append(SavedRow(name, "checkpoint input", nbytes))
        if unit_saved:
            # During backward one unit at a time is recomputed; its tensors not kept anyway.
            # The recompute makes every tensor of the unit afresh: what it keeps of its own
            # making counts again (even a tensor that is another unit's held input, such as its
            # output kept by an in-place ReLU); what it reads from before the unit (its input) is
            # the same storage, held already.
            made_in = {}
            for o in w.ops:
                made_in.setdefault(w.values[o.output].storage, o.unit)
            extra = {u: sum(b for k, b in d.items()
                            if (k not in seen if isinstance(k, int) and made_in.get(k) != u else True))
                     for u, d in unit_saved.items()}
            worst = max(extra, key=lambda u: (extra[u], -u))
            rows.append(SavedRow(w.units[worst][0], "checkpoint recompute", extra[worst]))
    if any(o.kind == "attention" and o.op.layer.rope for o in w.ops):
        notes.append("rotary embeddings: the rotated Q and K are counted as the projections they "
                     "replace; the cos/sin tables are not counted")
    total = sum(r.bytes for r in rows)
    return Saved(total, tuple(rows), dtype, analysis.batch, checkpointing, attention, device, tuple(notes))


def _inside(w: _Walk, o: _Op, i: int, live: int, last: dict, born: dict, storage) -> int:
    """Bytes live while layer ``o`` (the i-th) runs: ``live`` (every storage alive at i, its inputs
    and its output included) plus its intermediates; with ``steps``, played in order, the inputs
    whose last reader it is freed where it reads them for the last time."""
    eff = o.effect
    if not eff.steps:
        return live + eff.work
    out_s = storage(o.output)
    own = w.storage_bytes[out_s] if born.get(out_s) == i else 0
    dying: dict = {}                         # storage -> bytes, inputs no later layer reads
    of = [storage(v) for v in o.inputs] + list(o.reads)   # a read storage: input len(inputs) …
    for s in of:
        if last.get(s) == i and s != out_s and s not in dying:
            dying[s] = w.storage_bytes[s]
    # a storage the layer makes besides its output is counted where its step makes it
    base = live - own - sum(dying.values()) - sum(w.storage_bytes[s] for s in o.makes)
    cur = peak = sum(dying.values())
    made: dict = {}
    finals = {}                              # storage -> index of the step that reads it last
    for j, step in enumerate(eff.steps):
        if step[0] == "last":
            finals[of[step[1]]] = j
    for j, step in enumerate(eff.steps):
        if step[0] == "make":
            made[step[1]] = made.get(step[1], 0) + step[2]
            cur += step[2]
        elif step[0] == "free":
            cur -= made.pop(step[1])
        elif step[0] == "last":
            s = of[step[1]]
            if finals.get(s) == j:
                cur -= dying.pop(s, 0)
        else:                                # the output
            cur += own
        peak = max(peak, cur)
    return base + peak


def inference_peak(analysis: Analysis, *, dtype: str = "fp32", attention: str = "eager",
                   device: str = "cuda") -> Peak:
    """The most activation bytes live at once in one inference forward pass (no autograd) of the
    analysis's batch, with the layer where it occurs; the input batch counts while it is read.
    ``device`` matters for the normalisations' statistics only (fp32 on CUDA for a half input)."""
    _check(analysis, dtype, "none", attention, device)
    w = _Walk(analysis, DTYPE_BYTES[dtype], device, attention, inference=True)
    w.run()
    return _peak(w, dtype, attention)


def _peak(w: _Walk, dtype: str, attention: str) -> Peak:
    """The inference peak from a walk: an inference walk, or a training walk whose
    ``inference_exact`` holds, read with dropout and stochastic depth as views (``alias``)."""
    analysis = w.a
    alias = {} if w.inference else w.alias
    values = w.values

    def storage(v: int) -> int:
        s = values[v].storage
        while s in alias:
            s = alias[s]
        return s

    n = len(w.ops)
    born = {storage(v): -1 for v in w.inputs}
    last: dict = {}
    for i, o in enumerate(w.ops):
        s = storage(o.output)
        born.setdefault(s, i)
        last[s] = max(last.get(s, i), i)
        for t in o.makes:
            born.setdefault(t, i)
            last[t] = max(last.get(t, i), i)
        # a parameter or buffer item reads nothing of the flow it stands in (only its batch size)
        read = () if getattr(o.op.layer, "keeps_flow", False) else o.inputs
        for t in (*(storage(v) for v in read), *o.reads):
            last[t] = max(last.get(t, -1), i)
    last[storage(w.output)] = n        # the result outlives the pass
    # live(i) = Σ bytes of storages with born ≤ i ≤ last, by a difference array
    delta = [0] * (n + 2)
    for s, b in born.items():
        end = last.get(s, b)
        start = max(b, 0)
        if end < start:
            continue
        delta[start] += w.storage_bytes[s]
        delta[min(end, n) + 1] -= w.storage_bytes[s]
    rows = []
    live = 0
    for i, o in enumerate(w.ops):
        live += delta[i]
        # at inference dropout and stochastic depth hold nothing inside (the identity)
        if alias and o.kind in _IDENTITY_AT_INFERENCE:
            rows.append(PeakRow(o.name, o.kind, live))
        else:
            rows.append(PeakRow(o.name, o.kind, _inside(w, o, i, live, last, born, storage)))
    if not rows:
        b = w.storage_bytes[storage(w.input)]
        return Peak(b, "input", (), dtype, analysis.batch, attention)
    best = max(range(n), key=lambda i: (rows[i].bytes, -i))
    notes = ("the intermediates inside a layer (Effect.work) follow calc's oracle's eager code; "
             "a framework's fused kernels hold fewer",)
    return Peak(rows[best].bytes, rows[best].name, tuple(rows), dtype, analysis.batch, attention, notes)


def training_and_inference(analysis: Analysis, *, dtype: str = "fp32",
                           attention: str = "eager") -> tuple[int, int | None]:
    """(bytes :func:`saved_activations` gives with no checkpointing on CUDA, bytes
    :func:`inference_peak` gives) from one walk of the model, the training one: the two walks
    differ only where dropout and stochastic depth are views at inference. The peak is None where
    that difference reaches further (a non-contiguous input of a dropout), for the caller to walk
    again; an error is the one :func:`saved_activations` raises."""
    _check(analysis, dtype, "none", attention, "cuda")
    w = _Walk(analysis, DTYPE_BYTES[dtype], "cuda", attention, inference=False, names=False)
    w.run()
    saved = _saved(w, dtype, "none", attention, "cuda").bytes
    return saved, (_peak(w, dtype, attention).bytes if w.inference_exact else None)
