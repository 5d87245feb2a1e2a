"""`expect:` and `calc check`: the worked derivations of specs/examples hold, deliberately wrong
variants fail on the right item with calc's derivation, `--property` shrinks a planted floor
error to the minimal counterexample, and bad expectations are clear errors (exit 2).

Expected figures are derived by hand beside each assertion (see docs/derivations.md)."""
import json

import pytest

from calc.cli import main
from calc.spec import parse_spec
from calc.check import check_model
from conftest import SPECS

EXAMPLES = sorted((SPECS / "examples").glob("*.yaml"))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def check_text(capsys, tmp_path, text, *extra):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return run(capsys, "check", str(path), *extra)


def variant(name: str, old: str, new: str) -> str:
    text = (SPECS / "examples" / name).read_text()
    assert old in text, old
    return text.replace(old, new, 1)


# ---------------------------------------------------------------------------- the worked examples

def test_there_are_worked_examples():
    assert {p.stem for p in EXAMPLES} >= {"alexnet_conv1", "vgg16_fc1", "group_conv", "depthwise_separable",
                                         "exact_flops", "transformer_layer"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_worked_example_holds(capsys, path):
    code, out, err = run(capsys, "check", str(path))
    assert code == 0, out + err
    assert "✗" not in out and " 0 fail" in out


def test_alexnet_conv1_figures(capsys):
    # [(11·11·3)·96 + 96]·55·55 = 34,944·3,025 = 105,705,600 (params-hw); without the bias
    # 34,848·3,025 = 105,415,200 (standard), 2 FLOPs each.
    code, out, _ = run(capsys, "check", str(SPECS / "examples" / "alexnet_conv1.yaml"))
    assert "conv1 · macs (params-hw) = 105,705,600" in out
    assert "conv1 · macs (standard) = 105,415,200" in out
    assert "conv1 · flops (standard) = 210,830,400" in out
    assert "conv1 · output (standard) = 96×55×55" in out


def test_vgg_fc1_and_parameter_memory(capsys):
    # 7·7·512·4,096 = 102,760,448; the classifier 102,764,544 + 16,781,312 + 4,097,000 =
    # 123,642,856 parameters, 4 bytes each in fp32 = 494,571,424 bytes, 2 in fp16.
    code, out, _ = run(capsys, "check", str(SPECS / "examples" / "vgg16_fc1.yaml"))
    assert code == 0
    assert "fc1 · weights (standard) = 102,760,448" in out
    assert "the model · bytes (standard) = 494,571,424" in out
    assert "the model · bytes (standard) = 247,285,712" in out


def test_depthwise_separable_ratio():
    # weights C_in·K² + C_in·C_out over C_in·C_out·K² = 1/C_out + 1/K², from calc's own counts
    from fractions import Fraction
    spec = parse_spec((SPECS / "examples" / "depthwise_separable.yaml").read_text())
    for c_in, c_out, k in ((32, 64, 3), (3, 16, 5), (128, 128, 7)):
        model = spec.build({"C_in": c_in, "C_out": c_out, "K": k, "H": 16})
        got = {o.item: o.actual for o in check_model(model) if o.quantity == "weights"}
        assert Fraction(got["separable"], got["standard"]) == Fraction(1, c_out) + Fraction(1, k * k)


def test_transformer_layer_textbook_and_exact():
    # d = 768, L = 1024: textbook 12·d² = 7,077,888; exact 12·d² + 13·d = 7,087,872;
    # 24·L·d² + 4·L²·d = 14,495,514,624 + 3,221,225,472 = 17,716,740,096 FLOPs.
    spec = parse_spec((SPECS / "examples" / "transformer_layer.yaml").read_text())
    got = {o.quantity: o.actual for o in check_model(spec.build())}
    assert got["params"] == 7_087_872 == 12 * 768 ** 2 + 13 * 768
    assert got["params"] - 12 * 768 ** 2 == 9_984
    assert got["flops"] == 17_716_740_096


# ---------------------------------------------------------------------------- wrong derivations

def test_wrong_teaching_figure_fails_on_conv1_with_the_rule(capsys, tmp_path):
    # forgetting the bias under params-hw: 105,415,200 instead of 105,705,600 (96·55·55 = 290,400 short)
    text = variant("alexnet_conv1.yaml", "macs: 105705600", "macs: 105415200")
    code, out, _ = check_text(capsys, tmp_path, text)
    assert code == 1
    line = next(l for l in out.splitlines() if l.startswith("✗"))
    assert "conv1 · macs (params-hw)" in line and "difference +290,400" in line
    assert "MACs = params·spatial_out = 34944·3025 = 105,705,600" in out
    assert "1 fail" in out


def test_wrong_fc1_weights_fail_by_the_bias(capsys, tmp_path):
    text = variant("vgg16_fc1.yaml", 'weights: "7 * 7 * 512 * 4096"', 'weights: "7 * 7 * 512 * 4096 + 4096"')
    code, out, _ = check_text(capsys, tmp_path, text)
    assert code == 1
    assert "✗ fc1 · weights (standard): expected 102,764,544" in out and "difference −4,096" not in out
    assert "difference -4,096" in out
    assert "weights = F_in·F_out = 25088·4096 = 102,760,448" in out


def test_textbook_12_d_squared_fails_by_the_biases_and_norms(capsys, tmp_path):
    text = variant("transformer_layer.yaml", 'params: "12 * d * d + 13 * d"', 'params: "12 * d * d"')
    code, out, _ = check_text(capsys, tmp_path, text)
    assert code == 1
    assert "✗ layer · params (standard): expected 7,077,888" in out and "difference +9,984" in out
    # the derivation is the sum of the layer's parts
    assert "group layer: params is the sum of its parts" in out
    # its parts: each LayerNorm 2·d = 1,536; attention 4·d² + 4·d = 2,362,368
    assert "ln_1 = 1,536" in out and "attn = 2,362,368" in out


def test_exact_flops_without_the_minus_one_fails(capsys, tmp_path):
    # 2·C_in·K² per output instead of 2·C_in·K² − 1: one FLOP too many per output element,
    # 8·32·32 = 8,192 outputs
    text = variant("exact_flops.yaml", 'flops: "C_out * H_out * W_out * (2 * C_in * K * K - 1)"',
                   'flops: "C_out * H_out * W_out * 2 * C_in * K * K"')
    code, out, _ = check_text(capsys, tmp_path, text)
    assert code == 1
    assert "✗ no_bias · flops (exact)" in out and "difference -8,192" in out
    assert "FLOPs = 2·mac − dots" in out


def test_mac_is_not_a_flop(capsys, tmp_path):
    text = variant("exact_flops.yaml", 'flops: "2 * C_out * H_out * W_out * C_in * K * K"',
                   'flops: "C_out * H_out * W_out * C_in * K * K"')
    code, out, _ = check_text(capsys, tmp_path, text)
    assert code == 1 and "actual/expected = 2" in out


def test_json_output(capsys, tmp_path):
    text = variant("group_conv.yaml", 'weights: "C * C * K * K // g"', 'weights: "C * C * K * K"')
    code, out, _ = check_text(capsys, tmp_path, text, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False and doc["model"] == "group_conv"
    bad = [e for e in doc["expectations"] if not e["ok"]]
    assert len(bad) == 1
    e = bad[0]
    # 256·256·9 = 589,824 expected; 589,824/4 = 147,456 counted
    assert (e["item"], e["quantity"], e["expected"], e["actual"], e["difference"]) == (
        "grouped", "weights", 589_824, 147_456, -442_368)
    assert e["path"] == "layers[1].conv2d.expect.weights" and e["line"] == 26
    assert any("C_in/g" in s for sec in e["derivation"] for s in sec["steps"])


# ---------------------------------------------------------------------------- --property

PLANTED = """
name: planted
variables: {H: 224, C: 16}
ranges: {H: [32, 512], C: [1, 64]}
input: [3, H, H]
layers:
  - conv2d:
      out: C
      kernel: 3
      stride: 2
      padding: 1
      # wrong for odd H: the output is floor((H + 2 - 3)/2) + 1 = ceil(H/2), not floor(H/2)
      expect: {macs: "C * (H // 2) * (H // 2) * 3 * 9"}
"""


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_property_shrinks_a_planted_floor_error(capsys, tmp_path, seed):
    code, out, _ = check_text(capsys, tmp_path, PLANTED, "--property", "--seed", str(seed), "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False
    # The smallest H in [32, 512] where ceil(H/2) ≠ floor(H/2) is 33; C shrinks to its low end.
    assert doc["counterexample"] == {"H": 33, "C": 1}
    (e,) = doc["expectations"]
    # at H = 33, C = 1: 17·17·27 = 7,803 counted, 16·16·27 = 6,912 expected
    assert (e["expected"], e["actual"]) == (6_912, 7_803)
    # calc's derivation shows the factor that differs: 17 rows, not 16
    steps = [s for sec in e["derivation"] for s in sec["steps"]]
    assert "H_out = floor((H_in + 2·p_h − d_h·(K_h − 1) − 1)/s_h) + 1 = floor((33 + 2·1 − 1·(3 − 1) − 1)/2) + 1 = 17" in steps


def test_property_counterexample_is_minimal():
    # independent of the shrinker: every H below 33 in the range satisfies the planted formula
    spec = parse_spec(PLANTED)
    assert all(o.ok for o in check_model(spec.build({"H": 32, "C": 1})))
    assert not all(o.ok for o in check_model(spec.build({"H": 33, "C": 1})))


def test_property_passes_a_correct_formula(capsys, tmp_path):
    text = PLANTED.replace('"C * (H // 2) * (H // 2) * 3 * 9"', '"C * ((H + 1) // 2) ** 2 * 27"')
    code, out, _ = check_text(capsys, tmp_path, text, "--property", "--examples", "40")
    assert code == 0 and "✓ every expression expectation holds at all 40 examples" in out


@pytest.mark.parametrize("name", ["group_conv", "depthwise_separable", "exact_flops", "transformer_layer"])
def test_property_on_worked_examples(capsys, name):
    code, out, _ = run(capsys, "check", str(SPECS / "examples" / f"{name}.yaml"), "--property", "--examples", "12")
    assert code == 0, out


# ---------------------------------------------------------------------------- errors

@pytest.mark.parametrize("expect, words", [
    ("{macz: 1}", ["layers[0].conv2d.expect.macz", "unknown key 'macz'", "did you mean 'macs'"]),
    ("3", ["layers[0].conv2d.expect", "must be a mapping"]),
    ("{convention: standard}", ["states no quantity"]),
    ('{macs: "Q * 2"}', ["layers[0].conv2d.expect.macs", "undefined name 'Q'", "H_out"]),
    ("{macs: true}", ["a number or an expression"]),
    ("{params: 1, convention: nope}", ["nope"]),
    ("{output: 5}", ["output is a shape"]),
])
def test_bad_expectations_are_spec_errors(capsys, tmp_path, expect, words):
    text = f"name: t\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {{out: 4, kernel: 3, expect: {expect}}}\n"
    code, out, err = check_text(capsys, tmp_path, text)
    assert code == 2 and "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    assert "line 4" in err or ":4" in err


@pytest.mark.parametrize("ranges, words", [
    ("", ["declares none"]),
    ("ranges: {Z: [1, 2]}", ["ranges.Z", "not a variable"]),
    ("ranges: {H: [9, 2]}", ["low must not exceed high"]),
])
def test_bad_ranges(capsys, tmp_path, ranges, words):
    text = PLANTED.replace("ranges: {H: [32, 512], C: [1, 64]}", ranges)
    code, _, err = check_text(capsys, tmp_path, text, "--property")
    assert code == 2
    for w in words:
        assert w in err


def test_no_expectations_is_not_a_failure(capsys):
    code, out, _ = run(capsys, "check", str(SPECS / "alexnet.yaml"))
    assert code == 0 and "states no expectations" in out


def test_expect_changes_no_count(capsys):
    plain = "name: t\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3}\n"
    with_expect = plain.replace("kernel: 3}", "kernel: 3, expect: {params: 1}}")
    from calc import analyze
    a, b = (analyze(parse_spec(t).build()) for t in (plain, with_expect))
    assert a.totals == b.totals


def test_schema_knows_expect_and_ranges():
    from calc.catalog import spec_schema
    schema = spec_schema()
    assert "expect" in schema["properties"] and "ranges" in schema["properties"]
    conv = next(v for v in schema["$defs"]["item"]["anyOf"] if "conv2d" in v.get("properties", {}))
    props = conv["properties"]["conv2d"]["properties"]
    assert "expect" in props


def test_examples_are_not_in_the_zoo():
    from calc import models
    # the zoo is specs/*.yaml (not recursive): the worked examples stay out of `calc models`
    names = {p.stem for p in models.spec_files()}
    assert "alexnet" in names and not names & {p.stem for p in EXAMPLES}


def test_schema_accepts_the_examples_and_rejects_a_typo_in_expect(capsys):
    jsonschema = pytest.importorskip("jsonschema")
    yaml = pytest.importorskip("yaml")
    main(["schema"])
    validator = jsonschema.Draft202012Validator(json.loads(capsys.readouterr().out))
    for path in EXAMPLES:
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, (path.name, errors[0].message[:300])
    typo = {"name": "x", "input": [3, 8, 8], "layers": [{"conv2d": {"out": 3, "kernel": 3, "expect": {"macz": 1}}}]}
    assert list(validator.iter_errors(typo))


def test_expectations_in_a_block_are_checked_at_every_use(capsys, tmp_path):
    # ResNet-18's basic block: conv1 is 3×3, so C_out·H_out·W_out·C_in·9 MACs at every use:
    # layer1.0.conv1 64·56·56·64·9 = 115,605,504; layer2.0.conv1 (stride 2) 128·28·28·64·9 = 57,802,752
    text = (SPECS / "resnet18.yaml").read_text()
    at = text.index("conv2d: {name: conv1, out: planes")
    end = text.index("}", at)
    text = text[:end] + ', expect: {macs: "C_out * H_out * W_out * C_in * 9"}' + text[end:]
    code, out, _ = check_text(capsys, tmp_path, text)
    assert code == 0
    assert "✓ layer1.0.conv1 · macs (standard) = 115,605,504" in out
    assert "✓ layer2.0.conv1 · macs (standard) = 57,802,752" in out
    assert "8 hold, 0 fail" in out      # 2 blocks in each of 4 stages


def test_identical_repetitions_are_checked_once_with_a_note(capsys, tmp_path):
    text = ("name: t\ninput: [4, 8, 8]\nlayers:\n  - repeat:\n      times: 5\n      layers:\n"
            "        - conv2d: {out: 4, kernel: 3, padding: 1, expect: {params: \"4 * 4 * 9 + 4\"}}\n")
    code, out, _ = check_text(capsys, tmp_path, text)
    assert code == 0 and "and 4 identical repetitions after it" in out and "1 hold, 0 fail" in out


def test_formulas_may_build_on_the_parameter_counts(capsys, tmp_path):
    # the teaching count of AlexNet's conv1: params·H_out·W_out = 34,944·55·55 = 105,705,600
    text = variant("alexnet_conv1.yaml", "macs: 105705600", 'macs: "params * H_out * W_out"')
    code, out, _ = check_text(capsys, tmp_path, text)
    assert code == 0 and "conv1 · macs (params-hw) = 105,705,600   (expected params * H_out * W_out)" in out


def test_an_output_written_as_one_string_says_how_to_write_it(capsys, tmp_path):
    text = 'name: t\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3, expect: {output: "[4, 6, 6]"}}\n'
    code, _, err = check_text(capsys, tmp_path, text)
    assert code == 2 and "layers[0].conv2d.expect.output" in err and "output: [C_out, H_out, W_out]" in err
