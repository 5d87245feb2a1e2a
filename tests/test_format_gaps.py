"""Constructs of issue 12's second part: items that hold parameters but do not run at inference
(`inference: false`), and the traps that are now errors (a parallel branch emptied by `when`,
an output named `input`). Every expected number is derived by hand beside it."""
import pytest

from calc.errors import CalcError, SpecError
from helpers import run_text

AUX = """\
name: aux
input: [3, 8, 8]
layers:
  - conv2d: {name: c1, out: 4, kernel: 3, padding: 1}
  - group:
      name: aux
      inference: {flag}
      layers:
        - global_avgpool
        - linear: {out: 10}
  - conv2d: {out: 2, kernel: 1}
"""


def test_an_item_that_does_not_run_counts_parameters_not_operations():
    a = run_text(AUX.replace("{flag}", "false"))
    t = a.totals
    # c1: 3·9·4 + 4 = 112 parameters, 3·9·4 · 64 positions = 6,912 MACs.
    # aux: linear 4 → 10, 4·10 + 10 = 50 parameters, no MACs (it does not run).
    # last conv reads c1's 4×8×8 (the flow passes around aux): 4·2 + 2 = 10 parameters,
    # 4·2 · 64 = 512 MACs.
    assert t.params == 112 + 50 + 10
    assert t.macs == 6_912 + 512
    assert a.output_shape == (2, 8, 8)
    # activations: c1's 256 and the last conv's 128 elements only, 4 bytes each
    assert t.activation_bytes == (256 + 128) * 4
    rows = {r.name: r.result for r in a.rows()}
    assert rows["aux"].params == 50 and rows["aux"].macs == 0 and rows["aux.1"].macs == 0


def test_inference_true_is_an_ordinary_item():
    a = run_text(AUX.replace("{flag}", "true").replace("- conv2d: {out: 2, kernel: 1}", "- linear: {out: 3}"))
    # aux now runs: 4·10 = 40 MACs, then linear 10 → 3: 30 MACs + 33 parameters.
    assert a.totals.macs == 6_912 + 40 + 30
    assert a.totals.params == 112 + 50 + 33


def test_inference_must_be_a_truth_value():
    with pytest.raises(SpecError, match="inference must be true or false"):
        run_text(AUX.replace("{flag}", "3"))


def test_inception_v3_counts_its_auxiliary_classifier_in_parameters_only():
    from helpers import run_spec
    a = run_spec("inception_v3")
    aux = next(r.result for r in a.rows() if r.name == "AuxLogits")
    # AuxLogits (torchvision's InceptionAux(768, 1000)): conv0 768·128 + bn 2·128, conv1
    # 128·25·768 + bn 2·768, fc 768·1000 + 1000.
    assert aux.params == 768 * 128 + 256 + 128 * 25 * 768 + 1536 + 768 * 1000 + 1000 == 3_326_696
    assert aux.macs == 0
    # torchvision 0.28 publishes 27,161,264 parameters (with AuxLogits) and 5.713 GFLOPS.
    assert a.totals.params == 27_161_264 and round(a.totals.macs / 1e9, 3) == 5.713


BRANCH = """\
name: b
input: [4, 8, 8]
variables: {gate: false}
layers:
  - parallel:
      join: add
      branches:
        - - conv2d: {out: 4, kernel: 1, when: gate}
        - - conv2d: {out: 4, kernel: 1}
"""


def test_a_branch_emptied_by_when_is_an_error():
    with pytest.raises(SpecError, match=r"every item of this branch is left out by its 'when'") as info:
        run_text(BRANCH)
    assert "branches[0]" in str(info.value)
    # with the gate on, the branch is a convolution: 2 × (4·4 + 4) parameters
    assert run_text(BRANCH, set={"gate": True}).totals.params == 40


def test_an_explicit_empty_branch_is_still_the_identity():
    a = run_text(BRANCH.replace("- - conv2d: {out: 4, kernel: 1, when: gate}", "- []"))
    # the identity plus one 1×1 convolution: 4·4 + 4 = 20 parameters, 16 · 64 = 1,024 MACs
    assert a.totals.params == 20 and a.totals.macs == 1_024


def test_naming_an_output_input_is_an_error():
    with pytest.raises(SpecError, match="'input' is the name of the model's input"):
        run_text("name: n\ninput: [3]\nlayers:\n  - linear: {out: 2, name: input}\n")


# ---------------------------------------------------------------------------- expressions

from calc.expr import evaluate  # noqa: E402


@pytest.mark.parametrize("text, value", [
    ("'relu' == act", True),          # quoted text against the word a parameter holds
    ("act != \"relu\"", False),
    ("log(8, 2)", 3.0),
    ("round(exp(log(48)))", 48),
    ("sqrt(16)", 4.0),
    ("range(4)", [0, 1, 2, 3]),
    ("sum(range(1, 5))", 10),         # 1 + 2 + 3 + 4
    ("len(range(0, 10, 3))", 4),      # 0, 3, 6, 9
    ("cfg[1][0]", 8),
])
def test_expression_additions(text, value):
    assert evaluate(text, {"act": "relu", "cfg": [[4, 3], [8, 1]]}) == value


@pytest.mark.parametrize("text, message", [
    ("exp(1000)", "exp()"), ("sqrt(-1)", "sqrt()"), ("log(0)", "log()"),
    ("range(10**6)", "at most 10,000"), ("'a' < 3", "cannot compare the word 'a' with 3"),
    ("range(1.5)", "whole numbers"),
])
def test_expression_additions_are_bounded(text, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(text, {})


NESTED = """\
name: nest
input: [3, 8, 8]
variables:
  cfg: [[4, 3], [8, 1]]     # out, kernel per layer
  act: relu
blocks:
  conv_act:
    params: {out: null, kernel: 1, act: relu}
    layers:
      - conv2d: {out: out, kernel: kernel, padding: kernel // 2}
      - relu: {when: "act == 'relu'"}
      - hardswish: {when: "act == 'hardswish'"}
layers:
  - repeat:
      times: len(cfg)
      index: i
      layers:
        - conv_act: {out: "cfg[i][0]", kernel: "cfg[i][1]", act: act}
"""


def test_a_table_of_rows_and_a_word_parameter():
    a = run_text(NESTED)
    # 3×3 conv 3 → 4: 3·9·4 + 4 = 112; 1×1 conv 4 → 8: 4·8 + 8 = 40. MACs at 8×8 = 64
    # positions: 108·64 = 6,912 and 32·64 = 2,048.
    assert (a.totals.params, a.totals.macs) == (152, 8_960)
    assert [r.result.kind for r in a.rows(leaves_only=True)] == ["conv2d", "relu", "conv2d", "relu"]


def test_set_a_table_and_a_word(capsys):
    from calc.cli import parse_sets
    sets = parse_sets(["cfg=[[2,1]]", "act=hardswish"])
    assert sets == {"cfg": [[2, 1]], "act": "hardswish"}
    a = run_text(NESTED, set=sets)
    # one 1×1 conv 3 → 2: 3·2 + 2 = 8 parameters, 6·64 = 384 MACs; then hard-swish
    assert (a.totals.params, a.totals.macs) == (8, 384)
    assert [r.result.kind for r in a.rows(leaves_only=True)] == ["conv2d", "hardswish"]
    assert parse_sets(["cfg=[]"]) == {"cfg": []}
    with pytest.raises(SpecError, match="nest up to three levels"):
        parse_sets(["cfg=[[[[1]]]]"])


def test_tie_to_a_name_used_twice_is_an_error():
    text = """\
name: t
input: [5]
input_kind: tokens
layers:
  - parallel:
      join: add
      branches:
        - - embedding: {vocab: 10, dim: 4, name: e}
        - - embedding: {vocab: 10, dim: 4, name: e}
  - linear: {out: 10, bias: false, tie: e}
"""
    with pytest.raises(CalcError, match="tie: 2 earlier layers are named 'e'"):
        run_text(text)


# ---------------------------------------------------------------------------- layers as block parameters

LAYER_ARGS = """\
name: layer_args
input: [3, 8, 8]
blocks:
  conv_norm_act:
    params: {out: null, norm_layer: batchnorm2d, activation_layer: relu}
    layers:
      - conv2d: {out: out, kernel: 3, padding: 1, bias: false}
      - norm_layer
      - activation_layer: {name: act}
layers:
  - conv_norm_act: {out: 4}
  - conv_norm_act: {out: 4, norm_layer: identity, activation_layer: ACT}
"""


def test_a_block_parameter_names_the_layer_type_its_body_uses():
    a = run_text(LAYER_ARGS.replace("ACT", "hardswish"))
    kinds = [(r.name, r.result.kind) for r in a.rows(leaves_only=True)]
    # torchvision's Conv2dNormActivation with its defaults, then with norm_layer=None
    # (identity here) and activation_layer=nn.Hardswish
    assert kinds == [("0.0", "conv2d"), ("0.1", "batchnorm2d"), ("0.act", "relu"),
                     ("1.0", "conv2d"), ("1.1", "identity"), ("1.act", "hardswish")]
    # conv 3 → 4, 3×3, no bias: 3·9·4 = 108 weights; batch norm γ, β: 8; conv 4 → 4: 4·9·4 = 144;
    # 108 + 8 + 144 = 260
    assert a.totals.params == 260


def test_a_layer_parameter_that_names_no_layer_is_an_error():
    with pytest.raises(SpecError, match=r"'activation_layer' is used as an item's type, so its value must name "
                                        r"a layer type or a block; it is 'squeeze'"):
        run_text(LAYER_ARGS.replace("ACT", "squeeze"))
