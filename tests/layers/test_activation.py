"""Activations, PReLU, layer scale and softmax, each type with a case derived by hand: output
shape, parameters and every elementary operation (the derivation beside each number)."""
import pytest

from calc.render.catalog import describe_layers
from calc.layers import LAYERS, NO_PARAMS, Params
from helpers import evaluate_layer as evaluate

# AlexNet's first feature map: 64×55×55 = 193,600 elements
SHAPE, X = (64, 55, 55), 193_600


@pytest.mark.parametrize("type_name, per_element", [
    ("relu", {"cmp": 1}),                                   # max(0, a): one comparison
    ("relu6", {"cmp": 2}),                                  # min(max(0, a), 6): two
    ("leaky_relu", {"cmp": 1, "mul": 1}),                   # sign test; slope·a, counted branch-free
    ("elu", {"cmp": 1, "exp": 1, "add": 1, "mul": 1}),      # sign test; α·(e^a − 1)
    ("sigmoid", {"mul": 1, "exp": 1, "add": 1, "div": 1}),  # 1 / (1 + e^(−a)): negate, exp, +1, divide
    ("tanh", {"mul": 1, "exp": 1, "add": 2, "div": 1}),     # 1 − 2 / (e^(2a) + 1): double, exp, +1, divide, 1 −
    ("gelu", {"div": 1, "fn": 1, "add": 1, "mul": 2}),      # a/2·(1 + erf(a/√2)): /√2, erf, +1, ·a, /2 as a mul
    ("silu", {"mul": 2, "exp": 1, "add": 1, "div": 1}),     # a·sigmoid(a): the sigmoid's four, and ·a
    ("hardswish", {"add": 1, "cmp": 2, "mul": 1, "div": 1}),  # a·min(max(a + 3, 0), 6)/6
    ("hardsigmoid", {"add": 1, "cmp": 2, "div": 1}),        # min(max(a + 3, 0), 6)/6
    # log(1 + e^(β·a))/β, or a where β·a > threshold: β·a, the test, exp, +1, log, /β
    ("softplus", {"mul": 1, "cmp": 1, "exp": 1, "add": 1, "fn": 1, "div": 1}),
])
def test_activation(type_name, per_element):
    out, p, ops = evaluate(type_name, SHAPE)
    assert out == SHAPE and p == NO_PARAMS
    # every listed operation once per element and count: e.g. gelu's mul = 2 · 193,600 = 387,200
    assert {k: v for k, v in ops.items() if v} == {k: n * X for k, n in per_element.items()}
    # the table the quantities are built from is the one the recurrent cells read
    assert LAYERS[type_name].per_element == per_element


def test_activation_arguments_change_no_count():
    # the slope, α and the tanh form of GELU are constants: the same operations per element
    assert evaluate("leaky_relu", SHAPE, negative_slope=0.2)[2] == evaluate("leaky_relu", SHAPE)[2]
    assert evaluate("elu", SHAPE, alpha=0.5)[2] == evaluate("elu", SHAPE)[2]
    assert evaluate("gelu", SHAPE, approximate="tanh")[2] == evaluate("gelu", SHAPE)[2]
    assert evaluate("softplus", SHAPE, beta=2, threshold=10)[2] == evaluate("softplus", SHAPE)[2]


def test_prelu():
    # one learned slope per channel: 64 weights; a sign test and a multiply per element
    out, p, ops = evaluate("prelu", SHAPE, num_parameters=64)
    assert out == SHAPE and p == Params(64)
    assert ops == {"cmp": X, "mul": X}                      # 193,600 each
    assert evaluate("prelu", SHAPE)[1] == Params(1)         # one shared slope
    with pytest.raises(ValueError, match="num_parameters=3 must be 1 or the channel count"):
        evaluate("prelu", SHAPE, num_parameters=3)


def test_layer_scale():
    # CaiT/ViT tokens 197×768, scaled along the features: 768 weights, one multiply per element
    out, p, ops = evaluate("layer_scale", (197, 768), dim=-1)
    assert out == (197, 768) and p == Params(768)
    assert ops == {"mul": 197 * 768}                        # 151,296
    # ConvNeXt's per-channel scale on 96×56×56 (dim 0 by default): 96 weights
    _, p, ops = evaluate("layer_scale", (96, 56, 56))
    assert p == Params(96) and ops["mul"] == 96 * 56 * 56   # 301,056
    with pytest.raises(ValueError):
        evaluate("layer_scale", (4, 5), dim=2)


def test_softmax():
    # attention scores of 12 heads, 197×197, along the last dim: rows = 12·197 = 2,364 of n = 197
    out, p, ops = evaluate("softmax", (12, 197, 197))
    assert out == (12, 197, 197) and p == NO_PARAMS
    assert ops["rows"] == 2364
    assert ops["exp"] == 2364 * 197                         # one exponential per element = 465,708
    assert ops["add"] == 2364 * 196                         # n − 1 adds per row sum = 463,344
    assert ops["div"] == 2364 * 197                         # each exponential over its row's sum = 465,708
    # along dim 0 of (3, 4, 5): 20 rows of 3
    _, _, ops = evaluate("softmax", (3, 4, 5), dim=0)
    assert (ops["rows"], ops["exp"], ops["add"], ops["div"]) == (20, 60, 40, 60)
    with pytest.raises(ValueError):
        evaluate("softmax", (3, 4, 5), dim=3)


def test_explanation_and_catalog_come_from_the_declarations():
    steps = {s.key: s for s in LAYERS["gelu"]().explain(SHAPE, SHAPE)}
    assert (steps["mul"].formula, steps["mul"].substituted, steps["mul"].value) == ("2·x", "2·193600", 387_200)
    assert steps["mul"].note == "per element: halve; times the input"
    assert steps["shape"].formula == "input (unchanged)"
    # `calc layers` prints the same declarations
    text = describe_layers()
    section = text[text.index("\nsigmoid  ["):]
    assert "\n    mul: 1·x\n    exp: 1·x\n    add: 1·x\n    div: 1·x\n\n" in section
    section = text[text.index("\nsoftmax  ["):]
    assert "\n    rows: x/n\n    exp: rows·n\n    add: rows·(n − 1)\n    div: rows·n\n\n" in section
