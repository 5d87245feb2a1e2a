"""A shape-preserving block repeated 10, 1,000 and 1,000,000 times: analysed once and
multiplied, reported correctly, and the reports stay short for huge repeats."""
import json

import pytest

from calc.cli import main
from calc.report import FOLD, format_json, format_table
from helpers import run_text

BLOCK = """
name: repeated
input: [64, 16, 16]
layers:
  - repeat:
      times: {times}
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


@pytest.mark.parametrize("times", [10, 1_000, 1_000_000])
def test_totals_scale_with_the_repeat_count(times):
    a = run_text(BLOCK.format(times=times))
    t = a.totals
    assert (t.params, t.buffers, t.macs) == (times * PARAMS, times * BUFFERS, times * MACS)
    assert a.root.leaves == times * LEAVES and a.root.activations == times * ACT
    # analysed once: the repeat holds one iteration with its multiplicity
    (child,) = a.root.children[0].result.children
    assert child.count == times and child.first == 0


def test_small_repeats_are_listed_in_full():
    a = run_text(BLOCK.format(times=10))
    names = [row.name for row in a.rows(depth=2)]
    assert names == ["0"] + [f"0.{i}" for i in range(10)]
    assert len(list(a.rows(leaves_only=True))) == 10 * LEAVES


def test_huge_repeats_fold_in_table_and_json():
    times = 1_000_000
    a = run_text(BLOCK.format(times=times))
    table = format_table(a)
    assert "0.1…0.999999" in table and f"×{times - 1:,}" in table and "(7,000,000 layers)" in table
    assert len(table.splitlines()) < 40
    doc = json.loads(format_json(a))
    assert len(doc["layers"]) == LEAVES + 1
    folded = doc["layers"][-1]
    assert folded["name"] == "0.1…0.999999" and folded["count"] == times - 1
    assert folded["macs"] == (times - 1) * MACS
    for key in ("params", "macs", "flops", "buffers"):
        assert sum(entry[key] for entry in doc["layers"]) == doc["totals"][key]
    shallow = json.loads(format_json(a, depth=1))["layers"]
    assert [e["name"] for e in shallow] == ["0"] and shallow[0]["macs"] == times * MACS


def test_runs_up_to_the_fold_limit_are_not_folded():
    a = run_text(BLOCK.format(times=FOLD))
    assert sum(1 for row in a.rows(depth=2, fold=FOLD)) == FOLD + 1


def test_cli_depth_applies_to_json_and_csv(capsys, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(BLOCK.format(times=3))
    assert main(["analyze", str(path), "--format", "json", "--depth", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in doc["layers"]] == ["0.0", "0.1", "0.2"]
    assert main(["analyze", str(path), "--format", "csv", "--depth", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("0,repeat,64x16x16,64x16x16,") and len(lines) == 2
