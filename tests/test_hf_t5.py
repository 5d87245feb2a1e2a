"""T5 (an encoder–decoder with two inputs, relative position bias, unscaled attention, RMS layer
norm without bias, ReLU or gated-GELU feed-forward) against Hugging Face transformers as the
independent oracle (the optional extra `hf`): parameters of T5ForConditionalGeneration built from
the config on the meta device, and FLOPs of tiny models (eager attention) under
torch.utils.flop_counter.FlopCounterMode, against the bundled specs and `calc import hf`."""
import json
import warnings
from pathlib import Path

import pytest

from calc import analyze, parse_spec
from calc.importer import hf_spec
from helpers import run_spec

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

# The published configs (tests/data/hf_t5_configs, with their provenance)
CONFIGS = Path(__file__).parent / "data" / "hf_t5_configs"
T5_SMALL = json.loads((CONFIGS / "t5_small.json").read_text())
FLAN_T5_BASE = json.loads((CONFIGS / "flan_t5_base.json").read_text())
TINY = dict(model_type="t5", vocab_size=97, d_model=48, d_kv=16, d_ff=80, num_layers=3, num_decoder_layers=2,
            num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20)
FAMILIES = {"relu_tied": dict(TINY), "gated_gelu_untied": dict(TINY, feed_forward_proj="gated-gelu",
                                                                tie_word_embeddings=False),
            "gated_silu": dict(TINY, feed_forward_proj="gated-silu", num_decoder_layers=3)}


def hf_model(cfg: dict, device="cpu"):
    kwargs = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
    config = transformers.T5Config(**kwargs)
    config._attn_implementation = "eager"
    with warnings.catch_warnings(), torch.device(device):
        warnings.simplefilter("ignore")
        return transformers.T5ForConditionalGeneration(config)


def hf_params(cfg: dict, model) -> int:
    # Every parameter once. transformers 5 always ties T5's head to the shared embedding (its
    # T5Config sets tie_word_embeddings = True), but a T5 v1.1 checkpoint (tie_word_embeddings:
    # false) holds its own lm_head.weight: vocab × d_model more, which calc counts.
    n = sum(p.numel() for p in model.parameters())
    return n if cfg.get("tie_word_embeddings", True) else n + cfg["vocab_size"] * cfg["d_model"]


def spec_of(cfg):
    return parse_spec(hf_spec(cfg), "imported.yaml")


@pytest.mark.parametrize("name, cfg", [("t5_small", T5_SMALL), ("flan_t5_base", FLAN_T5_BASE)])
def test_bundled_t5_has_the_published_parameter_count(name, cfg):
    expected = hf_params(cfg, hf_model(cfg, "meta"))
    # t5-small 60,506,624 (the figure the T5 model card's config gives under transformers);
    # flan-t5-base 247,577,856 = 222,903,552 tied + 32,128·768 of its own head
    assert expected == {"t5_small": 60_506_624, "flan_t5_base": 247_577_856}[name]
    assert run_spec(name).totals.params == expected
    assert analyze(spec_of(cfg).build()).totals.params == expected


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_t5_flops_match_transformers(family):
    cfg = FAMILIES[family]
    torch.manual_seed(0)
    model = hf_model(cfg).eval()
    batch, src, tgt = 2, 11, 5
    spec = spec_of(cfg).build({"src": src, "tgt": tgt})
    a = analyze(spec, batch=batch)
    assert a.totals.params == hf_params(cfg, model)
    ids = torch.randint(0, cfg["vocab_size"], (batch, src))
    dec = torch.randint(0, cfg["vocab_size"], (batch, tgt))
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(input_ids=ids, decoder_input_ids=dec, use_cache=False)
    # standard: 2 FLOPs per MAC of every matmul (the projections, Q·Kᵀ and attention·V of the
    # encoder's self attention over src, the decoder's over tgt and its cross attention of tgt
    # queries over src keys, the feed-forward, the head)
    assert a.totals.flops == fc.get_total_flops()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_t5_prefill_and_cached_decode_flops_match_transformers(family):
    """The prefill runs the encoder on src tokens and the decoder on the P prompt tokens; a decode
    step runs the decoder alone on one new token, its self attention over the P + 1 keys, its
    cross attention over the src keys and values cached at the prefill (only Q and the output
    projected) — as transformers computes with past_key_values (an EncoderDecoderCache) and the
    encoder's output passed back in."""
    from calc.inference import run_phase
    cfg = FAMILIES[family]
    torch.manual_seed(0)
    model = hf_model(cfg).eval()
    batch, src, prompt = 2, 9, 3
    spec = spec_of(cfg).build({"src": src})
    ids = torch.randint(0, cfg["vocab_size"], (batch, src))
    dec = torch.randint(0, cfg["vocab_size"], (batch, prompt))
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        out = model(input_ids=ids, decoder_input_ids=dec, use_cache=True)
    pre = run_phase(spec, "prefill", prompt, batch=batch)
    assert pre.analysis.totals.flops == fc.get_total_flops()
    nxt = torch.randint(0, cfg["vocab_size"], (batch, 1))
    with torch.no_grad(), warnings.catch_warnings(), FlopCounterMode(display=False) as fc:
        warnings.simplefilter("ignore")   # past_key_values is being renamed `cache`
        model(encoder_outputs=(out.encoder_last_hidden_state,), decoder_input_ids=nxt,
              past_key_values=out.past_key_values, use_cache=True)
    step = run_phase(spec, "decode", prompt + 1, batch=batch)
    assert step.analysis.totals.flops == fc.get_total_flops()
    # the cache after the step: each decoder layer's self attention holds P + 1 tokens and its
    # cross attention the src tokens, 2·heads·d_kv elements per token (keys and values)
    per = 2 * cfg["num_heads"] * cfg["d_kv"]
    layers = cfg.get("num_decoder_layers") or cfg["num_layers"]
    assert step.kv.elements_per_sequence == layers * per * (prompt + 1 + src)
    cache = out.past_key_values
    assert sum(t.numel() for layer in (cache.self_attention_cache.layers + cache.cross_attention_cache.layers)
               for t in (layer.keys, layer.values)) == batch * layers * per * (prompt + 1 + src)
