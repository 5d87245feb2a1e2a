"""calc's saved-activation bytes against PyTorch's, to the byte.

The oracle (calc.oracle.memory.measure_saved) runs one training forward pass of the oracle's
module on the CPU under torch.autograd.graph.saved_tensors_hooks and sums the bytes of the
distinct storages autograd keeps (parameters and buffers excluded); it never consults calc's
rules. Every expected number here is PyTorch's.
"""
from __future__ import annotations

import os
import textwrap

import pytest

torch = pytest.importorskip("torch")

import yaml  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from calc import analyze, load_spec, parse_spec  # noqa: E402
from calc.errors import CalcError, ShapeError  # noqa: E402
from calc.layers import LAYERS  # noqa: E402
from calc.memory import saved_activations  # noqa: E402
from calc.memory.saved import RULES  # noqa: E402
from calc.oracle import TorchRejected  # noqa: E402
from calc.oracle.memory import measure_saved  # noqa: E402
from conftest import SPECS  # noqa: E402
from helpers import leaves  # noqa: E402
from spec_strategies import specs  # noqa: E402
# the spec whose saved bytes tests/test_memory_activations.py derives by hand, checked here against PyTorch
from test_memory_activations import MATMULS  # noqa: E402

EXAMPLES = int(os.environ.get("CALC_ORACLE_EXAMPLES", "300"))
PER_TYPE = int(os.environ.get("CALC_ORACLE_PER_TYPE", "8"))
FAST = settings(deadline=None, suppress_health_check=list(HealthCheck))
# Types calc has no saved-tensor rule for yet: calc refuses them by name (tested without torch).
NO_RULE = set(LAYERS) - set(RULES)


def assert_agree(model, batch: int, dtype: str = "fp32", text: str = ""):
    try:
        analysis = analyze(model, batch=batch, dtype=dtype)
    except ShapeError:
        analysis = None
    try:
        measured = measure_saved(model, batch=batch, dtype=dtype)
    except TorchRejected:
        measured = None
    if analysis is None or measured is None:
        return False          # which side refuses is tests/test_oracle.py's business
    try:
        saved = saved_activations(analysis, dtype=dtype, device="cpu")
    except CalcError as err:
        assert "calc has no rule" in str(err), str(err)
        return False
    ours = [(r.name, r.kind, r.bytes) for r in saved.rows]
    bad = [(c, t) for c, t in zip(ours, measured.leaves) if c != t]
    assert saved.bytes == measured.bytes and len(ours) == len(measured.leaves) and not bad, (
        f"calc {saved.bytes:,} bytes, PyTorch {measured.bytes:,} on\n{text}\nbatch {batch} {dtype}\n"
        + "\n".join(f"calc {c}  torch {t}" for c, t in bad))
    return True


def agree_doc(doc: dict, batch: int, dtype: str = "fp32"):
    text = yaml.safe_dump(doc, sort_keys=False)
    return assert_agree(parse_spec(text, "generated.yaml").build(), batch, dtype, text)


# ---------------------------------------------------------------------------- random specs

@settings(FAST, max_examples=EXAMPLES)
@given(doc=specs(), batch=st.integers(1, 3))
def test_random_specs_save_what_pytorch_saves(doc, batch):
    agree_doc(doc, batch)


@pytest.mark.parametrize("type_name", sorted(set(RULES) & set(LAYERS)))
def test_each_layer_type_saves_what_pytorch_saves(type_name):
    @settings(FAST, max_examples=PER_TYPE)
    @given(doc=specs(force=type_name, wild=0.15), batch=st.integers(1, 2))
    def check(doc, batch):
        agree_doc(doc, batch)
    check()


# ---------------------------------------------------------------------------- chosen cases

CASES = {
    # a residual: the block's input is kept by its first convolution and read again by the add
    "residual": """
        input: [4, 8, 8]
        layers:
          - conv2d: {out: 8, kernel: 3, padding: 1}
          - residual:
              main: [{conv2d: {out: 8, kernel: 3, padding: 1}}, batchnorm2d, relu,
                     {conv2d: {out: 8, kernel: 3, padding: 1}}, batchnorm2d]
          - relu""",
    # in-place ReLU after batch norm: the ReLU keeps its result, the overwritten BN output
    "inplace_relu": """
        input: [3, 8, 8]
        layers: [{conv2d: {out: 4, kernel: 3}}, batchnorm2d, {relu: {inplace: true}}, {maxpool2d: {kernel: 2}}]""",
    "inplace_after_conv": """
        input: [3, 8, 8]
        layers: [{conv2d: {out: 4, kernel: 3}}, {relu6: {inplace: true}}, {conv2d: {out: 4, kernel: 3}},
                 {leaky_relu: {inplace: true}}, {silu: {inplace: true}}, {hardswish: {inplace: true}}, flatten,
                 {linear: {out: 5}}, {elu: {inplace: true}}, {hardsigmoid: {inplace: true}}]""",
    # the first layer reads an input that needs no gradient: a ReLU there keeps nothing
    "no_grad_input": """
        input: [3, 8]
        layers: [relu, {dropout: {p: 0.5}}, {linear: {out: 4}}, {dropout: {p: 0.0}}, sigmoid]""",
    "frozen_layer": """
        input: [3, 8]
        layers: [{linear: {out: 4, trainable: false}}, relu, {linear: {out: 4}}, tanh]""",
    "stochastic_depth": """
        input: [4, 6, 6]
        layers:
          - residual:
              main: [{conv2d: {out: 4, kernel: 3, padding: 1}}, {stochastic_depth: {p: 0.2}}]
          - residual:
              main: [{conv2d: {out: 4, kernel: 3, padding: 1}}, {stochastic_depth: {p: 0.2, mode: batch}}]""",
    "cross_attention_and_mask": """
        input: [6, 8]
        layers:
          - {linear: {out: 8, name: memory}}
          - {attention: {heads: 2, causal: true}}
          - {attention: {heads: 4, kv_heads: 2, kv: memory}}
          - {attention: {heads: 1, packed: true}}
          - {attention: {heads: 2, packed: true, head_dim: 3, out: 5}}""",
    # Swin V2's attention from primitives: parameters and buffers (as views), a made buffer,
    # normalize, matmul, clamp and exp of a parameter, gather, a coordinates table through a linear
    "tensor_primitives": """
        input: [4, 6]
        layers:
          - parameter: {name: table, shape: [9, 2]}
          - buffer: {name: index, shape: [4, 4]}
          - parameter: {name: logit, shape: [2, 1, 1]}
          - buffer: {name: coords, shape: [3, 3, 2]}
          - buffer: {name: mask, shape: [2, 4, 4], persistent: false}
          - parameter: {name: shared, shape: [4, 3]}
          - linear: {name: qkv, out: 18}
          - channel_split: {parts: 3, index: 1, dim: -1}
          - reshape: {shape: [4, 2, 3]}
          - permute: {dims: [1, 0, 2]}
          - normalize: {name: k, dim: -1}
          - channel_split: {parts: 3, index: 2, dim: -1, from: qkv}
          - reshape: {shape: [4, 2, 3]}
          - permute: {name: v, dims: [1, 0, 2]}
          - channel_split: {parts: 3, index: 0, dim: -1, from: qkv}
          - reshape: {shape: [4, 2, 3]}
          - permute: {dims: [1, 0, 2]}
          - normalize: {dim: -1}
          - matmul: {name: cosines, with: [k], transpose: true}
          - clamp: {from: logit, max: 4.6}
          - exp: {name: factor}
          - mul: {from: cosines, with: [factor], name: scores}
          - group:
              name: cpb
              from: coords
              layers: [{linear: {out: 8}}, relu, {linear: {out: 2, bias: false}}]
          - reshape: {shape: [-1, 2]}
          - gather: {index: index}
          - reshape: {shape: [4, 4, 2]}
          - permute: {name: bias, dims: [2, 0, 1]}
          - add: {from: scores, with: [bias], broadcast: true}
          - add: {with: [mask], broadcast: true}
          - softmax: {dim: -1}
          - matmul: {with: [v]}
          - matmul: {with: [shared], transpose: true}
          - gather: {from: table, index: index}
          - permute: {dims: [1, 0]}""",
    # matmul's broadcast: operands folded as views or copied, parameters with and without batch dims
    "matmul_broadcast": MATMULS,
    # group norm copies a non-contiguous input (a split view) and keeps the copy
    "groupnorm_of_a_split": """
        input: [2, 2]
        layers: [relu, {channel_split: {sections: [1, 1], index: 0, dim: 1}}, {groupnorm: {groups: 1}}]""",
    # attention on a non-contiguous input: each projection copies it (batch > 1)
    "attention_on_a_view": """
        input: [2, 3]
        layers: [{linear: {out: 4, name: mem}}, to_tokens, {attention: {heads: 2, packed: true}},
                 {to_tokens: {from: mem}}, {attention: {heads: 1, kv: mem}},
                 {attention: {heads: 2, packed: true, kv: mem}}]""",
    "rmsnorm": """
        input: [5, 6]
        layers: [{linear: {out: 6}}, rmsnorm, {linear: {out: 4}}, {rmsnorm: {affine: false}}, {linear: {out: 4}},
                 {rmsnorm: {trainable: false}}, {linear: {out: 4}}]""",
    # the attention options of T5, GPT-OSS and StreamingLLM, and groups of tokens
    "attention_options": """
        input: [5, 8]
        layers:
          - {attention: {heads: 2, rel_bias: true, rel_buckets: 6, scaled: false, bias: false}}
          - {attention: {heads: 2, rel_bias: true, scaled: false}}
          - {attention: {heads: 2, kv_heads: 1, sinks: true, causal: true}}
          - {attention: {heads: 2, packed: true, sinks: true}}
          - {attention: {heads: 2, causal: true, window: 2, sink_tokens: 1}}
          - {reshape: {shape: [1, 5, 8]}}
          - {attention: {heads: 2, sinks: true}}""",
    "moe_and_mla": """
        input: [6, 8]
        layers:
          - {moe: {experts: 3, top_k: 2, hidden: 5, shared_hidden: 3, shared_gate: true, norm_topk: true}}
          - {moe: {experts: 4, top_k: 1, hidden: 3, gated: false, activation: gelu, scoring: sigmoid,
                   router_bias: true, bias: true}}
          - {mla: {heads: 2, kv_lora_rank: 3, qk_nope_head_dim: 2, qk_rope_head_dim: 1, v_head_dim: 3}}
          - {mla: {heads: 3, kv_lora_rank: 4, q_lora_rank: 5, qk_nope_head_dim: 2, qk_rope_head_dim: 2,
                   v_head_dim: 2, causal: true, bias: true}}
          - {moe: {experts: 2, top_k: 2, hidden: 2, activation: relu, trainable: false}}
          - {mla: {heads: 1, kv_lora_rank: 2, qk_nope_head_dim: 1, qk_rope_head_dim: 1, v_head_dim: 2,
                   trainable: false}}""",
    "adaptive_pools_to_one": """
        input: [3, 5, 6, 7]
        layers: [{adaptive_avgpool3d: {size: 1}}, flatten, {linear: {out: 2}}]""",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_chosen_cases(name):
    doc = yaml.safe_load("name: case\n" + textwrap.dedent(CASES[name]))
    for batch in (1, 2):
        assert agree_doc(doc, batch)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_half_precision(dtype):
    doc = yaml.safe_load("name: case\n" + textwrap.dedent(CASES["residual"]))
    assert agree_doc(doc, 2, dtype)
    doc = yaml.safe_load("name: case\n" + textwrap.dedent(CASES["cross_attention_and_mask"]))
    assert agree_doc(doc, 2, dtype)
    doc = yaml.safe_load("name: case\n" + textwrap.dedent(CASES["tensor_primitives"]))
    assert agree_doc(doc, 2, dtype)
    # torch.rms_norm computes half precision in fp32, keeping fp32 tensors
    doc = yaml.safe_load("name: case\n" + textwrap.dedent(CASES["rmsnorm"]))
    assert agree_doc(doc, 2, dtype)


# ---------------------------------------------------------------------------- bundled specs

# Bundled specs run at full size where the oracle's CPU pass fits in a few hundred megabytes;
# the LLMs (billions of parameters) run at a reduced size that keeps every layer type and every
# structure (the same rules apply at any size).
REDUCED = {
    "gpt2": {"n_ctx": 64, "d": 64, "heads": 4, "depth": 2, "vocab": 1000},
    "gpt2_medium": {"n_ctx": 64, "d": 64, "heads": 4, "depth": 2, "vocab": 1000},
    "gpt2_large": {"n_ctx": 64, "d": 64, "heads": 4, "depth": 2, "vocab": 1000},
    "gpt2_xl": {"n_ctx": 64, "d": 64, "heads": 4, "depth": 2, "vocab": 1000},
    "bert_base": {"seq": 64, "max_positions": 64, "d": 64, "heads": 4, "depth": 2, "vocab": 1000, "mlp_dim": 128},
    "bert_large": {"seq": 64, "max_positions": 64, "d": 64, "heads": 4, "depth": 2, "vocab": 1000, "mlp_dim": 128},
    "vit_b_16": {"depth": 2},
}
LLAMA = {"seq": 64, "d": 64, "heads": 4, "kv_heads": 2, "depth": 2, "ffn": 128, "vocab": 1000}
for _name in ("llama2_7b", "llama2_13b", "llama2_70b", "llama3_8b", "mistral_7b", "qwen2_7b"):
    REDUCED[_name] = LLAMA
# the encoder–decoders (two inputs; the oracle builds one tensor per input): 2 + 2 blocks of the
# published widths' shape at d 64, short sequences
T5 = {"src": 12, "tgt": 7, "vocab": 100, "d": 64, "depth": 2, "decoder_depth": 2, "heads": 4, "d_kv": 16,
      "ffn": 96, "buckets": 8}
REDUCED["t5_small"] = REDUCED["flan_t5_base"] = T5
# the mixtures of experts at a size where 16 tokens spread over all experts (round-robin routing)
REDUCED["mixtral_8x7b"] = {**LLAMA, "seq": 16, "ffn": 32, "experts": 4}
REDUCED["deepseek_v3"] = {"seq": 16, "d": 64, "heads": 4, "dense_layers": 1, "moe_layers": 2, "ffn": 32,
                          "vocab": 1000, "experts": 8, "expert_ffn": 16}
BUNDLED = sorted(p.stem for p in SPECS.glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_spec_saves_what_pytorch_saves(name):
    spec = load_spec(str(SPECS / f"{name}.yaml"))
    try:
        model = spec.build(REDUCED.get(name))
    except CalcError as err:     # a reduced size that does not fit this spec's variables
        pytest.fail(f"{name}: {err}")
    missing = {r.kind for r in leaves(analyze(model))} & NO_RULE
    if missing:
        pytest.skip(f"calc has no saved-tensor rule for {sorted(missing)}")
    assert assert_agree(model, 1, text=name)   # batch 1 bounds the time; batch 2 in the cases above



@pytest.mark.parametrize("name", ["mixtral_8x7b", "deepseek_v3"])
def test_mixtures_of_experts_save_what_pytorch_saves(name):
    model = load_spec(str(SPECS / f"{name}.yaml")).build(REDUCED[name])
    for batch in (1, 2):
        for dtype in ("fp32", "bf16"):
            assert assert_agree(model, batch, dtype, text=f"{name} batch {batch} {dtype}")


# ---------------------------------------------------------------------------- calc verify --memory

def test_verify_memory_cli_agrees_and_exits_0(capsys):
    from calc.cli import main
    assert main(["verify", "--memory", str(SPECS / "alexnet.yaml"), "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "agree: 22 layers and the total" in out and "saved activations (bytes)" in out


def test_verify_memory_exits_1_on_a_disagreement(capsys, monkeypatch):
    from calc.cli import main
    from calc.memory import saved as saved_rules
    real = saved_rules.RULES["relu"]
    monkeypatch.setitem(saved_rules.RULES, "relu", lambda op: saved_rules.NOTHING if op.grad else real(op))
    assert main(["verify", "--memory", str(SPECS / "alexnet.yaml")]) == 1
    assert "DISAGREE" in capsys.readouterr().out


def test_fused_attention_saves_what_pytorch_saves():
    doc = yaml.safe_load("name: case\n" + textwrap.dedent(CASES["cross_attention_and_mask"]))
    for item in doc["layers"]:
        if "attention" in item:
            item["attention"]["impl"] = "sdpa"
    doc["layers"].append({"attention": {"heads": 2, "head_dim": 3, "impl": "sdpa", "causal": True}})
    for batch in (1, 2):
        assert agree_doc(doc, batch)
        assert agree_doc(doc, batch, "bf16")


@pytest.mark.parametrize("which", ["cnn", "cnn_inplace", "repeat", "attention", "attention_sdpa", "tensors",
                                   "matmuls", "moe", "moe_options", "moe_frozen", "mla", "attention_options",
                                   "frozen"])
def test_the_hand_derived_cases_agree_with_pytorch(which):
    """The models of tests/test_memory_activations.py, whose numbers are derived by hand there."""
    import test_memory_activations as hand
    text = {"cnn": hand.CNN.replace("RELU", "relu"),
            "cnn_inplace": hand.CNN.replace("RELU", "{relu: {inplace: true}}"),
            "repeat": hand.REPEAT, "attention": hand.ATTENTION,
            "attention_sdpa": hand.ATTENTION.replace("causal: true", "causal: true, impl: sdpa"),
            "tensors": hand.TENSORS, "matmuls": hand.MATMULS, "moe": hand.MOE, "moe_options": hand.MOE_OPTIONS,
            "moe_frozen": hand.MOE_FROZEN, "mla": hand.MLA, "attention_options": hand.ATTENTION_OPTIONS,
            "frozen": hand.FROZEN}[which]
    model = parse_spec("name: t\n" + textwrap.dedent(text), "t.yaml").build()
    for batch in (1, 2):
        assert assert_agree(model, batch, text=text)
    if which.startswith(("moe", "mla")):      # their bf16 figures are derived by hand too
        assert assert_agree(model, 1, "bf16", text=text)
