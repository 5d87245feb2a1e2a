"""What attention saves for backward, eager and fused (see :mod:`calc.memory.saved`).

In the formulas: N samples, L query tokens, S key/value tokens, h query heads, g key/value heads,
d features per head, b bytes per element.

Eager attention is the one calc's oracle runs (as Hugging Face's "eager" attention does): Q, K,
V projected, heads split by a transposing view, K and V repeated to h heads, scores = Q·Kᵀ·1/√d,
a causal mask filled in, softmax, probabilities·V, heads merged, output projection.
Fused attention (``attention="sdpa"``) is ``F.scaled_dot_product_attention`` with a flash or
memory-efficient kernel: no score matrix is kept, only the output and a log-sum-exp per query row.
"""
from __future__ import annotations

from math import prod

from .rules import BOOL_BYTES, IN, INDEX_BYTES, MADE, STAT_BYTES, Effect, MemoryError_, free, last, make, rule


def _dims(op):
    layer = op.layer
    (length, dim), kv_shape = op.ins[0][-2:], op.ins[-1][-2:]
    s = kv_shape[0]
    h = layer.heads
    g = layer.kv_heads or h
    d = layer.head_dim or dim // h
    return length, s, h, g, d


def _sequences(op) -> int:
    """Groups of tokens (…, L, D): each group attends as a sequence of the batch (the oracle folds
    them into it), so the rules count N·∏(leading dims) sequences."""
    return op.batch * prod(op.ins[0][:-2])


@rule("attention")
def _attention(op):
    layer = op.layer
    if layer.context is not None:
        raise MemoryError_("attention over a KV cache (context) runs at inference only; calc counts "
                           "no saved activations for it (the cache is counted by calc memory)")
    if layer.cached_kv:
        raise MemoryError_("cross attention over cached keys and values (cached_kv) is a decode step, which "
                           "runs at inference only: no training pass computes it, so nothing is saved for "
                           "backward; calc memory counts the cache itself")
    fused = (layer.impl or op.attention) == "sdpa"
    length, s, h, g, d = _dims(op)
    # Options whose saved tensors the oracle has not measured: refused by name, never guessed.
    # (A window no shorter than the keys masks nothing beyond the causal mask.)
    other = [what for what, on in (
        ("QK-norm", layer.qk_norm), ("a fused kernel with sinks", fused and layer.sinks),
        ("a fused kernel with a relative position bias", fused and layer.rel_bias),
        ("a fused kernel with a window shorter than the keys", fused and layer.window is not None and layer.window < s),
        ("groups of tokens laid out non-contiguously", len(op.ins[0]) > 2 and not op.contiguous[0])) if on]
    if other:
        raise MemoryError_(f"calc has no rule for what PyTorch saves for backward in attention with "
                           f"{' and '.join(other)}, so it cannot count its activation memory")
    n, b = _sequences(op), op.size
    cross = len(op.ins) > 1
    # Each projection (an nn.Linear) keeps its input; a non-contiguous input (a to_tokens view)
    # of more than one sample is copied by each projection that reads it (matmul folds (N, L, D)
    # into rows: a view for N = 1, where the matrix's strides pass to mm as they are), and the
    # copies are kept instead.
    reads = ((0, 1), (1, 2)) if cross else ((0, 1 if layer.packed else 3),)
    inputs = tuple(x for k, count in reads for x in (
        (("in", k),) if op.contiguous[k] or n == 1 else
        tuple(("new", f"input {k} copy {i + 1}", op.b(op.ins[k])) for i in range(count))))
    merged = ("new", "merged heads", n * length * h * d * b)          # proj's input: a copy
    if not op.own_grad:
        # Frozen projections (trainable: false) on an input that needs a gradient: a linear layer
        # keeps its input only for its weight's gradient, so neither x (or its copies) nor the
        # merged heads are kept; the products of Q, K and V still are (checked by the oracle).
        inputs, merged = (), None
    mask = (("new", "causal mask", length * s * BOOL_BYTES),) if layer.causal else ()
    projections = n * (length * h * d + 2 * s * g * d) * b
    if fused:
        # The kernel keeps its Q, K, V (views of the projections: all of a packed projection),
        # its output and one fp32 log-sum-exp per query row. K and V of fewer heads are repeated
        # to h heads first (fresh tensors, kept instead). The output, (N, h, L, d), is laid out
        # as (N, L, h, d) by the kernel, so merging the heads for the output projection is a view.
        out = ("new", "attention output", n * length * h * d * b)
        lse = ("new", "log-sum-exp", n * h * length * STAT_BYTES)
        if g != h:
            kv = (("new", "k", n * h * s * d * b), ("new", "v", n * h * s * d * b))
            q = ("new", "q, k, v" if layer.packed and not cross else "q",
                 projections if layer.packed and not cross else n * length * h * d * b)
            qkv = (q,) + kv
        elif layer.packed and not cross:
            qkv = (("new", "q, k, v", projections),)
        else:
            qkv = (("new", "q", n * length * h * d * b), ("new", "k", n * s * g * d * b),
                   ("new", "v", n * s * g * d * b))
        return Effect(inputs + qkv + (lse, out), work=projections + n * length * h * d * b,
                      steps=_fused_steps(op))
    # Eager: matmul folds (N, h, L, d) to (N·h, L, d). Q, a transposing view of its projection,
    # folds as a view when N = 1, L = 1 or h = 1 (the kept storage is then the projection's, all
    # of Q, K and V when packed), else as a copy. K and V, repeated to h heads, are fresh
    # contiguous tensors (repeat_interleave copies even once). softmax keeps its output,
    # masked_fill its mask. With L = 1, folding N and h is a view only if the projection's row is
    # Q alone: a packed row of 3·h·d puts the samples 3·h·d apart, not h·d (checked by the oracle).
    packed = layer.packed and not cross
    projected = ("new", "q, k, v", projections if packed else n * length * h * d * b)
    fold_copy = not (n == 1 or h == 1 or (length == 1 and not packed))
    q = ("new", "q", n * h * length * d * b) if fold_copy else projected
    # With sinks, softmax runs over S + 1 logits per row and the product reads a view of its
    # output without the sink's column: the whole output is kept.
    probs = ("new", "probabilities", n * h * length * (s + int(layer.sinks)) * b)
    saved = inputs + (q, ("new", "k", n * h * s * d * b), ("new", "v", n * h * s * d * b), probs) + mask
    saved += (merged,) if merged else ()
    # At inference the peak inside is at the softmax: the projections, the repeated K and V, the
    # (masked) scores and the probabilities.
    work = projections + 2 * n * h * s * d * b + 2 * n * h * length * s * b
    if layer.rel_bias:
        # T5 (scores unscaled: the scaling keeps nothing anyway): the stack's first layer looks up
        # its bucket table with an int64 index of L × S relative positions, which the embedding's
        # backward keeps; the (1, h, L, S) bias is added to the scores in place (keeps nothing)
        # and reused by the stack's later layers. At inference the bias is counted while each
        # layer of the stack runs (it lives across the stack: the layers between are not charged).
        if layer.rel_buckets and op.own_grad:
            saved += (("new", "relative positions", length * s * INDEX_BYTES),)
        work += h * length * s * b + (length * s * INDEX_BYTES if layer.rel_buckets else 0)
    # Selective recomputation checkpoints the core from Q, K, V to the context: it holds Q as it
    # enters (the projection, all of Q, K, V when packed), not the copy the product folds it
    # into, which is recomputed with the probabilities, the mask and T5's position index.
    drop = {"probabilities", "causal mask", "relative positions"} | ({"q"} if fold_copy else set())
    return Effect(saved, work=work, drop=frozenset(drop), steps=_eager_steps(op),
                  selective=(projected,) if fold_copy else ())


def _projections(op, h, g, d, packed):
    """The inference steps of the Q, K, V projections: each nn.Linear reads its input (a copy of
    a non-contiguous one of more than one sample, freed after the product); an input is read for
    the last time by the last projection that reads it."""
    length, s, *_ = _dims(op)
    n, b = _sequences(op), op.size
    cross = len(op.ins) > 1

    def linear(k, label, nbytes):
        copy = not op.contiguous[k] and n > 1
        return ((make("input copy", op.b(op.ins[k])),) if copy else ()) + (make(label, nbytes),) + \
            ((free("input copy"),) if copy else ())
    if packed:
        return linear(0, "qkv", n * length * (h + 2 * g) * d * b) + (last(0),)
    return (linear(0, "q", n * length * h * d * b) + ((last(0),) if cross else ())
            + linear(len(op.ins) - 1, "k", n * s * g * d * b) + linear(len(op.ins) - 1, "v", n * s * g * d * b)
            + (last(1 if cross else 0),))


def _fused_steps(op):
    """Fused attention at inference: the projections; K and V repeated to h heads when g < h (the
    projections then freed); the kernel's output and its fp32 log-sum-exp per query row (freed at
    once, with Q, K and V); merging the heads is a view; the output projection."""
    length, s, h, g, d = _dims(op)
    n, b = _sequences(op), op.size
    packed = op.layer.packed and len(op.ins) == 1
    steps = _projections(op, h, g, d, packed)
    kv = ("k", "v")
    if g != h:
        steps += (make("k repeated", n * h * s * d * b),) + (() if packed else (free("k"),))
        steps += (make("v repeated", n * h * s * d * b),) + (() if packed else (free("v"),))
        kv = ("k repeated", "v repeated")
    steps += (make("attention output", n * length * h * d * b), make("log-sum-exp", n * h * length * STAT_BYTES),
              free("log-sum-exp"))
    steps += (free("qkv"),) if packed else (free("q"),)
    steps += tuple(free(k) for k in kv if not (packed and k in ("k", "v")))
    return steps + (MADE, free("attention output"))


def _eager_steps(op):
    """Eager attention at inference, operation by operation as calc's oracle runs it (each tensor
    freed after its last use): projections; K and V repeated to h heads (copies even when g = h);
    Q folded for the batched product (a copy unless N, h or L allows a view); the scores, scaled,
    T5's bias added in place, the causal mask filled in; softmax; probabilities·V; the heads merged
    (a copy unless h or L is 1); the output projection."""
    layer = op.layer
    length, s, h, g, d = _dims(op)
    n, b = _sequences(op), op.size
    packed = layer.packed and len(op.ins) == 1
    q = "qkv" if packed else "q"
    steps = _projections(op, h, g, d, packed)
    steps += (make("k repeated", n * h * s * d * b),) + (() if packed else (free("k"),))
    steps += (make("v repeated", n * h * s * d * b),) + (() if packed else (free("v"),))
    fold_view = n == 1 or h == 1 or (length == 1 and not packed)
    if not fold_view:
        steps += (make("q folded", n * h * length * d * b), free(q))
    scores = n * h * length * s * b
    steps += (make("scores", scores), free(q if fold_view else "q folded"), free("k repeated"))
    current = "scores"
    if layer.scaled:
        steps += (make("scaled", scores), free(current))
        current = "scaled"
    if layer.rel_bias:
        # T5: the stack's first layer makes the (1, h, L, S) bias from its table (positions, their
        # buckets, the lookup); it lives on through the stack (a storage of calc's walk, read by
        # the later layers, each adding it to its scores in place)
        if layer.rel_buckets:
            steps += (make("key positions", s * INDEX_BYTES), make("query positions", length * INDEX_BYTES),
                      make("relative", length * s * INDEX_BYTES), free("key positions"), free("query positions"),
                      make("buckets", length * s * INDEX_BYTES), free("relative"), make("bias", h * length * s * b),
                      free("buckets"))
        else:
            steps += (last(len(op.ins)),)
    if layer.causal:
        steps += (make("ones", length * s * BOOL_BYTES), make("mask", length * s * BOOL_BYTES), free("ones"))
        if layer.window is not None:
            # keys more than the window behind, past the sink tokens, masked too: positions i, j
            # (int64), i − j, its comparison, j's, their conjunction, the union with the mask
            ls = length * s
            steps += (make("i", length * INDEX_BYTES), make("j", s * INDEX_BYTES), make("i - j", ls * INDEX_BYTES),
                      free("i"), make("behind", ls * BOOL_BYTES), free("i - j"), make("past sinks", s * BOOL_BYTES),
                      free("j"), make("outside", ls * BOOL_BYTES), free("behind"), free("past sinks"),
                      make("window mask", ls * BOOL_BYTES), free("mask"), free("outside"))
        steps += (make("masked", scores), free(current), free("window mask" if layer.window is not None else "mask"))
        current = "masked"
    if layer.sinks:
        # the sink logits joined to each row (S + 1), softmax over them; the product reads a view
        # without the sink's column
        wide = n * h * length * (s + 1) * b
        steps += (make("with sinks", wide), free(current))
        current, scores = "with sinks", wide
    steps += (make("probabilities", scores), free(current))
    steps += (make("context", n * h * length * d * b), free("probabilities"), free("v repeated"))
    merged = h > 1 and length > 1
    if merged:
        steps += (make("merged", n * length * h * d * b), free("context"))
    return steps + (MADE, free("merged" if merged else "context"))
