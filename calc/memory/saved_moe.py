"""What a mixture of experts and multi-head latent attention save for backward (see
:mod:`calc.memory.saved`), as calc's oracle computes them (calc/oracle/moe.py: Hugging Face's
eager Mixtral and DeepSeek-V3 code, written out).

A mixture of experts, on R = N·∏(leading dims) token rows of D features, E experts, top k, each
expert an MLP of width H: the router (a linear layer) keeps the rows; softmax or sigmoid its
scores (R·E); the gather of the chosen experts' scores its int64 index (R·k). Then per expert,
for the n rows routed to it (n summed over the experts is R·k, whichever experts are chosen):
``torch.where`` gives the rows and slots as two views of one int64 (n, 2) storage, kept by the
indexing ops and index_add_; the gathered rows (n·D, the expert's first linear layers keep them);
the MLP's hidden tensors (below); the expert's output (n·D) and its routing weight (n), kept by
their product; the product (n·D), kept by index_add_ (whose derivative formula takes the source).

In the formulas, b is the bytes per element; "own" is 1 when the layer's parameters train.
"""
from __future__ import annotations

from math import ceil, prod

from .rules import BOOL_BYTES, IN, INDEX_BYTES, NOTHING, Effect, MemoryError_, rule

_KEEPS_INPUT = {"silu", "gelu"}   # their gradient needs the input; ReLU's needs its output


def mlp_hidden(gated: bool, activation: str, own: bool) -> int:
    """Hidden tensors of H values per row that an MLP keeps.

    Gated, down(act(g)·u): the activation keeps g (SiLU, GELU) or its output a (ReLU); the product
    keeps a and u; down keeps the product when its weight trains. Plain, down(act(u)): the
    activation keeps u or a; down keeps a when its weight trains (ReLU's a is the same tensor)."""
    keeps_input = activation in _KEEPS_INPUT
    if gated:
        return int(keeps_input) + 2 + int(own)
    return 1 + int(own and keeps_input)


def _rows_copy(op):
    """The rows (R, D) the layer reads: a view of a contiguous input, or of one sample's; else a
    copy (reshape cannot fold N with a non-contiguous layout)."""
    strided = not op.contiguous[0] or op.hints.get("contiguous") is False
    return strided and op.batch > 1 and len(op.ins[0]) >= 2


@rule("moe")
def _moe(op):
    layer = op.layer
    own = op.own_grad
    shape = op.ins[0]
    d, e, k, h, hs = shape[-1], layer.experts, layer.top_k, layer.hidden, layer.shared_hidden
    r = op.batch * prod(shape[:-1])
    b = op.size
    saved = []
    copy = _rows_copy(op)
    if own:
        saved.append(("new", "rows copy", r * d * b) if copy else IN)
    saved.append(("new", "scores", r * e * b))
    saved.append(("new", "expert index", r * k * INDEX_BYTES))
    if layer.norm_topk:
        # w / w.sum(): div keeps both operands, the chosen scores (R·k) and their sums (R)
        saved.append(("new", "renormalisation", r * k * b + r * b))
    m = mlp_hidden(layer.gated, layer.activation, own)
    slots = r * k
    saved.append(("new", "routed rows and slots", slots * 2 * INDEX_BYTES))
    saved.append(("new", "expert tensors", slots * b * ((d if own else 0) + m * h + 1 + 2 * d)))
    if hs:
        saved.append(("new", "shared expert", r * mlp_hidden(layer.gated, layer.activation, own) * hs * b))
        if layer.shared_gate:
            # sigmoid keeps its output (R); the product keeps the shared output (R·D) and the gate
            saved.append(("new", "shared gate", r * b + r * d * b))
    # At inference: the logits and scores, the chosen index and weights, and the busiest expert's
    # tensors (the round-robin of calc's oracle gives ⌈R·k/E⌉ rows to the busiest) with the shared
    # MLP's; an estimate of the live intermediates, not checked by the oracle.
    busiest = ceil(slots / e)
    work = (2 * r * e * b + r * k * (INDEX_BYTES + b) + (r * d * b if copy else 0)
            + max(busiest * (2 * INDEX_BYTES + (3 * d + 3 * h) * b), r * 3 * hs * b))
    return Effect(tuple(saved), work=work)


def _norm(rows: int, features: int, storage: int, b: int, own: bool) -> int:
    """Bytes an RMSNorm over ``features`` of each row keeps (as the rmsnorm rule): pow keeps its
    input, whose storage holds ``storage`` features a row (the norm of a split reads a view), rsqrt
    its result per row, γ's product the normalised values when γ trains. In half precision
    torch.rms_norm casts its input to fp32 first and keeps that copy, and works in fp32."""
    s = max(b, 4)
    kept = rows * storage * b if s == b else rows * features * s
    return kept + rows * s + (rows * features * s if own else 0)


@rule("mla")
def _mla(op):
    layer = op.layer
    if layer.context is not None:
        raise MemoryError_("latent attention over a KV cache (context) runs at inference only; calc counts no "
                           "saved activations for it (the cache is counted by calc memory)")
    if layer.absorbed:
        raise MemoryError_("absorbed latent attention is DeepSeek's inference form; calc has no rule for what "
                           "PyTorch saves for backward in it (train the expanded form: absorbed: false)")
    if not op.grad:
        return NOTHING
    own = op.own_grad
    (length, dim) = op.ins[0]
    n, b = op.batch, op.size
    h, c, q_r = layer.heads, layer.kv_lora_rank, layer.q_lora_rank
    d_n, d_r, d_v = layer.qk_nope_head_dim, layer.qk_rope_head_dim, layer.v_head_dim
    d_qk = d_n + d_r
    rows = n * length
    saved = []
    if own:
        # q_a (or q_proj) and kv_a keep x; a non-contiguous x of more than one sample is copied by each
        saved += ([IN] if op.contiguous[0] or n == 1 else
                  [("new", f"input copy {i + 1}", rows * dim * b) for i in range(2)])
    if q_r is not None:
        # q_a's output through RMSNorm, then q_b keeps the norm's output
        saved.append(("new", "query latent and its norm", _norm(rows, q_r, q_r, b, own) + (rows * q_r * b if own else 0)))
    # kv_a's output: the RMSNorm of its c latent features (a split view of the c + d_r), then kv_b
    # keeps the norm's output
    saved.append(("new", "key/value latent and its norm",
                  _norm(rows, c, c + d_r, b, own) + (rows * c * b if own else 0)))
    # Q·Kᵀ: Q as matmul folds (N, h) (a copy, or a view of the projection of the same size) and
    # K, a fresh concatenation of the heads' d_n features and the shared rotary d_r
    saved.append(("new", "q", n * h * length * d_qk * b))
    saved.append(("new", "k", n * h * length * d_qk * b))
    probs = ("new", "probabilities", n * h * length * length * b)
    mask = (("new", "causal mask", length * length * BOOL_BYTES),) if layer.causal else ()
    # V, a split view of kv_b's output: the fold of (N, h) is a view when N, h or L is 1 (the
    # storage kept is then all of kv_b's output, keys' features too), else a copy
    if n == 1 or h == 1 or length == 1:
        v = ("new", "v (kv_b's output)", rows * h * (d_n + d_v) * b)
    else:
        v = ("new", "v", n * h * length * d_v * b)
    saved += [*mask, probs, v]
    if own:
        saved.append(("new", "merged heads", rows * h * d_v * b))
    # At inference: the projections, K, the scores and the probabilities (as eager attention's).
    work = (rows * ((q_r or 0) * 2 + h * d_qk + (c + d_r) + c + h * (d_n + d_v)) * b
            + n * h * length * d_qk * b + 2 * n * h * length * length * b)
    return Effect(tuple(saved), work=work, drop=frozenset({"probabilities", "causal mask"}))
