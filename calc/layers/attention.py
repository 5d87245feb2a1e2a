"""Multi-head attention with its projections (self and cross, grouped-query, causal)."""

from typing import Any, ClassVar, Optional

from pydantic import Field, StrictBool

from ..formula import Q
from ..shapes import Shape, fmt_shape
from .base import Layer, PosInt, register


# ---------------------------------------------------------------------------- attention

@register("attention", "attention")
class Attention(Layer):
    """Multi-head attention on (L, D) tokens, with its projections: Q = x·W_q, K = m·W_k,
    V = m·W_v (m = x for self attention, the output named by ``kv`` for cross attention),
    per head softmax(Q·Kᵀ/√d)·V, heads concatenated, output projection. ``kv_heads`` below
    ``heads`` gives grouped-query attention (1: multi-query): K and V have kv_heads heads, each
    shared by heads/kv_heads query heads. In the formulas: L query tokens of D features, S
    key/value tokens of D_kv features, h heads, g key/value heads (kv_heads, default h), d
    features per head (head_dim, default D/h).

    Counted: the four projections and both attention matmuls (Q·Kᵀ and attention·V) as MACs;
    projection biases as ``bias_add``; the scaling by 1/√d as one ``mul`` per score; the
    softmax as ``exp``, ``add`` and ``div`` per score (as the softmax layer); a causal mask as
    one ``add`` (of −∞) per score. Causal masking changes none of the MACs: dense kernels compute
    the full L × S score matrix and the full attention·V product. The facts ``masked`` (masked
    scores) and ``masked_mac`` (2·d MACs per masked score) let a convention discount them; no
    bundled convention does."""

    heads: PosInt = Field(description="query heads")
    head_dim: Optional[PosInt] = Field(None, description="features per head (default D / heads)")
    kv_heads: Optional[PosInt] = Field(None, description="key/value heads (default heads; 1 = multi-query)")
    kv: Optional[str] = Field(None, description="name of an earlier output: keys and values come from it "
                                                "(cross attention); default: self attention")
    out: Optional[PosInt] = Field(None, description="output features (default D)")
    bias: StrictBool = Field(True, description="biases of the Q, K and V projections")
    out_bias: Optional[StrictBool] = Field(None, description="bias of the output projection (default: bias)")
    packed: StrictBool = Field(False, description="Q, K, V projected by one packed matrix (PyTorch's "
                                                  "in_proj_weight, GPT-2's c_attn); the counts are the same")
    causal: StrictBool = False
    # The tool presets model nn.MultiheadAttention called as a module (see calc.conventions).
    hints: ClassVar[dict[str, tuple]] = {"call": ("module",), "owner": ("leaf", "container")}

    # The query/key projections' biases are separate from the output projection's, so the bias
    # and bias_add lines test the two flags apart; `any_bias` (either) hides them when both are off.
    quantities: ClassVar[tuple[Q, ...]] = (
        Q("D_out", "out if out else D", "out when given, else D", key="shape.1"),
        Q("weights", "D * h * d + 2 * D_kv * g * d + h * d * D_out",
          "W_q for h heads, W_k and W_v for g heads, the output projection"),
        Q("biases", "(h * d + 2 * g * d if bias else 0) + (D_out if out_bias else 0)",
          "b_q, b_k, b_v (bias) and the output projection's (out_bias)", key="bias", when="any_bias"),
        Q("proj_mac", "L * D * h * d + 2 * S * D_kv * g * d + L * h * d * D_out",
          "Q from the L queries, K and V from the S keys/values, the output projection"),
        Q("scores", "h * L * S", "an L × S score matrix per head"),
        Q("attn_mac", "2 * scores * d", "Q·Kᵀ and attention·V: d multiply-accumulates per score each"),
        Q("mac", "proj_mac + attn_mac", "causal masking changes no MAC: dense kernels compute the full matrices"),
        Q("dots", "L * h * d + 2 * S * g * d + L * D_out + scores + L * h * d",
          "one per output element of the projections Q, K, V and out, of Q·Kᵀ and of attention·V"),
        Q("bias_add", "(L * h * d + 2 * S * g * d if bias else 0) + (L * D_out if out_bias else 0)",
          "one per projected element", when="any_bias"),
        Q("mul", "scores", "the 1/√d scaling of every score"),
        Q("exp", "scores", "softmax: one exponential per score"),
        Q("add", "h * L * (S - 1) + (scores if causal else 0)",
          "softmax: the sum of each row of S scores; a causal mask adds −∞ or 0 to every score"),
        Q("div", "scores", "softmax: every exponential divided by its row's sum"),
        # PyTorch's is_causal aligns the mask top-left: query i sees keys 0..i, i.e. Σ_{i<L} min(i + 1, S).
        Q("visible", "min(L, S) * (min(L, S) + 1) // 2 + (L - min(L, S)) * S",
          "query/key pairs the causal mask keeps: query i sees keys 0..i", when="causal"),
        Q("masked", "h * (L * S - visible)", "masked scores, computed all the same", when="causal"),
        Q("masked_mac", "2 * d * masked", fact=True),
        Q("rows", "h * L", fact=True),
        Q("q_len", "L", fact=True), Q("kv_len", "S", fact=True), Q("dim", "D", fact=True),
        Q("kv_dim", "D_kv", fact=True), Q("heads", "h", fact=True), Q("kv_heads", "g", fact=True),
        Q("head_dim", "d", fact=True), Q("out_dim", "D_out", fact=True), Q("packed", "packed", fact=True),
        Q("causal", "causal", fact=True), Q("cross", "cross", fact=True), Q("qkv_bias", "bias", fact=True),
        Q("has_out_bias", "out_bias", fact=True),
    )

    def refs(self):
        return (self.kv,) if self.kv else ()

    def given(self, shape: Shape) -> dict[str, Any]:
        return self.given_many([shape])

    def given_many(self, shapes: list[Shape]) -> dict[str, Any]:
        q, m = shapes[0], shapes[-1]   # self attention: the keys and values come from the input too
        for s, what in ((q, "input"), (m, f"key/value source '{self.kv}'")):
            if len(s) != 2:
                raise ValueError(f"the {what} must be tokens × features (L, D), got {fmt_shape(s)}")
        dim = q[1]
        h, g = self.heads, self.kv_heads or self.heads
        if h % g:
            raise ValueError(f"heads={h} is not a multiple of kv_heads={g}")
        # the defaults of g and d are stated here once: the checks need them
        if self.head_dim is None:
            if dim % h:
                raise ValueError(f"{dim} features are not divisible by heads={h}; give head_dim")
            d = dim // h
        else:
            d = self.head_dim
        bias = int(self.bias)
        out_bias = bias if self.out_bias is None else int(self.out_bias)
        return {"L": q[0], "D": dim, "S": m[0], "D_kv": m[1], "h": h, "g": g, "d": d, "out": self.out or 0,
                "bias": bias, "out_bias": out_bias, "any_bias": bias | out_bias, "causal": int(self.causal),
                "packed": int(self.packed), "cross": int(self.kv is not None)}
