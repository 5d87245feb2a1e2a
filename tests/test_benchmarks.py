"""The synthetic specs of the benchmarks are valid and have the sizes they claim (the benchmarks
themselves are timed by benchmarks/run.py, never by the tests)."""
import sys

from conftest import ROOT
from helpers import run_text

sys.path.insert(0, str(ROOT / "benchmarks"))
import synthetic  # noqa: E402


def test_flat_spec_has_n_layers():
    for n in (1, 2, 3, 10, 31):
        a = run_text(synthetic.flat(n))
        assert a.root.leaves == n and a.output_shape[1:] == (8, 8)


def test_repeated_spec_keeps_the_shape():
    # 7 leaves per repetition (conv, bn, relu, conv, bn, add, relu); 2 · 64·64·9 MACs per pixel.
    a = run_text(synthetic.repeated(5))
    assert a.root.leaves == 35 and a.output_shape == (64, 16, 16)
    assert a.totals.macs == 5 * 2 * 64 * 16 * 16 * 64 * 9
