"""The ``llm-analysis`` mode: the inference latency of llm-analysis (PyPI llm-analysis 0.2.2,
``llm_analysis/analysis.py``: ``inference``, ``get_latency_fwd`` and the functions they call)
computed for calc's model of a decoder, for the cross-check of docs/time.md. Computes; never
prints. Written from a reading of those functions, not from their code.

Its model of a transformer of L layers, hidden size D, h heads, g key/value heads, an MLP of
two matrices D × F, vocabulary V, batch b, s tokens, activations of ``a`` bytes, weights of ``w``
bytes, peak P, bandwidth B (both at efficiency 1 here):

* per layer, attention: max(FLOPs / P, (weights + activations) / B) with FLOPs
  4·b·s·D² + 4·b·s·D²·g/h + 4·b·s²·D, weights (2·D² + 2·D²·g/h)·w, activations
  max(3·a·s·b·D, (2·s·b·D + 4·h·s·b)·a) (FlashAttention's);
* per layer, MLP: max(16·b·s·D² / P, (2·D·F·w + a·max(1, F/D)·s·b·D) / B) — 16·D² whatever F;
* per layer, two norms: s·b·D·4 / B each (their activations only, in 4 bytes: the inference's
  ``layernorm_dtype_bytes`` does not reach the memory function, whose default is FP32);
* the input embedding: the whole V × D table read, V·D·w / B; the logits: 2·s·b·V·D / P;
* prefill: L · layer + embedding + logits at s = the prompt; decode (per token): the same at
  s = 1, plus the KV cache read and written once per token for the *final* length:
  2 · L · 2·b·(s + N)·(D/h)·g·a / B, where N is the number of tokens generated.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..analysis import analyze
from ..errors import SpecError
from ..hardware import Hardware
from ..inference import leaf_rows, prefill_model


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int


def shape_of(model) -> Shape:
    """The decoder's sizes, read from calc's analysis of it."""
    a = analyze(prefill_model(model, 1))
    rows = list(leaf_rows(a))
    attn = [(r, k) for _, r, k in rows if r.kind == "attention"]
    if not attn:
        raise SpecError("the llm-analysis mode models decoders: the model has no attention layer")
    f = attn[0][0].facts
    D = f["dim"]
    seen = False
    ffn = None
    for _, r, _ in rows:
        seen = seen or r.kind == "attention"
        if seen and r.kind in ("linear", "moe") and r.input_shape[-1] == D and r.output_shape[-1] != D:
            ffn = r.output_shape[-1]
            break
    emb = [r for _, r, _ in rows if r.kind == "embedding"]
    if ffn is None or not emb:
        raise SpecError("the llm-analysis mode needs a token embedding and an MLP after the attention")
    return Shape(sum(k for _, k in attn), D, f["heads"], f["kv_heads"], ffn, emb[0].facts["weights"] // D)


@dataclass(frozen=True)
class Latency:
    prefill: Fraction            # seconds
    decode: Fraction             # seconds per generated token, KV cache included
    kv_cache: Fraction           # the decode step's KV part
    new_tokens: int

    @property
    def total(self) -> Fraction:
        return self.prefill + self.new_tokens * self.decode


def llm_analysis(model, hw: Hardware, *, batch: int = 1, seq_len: int = 512, new_tokens: int = 32,
                 dtype: str = "fp16") -> Latency:
    """llm-analysis's ``inference`` latencies (16-bit weights and activations, efficiency 1)."""
    m = shape_of(model)
    P, B = hw.peak_for(dtype), hw.bandwidth
    a = w = 2
    L, D, h, g, F, V = m.layers, m.hidden, m.heads, m.kv_heads, m.ffn, m.vocab

    def pass_(s: int) -> Fraction:
        b = batch
        attn = max(Fraction(4 * b * s * D * D * h + 4 * b * s * D * D * g + 4 * b * s * s * D * h, h * P),
                   (Fraction((2 * D * D * h + 2 * D * D * g) * w, h)
                    + max(3 * a * s * b * D, (2 * s * b * D + 4 * h * s * b) * a)) / B)
        mlp = max(Fraction(16 * b * s * D * D, P),
                  (2 * D * F * w + a * max(Fraction(1), Fraction(F, D)) * s * b * D) / B)
        norms = 2 * Fraction(s * b * D * 4, B)    # fp32, see the module docstring
        return L * (attn + mlp + norms) + Fraction(V * D * w, B) + Fraction(2 * s * b * V * D, P)

    kv = 2 * Fraction(L * 2 * batch * (seq_len + new_tokens) * D * g * a, h * B)
    return Latency(pass_(seq_len), pass_(1) + kv, kv, new_tokens)
