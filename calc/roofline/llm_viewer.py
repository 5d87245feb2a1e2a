"""The ``llm-viewer`` mode: calc's model timed by the rules of LLM-Viewer (github.com/hahnyuan/
LLM-Viewer, ``model_analyzer.py`` and ``configs/Llama.py`` at commit 472f71f), for the
cross-check of docs/time.md. Computes; never prints. Written from a reading of those rules, not
from their code.

Its rules, where they differ from calc's own (see :mod:`calc.roofline.traffic`):

* every projection is its own kernel (q, k, v, o; gate, up, down), each with its own roofline;
  k and v write their output straight to the KV cache (no activation store);
* attention without a fused kernel: Q·Kᵀ (2·h·L·S·d operations, the scores stored), softmax
  (5 operations per score: max, subtract, exp, sum, divide; scores loaded and stored), S·V; its
  prefill Q·Kᵀ loads L·d·g queries (kv heads, not heads — the same for Llama-2-7B);
* operations of elementwise kernels: a norm 7 per element (its γ not read), a residual add 1 (one
  input loaded), the gated MLP's activation 2 per element over the *hidden size* D (not the
  intermediate size), loading 2·D and storing D; rotary embedding, score scaling and the causal
  mask are not counted;
* the embedding lookup and the final norm are not counted;
* the head (lm_head) is timed for one token whatever the phase, with b·D·V operations (one per
  multiply-accumulate, not two), D activations loaded and V stored (not scaled by the batch);
* the peak: FP16 (INT8 when weights, activations and KV cache are all 8-bit or less).
"""
from __future__ import annotations

from fractions import Fraction

from ..errors import SpecError
from ..hardware import Hardware
from ..inference import leaf_rows, run_phase
from . import LayerTime, Part, Roofline
from .traffic import Traffic

NORMS = ("rmsnorm", "layernorm")


def _part(name: str, hw: Hardware, peak: int, ops: int, t: Traffic) -> Part:
    return Part(name, ops, t, Fraction(ops, peak), Fraction(t.total, hw.bandwidth))


def llm_viewer(model, phase: str, seqlen: int, hw: Hardware, *, batch: int = 1, bits: int = 16,
               kv_bits: int | None = None) -> Roofline:
    """LLM-Viewer's estimate of ``phase`` ('prefill' of ``seqlen`` tokens, or 'decode' at
    ``seqlen`` keys) for a decoder built of attention, linear, norm, add, silu and mul layers."""
    if bits % 8 or (kv_bits or bits) % 8:
        raise SpecError("the llm-viewer mode takes whole bytes per element (bits 8 or 16)")
    w = a = bits // 8
    kv = (kv_bits or bits) // 8
    dtype = "int8" if max(bits, kv_bits or bits) <= 8 else "fp16"
    peak = hw.peak_for(dtype)
    p = run_phase(model, phase, seqlen, batch=batch, dtype="fp16")
    rows = list(leaf_rows(p.analysis))
    b, s = batch, seqlen
    L = 1 if phase == "decode" else s
    hidden = next((r.output_shape[-1] for _, r, _ in rows if r.kind == "embedding"), None)
    last_add = max((i for i, (_, r, _) in enumerate(rows) if r.kind == "add"), default=-1)
    head = max((i for i, (_, r, _) in enumerate(rows) if r.kind == "linear"), default=-1)
    out = []

    def linear(name, ic, oc, to_cache=False):
        store = oc * b * L
        return _part(name, hw, peak, 2 * ic * oc * b * L,
                     Traffic(weights=ic * oc * w, inputs=ic * b * L * a, outputs=0 if to_cache else store * a,
                             kv_write=store * kv if to_cache else 0))

    for i, (name, r, count) in enumerate(rows):
        t = r.kind
        if t == "attention":
            f = r.facts
            h, g, d, D = f["heads"], f["kv_heads"], f["head_dim"], f["dim"]
            parts = [linear("q_proj", D, h * d), linear("k_proj", D, g * d, True), linear("v_proj", D, g * d, True),
                     linear("out_proj", h * d, D)]
            sc = b * h * s * L
            q_load = (L * d * b * g if phase == "prefill" else d * b * h) * a
            parts += [_part("qk_matmul", hw, peak, 2 * sc * d,
                            Traffic(inputs=q_load, outputs=sc * a, kv_read=s * d * b * g * kv)),
                      _part("softmax", hw, peak, 5 * sc, Traffic(inputs=sc * a, outputs=sc * a)),
                      _part("sv_matmul", hw, peak, 2 * sc * d,
                            Traffic(inputs=sc * a, outputs=L * d * b * h * a, kv_read=s * d * b * g * kv))]
        elif t == "linear" and i == head:
            ic, oc = r.input_shape[-1], r.output_shape[-1]
            parts = [_part("lm_head", hw, peak, b * ic * oc, Traffic(weights=ic * oc * w, inputs=ic * a, outputs=oc * a))]
        elif t == "linear":
            parts = [linear(name.rsplit(".", 1)[-1], r.input_shape[-1], r.output_shape[-1])]
        elif t in NORMS:
            if i > last_add:
                continue               # the final norm: not counted
            n = b * hidden * L
            parts = [_part("norm", hw, peak, 7 * n, Traffic(inputs=n * a, outputs=n * a))]
        elif t == "add":
            n = b * hidden * L
            parts = [_part("add", hw, peak, n, Traffic(inputs=n * a, outputs=n * a))]
        elif t == "mul":
            n = b * hidden * L
            parts = [_part("mlp_act", hw, peak, 2 * n, Traffic(inputs=2 * n * a, outputs=n * a))]
        elif t in ("silu", "embedding"):
            continue                   # silu: inside mlp_act; the embedding: not counted
        else:
            raise SpecError(f"the llm-viewer mode models decoders of attention, linear, norm, add, silu and mul "
                            f"layers; '{name}' is a {t}")
        if hidden is None:
            raise SpecError("the llm-viewer mode needs the token embedding (for the hidden size)")
        if count > 1:
            parts = [Part(x.name, count * x.flops, x.traffic.scaled(count), count * x.compute_time,
                          count * x.memory_time) for x in parts]
        out.append(LayerTime(name, t, count, tuple(parts)))
    return Roofline(hw, dtype, peak, batch, "eager", tuple(out))
