"""Models by name: named variants in a spec, `calc analyze NAME`, `calc models`, and every
bundled torchvision model against torchvision's published figures.

The expected figures are torchvision 0.28.0's own: `num_params` and `_ops` (GFLOPS, in fact
multiply-adds / 1e9 rounded to 3 decimals, at the default weights' crop size) of each model's
default weights, from the weights metadata in torchvision/models/*.py. They are stored with
their provenance in calc/models/published.json (package data: `calc models` prints them).
"""
import json
from pathlib import Path

import pytest

from calc import models
from calc.analysis import analyze
from calc.cli import main
from calc.errors import SpecError
from calc.spec import parse_spec
from conftest import ROOT, SPECS

PUBLISHED = models.published()["models"]
BUNDLED = {e.name: e for e in models.entries()}
# Every torchvision name that a bundled spec or variant reaches.
REACHED = sorted(n for n in PUBLISHED if n in BUNDLED)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_published_figures_have_provenance():
    prov = models.published()["provenance"]
    assert prov["torchvision"] == "0.28.0" and "sha256" in prov["source"]
    # torchvision 0.28 has 80 classification builders with published weights (issue 12).
    assert len(PUBLISHED) == 80
    assert PUBLISHED["alexnet"] == {"weights": "AlexNet_Weights.IMAGENET1K_V1", "num_params": 61_100_840,
                                    "gflops": 0.714, "crop_size": 224}


def test_published_figures_agree_with_the_extracted_reference():
    """When the full extraction (tests/data/torchvision_published.json) is in the tree, the
    package's copy equals its default weights."""
    full = ROOT / "tests" / "data" / "torchvision_published.json"
    if not full.exists():
        pytest.skip("tests/data/torchvision_published.json is not in this tree")
    data = json.loads(full.read_text())["models"]
    assert set(data) == set(PUBLISHED)
    for name, m in data.items():
        w = m["weights"][m["default"]]
        assert (w["num_params"], w["_ops"], w["crop_size"]) == (
            PUBLISHED[name]["num_params"], PUBLISHED[name]["gflops"], PUBLISHED[name]["crop_size"]), name


def test_these_models_are_reachable_by_name():
    # What issue 12's first part ships: the zoo specs and their variants.
    assert set(REACHED) >= {
        "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
        "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2", "densenet121", "densenet161",
        "densenet169", "densenet201", "squeezenet1_0", "squeezenet1_1", "mobilenet_v2", "googlenet",
        *(f"efficientnet_b{i}" for i in range(8)), "vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14",
        "swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s", "swin_v2_b", "maxvit_t"}


@pytest.mark.parametrize("name", REACHED)
def test_bundled_model_matches_torchvision_published(name):
    pub = PUBLISHED[name]
    spec, variant = models.open_named(name)
    model = spec.build(variant=variant)
    # By name, at torchvision's crop size, without any option.
    assert model.input_shape == (3, pub["crop_size"], pub["crop_size"])
    totals = analyze(model).totals
    assert totals.params == pub["num_params"]
    assert round(totals.macs / 1e9, 3) == pub["gflops"]


def test_names_are_unique_and_identifiers():
    names = [e.name for e in models.entries()]
    assert len(names) == len(set(names))
    assert {p.stem for p in SPECS.glob("*.yaml")} <= set(names)


def test_zoo_is_the_specs_folder():
    # calc/zoo is a link to specs/ in a checkout (pyproject's package-data installs it as files).
    assert models.ZOO.resolve() == SPECS.resolve()
    text = (ROOT / "pyproject.toml").read_text()
    assert '"zoo/*.yaml"' in text and '"calc.models" = ["*.json"]' in text


# ---------------------------------------------------------------------------- variants

BASE = """\
name: toy
input: [3, 8, 8]
variables: {out: 4, k: 3}
layers:
  - conv2d: {out: out, kernel: k, bias: false}
"""


def test_variant_sets_variables_and_input():
    spec = parse_spec(BASE + "variants:\n  wide: {out: 16, input: [2, 10, 10]}\n", "toy.yaml")
    model = spec.build(variant="wide")
    assert model.name == "wide" and model.input_shape == (2, 10, 10)
    a = analyze(model)
    # conv 3×3, 2 → 16 channels, no bias: 2·9·16 = 288 weights; output 8×8: 288·64 = 18,432 MACs.
    assert a.totals.params == 288 and a.totals.macs == 18_432


def test_set_and_input_win_over_the_variant():
    spec = parse_spec(BASE + "variants:\n  wide: {out: 16, input: [2, 10, 10]}\n", "toy.yaml")
    model = spec.build({"out": 1}, input_shape=(3, 5, 5), variant="wide")
    # 3·9·1 = 27 weights; output 3×3: 27·9 = 243 MACs.
    assert model.input_shape == (3, 5, 5)
    assert analyze(model).totals.params == 27 and analyze(model).totals.macs == 243


def test_a_spec_without_variants_builds_as_before():
    a = analyze(parse_spec(BASE, "toy.yaml").build())
    assert a.totals.params == 3 * 9 * 4   # 108


@pytest.mark.parametrize("variants, where, message", [
    ("  wide: {width: 2}\n", "variants.wide.width", "'width' is not a variable of the spec"),
    ("  wide: {input: [3, 0, 8]}\n", "variants.wide.input", "positive whole numbers"),
    ("  wide: [1, 2]\n", "variants.wide", "a variant is a mapping"),
    ("  wide: {out: {a: 1}}\n", "variants.wide.out", "a variable's value"),
    ("  wide-1: {out: 2}\n", "variants.wide-1", "identifiers"),
])
def test_bad_variants_are_errors_with_a_line(variants, where, message):
    with pytest.raises(SpecError) as info:
        parse_spec(BASE + "variants:\n" + variants, "toy.yaml")
    err = info.value
    assert message in err.message or message in str(err)
    assert str(err).startswith(f"toy.yaml:{err.line}: {where}") and err.line >= 6


def test_unknown_variant_is_an_error():
    with pytest.raises(SpecError, match="no variant 'narrow'.*variants: wide"):
        parse_spec(BASE + "variants:\n  wide: {out: 2}\n", "toy.yaml").build(variant="narrow")


# ---------------------------------------------------------------------------- command line

def test_analyze_by_name(capsys):
    code, out, err = run(capsys, "analyze", "resnext50_32x4d", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["model"] == "resnext50_32x4d"
    assert doc["totals"]["params"] == PUBLISHED["resnext50_32x4d"]["num_params"]


def test_analyze_by_name_with_set(capsys):
    # --set applies on top of the variant: resnext50_32x4d with 10 classes has the published
    # count less the classifier's difference, 2048·(1000 − 10) + (1000 − 10) weights and biases.
    code, out, _ = run(capsys, "analyze", "resnext50_32x4d", "--set", "num_classes=10", "--format", "json")
    assert json.loads(out)["totals"]["params"] == 25_028_904 - 2049 * 990


def test_a_path_still_works(capsys):
    code, out, _ = run(capsys, "analyze", str(SPECS / "resnet50.yaml"), "--format", "json")
    assert code == 0 and json.loads(out)["model"] == "resnet50"


def test_unknown_name_suggests(capsys):
    code, out, err = run(capsys, "analyze", "resnet5")
    assert code == 2 and out == ""
    assert "no bundled model of that name; did you mean resnet50" in err and "calc models" in err


def test_models_command(capsys):
    code, out, err = run(capsys, "models")
    assert code == 0 and err == ""
    line = next(l for l in out.splitlines() if l.startswith("wide_resnet50_2 "))
    assert "68,883,240" in line and "11.398" in line and line.endswith("✓")
    assert f"{len(REACHED)} of the {len(REACHED)} that torchvision publishes figures for match" in out
    # every torchvision classification model with published weights is bundled (issue 12)
    assert len(REACHED) == 80 and "not bundled yet" not in out


def test_models_json(capsys):
    code, out, _ = run(capsys, "models", "--format", "json")
    doc = json.loads(out)
    rows = {m["name"]: m for m in doc["models"]}
    assert rows["vit_h_14"]["input_shape"] == [3, 518, 518]
    assert rows["vit_h_14"]["published"] == {"num_params": 633_470_440, "gflops": 1016.717, "crop_size": 518}
    assert rows["vit_h_14"]["matches_published"] is True
    assert rows["unet"]["published"] is None and rows["unet"]["matches_published"] is None
    assert set(doc["not_bundled"]) == set(PUBLISHED) - set(rows)


def test_sweep_by_variant_name(capsys):
    code, out, _ = run(capsys, "sweep", "efficientnet_b3", "--format", "json")
    row = json.loads(out.splitlines()[0])
    # The variant's values are the sweep's one-valued axes; its input is the sweep's input.
    assert row["variables"] == {"width_mult": 1.2, "depth_mult": 1.4, "dropout": 0.3}
    assert row["input_shape"] == [3, 300, 300]
    assert row["params"] == PUBLISHED["efficientnet_b3"]["num_params"]


# ---------------------------------------------------------------------------- RegNet's stages
# torchvision 0.28's regnet_* builders (torchvision/models/regnet.py) pass these to
# BlockParams.from_init_params: depth, w_0, w_a, w_m, group_width; se_ratio 0.25 for Y.
REGNET = {
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8), "regnet_y_800mf": (14, 56, 38.84, 2.4, 16),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24), "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56), "regnet_y_16gf": (18, 200, 106.23, 2.48, 112),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232), "regnet_y_128gf": (27, 456, 160.83, 2.52, 264),
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16), "regnet_x_800mf": (16, 56, 35.73, 2.28, 16),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24), "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120), "regnet_x_16gf": (22, 216, 55.59, 2.1, 128),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168)}


def regnet_stages(depth, w_0, w_a, w_m, group_width):
    """The per-stage (depths, widths, group widths) of RegNet's design space, restated from the
    paper's quantised linear rule as torchvision applies it (bottleneck multiplier 1): block i
    has width w_0 · w_m^round(log((w_0 + i·w_a) / w_0) / log w_m), rounded to a multiple of 8;
    runs of equal widths are stages; a group width is at most the stage's width, and the width
    is then made divisible by it (torchvision's _make_divisible)."""
    import math

    def make_divisible(v, d):
        new = max(d, int(v + d / 2) // d * d)
        return new + d if new < 0.9 * v else new
    depths, widths = [], []
    for i in range(depth):
        w = int(round(w_0 * w_m ** round(math.log((w_0 + i * w_a) / w_0) / math.log(w_m)) / 8) * 8)
        if widths and widths[-1] == w:
            depths[-1] += 1
        else:
            depths.append(1)
            widths.append(w)
    groups = [min(group_width, w) for w in widths]
    return depths, [make_divisible(w, g) for w, g in zip(widths, groups)], groups


@pytest.mark.parametrize("name", sorted(REGNET))
def test_regnet_stage_lists_follow_from_the_constructor_arguments(name):
    spec, variant = models.open_named(name)
    values = {**{k: v for k, v in spec.doc.variables.items()},
              **(spec.variants[variant].variables if variant else {})}
    assert (values["depths"], values["widths"], values["group_widths"]) == regnet_stages(*REGNET[name])
    assert values["se"] is name.startswith("regnet_y")
