"""Cross-checks of `calc time` against other roofline tools.

LLM-Viewer (github.com/hahnyuan/LLM-Viewer, commit 472f71f; the figures quoted in issue #15):
Llama-2-7B on its A100 preset (1,555 GB/s, 312 TFLOPS FP16), batch 1, 1,024 tokens, 16-bit
weights, activations and KV cache, eager attention: prefill 50.79 ms, decode 8.854 ms per token,
12,952,010,752 bytes of weights (the 32 decoder layers' matrices: 32 · (4·4096² + 3·4096·11008)
· 2 B) and 536,870,912 bytes of KV cache (2 · 32 layers · 4096 · 1,024 tokens · 2 B).

llm-analysis (PyPI llm-analysis 0.2.2, its bundled model and GPU configurations) with efficiency 1:
see test_llm_analysis below (skipped when the package is absent; the extra `crosscheck`).
"""
import pytest

from calc import hardware, load_spec
from calc.roofline import Options
from calc.roofline.llm_viewer import llm_viewer
from calc.roofline.phases import time_phase
from conftest import SPECS

LLM_VIEWER = {"prefill": 50.79e-3, "decode": 8.854e-3}


@pytest.fixture(scope="module")
def llama():
    return load_spec(str(SPECS / "llama2_7b.yaml")).build()


@pytest.fixture(scope="module")
def a100():
    hw = hardware.get("a100-40gb")
    assert hw.bandwidth == 1555 * 10**9 and hw.peak["fp16"] == 312 * 10**12   # LLM-Viewer's A100 figures
    return hw


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_llm_viewer_mode_reproduces_it(llama, a100, phase):
    rf = llm_viewer(llama, phase, 1024, a100)
    # LLM-Viewer prints four significant digits
    assert float(rf.time) == pytest.approx(LLM_VIEWER[phase], rel=1e-3)
    assert sum(r.traffic.weights for r in rf.rows if r.name != "lm_head") == 12_952_010_752


def test_llm_viewer_kv_bytes(llama, a100):
    assert llm_viewer(llama, "prefill", 1024, a100).traffic.kv_write == 536_870_912


def test_calc_kv_and_weight_bytes_agree(llama, a100):
    p = time_phase(llama, "prefill", 1024, a100, batch=1, dtype="fp16")
    assert p.kv.bytes == 536_870_912 and p.roofline.traffic.kv_write == 536_870_912
    # the decoder layers' matrices: attention (4·4096²) and the MLP's three linear layers
    matrices = sum(r.traffic.weights for r in p.roofline.rows
                   if r.name.startswith("layers.") and r.type in ("attention", "linear"))
    assert matrices == 12_952_010_752


@pytest.mark.parametrize("phase, attention", [("decode", "eager"), ("decode", "fused"), ("prefill", "fused")])
def test_calc_rules_within_5_percent(llama, a100, phase, attention):
    # calc's own rules differ in detail (docs/time.md lists each difference); within 5% here
    p = time_phase(llama, phase, 1024, a100, Options(attention=attention), dtype="fp16")
    assert float(p.time) == pytest.approx(LLM_VIEWER[phase], rel=0.05)


def test_calc_eager_prefill_difference_explained(llama, a100):
    # calc's eager prefill is 53.65 ms, 5.6% above LLM-Viewer's: the head on all 1,024 tokens
    # (LLM-Viewer: one) and the gated MLP's silu and mul on the 11,008 intermediate features
    # (LLM-Viewer: one kernel on 4,096). Removing those two from both leaves them within 1%.
    hw = a100
    calc = time_phase(llama, "prefill", 1024, hw, dtype="fp16").roofline
    view = llm_viewer(llama, "prefill", 1024, hw)
    drop_calc = sum(r.time for r in calc.rows if r.name == "lm_head" or r.type in ("silu", "mul"))
    drop_view = sum(r.time for r in view.rows if r.name == "lm_head" or r.type == "mul")
    assert float(calc.time) == pytest.approx(53.65e-3, rel=1e-3)
    assert float(calc.time - drop_calc) == pytest.approx(float(view.time - drop_view), rel=0.01)


# llm-analysis's bundled configurations of models calc bundles (its name, calc's, calc's --set to
# match its config). Its Llama-2-7B config says ffn_embed_dim 16,384 (a 4·D MLP of two matrices:
# its formulas know no gated MLP); calc's mode reads the MLP width from the model, so the spec is
# built with ffn=16384 to compare like with like.
LLM_ANALYSIS = [("gpt2", "gpt2", {}), ("gpt2_medium", "gpt2-medium", {}), ("gpt2_large", "gpt2-large", {}),
                ("gpt2_xl", "gpt2-xl", {}), ("llama2_7b", "NousResearch_Llama-2-7b-hf", {"ffn": 16384})]


@pytest.mark.parametrize("ours, theirs, sets", LLM_ANALYSIS)
@pytest.mark.parametrize("batch, seq, new", [(1, 512, 32), (8, 128, 64)])
def test_llm_analysis_mode_reproduces_it(a100, ours, theirs, sets, batch, seq, new):
    pytest.importorskip("llm_analysis")
    from llm_analysis.analysis import infer
    from calc.roofline.llm_analysis import llm_analysis
    # its a100-sxm-40gb: 1,555 GB/s and 312 TFLOPS fp16, as calc's a100-40gb (asserted in the fixture)
    got = infer(model_name=theirs, gpu_name="a100-sxm-40gb", dtype_name="w16a16e16", log_level="ERROR",
                batch_size_per_gpu=batch, seq_len=seq, num_tokens_to_generate=new, flops_efficiency=1,
                hbm_memory_efficiency=1)
    model = load_spec(str(SPECS / f"{ours}.yaml")).build(sets or None)
    mine = llm_analysis(model, a100, batch=batch, seq_len=seq, new_tokens=new)
    assert float(mine.prefill) == pytest.approx(got["prefill_latency"], rel=1e-9)
    assert float(mine.decode) == pytest.approx(got["decode_latency"], rel=1e-9)
    assert float(mine.total) == pytest.approx(got["total_latency"], rel=1e-9)


def test_llm_analysis_mode_by_hand(a100):
    # GPT-2 (L 12, D 768, h 12, F 3,072, V 50,257), batch 1, 512 tokens, by the formulas of
    # calc/roofline/llm_analysis.py: the prefill's attention is compute-bound,
    # (4·512·768² · 2 + 4·512²·768) / 312e12 = 10.324 µs per layer; the MLP too, 16·512·768² / 312e12
    # = 15.486 µs; norms 2 · 512·768·4 / 1555e9; the table 50,257·768·2 / 1555e9; the logits
    # 2·512·50,257·768 / 312e12. Total 510.330 µs (llm-analysis prints 510.33 µs for this case).
    from calc.roofline.llm_analysis import llm_analysis
    model = load_spec(str(SPECS / "gpt2.yaml")).build()
    L, D, V, s = 12, 768, 50257, 512
    attn = (4 * s * D * D * 2 + 4 * s * s * D) / 312e12
    mlp = 16 * s * D * D / 312e12
    norms = 2 * s * D * 4 / 1555e9
    expected = L * (attn + mlp + norms) + V * D * 2 / 1555e9 + 2 * s * V * D / 312e12
    assert float(llm_analysis(model, a100).prefill) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(510.330e-6, abs=1e-9)
