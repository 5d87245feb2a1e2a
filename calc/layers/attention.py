"""Multi-head attention with its projections (self and cross, grouped-query, causal)."""

from typing import ClassVar, Optional

from pydantic import Field, StrictBool

from ..formula import given, step
from ..shapes import Shape, fmt_shape
from .base import (Layer, Params, PosInt, register)


# ---------------------------------------------------------------------------- attention

def _visible_pairs(q_len: int, kv_len: int) -> int:
    """Query/key pairs a causal mask keeps: row i sees keys 0..i (PyTorch's is_causal, aligned
    top-left), i.e. Σ_{i<L} min(i + 1, S)."""
    if q_len <= kv_len:
        return q_len * (q_len + 1) // 2
    return kv_len * (kv_len + 1) // 2 + (q_len - kv_len) * kv_len


@register("attention", "attention")
class Attention(Layer):
    """Multi-head attention on (L, D) tokens, with its projections: Q = x·W_q, K = m·W_k,
    V = m·W_v (m = x for self attention, the output named by ``kv`` for cross attention),
    per head softmax(Q·Kᵀ/√d)·V, heads concatenated, output projection. ``kv_heads`` below
    ``heads`` gives grouped-query attention (1: multi-query): K and V have kv_heads heads, each
    shared by heads/kv_heads query heads.

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

    formulas: ClassVar[dict[str, str]] = {
        "shape": "(L, D) → (L, out); keys/values (S, D_kv) from the flow or kv; h heads, g = kv_heads, d = head_dim",
        "params": "D·h·d + 2·D_kv·g·d + h·d·out + bias·(h·d + 2·g·d) + out_bias·out",
        "mac": "projections L·D·h·d + 2·S·D_kv·g·d + L·h·d·out, plus Q·Kᵀ h·L·S·d and attention·V h·L·S·d "
               "(causal masking changes no MAC: dense kernels compute the full matrices)",
        "bias_add": "bias·(L·h·d + 2·S·g·d) + out_bias·L·out",
        "softmax": "per score (h·L·S): 1 mul (1/√d), 1 exp, 1 div; h·L·(S − 1) add; causal: +1 add (mask)",
        "facts": "proj_mac, attn_mac, masked = h·(L·S − visible pairs), masked_mac = 2·d·masked",
    }

    def refs(self):
        return (self.kv,) if self.kv else ()

    def _dims(self, q: Shape, m: Shape):
        for s, what in ((q, "input"), (m, f"key/value source '{self.kv}'")):
            if len(s) != 2:
                raise ValueError(f"the {what} must be tokens × features (L, D), got {fmt_shape(s)}")
        (n, dim), (s_len, kv_dim) = q, m
        h, g = self.heads, self.kv_heads or self.heads
        if h % g:
            raise ValueError(f"heads={h} is not a multiple of kv_heads={g}")
        if self.head_dim is None:
            if dim % h:
                raise ValueError(f"{dim} features are not divisible by heads={h}; give head_dim")
            d = dim // h
        else:
            d = self.head_dim
        return n, dim, s_len, kv_dim, h, g, d, self.out or dim

    def _out_bias(self) -> bool:
        return self.bias if self.out_bias is None else self.out_bias

    def infer(self, shape):
        return self.infer_many([shape])

    def infer_many(self, shapes):
        n, *_, o = self._dims(shapes[0], shapes[-1])
        return (n, o)

    def params(self, shape):
        return self.params_many([shape])

    def params_many(self, shapes):
        n, dim, s_len, kv_dim, h, g, d, o = self._dims(shapes[0], shapes[-1])
        weights = dim * h * d + 2 * kv_dim * g * d + h * d * o
        bias = (h * d + 2 * g * d if self.bias else 0) + (o if self._out_bias() else 0)
        return Params(weights, bias)

    def ops(self, shape, out):
        return self.ops_many([shape], out)

    def ops_many(self, shapes, out):
        n, dim, s_len, kv_dim, h, g, d, o = self._dims(shapes[0], shapes[-1])
        proj = n * dim * h * d + 2 * s_len * kv_dim * g * d + n * h * d * o
        scores = h * n * s_len                 # entries of the score matrices
        attn = 2 * scores * d                  # Q·Kᵀ and attention·V
        masked = h * (n * s_len - _visible_pairs(n, s_len)) if self.causal else 0
        bias_add = (n * h * d + 2 * s_len * g * d if self.bias else 0) + (n * o if self._out_bias() else 0)
        return {
            "mac": proj + attn,
            "dots": n * h * d + 2 * s_len * g * d + n * o + scores + n * h * d,
            "bias_add": bias_add,
            "mul": scores,
            "exp": scores,
            "add": h * n * (s_len - 1) + (scores if self.causal else 0),
            "div": scores,
            "rows": h * n,
            "proj_mac": proj, "attn_mac": attn, "masked": masked, "masked_mac": 2 * d * masked,
            "q_len": n, "kv_len": s_len, "dim": dim, "kv_dim": kv_dim, "heads": h, "kv_heads": g,
            "head_dim": d, "out_dim": o, "packed": int(self.packed), "causal": int(self.causal),
            "cross": int(self.kv is not None), "qkv_bias": int(self.bias), "has_out_bias": int(self._out_bias()),
        }

    def explain(self, shape, out):
        return self.explain_many([shape], out)

    def explain_many(self, shapes, out):
        n, dim, s_len, kv_dim, h, g, d, o = self._dims(shapes[0], shapes[-1])
        sym = {"L": ("L", n), "D": ("D", dim), "S": ("S", s_len), "E": ("D_kv", kv_dim), "h": ("h", h),
               "g": ("g", g), "d": ("d", d), "o": ("out", o), "b": ("bias", int(self.bias)),
               "ob": ("out_bias", int(self._out_bias()))}
        f = self.ops_many(shapes, out)
        steps = [given("shape.0", "L", "query tokens", n), given("shape.1", "out", "out (default D)", o),
                 step("weights", "weights", "D * h * d + 2 * E * g * d + h * d * o",
                      "W_q, W_k, W_v and the output projection", **sym),
                 step("bias", "bias", "(h * d + 2 * g * d) * b + o * ob", **sym),
                 step("params", "params", "D * h * d + 2 * E * g * d + h * d * o + (h * d + 2 * g * d) * b + o * ob",
                      **sym),
                 step("proj_mac", "proj_mac", "L * D * h * d + 2 * S * E * g * d + L * h * d * o",
                      "Q from the L queries, K and V from the S keys, the output projection", **sym),
                 step("attn_mac", "attn_mac", "2 * h * L * S * d", "Q·Kᵀ and attention·V, h heads", **sym)]
        sym.update(p=("proj_mac", f["proj_mac"]), a=("attn_mac", f["attn_mac"]), c=("causal", int(self.causal)))
        steps += [step("mac", "mac", "p + a", "causal masking changes no MAC", **sym),
                  step("bias_add", "bias_add", "(L * h * d + 2 * S * g * d) * b + L * o * ob", **sym),
                  step("mul", "mul", "h * L * S", "the 1/√d scaling of every score", **sym),
                  step("exp", "exp", "h * L * S", "softmax", **sym),
                  step("add", "add", "h * L * (S - 1) + c * h * L * S", "softmax sums (and the causal mask)", **sym),
                  step("div", "div", "h * L * S", "softmax", **sym)]
        if self.causal:
            steps.append(given("masked", "masked", "h·(L·S − visible pairs)", f["masked"]))
        return steps
