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
        with pytest.raises(ConventionError, match="rotary"):
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


# ---------------------------------------------------------------------------- mixture of experts

def test_mixtral_total_and_active_parameters():
    # per layer: attention 2·4096² + 2·4096·1024 = 41,943,040; 8 experts of 3·4096·14,336 = 176,160,768;
    # router 4096·8 = 32,768; 2 RMSNorms 8,192. Total 32 × 1,451,270,144 + 2 × 131,072,000 + 4,096.
    # Active: 2 of the 8 experts: 32 × 394,305,536 + 262,148,096 (embedding table and head counted whole)
    a = run_spec("mixtral_8x7b", input_shape=(16,))
    assert a.totals.params == 32 * (41_943_040 + 8 * 176_160_768 + 32_768 + 8_192) + 2 * 131_072_000 + 4096
    assert a.totals.params == 46_702_792_704
    from calc.inference import active_parameters
    act = active_parameters(a)
    assert act.active == 32 * (41_943_040 + 2 * 176_160_768 + 32_768 + 8_192) + 2 * 131_072_000 + 4096
    assert act.active == 12_879_925_248
    assert act.active_non_embedding == act.active - 131_072_000 and act.embedding == 131_072_000


def test_mixtral_analyze_shows_total_and_active(capsys):
    assert main(["analyze", str(SPECS / "mixtral_8x7b.yaml"), "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "46,702,792,704" in out and "active parameters  12,879,925,248" in out
    assert main(["analyze", str(SPECS / "mixtral_8x7b.yaml"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["active_params"]["active"] == 12_879_925_248
    # a dense model has no such line
    assert main(["analyze", str(SPECS / "llama2_7b.yaml"), "--depth", "1"]) == 0
    assert "active parameters" not in capsys.readouterr().out


def test_moe_layer_by_hand():
    # 3 tokens of D = 8, E = 4 experts of H = 6 (SwiGLU), top 2, a shared MLP of 5, router bias (a buffer)
    (r,) = leaves(run_text("""
        name: t
        input: [3, 8]
        layers: [{moe: {experts: 4, top_k: 2, hidden: 6, shared_hidden: 5, router_bias: true, norm_topk: true}}]
    """))
    expert, shared, router = 3 * 8 * 6, 3 * 8 * 5, 8 * 4          # 144, 120, 32
    assert (r.weights, r.bias, r.buffers) == (4 * expert + shared + router, 0, 4)
    f = r.facts
    assert f["active"] == router + 2 * expert + shared == 440
    assert f["mac"] == 3 * (router + 2 * expert + shared)          # every used weight once per token
    # element-wise per token: SiLU on 2·6 + 5 = 17 values (2 mul, 1 add, 1 div, 1 exp each) and the ⊙ gating;
    # softmax over 4 (4 exp, 3 add, 4 div); top-2 as 2 passes of a max over 4 (2·3 cmp); renormalising
    # (1 add, 2 div); weighting 2·8 mul; summing 2 outputs and the shared one (8 + 8 add)
    assert f["mul"] == 3 * (17 * 3 + 2 * 8)
    assert f["add"] == 3 * (17 + 3 + 1 + 8 + 8)
    assert f["div"] == 3 * (17 + 4 + 2) and f["exp"] == 3 * (17 + 4) and f["cmp"] == 3 * 2 * 3
    assert f["bias_add"] == 3 * 4                                   # the selection bias on every score


def test_moe_refusals():
    for args, message in (({"experts": 2, "top_k": 3, "hidden": 4}, "top_k=3 is more than the 2 experts"),
                          ({"experts": 2, "top_k": 1, "hidden": 4, "shared_gate": True}, "shared_gate needs")):
        with pytest.raises(Exception, match=message):
            run_text(f"""
                name: t
                input: [3, 8]
                layers: [{{moe: {json.dumps(args)}}}]
            """)


def test_tool_presets_do_not_count_moe_or_mla():
    # the presets name the PyTorch module types their tool sees; neither layer type is one
    from calc.conventions import CONVENTIONS
    for preset in (c.name for c in CONVENTIONS.values() if c.explicit):
        for layer in ("moe: {experts: 2, top_k: 1, hidden: 4}",
                      "mla: {heads: 2, kv_lora_rank: 4, qk_nope_head_dim: 2, qk_rope_head_dim: 2, v_head_dim: 2}"):
            with pytest.raises(ConventionError, match=f"cannot count layer type '{layer[:3]}'"):
                run_text(f"""
                    name: t
                    input: [3, 8]
                    layers: [{{{layer}}}]
                """, convention=preset)


# ---------------------------------------------------------------------------- DeepSeek-V3, latent attention

def test_deepseek_v3_parameters():
    # MLA per layer: q_a 7168·1536 + γ 1536 + q_b 1536·128·192 + kv_a 7168·576 + γ 512 + kv_b 512·128·256
    # + o 128·128·7168 = 187,107,328; 2 RMSNorms 14,336. Dense MLP 3·7168·18,432 = 396,361,728 (3 layers);
    # MoE: 257 experts (256 routed + 1 shared) of 3·7168·2048 = 44,040,192, router 256·7168 = 1,835,008
    # (58 layers); embedding and head 2 × 129,280·7168; final norm 7168. The 58 × 256 selection biases
    # are buffers: the checkpoint's 671,026,419,200 tensor elements without the MTP module.
    mla = 7168 * 1536 + 1536 + 1536 * 128 * 192 + 7168 * 576 + 512 + 512 * 128 * 256 + 128 * 128 * 7168
    assert mla == 187_107_328
    a = run_spec("deepseek_v3", input_shape=(4,))
    params = (3 * (mla + 14_336 + 396_361_728) + 58 * (mla + 14_336 + 257 * 44_040_192 + 1_835_008)
              + 2 * 129_280 * 7168 + 7168)
    assert a.totals.params == params == 671_026_404_352
    assert a.totals.buffers == 58 * 256 and a.totals.params + a.totals.buffers == 671_026_419_200
    from calc.inference import active_parameters
    act = active_parameters(a)
    # active: 8 routed + 1 shared expert of 58 MoE layers instead of 257
    assert act.active == params - 58 * 248 * 44_040_192


def test_mla_latent_kv_cache_and_decode_by_hand():
    # DeepSeek-V3's attention: the cache holds 512 + 64 latent elements per token per layer
    p = run_phase(model("deepseek_v3"), "decode", 1000, kv_dtype="bf16")
    assert p.kv.bytes_per_token == 61 * (512 + 64) * 2 == 70_272
    (r,) = leaves(run_text("""
        name: t
        input: [1, 16]
        layers: [{mla: {heads: 2, kv_lora_rank: 4, qk_nope_head_dim: 3, qk_rope_head_dim: 2, v_head_dim: 5,
                        causal: true, context: 10}}]
    """))
    f = r.facts
    # q_proj 16·2·5 = 160; kv_a 16·6 = 96 for the new token; kv_b 4·2·8 = 64 for each of the 10 keys;
    # o 2·5·16 = 160; scores 2 heads × 10, 5 + 5 MACs each
    assert f["proj_mac"] == 160 + 96 + 10 * 64 + 160
    assert f["attn_mac"] == 20 * 10
    assert (f["kv_cached"], f["kv_cache"], f["kv_cache_expanded"]) == (10, 60, 10 * 2 * 10)


# ---------------------------------------------------------------------------- quantised weights

def test_llama2_7b_weight_bytes_in_int4_nf4_int8_fp8():
    from calc.quant import quantised_weights
    a = run_spec("llama2_7b", input_shape=(8,), dtype="fp16")
    matrices = 6_607_077_376                   # every linear/attention matrix (the head included)
    other = 32000 * 4096 + 65 * 4096           # the embedding table and 65 RMSNorm γ stay fp16: 131,338,240
    q = quantised_weights(a, "int4")           # 4 bits packed, one fp16 scale per 128 weights of a row
    assert (q.matrices, q.matrix_bytes, q.scales, q.other) == (matrices, matrices // 2, matrices // 128, other)
    assert q.bytes == matrices // 2 + 2 * matrices // 128 + 2 * other == 3_669_450_752
    z = quantised_weights(a, "int4", zero_point=True)   # + a 4-bit zero point per group
    assert z.bytes - q.bytes == matrices // 128 // 2
    n = quantised_weights(a, "nf4", scale_dtype="fp32")  # bitsandbytes: blocks of 64, an fp32 absmax each
    assert n.bytes == matrices // 2 + 4 * matrices // 64 + 2 * other
    # int8 / fp8 per output channel: one scale per row. Rows: per layer q, k, v, o 4·4096, gate and up
    # 2·11,008, down 4096; the head 32,000
    rows = 32 * (4 * 4096 + 2 * 11008 + 4096) + 32000
    for fmt in ("int8", "fp8_e4m3", "fp8_e5m2"):
        assert quantised_weights(a, fmt).bytes == matrices + 2 * rows + 2 * other
    assert quantised_weights(a, "fp16").bytes == 2 * a.totals.params


def test_group_size_rounds_up_per_row():
    from calc.quant import quantised_weights
    # a 10 × 100 linear layer, int4 in groups of 64: 2 groups per row (64 + 36), 20 scales; 500 bytes packed
    a = run_text("""
        name: t
        input: [3, 100]
        layers: [{linear: {out: 10}}]
    """)
    q = quantised_weights(a, "int4", group=64, scale_dtype="bf16", zero_point=True)
    assert (q.matrix_bytes, q.scales, q.zeros, q.zero_bytes, q.other) == (500, 20, 20, 10, 10)
    assert q.bytes == 500 + 40 + 10 + 4 * 10      # the 10 biases in fp32


def test_weight_options_on_the_command_line(capsys):
    spec = str(SPECS / "mixtral_8x7b.yaml")
    assert main(["analyze", spec, "--input", "4", "--dtype", "bf16", "--weights", "int4", "--format", "json"]) == 0
    w = json.loads(capsys.readouterr().out)["weights"]
    # the router (4096·8 per layer) stays bf16 with the embedding table and norms
    assert w["other_elements"] == 32000 * 4096 + 65 * 4096 + 32 * 4096 * 8
    assert w["matrix_weights"] == 46_702_792_704 - w["other_elements"]
    assert main(["analyze", spec, "--weights", "fp16", "--group-size", "64"]) == 2
    assert "have no scales" in capsys.readouterr().err


def test_mla_absorbed_runs_in_the_latent_space():
    # as test_mla_latent_kv_cache_and_decode_by_hand, absorbed: the query's 2·(3 + 5) head features go
    # into and out of the 4-feature latent once per new token (1·2·8·4 = 64 MACs) instead of expanding
    # the 10 cached latents (640); scores over 4 + 2 latent/rotary features and 4 latent values
    (r,) = leaves(run_text("""
        name: t
        input: [1, 16]
        layers: [{mla: {heads: 2, kv_lora_rank: 4, qk_nope_head_dim: 3, qk_rope_head_dim: 2, v_head_dim: 5,
                        causal: true, context: 10, absorbed: true}}]
    """))
    assert r.facts["proj_mac"] == 160 + 96 + 64 + 160
    assert r.facts["attn_mac"] == 20 * (4 + 2 + 4)
    assert r.params == leaves(run_text("""
        name: t
        input: [1, 16]
        layers: [{mla: {heads: 2, kv_lora_rank: 4, qk_nope_head_dim: 3, qk_rope_head_dim: 2, v_head_dim: 5}}]
    """))[0].params


def test_decode_needs_self_attention(capsys):
    assert main(["analyze", str(SPECS / "alexnet.yaml"), "--phase", "decode", "--context", "5"]) == 2
    assert "needs a model with self attention" in capsys.readouterr().err


def test_decode_beyond_a_learned_position_table(capsys):
    # GPT-2's wpe has 1,024 rows: the 1,025th token has no position
    assert main(["analyze", str(SPECS / "gpt2.yaml"), "--phase", "decode", "--context", "1024"]) == 0
    capsys.readouterr()
    assert main(["analyze", str(SPECS / "gpt2.yaml"), "--phase", "decode", "--context", "1025"]) == 2
    assert "max_len=1,024" in capsys.readouterr().err


def test_a_million_layers_stay_fast(capsys):
    # folded repeats: the active parameters, the KV cache and the weight bytes count a run of identical
    # layers once, times its count
    text = """
        name: deep
        input: [4, 8]
        layers:
          - repeat: {times: 1000000, layers: [{attention: {heads: 2, causal: true}}, {moe: {experts: 4, top_k: 1, hidden: 2}}]}
    """
    import time
    start = time.perf_counter()
    a = run_text(text)
    from calc.inference import active_parameters
    from calc.quant import quantised_weights
    act = active_parameters(a)
    attn, moe = 4 * 8 * 8 + 4 * 8, 4 * 3 * 8 * 2 + 8 * 4     # weights + biases; 4 experts of 3·8·2 and the router
    assert (act.total, act.active) == (10**6 * (attn + moe), 10**6 * (attn + 3 * 8 * 2 + 8 * 4))
    assert quantised_weights(a, "int8").matrices == 10**6 * (4 * 8 * 8 + 4 * 3 * 8 * 2)
    model = parse_spec(text.replace("\n        ", "\n"), "deep.yaml").build()
    p = run_phase(model, "decode", 10)
    assert p.kv.elements_per_sequence == 10**6 * 2 * 8 * 10
    assert time.perf_counter() - start < 30
