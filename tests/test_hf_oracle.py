"""Hugging Face transformers as an independent oracle (the optional extra `hf`): parameters of the
published configs instantiated on the meta device, and FLOPs of tiny models (eager attention,
eager experts) under torch.utils.flop_counter.FlopCounterMode, for the prefill and for one cached
decode step (past_key_values), against `calc import hf` of the same config."""
import json
import warnings
from pathlib import Path

import pytest

from calc import analyze, parse_spec
from calc.importer import hf_spec
from calc.inference import run_phase
from conftest import SPECS
from helpers import run_spec

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

CONFIGS = Path(__file__).parent / "data" / "hf_configs"
BUNDLED = sorted(p.stem for p in CONFIGS.glob("*.json"))
# A family's ForX class for the parameter count (BERT: the bundled spec is BertModel with its pooler)
CLASSES = {"bert": "BertModel", "gpt2": "GPT2LMHeadModel"}


def hf_model(cfg: dict, device="cpu"):
    kwargs = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
    config = transformers.AutoConfig.for_model(cfg["model_type"], **kwargs)
    config._attn_implementation = "eager"
    if hasattr(config, "_experts_implementation"):
        config._experts_implementation = "eager"   # a loop over experts FlopCounterMode sees (not grouped_mm)
    cls = CLASSES.get(cfg["model_type"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.device(device):
            if cls:
                return getattr(transformers, cls)(config)
            return transformers.AutoModelForCausalLM.from_config(config)


def count(model) -> int:
    # every parameter once (a tied head shares the embedding's tensor)
    return sum(p.numel() for p in model.parameters())


def spec_of(cfg):
    return parse_spec(hf_spec(cfg), "imported.yaml").build()


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_and_imported_specs_have_the_published_parameter_count(name):
    cfg = json.loads((CONFIGS / f"{name}.json").read_text())
    expected = count(hf_model(cfg, "meta"))
    assert run_spec(name, input_shape=(8,)).totals.params == expected
    assert analyze(spec_of(cfg), input_shape=(8,)).totals.params == expected


TINY = dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False, hidden_act="silu")
FAMILIES = {
    "llama": dict(TINY, model_type="llama"),
    "llama_tied_mha": dict(TINY, model_type="llama", num_key_value_heads=4, tie_word_embeddings=True),
    "mistral": dict(TINY, model_type="mistral", sliding_window=32),
    "mixtral": dict(TINY, model_type="mixtral", num_local_experts=4, num_experts_per_tok=2),
    "qwen2": dict(TINY, model_type="qwen2"),
    "qwen3": dict(TINY, model_type="qwen3", head_dim=24),
    "qwen3_moe": dict(TINY, model_type="qwen3_moe", head_dim=24, num_experts=4, num_experts_per_tok=2,
                      moe_intermediate_size=40, norm_topk_prob=True),
    "deepseek_v3": dict(TINY, model_type="deepseek_v3", num_key_value_heads=4, moe_intermediate_size=40,
                        n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1,
                        n_group=1, topk_group=1, kv_lora_rank=16, q_lora_rank=24, qk_rope_head_dim=8,
                        qk_nope_head_dim=12, v_head_dim=20, norm_topk_prob=True, rope_interleave=False),
    "deepseek_v3_no_q_lora": dict(TINY, model_type="deepseek_v3", num_key_value_heads=4, moe_intermediate_size=40,
                                  n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=2, first_k_dense_replace=0,
                                  n_group=1, topk_group=1, kv_lora_rank=16, q_lora_rank=None, qk_rope_head_dim=8,
                                  qk_nope_head_dim=12, v_head_dim=20, norm_topk_prob=False, rope_interleave=False),
    "gpt2": dict(model_type="gpt2", vocab_size=97, n_embd=64, n_layer=2, n_head=4, n_positions=64,
                 activation_function="gelu_new"),
}


def flops(model, ids, **kw) -> tuple[int, object]:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with FlopCounterMode(display=False) as fc:
            out = model(ids, use_cache=True, **kw)
    return fc.get_total_flops(), out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_prefill_and_cached_decode_flops_match_transformers(family):
    cfg = FAMILIES[family]
    torch.manual_seed(0)
    model = hf_model(cfg).eval()
    spec = spec_of(cfg)
    batch, prompt = 2, 7
    assert analyze(spec, input_shape=(prompt,)).totals.params == count(model)
    ids = torch.randint(0, cfg["vocab_size"], (batch, prompt))
    got, out = flops(model, ids)
    # standard: 2 FLOPs per MAC of every matmul (projections, both attention matmuls, experts, head)
    assert run_phase(spec, "prefill", prompt, batch=batch).analysis.totals.flops == got
    nxt = torch.randint(0, cfg["vocab_size"], (batch, 1))
    got, _ = flops(model, nxt, past_key_values=out.past_key_values)
    assert run_phase(spec, "decode", prompt + 1, batch=batch).analysis.totals.flops == got


def test_bert_flops_match_transformers():
    cfg = dict(model_type="bert", vocab_size=97, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=96, max_position_embeddings=16, type_vocab_size=2, hidden_act="gelu")
    model = hf_model(cfg).eval()
    spec = spec_of(cfg)
    ids = torch.randint(0, 97, (3, 9))
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(ids)
    a = analyze(spec, input_shape=(9,), batch=3)
    assert a.totals.params == count(model)
    assert a.totals.flops == fc.get_total_flops()


def test_bundled_gpt2_small_is_the_imported_one():
    cfg = json.loads((CONFIGS / "gpt2.json").read_text())
    assert analyze(spec_of(cfg)).totals.macs == run_spec("gpt2").totals.macs


def test_mistral_decode_beyond_the_window():
    # Within the window HF's sliding cache attends over every key, as calc counts. Past it calc
    # counts a rolling buffer of exactly W keys (Mistral's reference implementation); HF's
    # DynamicSlidingWindowLayer keeps W − 1 tokens and, on the step after a longer prefill,
    # still attends over more: its figure is at least calc's.
    cfg = dict(TINY, model_type="mistral", sliding_window=4)
    model = hf_model(cfg).eval()
    spec = spec_of(cfg)
    ids = torch.randint(0, 97, (1, 7))
    _, out = flops(model, ids)
    got, out = flops(model, torch.randint(0, 97, (1, 1)), past_key_values=out.past_key_values)
    assert got >= run_phase(spec, "decode", 8).analysis.totals.flops
    got, _ = flops(model, torch.randint(0, 97, (1, 1)), past_key_values=out.past_key_values)
    assert got == run_phase(spec, "decode", 9).analysis.totals.flops
