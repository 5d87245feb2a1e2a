"""A shape-preserving block repeated 10, 1,000 and 1,000,000 times: analysed once and
multiplied, reported correctly, and the reports stay short for huge repeats."""
import json

import pytest

from calc.cli import main
from calc.render.report import FOLD, format_json, format_table
from helpers import run_text

BLOCK = """
name: repeated
input: [64, 16, 16]
layers:
  - repeat:
      times: {times}{name}
      layers:
        - residual:
            main:
              - conv2d: {{out: 64, kernel: 3, padding: 1, bias: false}}
              - batchnorm2d
              - relu
              - conv2d: {{out: 64, kernel: 3, padding: 1, bias: false}}
              - batchnorm2d
        - relu
"""
# One iteration: two 3×3 convolutions 64→64 without bias: 2 · 64·64·9 = 73,728 weights, two
# batch norms: 2 · 2·64 = 256 parameters and 2 · (2·64 + 1) = 258 buffers; MACs per conv
# 64·16·16 · 64·9 = 9,437,184; 7 leaves (conv, bn, relu, conv, bn, add, relu), each output
# 64·16·16 = 16,384 elements.
PARAMS, BUFFERS, MACS, LEAVES, ACT = 73_728 + 256, 258, 2 * 9_437_184, 7, 7 * 16_384


def spec(times, name=None):
    return BLOCK.format(times=times, name=f"\n      name: {name}" if name else "")


@pytest.mark.parametrize("times", [10, 1_000, 1_000_000])
def test_totals_scale_with_the_repeat_count(times):
    a = run_text(spec(times))
    t = a.totals
    assert (t.params, t.buffers, t.macs) == (times * PARAMS, times * BUFFERS, times * MACS)
    assert a.root.leaves == times * LEAVES and a.root.activations == times * ACT
    # analysed once: the repeat holds one iteration with its multiplicity
    (child,) = a.root.children[0].result.children
    assert child.count == times and child.first == 0


def test_small_repeats_are_listed_in_full():
    # Unnamed structure is syntax: the leaves are numbered in the enclosing namespace; the
    # residual's join is called 'add', then 'add#2'...
    a = run_text(spec(10))
    names = [row.name for row in a.rows()]
    expected = []
    for j in range(10):
        expected += [str(7 * j + k) for k in range(5)] + ["add" if j == 0 else f"add#{j + 1}", str(7 * j + 6)]
    assert names == expected


def test_huge_repeats_fold_in_table_and_json():
    times = 1_000_000
    a = run_text(spec(times))
    table = format_table(a)
    assert "7…6999999" in table and f"×{times - 1:,}" in table
    assert len(table.splitlines()) < 30
    doc = json.loads(format_json(a))
    assert len(doc["layers"]) == LEAVES + 1
    folded = doc["layers"][-1]
    assert folded["name"] == "7…6999999" and folded["count"] == times - 1
    assert folded["macs"] == (times - 1) * MACS
    for key in ("params", "macs", "flops", "buffers"):
        assert sum(entry[key] for entry in doc["layers"]) == doc["totals"][key]


def test_named_repeat_is_a_namespace_that_depth_collapses():
    times = 1_000_000
    a = run_text(spec(times, "stack"))
    assert "(7,000,000 layers)" in format_table(a, depth=1)
    shallow = json.loads(format_json(a, depth=1))["layers"]
    assert [e["name"] for e in shallow] == ["stack"] and shallow[0]["macs"] == times * MACS
    deep = json.loads(format_json(a))["layers"]
    assert deep[-1]["name"] == "stack.7…stack.6999999"


def test_runs_up_to_the_fold_limit_are_not_folded():
    a = run_text(spec(FOLD))
    assert sum(1 for row in a.rows(fold=FOLD)) == LEAVES * FOLD


def test_cli_depth_applies_to_json_and_csv(capsys, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(spec(3, "stack"))
    assert main(["analyze", str(path), "--format", "json", "--depth", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in doc["layers"]] == ["stack"] and doc["layers"][0]["macs"] == 3 * MACS
    assert main(["analyze", str(path), "--format", "csv", "--depth", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 3 * LEAVES and lines[1].startswith("stack.0,conv2d,64x16x16,64x16x16,")
