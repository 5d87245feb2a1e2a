"""calc.render: the one table layout, and whole reports compared character for character.

The reports' numbers come either from a small spec whose counts are derived beside it, or from
hand-made results (a comparison, sweep variants) whose values are the test's own inputs; what
is checked is where every character lands.
"""
import subprocess
import sys

from calc.compare import Comparison, ConventionTotal, Diff, LayerDiff, TypeDiff
from calc.render.compare import format_comparison
from calc.render.report import FORMATS
from calc.render.sweep import format_table as sweep_table
from calc.render.table import left, pairs, right, table
from calc.sweep import Grid, Variant
from conftest import ROOT
from helpers import run_text


def test_table_aligns_left_and_right_columns_two_spaces_apart():
    lines = table((left("name"), right("n"), left("note")), [("a", "1", "x"), ("bbb", "1,000", "")])
    assert lines == [
        "name      n  note",
        "─────────────────",    # as long as the title line
        "a         1  x",
        "bbb   1,000",          # an empty last cell leaves no trailing spaces
    ]


def test_table_indents_nested_rows_and_ends_with_totals():
    lines = table((left("name"), right("n")), [("a", "1"), ("b", "2"), ("c", "30")], indent=[0, 1, 2],
                  total=("total", "33"))
    assert lines == [
        "name    n",
        "─────────",
        "a       1",
        "  b     2",
        "    c  30",
        "─────────",
        "total  33",            # the widest first cell: a totals line counts for the widths
    ]


def test_table_closed_without_totals_and_with_no_rows():
    assert table((left("a"), right("bb")), [], closed=True) == ["a  bb", "─────", "─────"]
    assert table((left("a"), right("bb")), []) == ["a  bb", "─────"]


def test_pairs_start_values_in_one_column():
    assert pairs([("one", "1"), ("three", "3 (three)")]) == ["one    1", "three  3 (three)"]


# conv2d 3->4, 3x3, padding 1 on 3x8x8: weights 4·3·9 = 108, bias 4, params 112;
#   MACs 4·8·8 outputs × 27 = 6,912.
# batchnorm2d(4): weight 4 + bias 4 = 8 params; buffers 2·4 + 1 = 9.
# linear 256 -> 10: weights 2,560, bias 10, params 2,570; MACs 2,560.
# Totals: params 112 + 8 + 2,570 = 2,690 (weights 108 + 4 + 2,560 = 2,672; bias 4 + 4 + 10 = 18);
#   MACs 6,912 + 2,560 = 9,472, FLOPs 2 × 9,472 = 18,944; conv share 6,912 / 9,472 = 72.97%.
# Memory (fp32): parameters 2,690 × 4 = 10,760 B; activations: every layer output,
#   256 (conv) + 256 (bn) + 256 (relu) + 256 (flatten) + 10 (fc) = 1,034 elements × 4 = 4,136 B.
TINY = """
    name: tiny
    input: [3, 8, 8]
    layers:
      - group:
          name: features
          layers:
            - conv2d: {out: 4, kernel: 3, padding: 1}
            - batchnorm2d
            - relu
      - flatten
      - linear: {out: 10, name: fc}
"""

TINY_TABLE = """\
tiny · input 3×8×8 · batch 1 · convention standard · fp32

name          type              output  params   MACs            share
──────────────────────────────────────────────────────────────────────
features      group (3 layers)  4×8×8      120  6,912  6.91 K   72.97%
  features.0  conv2d            4×8×8      112  6,912  6.91 K   72.97%
  features.1  batchnorm2d       4×8×8        8      0       0    0.00%
  features.2  relu              4×8×8        0      0       0    0.00%
1             flatten           256          0      0       0    0.00%
fc            linear            10       2,570  2,560  2.56 K   27.03%
──────────────────────────────────────────────────────────────────────
total                           10       2,690  9,472  9.47 K  100.00%

output             10
parameters         2,690 (2.69 K); trainable 2,690; weights 2,672, bias 18
buffers            9 (not parameters: e.g. batch-norm running statistics)
MACs               9,472 (9.47 K)
FLOPs              18,944 (18.94 K)
parameter memory   10,760 B (0.01 MiB, fp32)
activation memory  4,136 B per sample (0.00 MiB); 4,136 B per batch (0.00 MiB)
"""

TINY_MARKDOWN_DEPTH_1 = """\
**tiny · input 3×8×8 · batch 2 · convention standard · fp32**

| name | type | output | params | MACs | share |
|---|---|---|---:|---:|---:|
| features | group (3 layers) | 4×8×8 | 120 | 13,824 | 72.97% |
| 1 | flatten | 256 | 0 | 0 | 0.00% |
| fc | linear | 10 | 2,570 | 5,120 | 27.03% |
| **total** | | 10 | 2,690 | 18,944 | 100% |

- **output**: 10 per sample, batch 2
- **parameters**: 2,690 (2.69 K); trainable 2,690; weights 2,672, bias 18
- **buffers**: 9 (not parameters: e.g. batch-norm running statistics)
- **MACs**: 18,944 (18.94 K)
- **FLOPs**: 37,888 (37.89 K)
- **parameter memory**: 10,760 B (0.01 MiB, fp32)
- **activation memory**: 4,136 B per sample (0.00 MiB); 8,272 B per batch (0.01 MiB)
"""

TINY_CSV = """\
name,type,input_shape,output_shape,params,macs,flops
features.0,conv2d,3x8x8,4x8x8,112,6912,13824
features.1,batchnorm2d,4x8x8,4x8x8,8,0,0
features.2,relu,4x8x8,4x8x8,0,0,0
1,flatten,4x8x8,256,0,0,0
fc,linear,256,10,2570,2560,5120
"""


def test_analyze_table_markdown_and_csv():
    a = run_text(TINY)
    assert FORMATS["table"](a) == TINY_TABLE
    assert FORMATS["csv"](a) == TINY_CSV
    # batch 2 doubles MACs, FLOPs and the batch's activations; depth 1 folds the group
    assert FORMATS["markdown"](run_text(TINY, batch=2), depth=1) == TINY_MARKDOWN_DEPTH_1


COMPARISON = """\
m · input 3×8×8 · batch 2 · every convention

convention       MACs              FLOPs  MACs − standard  the tool prints
──────────────────────────────────────────────────────────────────────────
standard        1,000  1.00 K      2,000               +0
thop        1,200,000  1.20 M  2,400,000       +1,199,000  1,200,000 MACs
fvcore            900     900      1,800             -100  1,800 FLOPs
torchinfo           -       -          -                -  cannot count: no rule for lstm

where standard and thop part ways: standard 1,000 MACs, thop 1,200,000 MACs (+1,199,000)

by layer type:
type    layers  standard       thop  thop − standard
────────────────────────────────────────────────────
conv2d       1       900  1,000,000         +999,100
linear       1       100    199,000         +198,900

by layer (2 differ, first 1 shown):
name  type    standard       thop  thop − standard  rule standard  rule thop
────────────────────────────────────────────────────────────────────────────
conv  conv2d       900  1,000,000         +999,100  ops            ops + y
"""


def test_comparison_text():
    c = Comparison("m", (3, 8, 8), 2, (
        ConventionTotal("standard", 1000, 2000, "macs"),
        ConventionTotal("thop", 1_200_000, 2_400_000, "macs", tool=True),
        ConventionTotal("fvcore", 900, 1800, "flops", tool=True),
        ConventionTotal("torchinfo", None, None, "macs", "no rule for lstm", True)),
        Diff("standard", "thop", (LayerDiff("conv", "conv2d", 900, 1_000_000, "ops", "ops + y"),
                                  LayerDiff("fc", "linear", 100, 199_000, "ops", "ops + y")),
             (TypeDiff("conv2d", 1, 900, 1_000_000), TypeDiff("linear", 1, 100, 199_000)), 1000, 1_200_000))
    assert format_comparison(c, limit=1) == COMPARISON


SWEEP = """\
title

#  width  input    batch  params       MACs               FLOPs  param MiB  act MiB  output  pareto  error
──────────────────────────────────────────────────────────────────────────────────────────────────────────
0    0.5  3×8×8        1   1,234  5,000,000  5.00 M  10,000,000       0.00     1.00  10           *
1    0.5  spec's       1       -          -       -           -          -        -  -               too small
3    1.0  3×32×32      1       2          3       3           6       0.00     3.00  1000         *
──────────────────────────────────────────────────────────────────────────────────────────────────────────
3 variants shown of 4; 1 invalid; 2 Pareto-optimal (*) for macs (min) and params (max)
"""


def test_sweep_table():
    grid = Grid((("width", (0.5, 1.0)),), ((3, 8, 8), None), (1,))
    variants = [Variant(0, 1234, 5_000_000, 10_000_000, 4936, 2**20, (3, 8, 8), (10,), None),
                Variant(1, None, None, None, None, None, None, None, "too small"),
                Variant(3, 2, 3, 6, 8, 3 * 2**20, (3, 32, 32), (1000,), None)]
    text = sweep_table(grid, variants, [True, False, True], title="title",
                       pareto_cols=["macs (min)", "params (max)"], total=4)
    assert text == SWEEP
    # without an invalid variant the error column goes
    assert "error" not in sweep_table(grid, variants[::2])


def test_analyze_loads_only_its_own_rendering():
    code = ("import sys, io, contextlib; from calc.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()): main(['analyze', 'specs/alexnet.yaml'])\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('calc'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    loaded = set(proc.stdout.split())
    assert "calc.render.report" in loaded, proc.stderr
    others = {"calc.render.compare", "calc.render.sweep", "calc.render.explain", "calc.render.catalog",
              "calc.compare", "calc.sweep", "calc.explain", "calc.catalog", "calc.verify"}
    assert not loaded & others
