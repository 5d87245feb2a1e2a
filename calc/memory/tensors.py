"""The shapes of each layer's parameter tensors, as PyTorch holds them. Optimizers whose state
depends on a tensor's shape (Adafactor factors a matrix's second moment into row and column
statistics) or on its size (8-bit Adam keeps tensors under 4,096 elements in fp32 and quantises
the rest in blocks) need the split; the counts alone do not give it.

Each split is checked against the layer's parameter count: a layer calc cannot split is an
error naming it, never a guess."""
from __future__ import annotations

from math import prod

from ..errors import SpecError
from ..inference import leaf_rows


def _conv(r):
    layer = r.layer
    k = layer.kernel if isinstance(layer.kernel, tuple) else (layer.kernel,) * layer.dims
    c_in = r.input_shape[0]
    if r.layer.kind == "conv_transpose":      # nn.ConvTransposeNd keeps (C_in, C_out/g, *k)
        w = (c_in, layer.out // layer.groups, *k)
    else:                               # nn.ConvNd keeps (C_out, C_in/g, *k)
        w = (layer.out, c_in // layer.groups, *k)
    return [w] + ([(layer.out,)] if r.bias else [])


def _recurrent(r):
    layer, out = r.layer, []
    g, h, dirs = layer.gates, layer.hidden, 2 if layer.bidirectional else 1
    for i in range(layer.num_layers):
        f = r.input_shape[-1] if i == 0 else h * dirs
        for _ in range(dirs):           # weight_ih_l{i}, weight_hh_l{i}, bias_ih, bias_hh (per direction)
            out += [(g * h, f), (g * h, h)] + ([(g * h,), (g * h,)] if layer.bias else [])
    return out


def _matrices_and_vectors(r):
    from ..quant import _matrices
    mats = [m for m in _matrices(r)]
    rest = r.params - sum(a * b for a, b in mats)
    layer = r.layer
    vectors: list[tuple[int, ...]] = []
    if r.kind == "attention":
        f = r.facts
        if getattr(layer, "qk_norm", False):
            vectors += [(f["head_dim"],), (f["head_dim"],)]
        if f.get("qkv_bias"):
            vectors += [(f["heads"] * f["head_dim"],), (f["kv_heads"] * f["head_dim"],),
                        (f["kv_heads"] * f["head_dim"],)]
        if f.get("has_out_bias"):
            vectors += [(f["out_dim"],)]
    elif r.kind == "mla":
        qr, c, dr = layer.q_lora_rank, layer.kv_lora_rank, layer.qk_rope_head_dim
        vectors += [(qr,)] if qr else []          # q_a_layernorm γ
        vectors += [(c,)]                         # kv_a_layernorm γ
        if r.bias:                                # q_a (or q_proj), kv_a, o_proj biases
            D, h = r.input_shape[-1], layer.heads
            vectors += [(qr if qr else h * (layer.qk_nope_head_dim + dr),), (c + dr,), (D,)]
    elif r.kind == "moe":
        D, E = r.input_shape[-1], layer.experts
        if rest >= E * D:
            mats.append((E, D))         # the router: nn.Linear(D, E, bias=False)
    return mats + vectors, rest


def tensor_shapes(r) -> list[tuple[int, ...]]:
    """The parameter tensors of one leaf result (trainable and frozen alike), in elements."""
    t, layer = r.layer.kind, r.layer    # the family (r.kind is the layer type)
    if r.params == 0:
        return []
    if r.kind in ("attention", "mla", "moe"):
        shapes, _ = _matrices_and_vectors(r)
    elif t == "linear":
        shapes = ([(r.output_shape[-1], r.input_shape[-1])] if r.weights else []) + \
                 ([(r.output_shape[-1],)] if r.bias else [])
    elif t in ("conv", "conv_transpose"):
        shapes = _conv(r)
    elif t == "recurrent":
        shapes = _recurrent(r)
    elif t == "embedding":
        shapes = [(layer.vocab, layer.dim)] if r.weights else []
    elif t == "added_embedding":
        shapes = [(r.weights // r.output_shape[-1], r.output_shape[-1])]
    elif t == "class_token":
        shapes = [(1, r.weights // r.output_shape[-1], r.output_shape[-1])]
    elif t == "layernorm" or t == "rmsnorm":
        n = getattr(layer, "normalized", 1)
        shape = (r.input_shape[0],) if getattr(layer, "channels", False) else tuple(r.input_shape[-n:])
        shapes = [shape] * ((r.weights > 0) + (r.bias > 0))
    else:                               # batch norm, group norm, PReLU, layer scale: vectors
        shapes = [(r.weights,)] * (r.weights > 0) + [(r.bias,)] * (r.bias > 0)
    if sum(prod(s) for s in shapes) != r.params:
        raise SpecError(f"calc cannot split the {r.params:,} parameters of a '{layer.type_name}' layer into "
                        "the tensors PyTorch holds, which this optimizer's state depends on")
    return shapes


def model_tensors(a) -> list[tuple[tuple[int, ...], int, bool]]:
    """(shape, count, trainable) of every parameter tensor of the model; a folded run of
    identical layers gives its tensors once with its count. A layer with frozen parameters
    counts as frozen whole (calc marks whole layers frozen)."""
    out = []
    for _, leaf, k in leaf_rows(a):
        trainable = leaf.frozen == 0
        for s in tensor_shapes(leaf):
            out.append((s, k, trainable))
    return out
