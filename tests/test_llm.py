"""Costing decoder LLMs: the bundled specs' parameters against their published configs, the
inference phases (prefill, cached decode, generation) and the KV cache, by hand derivations."""
import json
from fractions import Fraction

import pytest

from calc import load_spec, parse_spec
from calc.cli import main
from calc.errors import ConventionError
from calc.inference import generate, run_phase
from conftest import SPECS
from helpers import leaves, run_spec, run_text


def model(name, **sets):
    return load_spec(str(SPECS / f"{name}.yaml")).build(sets or None)


# Parameter counts of the published checkpoints: the sum of the tensor sizes of the Hugging Face
# checkpoints (meta-llama/Llama-2-7b-hf 6,738,415,616; -13b-hf 13,015,864,320; -70b-hf 68,976,648,192;
# Meta-Llama-3-8B 8,030,261,248; mistralai/Mistral-7B-v0.1 7,241,732,096; Qwen/Qwen2-7B 7,615,616,512),
# each derived by hand below from its config.json.
def decoder_params(vocab, d, layers, heads, kv, ffn, qkv_bias=False):
    hd = d // heads
    attn = d * d + 2 * d * kv * hd + d * d + (d + 2 * kv * hd if qkv_bias else 0)
    return 2 * vocab * d + layers * (attn + 3 * d * ffn + 2 * d) + d


@pytest.mark.parametrize("name, expected, config", [
    ("llama2_7b", 6_738_415_616, (32000, 4096, 32, 32, 32, 11008)),
    ("llama2_13b", 13_015_864_320, (32000, 5120, 40, 40, 40, 13824)),
    ("llama2_70b", 68_976_648_192, (32000, 8192, 80, 64, 8, 28672)),
    ("llama3_8b", 8_030_261_248, (128256, 4096, 32, 32, 8, 14336)),
    ("mistral_7b", 7_241_732_096, (32000, 4096, 32, 32, 8, 14336)),
])
def test_published_parameter_counts(name, expected, config):
    assert decoder_params(*config) == expected
    assert run_spec(name, input_shape=(16,)).totals.params == expected


def test_qwen2_7b_parameters_with_qkv_biases():
    # Qwen2-7B: biases on q, k, v only: 28 layers × (3,584 + 2·4·128) = 28 × 4,608 = 129,024
    a = run_spec("qwen2_7b", input_shape=(16,))
    assert a.totals.params == decoder_params(152064, 3584, 28, 28, 4, 18944, qkv_bias=True) == 7_615_616_512
    assert a.totals.bias == 28 * 4608


def test_llama2_7b_decode_step_the_issue_check():
    # One new token over 4,096 keys: every weight matrix once (6,738,415,616 − 2 embeddings... the
    # token embedding is a lookup, the head a matmul): 6,607,077,376 MACs of linear layers (all
    # weights but the embedding table and the 65 RMSNorm γ of 4,096), plus Q·Kᵀ and attention·V:
    # 32 layers × 2 × 32 heads × 128 × 4,096 keys.
    p = run_phase(model("llama2_7b"), "decode", 4096, batch=8, kv_dtype="fp16")
    linear = 6_738_415_616 - 32000 * 4096 - 65 * 4096
    assert linear == 6_607_077_376
    assert p.per_token == (Fraction(linear + 32 * 2 * 32 * 128 * 4096), Fraction(15_361_638_400))
    assert p.per_token[0] == 7_680_819_200
    assert p.analysis.totals.macs == 8 * 7_680_819_200
    # KV cache: 32 layers × (K and V) × 32 heads × 128 features × 2 bytes = 524,288 per token
    assert p.kv.bytes_per_token == 32 * 2 * 32 * 128 * 2 == 524_288
    assert p.kv.bytes == 8 * 4096 * 524_288 == 16 * 2**30
    assert [x.tokens for x in p.kv.layers] == [4096] * 32


def test_decode_json_reports_per_token_figures_and_the_kv_cache(capsys):
    assert main(["analyze", str(SPECS / "llama2_7b.yaml"), "--phase", "decode", "--context", "4096",
                 "--batch", "8", "--kv-dtype", "fp16", "--format", "json"]) == 0
    inf = json.loads(capsys.readouterr().out)["inference"]
    assert (inf["macs_per_token"], inf["flops_per_token"]) == (7_680_819_200, 15_361_638_400)
    kv = inf["kv_cache"]
    assert (kv["bytes_per_token"], kv["bytes"], kv["dtype"]) == (524_288, 17_179_869_184, "fp16")
    assert len(kv["layers"]) == 32 and kv["layers"][0]["bytes_per_sequence"] == 4096 * 2 * 32 * 128 * 2


def test_mistral_kv_cache_stops_growing_at_its_window():
    # sliding window 4,096: 8 key/value heads × 128 × 2 (K, V) × 32 layers × 2 B = 131,072 B per token
    m = model("mistral_7b")
    sizes = {s: run_phase(m, "decode", s, kv_dtype="bf16").kv.bytes for s in (4095, 4096, 4097, 32768)}
    assert sizes[4095] == 4095 * 131_072
    assert sizes[4096] == sizes[4097] == sizes[32768] == 4096 * 131_072 == 2**29
    # and each step attends over at most the window: the MACs stop growing too
    macs = {s: run_phase(m, "decode", s).per_token[0] for s in (4096, 9000)}
    assert macs[4096] == macs[9000]


TINY = """
name: tiny
input: [seq]
input_kind: tokens
variables: {seq: 8}
layers:
  - embedding: {vocab: 50, dim: 16}
  - repeat:
      times: 2
      layers:
        - residual: {main: [rmsnorm, {attention: {heads: 4, kv_heads: 2, causal: true, rope: true, window: WIN}}]}
        - residual: {main: [rmsnorm, {linear: {out: 32}}, silu, {linear: {out: 16}}]}
  - linear: {out: 50, bias: false}
"""


@pytest.mark.parametrize("win", [5, 1000])
def test_generation_closed_form_equals_the_step_by_step_sum(win):
    m = parse_spec(TINY.replace("WIN", str(win)), "tiny.yaml").build()
    for conv in ("standard", "exact"):
        g = generate(m, 3, 12, batch=2, convention=conv)
        steps = [run_phase(m, "decode", s, batch=2, convention=conv).analysis.totals for s in range(4, 15)]
        assert g.decode_macs == sum(t.macs for t in steps)
        assert g.decode_flops == sum(t.flops for t in steps)
        assert g.macs == g.prefill.analysis.totals.macs + g.decode_macs
    assert generate(m, 3, 1).decode_macs == 0   # the prefill yields the only new token


def test_decode_step_by_hand():
    # one token, context 10: h=4, g=2, d=4, D=16. Projections 16·16 + 2·16·8 + 16·16 = 768 MACs;
    # scores 4 heads × 1 × 10 keys, 2·4 MACs each: 320
    (r,) = [x for x in leaves(run_text("""
        name: t
        input: [1, 16]
        layers: [{attention: {heads: 4, kv_heads: 2, causal: true, context: 10}}]
    """)) if x.kind == "attention"]
    f = r.facts
    assert (f["proj_mac"], f["scores"], f["attn_mac"]) == (768, 40, 320)
    assert f["masked"] == 0                     # the new token sees the whole cache and itself
    assert (f["kv_cached"], f["kv_cache"]) == (10, 2 * 2 * 4 * 10)


def test_phase_errors_are_clear(capsys):
    spec = str(SPECS / "llama2_7b.yaml")
    assert main(["analyze", spec, "--phase", "decode"]) == 2
    assert "--phase decode needs --context N" in capsys.readouterr().err
    assert main(["analyze", spec, "--context", "5"]) == 2
    assert "need --phase" in capsys.readouterr().err
    assert main(["analyze", spec, "--phase", "decode", "--context", "5", "--new", "3"]) == 2
    assert "--new N goes with --phase generate" in capsys.readouterr().err


def test_tool_presets_refuse_the_options_multihead_attention_lacks():
    from calc.conventions import CONVENTIONS
    presets = [c.name for c in CONVENTIONS.values() if c.explicit]
    assert len(presets) >= 5
    for preset in presets:
        with pytest.raises(ConventionError, match="extended"):
            run_text("""
                name: t
                input: [5, 16]
                layers: [{attention: {heads: 4, causal: true, rope: true}}]
            """, convention=preset)


def test_unmasked_counts_only_the_kept_scores():
    # 6 tokens, 2 heads of d = 4, causal: 21 of 36 scores kept per head; masked 2·15 = 30 scores,
    # 2·4 MACs each = 240 MACs fewer than the dense count; a window of 3 keeps 15 (masked 2·21 = 42)
    for extra, masked in (("", 30), (", window: 3", 42)):
        text = f"""
            name: t
            input: [6, 8]
            layers: [{{attention: {{heads: 2, causal: true{extra}}}}}]
        """
        dense, half = run_text(text), run_text(text, convention="unmasked")
        assert dense.totals.macs - half.totals.macs == 2 * 4 * masked
        assert half.totals.flops == 2 * half.totals.macs
    # nothing masked, nothing changed: ViT-B/16 is the same under both
    assert run_spec("vit_b_16", convention="unmasked").totals.macs == run_spec("vit_b_16").totals.macs
