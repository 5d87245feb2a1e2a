"""The tools' memory conventions (calc.memory.tools), each reproducing its tool's figure.

Sources: accelerate's published table for bert-base-cased (Model memory estimator guide,
https://huggingface.co/docs/accelerate/usage_guides/model_size_estimator: float32 largest layer
84.95 MB, total 413.18 MB, training with Adam 1.61 GB; float16 42.47 MB, 206.59 MB, 826.36 MB;
int8 21.24 MB, 103.29 MB; int4 10.62 MB, 51.65 MB); DeepSpeed 0.19.8's estimator functions (hand
derivations below); Korthikanti et al. 2022 (arXiv:2205.05198) for GPT-3 175B; the real
llm-analysis package as an oracle where installed (the ``llm-analysis`` extra)."""
from __future__ import annotations

from fractions import Fraction

import pytest

from calc import models
from calc.analysis import analyze
from calc.cli import main
from calc.errors import SpecError
from calc.memory import tools

BERT_CASED = 108_310_272      # bert-base-cased BertModel: calc's bert_base with vocab 28,996 (below)
# Hugging Face's BertEmbeddings registers position_ids and token_type_ids, int64 of
# max_position_embeddings = 512 each; accelerate counts every buffer, the spec states neither.
HF_BERT_INDEX_BUFFERS = 2 * 512 * 8


def named(name, batch=1, **sets):
    spec, variant = models.open_named(name)
    return analyze(spec.build(sets, variant=variant), batch=batch)


@pytest.fixture(scope="module")
def bert_cased():
    return named("bert_base", vocab=28996)


def test_bert_cased_parameters(bert_cased):
    # bert-base-uncased (30,522 tokens) has 109,482,240; 1,526 fewer rows of 768
    assert bert_cased.root.params == BERT_CASED == 109_482_240 - (30522 - 28996) * 768


def test_accelerate_bert_base_cased(bert_cased):
    figs = {f.label: f for f in tools.accelerate(bert_cased, extra_buffers=HF_BERT_INDEX_BUFFERS)}
    shown = {k: f.shown for k, f in figs.items()}
    assert shown["float32 largest layer"] == "84.95 MB"      # word embeddings 28,996 × 768 × 4 B
    assert figs["float32 largest layer"].bytes == 28996 * 768 * 4
    assert shown["float32 total size"] == "413.18 MB"
    assert figs["float32 total size"].bytes == BERT_CASED * 4 + HF_BERT_INDEX_BUFFERS
    assert shown["float32 training using Adam"] == "1.61 GB"
    assert figs["float32 training using Adam"].bytes == 4 * (BERT_CASED * 4 + HF_BERT_INDEX_BUFFERS)
    assert (shown["float16 largest layer"], shown["float16 total size"], shown["float16 training using Adam"]) == \
        ("42.47 MB", "206.59 MB", "826.36 MB")
    assert (shown["int8 largest layer"], shown["int8 total size"]) == ("21.24 MB", "103.29 MB")
    assert (shown["int4 largest layer"], shown["int4 total size"]) == ("10.62 MB", "51.65 MB")


def test_accelerate_without_the_index_buffers_differs_in_the_last_digit(bert_cased):
    # the reason is shown: 433,241,088 B is 413.17 MB; HF's two int64 buffers make it 413.18
    figs = {f.label: f for f in tools.accelerate(bert_cased)}
    assert figs["float32 total size"].shown == "413.17 MB"


def test_hf_bert_buffers_with_transformers():
    """The 8,192 bytes of index buffers, measured on Hugging Face's BertModel (meta device)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=28996)
    with torch.device("meta"):
        model = transformers.BertModel(config)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    assert params == BERT_CASED * 4
    assert buffers == HF_BERT_INDEX_BUFFERS
    # DeepSpeed's model_to_params: the largest module's own parameters (the word embeddings)
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    spec, variant = models.open_named("bert_base")
    assert tools.largest_module(analyze(spec.build({"vocab": 28996}, variant=variant))) == largest


def test_deepspeed_zero2_and_zero3_by_hand(bert_cased):
    p = BERT_CASED
    # ZeRO-2, no offload, 1 GPU: 2P (fp16 params) + 18P (fp16 grads, fp32 grads, master, two states)
    cpu, gpu = tools.deepspeed_zero2(p)
    assert gpu == 20 * p and cpu == int(p * 4 * 1.5)
    # 8 GPUs on one node: 2P + ⌊18P/8⌋
    assert tools.deepspeed_zero2(p, 8)[1] == 2 * p + 18 * p // 8
    # ZeRO-3: 4 × the largest layer (the word embeddings, 28,996 × 768) + ⌊18P/G⌋
    largest = 28996 * 768
    assert tools.largest_module(bert_cased) == largest
    cpu, gpu, big = tools.deepspeed_zero3(p, largest, 8)
    assert big == 4 * largest and gpu == 4 * largest + 18 * p // 8 and cpu == int(largest * 4 * 8 * 1.5)
    # with parameters offloaded too, only the largest layer stays on the GPU
    assert tools.deepspeed_zero3(p, largest, cpu_offload=True, cpu_offload_params=True)[1] == 4 * largest


def test_korthikanti_gpt3():
    # GPT-3 175B: s = 2048, b = 1, h = 12,288, a = 96: 5as/h = 5·96·2048/12288 = 80, so
    # sbh(34 + 80) = 2048 · 12288 · 114 bytes per layer
    per = tools.korthikanti_layer(2048, 1, 12288, 96)
    assert per == 2048 * 12288 * 114 == 2_868_903_936
    # tensor parallel 8 with sequence parallelism divides all of it by t
    assert tools.korthikanti_layer(2048, 1, 12288, 96, t=8, mode="sequence") == Fraction(per, 8)
    # selective recomputation keeps sbh·34/t with sequence parallelism
    assert tools.korthikanti_layer(2048, 1, 12288, 96, t=8, mode="selective+sequence") == 2048 * 12288 * 34 // 8


def test_korthikanti_reads_the_spec(bert_cased):
    figs = tools.korthikanti(bert_cased)
    # BERT-base at s = 512: sbh = 512·768, 5as/h = 5·12·512/768 = 40: 74 sbh per layer
    assert figs[0].bytes == 512 * 768 * 74 and figs[1].bytes == 12 * 512 * 768 * 74


def test_eleutherai(bert_cased):
    figs = {f.label: f.bytes for f in tools.eleutherai(bert_cased)}
    # 2 (bf16 model) + 12 (AdamW: fp32 copy, momentum, variance) + 2 (bf16 gradients) = 16 B/param
    assert figs["model + optimizer + gradients"] == 16 * BERT_CASED
    # sbhL(10 + 24 + 5as/h) with t = 1 is the Korthikanti figure × L
    assert figs["activations"] == 512 * 768 * 12 * 74
    zero3 = {f.label: f.bytes for f in tools.eleutherai(bert_cased, zero=3, gpus=4)}
    assert zero3["model + optimizer + gradients"] == 4 * BERT_CASED


def test_transformer_formulas_need_attention():
    with pytest.raises(SpecError, match="no attention layer"):
        tools.korthikanti(named("resnet18"))


CASES = [("bert_base", {"vocab": 28996}, "bert-base-cased"), ("gpt2", {}, "EleutherAI_gpt-neo-125m")]


@pytest.mark.parametrize("spec,sets,config", CASES)
@pytest.mark.parametrize("tp,dp,zero", [(1, 1, 0), (2, 4, 3), (1, 8, 2), (4, 2, 1)])
def test_llm_analysis_oracle(spec, sets, config, tp, dp, zero):
    """calc's llm-analysis convention against the real package (its bundled model configs: GPT-Neo
    125M has GPT-2 small's dimensions) on the A100 SXM 80GB config, weights and embedding 16-bit."""
    pytest.importorskip("llm_analysis")
    from llm_analysis.analysis import DSZeRO, LLMAnalysis
    from llm_analysis.config import (ParallelismConfig, get_dtype_config_by_name, get_gpu_config_by_name,
                                     get_model_config_by_name)
    mc = get_model_config_by_name(config)
    la = LLMAnalysis(mc, get_gpu_config_by_name("a100-sxm-80gb"), get_dtype_config_by_name("w16a16e16"),
                     ParallelismConfig(tp_size=tp, dp_size=dp))
    z = DSZeRO(zero)
    weights = (la.get_weight_memory_per_layer(z) * mc.num_layers + la.get_weight_memory_last_layernorm(z)
               + la.get_memory_embedding(z))
    per_layer = la.get_memory_optimizer_state_and_gradient_per_layer(ds_zero=z)
    emb = la.get_memory_optimizer_state_and_gradient_embedding(ds_zero=z)
    last = la.get_memory_optimizer_state_and_gradient_last_layernorm(ds_zero=z)
    opt = per_layer[0] * mc.num_layers + emb[0] + last[0]
    grad = per_layer[1] * mc.num_layers + emb[1] + last[1]
    ours = {f.label: f.bytes for f in tools.llm_analysis(named(spec, **sets), tp=tp, dp=dp, zero=zero)}
    assert float(ours["weight memory"]) == weights
    act = la.get_activation_memory_per_layer(1, tools.transformer_dims(named(spec, **sets)).seq, is_inference=False)
    assert float(ours["activations per layer (training)"]) == act
    assert float(ours["optimizer states"]) == opt
    assert float(ours["gradients"]) == grad


def test_cli_compare(capsys):
    assert main(["memory", "bert_base", "--set", "vocab=28996", "--compare"]) == 0
    out = capsys.readouterr().out
    for tool in tools.TOOLS:
        assert f"why {tool} differs from calc" in out
    assert main(["memory", "resnet18", "--compare"]) == 0       # transformer-only conventions say why
    assert "not applicable" in capsys.readouterr().out


def test_counterparts_show_calc_beside_each_tool(bert_cased):
    figs = {(f.tool, f.label): f for f in tools.counterparts(bert_cased, tools.accelerate(bert_cased)
                                                             + tools.eleutherai(bert_cased)
                                                             + tools.deepspeed(bert_cased, 2))}
    # accelerate's fp32 total is exactly calc's weights + buffers (the spec states no buffers)
    assert figs[("accelerate", "float32 total size")].calc == 4 * BERT_CASED
    # 16 B/param: calc's bf16 master-copy AdamW states equal Transformer Math's
    f = figs[("eleutherai", "model + optimizer + gradients")]
    assert f.calc == f.bytes == 16 * BERT_CASED
    # DeepSpeed's ZeRO-2 on one GPU counts 20 B/param, calc 16: the fp32 gradient copy (4 B)
    f = figs[("deepspeed-zero2", "per GPU (1 GPU, no offload)")]
    assert f.bytes - f.calc == 4 * BERT_CASED
