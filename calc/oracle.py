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

from .analysis import name_segment  # noqa: E402
from .conventions import CONVENTIONS  # noqa: E402
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
    # Memory layout is no part of calc's model: the permuted tensor is made contiguous (PyTorch's
    # local_response_norm, for one, refuses some non-contiguous 5-d inputs). A linear layer's
    # `contiguous: false` hint gives it a non-contiguous input instead (see LazyLeaf).
    return Fn(lambda x: x.permute(*order).contiguous(), f"permute{order}")


@builds("pad")
def _pad(layer, shape):
    pad, mode, value = list(layer.pad), layer.mode, layer.value
    if mode == "constant":
        return Fn(lambda x: torch.nn.functional.pad(x, pad, mode, value), f"pad{pad}")
    # reflect, replicate and circular pad the last 1-3 dims of a batched (N, C, …) tensor
    return Fn(lambda x: torch.nn.functional.pad(x, pad, mode), f"pad{pad}, {mode}")


@builds("roll")
def _roll(layer, shape):
    dims = tuple(_dim(d, len(shape)) % (len(shape) + 1) for d in layer.dims)
    shifts = tuple(layer.shifts)
    return Fn(lambda x: torch.roll(x, shifts, dims), f"roll{shifts}, dims {dims}")


@builds("channel_shuffle")
def _shuffle(layer, shape):
    return nn.ChannelShuffle(layer.groups)


@builds("channel_split")
def _split(layer, shape):
    d = _dim(layer.dim, len(shape))
    if (layer.parts is None) == (layer.sections is None):
        raise _Refused("give exactly one of parts and sections")
    if layer.parts is not None:
        return Fn(lambda x: torch.chunk(x, layer.parts, d)[layer.index], f"chunk{layer.parts}[{layer.index}]")
    sections = list(layer.sections)
    return Fn(lambda x: torch.split(x, sections, d)[layer.index], f"split{sections}[{layer.index}]")


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


# ---------------------------------------------------------------------------- sequence layers
# A sequence is (L, *F) per sample, (N, L, *F) batched.

def _sequence(shape, what: str):
    if len(shape) < 2:
        raise _Refused(f"{what} takes a sequence (L, features…), got rank {len(shape)}")


class AddedTable(nn.Module):
    """A learned table added to the tokens: row i to token i (positions), or the row of the
    token's type, here type 0 for every token (type ids come with the input)."""

    def __init__(self, rows: int, features: tuple, positional: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(rows, *features))
        self.positional = positional

    def forward(self, x):
        if self.positional:   # a lookup of positions 0..L-1, as GPT-2's wpe(position_ids)
            return x + self.weight[torch.arange(x.shape[1])]
        return x + self.weight[0]


class ClassTokens(nn.Module):
    def __init__(self, count: int, features: tuple):
        super().__init__()
        self.tokens = nn.Parameter(torch.zeros(count, *features))

    def forward(self, x):
        return torch.cat([self.tokens.expand(x.shape[0], *self.tokens.shape), x], dim=1)


@builds("embedding")
def _embedding(layer, shape):
    return nn.Embedding(layer.vocab, layer.dim, padding_idx=layer.padding_idx)


@builds("pos_embedding", "type_embedding")
def _added(layer, shape):
    _sequence(shape, layer.type_name)
    positional = layer.type_name == "pos_embedding"
    return AddedTable(layer.max_len if positional else layer.types, tuple(shape[1:]), positional)


@builds("class_token")
def _class_token(layer, shape):
    _sequence(shape, "class_token")
    return ClassTokens(layer.count, tuple(shape[1:]))


@builds("to_tokens")
def _to_tokens(layer, shape):
    _sequence(shape, "to_tokens")
    return Fn(lambda x: x.flatten(2).transpose(1, 2), "(N, C, *S) → (N, ∏S, C)")


@builds("to_image")
def _to_image(layer, shape):
    if len(shape) != 2:
        raise _Refused(f"to_image takes tokens × channels (L, C), got rank {len(shape)}")
    n = shape[0]
    if layer.size is None:
        side = int(round(n ** 0.5))
        if side * side != n:
            raise _Refused(f"{n} tokens are not a square")
        size = (side, side)
    else:
        size = (layer.size,) if isinstance(layer.size, int) else tuple(layer.size)
    return Fn(lambda x: x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *size), f"to {size}")


@builds("select_token")
def _select_token(layer, shape):
    _sequence(shape, "select_token")
    index = layer.index
    return Fn(lambda x: x[:, index], f"token {index}")


@builds("token_mean")
def _token_mean(layer, shape):
    _sequence(shape, "token_mean")
    return Fn(lambda x: x.mean(dim=1), "mean over tokens")


@builds("rmsnorm")
def _rmsnorm(layer, shape):
    if layer.normalized > len(shape):
        raise _Refused(f"cannot normalise {layer.normalized} dims of a rank-{len(shape)} sample")
    return nn.RMSNorm(tuple(shape[len(shape) - layer.normalized:]), eps=layer.eps,
                      elementwise_affine=layer.affine)


class MultiHeadAttention(nn.Module):
    """Attention written with explicit matrix products, which FlopCounterMode counts (PyTorch's
    fused CPU kernels have no FLOP formula). K and V heads are shared by heads/kv_heads query
    heads; causal masking aligns row i with keys 0..i, as PyTorch's is_causal."""

    def __init__(self, dim, kv_dim, heads, kv_heads, head_dim, out, bias, out_bias, packed, causal):
        super().__init__()
        self.h, self.g, self.d, self.causal = heads, kv_heads, head_dim, causal
        self.packed = packed and dim == kv_dim
        if self.packed:
            self.qkv = nn.Linear(dim, (heads + 2 * kv_heads) * head_dim, bias=bias)
        else:
            self.q = nn.Linear(dim, heads * head_dim, bias=bias)
            self.k = nn.Linear(kv_dim, kv_heads * head_dim, bias=bias)
            self.v = nn.Linear(kv_dim, kv_heads * head_dim, bias=bias)
        self.proj = nn.Linear(heads * head_dim, out, bias=out_bias)

    def forward(self, xs):
        x, m = (xs[0], xs[-1]) if isinstance(xs, (list, tuple)) else (xs, xs)
        n, length, s_len = x.shape[0], x.shape[1], m.shape[1]
        h, g, d = self.h, self.g, self.d
        if self.packed:
            q, k, v = self.qkv(x).split([h * d, g * d, g * d], dim=-1)
        else:
            q, k, v = self.q(x), self.k(m), self.v(m)
        q = q.reshape(n, length, h, d).transpose(1, 2)
        k = k.reshape(n, s_len, g, d).transpose(1, 2).repeat_interleave(h // g, dim=1)
        v = v.reshape(n, s_len, g, d).transpose(1, 2).repeat_interleave(h // g, dim=1)
        scores = torch.matmul(q, k.transpose(-2, -1)) * d ** -0.5
        if self.causal:
            mask = torch.ones(length, s_len, dtype=torch.bool).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        y = torch.matmul(scores.softmax(-1), v)
        return self.proj(y.transpose(1, 2).reshape(n, length, h * d))


@builds("attention")
def _attention(layer, shapes):
    shapes = shapes if isinstance(shapes, list) else [shapes]   # self attention: one input
    q, m = shapes[0], shapes[-1]
    for s in (q, m):
        if len(s) != 2:
            raise _Refused(f"attention takes tokens × features (L, D), got rank {len(s)}")
    dim, kv_dim = q[1], m[1]
    heads, kv_heads = layer.heads, layer.kv_heads or layer.heads
    if heads % kv_heads:   # as the grouped-query layout requires
        raise _Refused(f"heads={heads} is not a multiple of kv_heads={kv_heads}")
    if layer.head_dim is None and dim % heads:   # as nn.MultiheadAttention asserts
        raise _Refused(f"embed_dim {dim} must be divisible by num_heads {heads}")
    head_dim = layer.head_dim or dim // heads
    out_bias = layer.bias if layer.out_bias is None else layer.out_bias
    return MultiHeadAttention(dim, kv_dim, heads, kv_heads, head_dim, layer.out or dim, layer.bias,
                              out_bias, layer.packed, layer.causal)


class Recurrent(nn.Module):
    """PyTorch's RNN/GRU/LSTM, batch first, returning the output sequence. FlopCounterMode has
    no formula for the CPU LSTM kernel, so the LSTM runs its own weights (PyTorch's layout)
    through the LSTM equations with F.linear, which it counts."""

    def __init__(self, kind, size, layer):
        super().__init__()
        cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind]
        extra = {"nonlinearity": layer.nonlinearity} if kind == "rnn" else {}
        self.rnn = cls(size, layer.hidden, num_layers=layer.num_layers, bias=layer.bias, batch_first=True,
                       bidirectional=layer.bidirectional, **extra)
        self.kind = kind

    def forward(self, x):
        if self.kind != "lstm":
            return self.rnn(x)[0]
        rnn = self.rnn
        if x.dim() != 3 or x.shape[2] != rnn.input_size:
            raise ValueError(f"LSTM: expected input (N, L, {rnn.input_size}), got {tuple(x.shape)}")
        dirs = 2 if rnn.bidirectional else 1
        for layer in range(rnn.num_layers):
            outs = []
            for direction in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                w_ih, w_hh = getattr(rnn, "weight_ih" + sfx), getattr(rnn, "weight_hh" + sfx)
                b_ih = getattr(rnn, "bias_ih" + sfx) if rnn.bias else None
                b_hh = getattr(rnn, "bias_hh" + sfx) if rnn.bias else None
                h = x.new_zeros(x.shape[0], rnn.hidden_size)
                c = x.new_zeros(x.shape[0], rnn.hidden_size)
                steps = range(x.shape[1] - 1, -1, -1) if direction else range(x.shape[1])
                seq = [None] * x.shape[1]
                for t in steps:
                    gates = torch.nn.functional.linear(x[:, t], w_ih, b_ih) + \
                        torch.nn.functional.linear(h, w_hh, b_hh)
                    i, f, g, o = gates.chunk(4, dim=1)
                    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
                    h = o.sigmoid() * c.tanh()
                    seq[t] = h
                outs.append(torch.stack(seq, dim=1))
            x = torch.cat(outs, dim=2)
        return x


@builds("rnn", "lstm", "gru")
def _recurrent(layer, shape):
    if len(shape) != 2:
        raise _Refused(f"{layer.type_name} takes time steps × features (L, I), got rank {len(shape)}")
    return Recurrent(layer.type_name, layer.in_ if layer.in_ is not None else shape[1], layer)


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
        op.eval()
        op.requires_grad_(self.trainable)
        if self.tie is not None:
            target = (self.named or {}).get(self.tie)
            if target is None or target.op is None or not hasattr(target.op, "weight"):
                raise _Refused(f"tie: no earlier layer named '{self.tie}' with a weight")
            if not hasattr(op, "weight"):
                raise _Refused(f"tie: {self.layer.type_name} has no weight to share")
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
                raise _Refused(f"the output {tuple(out.shape[1:])} is empty (a size of 0)")
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
        if self.node_name and self.named is not None:
            self.named[self.node_name] = self
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

    def __init__(self, entries):
        super().__init__()
        self.steps = []   # (child, source, output name, names read besides the flow)
        for i, (module, node) in enumerate(entries):
            self.add_module(str(i), module)
            refs = node.layer.refs() if isinstance(module, LazyLeaf) and module.many else None
            self.steps.append((str(i), node.source, node.name, refs, getattr(node, "runs", True)))
        self.idle_built: set = set()   # items that do not run at inference, built once

    def forward(self, x, scopes):
        scope: dict = {}
        inner = (scope, *scopes)
        for child, source, out_name, refs, runs in self.steps:
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
            x = self._step(module, inp, refs, inner)
            if out_name:
                scope[out_name] = x
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
    input is tokens); the name ``input`` refers to it."""

    def __init__(self, entries, model: Model):
        super().__init__(entries)
        self.calc_model_name = model.name
        self.tokens = getattr(model, "input_kind", "values") == "tokens"
        named: dict = {}
        for m in self.modules():
            if isinstance(m, LazyLeaf):
                m.named = named
        self._named = named

    def forward(self, x):
        self._named.clear()
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
    if isinstance(node, Seq):
        ns, inner = _namespace(node, prefix, taken)
        return _build_seq(node, ns, inner)
    if isinstance(node, Repeat):
        ns, inner = _namespace(node, prefix, taken)
        bodies = getattr(node, "bodies", None) or (node.body,) * node.times
        return RepeatModule([_build_seq(body, ns, inner) for body in bodies])
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
        x = torch.zeros(batch, *shape, dtype=torch.long if module.tokens else torch.float32)
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
        flops=int(counter.get_total_flops()), leaves=tuple(measured_leaves), module=module)


def _per_sample(shape: tuple, batch: int, where: str) -> tuple:
    if not shape or shape[0] != batch:
        raise OracleError(f"{where}: the batch dimension was lost (shape {shape}); an oracle bug")
    return tuple(shape[1:])


# ---------------------------------------------------------------------------- counting tools

@dataclass(frozen=True)
class Tool:
    """A counting tool run on the oracle's module, to compare with calc's preset of that name.
    ``measure`` is the calc quantity the tool's figure corresponds to; ``batch_one`` marks a
    tool that always counts one sample."""

    package: str
    run: Callable
    measure: str = "macs"
    batch_one: bool = False


# The oracle writes these layers for exact FLOP counting (explicit matrix products, LSTM
# equations), not as the PyTorch modules a tool preset describes (nn.MultiheadAttention, the
# fused LSTM): a tool run on them would measure a different module, so verify skips the presets.
NOT_AS_TOOLS_SEE = frozenset({"attention", "lstm"})

# How each tool is run lives in its preset's module (calc/conventions/tools/); torch's own
# counter first, as it needs no other package.
TOOLS: dict[str, Tool] = {
    name: Tool(conv.runner.package, conv.runner.run, conv.reports, conv.runner.batch_one)
    for name, conv in sorted(CONVENTIONS.items(), key=lambda item: item[0] != "torch")
    if conv.runner is not None}


def tool_available(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(TOOLS[name].package) is not None


def run_tool(name: str, module, input_shape: tuple, batch: int) -> int:
    """The tool's figure for ``module`` on a batch of zeros (on a copy: some tools leave
    attributes or buffers on the modules they profile)."""
    import copy
    tool = TOOLS[name]
    shape = tuple(input_shape)
    x = torch.zeros(1 if tool.batch_one else batch, *shape,
                    dtype=torch.long if getattr(module, "tokens", False) else torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tool.run(copy.deepcopy(module), x, shape)


__all__ = ["BUILDERS", "MAX_ORACLE_LAYERS", "Measured", "MeasuredLeaf", "OracleError", "TOOLS",
           "TorchRejected", "build_module", "builds", "count_layers", "measure", "run_tool",
           "tool_available"]
