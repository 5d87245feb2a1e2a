"""Sweeps: the grid, totals per variant (against plain analyze()), invalid rows, filters,
sorting, Pareto marking (against a brute-force check), CSV/JSON output, processes = serial."""
import csv
import io
import itertools
import json
import random

import pytest
from hypothesis import given, strategies as st

from calc import analyze, parse_spec
from calc import sweep as sw
from calc.render import sweep as rep
from calc.cli import main
from calc.errors import CalcError, SpecError

TINY = """
name: tiny
input: [3, 32, 32]
variables: {width: 1.0, groups: 1}
layers:
  - conv2d: {out: "int(16 * width)", kernel: 3, padding: 1}
  - relu
  - conv2d: {out: 32, kernel: 3, groups: groups}
  - maxpool2d: {kernel: 2}
  - adaptive_avgpool2d: {size: 1}
  - flatten
  - linear: {out: 10}
"""
SPEC = parse_spec(TINY, "tiny.yaml")


def grid(**kw):
    kw.setdefault("variables", [("width", [0.5, 0.75, 1.0]), ("groups", [1, 8])])
    return sw.make_grid(SPEC, kw["variables"], kw.get("inputs"), kw.get("batches"))


def run(g, **kw):
    return list(sw.sweep(TINY, "tiny.yaml", g, **kw))


def test_grid_count_order_and_points():
    g = grid(inputs=[(3, 32, 32), (3, 3, 3)], batches=[1, 4])
    assert len(g) == 3 * 2 * 2 * 2
    expected = list(itertools.product([0.5, 0.75, 1.0], [1, 8], [(3, 32, 32), (3, 3, 3)], [1, 4]))
    assert [(*v, s, b) for v, s, b in g.points()] == expected
    assert [(*v, s, b) for v, s, b in (g.point(i) for i in range(len(g)))] == expected
    assert [v.index for v in run(g)] == list(range(len(g)))


def test_one_variant_by_hand():
    # width 1, groups 1, 3×32×32: conv 3→16 k3 p1: 3·16·9 + 16 = 448 params, 16·32·32·27 = 442,368
    # MACs; conv 16→32 k3 (30×30 out): 16·32·9 + 32 = 4,640 params, 32·30·30·16·9 = 4,147,200 MACs;
    # linear 32→10: 330 params, 320 MACs.
    (v,) = run(grid(variables=[("width", [1.0])]))
    assert (v.params, v.macs, v.flops) == (448 + 4_640 + 330, 442_368 + 4_147_200 + 320,
                                           2 * (442_368 + 4_147_200 + 320))
    assert v.param_bytes == 4 * v.params and v.output_shape == (10,) and v.error is None


def test_totals_match_analyze_and_invalid_rows_are_reported():
    g = grid(inputs=[(3, 32, 32), (3, 3, 3)], batches=[1, 4])
    rows = run(g, dtype="fp16")
    for v in rows:
        values, shape, batch = g.point(v.index)
        overrides = dict(zip(g.names, values))
        try:
            t = analyze(SPEC.build(overrides), input_shape=shape, batch=batch, dtype="fp16").totals
        except CalcError as exc:   # the sweep must report it in the row
            assert v.error is not None and v.params is None, exc
            continue
        assert v.error is None
        assert (v.params, v.macs, v.flops, v.param_bytes, v.activation_bytes) == (
            t.params, t.macs, t.flops, t.param_bytes, t.activation_bytes)
    errors = {v.index: v.error for v in rows if v.error}
    # width 0.75 gives 12 channels, which groups=8 cannot divide; a 3×3 input leaves a 1×1 map
    # that a 2×2 max pool cannot take.
    for i, (values, shape, batch) in enumerate(g.points()):
        bad_groups = values == (0.75, 8)
        too_small = shape == (3, 3, 3)
        assert (i in errors) == (bad_groups or too_small)
        if bad_groups:
            assert "not divisible by groups=8" in errors[i]
        elif too_small:
            assert "maxpool2d" in errors[i]


def test_unknown_variable_convention_or_dtype_is_fatal():
    with pytest.raises(SpecError, match="no such variable"):
        sw.make_grid(SPEC, [("depth", [1])])
    with pytest.raises(Exception, match="unknown convention"):
        run(grid(), convention="nope")
    with pytest.raises(SpecError, match="unknown dtype"):
        run(grid(), dtype="fp7")


def test_filter_sort():
    g = grid(batches=[1, 2])
    rows = run(g)
    keep = sw.compile_filter("macs < 5e6 and width >= 0.75", g)
    kept = [v for v in rows if keep(v)]
    assert kept == [v for v in rows if v.macs is not None and v.macs < 5e6 and g.point(v.index)[0][0] >= 0.75]
    assert kept and len(kept) < len(rows)
    by_macs = sw.sort_variants(g, rows, "macs")
    valid = [v for v in rows if v.error is None]
    assert by_macs[:len(valid)] == sorted(valid, key=lambda v: (v.macs, v.index))
    assert all(v.error for v in by_macs[len(valid):])
    down = sw.sort_variants(g, rows, "macs", descending=True)
    assert [v.macs for v in down[:len(valid)]] == sorted((v.macs for v in valid), reverse=True)
    assert sw.parse_order("-params", g) == ("params", True)
    with pytest.raises(SpecError, match="unknown column"):
        sw.compile_filter("latency < 3", g)
    with pytest.raises(SpecError, match="unknown column"):
        sw.parse_order("latency", g)
    # a filter on variables only keeps invalid variants too
    only_vars = sw.compile_filter("groups == 8", g)
    assert any(v.error for v in rows if only_vars(v))


def brute_force_pareto(points):
    def dominates(p, q):
        return p[0] <= q[0] and p[1] <= q[1] and (p[0] < q[0] or p[1] < q[1])
    return [p is not None and not any(q is not None and dominates(q, p) for q in points) for p in points]


@given(st.lists(st.one_of(st.none(), st.tuples(st.integers(0, 6), st.integers(0, 6))), max_size=40))
def test_pareto_matches_brute_force(points):
    assert sw.pareto(points) == brute_force_pareto(points)


def test_pareto_on_a_sweep_with_larger_is_better():
    g = grid(inputs=[(3, 32, 32), (3, 48, 48)], batches=[1, 2])
    rows = [v for v in run(g)]
    flags = sw.pareto_flags(g, rows, [("macs", False), ("width", True)])
    points = [None if v.error else (v.macs, -g.point(v.index)[0][0]) for v in rows]
    assert flags == brute_force_pareto(points)
    assert any(flags) and not all(flags)


def test_csv_and_json_lines():
    g = grid(inputs=[(3, 32, 32), (3, 3, 3)])
    rows = run(g)
    flags = [random.Random(1).random() < 0.5 for _ in rows]
    table = list(csv.reader(io.StringIO("".join(rep.csv_lines(g, rows, flags)))))
    assert table[0] == ["index", "width", "groups", "input", "batch", "params", "macs", "flops",
                        "param_bytes", "activation_bytes", "output", "pareto", "error"]
    for line, v, flag in zip(table[1:], rows, flags):
        assert int(line[0]) == v.index and line[3] in ("3x32x32", "3x3x3")
        assert line[5] == ("" if v.params is None else str(v.params))
        assert line[11] == str(int(flag)) and line[12] == (v.error or "")
    records = [json.loads(line) for line in rep.json_lines(g, rows)]
    for r, v in zip(records, rows):
        values, shape, batch = g.point(v.index)
        assert r["variables"] == dict(zip(g.names, values)) and r["input_shape"] == list(shape)
        assert r["macs"] == v.macs and r["error"] == v.error and "pareto" not in r
        assert r["output_shape"] == (list(v.output_shape) if v.output_shape else None)


def test_processes_give_the_serial_rows(monkeypatch):
    monkeypatch.setattr(sw, "CHUNK_TARGET", 5)   # many small chunks, out-of-order completion
    g = grid(variables=[("width", [0.25, 0.5, 0.75, 1.0, 1.25]), ("groups", [1, 2, 8])],
             inputs=[(3, 32, 32), (3, 40, 40), (3, 3, 3)], batches=[1, 3])
    assert run(g, jobs=2) == run(g, jobs=1)


def test_cli_table_csv_json(capsys, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    code = main(["sweep", str(path), "--set", "width=0.5,0.75,1", "--set", "groups=1,8",
                 "--input", "3x32x32,3x3x3", "--pareto", "macs,params", "--sort", "macs"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "12 variants" in out and "Pareto-optimal (*) for macs (min) and params (min)" in out
    assert "not divisible by groups=8" in out
    code = main(["sweep", str(path), "--set", "width=0.5,1", "--format", "json", "--filter", "macs > 0"])
    out, _ = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["variables"]["width"] for r in lines] == [0.5, 1]
    code = main(["sweep", str(path), "--set", "depth=1,2"])
    _, err = capsys.readouterr()
    assert code == 2 and "no such variable" in err
    code = main(["sweep", str(path), "--set", "width=0.5", "--pareto", "macs"])
    _, err = capsys.readouterr()
    assert code == 2 and "two columns" in err


def test_cli_sorted_csv_keeps_pareto_marks_with_their_rows(capsys, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    code = main(["sweep", str(path), "--set", "width=0.25,0.5,0.75,1,1.5", "--input", "3x32x32,3x64x64",
                 "--batch", "1,2", "--format", "csv", "--sort=-macs", "--pareto", "macs,params"])
    out, _ = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 20
    assert [int(r["macs"]) for r in rows] == sorted((int(r["macs"]) for r in rows), reverse=True)
    points = [(int(r["macs"]), int(r["params"])) for r in rows]
    assert [r["pareto"] == "1" for r in rows] == brute_force_pareto(points)


def test_values_and_spec_input():
    assert sw.parse_values("0.5, 1,true,relu") == [0.5, 1, True, "relu"]
    assert sw.parse_values("[2,2,2,2],[3, 4, 6, 3]") == [[2, 2, 2, 2], [3, 4, 6, 3]]
    with pytest.raises(SpecError):
        sw.parse_values("1,,2")
    with pytest.raises(SpecError):
        sw.parse_values("{a: 1}")
    # without --input the variants report the spec's own input shape
    (v,) = run(grid(variables=[("width", [1.0])]))
    assert v.input_shape == (3, 32, 32)
    assert json.loads(next(rep.json_lines(grid(variables=[("width", [1.0])]), [v])))["input_shape"] == [3, 32, 32]


@pytest.mark.parametrize("convention", ["thop", "ptflops", "fvcore", "torch"])
def test_batch_dependent_conventions_match_analyze(convention):
    # Some tool conventions count part of a layer once per batch (not per sample): the sweep
    # must not scale a batch-1 analysis for them.
    g = grid(variables=[("width", [0.5, 1.0])], inputs=[(3, 32, 32)], batches=[1, 3, 8])
    for v in run(g, convention=convention):
        values, shape, batch = g.point(v.index)
        t = analyze(SPEC.build(dict(zip(g.names, values))), input_shape=shape, batch=batch,
                    convention=convention).totals
        assert (v.macs, v.flops) == (t.macs, t.flops), (convention, batch)


def test_progress_bar_text():
    # 45 of 100 done in 9 s: 5 per second, 55 left → 11 s to go; 45 % of a 20-wide bar is 9 '#'.
    assert rep.progress_bar(45, 100, 9.0, width=20) == "[#########...........]  45%  45/100  5/s  ETA 11s"
    assert rep.progress_bar(0, 10, 0.0, width=4) == "[....]   0%  0/10  0/s  ETA 0s"


def test_progress_goes_to_stderr_only_for_a_terminal(capsys, tmp_path, monkeypatch):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    widths = ",".join(str(0.25 + 0.001 * i) for i in range(1000))
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert main(["sweep", str(path), "--set", f"width={widths}", "--format", "csv", "--jobs", "1"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1001 and "1,000/1,000" in err and err.endswith("\n")


def test_a_sweep_leaves_the_garbage_collector_as_it_found_it():
    # A chunk sets the caches aside from the collector (gc.freeze); the sweep undoes it, also
    # when its reader stops early, and leaves a caller's own frozen objects frozen.
    import gc
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert len(run(grid())) == 6
    assert gc.isenabled() and gc.get_freeze_count() == 0
    stream = sw.sweep(TINY, "tiny.yaml", grid())
    next(stream)
    stream.close()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        run(grid())
        assert gc.get_freeze_count() >= before
    finally:
        gc.unfreeze()


def test_one_network_grids_are_split_across_processes(monkeypatch):
    # One network over many inputs and batches: chunks split its variants (at whole multiples
    # of the batches of one input, or anywhere when those alone exceed a chunk), so that
    # several workers share it; the rows are the serial ones.
    monkeypatch.setattr(sw, "CHUNK_TARGET", 4)
    g = grid(variables=[("width", [0.5])], inputs=[(3, 32, 32), (3, 40, 40), (3, 3, 3)], batches=[1, 2, 3])
    assert sw.chunk_size(g) == 3 and -(-g.size // sw.chunk_size(g)) == 3
    assert run(g, jobs=2) == run(g, jobs=1)
    g = grid(variables=[("width", [0.5, 1.0])], inputs=[(3, 32, 32)], batches=[1, 2, 3, 4, 5, 6])
    assert sw.chunk_size(g) == 4
    assert run(g, jobs=2) == run(g, jobs=1)
