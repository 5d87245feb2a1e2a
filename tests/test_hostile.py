"""Hostile input: the corpus of tests/hostile_corpus.py, every limit of calc/limits.py at the
limit and just past it, the limits table of the documentation, and fuzzers at three levels (raw
bytes, YAML documents mutated from the bundled specs, expression strings).

The rule checked everywhere: a result, or a CalcError that says where (a file, a line or a
path) and, on the command line, exit status 2 and one ``error:`` line; never a traceback; JSON
output is strict JSON; no command takes 10 s.
"""
from __future__ import annotations

import json
import math
import re
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import calc
from calc import analysis, analyze, limits, parse_spec
from calc.cli import main
from calc.errors import ArgumentTypeError, CalcError
from calc.expr import evaluate
from calc.render.report import FORMATS
from conftest import ROOT, SPECS
from hostile_corpus import CLI, CLI_SPEC, SPECS as CORPUS
from helpers import tree_paths as _paths

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))


def _strict(text: str):
    def refuse(name):
        raise AssertionError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def run_cli(capsys, *argv):
    start = time.perf_counter()
    try:
        code = main(list(argv))
    except SystemExit as exc:   # argparse's usage errors
        code = exc.code
    took = time.perf_counter() - start
    out, err = capsys.readouterr()
    assert took < 10, f"took {took:.1f} s"
    assert "Traceback" not in err
    return code, out, err


def check(expected, code, out, err, where_prefix=""):
    if expected[0] == "ok":
        assert code == 0, err
        assert expected[1] in out, out[-2000:]
    else:
        _, fragment, where = expected
        assert code == 2, (code, out[-500:])
        assert out == ""
        assert err.startswith("error: "), err
        assert err.count("\nerror:") == 0
        assert fragment in err, err[:2000]
        assert err.startswith(f"error: {where_prefix}{where}"), err[:500]
        assert len(err) < 5000, "the message echoes too much"
        assert "<function" not in err and "lambda" not in err


# ---------------------------------------------------------------------------- the corpus

LIBRARY = [
    ("parse_spec of bytes", lambda: parse_spec(b"name: x\n"), "must be a str"),
    ("parse_spec of a number", lambda: parse_spec(3), "must be a str"),
    ("parse_spec with a numeric name", lambda: parse_spec("name: x\n", name=123), "name must be a str"),
    ("load_spec of bytes", lambda: calc.load_spec(b"specs/alexnet.yaml"), "must be a str"),
    ("load_spec of a number", lambda: calc.load_spec(3), "must be a str"),
    ("a lone surrogate", lambda: parse_spec("name: \ud800\ninput: [3]\nlayers: [relu]\n"), "lone surrogate"),
    ("build with a list of overrides", lambda: parse_spec(CLI_SPEC).build([1]), "overrides must be a mapping"),
    ("build with a string as input shape", lambda: parse_spec(CLI_SPEC).build(input_shape="3x4"), "sequence of sizes"),
    ("analyze of a Spec", lambda: analyze(parse_spec(CLI_SPEC)), "takes a Model"),
    ("analyze with a numeric convention", lambda: analyze(parse_spec(CLI_SPEC).build(), convention=3), "convention must be"),
    ("analyze with a list as dtype", lambda: analyze(parse_spec(CLI_SPEC).build(), dtype=[]), "unknown dtype"),
    ("analyze with a float batch", lambda: analyze(parse_spec(CLI_SPEC).build(), batch=1.5), "batch must be"),
    ("evaluate a non-string", lambda: evaluate(3, {}), "must be text"),
]


@pytest.mark.parametrize("case", [("spec",) + c for c in CORPUS] + [("cli",) + c for c in CLI]
                         + [("library",) + c for c in LIBRARY], ids=lambda c: f"{c[0]}: {c[1]}")
def test_hostile_corpus(capsys, tmp_path, case):
    kind = case[0]
    if kind == "spec":
        _, _, text, extra, expected = case
        path = tmp_path / "h.yaml"
        path.write_text(text)
        argv = (["explain", str(path)] + extra[1:]) if extra[:1] == ["explain"] else ["analyze", str(path), *extra]
        code, out, err = run_cli(capsys, *argv)
        check(expected, code, out, err, where_prefix=str(path) if expected[0] == "error" and expected[2] else "")
        if code == 0 and "--format" in argv and "json" in argv:
            _strict(out)
    elif kind == "cli":
        _, _, argv, expected = case
        path = tmp_path / "s.yaml"
        path.write_text(CLI_SPEC)
        argv = [str(path) if a == "SPEC" else a for a in argv]
        code, out, err = run_cli(capsys, *argv)
        check(expected, code, out, err)
        if code == 0 and "json" in argv:
            _strict(out)
    else:
        _, _, call, fragment = case
        with pytest.raises(CalcError) as info:
            call()
        assert fragment in str(info.value)
        str(info.value)   # printable
        if "must be a str" in fragment or "mapping" in fragment or "takes a Model" in fragment:
            assert isinstance(info.value, (ArgumentTypeError, TypeError))


def test_terminal_escapes_are_shown_not_sent(capsys, tmp_path):
    path = tmp_path / "esc.yaml"
    path.write_text('name: "t\\e[31mred\\a"\ninput: [8]\nlayers: [relu]\n')
    code, out, err = run_cli(capsys, "analyze", str(path))
    assert code == 0 and "\x1b" not in out and "\x07" not in out
    assert "t\\x1b[31mred\\x07" in out
    path.write_text('name: t\ninput: [8]\nlayers: ["re\\elu"]\n')
    code, out, err = run_cli(capsys, "analyze", str(path))
    assert code == 2 and "\x1b" not in err


def test_json_report_streams_in_bounded_memory(capsys, tmp_path):
    # 499 × 1000 relu: 499,000 rows before; folded, it is about a thousand (the 11 s / 1.5 GB case).
    import tracemalloc
    path = tmp_path / "r.yaml"
    path.write_text(CORPUS[10][1])
    tracemalloc.start()
    code, out, err = run_cli(capsys, "analyze", str(path), "--format", "json")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert code == 0 and len(_strict(out)["layers"]) == 1001   # 1000 relu + one folded row
    assert peak < 100 * 2**20


# ---------------------------------------------------------------------------- limits

def _doc_table():
    text = (ROOT / "docs" / "errors-and-limits.md").read_text()
    section = text[text.index("## 2. Limits"):]
    rows = re.findall(r"^\| (.+?) \| (.+?) \|$", section, re.M)
    return [r for r in rows if r != ("what", "limit") and not set(r[0]) <= set("-")]


def test_the_documentation_states_the_limits_of_the_module():
    assert _doc_table() == [(what, limit) for what, limit, _ in limits.LIMITS]


def _outcome(text, **kwargs):
    try:
        a = analyze(parse_spec(text, "l.yaml").build(kwargs.pop("overrides", None)), **kwargs)
        return "ok", a
    except CalcError as err:
        return "error", str(err)


def _ok(result):
    assert result[0] == "ok", result[1]
    return result[1]


def _refused(result, fragment):
    assert result[0] == "error", "accepted"
    assert fragment in result[1], result[1]


def test_limit_string_length():
    n = limits.MAX_STRING
    _ok(_outcome(HEAD_D + f"description: '{'d' * n}'\nlayers: [relu]\n"))
    _refused(_outcome(HEAD_D + f"description: '{'d' * (n + 1)}'\nlayers: [relu]\n"), "at most 100,000 characters")


HEAD_D = "name: l\ninput: [8]\n"


def test_limit_integer_digits():
    n = limits.MAX_INT_DIGITS
    # At the limit the value is read (and refused as a size); past it, refused before reading.
    _refused(_outcome(HEAD_D + f"layers: [{{linear: {{out: {'9' * n}}}}}]\n"), "less than or equal")
    _refused(_outcome(HEAD_D + f"layers: [{{linear: {{out: {'9' * (n + 1)}}}}}]\n"), f"{n + 1:,} digits")


def test_limit_rank():
    n = limits.MAX_RANK
    _ok(_outcome("name: l\ninput: [" + ", ".join(["2"] * n) + "]\nlayers: [relu]\n"))
    _refused(_outcome("name: l\ninput: [" + ", ".join(["2"] * (n + 1)) + "]\nlayers: [relu]\n"), "at most 64")


def test_limit_list_arguments():
    n = 2 * limits.MAX_RANK
    _refused(_outcome(HEAD_D + "layers: [{reshape: {shape: [" + ", ".join(["1"] * (n - 1)) + ", 8]}}]\n"),
             "128 dimensions; calc takes at most 64")      # accepted as an argument, refused as a shape
    _refused(_outcome(HEAD_D + "layers: [{reshape: {shape: [" + ", ".join(["1"] * n) + ", 8]}}]\n"),
             "129 values; a shape has at most 64")


def test_limit_expression_length():
    assert limits.MAX_EXPR_CHARS == 500
    at = "10" + "+1" * 249          # 500 characters
    assert len(at) == 500
    a = _ok(_outcome(HEAD_D + f"layers: [{{linear: {{out: '{at}'}}}}]\n"))
    assert a.output_shape == (259,)
    _refused(_outcome(HEAD_D + f"layers: [{{linear: {{out: '1{at}'}}}}]\n"), "longer than 500")


def test_limit_integers_and_exponents_in_expressions():
    assert evaluate("2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 64", {}) == limits.MAX_ABS_INT
    with pytest.raises(CalcError, match="too large"):
        evaluate("2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 64 + 1", {})
    assert evaluate(f"2 ** {limits.MAX_POW_EXPONENT}", {}) == 2 ** 64
    with pytest.raises(CalcError, match="exponent 65 too large"):
        evaluate(f"2 ** {limits.MAX_POW_EXPONENT + 1}", {})


def test_limit_batch():
    model = parse_spec(CLI_SPEC).build()
    assert analyze(model, batch=limits.MAX_BATCH).totals.macs == 64 * limits.MAX_BATCH   # 8·8 per sample
    with pytest.raises(CalcError, match="10\\*\\*100"):
        analyze(model, batch=limits.MAX_BATCH + 1)


def test_limit_repeat_times():
    _ok(_outcome(HEAD_D + f"layers: [{{repeat: {{times: {limits.MAX_REPEAT}, layers: [relu]}}}}]\n"))
    _refused(_outcome(HEAD_D + f"layers: [{{repeat: {{times: {limits.MAX_REPEAT + 1}, layers: [relu]}}}}]\n"),
             "from 0 to 1,000,000,000")


def _nested_groups(n):
    return HEAD_D + "layers:\n  - " + "{group: {layers: [" * n + "relu" + "]}}" * n + "\n"


def test_limit_nesting():
    # YAML nesting (64) is reached before structure nesting (100) in one document: each group
    # takes a mapping, a mapping and a list.
    _ok(_outcome(_nested_groups(20)))
    _refused(_outcome(_nested_groups(22)), "nesting deeper than 64")


def test_limit_yaml_values(monkeypatch):
    import sys
    monkeypatch.setattr(sys.modules["calc.spec.loader"], "MAX_NODES", 40)
    text = HEAD_D + "layers: [" + ", ".join(["relu"] * 30) + "]\n"   # 1 + 2·2 + 31 + 1… values
    _ok(_outcome(text))
    _refused(_outcome(HEAD_D + "layers: [" + ", ".join(["relu"] * 40) + "]\n"), "more than 40 values")


def test_limit_built_items(monkeypatch):
    import sys
    monkeypatch.setattr(sys.modules["calc.spec.build"], "MAX_BUILT_NODES", 10)
    _ok(_outcome(HEAD_D + "layers: [" + ", ".join(["relu"] * 10) + "]\n"))
    _refused(_outcome(HEAD_D + "layers: [" + ", ".join(["relu"] * 11) + "]\n"), "more than 10 items")


def test_limit_fresh_iterations_and_analysed(monkeypatch):
    monkeypatch.setattr(analysis, "MAX_FRESH_ITERATIONS", 5)
    # padding 1 with kernel 1 adds 2 to the length at every iteration: no fixed point
    grow = "name: l\ninput: [1, 1]\nlayers: [{repeat: {times: %d, layers: [{conv1d: {out: 1, kernel: 1, padding: 1}}]}}]\n"
    _ok(_outcome(grow % 5))
    _refused(_outcome(grow % 6), "5 iterations")
    monkeypatch.setattr(analysis, "MAX_ANALYSED", 12)
    flat = "name: l\ninput: [8]\nlayers: [" + ", ".join(["relu"] * 12) + "]\n"
    _ok(_outcome(flat))
    _refused(_outcome(flat.replace("[relu", "[relu, relu")), "more than 12 layers")


def test_limit_report_rows_and_folding(monkeypatch):
    # A run of FOLD iterations is listed; FOLD + 1 is folded.
    a = _ok(_outcome(HEAD_D + f"layers: [{{repeat: {{times: {limits.FOLD}, layers: [relu]}}}}]\n"))
    assert len(list(a.rows(fold=limits.FOLD))) == limits.FOLD
    a = _ok(_outcome(HEAD_D + f"layers: [{{repeat: {{times: {limits.FOLD + 1}, layers: [relu]}}}}]\n"))
    assert len(list(a.rows(fold=limits.FOLD))) == 2
    # A run whose rows pass FOLD_ROWS is folded although it is short.
    assert analysis.folds(2, limits.FOLD_ROWS // 2) is False
    assert analysis.folds(2, limits.FOLD_ROWS // 2 + 1) is True
    monkeypatch.setattr(analysis, "MAX_LISTED", 10)
    _ok(_outcome(HEAD_D + "layers: [" + ", ".join(["relu"] * 10) + "]\n"))      # 10 rows
    _refused(_outcome(HEAD_D + "layers: [" + ", ".join(["relu"] * 11) + "]\n"), "at most 10")


def test_limit_explain_entries(monkeypatch):
    from calc import explain as ex
    monkeypatch.setattr(ex, "MAX_EXPLAINED", 10)
    a = _ok(_outcome(HEAD_D + "layers: [" + ", ".join(["relu"] * 9) + "]\n"))
    assert len(ex.explain(a)) == 10
    a = _ok(_outcome(HEAD_D + "layers: [" + ", ".join(["relu"] * 10) + "]\n"))
    with pytest.raises(CalcError, match="--layer"):
        ex.explain(a)


def test_limit_sweep_grid_and_jobs(monkeypatch):
    from calc import sweep as sw
    spec = parse_spec(CLI_SPEC)
    grid = sw.make_grid(spec, [("w", list(range(1, 101)))], None, list(range(1, 1001)))
    assert grid.size == limits.MAX_HELD
    sw.check_size(grid, held=True)
    grid = sw.make_grid(spec, [("w", list(range(1, 102)))], None, list(range(1, 1001)))
    with pytest.raises(CalcError, match="at most 100,000"):
        sw.check_size(grid, held=True)
    sw.check_size(grid)
    big = sw.Grid(variables=(("w", tuple(range(10**7))),), batches=tuple(range(1, 10**6 + 1)))
    assert big.size == 10**13   # exact, beyond what len() could return on some platforms
    with pytest.raises(CalcError, match="at most 10,000,000"):
        sw.check_size(big)
    assert list(sw.sweep(CLI_SPEC, None, sw.make_grid(spec, [("w", [8])]), jobs=limits.MAX_JOBS))
    with pytest.raises(CalcError, match="from 1 to 256"):
        list(sw.sweep(CLI_SPEC, None, sw.make_grid(spec, [("w", [8])]), jobs=limits.MAX_JOBS + 1))


def test_limit_file_size(tmp_path):
    from calc.spec.loader import read_text
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * limits.MAX_BYTES)
    read_text(str(path))
    path.write_bytes(b"#" * (limits.MAX_BYTES + 1))
    with pytest.raises(CalcError, match="larger than 16 MiB"):
        read_text(str(path))


def test_limit_echo():
    assert limits.clip("a" * (limits.MAX_ECHO - 2)) == repr("a" * (limits.MAX_ECHO - 2))
    assert limits.clip("a" * (limits.MAX_ECHO - 1)).endswith(f"({limits.MAX_ECHO + 1} characters)")


def test_limit_size():
    _ok(_outcome(HEAD_D + f"layers: [{{linear: {{out: {limits.MAX_SIZE}}}}}]\n"))
    _refused(_outcome(HEAD_D + f"layers: [{{linear: {{out: {limits.MAX_SIZE + 1}}}}}]\n"), "less than or equal")


# ---------------------------------------------------------------------------- fuzzers

def _located(err: CalcError) -> bool:
    return bool(err.file or err.line or err.path)


def outcome(text: str, **kwargs):
    """The whole library path; a result (whose JSON is strict) or a CalcError that says where."""
    try:
        a = analyze(parse_spec(text, "fuzz.yaml").build(kwargs.get("overrides")))
    except CalcError as err:
        assert _located(err), str(err)
        assert "<function" not in str(err)
        return err
    _strict(FORMATS["json"](a))
    for fmt in ("table", "csv", "markdown"):
        FORMATS[fmt](a)
    return a


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_raw_bytes(data):
    # surrogateescape: undecodable bytes become lone surrogates, which the loader must refuse.
    outcome(data.decode("utf-8", errors="surrogateescape"))


BUNDLED = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(SPECS.glob("*.yaml"))
           if p.stat().st_size < 20_000}
HOSTILE_VALUES = [
    None, True, 0, -1, 2**40, 2**40 + 1, 10**400, 1e308, float("inf"), float("nan"), "010", "1:30",
    "\x1b[31m", "\x07", "a" * 2000, "-" * 600, "(-8)**0.5", "2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 65",
    "w if w < 'x' else 1", "~1", "1 in l", "l[99]", "-l", "int('9' * 9)", "max()", "len(3)",
    "__import__('os')", "x.y()", [[[[1]]]], {"a": {"b": 1}}, [1] * 70, "same", "same;",
]


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(BUNDLED)))
    doc = json.loads(json.dumps(BUNDLED[name]))
    paths = [p for p in _paths(doc) if p]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        parent = doc
        try:
            for p in path[:-1]:
                parent = parent[p]
            key = path[-1]
            action = draw(st.sampled_from(["value", "value", "tie", "index", "repeat"]))
            if action == "value":
                parent[key] = draw(st.sampled_from(HOSTILE_VALUES))
            elif action == "tie" and isinstance(parent[key], dict):
                parent[key] = {**parent[key], "tie": draw(st.sampled_from(["a", "fc", "conv1"]))}
            elif action == "index":
                parent[key] = {"repeat": {"times": 2, "index": draw(st.sampled_from(["i", "width", "w"])),
                                          "layers": [parent[key]]}}
            else:
                parent[key] = {"repeat": {"times": draw(st.sampled_from([0, 1, 1001, 10**9])),
                                          "layers": [parent[key]]}}
        except (KeyError, IndexError, TypeError):
            continue
    return yaml.safe_dump(doc, allow_unicode=True)


@FUZZ
@given(mutated())
def test_fuzz_mutated_bundled_specs(text):
    outcome(text)


ATOMS = st.sampled_from(["0", "1", "2", "8", "-1", "0.5", "1e308", "2**64", "w", "l", "s", "n", "None",
                         "True", "'a'", "l[0]", "l[1:]", "(-8)", "x"])
OPS = st.sampled_from([" + ", " - ", " * ", " / ", " // ", " % ", " ** ", " < ", " == ", " in ", " & ",
                       " and ", " or ", " if w else ", "."])
FUNCS = st.sampled_from(["min", "max", "abs", "round", "int", "float", "floor", "ceil", "make_divisible",
                         "len", "sum", "eval", "open"])


@st.composite
def expressions(draw, depth=0):
    kind = draw(st.integers(0, 5 if depth < 4 else 0))
    if kind <= 1:
        return draw(ATOMS)
    if kind == 2:
        return f"{draw(expressions(depth + 1))}{draw(OPS)}{draw(expressions(depth + 1))}"
    if kind == 3:
        return f"{draw(st.sampled_from(['-', '+', 'not ', '~']))}{draw(expressions(depth + 1))}"
    if kind == 4:
        args = draw(st.lists(expressions(depth + 1), max_size=3))
        return f"{draw(FUNCS)}({', '.join(args)})"
    return f"({draw(expressions(depth + 1))})"


ENV = {"w": 8, "l": [1, 2, 3], "s": "same", "n": None}


@FUZZ
@given(expressions())
def test_fuzz_expressions(text):
    try:
        value = evaluate(text, ENV)
    except CalcError:
        pass
    else:
        assert isinstance(value, (int, float, bool, str, list, type(None)))
        if isinstance(value, float):
            assert math.isfinite(value)
    spec = ("name: e\ninput: [8]\nvariables: {w: 8, l: [1, 2, 3], s: same}\nlayers:\n  - linear: {out: "
            + json.dumps(text) + "}\n")
    result = outcome(spec)
    if isinstance(result, CalcError):
        assert result.line is not None and result.path, str(result)
