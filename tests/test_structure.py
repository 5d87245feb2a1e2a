"""Nested specs: the hierarchical table and --depth, dotted names, --set, errors inside blocks,
and the structure keywords (repeat index, conditional residual, list variables)."""
import json

import pytest

from reference_data import REFERENCE

from calc.cli import main
from calc.errors import ShapeError, SpecError
from conftest import SPECS
from helpers import leaves, run_spec, run_text
from test_zoo import resnet_bottleneck


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def table_names(out):
    """The name column of a table (rows between the two rules), with their indentation."""
    lines = out.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("─")]
    return [line.split("  ")[0] if not line.startswith(" ") else line[:len(line) - len(line.lstrip())]
            + line.lstrip().split(" ")[0] for line in lines[rules[0] + 1:rules[1]]]


# ---------------------------------------------------------------------------- hierarchy

def test_resnet50_table_is_hierarchical(capsys):
    code, out, _ = run(capsys, "analyze", str(SPECS / "resnet50.yaml"))
    assert code == 0
    names = table_names(out)
    # stage → block → layers, indented by depth, with the block's own row (its subtotal)
    i = names.index("layer1")
    assert names[i + 1:i + 3] == ["  layer1.0", "    layer1.0.conv1"]
    assert "      layer1.0.downsample.0" in names
    assert "bottleneck (12 layers)" in out and "stage (32 layers)" in out
    assert "25,557,032" in out and "4,089,184,256" in out


def test_depth_collapses_the_table(capsys):
    _, out1, _ = run(capsys, "analyze", str(SPECS / "resnet50.yaml"), "--depth", "1")
    names = table_names(out1)
    assert names == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                     "avgpool", "flatten", "fc"]
    _, out2, _ = run(capsys, "analyze", str(SPECS / "resnet50.yaml"), "--depth", "2")
    names2 = [n.strip() for n in table_names(out2)]
    assert [n for n in names2 if n.startswith("layer3.")] == [f"layer3.{i}" for i in range(6)]
    assert not any(n.count(".") > 1 for n in names2)
    # collapsed rows carry their subtree's totals
    _, md, _ = run(capsys, "analyze", str(SPECS / "resnet50.yaml"), "--depth", "1", "--format", "markdown")
    cells = [line.split("|")[1:-1] for line in md.splitlines() if line.startswith("| ") and "**" not in line]
    body = [[c.strip() for c in row] for row in cells[1:]]
    assert [row[0] for row in body] == names
    # torchvision's ResNet-50: its parameters and FlopCounterMode FLOPs / 2 (the reference data)
    assert sum(int(row[3].replace(",", "")) for row in body) == REFERENCE["resnet50"]["params_total"]
    assert 2 * sum(int(row[4].replace(",", "")) for row in body) == REFERENCE["resnet50"]["torch_flops"]


def test_subtotals_never_double_count():
    a = run_spec("resnet50")
    rows = list(a.rows())
    by_name = {row.name: row.result for row in rows}
    leaf_rows = [row for row in rows if row.result.is_leaf]
    assert sum(r.result.params for r in leaf_rows) == a.totals.params
    assert sum(r.result.macs for r in leaf_rows) == a.totals.macs
    for name, result in by_name.items():
        if not result.is_leaf:
            inside = [r.result for r in leaf_rows if r.name.startswith(name + ".")]
            assert sum(r.params for r in inside) == result.params, name
            assert sum(r.macs for r in inside) == result.macs, name
            assert len(inside) == result.leaves, name


def test_json_lists_leaves_with_full_dotted_names(capsys):
    code, out, _ = run(capsys, "analyze", str(SPECS / "resnet50.yaml"), "--format", "json")
    doc = json.loads(out)
    names = [layer["name"] for layer in doc["layers"]]
    assert len(names) == len(set(names))
    assert names[:5] == ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1"]
    assert "layer4.2.conv3" in names and "layer2.0.downsample.0" in names and names[-1] == "fc"
    # a module used several times in torchvision (the bottleneck's ReLU) gets #2, #3
    assert [n for n in names if n.startswith("layer1.0.relu")] == ["layer1.0.relu", "layer1.0.relu#2",
                                                                   "layer1.0.relu#3"]
    # 16 bottlenecks × (3 conv + 3 BN + 3 ReLU + add) + 4 projections × 2 + stem 4 + head 3
    assert len(names) == 16 * 10 + 4 * 2 + 4 + 3
    assert sum(layer["params"] for layer in doc["layers"]) == doc["totals"]["params"]
    assert sum(layer["flops"] for layer in doc["layers"]) == doc["totals"]["flops"]


def test_unnamed_structure_is_numbered_in_the_enclosing_namespace():
    a = run_text("""
        name: t
        input: [3, 8, 8]
        blocks:
          unit:
            layers: [{conv2d: {out: 3, kernel: 1}}, relu]
        layers:
          - group:
              name: features
              layers:
                - conv2d: {out: 3, kernel: 1}
                - repeat: {times: 2, layers: [batchnorm2d, relu]}
                - group: {layers: [identity]}
                - repeat: {times: 2, layers: [unit]}
                - relu: {name: act}
                - relu: {name: act}
          - flatten
    """)
    names = [row.name for row in a.rows(leaves_only=True)]
    assert names == ["features.0", "features.1", "features.2", "features.3", "features.4",
                     "features.5", "features.6.0", "features.6.1", "features.7.0", "features.7.1",
                     "features.act", "features.act#2", "1"]
    assert [row.name for row in a.rows(depth=1)] == ["features", "1"]


# ---------------------------------------------------------------------------- --set

def test_set_changes_a_variant_as_derived(capsys):
    code, out, err = run(capsys, "analyze", str(SPECS / "resnet50.yaml"), "--set", "width=0.5",
                         "--input", "3x160x160", "--format", "json")
    assert code == 0, err
    t = json.loads(out)["totals"]
    assert (t["params"], t["macs"]) == resnet_bottleneck([3, 4, 6, 3], 0.5, 160)
    code, out, err = run(capsys, "analyze", str(SPECS / "resnet50.yaml"), "--set", "layers=[2, 2, 2, 2]",
                         "--set", "num_classes=10", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["variables"]["layers"] == [2, 2, 2, 2] and doc["output_shape"] == [10]
    assert (doc["totals"]["params"], doc["totals"]["macs"]) == resnet_bottleneck([2, 2, 2, 2], 1.0, 224, 10)


@pytest.mark.parametrize("argv, fragment", [
    (["--set", "layers=[2, 2]"], "index 2 is out of range for a list of 2"),
    (["--set", "layers={a: 1}"], "expected a number"),
    (["--set", "width=0"], "layers[0].conv2d.out: must be greater than or equal to 1, got 0"),
])
def test_bad_set_values_are_errors(capsys, argv, fragment):
    code, out, err = run(capsys, "analyze", str(SPECS / "resnet50.yaml"), *argv)
    assert code == 2 and out == "" and fragment in err and "Traceback" not in err


# ---------------------------------------------------------------------------- errors in blocks

BLOCK_SPEC = """
    name: bad
    input: [3, 32, 32]
    blocks:
      bottleneck:
        params: {planes: null, groups: 1}
        layers:
          - conv2d: {out: planes, kernel: 1}
          - relu
          - conv2d: {out: planes, kernel: 3, padding: 1, groups: groups}
    layers:
      - conv2d: {out: 8, kernel: 3}
      - relu
      - bottleneck: {planes: 8}
      - identity
      - identity
      - identity
      - identity
      - bottleneck: {planes: PLANES, groups: GROUPS}
"""


def test_bad_argument_inside_a_block_names_definition_and_instance():
    with pytest.raises(SpecError) as info:
        run_text(BLOCK_SPEC.replace("PLANES", "8").replace("GROUPS", "0"))
    text = str(info.value)
    assert "blocks.bottleneck.layers[2].conv2d.groups" in text
    assert "in block 'bottleneck' used at layers[7]" in text
    assert "test.yaml:10:" in text        # the line of the faulty argument in the block


def test_shape_error_inside_a_block_gives_the_input_it_received():
    with pytest.raises(ShapeError) as info:
        run_text(BLOCK_SPEC.replace("PLANES", "6").replace("GROUPS", "4"))
    text = str(info.value)
    assert "blocks.bottleneck.layers[2].conv2d" in text
    assert "input channels 6 are not divisible by groups=4" in text
    assert "in block 'bottleneck' used at layers[7].bottleneck (line 19), input 8×30×30" in text


def test_error_in_a_nested_block_names_each_level():
    # A stage block repeats a unit block; in the second stage, the second unit's grouped
    # convolution cannot split the 8 channels it receives into 3 groups.
    with pytest.raises(ShapeError) as info:
        run_text("""
            name: nested
            input: [3, 16, 16]
            blocks:
              unit:
                params: {out: null, groups: 1}
                layers:
                  - residual:
                      main:
                        - conv2d: {out: out, kernel: 3, padding: 1, groups: groups}
                        - relu
              stage:
                params: {out: null}
                layers:
                  - conv2d: {out: out, kernel: 1}
                  - repeat:
                      times: 3
                      index: i
                      layers:
                        - unit: {out: out, groups: "3 if i == 1 else 1"}
            layers:
              - stage: {out: 6}
              - stage: {out: 8}
        """)
    text = str(info.value)
    assert "blocks.unit.layers[0].residual.main[0].conv2d: conv2d cannot take input 8×16×16" in text
    assert "in block 'stage' used at layers[1].stage (line 23), input 6×16×16" in text
    assert "in repetition 2 of 3" in text
    assert "in block 'unit' used at blocks.stage.layers[1].repeat.layers[0].unit (line 20), input 8×16×16" in text


# ---------------------------------------------------------------------------- structure keywords

def test_repeat_index_builds_each_iteration():
    a = run_text("""
        name: t
        input: [4, 16, 16]
        layers:
          - repeat:
              times: 3
              index: i
              layers:
                - conv2d: {out: "4 * (i + 1)", kernel: 3, padding: 1, stride: "2 if i == 0 else 1"}
    """)
    convs = leaves(a)
    assert [r.output_shape for r in convs] == [(4, 8, 8), (8, 8, 8), (12, 8, 8)]
    # (C_in·9 + 1)·C_out per convolution
    assert a.totals.params == (4 * 9 + 1) * 4 + (4 * 9 + 1) * 8 + (8 * 9 + 1) * 12


def test_residual_enabled_drops_the_shortcut():
    text = """
        name: t
        input: [8, 4, 4]
        variables: {res: true}
        layers:
          - residual:
              enabled: res
              main: [{conv2d: {out: 8, kernel: 1}}]
              shortcut: [{conv2d: {out: 8, kernel: 1}}]
    """
    on, off = run_text(text), run_text(text, set={"res": False})
    assert [r.kind for r in leaves(on)] == ["conv2d", "conv2d", "add"]
    assert [r.kind for r in leaves(off)] == ["conv2d"]
    assert on.totals.params == 2 * off.totals.params == 2 * (8 * 8 + 8)
    with pytest.raises(SpecError, match="enabled must be true or false"):
        run_text(text, set={"res": 2})


def test_list_variables_slices_and_sums():
    a = run_text("""
        name: t
        input: [2]
        variables:
          widths: [3, 5, 7]
        layers:
          - repeat:
              times: len(widths)
              index: i
              layers:
                - linear: {out: "widths[i] + sum(widths[:i])"}
    """)
    assert [r.output_shape for r in leaves(a)] == [(3,), (8,), (15,)]


@pytest.mark.parametrize("index, out, message", [
    ("3", "2", "index must be a name"),
    ("i", "widths[i + 1]", "index 3 is out of range for a list of 3"),
    ("i", "widths[i:]", "valid integer"),
])
def test_repeat_index_errors(index, out, message):
    text = f"""
        name: t
        input: [2]
        variables: {{widths: [3, 5, 7]}}
        layers:
          - repeat:
              times: 3
              index: {index}
              layers: [{{linear: {{out: "{out}"}}}}]
    """
    with pytest.raises(SpecError, match=message):
        run_text(text)


def test_named_skip_connections_across_scales():
    a = run_spec("unet")
    rows = {row.name: row.result for row in a.rows()}
    # dec4 upsamples the 256×8×8 bottleneck to 128×16×16 and concatenates enc4 (128×16×16)
    assert rows["enc4"].output_shape == (128, 16, 16)
    assert rows["dec4.up"].output_shape == (128, 16, 16)
    assert rows["dec4.cat"].output_shape == (256, 16, 16)
    assert rows["dec1.cat"].output_shape == (32, 128, 128)
    assert a.output_shape == (2, 128, 128)


def test_from_reads_an_earlier_output():
    a = run_text("""
        name: t
        input: [3, 8, 8]
        layers:
          - conv2d: {name: stem, out: 4, kernel: 1}
          - conv2d: {out: 6, kernel: 3, padding: 1}
          - conv2d: {out: 6, kernel: 1, from: stem}
          - concat: {with: [stem]}
    """)
    assert a.output_shape == (10, 8, 8)
    assert leaves(a)[2].input_shape == (4, 8, 8)
