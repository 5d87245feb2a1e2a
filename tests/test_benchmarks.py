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


def test_distinct_spec_has_n_layers_all_different():
    # No two layers share type, arguments and input shape, so no cache answers for another.
    for n in (1, 2, 3, 10, 301):
        a = run_text(synthetic.distinct(n))
        rows = [row.result for row in a.rows(leaves_only=True)]
        assert a.root.leaves == n == len(rows)
        assert len({(r.layer.type_name, repr(r.layer), r.input_shape) for r in rows}) == n
        assert all(r.input_shape[1:] == (8, 8) for r in rows)


def test_peak_launcher_reports_the_command_s_own_figures(tmp_path):
    import json
    import subprocess
    out = tmp_path / "peak.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peak.py"), str(out), sys.executable, "-c",
                    "import sys; sys.exit(3)"], check=True)
    found = json.loads(out.read_text())
    assert found["code"] == 3 and found["seconds"] > 0 and found["peak_kib"] > 0
