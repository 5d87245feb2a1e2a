"""What PyTorch's autograd keeps for backward, per layer type: one rule per type.

This is knowledge of PyTorch's implementation (its ``derivatives.yaml`` and the modules calc's
oracle runs), kept apart from the layer classes as calc.conventions keeps tool knowledge. A rule
sees one execution of a layer (:class:`Op`) and says (:class:`Effect`):

* ``saved``: the tensors the layer's backward keeps, each ``("in", k)`` (its k-th input),
  ``("out",)`` (its output) or ``("new", label, bytes)`` (a tensor made inside the layer);
  parameters and buffers are never listed (they are not activations);
* ``output``: ``"new"`` (a fresh storage), ``"view"`` (the output shares its first input's
  storage: flatten, identity, a split), ``"inplace"`` (the input overwritten) or ``"held"`` (a
  parameter or buffer the model holds: not an activation, so a layer keeping it keeps nothing
  counted);
* ``contiguous``: whether the output is contiguous (a reshape of a non-contiguous tensor copies);
* ``work``: bytes of the intermediates the layer holds while it runs at inference (eager
  attention's scores), beside its inputs and output;
* ``drop``: labels of the saved tensors that selective recomputation does not keep.

Autograd records nothing for an operation none of whose inputs requires a gradient: a layer whose
inputs need no gradient and which has no trainable parameter saves nothing (``Op.grad``).
A layer type without a rule is an error naming it, never a silent zero.
"""
from __future__ import annotations

from dataclasses import replace
from math import prod

from .rules import (BOOL_BYTES, IN, INDEX_BYTES, MADE, NOTHING, OUT, RULES, Effect, MemoryError_, Op,  # noqa: F401
                    effect, free, last, make, rule)


# ---------------------------------------------------------------------------- weighted layers

@rule("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
def _conv(op):
    # convolution_backward needs the input (for the weight's gradient) and the weight. With
    # padding "same" and an odd total padding d·(K − 1) along some dimension, PyTorch pads the
    # input by the extra 1 at the end explicitly (constant_pad_nd) and convolves that copy, which
    # is then what is kept.
    layer = op.layer
    if layer.padding == "same" and not layer.type_name.startswith("conv_transpose"):
        odd = [(d * (k - 1)) % 2 for k, d in zip(layer.kernel, layer.dilation)]
        if any(odd):
            c, spatial = op.ins[0][0], op.ins[0][1:]
            padded = op.batch * c * prod(n + e for n, e in zip(spatial, odd)) * op.size
            # at inference x is read by the padding only, then the padded copy by the convolution
            return Effect((("new", "padded input", padded),), work=padded,
                          steps=(make("padded input", padded), last(0), MADE, free("padded input")))
    return Effect((IN,))


@rule("linear")
def _linear(op):
    # F.linear saves its input, the matrix multiplied (addmm's mat1). A contiguous input is
    # flattened to (N·…, in) as a view; a non-contiguous one of rank ≥ 3 (batched) is copied
    # first, and the copy is what is saved. The oracle's `contiguous: false` hint hands the layer
    # a transposed copy of its input. A frozen weight needs no gradient: then mm keeps only the
    # weight (a parameter), and nothing of the input is kept (checked by the oracle); the order
    # of its operations at inference is the same.
    eff = _linear_forward(op)
    return eff if op.own_grad else replace(eff, saved=())


def _linear_forward(op):
    if op.hints.get("contiguous") is False:
        return Effect((("new", "input copy", op.b(op.ins[0])),), work=op.b(op.ins[0]))
    # One sample laid out in another order (a transposed view) is a strided matrix mm takes as
    # it is: no copy.
    one_permuted = op.batch == 1 and bool(op.permuted) and op.permuted[0]
    if not op.contiguous[0] and len(op.ins[0]) >= 2 and not one_permuted:
        # At inference: the copy, then the product from it (matmul); with a bias, added after
        # the product (a new tensor), not fused as addmm does for a contiguous input.
        x = op.b(op.ins[0])
        tail = ((make("product", op.b(op.out)), free("input copy"), MADE, free("product"))
                if getattr(op.layer, "bias", False) else (MADE, free("input copy")))
        return Effect((("new", "input copy", x),), work=x, steps=(make("input copy", x), last(0)) + tail)
    if one_permuted and getattr(op.layer, "bias", False):   # matmul on the view, then the bias added
        return Effect((IN,), steps=(make("product", op.b(op.out)), last(0), MADE, free("product")))
    return Effect((IN,))


@rule("embedding")
def _embedding(op):
    # embedding_backward needs the int64 token ids (the input itself).
    return Effect((IN,) if op.own_grad else ())


@rule("pos_embedding")
def _pos(op):
    # weight[arange(L)]: the index op keeps its int64 positions (L of them, once per batch).
    # At inference: the positions, the L rows gathered from the table (once per batch), then
    # x + rows (as GPT-2's wpe(position_ids) added to the token embeddings).
    length = op.ins[0][0]
    rows = op.b(op.ins[0]) // op.batch
    steps = (make("positions", length * INDEX_BYTES), make("rows", rows), free("positions"), MADE,
             free("rows"), last(0))
    return Effect((("new", "positions", length * INDEX_BYTES),) if op.own_grad else (), steps=steps)


@rule("type_embedding", "class_token", "concat", "pad", "roll", "channel_shuffle", "token_mean",
      "global_avgpool", "upsample")
def _nothing(op):
    # Gradients that need only shapes: additions, concatenation, copies, means, interpolation.
    return NOTHING


@rule("layer_scale", "prelu")
def _scaled(op):
    # x·γ: the weight's gradient needs x (a frozen γ: nothing of x is kept, only γ itself);
    # PReLU's input gradient needs x's sign too, so it keeps x either way.
    if op.layer.type_name == "layer_scale" and not op.own_grad:
        return NOTHING
    return Effect((IN,))


# ---------------------------------------------------------------------------- element-wise

_SAVES_OUTPUT = {"relu", "sigmoid", "tanh", "softmax"}
# In place, ReLU, leaky ReLU and ELU keep their result (the overwritten input), from which their
# gradient follows; the others' gradient needs the input, which autograd clones before it is
# overwritten (hardtanh_, silu_, hardswish_, hardsigmoid_ are recorded as clone + op).
_INPLACE_CLONES = {"relu6", "silu", "hardswish", "hardsigmoid"}


@rule("relu", "sigmoid", "tanh", "softmax", "relu6", "leaky_relu", "elu", "gelu", "silu",
      "hardswish", "hardsigmoid", "softplus")
def _activation(op):
    if not any(op.in_grad):
        return NOTHING
    if getattr(op.layer, "inplace", False):
        if op.layer.type_name in _INPLACE_CLONES:
            return Effect((("new", "input copy", op.b(op.ins[0])),), output="inplace")
        return Effect((OUT,), output="inplace")
    # softmax is one kernel (aten._softmax) writing its output only: nothing else at inference
    return Effect((OUT,) if op.layer.type_name in _SAVES_OUTPUT else (IN,))


@rule("scale")
def _const_scale(op):
    # x · c for a Python number c: mul's gradient is grad · c, which keeps no tensor.
    return NOTHING


@rule("exp")
def _exp(op):
    # exp's gradient is grad · exp(x): it keeps its result.
    return Effect((OUT,) if any(op.in_grad) else ())


@rule("clamp")
def _clamp(op):
    # clamp's gradient passes where min ≤ x ≤ max: it keeps its input.
    return Effect((IN,) if any(op.in_grad) else ())


@rule("identity")
def _identity(op):
    return Effect(output="view", contiguous=op.contiguous[0])


@rule("dropout")
def _dropout(op):
    # p = 0 returns the input itself. Otherwise the output is input·mask/(1−p): on CUDA
    # native_dropout keeps a bool mask (1 byte per element); on CPU the mask is a tensor of the
    # input's dtype multiplied in.
    if op.layer.p == 0:
        return Effect(output="view", contiguous=op.contiguous[0])
    if not any(op.in_grad):
        return NOTHING
    per = BOOL_BYTES if op.device == "cuda" else op.size
    return Effect((("new", "mask", op.n(op.ins[0]) * per),))


@rule("stochastic_depth")
def _drop_path(op):
    # torchvision's stochastic_depth in training: x · noise, noise of shape (N, 1, …) ("row") or
    # (1, …) ("batch"); the product keeps the noise.
    if op.layer.p == 0:
        return Effect(output="view", contiguous=op.contiguous[0])
    if not any(op.in_grad):
        return NOTHING
    rows = op.batch if op.layer.mode == "row" else 1
    return Effect((("new", "noise", rows * op.size),))


# ---------------------------------------------------------------------------- normalisation

@rule("batchnorm1d", "batchnorm2d", "batchnorm3d")
def _batchnorm(op):
    # native_batch_norm (training) keeps its input and the batch's mean and 1/std per channel.
    c = op.ins[0][0]
    # At inference with running statistics nothing more; without (track_running_stats: false)
    # the batch's statistics are computed and returned beside the output, as in training.
    steps = () if getattr(op.layer, "track_running_stats", True) else (
        MADE, make("statistics", 2 * c * _stat(op)), free("statistics"), last(0))
    return Effect((IN, ("new", "mean", c * _stat(op)), ("new", "invstd", c * _stat(op))), steps=steps)


def _stat(op) -> int:
    """Bytes of one batch/layer-norm statistic: the input's dtype on the CPU (checked by the
    oracle); on CUDA fp32 for a half-precision input (cuDNN's and PyTorch's CUDA kernels keep
    their statistics in the accumulation type; from PyTorch's sources, not checked here)."""
    return max(op.size, 4) if op.device == "cuda" else op.size


def _rows(op, dims: int) -> int:
    shape = op.ins[0]
    return op.batch * prod(shape[:len(shape) - dims])


@rule("layernorm")
def _layernorm(op):
    # native_layer_norm keeps its input and a mean and 1/std per normalised row. The channels
    # form (LayerNorm2d) normalises the moved-dim view: one row per position.
    layer = op.layer
    rows = op.n(op.ins[0]) // op.ins[0][0] if layer.channels else _rows(op, layer.normalized)
    # The channels form passes a moved-dim view (not contiguous); autograd keeps that view, whose
    # storage is the input's, and the output moved back is not contiguous either, unless it has
    # one position per channel or one channel (PyTorch ignores the strides of sizes 1).
    # At inference native_layer_norm still returns the mean and 1/std beside its output.
    stats = 2 * rows * _stat(op)
    return Effect((IN, ("new", "mean", rows * _stat(op)), ("new", "rstd", rows * _stat(op))),
                  contiguous=not layer.channels or prod(op.ins[0][1:]) == 1 or op.ins[0][0] == 1, steps=(MADE, make("statistics", stats), free("statistics"), last(0)))


@rule("groupnorm")
def _groupnorm(op):
    # at::group_norm hands native_group_norm input.contiguous(): a non-contiguous input (a split
    # view) is copied, and the copy is what is kept.
    g = op.layer.groups
    x = IN if op.contiguous[0] else ("new", "input copy", op.b(op.ins[0]))
    # at inference native_group_norm still returns a mean and 1/std per (sample, group)
    copy = () if op.contiguous[0] else (make("input copy", op.b(op.ins[0])), last(0))
    steps = copy + (MADE, make("statistics", 2 * op.batch * g * op.size), free("statistics"),
                    free("input copy") if copy else last(0))
    return Effect((x, ("new", "mean", op.batch * g * op.size), ("new", "rstd", op.batch * g * op.size)),
                  steps=steps)


@rule("rmsnorm")
def _rmsnorm(op):
    # nn.RMSNorm as composite operations: x·rsqrt(mean(x²) + ε)·γ. pow keeps x, rsqrt its result
    # (one per row), and the product with γ keeps the normalised x for γ's gradient. A half-
    # precision x is first upcast to fp32 (PyTorch's rms_norm computes in the op-math type), so
    # the fp32 copy, rsqrt and the normalised x are 4 bytes an element, and the result is cast back.
    rows = _rows(op, op.layer.normalized)
    up = op.size < 4
    s = 4 if up else op.size
    x, x32 = op.b(op.ins[0]), op.n(op.ins[0]) * s
    saved = []
    if any(op.in_grad):
        saved += [("new", "fp32 input", x32) if up else IN, ("new", "rsqrt", rows * s)]
    if op.layer.affine and op.own_grad:
        saved.append(("new", "normalised", x32))
    # At inference, in order: (the fp32 copy,) x², its mean per row (+ ε in place), rsqrt,
    # x·rsqrt (the output without γ), ·γ, (the cast back).
    src = "fp32 input" if up else None
    steps = ((make(src, x32), last(0)) if up else ()) + (
        make("squares", x32), make("mean", rows * s), free("squares"), make("rsqrt", rows * s), free("mean"))
    done = (free(src),) if up else (last(0),)
    if op.layer.affine:
        steps += (make("normalised", x32), free("rsqrt")) + done
        steps += ((make("scaled", x32), free("normalised"), MADE, free("scaled")) if up else
                  (MADE, free("normalised")))
    elif up:
        steps += (make("normalised", x32), free("rsqrt")) + done + (MADE, free("normalised"))
    else:
        steps += (MADE, free("rsqrt")) + done
    return Effect(tuple(saved), work=x, steps=steps)


@rule("local_response_norm")
def _lrn(op):
    # F.local_response_norm: x·x (keeps x), padded along channels by size − 1, average-pooled
    # (keeps the padded squares), ·α + k (the sum kept by pow), ^β (kept by the division), x / that.
    c, rest = op.ins[0][0], prod(op.ins[0][1:])
    padded = op.batch * (c + op.layer.size - 1) * rest * op.size
    x = op.b(op.ins[0])
    # At inference, in order: x², padded, average-pooled, ·α, + k, ^β, then x / that; each
    # freed once the next is made.
    steps = (make("squares", x), make("padded", padded), free("squares"), make("pooled", x), free("padded"),
             make("scaled", x), free("pooled"), make("shifted", x), free("scaled"), make("denominator", x),
             free("shifted"), MADE, free("denominator"), last(0))
    return Effect((IN, ("new", "padded squares", padded), ("new", "k + α·mean", x), ("new", "denominator", x)),
                  work=padded + 2 * x, steps=steps)


# ---------------------------------------------------------------------------- pooling

@rule("maxpool1d", "maxpool2d", "maxpool3d", "adaptive_maxpool1d", "adaptive_maxpool2d",
      "adaptive_maxpool3d")
def _maxpool(op):
    # max_pool*_with_indices keeps its input and the int64 index of each maximum.
    return Effect((IN, ("new", "indices", op.n(op.out) * INDEX_BYTES)), work=op.n(op.out) * INDEX_BYTES)


@rule("avgpool1d", "avgpool2d", "avgpool3d", "adaptive_avgpool1d", "adaptive_avgpool2d",
      "adaptive_avgpool3d")
def _avgpool(op):
    # avg_pool*d and _adaptive_avg_pool*d keep their input (their backward takes it). An adaptive
    # pool to a single value per channel is computed as a mean, which keeps nothing.
    if op.layer.type_name.startswith("adaptive") and prod(op.out[1:]) == 1:
        return NOTHING
    return Effect((IN,))


@rule("global_maxpool")
def _global_max(op):
    # amax keeps its input and its result (to find where the maximum was).
    return Effect((IN, OUT))


# ---------------------------------------------------------------------------- shape moves

def _view_or_copy(op):
    """A reshape: a view of a contiguous input, a copy of another."""
    if op.contiguous[0]:
        return Effect(output="view")
    return NOTHING


@rule("flatten", "reshape")
def _reshape(op):
    return _view_or_copy(op)


def ordered(sizes, order) -> bool:
    """Whether a contiguous tensor of ``sizes`` with its dimensions moved to ``order`` is still
    contiguous: its dimensions larger than 1 keep their relative order."""
    kept = [d for d in order if sizes[d] != 1]
    return kept == sorted(kept)


@rule("permute")
def _permute(op):
    # permute(...).contiguous(): a copy, unless the permuted tensor is contiguous already
    # (contiguous() then returns the tensor itself: a view).
    rank = len(op.ins[0])
    order = [0] + [d % rank + 1 for d in op.layer.dims]
    if op.contiguous[0] and ordered((op.batch, *op.ins[0]), order):
        return Effect(output="view")
    return NOTHING


def _prefix_one(op, d: int) -> bool:
    """A slice along per-sample dimension ``d`` of a contiguous tensor is contiguous when every
    dimension before it (the batch included) has size 1."""
    return op.contiguous[0] and op.batch * prod(op.ins[0][:d]) == 1


@rule("channel_split")
def _split(op):
    # chunk/split are views; one part that is the whole dimension is the tensor itself
    d = op.layer.dim % len(op.ins[0])
    whole = op.out[d] == op.ins[0][d] and op.contiguous[0]
    return Effect(output="view", contiguous=whole or _prefix_one(op, d))


@rule("select_token")
def _select(op):
    # x[:, index]: a view, contiguous when N = 1 or L = 1
    (length, *_), n = op.ins[0], op.batch
    return Effect(output="view", contiguous=op.contiguous[0] and (n == 1 or length == 1))


@rule("to_tokens")
def _to_tokens(op):
    # x.flatten(2).transpose(1, 2): a view, not contiguous unless C or the positions are 1
    c, positions = op.ins[0][0], prod(op.ins[0][1:])
    return Effect(output="view", contiguous=op.contiguous[0] and (c == 1 or positions == 1))


@rule("to_image")
def _to_image(op):
    # x.transpose(1, 2).reshape(N, C, *size): splitting the positions into a grid is always a
    # view; contiguous when the transpose is (it undoes a transposed view, or L or C is 1).
    length, c = op.ins[0]
    return Effect(output="view", contiguous=not op.contiguous[0] or length == 1 or c == 1)


# ---------------------------------------------------------------------------- joins

@rule("add")
def _add(op):
    # torch.stack(inputs).sum(0): the stack (k inputs) exists while it runs; sum keeps nothing.
    # At inference the inputs are read once, by the stack: those no later layer reads are freed
    # before the sum makes the output.
    stack = sum(op.b(s) for s in op.ins)
    if getattr(op.layer, "broadcast", False):
        return Effect(work=stack, steps=_reduced(op))
    steps = (make("stack", stack), *(last(k) for k in range(len(op.ins))), MADE, free("stack"))
    return Effect(work=stack, steps=steps)


def _reduced(op) -> tuple:
    """At inference, ((a ∘ b) ∘ c) …: each partial result (the broadcast shape of the inputs so far)
    made from the previous one and the next input, then the previous freed; the last is the output."""
    def shape_of(shapes):
        rank = max(len(s) for s in shapes)
        padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
        return tuple(max(d) for d in zip(*padded))
    steps = ()
    for k in range(1, len(op.ins)):
        if k == len(op.ins) - 1:
            steps += (MADE,)
        else:
            steps += (make(f"partial {k}", op.b(shape_of(op.ins[:k + 1]))),)
        steps += ((free(f"partial {k - 1}"),) if k > 1 else (last(0),)) + (last(k),)
    return steps


@rule("mul")
def _mul(op):
    # ((a·b)·c)…: each product keeps the other operand of every factor that requires a gradient.
    saved = []
    left_grad = op.in_grad[0]
    left = ("in", 0)
    for k in range(1, len(op.ins)):
        if left_grad:
            saved.append(("in", k))
        if op.in_grad[k]:
            saved.append(left)
        left_grad = left_grad or op.in_grad[k]
        if k < len(op.ins) - 1:
            left = ("new", f"product {k}", op.b(op.out))
    return Effect(tuple(saved), steps=_reduced(op))


from . import saved_attention, saved_moe, saved_recurrent, saved_tensors  # noqa: E402,F401  (register their rules)
