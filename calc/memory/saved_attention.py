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

from .rules import BOOL_BYTES, IN, INDEX_BYTES, STAT_BYTES, Effect, MemoryError_, rule


def _dims(op):
    layer = op.layer
    (length, dim), kv_shape = op.ins[0][-2:], op.ins[-1][-2:]
    s = kv_shape[0]
    h = layer.heads
    g = layer.kv_heads or h
    d = layer.head_dim or dim // h
    return length, s, h, g, d


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
    # Options whose saved tensors the oracle has not measured: refused by name, never guessed.
    other = [what for what, on in (
        ("QK-norm", layer.qk_norm), ("a fused kernel with a relative position bias", fused and layer.rel_bias),
        ("a fused kernel with sinks", fused and layer.sinks)) if on]
    if other:
        raise MemoryError_(f"calc has no rule for what PyTorch saves for backward in attention with "
                           f"{' and '.join(other)}, so it cannot count its activation memory")
    length, s, h, g, d = _dims(op)
    # Groups of tokens (…, L, D): each group attends as a sequence of the batch (the oracle folds
    # them into it), so everything below counts N·∏(leading dims) sequences.
    groups = prod(op.ins[0][:-2])
    n, b = op.batch * groups, op.size
    if groups > 1 and not op.contiguous[0]:
        raise MemoryError_("calc has no rule for what PyTorch saves for backward in attention over groups of "
                           "tokens laid out non-contiguously, so it cannot count its activation memory")
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
        # merged heads are kept; the products of Q, K and V still are.
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
        return Effect(inputs + qkv + (lse, out), work=projections + n * length * h * d * b)
    # Eager: matmul folds (N, h, L, d) to (N·h, L, d). Q, a transposing view of its projection,
    # folds as a view when N = 1, L = 1 or h = 1 (the kept storage is then the projection's, all
    # of Q, K and V when packed), else as a copy. K and V, repeated to h heads, are fresh
    # contiguous tensors (repeat_interleave copies even once). softmax keeps its output,
    # masked_fill its mask. With L = 1, folding N and h is a view only if the projection's row is
    # Q alone: a packed row of 3·h·d puts the samples 3·h·d apart, not h·d (checked by the oracle).
    packed = layer.packed and not cross
    if n == 1 or h == 1 or (length == 1 and not packed):
        q = ("new", "q, k, v", projections if layer.packed and not cross else n * length * h * d * b)
    else:
        q = ("new", "q", n * h * length * d * b)
    # With sinks, softmax runs over S + 1 logits per row and the product reads a view of its
    # output without the sink's column: the whole output is kept.
    probs = ("new", "probabilities", n * h * length * (s + int(layer.sinks)) * b)
    # T5's bucket table (the layer that holds it) keeps its int64 bucket index, one per
    # query/key pair, for the table's gradient; adding the bias keeps nothing.
    buckets = (("new", "bucket index", length * s * INDEX_BYTES),) if layer.rel_buckets and op.own_grad else ()
    saved = inputs + (q, ("new", "k", n * h * s * d * b), ("new", "v", n * h * s * d * b), probs) + mask
    saved += (merged,) if merged else ()
    saved += buckets
    # At inference the peak inside is at the softmax: the projections, the repeated K and V, the
    # (masked) scores and the probabilities.
    work = projections + 2 * n * h * s * d * b + 2 * n * h * length * s * b
    return Effect(saved, work=work, drop=frozenset({"probabilities", "causal mask"}))
