"""T5 and attention sinks, derived by hand: several named inputs (`inputs:`), attention without the
1/√d scaling and with T5's relative position bias, the encoder–decoder's phases (prefill, a
decode step over cached cross-attention keys and values), StreamingLLM's sink tokens and GPT-OSS's
learned sink logits. Transformers checks the same figures in tests/test_hf_t5.py."""
import pytest

from calc import analyze, parse_spec
from calc.errors import CalcError, SpecError
from calc.inference import generate, run_phase
from helpers import evaluate_layer, run_spec, run_text


# ---------------------------------------------------------------------------- bundled specs

def test_t5_small_parameters_by_hand():
    d, ffn, vocab, h, buckets = 512, 2048, 32128, 8, 32
    shared = vocab * d                                   # one table: encoder, decoder and the tied head
    enc_layer = 4 * d * d + d + 2 * d * ffn + d          # q, k, v, o; two norms (γ only); wi, wo
    dec_layer = 2 * 4 * d * d + 3 * d + 2 * d * ffn      # self and cross attention; three norms; wi, wo
    total = shared + 6 * enc_layer + 6 * dec_layer + 2 * buckets * h + 2 * d   # bias table and final norm per stack
    assert total == 60_506_624
    assert run_spec("t5_small").totals.params == total


def test_flan_t5_base_parameters_by_hand():
    d, ffn, vocab, h, buckets = 768, 2048, 32128, 12, 32
    enc_layer = 4 * d * d + 2 * d + 3 * d * ffn          # gated: wi_0, wi_1, wo
    dec_layer = 8 * d * d + 3 * d + 3 * d * ffn
    total = 2 * vocab * d + 12 * enc_layer + 12 * dec_layer + 2 * buckets * h + 2 * d   # its own head
    assert total == 247_577_856
    assert run_spec("flan_t5_base").totals.params == total


def test_t5_small_macs_by_hand():
    d, ffn, vocab, h, dk, src, tgt = 512, 2048, 32128, 8, 64, 30, 7
    enc = 6 * (4 * src * d * d + 2 * h * src * src * dk + 2 * src * d * ffn)
    dec = 6 * (4 * tgt * d * d + 2 * h * tgt * tgt * dk            # causal self attention, dense kernel
               + 2 * tgt * d * d + 2 * src * d * d + 2 * h * tgt * src * dk   # cross: Q, O; K, V of src
               + 2 * tgt * d * ffn)
    a = run_spec("t5_small", set={"src": src, "tgt": tgt}, batch=3)
    assert a.totals.macs == 3 * (enc + dec + tgt * d * vocab)
    assert a.output_shape == (tgt, vocab)


def test_t5_small_decode_step_by_hand():
    # the decoder alone on one new token: self attention over S keys, cross attention of that token
    # over the src keys and values cached at the prefill (Q and the output projected), the head
    d, ffn, vocab, h, dk, src, s = 512, 2048, 32128, 8, 64, 30, 20
    layer = 4 * d * d + 2 * h * s * dk + 2 * d * d + 2 * h * src * dk + 2 * d * ffn
    step = run_phase(parse_spec(open_spec("t5_small"), "t5_small").build({"src": src}), "decode", s, batch=2)
    assert step.analysis.totals.macs == 2 * (6 * layer + d * vocab) == 2 * 38_776_832
    # the cache: each decoder layer's self attention holds S tokens, its cross attention src tokens
    per = 2 * h * dk * 4                                # keys and values, fp32
    assert step.kv.bytes_per_sequence == 6 * per * (s + src) == 1_228_800
    assert step.kv.bytes_per_token == 6 * per          # the cross-attention cache does not grow
    assert [x.grows for x in step.kv.layers].count(False) == 6
    # the encoder ran at the prefill: its parameters count, its operations do not
    assert step.analysis.totals.params == 60_506_624


def test_t5_generation_sums_the_decode_steps():
    model = parse_spec(open_spec("t5_small"), "t5_small").build({"src": 30})
    g = generate(model, 1, 5)
    steps = sum(run_phase(model, "decode", s).analysis.totals.macs for s in range(2, 6))
    assert g.macs == run_phase(model, "prefill", 1).analysis.totals.macs + steps


def open_spec(name):
    from conftest import SPECS
    return (SPECS / f"{name}.yaml").read_text()


# ---------------------------------------------------------------------------- several inputs

TWO = """
    name: two
    inputs: {a: [5, 8], b: [3, 8]}
    layers:
      - linear: {out: 8, name: enc}
      - linear: {out: 8, from: b}
      - attention: {heads: 2, kv: enc, bias: false}
"""


def test_several_inputs_each_read_by_name():
    a = run_text(TWO)
    # enc: 5·8·8; the second linear on b: 3·8·8; cross attention: Q, O of 3 queries, K, V of 5 keys,
    # scores 2·3·5 over d = 4, twice
    assert a.totals.macs == 5 * 64 + 3 * 64 + (2 * 3 * 64 + 2 * 5 * 64) + 2 * 2 * 3 * 5 * 4
    assert a.output_shape == (3, 8)
    assert a.input_shape == (5, 8)           # the first input starts the flow


@pytest.mark.parametrize("text, message", [
    ("name: x\ninput: [4]\ninputs: {a: [4]}\nlayers: [relu]", "not both"),
    ("name: x\nlayers: [relu]", "missing argument 'input'"),
    ("name: x\ninputs: {input: [4], b: [2]}\nlayers: [relu]", "other than 'input'"),
    ("name: x\ninputs: {a: [4], b: []}\nlayers: [relu]", "at least one size"),
    ("name: x\ninputs: {a: [4], b: [0]}\nlayers: [relu]", "inputs.b[0]"),
    ("name: x\ninputs: {a: [4], b: [2]}\nlayers: [relu: {name: b}]", "'b' is the name of the model's input"),
    ("name: x\ninputs: {a: [4], b: [2]}\nlayers: [relu: {from: c}]", "no earlier output named 'c'"),
])
def test_bad_inputs_are_clear_errors(text, message):
    with pytest.raises(CalcError) as err:
        analyze(parse_spec(text, "x.yaml").build())
    assert message in str(err.value)


# ---------------------------------------------------------------------------- T5 attention

def test_unscaled_attention_with_relative_bias_by_hand():
    # L = 6 tokens of D = 16, h = 4 heads of d = 4, no biases, a bucket table of 32 × 4
    _, p, ops = evaluate_layer("attention", (6, 16), heads=4, bias=False, scaled=False, rel_bias=True,
                               rel_buckets=32)
    assert p.weights == 4 * 16 * 16 + 32 * 4
    scores = 4 * 6 * 6
    assert ops["mul"] == 0                                  # no 1/√d scaling
    assert ops["add"] == 4 * 6 * 5 + scores                 # softmax sums, the bias on every score
    assert ops["exp"] == ops["div"] == scores
    # without the table (a later layer of the stack) the bias is still added
    _, p2, ops2 = evaluate_layer("attention", (6, 16), heads=4, bias=False, scaled=False, rel_bias=True)
    assert p2.weights == 4 * 16 * 16 and ops2["add"] == ops["add"]


def test_t5_attention_options_are_checked():
    with pytest.raises(ValueError, match="rel_buckets .* needs rel_bias"):
        evaluate_layer("attention", (6, 16), heads=4, rel_buckets=32)
    with pytest.raises(ValueError, match="cached_kv applies to cross attention"):
        evaluate_layer("attention", (6, 16), heads=4, cached_kv=True)


def test_tool_presets_refuse_t5_attention():
    with pytest.raises(CalcError, match="relative position bias"):
        run_spec("t5_small", set={"src": 8, "tgt": 4}, convention="fvcore")


# ---------------------------------------------------------------------------- attention sinks

def test_learned_sink_logits_by_hand():
    # GPT-OSS: one logit per head joins each softmax row; its probability is dropped
    _, p, ops = evaluate_layer("attention", (6, 16), heads=4, kv_heads=2, sinks=True, causal=True)
    _, p0, ops0 = evaluate_layer("attention", (6, 16), heads=4, kv_heads=2, causal=True)
    assert p.weights - p0.weights == 4
    assert ops["mac"] == ops0["mac"]
    assert ops["exp"] - ops0["exp"] == 4 * 6            # one more exponential per row
    assert ops["add"] - ops0["add"] == 4 * 6            # one more term in each row's sum
    assert ops["div"] == ops0["div"]                    # the sink's probability is not used


def test_streaming_llm_sink_tokens_by_hand():
    # window W = 3 and k = 2 sinks: query i sees keys 0..i while i + 1 ≤ 5, then the 2 sinks and
    # the last 3 (itself included): 1 + 2 + 3 + 4 + 5 + 5 + 5 + 5 = 30 of 8·8 pairs
    _, _, ops = evaluate_layer("attention", (8, 16), heads=2, causal=True, window=3, sink_tokens=2)
    assert ops["visible"] == 30
    assert ops["masked"] == 2 * (64 - 30)
    assert ops["kv_cache"] == 2 * 2 * 8 * 5             # the cache keeps k + W = 5 tokens
    # a decode step at context 100 attends over the 2 sinks and the last 3: 5 keys
    _, _, dec = evaluate_layer("attention", (1, 16), heads=2, causal=True, window=3, sink_tokens=2,
                               context=100)
    assert dec["kv_len"] == 5 and dec["attn_mac"] == 2 * 2 * 5 * 8
    with pytest.raises(ValueError, match="beside a sliding window"):
        evaluate_layer("attention", (8, 16), heads=2, causal=True, sink_tokens=2)


def test_generation_with_sink_tokens_stops_growing_at_k_plus_w():
    spec = """
        name: s
        input: [seq]
        input_kind: tokens
        variables: {seq: 8}
        layers:
          - embedding: {vocab: 50, dim: 16}
          - attention: {heads: 2, causal: true, window: 3, sink_tokens: 2}
    """
    model = parse_spec(spec, "s.yaml").build()
    steps = [run_phase(model, "decode", s).analysis.totals.macs for s in range(9, 12)]
    assert steps[0] == steps[1] == steps[2]             # over 5 keys at every context past k + W
    g = generate(model, 8, 4)
    assert g.decode_macs == sum(steps)
    # from a prompt of 2: steps at contexts 3 … 11, growing to 5 keys at 5 and flat after it
    g = generate(model, 2, 10)
    assert g.decode_macs == sum(run_phase(model, "decode", s).analysis.totals.macs for s in range(3, 12))


def test_phase_of_an_encoder_decoder_without_a_decoder_reading_its_input():
    spec = """
        name: s
        inputs: {a: [4, 8], b: [2, 8]}
        layers:
          - attention: {heads: 2}
    """
    with pytest.raises(SpecError, match="no item reads it"):
        run_phase(parse_spec(spec, "s.yaml").build(), "decode", 5)


def test_t5_small_scales_the_decoder_output_before_its_tied_head():
    # HF: sequence_output * d_model**-0.5 when the head is tied: one multiply per element of the
    # decoder's tgt × d output, counted by the exact convention (standard counts dot products only)
    a = run_spec("t5_small", set={"src": 8, "tgt": 4}, convention="exact")
    row = next(r for r in a.rows(leaves_only=True) if r.name == "scale_decoder_outputs")
    assert row.result.flops == 4 * 512 and row.result.macs == 0
    assert "scale_decoder_outputs" not in [r.name for r in run_spec("flan_t5_base").rows(leaves_only=True)]
    _, p, ops = evaluate_layer("scale", (4, 512), by=512 ** -0.5)
    assert p.total == 0 and ops["mul"] == 4 * 512


def test_json_lists_every_input_and_verify_builds_several(capsys):
    import json
    from calc.cli import main
    assert main(["analyze", "t5_small", "--set", "src=8", "--set", "tgt=4", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["input_shape"] == [8]                                      # the first input, as before
    assert out["inputs"] == {"input_ids": [8], "decoder_input_ids": [4]}
    # the oracle builds one tensor per input (tests/test_oracle_inputs.py runs it with PyTorch);
    # without PyTorch, verify says what is missing
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        assert main(["verify", "t5_small", "--set", "src=8", "--set", "tgt=4"]) == 2
        assert "needs PyTorch" in capsys.readouterr().err
