"""Normalisation layers, each type with a case derived by hand: output shape, parameters and
every elementary operation (the derivation beside each number).

The group arithmetic that layer and group norm share, for one group of n elements:
  mean       n − 1 adds, 1 div
  variance   n subtractions (adds), n squares (muls), n − 1 adds, 1 div
  ε          1 add;  then 1 sqrt
  normalise  n subtractions (adds), n divs
so 4n − 1 adds, n muls, n + 2 divs and 1 sqrt per group; affine adds n muls (γ) and n adds (β).
"""
import pytest

from calc.render.catalog import describe_layers
from calc.layers import LAYERS, NO_PARAMS, Params
from helpers import evaluate_layer as evaluate


def test_batchnorm1d_features_and_sequences():
    # (C, L) = (16, 50): 800 elements, 16 channels
    out, p, ops = evaluate("batchnorm1d", (16, 50))
    assert out == (16, 50)
    assert p == Params(16, 16, 2 * 16 + 1)        # γ and β per channel; running mean, var, and the counter
    assert ops["add"] == 800 * 2 + 16              # subtract the mean and add β per element, ε per channel = 1,616
    assert ops["mul"] == 800                       # γ
    assert ops["div"] == 800                       # by the standard deviation
    assert ops["sqrt"] == 16                       # one per channel
    assert ops["affine"] == 1
    # (C) alone is a batch of feature vectors in PyTorch: 16 elements, one per channel
    _, _, ops = evaluate("batchnorm1d", (16,))
    assert (ops["add"], ops["div"], ops["sqrt"]) == (16 * 2 + 16, 16, 16)
    with pytest.raises(ValueError, match=r"expects a 1-d or 2-d input \(C\) or \(C, L\)"):
        evaluate("batchnorm1d", (16, 5, 5))


def test_batchnorm2d_without_affine_or_statistics():
    # ResNet's first norm: 64×56×56 = 200,704 elements
    out, p, ops = evaluate("batchnorm2d", (64, 56, 56), affine=False, track_running_stats=False)
    assert out == (64, 56, 56)
    assert p == NO_PARAMS                          # neither γ, β nor buffers
    assert ops["add"] == 200_704 + 64              # subtract the mean per element, ε per channel = 200,768
    assert ops["mul"] == 0                         # no γ
    assert ops["div"] == 200_704 and ops["sqrt"] == 64
    assert ops["affine"] == 0
    with pytest.raises(ValueError, match="expects a 3-d input"):
        evaluate("batchnorm2d", (64, 56))


def test_batchnorm3d():
    # 4×7×8×9 = 2,016 elements
    out, p, ops = evaluate("batchnorm3d", (4, 7, 8, 9))
    assert out == (4, 7, 8, 9)
    assert p == Params(4, 4, 9)                    # 2·4 + 1 buffers
    assert ops["add"] == 2 * 2016 + 4              # 4,036
    assert ops["mul"] == ops["div"] == 2016
    assert ops["sqrt"] == 4


def test_layernorm_tokens():
    # ViT-B: 197 tokens of 768, each normalised on its own (n = 768, G = 197, 151,296 elements)
    out, p, ops = evaluate("layernorm", (197, 768))
    assert out == (197, 768)
    assert p == Params(768, 768)                   # γ and β per feature
    assert ops["G"] == 197
    assert ops["add"] == 197 * (4 * 768 - 1) + 151_296   # 197·3,071 + β = 604,987 + 151,296 = 756,283
    assert ops["mul"] == 197 * 768 + 151_296             # squares + γ = 302,592
    assert ops["div"] == 197 * (768 + 2)                 # 151,690
    assert ops["sqrt"] == 197
    assert ops["affine"] == 1


def test_layernorm_two_dims_without_bias_or_affine():
    # (4, 6, 5) with normalized 2: n = 6·5 = 30, G = 4; γ only
    _, p, ops = evaluate("layernorm", (4, 6, 5), normalized=2, bias=False)
    assert p == Params(30, 0)
    # 4·(4·30 − 1) = 476, plus one add per element for β: calc counts it whenever affine is true,
    # bias or not (as it always has; PyTorch's layer_norm skips it without β) = 596
    assert ops["add"] == 4 * (4 * 30 - 1) + 120
    # without affine: no parameters, and the muls are the squares alone
    _, p, ops = evaluate("layernorm", (4, 6, 5), normalized=2, affine=False)
    assert p == NO_PARAMS
    assert (ops["mul"], ops["add"]) == (120, 4 * 119)
    with pytest.raises(ValueError, match="cannot normalise 3 dims"):
        evaluate("layernorm", (6, 5), normalized=3)


def test_layernorm_over_channels():
    # ConvNeXt's LayerNorm2d on 96×56×56: n = 96 channels at each of G = 3,136 positions
    out, p, ops = evaluate("layernorm", (96, 56, 56), channels=True)
    assert out == (96, 56, 56)
    assert p == Params(96, 96)
    assert ops["G"] == 3136
    assert ops["add"] == 3136 * (4 * 96 - 1) + 301_056   # 3,136·383 + β = 1,201,088 + 301,056 = 1,502,144
    assert ops["mul"] == 2 * 301_056                     # 602,112
    assert ops["div"] == 3136 * 98                       # 307,328
    assert ops["sqrt"] == 3136
    with pytest.raises(ValueError, match="channels: true needs"):
        evaluate("layernorm", (96,), channels=True)


def test_groupnorm():
    # 64×28×28 in 32 groups: n = 64/32 channels × 784 positions = 1,568; G = 32; 50,176 elements
    out, p, ops = evaluate("groupnorm", (64, 28, 28), groups=32)
    assert out == (64, 28, 28)
    assert p == Params(64, 64)                     # γ and β per channel
    assert (ops["n"], ops["G"]) == (1568, 32)
    assert ops["add"] == 32 * (4 * 1568 - 1) + 50_176    # 32·6,271 + β = 200,672 + 50,176 = 250,848
    assert ops["mul"] == 2 * 50_176                      # 100,352
    assert ops["div"] == 32 * 1570                       # 50,240
    assert ops["sqrt"] == 32
    _, p, _ = evaluate("groupnorm", (64, 28, 28), groups=32, affine=False)
    assert p == NO_PARAMS
    with pytest.raises(ValueError, match="not divisible by groups=3"):
        evaluate("groupnorm", (64, 28, 28), groups=3)


def test_local_response_norm():
    # AlexNet (2012) after conv1: 96×55×55 = 290,400 elements, size 5:
    # b = a / (k + α/n·Σa²)^β: per element 1 square + 1 (α/n times the sum) muls, 4 adds over the
    # window + 1 for k, 2 divs (α/n and a over the denominator), 1 pow
    out, p, ops = evaluate("local_response_norm", (96, 55, 55), size=5)
    assert out == (96, 55, 55) and p == NO_PARAMS
    assert ops["mul"] == 2 * 290_400               # 580,800
    assert ops["add"] == 5 * 290_400               # 1,452,000
    assert ops["div"] == 2 * 290_400               # 580,800
    assert ops["fn"] == 290_400
    with pytest.raises(ValueError, match="needs"):
        evaluate("local_response_norm", (96,), size=5)


def test_rmsnorm():
    # Llama: 10 tokens of 4,096 (n = 4,096, G = 10, 40,960 elements)
    out, p, ops = evaluate("rmsnorm", (10, 4096))
    assert out == (10, 4096)
    assert p == Params(4096)                       # γ only
    assert ops["mul"] == 2 * 40_960                # squares and γ = 81,920
    assert ops["add"] == 10 * 4096                 # 4,095 to sum the squares + 1 for ε, per token = 40,960
    assert ops["div"] == 10 * 4097                 # the mean and 4,096 normalising divisions = 40,970
    assert ops["sqrt"] == 10
    _, p, ops = evaluate("rmsnorm", (10, 4096), affine=False)
    assert p == NO_PARAMS and ops["mul"] == 40_960 and ops["affine"] == 0


def test_explanation_and_catalog_come_from_the_declarations():
    layer = LAYERS["layernorm"]()
    steps = {s.key: s for s in layer.explain((197, 768), (197, 768))}
    assert steps["add"].formula == "G·(4·n − 1) + x·affine"
    assert steps["add"].substituted == "197·(4·768 − 1) + 151296·1" and steps["add"].value == 756_283
    assert steps["params"].substituted == "768 + 768"
    # `calc layers` prints the same declarations, with the conditions and the facts marked
    text = describe_layers()
    section = text[text.index("\nlayernorm  ["):]
    section = section[:section.index("\n\n")]
    for line in ("weights: n   (if affine)", "biases: n   (if beta)", "G: x/n", "add: G·(4·n − 1) + x·affine",
                 "mul: G·n + x·affine", "div: G·(n + 2)", "sqrt: G", "affine: affine   (a fact for conventions)"):
        assert f"\n    {line}" in section
    section = text[text.index("\nbatchnorm2d  ["):]
    assert "\n    buffers: 2·C + 1   (if track_running_stats)\n" in section[:section.index("\n\n")]
