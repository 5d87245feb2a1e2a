"""Bad input never breaks calc: a clear ``error:`` with its location, exit status 2, no traceback,
in bounded time and memory. One table row per kind of mistake or attack.

Time and memory are measured around each run (``tracemalloc`` peak of Python allocations,
which is where an expansion would go): every case must finish within ``SECONDS`` and
``MEGABYTES``, far below what an unbounded expansion would take.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc

import pytest

from calc import analysis
from calc.cli import main
from calc.limits import MAX_LISTED
from conftest import ROOT, SPECS

SECONDS = 10
MEGABYTES = 150

HEAD = "name: x\ninput: [3, 8, 8]\n"


def _bomb(levels=8, width=10):
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"   # 10**8 values once expanded


def _chain(n):
    """Blocks b0 → b1 → … → bn, each using the next."""
    blocks = "".join(f"  b{i}:\n    layers: [b{i + 1}]\n" for i in range(n))
    return f"{HEAD}blocks:\n{blocks}  b{n}:\n    layers: [relu]\nlayers: [b0]\n"


def _fanout(n):
    """Blocks whose bodies use the next block twice: 2**n layers after expansion."""
    blocks = "".join(f"  b{i}:\n    layers: [b{i + 1}, b{i + 1}]\n" for i in range(n))
    return f"{HEAD}blocks:\n{blocks}  b{n}:\n    layers: [relu]\nlayers: [b0]\n"


# (case id, file content, fragment of the message, location expected after "error: FILE")
BAD = [
    ("empty file", b"", "empty document", ""),
    ("only a comment", b"# nothing\n   \n", "empty document", ""),
    ("binary with NUL", b"name: x\n\x00\x00\x00\x01", "NUL bytes", ""),
    ("an image", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is it a binary file?", ""),
    ("not UTF-8", "name: café\n".encode("latin-1"), "not UTF-8", ""),
    ("malformed YAML", b"name: x\ninput: [3\n  layers: :\n", "malformed YAML", ":3"),
    ("tab indentation", b"name: x\n\tinput: [3]\n", "malformed YAML", ":2"),
    ("two documents", b"name: x\n---\nname: y\n", "single document", ":2"),
    ("a list", b"- relu\n- conv2d\n", "this document is a list", ":1"),
    ("a scalar", b"relu\n", "this document is a str", ":1"),
    ("a number", b"42\n", "this document is a int", ":1"),
    ("python object tag", b"!!python/object/apply:os.system ['touch PWNED']\n", "is not allowed", ":1"),
    ("python tag inside", HEAD.encode() + b"layers:\n  - !!python/name:os.system ''\n", "is not allowed", ":4"),
    ("custom tag", HEAD.encode() + b"layers: [!relu x]\n", "is not allowed", ":3"),
    ("binary tag", HEAD.encode() + b"layers: [!!binary aGVsbG8=]\n", "is not allowed", ":3"),
    ("alias bomb", _bomb().encode(), "alias bomb", ":"),
    ("merge key", b"a: &a {x: 1}\nb:\n  <<: *a\n", "merge keys", ":3"),
    ("deep flow nesting", b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nesting deeper than 64", ""),
    ("deep block nesting", ("a:\n" + "".join("  " * i + "- \n" for i in range(1, 3000))).encode(),
     "nesting deeper than 64", ""),
    ("duplicate key", b"name: x\nname: y\ninput: [3]\nlayers: [relu]\n", "duplicate key 'name' (first on line 1)",
     ":2"),
    ("duplicate argument", HEAD.encode() + b"layers:\n  - conv2d: {out: 4, kernel: 3, out: 5}\n",
     "duplicate key 'out'", ":4"),
    ("unknown layer type", HEAD.encode() + b"layers:\n  - conv2dd: {out: 3, kernel: 1}\n",
     "unknown layer type 'conv2dd'; did you mean 'conv2d'", ":4: layers[0]"),
    ("unknown argument", HEAD.encode() + b"layers:\n  - conv2d: {out: 3, kernel: 1, strid: 2}\n",
     "did you mean 'stride'", ":4: layers[0].conv2d.strid"),
    ("missing argument", HEAD.encode() + b"layers:\n  - conv2d: {out: 3}\n", "missing argument 'kernel'",
     ":4: layers[0].conv2d.kernel"),
    ("word for a number", HEAD.encode() + b"layers:\n  - conv2d: {out: three, kernel: 1}\n",
     "valid integer", ":4: layers[0].conv2d.out"),
    ("mapping for a number", HEAD.encode() + b"layers:\n  - conv2d: {out: {a: 1}, kernel: 1}\n",
     "valid integer", ":4: layers[0].conv2d.out"),
    ("boolean for a number", HEAD.encode() + b"layers:\n  - conv2d: {out: true, kernel: 1}\n",
     "got a boolean", ":4: layers[0].conv2d.out"),
    ("three kernel sizes for 2-d", HEAD.encode() + b"layers:\n  - conv2d: {out: 4, kernel: [1, 2, 3]}\n",
     "kernel needs 1 or 2 values", ":4: layers[0].conv2d.kernel"),
    ("arguments not a mapping", HEAD.encode() + b"layers:\n  - conv2d: 5\n", "must be a mapping",
     ":4: layers[0].conv2d"),
    ("layers not a list", HEAD.encode() + b"layers: relu\n", "valid list", ":3: layers"),
    ("zero input size", b"name: x\ninput: [3, 0, 8]\nlayers: [relu]\n", "from 1 to 2**40, got 0", ":2: input[1]"),
    ("negative input size", b"name: x\ninput: [3, -1, 8]\nlayers: [relu]\n", "got -1", ":2: input[1]"),
    ("absurd input size", b"name: x\ninput: [3, 100000000000000000000000000000, 8]\nlayers: [relu]\n",
     "from 1 to 2**40", ":2: input[1]"),
    ("zero channels", HEAD.encode() + b"layers:\n  - conv2d: {out: 0, kernel: 3}\n",
     "greater than or equal to 1", ":4: layers[0].conv2d.out"),
    ("negative kernel", HEAD.encode() + b"layers:\n  - conv2d: {out: 4, kernel: -3}\n",
     "greater than or equal to 1", ":4: layers[0].conv2d.kernel"),
    ("absurd channels", HEAD.encode() + b"layers:\n  - conv2d: {out: 1000000000000000000000000000000, kernel: 1}\n",
     "less than or equal to 1099511627776", ":4: layers[0].conv2d.out"),
    ("integer of 5000 digits", HEAD.encode() + b"layers:\n  - linear: {out: " + b"9" * 5000 + b"}\n",
     "bad value", ":4"),
    ("kernel larger than input", HEAD.encode() + b"layers:\n  - conv2d: {out: 2, kernel: 20}\n",
     "larger than the padded input", ":4: layers[0].conv2d"),
    ("groups do not divide", HEAD.encode() + b"layers:\n  - conv2d: {out: 4, kernel: 3, groups: 2}\n",
     "not divisible by groups", ":4: layers[0].conv2d"),
    ("flatten then conv", HEAD.encode() + b"layers:\n  - flatten\n  - conv2d: {out: 2, kernel: 1}\n",
     "expects a 3-d input", ":5: layers[1].conv2d"),
    ("residual shapes differ", HEAD.encode() + b"layers:\n  - residual: {main: [{conv2d: {out: 4, kernel: 1}}]}\n",
     "cannot be joined by add", ":4: layers[0].residual"),
    ("undefined variable", HEAD.encode() + b"layers:\n  - conv2d: {out: w * 2, kernel: 1}\n",
     "undefined name 'w'", ":4: layers[0].conv2d.out"),
    ("undefined block", HEAD.encode() + b"layers:\n  - myblock: {out: 2}\n", "unknown layer type 'myblock'",
     ":4: layers[0]"),
    ("undefined name in from", HEAD.encode() + b"layers:\n  - relu: {from: nowhere}\n",
     "no earlier output named 'nowhere'", ":4: layers[0].relu"),
    ("division by zero", b"name: x\ninput: [3, 8, 8]\nvariables: {w: 0}\nlayers:\n  - linear: {out: 8 // w}\n",
     "division by zero", ":5: layers[0].linear.out"),
    ("function call in expression", HEAD.encode() + b"layers:\n  - linear: {out: \"__import__('os')\"}\n",
     "is not allowed", ":4: layers[0].linear.out"),
    ("attribute in expression", HEAD.encode() + b"layers:\n  - linear: {out: \"(1).__class__\"}\n",
     "is not allowed", ":4: layers[0].linear.out"),
    ("power too large", b"name: x\ninput: [3]\nvariables: {w: '9 ** 9 ** 9'}\nlayers: [relu]\n",
     "too large", ":3: variables.w"),
    ("huge variable", b"name: x\ninput: [3]\nvariables: {w: 100000000000000000000000000000000000}\nlayers:\n"
     b"  - linear: {out: w}\n", "less than or equal to 1099511627776", ":5: layers[0].linear.out"),
    ("product beyond 2**256", b"name: x\ninput: [3]\nvariables: {a: '2 ** 64', b: 'a * a * a * a * a'}\n"
     b"layers: [relu]\n", "limit 2**256", ":3: variables.b"),
    ("block instantiates itself", HEAD.encode() + b"blocks:\n  b:\n    layers: [b]\nlayers: [b]\n",
     "block 'b' instantiates itself (b → b)", ":5: blocks.b.layers[0].b"),
    ("blocks instantiate each other", HEAD.encode() + b"blocks:\n  a:\n    layers: [b]\n  b:\n    layers: [a]\n"
     b"layers: [a]\n", "instantiates itself (a → b → a)", ":7: blocks.b.layers[0].a"),
    ("blocks nested 2000 deep", _chain(2000).encode(), "nest more than 100 levels", ":"),
    ("block named like a layer", HEAD.encode() + b"blocks:\n  relu:\n    layers: [identity]\nlayers: [relu]\n",
     "already a layer type", ":4: blocks.relu"),
    ("repeat beyond the limit", HEAD.encode() + b"layers:\n  - repeat: {times: 10000000000, layers: [relu]}\n",
     "from 0 to 1,000,000,000", ":4: layers[0].repeat.times"),
    ("negative repeat", HEAD.encode() + b"layers:\n  - repeat: {times: -1, layers: [relu]}\n",
     "from 0 to 1,000,000,000", ":4: layers[0].repeat.times"),
    ("join without inputs", HEAD.encode() + b"layers:\n  - add\n", "needs at least two inputs", ":4: layers[0].add"),
]


def _measured(fn):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert seconds < SECONDS, f"took {seconds:.1f} s"
    assert peak < MEGABYTES * 1024**2, f"allocated {peak / 1024**2:.0f} MiB"
    return result


def _main(argv):
    try:
        return main(argv)
    except SystemExit as exc:   # argparse's usage errors exit from inside main()
        return exc.code


def run_cli(capsys, *argv):
    code = _measured(lambda: _main(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, out, err, fragment, where=""):
    assert code == 2, (code, err)
    assert out == ""
    assert err.startswith(f"error: {where}"), err
    assert fragment in err, err
    assert "Traceback" not in err and len(err) < 4000, err


@pytest.mark.parametrize("content, fragment, location", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_file(capsys, tmp_path, monkeypatch, content, fragment, location):
    monkeypatch.chdir(tmp_path)   # a tag that ran a command would leave a file here
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    code, out, err = run_cli(capsys, "analyze", str(path))
    assert_user_error(code, out, err, fragment, str(path) + location)
    assert list(tmp_path.iterdir()) == [path]


def test_blocks_fanning_out_beyond_what_a_report_can_list(capsys, tmp_path):
    # 2**40 layers once expanded: identical block bodies are analysed once, but a report would
    # list every layer, so calc refuses beyond MAX_LISTED rows.
    path = tmp_path / "fan.yaml"
    path.write_text(_fanout(40))
    code, out, err = run_cli(capsys, "analyze", str(path))
    assert_user_error(code, out, err, f"calc reports at most {MAX_LISTED:,}", str(path))


def test_analysis_budget(capsys, tmp_path, monkeypatch):
    # Layers analysed one by one are bounded too (1,000,000; lowered here so that the test is
    # quick): a repeat whose two-layer body changes the shape every time reaches the limit
    # before calc's 100,000 distinct iterations.
    monkeypatch.setattr(analysis, "MAX_ANALYSED", 20_000)
    path = tmp_path / "grow.yaml"
    path.write_text(HEAD + "layers:\n  - repeat: {times: 1000000000, layers: "
                    "[{conv2d: {out: 3, kernel: 1, padding: 1}}, relu]}\n")
    code, out, err = run_cli(capsys, "analyze", str(path))
    assert_user_error(code, out, err, "calc analyses at most that many", str(path) + ":")


def test_missing_file_directory_and_bad_options(capsys, tmp_path):
    spec = str(SPECS / "alexnet.yaml")
    cases = [
        (["analyze", str(tmp_path / "nope.yaml")], "no such file", str(tmp_path / "nope.yaml")),
        (["analyze", str(tmp_path)], "is a directory", str(tmp_path)),
        (["analyze", spec, "--input", "3x0x8"], "--input", ""),
        (["analyze", spec, "--input", "3x" + "9" * 40], "from 1 to 2**40", ""),
        (["analyze", spec, "--batch", "0"], "positive whole number", "calc analyze"),
        (["analyze", spec, "--batch", "9" * 5000], "positive whole number", "calc analyze"),
        (["analyze", spec, "--set", "width=2"], "no such variable", ""),
        (["analyze", str(SPECS / "vgg16.yaml"), "--set", "num_classes=" + "9" * 5000], "5,000 digits", ""),
        (["analyze", str(SPECS / "vgg16.yaml"), "--set", "num_classes={a: 1}"], "expected a number", ""),
        (["analyze", str(SPECS / "vgg16.yaml"), "--set", "num_classes=1e400"], "inf", ""),
        (["analyze", spec, "--format", "pdf"], "invalid choice", "calc analyze"),
        (["frobnicate"], "invalid choice", "calc"),
    ]
    for argv, fragment, where in cases:
        code, out, err = run_cli(capsys, *argv)
        assert_user_error(code, out, err, fragment, where)


# ---------------------------------------------------------------------------- big but valid

def _json(capsys, text, tmp_path, *extra):
    path = tmp_path / "big.yaml"
    path.write_text(text)
    code, out, err = run_cli(capsys, "analyze", str(path), "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_huge_shape_preserving_repeats_are_exact_and_bounded(capsys, tmp_path):
    doc = _json(capsys, HEAD + "layers:\n  - repeat: {times: 1000000000, layers: [relu, "
                "{conv2d: {out: 3, kernel: 1}}]}\n", tmp_path)
    # conv2d 3→3, 1×1: (3·1·1 + 1)·3 = 12 parameters and 3·3·8·8 = 576 MACs, 10**9 times
    assert doc["totals"]["params"] == 12 * 10**9
    assert doc["totals"]["macs"] == 576 * 10**9
    # reports list the first iteration, then one row for the other 999,999,999, named by the
    # positions they take
    assert [(row["name"], row.get("count")) for row in doc["layers"]] == [
        ("0", None), ("1", None), ("2…1999999999", 10**9 - 1)]
    assert sum(row["macs"] for row in doc["layers"]) == doc["totals"]["macs"]


def test_nested_huge_repeats(capsys, tmp_path):
    doc = _json(capsys, HEAD + "layers:\n  - repeat: {times: 1000000000, layers: [{repeat: {times: 1000000000, "
                "layers: [{linear: {out: 8}}]}}]}\n", tmp_path)
    # linear 8→8: 8·8 + 8 = 72 parameters, 3·8 rows · 64 = 1,536 MACs; 10**18 of them
    assert doc["totals"]["params"] == 72 * 10**18 and doc["totals"]["macs"] == 1536 * 10**18
    assert [row.get("count") for row in doc["layers"]] == [None, 10**9 - 1, 10**9 - 1]
    assert sum(row["macs"] for row in doc["layers"]) == doc["totals"]["macs"]


def test_repeat_that_settles_into_a_fixed_point(capsys, tmp_path):
    # the first iteration halves 8×8 to 4×4 … 1×1 (4 distinct iterations), then nothing changes
    doc = _json(capsys, HEAD + "layers:\n  - repeat: {times: 1000000000, layers: [{maxpool2d: {kernel: 2, "
                "ceil_mode: true}}]}\n", tmp_path)
    assert doc["output_shape"] == [3, 1, 1]
    assert (doc["layers"][-1]["name"], doc["layers"][-1]["count"]) == ("4…999999999", 10**9 - 4)


def test_huge_sizes_stay_exact(capsys, tmp_path):
    doc = _json(capsys, HEAD + "layers:\n  - conv2d: {out: 1099511627776, kernel: 1}\n"
                "  - conv2d: {out: 1099511627776, kernel: 1}\n  - adaptive_avgpool2d: {size: 1099511627776}\n",
                tmp_path, "--batch", "9" * 30)
    n = 2**40
    # (3 + 1)·n + (n + 1)·n parameters; MACs per sample 3·n·64 + n·n·64, times the batch
    assert doc["totals"]["params"] == 4 * n + (n + 1) * n
    assert doc["totals"]["macs"] == int("9" * 30) * (3 * n * 64 + n * n * 64)
    assert doc["output_shape"] == [n, n, n]


def test_repeat_changing_the_shape_a_billion_times_is_refused_within_limits(tmp_path):
    # A body that changes the shape at every iteration cannot be analysed once and multiplied;
    # calc analyses up to 100,000 distinct iterations and then refuses. Run as a separate
    # process under a 1 GiB address-space limit (tracemalloc would slow it down several times).
    path = tmp_path / "grow.yaml"
    path.write_text(HEAD + "layers:\n  - repeat: {times: 1000000000, layers: "
                    "[{conv2d: {out: 3, kernel: 1, padding: 1}}]}\n")
    limit = ("import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30)); "
             "sys.argv = ['calc', 'analyze', sys.argv[1]]; runpy.run_module('calc', run_name='__main__')")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", limit, str(path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert time.perf_counter() - start < 30
    assert_user_error(proc.returncode, proc.stdout, proc.stderr,
                      "change the shape at every one of 100,000 iterations", f"{path}:4: layers[0].repeat")


def test_stdin(tmp_path):
    text = (SPECS / "alexnet.yaml").read_text()
    ok = subprocess.run([sys.executable, "-m", "calc", "analyze", "-", "--format", "json"], input=text,
                        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["totals"]["params"] == 61_100_840
    bad = subprocess.run([sys.executable, "-m", "calc", "analyze", "-"], input=b"\xff\xfe\x00",
                         capture_output=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith(b"error: <stdin>: ") and b"Traceback" not in bad.stderr
    empty = subprocess.run([sys.executable, "-m", "calc", "analyze", "-"], input=b"", capture_output=True,
                           cwd=ROOT, timeout=60)
    assert empty.returncode == 2 and b"error: <stdin>: empty document" in empty.stderr
