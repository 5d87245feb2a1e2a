"""Convolutions and linear layers, each type with a case derived by hand: output shape,
parameters and every elementary operation (the derivation beside each number)."""
import pytest

from calc.formula import Q, compile_quantities, render
from calc.layers import LAYERS, Params
from calc.render.catalog import describe_layers
from helpers import evaluate_layer as evaluate


def test_conv1d():
    # 16×100 input, 32 filters of width 5, stride 2, padding 1:
    # L_out = floor((100 + 2·1 − 1·(5 − 1) − 1)/2) + 1 = floor(97/2) + 1 = 49
    out, p, ops = evaluate("conv1d", (16, 100), out=32, kernel=5, stride=2, padding=1)
    assert out == (32, 49)
    assert p == Params(5 * 16 * 32, 32)                  # 2,560 weights, one bias per filter
    assert ops["mac"] == 32 * 49 * 16 * 5                 # 1,568 outputs × 80 weights each = 125,440
    assert ops["dots"] == ops["bias_add"] == 32 * 49      # one dot product and one bias add per output


def test_conv2d_grouped_dilated():
    # 64×28×28, 128 filters 3×3, groups 4 (16 input channels per group), dilation 2, padding 2:
    # H_out = floor((28 + 4 − 2·2 − 1)/1) + 1 = 28; no bias
    out, p, ops = evaluate("conv2d", (64, 28, 28), out=128, kernel=3, padding=2, dilation=2, groups=4, bias=False)
    assert out == (128, 28, 28)
    assert p == Params(3 * 3 * 16 * 128, 0)               # 18,432 weights
    assert ops["mac"] == 128 * 28 * 28 * 16 * 9           # 100,352 outputs × 144 = 14,450,688
    assert ops["bias_add"] == 0 and ops["dots"] == 128 * 28 * 28


def test_conv2d_same_padding_even_kernel():
    # padding 'same' keeps 10×10 even for a 4×4 kernel (PyTorch pads 1 left, 2 right)
    out, p, ops = evaluate("conv2d", (3, 10, 10), out=8, kernel=4, padding="same")
    assert out == (8, 10, 10)
    assert ops["mac"] == 8 * 100 * 3 * 16                 # 800 outputs × 48 weights = 38,400
    with pytest.raises(ValueError, match="stride 1"):
        LAYERS["conv2d"](out=8, kernel=4, padding="same", stride=2).evaluate((3, 10, 10))


def test_conv3d():
    # 3×16×112×112 video clip, 64 filters 3×7×7, stride (1, 2, 2), padding (1, 3, 3):
    # D_out = floor((16 + 2 − 2 − 1)/1) + 1 = 16; H_out = floor((112 + 6 − 6 − 1)/2) + 1 = 56
    out, p, ops = evaluate("conv3d", (3, 16, 112, 112), out=64, kernel=(3, 7, 7), stride=(1, 2, 2),
                           padding=(1, 3, 3))
    assert out == (64, 16, 56, 56)
    assert p == Params(3 * 49 * 3 * 64, 64)               # 28,224 weights + 64 biases
    assert ops["mac"] == 64 * 16 * 56 * 56 * 3 * 147      # 3,211,264 outputs × 441 = 1,416,167,424


@pytest.mark.parametrize("type_name, shape, out", [
    # (in − 1)·s − 2p + d(k − 1) + output_padding + 1 = (7 − 1)·2 − 2 + 2 + 1 + 1 = 14
    ("conv_transpose1d", (8, 7), (4, 14)),
    ("conv_transpose2d", (8, 7, 7), (4, 14, 14)),
    ("conv_transpose3d", (8, 7, 7, 7), (4, 14, 14, 14)),
])
def test_conv_transpose(type_name, shape, out):
    dims = len(shape) - 1
    got, p, ops = evaluate(type_name, shape, out=4, kernel=3, stride=2, padding=1, output_padding=1)
    assert got == out
    assert p == Params(8 * 4 * 3 ** dims, 4)              # every input channel feeds the 4 outputs
    # each of the 8·7^d input elements meets every one of its 4·3^d weights
    assert ops["mac"] == 8 * 7 ** dims * 4 * 3 ** dims
    assert ops["dots"] == ops["bias_add"] == 4 * 14 ** dims


def test_linear_rows():
    # (197, 768) tokens through 768 → 3,072: 197 rows, each a 768×3,072 product
    out, p, ops = evaluate("linear", (197, 768), out=3072)
    assert out == (197, 3072)
    assert p == Params(768 * 3072, 3072)                  # 2,359,296 + 3,072
    assert ops["mac"] == 197 * 768 * 3072                 # 464,781,312
    assert ops["bias_add"] == ops["dots"] == 197 * 3072
    assert ops["rows"] == 197
    with pytest.raises(ValueError, match="states in=5"):
        LAYERS["linear"](out=3, **{"in": 5}).evaluate((4,))


def test_refusals_name_the_reason():
    with pytest.raises(ValueError, match="not divisible by groups=3"):
        LAYERS["conv2d"](out=6, kernel=1, groups=3).evaluate((4, 8, 8))
    with pytest.raises(ValueError, match="larger than the padded input"):
        LAYERS["conv2d"](out=6, kernel=5).evaluate((4, 3, 3))
    with pytest.raises(ValueError, match="output_padding 2 must be smaller"):
        LAYERS["conv_transpose2d"](out=6, kernel=3, stride=2, output_padding=2).evaluate((4, 3, 3))


def test_layers_text_is_the_declaration():
    text = describe_layers()
    block = text[text.index("conv2d  [conv]"):]
    block = block[:block.index("\n\n")]
    decl = {q.name: q for q in LAYERS["conv2d"].quantities}
    # the text calc layers prints is rendered from the very template the counts are compiled from
    assert f"    mac: {render(decl['mac'].expr, str)}" in block
    assert "    mac: outputs·C_in/g·K_h·K_w" in block
    assert "    biases: C_out   (if bias)" in block


def test_compiled_declarations_are_exact_and_ordered():
    qs = (Q("n", "floor((a + 2 * p - k) / s) + 1"), Q("m", "ceil(a / s)"), Q("t", "n * m", when="f"))
    fill, run = compile_quantities("test", qs, ("n",), ("", "", ""), ("m", "t"))
    big = 2 ** 70 + 1   # beyond a float's 53 bits: the divisions must stay integer divisions
    v = fill({"a": big, "p": 0, "k": 1, "s": 2, "f": 1})
    assert v["n"] == (big - 1) // 2 + 1 and v["m"] == -(-big // 2)
    assert v["t"] == v["n"] * v["m"]
    assert run({"a": 9, "p": 0, "k": 1, "s": 2, "f": 0}) == ((5,), (0, 0, 0), {"m": 5, "t": 0})
    with pytest.raises(RuntimeError, match="uses"):
        compile_quantities("bad", (Q("x", "__import__('os')"),), (), ("", "", ""), ())
