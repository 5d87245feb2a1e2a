"""The PyTorch oracle: turns a built calc model into a ``torch.nn.Module`` and measures it.

PyTorch is an optional extra (``pip install '.[torch]'``); nothing else in calc imports this
module, and importing it without PyTorch raises :class:`calc.errors.OracleError`.

Independence is the point. The module is built from the spec's layer arguments and the shapes
of the *actual tensors* that reach each layer: every PyTorch layer is constructed lazily, on its
first call, from the tensor it receives. calc's own shape inference is never consulted, so the
parameters PyTorch allocates, the output shapes it produces and the FLOPs that
``torch.utils.flop_counter.FlopCounterMode`` counts are independent measurements that calc's
numbers can be checked against.

calc shapes are per sample; the module takes a batched tensor ``(N, *shape)``. Where a spec
argument names a dimension (``dim``, ``start``, ``dims``), per-sample dimension ``d ≥ 0`` is
batched dimension ``d + 1`` and a negative one counts from the end as before; a dimension that
would reach the batch dimension is refused, and so is a per-sample rank that PyTorch would read
as an *unbatched* input (a spec has no batch dimension to give).

Builders form ONE registry keyed by layer type (:data:`BUILDERS`, filled by :func:`builds`);
``builder(layer, shape)`` gets the calc layer and the per-sample input shape (a list of shapes
for joins) and returns a module. A layer type without a builder is an :class:`OracleError`
naming it.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Callable

from .errors import OracleError

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Failed to initialize NumPy" when numpy is absent
        import torch
        from torch import nn
        from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # pragma: no cover - exercised in a venv without torch
    raise OracleError("the PyTorch oracle needs PyTorch, which is not installed; "
                      "install it with: pip install 'calc[torch]' (or pip install torch)") from None

from .graph import Branches, Leaf, Model, Repeat, Seq  # noqa: E402
from .layers import Join, Layer  # noqa: E402

# The oracle allocates every layer of the model: a model that expands to more layer instances
# than this (repeats counted in full) is refused rather than built.
MAX_ORACLE_LAYERS = 100_000


class TorchRejected(OracleError):
    """PyTorch (or the translation of per-sample arguments to batched ones) refuses the model."""

    def __init__(self, message: str, *, layer: str | None = None, type_name: str | None = None):
        super().__init__(message)
        self.layer = layer
        self.type_name = type_name


# ---------------------------------------------------------------------------- registry

Builder = Callable[[Layer, object], "nn.Module"]
BUILDERS: dict[str, Builder] = {}


def builds(*type_names: str):
    """Register one builder for several layer types (a type registered twice is a bug)."""
    def deco(fn):
        for name in type_names:
            if name in BUILDERS:
                raise RuntimeError(f"oracle builder for {name!r} registered twice")
            BUILDERS[name] = fn
        return fn
    return deco


def builder_for(type_name: str) -> Builder:
    try:
        return BUILDERS[type_name]
    except KeyError:
        raise OracleError(f"the PyTorch oracle has no builder for layer type '{type_name}'; "
                          "add one to calc.oracle.BUILDERS") from None


class _Refused(Exception):
    """The oracle's own translation of a per-sample argument to a batched one fails."""


def _rank(shape, rank: int, what: str):
    if len(shape) != rank:
        raise _Refused(f"{what} takes a per-sample rank-{rank} input, got rank {len(shape)} "
                       "(PyTorch would read it as unbatched)")


def _dim(d: int, rank: int) -> int:
    """Per-sample dimension -> batched dimension (never the batch dimension)."""
    if d >= 0:
        return d + 1
    if d < -rank:
        raise _Refused(f"dimension {d} reaches the batch dimension of a rank-{rank} sample")
    return d


# ---------------------------------------------------------------------------- small modules

class Fn(nn.Module):
    """A parameter-free function of the batched tensor (reshape, permute, mean ...)."""

    def __init__(self, fn, label: str):
        super().__init__()
        self.fn = fn
        self.label = label

    def forward(self, x):
        return self.fn(x)

    def extra_repr(self):
        return self.label


class Scale(nn.Module):
    """Per-channel learned scale along one per-sample dimension (layer_scale)."""

    def __init__(self, size: int, trailing: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(size))
        self.trailing = trailing

    def forward(self, x):
        return x * self.gamma.view(-1, *([1] * self.trailing))


class ChannelsLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a channels-first map (as torchvision's LayerNorm2d)."""

    def forward(self, x):
        last = x.dim() - 1
        return super().forward(x.movedim(1, last)).movedim(last, 1)


class DropPath(nn.Module):
    """Stochastic depth: the identity in evaluation (torchvision is not a dependency)."""

    def __init__(self, p: float, mode: str):
        super().__init__()
        if not 0.0 <= p <= 1.0 or mode not in ("row", "batch"):
            raise ValueError(f"bad stochastic depth p={p} mode={mode}")
        self.p, self.mode = p, mode

    def forward(self, x):
        return x


class JoinOp(nn.Module):
    """Combines a list of tensors: add (equal shapes: torch.stack refuses others), mul
    (broadcast per sample: lower-rank samples are aligned after the batch dimension), concat."""

    def __init__(self, kind: str, dim: int = 0):
        super().__init__()
        self.kind, self.dim = kind, dim

    def forward(self, xs):
        if self.kind == "add":
            return torch.stack(list(xs)).sum(0)
        if self.kind == "mul":
            rank = max(x.dim() for x in xs)
            xs = [x.reshape(x.shape[0], *([1] * (rank - x.dim())), *x.shape[1:]) for x in xs]
            return functools.reduce(lambda a, b: a * b, xs)
        return torch.cat(list(xs), _dim(self.dim, xs[0].dim() - 1))

    def extra_repr(self):
        return self.kind


# ---------------------------------------------------------------------------- builders

def _conv_in(layer, shape, dims):
    _rank(shape, dims + 1, layer.type_name)
    return layer.in_ if layer.in_ is not None else shape[0]


def _conv(layer, shape):
    dims = layer.dims
    cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
    return cls(_conv_in(layer, shape, dims), layer.out, layer.kernel, stride=layer.stride,
               padding=layer.padding, dilation=layer.dilation, groups=layer.groups, bias=layer.bias)


def _conv_transpose(layer, shape):
    dims = layer.dims
    cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[dims - 1]
    return cls(_conv_in(layer, shape, dims), layer.out, layer.kernel, stride=layer.stride,
               padding=layer.padding, output_padding=layer.output_padding, groups=layer.groups,
               bias=layer.bias, dilation=layer.dilation)


builds("conv1d", "conv2d", "conv3d")(_conv)
builds("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")(_conv_transpose)


@builds("linear")
def _linear(layer, shape):
    if not shape:
        raise _Refused("linear needs a per-sample rank of at least 1")
    return nn.Linear(layer.in_ if layer.in_ is not None else shape[-1], layer.out, bias=layer.bias)


@builds("maxpool1d", "maxpool2d", "maxpool3d")
def _maxpool(layer, shape):
    _rank(shape, layer.dims + 1, layer.type_name)
    cls = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[layer.dims - 1]
    return cls(layer.kernel, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
               ceil_mode=layer.ceil_mode)


@builds("avgpool1d", "avgpool2d", "avgpool3d")
def _avgpool(layer, shape):
    _rank(shape, layer.dims + 1, layer.type_name)
    cls = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[layer.dims - 1]
    return cls(layer.kernel, stride=layer.stride, padding=layer.padding, ceil_mode=layer.ceil_mode,
               count_include_pad=layer.count_include_pad)


@builds("adaptive_avgpool1d", "adaptive_avgpool2d", "adaptive_avgpool3d",
        "adaptive_maxpool1d", "adaptive_maxpool2d", "adaptive_maxpool3d")
def _adaptive(layer, shape):
    _rank(shape, layer.dims + 1, layer.type_name)
    avg = layer.type_name.startswith("adaptive_avg")
    cls = ((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d) if avg else
           (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d))[layer.dims - 1]
    # PyTorch's 1-d adaptive pools take no None ("keep this size"); it means the input size.
    size = (layer.size[0] or shape[1]) if layer.dims == 1 else tuple(layer.size)
    return cls(size)


@builds("global_avgpool", "global_maxpool")
def _global(layer, shape):
    if len(shape) < 2:
        raise _Refused("global pooling needs (C, spatial…)")
    dims = tuple(range(2, len(shape) + 1))
    keep = layer.keepdim
    if layer.type_name == "global_avgpool":
        return Fn(lambda x: x.mean(dim=dims, keepdim=keep), f"mean{dims}")
    return Fn(lambda x: x.amax(dim=dims, keepdim=keep), f"amax{dims}")


@builds("batchnorm1d", "batchnorm2d", "batchnorm3d")
def _batchnorm(layer, shape):
    if not shape:
        raise _Refused("batch norm needs channels")
    cls = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[layer.dims - 1]
    return cls(shape[0], eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
               track_running_stats=layer.track_running_stats)


@builds("layernorm")
def _layernorm(layer, shape):
    if layer.channels:
        if len(shape) < 2:
            raise _Refused("channels layer norm needs (C, spatial…)")
        return ChannelsLayerNorm(shape[0], eps=layer.eps, elementwise_affine=layer.affine,
                                 bias=layer.bias)
    if layer.normalized > len(shape):
        raise _Refused(f"cannot normalise {layer.normalized} dims of a rank-{len(shape)} sample")
    return nn.LayerNorm(tuple(shape[len(shape) - layer.normalized:]), eps=layer.eps,
                        elementwise_affine=layer.affine, bias=layer.bias)


@builds("groupnorm")
def _groupnorm(layer, shape):
    if not shape:
        raise _Refused("group norm needs channels")
    return nn.GroupNorm(layer.groups, shape[0], eps=layer.eps, affine=layer.affine)


@builds("local_response_norm")
def _lrn(layer, shape):
    return nn.LocalResponseNorm(layer.size, alpha=layer.alpha, beta=layer.beta, k=layer.k)


_SIMPLE = {"relu": nn.ReLU, "relu6": nn.ReLU6, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
           "silu": nn.SiLU, "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid,
           "identity": nn.Identity}


@builds(*_SIMPLE)
def _simple(layer, shape):
    return _SIMPLE[layer.type_name]()


@builds("leaky_relu")
def _leaky(layer, shape):
    return nn.LeakyReLU(layer.negative_slope)


@builds("elu")
def _elu(layer, shape):
    return nn.ELU(layer.alpha)


@builds("gelu")
def _gelu(layer, shape):
    return nn.GELU(approximate=layer.approximate)


@builds("prelu")
def _prelu(layer, shape):
    return nn.PReLU(layer.num_parameters)


@builds("softmax")
def _softmax(layer, shape):
    return nn.Softmax(_dim(layer.dim, len(shape)))


@builds("dropout")
def _dropout(layer, shape):
    return nn.Dropout(layer.p)


@builds("stochastic_depth")
def _drop_path(layer, shape):
    return DropPath(layer.p, layer.mode)


@builds("flatten")
def _flatten(layer, shape):
    if not shape:  # a scalar per sample flattens to one value, as calc defines it
        return Fn(lambda x: x.reshape(x.shape[0], 1), "to (N, 1)")
    return nn.Flatten(_dim(layer.start, len(shape)), _dim(layer.end, len(shape)))


@builds("reshape")
def _reshape(layer, shape):
    target = tuple(layer.shape)
    return Fn(lambda x: x.reshape(x.shape[0], *target), f"reshape{target}")


@builds("permute")
def _permute(layer, shape):
    order = (0, *(_dim(d, len(shape)) % (len(shape) + 1) for d in layer.dims))
    return Fn(lambda x: x.permute(*order), f"permute{order}")


@builds("channel_shuffle")
def _shuffle(layer, shape):
    return nn.ChannelShuffle(layer.groups)


@builds("channel_split")
def _split(layer, shape):
    d = _dim(layer.dim, len(shape))
    if (layer.parts is None) == (layer.sections is None):
        raise _Refused("give exactly one of parts and sections")
    if layer.parts is not None:
        return Fn(lambda x: torch.chunk(x, layer.parts, d)[layer.index]
                  if x.shape[d] % layer.parts == 0 else _raise(f"{x.shape[d]} not divisible into "
                                                               f"{layer.parts} equal parts"),
                  f"chunk{layer.parts}[{layer.index}]")
    sections = list(layer.sections)
    return Fn(lambda x: torch.split(x, sections, d)[layer.index], f"split{sections}[{layer.index}]")


def _raise(message):
    # torch.chunk makes unequal chunks where calc's `parts` means equal parts
    raise _Refused(message)


@builds("layer_scale")
def _layer_scale(layer, shape):
    d = _dim(layer.dim, len(shape)) % (len(shape) + 1)
    return Scale(shape[d - 1], len(shape) - d)


@builds("upsample")
def _upsample(layer, shape):
    interpolating = layer.mode != "nearest"
    return nn.Upsample(size=layer.size, scale_factor=layer.scale, mode=layer.mode,
                       align_corners=layer.align_corners if interpolating or layer.align_corners else None)


@builds("add", "mul", "concat")
def _join(layer, shapes):
    return JoinOp(layer.type_name, getattr(layer, "dim", 0))


# ---------------------------------------------------------------------------- the module tree

class LazyLeaf(nn.Module):
    """One calc leaf. Builds its PyTorch layer (child ``op``) on the first call, from the actual
    input; parameters are allocated uninitialised and zeroed, since only shapes matter."""

    def __init__(self, layer: Layer, name: str, trainable: bool):
        super().__init__()
        self.layer = layer
        self.calc_name = name
        self.trainable = trainable
        self.op = None

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
                t.zero_()
        op.eval()
        op.requires_grad_(self.trainable)
        self.op = op

    def forward(self, x):
        try:
            if self.op is None:
                self._materialize(x)
            out = self.op(x)
            if 0 in out.shape[1:]:
                # PyTorch returns an empty tensor where calc refuses a size of zero; calc's rule
                # is that every size is at least 1, so an empty output counts as a refusal.
                raise _Refused(f"the output {tuple(out.shape[1:])} is empty (a size of 0)")
            return out
        except OracleError:
            raise
        except _Refused as exc:
            raise TorchRejected(f"{self.calc_name} ({self.layer.type_name}): the oracle refuses "
                                f"{_shapes(x)}: {exc}", layer=self.calc_name,
                                type_name=self.layer.type_name) from None
        except Exception as exc:  # whatever PyTorch raises is its verdict on this input
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TorchRejected(f"{self.calc_name} ({self.layer.type_name}): PyTorch refuses "
                                f"{_shapes(x)}: {text}", layer=self.calc_name,
                                type_name=self.layer.type_name) from None


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
    """Items in order; ``from:`` and ``with:`` names resolve in this scope, then outer ones."""

    def __init__(self, entries):
        super().__init__()
        self.steps = []   # (child name, source, output name, is_join)
        for child_name, module, node in entries:
            self.add_module(child_name, module)
            is_join = isinstance(node, Leaf) and isinstance(node.layer, Join)
            self.steps.append((child_name, node.source, node.name, is_join,
                               node.layer.with_ if is_join else ()))

    def forward(self, x, scopes):
        scope: dict = {}
        inner = (scope, *scopes)
        for child_name, source, out_name, is_join, with_ in self.steps:
            inp = x if source is None else _lookup(source, inner)
            module = self._modules[child_name]
            if is_join:
                x = module([inp, *(_lookup(n, inner) for n in with_)])
            elif isinstance(module, LazyLeaf):
                x = module(inp)
            else:
                x = module(inp, inner)
            if out_name:
                scope[out_name] = x
        return x


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
    def __init__(self, branches, join_name: str, join: LazyLeaf):
        super().__init__()
        self.names = [name for name, _ in branches]
        for name, module in branches:
            self.add_module(name, module)
        self.join_name = join_name
        self.add_module(join_name, join)

    def forward(self, x, scopes):
        outs = [self._modules[name](x, scopes) for name in self.names]
        return self._modules[self.join_name](outs)


class OracleModel(SeqModule):
    """The whole model: ``forward(x)`` takes a batched tensor; the name ``input`` refers to it."""

    def __init__(self, entries, model: Model):
        super().__init__(entries)
        self.calc_model_name = model.name

    def forward(self, x):
        return super().forward(x, ({"input": x},))


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
        n = node.times * count_layers(node.body, memo)
    elif isinstance(node, Branches):
        n = sum(count_layers(b, memo) for b in node.branches) + 1
    else:  # pragma: no cover - the builder makes only these
        raise TypeError(node)
    memo[key] = n
    return n


def _children(items, prefix):
    """(torch child name, calc dotted name) per item; torch names must be unique among siblings."""
    used: set = set()
    out = []
    for i, item in enumerate(items):
        calc = item.name or str(i)
        torch_name = calc if calc not in used else f"{calc}__{i}"
        used.add(torch_name)
        out.append((torch_name, f"{prefix}.{calc}" if prefix else calc))
    return out


def _build_node(node, name: str):
    if isinstance(node, Leaf):
        return LazyLeaf(node.layer, name, node.trainable)
    if isinstance(node, Seq):
        return _build_seq(node, name)
    if isinstance(node, Repeat):
        return RepeatModule([_build_seq(node.body, f"{name}.{i}") for i in range(node.times)])
    if isinstance(node, Branches):
        labels = ("main", "shortcut") if node.kind == "residual" else None
        branches = []
        for i, b in enumerate(node.branches):
            label = labels[i] if labels else str(i)
            branches.append((label, _build_seq(b, f"{name}.{label}")))
        join = LazyLeaf(node.join.layer, f"{name}.{node.join.name}", True)
        return BranchesModule(branches, node.join.name, join)
    raise TypeError(node)  # pragma: no cover


def _build_seq(seq: Seq, prefix: str) -> SeqModule:
    entries = [(tname, _build_node(item, cname), item)
               for (tname, cname), item in zip(_children(seq.items, prefix), seq.items)]
    return SeqModule(entries)


def build_module(model: Model) -> OracleModel:
    """An unmaterialised PyTorch module for ``model``; its layers are built on the first call."""
    n = count_layers(model.root)
    if n > MAX_ORACLE_LAYERS:
        raise OracleError(f"the model expands to {n:,} layers; the oracle builds at most "
                          f"{MAX_ORACLE_LAYERS:,}")
    entries = [(tname, _build_node(item, cname), item)
               for (tname, cname), item in zip(_children(model.root.items, ""), model.root.items)]
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
    input_shape: tuple
    output_shape: tuple   # per sample
    params: int
    trainable_params: int
    buffers: int
    flops: int            # FlopCounterMode total (2 per MAC), whole batch
    leaves: tuple         # of MeasuredLeaf, in call order
    module: object = field(default=None, compare=False, repr=False)


def measure(model: Model, batch: int = 1, input_shape: tuple | None = None) -> Measured:
    """Build the module, run one batch of zeros through it under FlopCounterMode, and report
    parameters, buffers, each leaf's output shape and FLOPs. Raises :class:`TorchRejected`
    when PyTorch refuses the model."""
    shape = tuple(input_shape) if input_shape is not None else tuple(model.input_shape)
    module = build_module(model)
    records: list = []

    def hook(mod, inputs, output):
        records.append((mod, tuple(output.shape)))

    leaves = [m for m in module.modules() if isinstance(m, LazyLeaf)]
    handles = [m.register_forward_hook(hook) for m in leaves]
    root_name = type(module).__name__
    counter = FlopCounterMode(display=False)
    try:
        x = torch.zeros(batch, *shape)
        with warnings.catch_warnings(), torch.no_grad(), counter:
            warnings.simplefilter("ignore")
            out = module(x)
    except RuntimeError as exc:  # e.g. a tensor too large to allocate
        raise TorchRejected(f"PyTorch fails: {str(exc).strip().splitlines()[0]}") from None
    finally:
        for h in handles:
            h.remove()
    counts = counter.get_flop_counts()
    fqn = {m: n for n, m in module.named_modules()}
    measured_leaves = []
    for mod, out_shape in records:
        per_leaf = counts.get(f"{root_name}.{fqn[mod]}", {})
        measured_leaves.append(MeasuredLeaf(
            mod.calc_name, mod.layer.type_name, _per_sample(out_shape, batch, mod.calc_name),
            sum(p.numel() for p in mod.parameters()), int(sum(per_leaf.values()))))
    return Measured(
        torch_version=torch.__version__, batch=batch, input_shape=shape,
        output_shape=_per_sample(tuple(out.shape), batch, "output"),
        params=sum(p.numel() for p in module.parameters()),
        trainable_params=sum(p.numel() for p in module.parameters() if p.requires_grad),
        buffers=sum(b.numel() for b in module.buffers()),
        flops=int(counter.get_total_flops()), leaves=tuple(measured_leaves), module=module)


def _per_sample(shape: tuple, batch: int, where: str) -> tuple:
    if not shape or shape[0] != batch:
        raise OracleError(f"{where}: the batch dimension was lost (shape {shape}); an oracle bug")
    return tuple(shape[1:])


# ---------------------------------------------------------------------------- counting tools

def _thop(module, x, shape):
    from thop import profile
    macs, _ = profile(module, inputs=(x,), verbose=False)
    return int(macs)


def _ptflops(backend):
    def run(module, x, shape):
        from ptflops import get_model_complexity_info
        macs, _ = get_model_complexity_info(module, tuple(shape), as_strings=False, backend=backend,
                                            print_per_layer_stat=False, verbose=False)
        return int(macs)
    return run


def _fvcore(module, x, shape):
    from fvcore.nn import FlopCountAnalysis
    analysis = FlopCountAnalysis(module, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(analysis.total())


def _torchinfo(module, x, shape):
    from torchinfo import summary
    return int(summary(module, input_data=[x], verbose=0).total_mult_adds)


def _torch_counter(module, x, shape):
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(x)
    return int(counter.get_total_flops())


@dataclass(frozen=True)
class Tool:
    """A counting tool run on the oracle's module, to compare with calc's preset of that name.
    ``measure`` is the calc quantity the tool's figure corresponds to; ``batch_one`` marks a
    tool that always counts one sample."""

    package: str
    run: Callable
    measure: str = "macs"
    batch_one: bool = False


TOOLS: dict[str, Tool] = {
    "torch": Tool("torch", _torch_counter, measure="flops"),
    "thop": Tool("thop", _thop),
    "ptflops": Tool("ptflops", _ptflops("pytorch"), batch_one=True),
    "ptflops-aten": Tool("ptflops", _ptflops("aten"), batch_one=True),
    "fvcore": Tool("fvcore", _fvcore),
    "torchinfo": Tool("torchinfo", _torchinfo),
}


def tool_available(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(TOOLS[name].package) is not None


def run_tool(name: str, module, input_shape: tuple, batch: int) -> int:
    """The tool's figure for ``module`` on a batch of zeros (on a copy: some tools leave
    attributes or buffers on the modules they profile)."""
    import copy
    tool = TOOLS[name]
    shape = tuple(input_shape)
    x = torch.zeros(1 if tool.batch_one else batch, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tool.run(copy.deepcopy(module), x, shape)


__all__ = ["BUILDERS", "MAX_ORACLE_LAYERS", "Measured", "MeasuredLeaf", "OracleError", "TOOLS",
           "TorchRejected", "build_module", "builds", "count_layers", "measure", "run_tool",
           "tool_available", "prod"]
