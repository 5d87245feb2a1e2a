"""calc against an independent oracle: the same spec built as a PyTorch module.

PyTorch constructs every layer from the tensor that actually reaches it, allocates its
parameters, computes its output and counts FLOPs with ``torch.utils.flop_counter``; calc must
agree exactly on parameters, buffers, every leaf's output shape and parameters, and the standard
FLOPs (per leaf and in total). A spec that one side refuses must be refused by the other.

Skipped when PyTorch is not installed. ``CALC_ORACLE_EXAMPLES`` sets how many random stacks one
run generates (default 300); each layer type additionally gets its own examples.
"""
import os
import textwrap

import pytest

torch = pytest.importorskip("torch")

import yaml  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from calc import analyze, load_spec, parse_spec  # noqa: E402
from calc.errors import CalcError, OracleError, ShapeError  # noqa: E402
from calc.layers import LAYERS  # noqa: E402
from calc import oracle  # noqa: E402
from calc.verify import compare  # noqa: E402
from conftest import SPECS  # noqa: E402
from spec_strategies import specs  # noqa: E402

EXAMPLES = int(os.environ.get("CALC_ORACLE_EXAMPLES", "300"))
PER_TYPE = int(os.environ.get("CALC_ORACLE_PER_TYPE", "8"))
FAST = settings(deadline=None, suppress_health_check=list(HealthCheck))


def both(doc: dict, batch: int):
    """(calc outcome, torch outcome): an Analysis or the CalcError, a Measured or TorchRejected."""
    text = yaml.safe_dump(doc, sort_keys=False)
    model = parse_spec(text, "generated.yaml").build()
    try:
        calc = analyze(model, batch=batch)
    except ShapeError as err:
        calc = err
    try:
        torch_side = oracle.measure(model, batch=batch)
    except oracle.TorchRejected as err:
        torch_side = err
    return text, calc, torch_side


def assert_agree(doc: dict, batch: int):
    text, calc, measured = both(doc, batch)
    calc_fails = isinstance(calc, CalcError)
    torch_fails = isinstance(measured, oracle.TorchRejected)
    if calc_fails or torch_fails:
        assert calc_fails and torch_fails, (
            f"only {'calc' if calc_fails else 'PyTorch'} refuses this spec:\n{text}\n"
            f"calc: {calc if calc_fails else 'ok'}\ntorch: {measured if torch_fails else 'ok'}")
        return False
    totals, leaves = compare(calc, measured)
    bad = [c for c in totals if not c.ok] + [leaf for leaf in leaves if not leaf.ok]
    assert not bad, f"calc and PyTorch disagree on\n{text}\nbatch {batch}\n" + "\n".join(map(str, bad))
    return True


# ---------------------------------------------------------------------------- coverage

def test_every_layer_type_has_a_builder():
    missing = sorted(set(LAYERS) - set(oracle.BUILDERS))
    assert not missing, f"the oracle cannot build: {missing}"


def test_a_type_without_builder_is_named(monkeypatch):
    monkeypatch.delitem(oracle.BUILDERS, "relu")
    model = parse_spec("name: x\ninput: [2, 3]\nlayers: [relu]\n").build()
    with pytest.raises(OracleError, match="no builder for layer type 'relu'"):
        oracle.measure(model)


# ---------------------------------------------------------------------------- random specs

@settings(FAST, max_examples=EXAMPLES)
@given(doc=specs(), batch=st.integers(1, 3))
def test_random_specs_agree_with_pytorch(doc, batch):
    assert_agree(doc, batch)


# moe and mla are also checked against Hugging Face transformers (tests/test_hf_oracle.py: Mixtral,
# Qwen3-MoE and DeepSeek-V3 models, prefill and cached decode, exact).
@pytest.mark.parametrize("type_name", sorted(LAYERS))
def test_each_layer_type_agrees_with_pytorch(type_name):
    @settings(FAST, max_examples=PER_TYPE)
    @given(doc=specs(force=type_name, wild=0.15), batch=st.integers(1, 2))
    def check(doc, batch):
        assert_agree(doc, batch)
    check()


# ---------------------------------------------------------------------------- chosen cases

CASES = {
    # PyTorch keeps a window that starts inside the left padding in ceil mode, even when the
    # window is longer than the padded input (torch gives 1 output where calc used to refuse).
    "ceil_mode_window_longer_than_input": """
        input: [1, 1]
        layers: [{maxpool1d: {kernel: 4, stride: 2, padding: 1, ceil_mode: true}}]""",
    "avgpool_ceil_mode_short_input": """
        input: [2, 2, 3]
        layers: [{avgpool2d: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}}]""",
    "channel_shuffle_needs_spatial_dims": """
        input: [6]
        layers: [{channel_shuffle: {groups: 3}}]""",
    "upsample_to_zero": """
        input: [2, 1]
        layers: [{upsample: {scale: 0.5}}]""",
    "nearest_align_corners": """
        input: [2, 4]
        layers: [{upsample: {scale: 2, align_corners: true}}]""",
    "residual_with_projection_and_names": """
        input: [4, 8, 8]
        layers:
          - conv2d: {out: 8, kernel: 3, padding: 1, name: stem}
          - residual:
              main: [{conv2d: {out: 8, kernel: 3, stride: 2, padding: 1}}, batchnorm2d, relu]
              shortcut: [{conv2d: {out: 8, kernel: 1, stride: 2, bias: false}}]
          - upsample: {scale: 2, mode: bilinear}
          - concat: {with: [stem]}
          - conv2d: {out: 3, kernel: 1, from: stem, trainable: false}
          - mul: {with: [input]}""",
    "cross_attention_and_tied_head": """
        input: [6]
        input_kind: tokens
        layers:
          - embedding: {vocab: 11, dim: 8, name: wte}
          - pos_embedding: {max_len: 6}
          - lstm: {hidden: 4, bidirectional: true, name: memory}
          - attention: {heads: 2, kv_heads: 1, from: wte, name: self, causal: true}
          - attention: {heads: 4, head_dim: 3, kv: memory, out: 8, packed: true}
          - rmsnorm
          - linear: {out: 11, bias: false, tie: wte}""",
    "vit_like_tokens": """
        input: [3, 8, 8]
        layers:
          - conv2d: {out: 6, kernel: 4, stride: 4}
          - to_tokens
          - class_token: {name: input_tokens}
          - pos_embedding: {max_len: 5}
          - type_embedding
          - gru: {hidden: 6, num_layers: 2}
          - rnn: {hidden: 6, nonlinearity: relu}
          - residual: {main: [{attention: {heads: 3}}]}
          - select_token: {index: 1, name: first}
          - token_mean: {from: input_tokens}
          - add: {with: [first]}""",
    "tokens_back_to_image": """
        input: [4, 3, 3]
        layers:
          - to_tokens
          - attention: {heads: 2, bias: false}
          - to_image
          - conv2d: {out: 2, kernel: 3}""",
    "same_name_twice": """
        input: [2, 4]
        layers:
          - relu: {name: a}
          - tanh: {name: a}
          - add: {with: [a, input]}
          - group: {name: a, layers: [{linear: {out: 3}}]}""",
    "repeat_and_block_with_params": """
        input: [3, 9, 9]
        variables: {w: 2}
        blocks:
          down:
            params: {c: null}
            layers: [{conv2d: {out: c, kernel: 3, stride: 2, padding: same}}]
          dw:
            params: {c: null}
            layers: [{conv2d: {out: c, kernel: 3, padding: 1, groups: c}}, {layernorm: {channels: true}}]
        layers:
          - repeat: {times: 2, layers: [{conv2d: {out: w * 3, kernel: 1}}, dw: {c: 6}]}
          - repeat: {times: 3, layers: [{maxpool2d: {kernel: 2, ceil_mode: true}}]}""",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_chosen_cases(name):
    doc = yaml.safe_load("name: case\n" + textwrap.dedent(CASES[name]))
    for batch in (1, 2):
        assert_agree(doc, batch)


# ---------------------------------------------------------------------------- bundled specs

# The bundled LLMs (billions of parameters; mixtures of experts and latent attention) are checked
# against Hugging Face transformers on the meta device and on tiny configs instead
# (tests/test_hf_oracle.py); GPT-2 small and BERT-base stay here. The T5 encoder–decoders (two
# inputs) are checked against transformers (tests/test_hf_t5.py) and, at a reduced size, against
# the oracle with one tensor per input (tests/test_oracle_inputs.py).
LLMS = ({p.stem for p in (SPECS.parent / "tests" / "data" / "hf_configs").glob("*.json")} - {"gpt2", "bert_base"}
        | {p.stem for p in (SPECS.parent / "tests" / "data" / "hf_t5_configs").glob("*.json")})
BUNDLED = sorted(p.stem for p in SPECS.glob("*.yaml") if p.stem not in LLMS)


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_spec_agrees_with_pytorch(name):
    model = load_spec(str(SPECS / f"{name}.yaml")).build()
    batch = 1
    calc = analyze(model, batch=batch)
    measured = oracle.measure(model, batch=batch)
    totals, leaves = compare(calc, measured)
    bad = [c for c in totals if not c.ok] + [leaf for leaf in leaves if not leaf.ok]
    assert not bad, "\n".join(map(str, bad))
    assert len(leaves) == calc.root.leaves


# The mixtures of experts at a reduced size (transformers checks them at full structure in
# tests/test_hf_oracle.py): calc's oracle builds moe and mla too, with round-robin routing.
MOE_REDUCED = {
    "mixtral_8x7b": {"seq": 16, "d": 64, "heads": 4, "kv_heads": 2, "depth": 2, "ffn": 32, "vocab": 100, "experts": 4},
    "deepseek_v3": {"seq": 16, "d": 64, "heads": 4, "dense_layers": 1, "moe_layers": 2, "ffn": 32, "vocab": 100,
                    "experts": 8, "expert_ffn": 16},
}


@pytest.mark.parametrize("name,absorbed", [("mixtral_8x7b", False), ("deepseek_v3", False), ("deepseek_v3", True)])
def test_mixtures_of_experts_verify_at_reduced_size(name, absorbed):
    from calc.verify import verify
    values = {**MOE_REDUCED[name], **({"absorbed": True} if absorbed else {})}
    model = load_spec(str(SPECS / f"{name}.yaml")).build(values)
    for batch in (1, 2):
        v = verify(model, batch=batch)
        assert all(c.ok for c in v.totals) and all(leaf.ok for leaf in v.leaves), "\n".join(map(str, v.totals))
        # the presets refuse these models (a ConventionError: Mixtral's rotary attention first,
        # DeepSeek's mla) and verify says why, naming the layer
        want = "attention" if name == "mixtral_8x7b" else "cannot count layer type 'mla'"
        assert v.presets and all(c.ok is None and want in c.note for c in v.presets), [c.note for c in v.presets]


# ---------------------------------------------------------------------------- calc verify

def test_verify_cli_agrees_and_exits_0(capsys):
    from calc.cli import main
    code = main(["verify", str(SPECS / "alexnet.yaml"), "--input", "3x127x127", "--batch", "2"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "agree: 22 layers and every total" in out
    assert "features.0" in out and "parameters" in out and "FlopCounterMode" in out


def test_verify_exits_1_on_a_disagreement(capsys, monkeypatch):
    from calc.cli import main
    # A sabotaged builder: PyTorch's linear gets one more output than the spec says.
    real = oracle.BUILDERS["linear"]
    monkeypatch.setitem(oracle.BUILDERS, "linear",
                        lambda layer, shape: real(layer.model_copy(update={"out": layer.out + 1}), shape))
    code = main(["verify", str(SPECS / "alexnet.yaml"), "--input", "3x63x63"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "DISAGREE" in out and "DIFFERS" in out


def test_verify_refuses_what_would_not_fit(capsys):
    from calc.cli import main
    code = main(["verify", str(SPECS / "alexnet.yaml"), "--batch", "1000000"])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: ") and "bytes" in err


def test_oracle_refuses_models_too_large_to_build():
    model = parse_spec("name: x\ninput: [2]\nlayers: [{repeat: {times: 1000000, layers: [relu]}}]\n").build()
    with pytest.raises(OracleError, match="at most"):
        oracle.measure(model)


# ---------------------------------------------------------------------------- counting tools

TOOL_REFERENCE = {"torch": "torch_flops", "thop": "thop_macs", "ptflops": "ptflops_pytorch_macs",
                  "ptflops-aten": "ptflops_aten_macs", "fvcore": "fvcore_flops",
                  "torchinfo": "torchinfo_mult_adds"}


@pytest.mark.parametrize("tool", sorted(TOOL_REFERENCE))
@pytest.mark.parametrize("name", ["alexnet", "vgg11", "vgg16_bn", "resnet18", "resnet50", "mobilenet_v2",
                                  "googlenet", "densenet121", "squeezenet1_0", "efficientnet_b0"])
def test_tools_on_the_oracle_module_give_their_torchvision_figures(tool, name):
    # The oracle's module must look to each tool like torchvision's: the tool's figure on it is
    # the one recorded for torchvision's model (tests/reference_data.py), and calc's preset of
    # that name gives it too. Runs where the tools are installed (`pip install '.[tools]'`, as CI does).
    from reference_data import REFERENCE
    from calc.conventions import CONVENTIONS
    if not oracle.tool_available(tool):
        pytest.skip(f"{oracle.TOOLS[tool].package} is not installed")
    model = load_spec(str(SPECS / f"{name}.yaml")).build()
    measured = oracle.measure(model)
    value = oracle.run_tool(tool, measured.module, measured.input_shape, 1)
    assert value == REFERENCE[name][TOOL_REFERENCE[tool]]
    if tool in CONVENTIONS:
        totals = analyze(model, convention=tool).totals
        assert value == getattr(totals, oracle.TOOLS[tool].measure)


def test_verify_sets_a_preset_beside_its_tool():
    # verify runs FlopCounterMode itself for the `torch` preset and shows both figures.
    from calc.verify import verify
    model = load_spec(str(SPECS / "resnet18.yaml")).build(input_shape=(3, 99, 99))
    result = verify(model, batch=2)
    checks = {c.what: c for c in result.presets}
    torch_check = checks["preset torch"]
    assert torch_check.ok is True and torch_check.calc == torch_check.torch
    assert all(c.ok is None or c.what == "preset torch" or oracle.tool_available(c.what[7:])
               for c in result.presets)
    assert result.ok
