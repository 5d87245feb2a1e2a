"""Bytes a layer moves between device memory and the chip in one pass: the rules, one per layer
type, in one table (:data:`RULES`). Computes; never prints.

Every figure is a lower bound of the traffic of the usual kernel, in exact integers:

* weights: the layer's parameters and buffers read once per pass (its weight matrices in the
  weight format of :mod:`calc.quant` when one is given, the rest in the dtype). A tied layer
  reads the weights it shares. An embedding reads only the rows it looks up; a mixture of
  experts only the experts its tokens are routed to (at most tokens × top_k of them).
* inputs: every input tensor read once; outputs: the output written once (activation dtype).
  Token ids are read as 8-byte integers (PyTorch's int64).
* kv_read / kv_write: the keys and values of self attention, in the KV dtype: the T tokens
  projected in this pass are written (the KV cache of a causal model), and the attention kernel
  reads the S keys and values each query spans (in decode: the cache plus the new token).
* intermediates: what the kernel writes to memory and reads back inside the layer. Attention:
  the queries and the per-head context (written by one kernel, read by the next), and without a
  fused kernel (``attention='eager'``) the score matrix written and read by the softmax and the
  probabilities written and read by attention·V (4 · h · L · S elements).
* views (flatten, reshape, permute, dropout at inference, …) move nothing: the next layer reads
  its input where it lies.

A layer type without a rule is an error naming it, never a silent zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import SpecError
from ..shapes import Tokens, numel

TOKEN_ID_BYTES = 8        # PyTorch's token ids are int64


@dataclass(frozen=True)
class Traffic:
    """Bytes moved by one pass of one layer (the whole batch)."""

    weights: int = 0
    inputs: int = 0
    outputs: int = 0
    kv_read: int = 0
    kv_write: int = 0
    intermediates: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.inputs + self.outputs + self.kv_read + self.kv_write + self.intermediates

    def scaled(self, k: int) -> "Traffic":
        return Traffic(*(k * getattr(self, f) for f in FIELDS))


FIELDS = ("weights", "inputs", "outputs", "kv_read", "kv_write", "intermediates")


@dataclass(frozen=True)
class Sizes:
    """Bytes per element, and the pass's batch."""

    act: int                 # activations (the analysis dtype)
    kv: int                  # keys and values
    batch: int
    weight_bytes: Callable   # leaf result -> bytes of all its weights (see calc.roofline.weight_bytes)
    attention: str = "eager"  # 'eager' or 'fused'


def _input_bytes(r, s: Sizes) -> int:
    shapes = r.inputs or (r.input_shape,)
    return sum(numel(x) * (TOKEN_ID_BYTES if isinstance(x, Tokens) else s.act) for x in shapes) * s.batch


def _out_bytes(r, s: Sizes) -> int:
    return numel(r.output_shape) * s.act * s.batch


def dense(r, s: Sizes) -> Traffic:
    """Weights (if any) read once, every input read once, the output written once."""
    return Traffic(weights=s.weight_bytes(r), inputs=_input_bytes(r, s), outputs=_out_bytes(r, s))


def view(r, s: Sizes) -> Traffic:
    """A view or a no-op at inference: nothing moves."""
    return Traffic()


def _rows_used(r, s: Sizes, elements: int) -> int:
    """Bytes of ``elements`` of the layer's table (at most the whole table)."""
    whole, table = s.weight_bytes(r), r.facts["weights"]
    return whole if not table or elements >= table else whole * elements // table


def embedding(r, s: Sizes) -> Traffic:
    """A lookup: the ids read, one row of the table per token (at most the whole table), the output."""
    tokens = numel(r.input_shape) * s.batch
    return Traffic(weights=_rows_used(r, s, tokens * r.output_shape[-1]), inputs=tokens * TOKEN_ID_BYTES,
                   outputs=_out_bytes(r, s))


def added_embedding(r, s: Sizes) -> Traffic:
    """A learned position (or type) table added to the input: the L rows used, the input, the output."""
    return Traffic(weights=_rows_used(r, s, r.facts.get("positions", 1) * r.input_shape[-1]),
                   inputs=_input_bytes(r, s), outputs=_out_bytes(r, s))


def attention(r, s: Sizes) -> Traffic:
    f = r.facts
    h, g, d, L, S, T = (f[k] for k in ("heads", "kv_heads", "head_dim", "q_len", "kv_len", "kv_tokens"))
    b = s.batch
    qc = 2 * 2 * h * L * d          # Q written and read; the heads' context written and read
    scores = 4 * h * L * S if s.attention == "eager" else 0
    return Traffic(weights=s.weight_bytes(r), inputs=_input_bytes(r, s), outputs=_out_bytes(r, s),
                   kv_read=2 * g * d * S * b * s.kv, kv_write=2 * g * d * T * b * s.kv,
                   intermediates=(qc + scores) * b * s.act)


def attention_kernels(r, s: Sizes, flops: int) -> list[tuple[str, int, Traffic]]:
    """Attention as the kernels that run it, each (name, FLOPs, bytes): the projections (Q, K, V
    and the output: 2 FLOPs per MAC), then either one fused kernel, or (eager) Q·Kᵀ, the softmax
    and attention·V (2 FLOPs per MAC each) with the score and probability matrices in memory. The
    element-wise work (scaling, masks, softmax, rotary, biases: the rest of the layer's FLOPs)
    goes with the fused kernel or the softmax. The bytes sum to :func:`attention`'s. One part
    when the convention counts fewer FLOPs than 2 per MAC (nothing to split by)."""
    f = r.facts
    whole = attention(r, s)
    b = s.batch
    proj, qk = 2 * f["proj_mac"] * b, f["attn_mac"] * b     # attn_mac = Q·Kᵀ + attention·V, equal halves
    rest = flops - proj - 2 * qk
    if rest < 0:
        return [("attention", flops, whole)]
    h, L, d, S = f["heads"], f["q_len"], f["head_dim"], f["kv_len"]
    q = h * L * d * b * s.act                          # the queries, and likewise the heads' context
    half = whole.kv_read // 2
    kv_read_v = whole.kv_read - half
    projections = ("projections", proj, Traffic(weights=whole.weights, inputs=whole.inputs, outputs=whole.outputs,
                                                kv_write=whole.kv_write, intermediates=2 * q))
    if s.attention == "fused":
        return [projections, ("fused attention", 2 * qk + rest, Traffic(kv_read=whole.kv_read, intermediates=2 * q))]
    sc = h * L * S * b * s.act
    return [projections,
            ("Q·Kᵀ", qk, Traffic(kv_read=half, intermediates=q + sc)),
            ("softmax", rest, Traffic(intermediates=2 * sc)),
            ("attention·V", qk, Traffic(kv_read=kv_read_v, intermediates=sc + q))]


def mla(r, s: Sizes) -> Traffic:
    """Latent attention: the cache holds the compressed latent (and the rotary key); the same
    reads and writes as attention, in the cache's own size per token."""
    f = r.facts
    b = s.batch
    per_token = f["kv_cache"] // f["kv_cached"] if f.get("kv_cached") else 0
    L, S, T, h = f["q_len"], f["kv_len"], f.get("kv_tokens", f["q_len"]), f["heads"]
    scores = 4 * h * L * S if s.attention == "eager" else 0
    return Traffic(weights=s.weight_bytes(r), inputs=_input_bytes(r, s), outputs=_out_bytes(r, s),
                   kv_read=per_token * S * b * s.kv, kv_write=per_token * T * b * s.kv,
                   intermediates=scores * b * s.act)


def moe(r, s: Sizes) -> Traffic:
    """Only the routed experts' weights are read: at most tokens × top_k distinct experts (all E
    when there are enough tokens); the router and the shared experts always."""
    f = r.facts
    E, k, R = f["experts"], f["top_k"], f["rows"]
    used = min(E, R * s.batch * k)
    whole = s.weight_bytes(r)
    expert_part = s.weight_bytes(r, experts_only=True)
    per_expert = expert_part // E
    return Traffic(weights=whole - expert_part + used * per_expert, inputs=_input_bytes(r, s),
                   outputs=_out_bytes(r, s))


# Every layer type and its rule. A type missing here cannot be timed (an error names it).
RULES: dict[str, Callable[..., Traffic]] = {
    **{t: dense for t in (
        "relu", "relu6", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "silu", "softplus", "hardswish",
        "hardsigmoid", "prelu", "layer_scale", "scale", "softmax",
        "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "linear",
        "class_token", "to_image", "token_mean", "add", "mul", "concat",
        "batchnorm1d", "batchnorm2d", "batchnorm3d", "layernorm", "groupnorm", "local_response_norm", "rmsnorm",
        "maxpool1d", "maxpool2d", "maxpool3d", "avgpool1d", "avgpool2d", "avgpool3d",
        "adaptive_avgpool1d", "adaptive_avgpool2d", "adaptive_avgpool3d",
        "adaptive_maxpool1d", "adaptive_maxpool2d", "adaptive_maxpool3d", "global_avgpool", "global_maxpool",
        "upsample", "rnn", "lstm", "gru", "channel_shuffle", "pad", "roll",
        "matmul", "gather", "exp", "clamp", "normalize")},
    **{t: view for t in ("dropout", "stochastic_depth", "identity", "flatten", "reshape", "permute",
                         "to_tokens", "select_token", "channel_split",
                         # a learned or constant tensor: its consumer reads it as an input
                         "parameter", "buffer")},
    "embedding": embedding,
    "pos_embedding": added_embedding,
    "type_embedding": added_embedding,
    "attention": attention,
    "mla": mla,
    "moe": moe,
}


def traffic(r, s: Sizes) -> Traffic:
    """The bytes leaf result ``r`` moves (whole batch)."""
    rule = RULES.get(r.kind)
    if rule is None:
        raise SpecError(f"calc has no bytes-moved rule for layer type '{r.kind}', so it cannot estimate its time "
                        "(see docs/time.md)")
    return rule(r, s)
