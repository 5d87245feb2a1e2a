"""Multi-head attention with its projections (self and cross, grouped-query, causal)."""

from typing import Any, ClassVar, Literal, Optional

from pydantic import Field, StrictBool

from ..formula import Q
from ..shapes import Shape, fmt_shape, numel
from .base import Layer, PosInt, register


# ---------------------------------------------------------------------------- attention

@register("attention", "attention")
class Attention(Layer):
    """Multi-head attention on (L, D) tokens, or on (…, L, D) groups of tokens (windows: each
    group attends within itself; L and T then count the tokens of all B groups), with its
    projections: Q = x·W_q, K = m·W_k,
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
    bundled convention does.

    Options of other models (see docs/llm.md §6): ``scaled: false`` and T5's relative position
    bias (``rel_bias``, ``rel_buckets``); attention sinks, learned logits (``sinks``, GPT-OSS) or
    kept first tokens (``sink_tokens``, StreamingLLM); ``cached_kv``, cross attention over cached
    keys and values at a decode step."""

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
    window: Optional[PosInt] = Field(None, description="sliding window (causal self attention): each query "
                                                       "sees itself and the window − 1 keys before it (Mistral)")
    context: Optional[PosInt] = Field(None, description="self attention continuing a KV cache: the keys each "
                                                        "new token attends over, the cache plus the L new "
                                                        "tokens (set by --phase decode --context S)")
    rope: StrictBool = Field(False, description="rotary position embeddings on the queries and keys (no "
                                                "parameters): x·cos + rotate_half(x)·sin per rotated element")
    rope_dims: Optional[PosInt] = Field(None, description="with rope: features per head rotated (default "
                                                          "head_dim; partial rotary)")
    alibi: StrictBool = Field(False, description="ALiBi: a fixed per-head linear bias added to every score "
                                                 "(no parameters)")
    impl: Optional[Literal["eager", "sdpa"]] = Field(None, description="how it runs: 'eager' (scores and "
                                                      "probabilities as tensors) or 'sdpa' (a fused kernel); "
                                                      "changes memory only (default: the memory command's choice)")
    qk_norm: StrictBool = Field(False, description="RMSNorm over each head's d features of the queries and the "
                                                   "keys, one γ of d per side shared by the heads (Qwen3)")
    # T5 (Raffel et al., 2020, §2.1): no 1/√d scaling, a learned relative position bias per head
    # added to every score, its bucket table held by the first layer of each stack and shared.
    scaled: StrictBool = Field(True, description="scores scaled by 1/√d (false: T5, whose initialisation folds "
                                                 "the scale into W_q)")
    rel_bias: StrictBool = Field(False, description="T5's relative position bias added to every score (one add "
                                                    "per score), from a bucket table shared by the stack")
    rel_buckets: Optional[PosInt] = Field(None, description="with rel_bias: this layer holds the bucket table, "
                                                            "rel_buckets × heads parameters (T5's first layer of "
                                                            "each stack; the others reuse its bias)")
    # Attention sinks: GPT-OSS's learned sink logit per head (a column of the softmax whose
    # probability is dropped); StreamingLLM's first k tokens kept beside a sliding window.
    sinks: StrictBool = Field(False, description="a learned sink logit per head joins every softmax row and its "
                                                 "probability is dropped (GPT-OSS): h parameters")
    cached_kv: StrictBool = Field(False, description="cross attention over keys and values cached at the first "
                                                     "step (an encoder–decoder's decode steps, set by --phase "
                                                     "decode): K and V are not projected again")
    sink_tokens: Optional[PosInt] = Field(None, description="with window: the first k tokens stay visible and "
                                                            "cached beside the window (StreamingLLM's attention "
                                                            "sinks): each query sees at most k + W keys")

    # The tool presets model nn.MultiheadAttention called as a module (see calc.conventions).
    hints: ClassVar[dict[str, tuple]] = {"call": ("module",), "owner": ("leaf", "container")}

    # The query/key projections' biases are separate from the output projection's, so the bias
    # and bias_add lines test the two flags apart; `any_bias` (either) hides them when both are off.
    # T: key/value tokens projected in this pass; S: keys each query's score row spans (T, or the
    # cache plus the new tokens when continuing a cache).
    quantities: ClassVar[tuple[Q, ...]] = (
        Q("D_out", "out if out else D", "out when given, else D", key="shape.-1"),
        Q("S", "(min(c, W + k) if win else c) if ctx else T_w",
          "keys per query: the source tokens of its group (all T, or a window's); continuing a cache, the "
          "context c (a sliding window keeps the last W, and the k sink tokens)"),
        Q("weights", "D * h * d + 2 * D_kv * g * d + h * d * D_out + (2 * d if qkn else 0) + (nb * h if nb else 0) + "
                     "(h if sinks else 0)",
          "W_q for h heads, W_k and W_v for g heads, the output projection; QK-norm: γ of d for Q and K; "
          "T5's bucket table of nb × h; a sink logit per head"),
        Q("biases", "(h * d + 2 * g * d if bias else 0) + (D_out if out_bias else 0)",
          "b_q, b_k, b_v (bias) and the output projection's (out_bias)", key="bias", when="any_bias"),
        Q("proj_mac", "L * D * h * d + 2 * T * D_kv * g * d + L * h * d * D_out",
          "Q from the L queries, K and V from the T keys/values projected now, the output projection"),
        Q("scores", "h * L * S", "an L × S score matrix per head"),
        Q("attn_mac", "2 * scores * d", "Q·Kᵀ and attention·V: d multiply-accumulates per score each"),
        Q("mac", "proj_mac + attn_mac", "causal masking changes no MAC: dense kernels compute the full matrices"),
        Q("dots", "L * h * d + 2 * T * g * d + L * D_out + scores + L * h * d",
          "one per output element of the projections Q, K, V and out, of Q·Kᵀ and of attention·V"),
        Q("bias_add", "(L * h * d + 2 * T * g * d if bias else 0) + (L * D_out if out_bias else 0)",
          "one per projected element", when="any_bias"),
        Q("rotated", "(L * h + T * g) * r", "rotary: query and key elements rotated, each x·cos + "
          "rotate_half(x)·sin: 2 multiplies and 1 add (rotate_half's negation is a sign flip, not counted)",
          when="rope"),
        Q("normed", "L * h + T * g", "QK-norm: query and key head vectors normalised (RMSNorm of d: d squares, "
          "d − 1 adds, the mean's division, ε's add, a sqrt, d divisions, d multiplies by γ)", when="qkn"),
        Q("mul", "(scores if scaled else 0) + 2 * rotated + 2 * d * normed",
          "the 1/√d scaling of every score (not in T5); rotary; QK-norm"),
        Q("exp", "scores + (h * L if sinks else 0)", "softmax: one exponential per score (and per row's sink logit)"),
        Q("add", "h * L * (S - 1) + (h * L if sinks else 0) + (scores if causal else 0) + (scores if alibi else 0) + "
                 "(scores if rb else 0) + rotated + d * normed",
          "softmax: the sum of each row of S scores (and its sink's); a causal mask adds −∞ or 0 to every score; "
          "ALiBi or T5's relative position bias adds its bias to every score; rotary; QK-norm"),
        Q("div", "scores + (d + 1) * normed", "softmax: every exponential divided by its row's sum; QK-norm"),
        Q("sqrt", "normed", "QK-norm: one per head vector"),
        # PyTorch's is_causal aligns the mask top-left: query i sees keys 0..i, i.e. Σ_{i<L} min(i + 1, S);
        # continuing a cache, query i sees the S − L cached keys and the new ones up to itself; a
        # window W keeps at most W keys per query.
        Q("m_w", "min(L, W + k)", "queries before the window (and the k sinks) is full", when="win"),
        Q("visible", "(L * S - L * (L - 1) // 2 if ctx else (m_w * (m_w + 1) // 2 + (L - m_w) * (W + k) if win else "
                     "min(L, S) * (min(L, S) + 1) // 2 + (L - min(L, S)) * S))",
          "query/key pairs the causal mask (and window) keeps", when="causal"),
        Q("masked", "h * (L * S - visible)", "masked scores, computed all the same", when="causal"),
        Q("masked_mac", "2 * d * masked", fact=True),
        Q("kv_cached", "S if ctx else (min(T, W + k) if win else T)",
          "tokens whose keys and values the cache holds after this pass (a window keeps the last W, and "
          "the k sink tokens)"),
        Q("kv_cache", "2 * g * d * kv_cached", "cached elements per sequence: a key and a value of d per "
          "key/value head and token"),
        Q("rows", "h * L", fact=True), Q("groups", "B", fact=True),
        Q("q_len", "L", fact=True), Q("kv_len", "S", fact=True), Q("kv_tokens", "T", fact=True),
        Q("dim", "D", fact=True), Q("kv_dim", "D_kv", fact=True), Q("heads", "h", fact=True),
        Q("kv_heads", "g", fact=True), Q("head_dim", "d", fact=True), Q("out_dim", "D_out", fact=True),
        Q("packed", "packed", fact=True), Q("causal", "causal", fact=True), Q("cross", "cross", fact=True),
        Q("qkv_bias", "bias", fact=True), Q("has_out_bias", "out_bias", fact=True),
        Q("window", "W", fact=True), Q("context", "c", fact=True), Q("rope", "rope", fact=True),
        Q("alibi", "alibi", fact=True), Q("qk_norm", "qkn", fact=True), Q("unscaled", "1 - scaled", fact=True),
        Q("rel_bias", "rb", fact=True), Q("rel_buckets", "nb", fact=True), Q("sinks", "sinks", fact=True),
        Q("sink_tokens", "k", fact=True),
    )

    def refs(self):
        return (self.kv,) if self.kv else ()

    def given(self, shape: Shape) -> dict[str, Any]:
        return self.given_many([shape])

    def given_many(self, shapes: list[Shape]) -> dict[str, Any]:
        q, m = shapes[0], shapes[-1]   # self attention: the keys and values come from the input too
        for s, what in ((q, "input"), (m, f"key/value source '{self.kv}'")):
            if len(s) < 2:
                raise ValueError(f"the {what} must be tokens × features (…, L, D), got {fmt_shape(s)}")
        # Leading dims (windows, partitions): attention within each of their B groups of tokens.
        lead = q[:-2]
        if m[:-2] != lead:
            raise ValueError(f"the input {fmt_shape(q)} and the key/value source {fmt_shape(m)} must have "
                             "the same leading dims")
        groups = numel(lead)
        if lead and (self.causal or self.context is not None or self.window is not None):
            raise ValueError("causal masks, sliding windows and KV-cache contexts are modelled on (L, D) "
                             f"tokens only, not on groups of tokens {fmt_shape(q)}")
        q, m = q[-2:], m[-2:]
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
        cross = self.kv is not None
        if self.cached_kv and not cross:
            raise ValueError("cached_kv applies to cross attention (kv: NAME), whose keys and values are cached")
        if self.window is not None and (cross or not self.causal):
            raise ValueError("a sliding window needs causal self attention (causal: true, no kv)")
        if self.context is not None:
            if cross:
                raise ValueError("context (a KV cache) applies to self attention; cross attention's keys "
                                 "are the source's")
            if self.context < q[0]:
                raise ValueError(f"context {self.context} is shorter than the {q[0]} new tokens it includes")
            if self.window is not None and q[0] > 1:
                raise ValueError("several new tokens over a sliding-window cache are not modelled; "
                                 "decode one token at a time (L = 1)")
        r = self.rope_dims if self.rope_dims is not None else d
        if self.rel_buckets is not None and not self.rel_bias:
            raise ValueError("rel_buckets (the bias table) needs rel_bias: true")
        if self.sink_tokens is not None and self.window is None:
            raise ValueError("sink_tokens are kept beside a sliding window; give window (without one every "
                             "token stays visible)")
        if self.rope_dims is not None and not self.rope:
            raise ValueError("rope_dims needs rope: true")
        if self.rope and (r > d or r % 2):
            raise ValueError(f"rope_dims={r} must be even and at most head_dim={d}")
        # cached keys and values (cross attention at a decode step): none projected now (T = 0), each
        # query attends over the cached source of m[0] tokens, as a context. L and T count the tokens
        # of every group (what the projections see); T_w those of one group (the keys a query attends
        # to); the scores are h·L·S either way.
        ckv = self.cached_kv
        return {"L": groups * q[0], "D": dim, "T": 0 if ckv else groups * m[0], "T_w": m[0], "B": groups,
                "D_kv": m[1], "h": h, "g": g, "d": d, "out": self.out or 0,
                "bias": bias, "out_bias": out_bias, "any_bias": bias | out_bias, "causal": int(self.causal),
                "packed": int(self.packed), "cross": int(cross), "W": self.window or 0,
                "win": int(self.window is not None), "c": m[0] if ckv else self.context or 0,
                "ctx": int(self.context is not None or ckv),
                "rope": int(self.rope), "r": r if self.rope else 0, "alibi": int(self.alibi),
                "qkn": int(self.qk_norm), "scaled": int(self.scaled), "rb": int(self.rel_bias),
                "nb": self.rel_buckets or 0, "sinks": int(self.sinks), "k": self.sink_tokens or 0}


# ---------------------------------------------------------------------------- multi-head latent attention

@register("mla", "attention")
class MLA(Layer):
    """Multi-head latent attention (DeepSeek-V2/V3) on (L, D) tokens, as Hugging Face's
    DeepseekV3Attention computes it: queries through a low-rank pair q_a (D → q_r), RMSNorm, q_b
    (q_r → h·(d_n + d_r)) (or one q_proj when ``q_lora_rank`` is not given); keys and values from
    a shared latent: kv_a (D → c + d_r), RMSNorm on the c latent features, kv_b (c → h·(d_n + d_v));
    the d_r rotary features of the key are one per token, shared by the heads (rotary on the
    queries' and that key's d_r features); scores over d_n + d_r features, values of d_v, output
    projection h·d_v → D. The KV cache holds the latent: c + d_r elements per token; continuing a
    cache, kv_b expands all S cached latents again at every step, as Hugging Face computes it (an
    implementation that absorbs kv_b into the query and output projections avoids that; calc
    counts what is computed). ``kv_cache_expanded`` is the size of a cache of expanded keys and
    values, h·(d_n + d_r + d_v) per token, for comparison. Operations are counted as for attention
    (softmax, 1/√d scaling, causal mask), plus the two RMSNorms and rotary."""

    heads: PosInt = Field(description="heads h")
    kv_lora_rank: PosInt = Field(description="latent features c of keys and values")
    q_lora_rank: Optional[PosInt] = Field(None, description="rank q_r of the query projection (default: a "
                                                            "full q_proj)")
    qk_nope_head_dim: PosInt = Field(description="per-head query/key features without rotary, d_n")
    qk_rope_head_dim: PosInt = Field(description="per-head query/key rotary features d_r (the key's are shared)")
    v_head_dim: PosInt = Field(description="per-head value features d_v")
    bias: StrictBool = Field(False, description="biases of q_a (or q_proj), kv_a and the output projection "
                                                "(attention_bias)")
    causal: StrictBool = False
    context: Optional[PosInt] = Field(None, description="keys attended when continuing a KV cache (the cache "
                                                        "plus the new tokens; set by --phase decode)")
    absorbed: StrictBool = Field(False, description="kv_b absorbed into the query and output paths (DeepSeek's "
                                                    "inference): attention runs in the latent space, no cached "
                                                    "latent is expanded")

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("S", "c_ctx if ctx else T", "keys per query: the tokens, or the context continuing a cache"),
        Q("d_qk", "d_n + d_r", "query/key features per head"),
        Q("q_w", "D * q_r + q_r + q_r * h * d_qk if lora else D * h * d_qk",
          "q_a, its RMSNorm γ and q_b; or q_proj"),
        Q("kv_w", "D * (c + d_r) + c + c * h * (d_n + d_v)", "kv_a, its RMSNorm γ, kv_b"),
        Q("weights", "q_w + kv_w + h * d_v * D", "the query and key/value paths, the output projection"),
        Q("biases", "(q_r if lora else h * d_qk) + c + d_r + D", "q_a (or q_proj), kv_a, the output projection",
          key="bias", when="bias"),
        Q("proj_mac", "L * (D * q_r + q_r * h * d_qk if lora else D * h * d_qk) + T * D * (c + d_r) + "
                      "(L * h * (d_n + d_v) * c if absorbed else S * c * h * (d_n + d_v)) + L * h * d_v * D",
          "queries from the L new tokens, the latent of the T new tokens, the expansion of all S cached "
          "latents by kv_b (absorbed: the queries into and the outputs out of the latent space), the output"),
        Q("scores", "h * L * S", "an L × S score matrix per head"),
        Q("attn_mac", "scores * (2 * c + d_r if absorbed else d_qk + d_v)",
          "Q·Kᵀ over d_n + d_r features, attention·V over d_v (absorbed: over c + d_r and c latent features)"),
        Q("mac", "proj_mac + attn_mac"),
        Q("dots", "L * (q_r + h * d_qk if lora else h * d_qk) + T * (c + d_r) + (L * h * (c + d_v) if absorbed "
                  "else S * h * (d_n + d_v)) + scores + "
                  "L * h * d_v + L * D", "one per output element of every projection and of both matmuls"),
        Q("bias_add", "L * (q_r if lora else h * d_qk) + T * (c + d_r) + L * D", "one per biased output",
          when="bias"),
        Q("rotated", "(L * h + T) * d_r", "rotary on the queries' d_r features and each token's shared key"),
        Q("normed", "L * q_r + T * c", "RMSNorm'd features: the query latent (q_r) and the key/value latent (c)"),
        Q("norms", "(L if lora else 0) + T", "RMSNorm groups"),
        Q("mul", "scores + 2 * rotated + 2 * normed", "1/√d scaling; rotary; RMSNorm squares and γ"),
        Q("exp", "scores", "softmax"),
        Q("add", "h * L * (S - 1) + (scores if causal else 0) + rotated + normed",
          "softmax sums; the causal mask; rotary; RMSNorm sums and ε"),
        Q("div", "scores + normed + norms", "softmax; RMSNorm's mean and normalising divisions"),
        Q("sqrt", "norms", "one per RMSNorm group"),
        Q("visible", "L * S - L * (L - 1) // 2 if ctx else min(L, S) * (min(L, S) + 1) // 2 + (L - min(L, S)) * S",
          "query/key pairs the causal mask keeps", when="causal"),
        Q("masked", "h * (L * S - visible)", "masked scores, computed all the same", when="causal"),
        Q("masked_mac", "(2 * c + d_r if absorbed else d_qk + d_v) * masked", fact=True),
        Q("kv_cached", "S if ctx else T", "tokens cached after this pass"),
        Q("kv_cache", "(c + d_r) * kv_cached", "the latent cache: c + d_r elements per token"),
        Q("kv_cache_expanded", "h * (d_qk + d_v) * kv_cached", fact=True),
        Q("q_len", "L", fact=True), Q("kv_len", "S", fact=True), Q("heads", "h", fact=True),
        Q("causal", "causal", fact=True), Q("context", "c_ctx", fact=True),
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        if len(shape) != 2:
            raise ValueError(f"the input must be tokens × features (L, D), got {fmt_shape(shape)}")
        if self.context is not None and self.context < shape[0]:
            raise ValueError(f"context {self.context} is shorter than the {shape[0]} new tokens it includes")
        return {"L": shape[0], "T": shape[0], "D": shape[1], "h": self.heads, "c": self.kv_lora_rank,
                "q_r": self.q_lora_rank or 0, "lora": int(self.q_lora_rank is not None),
                "d_n": self.qk_nope_head_dim, "d_r": self.qk_rope_head_dim, "d_v": self.v_head_dim,
                "bias": int(self.bias), "causal": int(self.causal), "ctx": int(self.context is not None),
                "c_ctx": self.context or 0, "absorbed": int(self.absorbed)}
