"""calc's inference peak against PyTorch's, to the byte, per layer and at the peak.

The oracle (calc.oracle.peak.measure_peak) runs one forward pass of the oracle's module in
evaluation mode under torch.no_grad and a TorchDispatchMode that records every ATen operation's
storages: each lives from the operation that makes it to the last one that reads it (the inputs
from the start, the output to the end). It never consults calc's rules. Every expected number here
is PyTorch's, or derived by hand where written.
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
from calc.memory import inference_peak  # noqa: E402
from calc.memory.saved import RULES  # noqa: E402
from calc.oracle import TorchRejected  # noqa: E402
from calc.oracle.peak import measure_peak  # noqa: E402
from conftest import SPECS  # noqa: E402
from helpers import leaves  # noqa: E402
from spec_strategies import specs  # noqa: E402
from test_memory_oracle import REDUCED  # noqa: E402

EXAMPLES = int(os.environ.get("CALC_ORACLE_EXAMPLES", "300")) // 3
PER_TYPE = max(1, int(os.environ.get("CALC_ORACLE_PER_TYPE", "8")) // 2)
FAST = settings(deadline=None, suppress_health_check=list(HealthCheck))
# What calc's peak does not follow operation by operation (docs/memory.md, "The inference peak"):
# the recurrent layers are an estimate (nn.RNN/nn.GRU run fused kernels whose buffers no one sees;
# the oracle's LSTM is its own step-by-step loop).
# Layers whose intermediates at inference calc estimates (Effect.work, no steps): docs/memory.md,
# "The inference peak", says so and how far they are off on the bundled specs.
ESTIMATED = {"rnn", "gru", "lstm", "moe", "mla"}


def assert_agree(model, batch: int, dtype: str = "fp32", text: str = "", rows: bool = True):
    try:
        analysis = analyze(model, batch=batch, dtype=dtype)
    except ShapeError:
        return False
    if {r.kind for r in leaves(analysis)} & ESTIMATED:
        return False
    try:
        peak = inference_peak(analysis, dtype=dtype, device="cpu")
    except CalcError as err:
        assert "calc has no rule" in str(err) or "runs at inference only" in str(err), str(err)
        return False
    try:
        measured = measure_peak(model, batch=batch, dtype=dtype)
    except TorchRejected:
        return False
    ours = [(r.name, r.kind, r.bytes) for r in peak.rows]
    bad = [(c, t) for c, t in zip(ours, measured.leaves) if c != t]
    assert peak.bytes == measured.bytes and len(ours) == len(measured.leaves) and (not rows or not bad), (
        f"calc {peak.bytes:,} at {peak.where}, PyTorch {measured.bytes:,} at {measured.where} on\n{text}\n"
        f"batch {batch} {dtype}\n" + "\n".join(f"calc {c}  torch {t}" for c, t in bad))
    return True


def agree_doc(doc: dict, batch: int, dtype: str = "fp32"):
    text = yaml.safe_dump(doc, sort_keys=False)
    return assert_agree(parse_spec(text, "generated.yaml").build(), batch, dtype, text)


def model_of(text: str):
    return parse_spec("name: t\n" + textwrap.dedent(text), "t.yaml").build()


# ---------------------------------------------------------------------------- chosen cases

CASES = {
    # every attention form: grouped-query, packed, cross, causal, fused (impl: sdpa), an output
    # width of its own; on a non-contiguous input (to_tokens) each projection copies it
    "attention": """
        input: [4, 8]
        layers:
          - linear: {out: 8, name: x}
          - attention: {heads: 2, kv_heads: 1, causal: true, impl: sdpa, head_dim: 3}
          - attention: {heads: 2, impl: sdpa}
          - attention: {heads: 2, impl: sdpa, packed: true}
          - attention: {heads: 4, kv_heads: 2, impl: sdpa, packed: true, causal: true}
          - attention: {heads: 2, impl: sdpa, kv: x}
          - relu
          - attention: {heads: 2, kv_heads: 1, causal: true, head_dim: 3}
          - attention: {heads: 2, packed: true}
          - attention: {heads: 4, kv_heads: 2, packed: true, causal: true}
          - attention: {heads: 2, kv: x}
          - attention: {heads: 1, kv: x, out: 5}""",
    "attention_on_a_view": """
        input: [2, 3]
        layers: [{linear: {out: 4, name: mem}}, to_tokens, {attention: {heads: 2, packed: true}},
                 {to_tokens: {from: mem}}, {attention: {heads: 1, kv: mem}},
                 {attention: {heads: 2, kv: mem}}]""",
    # T5: unscaled scores, the bias made by the stack's first layer and read by the later ones
    "relative_bias": """
        input: [5, 8]
        layers:
          - attention: {heads: 2, bias: false, scaled: false, rel_bias: true, rel_buckets: 4}
          - linear: {out: 8}
          - attention: {heads: 2, bias: false, scaled: false, rel_bias: true, causal: true}
          - attention: {heads: 2, bias: false}""",
    # a linear on a transposed view: matmul (a copy of the view first when N > 1), then the bias
    # added into a new tensor (not addmm's fused bias)
    "linear_on_a_view": """
        input: [2, 3, 3]
        layers: [{conv2d: {out: 4, kernel: 1}}, to_tokens, {dropout: {p: 0.1}}, {linear: {out: 5}}, to_tokens,
                 {linear: {out: 3, bias: false}}]""",
    "norms_and_positions": """
        input: [5, 6]
        layers:
          - linear: {out: 6}
          - pos_embedding: {max_len: 7}
          - layernorm
          - rmsnorm
          - softmax: {dim: -1}
          - {rmsnorm: {affine: false}}""",
    "joins": """
        input: [4, 6, 6]
        layers:
          - conv2d: {out: 4, kernel: 3, padding: 1, name: a}
          - conv2d: {out: 4, kernel: 3, padding: 1, name: b}
          - add: {from: a, with: [b, a]}
          - mul: {with: [a, b]}
          - parameter: {name: p, shape: [4, 1, 1]}
          - add: {from: b, with: [p], broadcast: true}
          - residual:
              main: [{conv2d: {out: 4, kernel: 3, padding: 1}}, relu]""",
    "lrn_and_pools": """
        input: [4, 6, 6]
        layers: [{conv2d: {out: 6, kernel: 1}}, {local_response_norm: {size: 3}}, {maxpool2d: {kernel: 2}},
                 {groupnorm: {groups: 2}}, {avgpool2d: {kernel: 3}}, flatten, {linear: {out: 3}}, softmax]""",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_chosen_cases(name):
    model = model_of(CASES[name])
    for batch in (1, 2, 3):
        assert assert_agree(model, batch, text=CASES[name])


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_half_precision(dtype):
    # the layer norm's statistics on the CPU are in the input's dtype (calc's device="cpu")
    for name in ("attention", "norms_and_positions", "joins"):
        assert assert_agree(model_of(CASES[name]), 2, dtype, CASES[name])


def test_attention_peak_by_hand_is_pytorchs():
    # the model whose peak tests/test_memory_activations.py derives by hand: 1,024 bytes at batch 2
    import test_memory_activations as hand
    model = model_of(hand.ATTENTION)
    assert measure_peak(model, batch=2).bytes == 1024
    assert assert_agree(model, 2)


# ---------------------------------------------------------------------------- random specs

@settings(FAST, max_examples=EXAMPLES)
@given(doc=specs(), batch=st.integers(1, 3))
def test_random_specs_peak_as_pytorch(doc, batch):
    agree_doc(doc, batch)


@pytest.mark.parametrize("type_name", sorted(set(RULES) & set(LAYERS) - ESTIMATED))
def test_each_layer_type_peaks_as_pytorch(type_name):
    @settings(FAST, max_examples=PER_TYPE)
    @given(doc=specs(force=type_name, wild=0.15), batch=st.integers(1, 2))
    def check(doc, batch):
        agree_doc(doc, batch)
    check()


# ---------------------------------------------------------------------------- bundled specs

# Where PyTorch's layout rules go beyond what calc tracks (contiguity, not strides), single layers
# differ, never the peak (docs/memory.md): ConvNeXt's first permute after each channels-last layer
# norm is a view in PyTorch (the depthwise convolution keeps the channels-last layout), a copy for
# calc; MaxViT's reshape that splits the last dimension of a split view is a view, a copy for calc.
LAYOUT = {"convnext_tiny", "maxvit_t"}
BUNDLED = sorted(p.stem for p in SPECS.glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_spec_peaks_as_pytorch(name):
    model = load_spec(str(SPECS / f"{name}.yaml")).build(REDUCED.get(name))
    kinds = {r.kind for r in leaves(analyze(model))}
    if kinds & ESTIMATED:
        pytest.skip(f"calc's peak of {sorted(kinds & ESTIMATED)} is an estimate")
    try:
        inference_peak(analyze(model), device="cpu")
    except CalcError as err:
        pytest.skip(str(err))
    assert assert_agree(model, 1, text=name, rows=name not in LAYOUT)


def test_the_peaks_that_changed():
    """The peaks calc printed before it played each layer's operations in order, and now: the old
    figures counted every intermediate at once (and a second softmax output)."""
    model = load_spec(str(SPECS / "alexnet_2012.yaml")).build()
    # before: 5,856,400 bytes at the first local response norm (x, its output, the padded squares
    # and two more tensors of x's size, all at once); PyTorch: 3,533,200
    assert measure_peak(model).bytes == inference_peak(analyze(model)).bytes == 3_533_200
    model = load_spec(str(SPECS / "swin_t.yaml")).build()
    # before: 11,578,112 (the broadcast add as a stack of its inputs); PyTorch: 10,838,016
    assert measure_peak(model).bytes == inference_peak(analyze(model)).bytes == 10_838_016


# ---------------------------------------------------------------------------- calc verify

def test_verify_memory_inference_cli(capsys):
    from calc.cli import main
    assert main(["verify", "--memory", "--inference", str(SPECS / "resnet18.yaml"), "--batch", "2"]) == 0
    out = capsys.readouterr().out
    # resnet18 at batch 2: the stem's batch norm holds its input and output, 2 × 2·64·112·112·4
    assert "agree: 69 layers and the peak" in out and "12,845,056" in out
    assert 2 * 2 * 64 * 112 * 112 * 4 == 12_845_056
    assert main(["verify", "--inference", str(SPECS / "resnet18.yaml")]) == 2
    assert "give it with --memory" in capsys.readouterr().err


def test_verify_memory_inference_exits_1_on_a_disagreement(capsys, monkeypatch):
    from calc.cli import main
    from calc.memory import saved as rules
    real = rules.RULES["relu"]
    monkeypatch.setitem(rules.RULES, "relu", lambda op: rules.Effect(real(op).saved, work=4))
    assert main(["verify", "--memory", "--inference", str(SPECS / "alexnet.yaml")]) == 1
    assert "DISAGREE" in capsys.readouterr().out
