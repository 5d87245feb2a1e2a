"""The torchvision zoo: every spec against the reference totals, torchvision's published
numbers for variants reached through variables, and hypothetical variants whose numbers are
derived here by hand, independently of calc."""
import math

import pytest

from helpers import leaves, run_spec
from reference_data import PUBLISHED, REFERENCE, leaf_rows

ZOO = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenet_v2", "googlenet",
       "densenet121", "squeezenet1_0", "efficientnet_b0"]
# Swin V1/V2 written from primitives (specs/swin_t.yaml, swin_v2_t.yaml): torchvision's own models
# measured (tests/data/generate_reference.py --add): parameters, FLOPs and buffers to the integer.
CASES = ZOO + ["resnet50@4x3x224x224", "swin_t", "swin_v2_t"]


def analyse_case(key, **kw):
    name, _, _ = key.partition("@")
    batch, *shape = REFERENCE[key]["input_shape"]
    return run_spec(name, batch=batch, input_shape=tuple(shape), **kw)


@pytest.mark.parametrize("key", CASES)
def test_reference_totals(key):
    ref = REFERENCE[key]
    a = analyse_case(key)
    t = a.totals
    assert t.params == ref["params_total"]
    assert t.trainable_params == ref["params_trainable"]
    assert [a.batch, *a.output_shape] == ref["output_shape"]
    assert t.flops == ref["torch_flops"]
    # calc counts BatchNorm's running mean, running variance and batch counter as buffers,
    # exactly the tensors PyTorch registers, so the totals agree too.
    assert t.buffers == ref["buffers_numel"]


def test_zoo_has_a_spec_per_torchvision_name():
    from conftest import SPECS
    for name in ZOO + ["unet"]:
        assert (SPECS / f"{name}.yaml").exists()


# calc's dotted names follow torchvision's modules: a few leaf modules of each model, whose own
# parameters and FlopCounterMode FLOPs are read from the reference data's per-leaf table.
REFERENCE_LEAVES = {
    "resnet18": ["conv1", "layer2.0.conv1", "layer2.0.downsample.0", "layer4.1.bn2", "fc"],
    "resnet50": ["layer1.0.conv2", "layer3.5.conv3", "layer4.0.downsample.0", "fc"],
    "mobilenet_v2": ["features.0.0", "features.1.conv.0.0", "features.14.conv.1.0", "features.18.0",
                     "classifier.1"],
    "googlenet": ["conv1.conv", "conv1.bn", "inception3a.branch2.1.conv", "inception4e.branch4.1.conv", "fc"],
    "densenet121": ["features.conv0", "features.transition2.conv", "features.norm5", "classifier"],
    "squeezenet1_0": ["features.0", "features.3.squeeze", "features.12.expand3x3", "classifier.1"],
    "efficientnet_b0": ["features.0.0", "features.2.1.block.2.fc1", "features.6.3.block.1.0", "features.8.0",
                        "classifier.1"],
}


@pytest.mark.parametrize("name", sorted(REFERENCE_LEAVES))
def test_leaf_names_follow_torchvision(name):
    rows = {row.name: row.result for row in run_spec(name).rows(leaves_only=True)}
    reference = leaf_rows(name)
    for module in REFERENCE_LEAVES[name]:
        assert module in rows, module
        ref = reference[module]
        assert (rows[module].params, rows[module].flops) == (ref["params"], ref["torch"]), module


# torchvision 0.28.0 publishes, in the weights metadata of torchvision/models/*.py, each
# model's parameter count ("num_params") and its GFLOPS ("_ops", in fact MACs / 1e9, rounded to
# 3 decimals) at the weights' crop size (tests/data/torchvision_published.json). These models
# are the zoo specs with other variables; the figures are those of their IMAGENET1K_V1 weights.
PUBLISHED_VARIANTS = [
    # spec, --set values, torchvision model
    ("resnet50", {"groups": 32, "width_per_group": 4}, "resnext50_32x4d"),
    ("resnet50", {"width_per_group": 128}, "wide_resnet50_2"),
    ("resnet101", {"groups": 32, "width_per_group": 8}, "resnext101_32x8d"),
    ("resnet101", {"groups": 64, "width_per_group": 4}, "resnext101_64x4d"),
    ("resnet101", {"width_per_group": 128}, "wide_resnet101_2"),
    ("resnet18", {"layers": [3, 4, 6, 3]}, "resnet34"),
    ("densenet121", {"block_config": [6, 12, 32, 32]}, "densenet169"),
    ("densenet121", {"block_config": [6, 12, 48, 32]}, "densenet201"),
    ("densenet121", {"block_config": [6, 12, 36, 24], "growth_rate": 48, "num_init_features": 96}, "densenet161"),
    ("efficientnet_b0", {"depth_mult": 1.1}, "efficientnet_b1"),
    ("efficientnet_b0", {"width_mult": 1.1, "depth_mult": 1.2}, "efficientnet_b2"),
    ("efficientnet_b0", {"width_mult": 1.2, "depth_mult": 1.4}, "efficientnet_b3"),
    ("efficientnet_b0", {"width_mult": 1.4, "depth_mult": 1.8}, "efficientnet_b4"),
    ("efficientnet_b0", {"width_mult": 1.6, "depth_mult": 2.2}, "efficientnet_b5"),
    ("efficientnet_b0", {"width_mult": 1.8, "depth_mult": 2.6}, "efficientnet_b6"),
    ("efficientnet_b0", {"width_mult": 2.0, "depth_mult": 3.1}, "efficientnet_b7"),
]


def check_published(spec, sets, model):
    figures = PUBLISHED[model]["weights"]["IMAGENET1K_V1"]
    size = figures["crop_size"]
    a = run_spec(spec, set=sets, input_shape=(3, size, size))
    assert a.totals.params == figures["num_params"]
    assert round(a.totals.macs / 1e9, 3) == figures["_ops"]


@pytest.mark.parametrize("spec, sets, model", PUBLISHED_VARIANTS, ids=[m for _, _, m in PUBLISHED_VARIANTS])
def test_published_variants(spec, sets, model):
    check_published(spec, sets, model)


def _bundled_torchvision_names():
    from conftest import SPECS
    return sorted(p.stem for p in SPECS.glob("*.yaml") if p.stem in PUBLISHED)


@pytest.mark.parametrize("name", _bundled_torchvision_names())
def test_bundled_specs_give_torchvision_published_figures(name):
    # every bundled spec named after a torchvision model, with its own variables
    check_published(name, {}, name)


# ---------------------------------------------------------------------------- hand derivations
# Each function below restates an architecture's arithmetic from its paper/torchvision
# definition, without calc: it returns (parameters, MACs) for one sample. Each is first checked
# to reproduce the reference numbers, then used for a hypothetical variant.

def out_len(n, k, s, p):
    """PyTorch's output length of a convolution or pooling window (floor mode)."""
    return (n + 2 * p - k) // s + 1


def make_divisible(v, divisor=8):
    """torchvision's _make_divisible (models/_utils.py), restated."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def resnet_bottleneck(layers, width, res, classes=1000):
    """ResNet v1.5 with bottlenecks (1×1 p, 3×3 p strided, 1×1 4p; projection in the first
    block of each stage), every channel count scaled by ``width``; BN adds 2 per channel."""
    stem = int(64 * width)
    h = out_len(res, 7, 2, 3)
    params, macs = 3 * 49 * stem + 2 * stem, 3 * 49 * stem * h * h
    h = out_len(h, 3, 2, 1)
    c = stem
    for j, blocks in enumerate(layers):
        p = stem * 2 ** j
        for i in range(blocks):
            h2 = out_len(h, 3, 2 if i == 0 and j > 0 else 1, 1)
            params += c * p + 9 * p * p + 4 * p * p + 2 * (p + p + 4 * p)
            macs += c * p * h * h + (9 * p * p + 4 * p * p) * h2 * h2
            if i == 0:
                params += 4 * p * c + 2 * 4 * p
                macs += 4 * p * c * h2 * h2
            c, h = 4 * p, h2
    return params + c * classes + classes, macs + c * classes


def resnet_basic(layers, width, res, classes=1000):
    """ResNet with basic blocks (3×3 p strided, 3×3 p; projection where the stride is 2)."""
    stem = int(64 * width)
    h = out_len(res, 7, 2, 3)
    params, macs = 3 * 49 * stem + 2 * stem, 3 * 49 * stem * h * h
    h = out_len(h, 3, 2, 1)
    c = stem
    for j, blocks in enumerate(layers):
        p = stem * 2 ** j
        for i in range(blocks):
            stride = 2 if i == 0 and j > 0 else 1
            h2 = out_len(h, 3, stride, 1)
            params += 9 * c * p + 9 * p * p + 2 * 2 * p
            macs += (9 * c * p + 9 * p * p) * h2 * h2
            if stride == 2:
                params += c * p + 2 * p
                macs += c * p * h2 * h2
            c, h = p, h2
    return params + c * classes + classes, macs + c * classes


MOBILENET_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]   # t, c, n, s (Sandler et al., Table 2)


def mobilenet_v2(width, res, classes=1000):
    c = make_divisible(32 * width)
    h = out_len(res, 3, 2, 1)
    params, macs = 27 * c + 2 * c, 27 * c * h * h
    for t, ch, n, s in MOBILENET_V2:
        out = make_divisible(ch * width)
        for i in range(n):
            hidden = round(c * t)
            if t != 1:
                params += c * hidden + 2 * hidden
                macs += c * hidden * h * h
            h2 = out_len(h, 3, s if i == 0 else 1, 1)
            params += 9 * hidden + 2 * hidden + hidden * out + 2 * out
            macs += (9 * hidden + hidden * out) * h2 * h2
            c, h = out, h2
    last = make_divisible(1280 * max(1.0, width))
    params += c * last + 2 * last + last * classes + classes
    return params, macs + c * last * h * h + last * classes


EFFICIENTNET_B0 = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
                   (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
# expansion, kernel, stride, channels in, out, blocks (torchvision's MBConvConfig table)


def efficientnet(width, depth, res, classes=1000):
    c = make_divisible(32 * width)
    h = out_len(res, 3, 2, 1)
    params, macs = 27 * c + 2 * c, 27 * c * h * h
    for e, k, s, _, ch, n in EFFICIENTNET_B0:
        out = make_divisible(ch * width)
        for i in range(math.ceil(n * depth)):
            hidden = make_divisible(c * e)
            if hidden != c:
                params += c * hidden + 2 * hidden
                macs += c * hidden * h * h
            h2 = out_len(h, k, s if i == 0 else 1, (k - 1) // 2)
            squeeze = max(1, c // 4)
            params += k * k * hidden + 2 * hidden                       # depthwise + BN
            params += hidden * squeeze + squeeze + squeeze * hidden + hidden  # SE, biased 1×1s
            params += hidden * out + 2 * out                            # projection + BN
            macs += k * k * hidden * h2 * h2 + 2 * hidden * squeeze + hidden * out * h2 * h2
            c, h = out, h2
    last = 4 * make_divisible(320 * width)
    params += c * last + 2 * last + last * classes + classes
    return params, macs + c * last * h * h + last * classes


def densenet(growth, config, init, res, bn_size=4, classes=1000):
    h = out_len(res, 7, 2, 3)
    params, macs = 3 * 49 * init + 2 * init, 3 * 49 * init * h * h
    h = out_len(h, 3, 2, 1)
    c = init
    for j, n in enumerate(config):
        for _ in range(n):
            b = bn_size * growth
            params += 2 * c + c * b + 2 * b + 9 * b * growth
            macs += (c * b + 9 * b * growth) * h * h
            c += growth
        if j < len(config) - 1:
            params += 2 * c + c * (c // 2)
            macs += c * (c // 2) * h * h
            c, h = c // 2, h // 2
    return params + 2 * c + c * classes + classes, macs + c * classes


def unet(base, res, classes=2):
    """The bundled U-Net: double 3×3 conv blocks (no bias, BN), 2× max pools, 2×2 stride-2
    transposed convolutions (biased) whose output is concatenated with the encoder's."""
    ch = [base * 2 ** j for j in range(5)]
    size = [res // 2 ** j for j in range(5)]

    def double(cin, cout, h):
        return 9 * cin * cout + 9 * cout * cout + 4 * cout, (9 * cin * cout + 9 * cout * cout) * h * h
    params = macs = 0
    cin = 3
    for j in range(5):
        p, m = double(cin, ch[j], size[j])
        params, macs, cin = params + p, macs + m, ch[j]
    for j in (3, 2, 1, 0):
        params += ch[j + 1] * ch[j] * 4 + ch[j]
        macs += ch[j + 1] * size[j + 1] ** 2 * ch[j] * 4   # every input element × every weight
        p, m = double(2 * ch[j], ch[j], size[j])
        params, macs = params + p, macs + m
    return params + ch[0] * classes + classes, macs + ch[0] * classes * res * res


def test_hand_derivations_reproduce_the_reference():
    ref = {k: (REFERENCE[k]["params_total"], REFERENCE[k]["torch_flops"] // 2) for k in REFERENCE}
    assert resnet_bottleneck([3, 4, 6, 3], 1.0, 224) == ref["resnet50"]
    assert resnet_bottleneck([3, 8, 36, 3], 1.0, 224) == ref["resnet152"]
    assert resnet_basic([2, 2, 2, 2], 1.0, 224) == ref["resnet18"]
    assert resnet_basic([3, 4, 6, 3], 1.0, 224) == ref["resnet34"]
    assert mobilenet_v2(1.0, 224) == ref["mobilenet_v2"]
    assert efficientnet(1.0, 1.0, 224) == ref["efficientnet_b0"]
    assert densenet(32, [6, 12, 24, 16], 64, 224) == ref["densenet121"]
    # The U-Net is not in the reference file; PyTorch 2.13's FlopCounterMode on an equivalent
    # nn.Module (run once during development) gave 1,942,594 parameters and 1,516,765,184 FLOPs.
    assert unet(16, 128) == (1_942_594, 1_516_765_184 // 2)


VARIANTS = [
    # spec, variables, input size, hand derivation
    ("resnet50", {"width": 0.5}, 160, lambda: resnet_bottleneck([3, 4, 6, 3], 0.5, 160)),
    ("resnet50", {"layers": [2, 3, 4, 2], "num_classes": 100}, 192,
     lambda: resnet_bottleneck([2, 3, 4, 2], 1.0, 192, classes=100)),
    ("resnet18", {"width": 0.5, "num_classes": 10}, 128, lambda: resnet_basic([2, 2, 2, 2], 0.5, 128, 10)),
    ("mobilenet_v2", {"width_mult": 0.75}, 160, lambda: mobilenet_v2(0.75, 160)),
    ("mobilenet_v2", {"width_mult": 1.4}, 224, lambda: mobilenet_v2(1.4, 224)),
    ("efficientnet_b0", {"width_mult": 0.5, "depth_mult": 0.5}, 128, lambda: efficientnet(0.5, 0.5, 128)),
    ("densenet121", {"growth_rate": 12, "num_init_features": 24}, 160,
     lambda: densenet(12, [6, 12, 24, 16], 24, 160)),
    ("unet", {"base": 8}, 96, lambda: unet(8, 96)),
]


@pytest.mark.parametrize("spec, sets, size, derive", VARIANTS,
                         ids=[f"{v[0]}-{'-'.join(f'{k}={x}' for k, x in v[1].items())}-{v[2]}" for v in VARIANTS])
def test_hypothetical_variants(spec, sets, size, derive):
    a = run_spec(spec, set=sets, input_shape=(3, size, size))
    assert (a.totals.params, a.totals.macs) == derive()


def test_unet_variant_against_pytorch():
    # PyTorch 2.13 FlopCounterMode on the equivalent nn.Module with base 8 at 96×96 (run once
    # during development): 486,562 parameters, 215,433,216 FLOPs, 1,490 buffer elements.
    a = run_spec("unet", set={"base": 8}, input_shape=(3, 96, 96))
    assert (a.totals.params, a.totals.flops, a.totals.buffers) == (486_562, 215_433_216, 1_490)
    assert a.output_shape == (2, 96, 96)


def test_fewer_classes_change_only_the_classifier():
    # GoogLeNet's fc is 1024 → classes; SqueezeNet's last 1×1 conv is 512 → classes on a 13×13
    # map at 224 px. Removing 990 classes removes exactly their weights, biases and MACs.
    g, g10 = run_spec("googlenet"), run_spec("googlenet", set={"num_classes": 10})
    assert g.totals.params - g10.totals.params == (1024 + 1) * 990
    assert g.totals.macs - g10.totals.macs == 1024 * 990
    s, s10 = run_spec("squeezenet1_0"), run_spec("squeezenet1_0", set={"num_classes": 10})
    assert s.totals.params - s10.totals.params == (512 + 1) * 990
    assert s.totals.macs - s10.totals.macs == 512 * 990 * 13 * 13
    assert s10.output_shape == (10,)


# ---------------------------------------------------------------------------- structure facts

def test_resnet_downsample_only_where_shapes_change():
    # ResNet-18's first stage keeps 64 channels at 56×56, so it has no projection; every later
    # stage projects in its first block only (torchvision's _make_layer).
    names = [row.name for row in run_spec("resnet18").rows(leaves_only=True)]
    projections = sorted({n.rsplit(".", 2)[0] for n in names if ".downsample." in n})
    assert projections == ["layer2.0", "layer3.0", "layer4.0"]
    names50 = [row.name for row in run_spec("resnet50").rows(leaves_only=True)]
    assert sorted({n.rsplit(".", 2)[0] for n in names50 if ".downsample." in n}) == [
        "layer1.0", "layer2.0", "layer3.0", "layer4.0"]


def test_mobilenet_v2_shortcuts_where_stride_1_and_channels_kept():
    # 17 inverted residuals; a shortcut in every block but the first of each stage:
    # n = 1, 2, 3, 4, 3, 3, 1 → 0 + 1 + 2 + 3 + 2 + 2 + 0 = 10 additions.
    rows = [r for r in leaves(run_spec("mobilenet_v2")) if r.kind == "add"]
    assert len(rows) == 10


def test_efficientnet_gates_and_stochastic_depth():
    a = run_spec("efficientnet_b0")
    kinds = [r.kind for r in leaves(a)]
    assert kinds.count("mul") == 16           # one squeeze-and-excitation gate per MBConv
    assert kinds.count("stochastic_depth") == kinds.count("add") == 16 - 7   # blocks after the first of a stage
    gate = next(r for r in leaves(a) if r.kind == "mul")
    assert gate.output_shape == (32, 112, 112)   # the C×1×1 gate is broadcast over the map


def test_googlenet_ceil_mode_pools():
    # With ceil mode, 112 → 56 → 28 → 14 → 7 (floor mode would give 55 after the first pool).
    shapes = [row.result.output_shape for row in run_spec("googlenet").rows(depth=1)
              if row.name.startswith("maxpool")]
    assert shapes == [(64, 56, 56), (192, 28, 28), (480, 14, 14), (832, 7, 7)]


def test_densenet_channels_grow_by_k_per_layer():
    rows = {row.name: row.result for row in run_spec("densenet121").rows(depth=2)}
    # 64 + 6·32 = 256 → 128; 128 + 12·32 = 512 → 256; 256 + 24·32 = 1024 → 512; 512 + 16·32 = 1024
    assert rows["features.denseblock1"].output_shape[0] == 256
    assert rows["features.transition1"].output_shape == (128, 28, 28)
    assert rows["features.denseblock3"].output_shape[0] == 1024
    assert rows["features.denseblock4"].output_shape == (1024, 7, 7)
