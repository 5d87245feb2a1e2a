"""Pooling and resampling layers, each type with a case derived by hand: output shape, no
parameters, and every elementary operation (the derivation beside each number). The shapes
were also checked once against PyTorch 2.13 (nn.MaxPool*, nn.AvgPool*, F.interpolate)."""
from fractions import Fraction

import pytest

from calc.cli import main
from calc.formula import render
from calc.conventions.tools.ptflops import upsample_size
from calc.conventions.tools.thop import adaptive_avgpool as _thop_adaptive
from calc.layers import LAYERS, NO_PARAMS


def evaluate(type_name, shape, **args):
    layer = LAYERS[type_name](**args)
    out, params, ops = layer.evaluate(shape)
    # the slow path (the full symbol table, used by explain) agrees with the one the analysis takes
    assert (layer.infer(shape), layer.params(shape), layer.ops(shape, out)) == (out, params, ops)
    assert params == NO_PARAMS   # no pooling or resampling layer has parameters or buffers
    return out, ops


# ---------------------------------------------------------------------------- max / average pooling

def test_maxpool1d_dilated():
    # 4×20, kernel 3, stride 2, padding 1, dilation 2: the window spans 2·(3 − 1) + 1 = 5;
    # L_out = floor((20 + 2·1 − 5)/2) + 1 = floor(17/2) + 1 = 9
    out, ops = evaluate("maxpool1d", (4, 20), kernel=3, stride=2, padding=1, dilation=2)
    assert out == (4, 9)
    assert ops["cmp"] == 4 * 9 * 2                       # 36 windows of 3 values, 2 comparisons each = 72


def test_maxpool1d_ceil_mode_keeps_a_window_longer_than_the_input():
    # 2 values, kernel 4, stride 3: floor mode has no window ((2 − 4)/3 < 0); ceil mode rounds
    # ceil(−2/3) + 1 = 1, and that window starts inside the input, so PyTorch keeps it
    out, ops = evaluate("maxpool1d", (1, 2), kernel=4, stride=3, ceil_mode=True)
    assert out == (1, 1) and ops["cmp"] == 3             # the declared ∏K − 1 for the one window
    with pytest.raises(ValueError, match="window 4 is larger than the padded input 2"):
        LAYERS["maxpool1d"](kernel=4, stride=3).evaluate((1, 2))


def test_maxpool2d_ceil_mode():
    # GoogLeNet's first pool: 64×112×112, kernel 3, stride 2, ceil_mode:
    # ceil((112 − 3)/2) + 1 = 55 + 1 = 56 (floor would give 55); the 56th window starts at
    # 55·2 = 110 < 112, inside the input, so it stays
    out, ops = evaluate("maxpool2d", (64, 112, 112), kernel=3, stride=2, ceil_mode=True)
    assert out == (64, 56, 56)
    assert ops["outputs"] == 64 * 56 * 56                # 200,704 output elements
    assert ops["cmp"] == 64 * 56 * 56 * 8                # 3·3 − 1 = 8 each: 1,605,632
    assert ops.get("mul", 0) == ops.get("add", 0) == 0


def test_maxpool3d():
    # C3D's first pool: 64×16×112×112, kernel (1, 2, 2), stride (1, 2, 2) halves H and W only
    out, ops = evaluate("maxpool3d", (64, 16, 112, 112), kernel=(1, 2, 2), stride=(1, 2, 2))
    assert out == (64, 16, 56, 56)
    assert ops["cmp"] == 64 * 16 * 56 * 56 * 3           # 3,211,264 windows of 4 values: 9,633,792


def test_avgpool1d():
    # 8×10, kernel 4, stride 3: L_out = floor((10 − 4)/3) + 1 = 3
    out, ops = evaluate("avgpool1d", (8, 10), kernel=4, stride=3)
    assert out == (8, 3)
    assert ops["add"] == 8 * 3 * 3                       # 24 windows, 4 − 1 adds each = 72
    assert ops["div"] == 24                              # one division per output element


def test_avgpool2d_ceil_mode_adds_one_window_and_drops_another():
    # 3×5×6, kernel (2, 3), stride 2, padding 1, ceil_mode:
    # H: ceil((5 + 2 − 2)/2) + 1 = 4, but the 4th window would start at 3·2 = 6 ≥ 5 + 1 (in the
    #    right padding), so H_out = 3 (as floor mode);
    # W: ceil((6 + 2 − 3)/2) + 1 = 4, the 4th starts at 6 < 6 + 1: kept (floor mode gives 3)
    out, ops = evaluate("avgpool2d", (3, 5, 6), kernel=(2, 3), stride=2, padding=1, ceil_mode=True)
    assert out == (3, 3, 4)
    assert ops["add"] == 36 * 5                          # 3·3·4 = 36 windows of 2·3 values: 180
    assert ops["div"] == 36
    assert evaluate("avgpool2d", (3, 5, 6), kernel=(2, 3), stride=2, padding=1)[0] == (3, 3, 3)


def test_avgpool3d():
    # 4×8×8×8, kernel 2, stride 2, padding 1: each size floor((8 + 2 − 2)/2) + 1 = 5
    out, ops = evaluate("avgpool3d", (4, 8, 8, 8), kernel=2, padding=1)
    assert out == (4, 5, 5, 5)
    assert ops["add"] == 500 * 7                         # 4·125 = 500 windows of 8 values: 3,500
    assert ops["div"] == 500
    # PyTorch's avg_pool3d checks the unpadded input against the kernel (3 > 2 here)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        LAYERS["avgpool3d"](kernel=3, stride=1, padding=1).evaluate((1, 2, 8, 8))


def test_pooling_refusals():
    with pytest.raises(ValueError, match="padding 2 is more than half the kernel 3"):
        LAYERS["maxpool2d"](kernel=3, padding=2).evaluate((1, 9, 9))
    with pytest.raises(ValueError, match="expects a 3-d input"):
        LAYERS["maxpool2d"](kernel=3).evaluate((9, 9))


def thop_facts(shape, out):
    return _thop_adaptive(None, shape, out)


# ---------------------------------------------------------------------------- adaptive pooling
# PyTorch's bins are [floor(i·in/out), ceil((i+1)·in/out)); per dimension their sizes sum to
# in + out − gcd(in, out). Each case lists the bins.

def test_adaptive_avgpool1d():
    # 17 → 5: [0,4) [3,7) [6,11) [10,14) [13,17), sizes 4 + 4 + 5 + 4 + 4 = 21 = 17 + 5 − 1
    out, ops = evaluate("adaptive_avgpool1d", (6, 17), size=5)
    assert out == (6, 5)
    assert ops["windows"] == 6 * 21
    assert ops["add"] == 6 * (21 - 5)                    # (bin size − 1) per output: 96
    assert ops["div"] == 30
    # thop's facts, derived by its preset from the shapes: the mean window 17/5 as a double, its floor
    facts = thop_facts((6, 17), out)
    assert facts["kernel_avg"] == Fraction(3.4) and facts["kernel_floor"] == 3


def test_adaptive_avgpool2d():
    # ResNet-50's head: 2048×7×7 → 1×1, one bin of 49 per channel
    out, ops = evaluate("adaptive_avgpool2d", (2048, 7, 7), size=1)
    assert out == (2048, 1, 1)
    assert ops["add"] == 2048 * 48 and ops["div"] == 2048   # 98,304 adds
    assert thop_facts((2048, 7, 7), out) == {"kernel_avg": 49, "kernel_floor": 49}
    # 15×17 → 5×5: 15 → 5 bins of 3 (sum 15 = 15 + 5 − 5); 17 → 5 bins summing to 21 (above)
    out, ops = evaluate("adaptive_avgpool2d", (6, 15, 17), size=(5, 5))
    assert out == (6, 5, 5)
    assert ops["add"] == 6 * 15 * 21 - 150               # 1,890 window values − 150 outputs = 1,740
    # the ratios are multiplied in double arithmetic, left to right, as thop does: 3.0·3.4
    facts = thop_facts((6, 15, 17), out)
    assert facts["kernel_avg"] == Fraction(3.0 * 3.4) and facts["kernel_floor"] == 3 * 3


def test_adaptive_avgpool3d():
    # 4×5×7 → 2×3×3: D [0,2) [2,4) sum 4; H [0,2) [1,4) [3,5) sum 7; W [0,3) [2,5) [4,7) sum 9
    out, ops = evaluate("adaptive_avgpool3d", (4, 4, 5, 7), size=(2, 3, 3))
    assert out == (4, 2, 3, 3)
    assert ops["windows"] == 4 * 4 * 7 * 9               # 1,008
    assert ops["add"] == 1008 - 72 and ops["div"] == 72  # 72 = 4·2·3·3 outputs: 936 adds


def test_adaptive_maxpool1d():
    # 10 → 4: [0,3) [2,5) [5,8) [7,10), sizes 3·4 = 12 = 10 + 4 − 2
    out, ops = evaluate("adaptive_maxpool1d", (3, 10), size=4)
    assert out == (3, 4)
    assert ops["cmp"] == 3 * (12 - 4)                    # 24
    assert ops.get("add", 0) == ops.get("div", 0) == 0


def test_adaptive_maxpool2d_null_keeps_a_dimension():
    # 15 → 4: [0,4) [3,8) [7,12) [11,15), sum 18 = 15 + 4 − 1; W kept: 17 bins of 1
    out, ops = evaluate("adaptive_maxpool2d", (3, 15, 17), size=[4, None])
    assert out == (3, 4, 17)
    assert ops["cmp"] == 3 * 18 * 17 - 3 * 4 * 17        # 918 − 204 = 714


def test_adaptive_maxpool3d():
    # 4×5×7 → 2×2×2: D [0,2) [2,4) sum 4; H [0,3) [2,5) sum 6; W [0,4) [3,7) sum 8
    out, ops = evaluate("adaptive_maxpool3d", (2, 4, 5, 7), size=2)
    assert out == (2, 2, 2, 2)
    assert ops["cmp"] == 2 * 4 * 6 * 8 - 16              # 384 − 16 = 368


# ---------------------------------------------------------------------------- global pooling

def test_global_avgpool():
    # 512×7×7 → 512: each channel sums 49 values (48 adds) and divides once
    out, ops = evaluate("global_avgpool", (512, 7, 7))
    assert out == (512,)
    assert ops["add"] == 512 * 48 and ops["div"] == 512  # 24,576 adds
    assert ops["spatial_in"] == 49
    # any rank: 8×3×4×5 with keepdim → 8×1×1×1, 60 values per channel
    out, ops = evaluate("global_avgpool", (8, 3, 4, 5), keepdim=True)
    assert out == (8, 1, 1, 1)
    assert ops["add"] == 8 * 59                          # 472


def test_global_maxpool():
    out, ops = evaluate("global_maxpool", (3, 5, 6), keepdim=True)
    assert out == (3, 1, 1)
    assert ops["cmp"] == 3 * 29                          # 30 values per channel: 29 comparisons, 87
    out, ops = evaluate("global_maxpool", (16, 100))     # a sequence: 16 channels of 100
    assert out == (16,) and ops["cmp"] == 16 * 99
    with pytest.raises(ValueError, match="needs a channel dimension and at least one more"):
        LAYERS["global_maxpool"]().evaluate((16,))


# ---------------------------------------------------------------------------- upsample

def test_upsample_bilinear_by_scale():
    # 3×4×5, scale 2 → 3×8×10 = 240 outputs; bilinear: 2² − 1 = 3 lerps a + w·(b − a) each
    out, ops = evaluate("upsample", (3, 4, 5), scale=2, mode="bilinear")
    assert out == (3, 8, 10)
    assert ops["mul"] == 3 * 240                         # one multiply per lerp: 720
    assert ops["add"] == 2 * 3 * 240                     # two adds per lerp: 1,440
    # ptflops' facts, derived by its preset: the scales' product 2.0·2.0, whole
    assert upsample_size(LAYERS["upsample"](scale=2, mode="bilinear"), (3, 4, 5), out) == \
        {"by_size": 0, "scale_prod": 4}


def test_upsample_trilinear_fractional_scale():
    # 2×3×4×5, scale 1.5: floor(4.5) = 4, floor(6.0) = 6, floor(7.5) = 7 → 2×4×6×7 = 336 outputs
    out, ops = evaluate("upsample", (2, 3, 4, 5), scale=1.5, mode="trilinear")
    assert out == (2, 4, 6, 7)
    assert ops["mul"] == 7 * 336 and ops["add"] == 14 * 336   # 2³ − 1 = 7 lerps: 2,352 and 4,704
    # 1.5³ = 3.375, exact in binary floating point
    assert upsample_size(LAYERS["upsample"](scale=1.5, mode="trilinear"), (2, 3, 4, 5), out)["scale_prod"] == \
        Fraction(27, 8)


def test_upsample_linear_and_nearest_by_size():
    out, ops = evaluate("upsample", (4, 10), scale=3, mode="linear")
    assert out == (4, 30) and ops["mul"] == 120 and ops["add"] == 240   # one lerp per output
    # nearest copies: nothing counted; by size, so ptflops' scale product is 0
    out, ops = evaluate("upsample", (16, 10), size=25)
    assert out == (16, 25)
    assert ops["mul"] == ops["add"] == 0
    assert upsample_size(LAYERS["upsample"](size=25), (16, 10), out) == {"by_size": 1, "scale_prod": 0}


def test_upsample_refusals():
    with pytest.raises(ValueError, match="give exactly one of scale and size"):
        LAYERS["upsample"](scale=2, size=4).evaluate((3, 4, 5))
    with pytest.raises(ValueError, match="mode bilinear needs 2 spatial dims, input has 1"):
        LAYERS["upsample"](scale=2, mode="bilinear").evaluate((3, 4))
    with pytest.raises(ValueError, match="sizes must be at least 1"):
        LAYERS["upsample"](scale=0.1).evaluate((3, 4, 5))


# ---------------------------------------------------------------------------- calc layers

def test_layers_text_is_the_declaration(capsys):
    assert main(["layers"]) == 0
    text = capsys.readouterr().out
    block = text[text.index("maxpool2d  [maxpool]"):]
    block = block[:block.index("\n\n")]
    decl = {q.name: q for q in LAYERS["maxpool2d"].quantities}
    # calc layers prints the very templates the counts are compiled from
    assert f"    cmp: {render(decl['cmp'].expr, str)}" in block
    assert "    cmp: outputs·(K_h·K_w − 1)" in block
    assert "    H_ceil: ceil((H_in + 2·p_h − d_h·(K_h − 1) − 1)/s_h) + 1   (if ceil_mode)" in block
    assert ("    H_out: (H_ceil − 1 if (H_ceil − 1)·s_h ≥ H_in + p_h else H_ceil) if ceil_mode "
            "else floor((H_in + 2·p_h − d_h·(K_h − 1) − 1)/s_h) + 1") in block
    adaptive = text[text.index("adaptive_avgpool2d  [adaptive_avgpool]"):]
    adaptive = adaptive[:adaptive.index("\n\n")]
    assert "    windows: C·(H_in + H_out − gcd(H_in, H_out))·(W_in + W_out − gcd(W_in, W_out))" in adaptive
    assert "kernel_avg" not in adaptive    # thop's float window is the thop preset's business
