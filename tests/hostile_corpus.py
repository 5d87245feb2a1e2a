"""The hostile corpus: specs, command lines and library calls that once broke calc (issue 11 and
earlier rounds), each with the outcome it must have. ``tests/test_hostile.py`` runs every case.

An expected outcome is ``("error", fragment, where)``: exit status 2 (a CalcError from the
library) whose message contains ``fragment`` and, for specs, starts with the file name followed
by ``where`` (a line and a path); or ``("ok", fragment)``: exit status 0 and ``fragment`` in the
output. Where a case is a wrong answer that calc used to print, the comment says what it printed.
"""
from __future__ import annotations

HEAD = "name: h\ninput: [8]\n"
IMG = "name: h\ninput: [3, 8, 8]\n"


def _expr(text: str, variables: str = "") -> str:
    return HEAD + (f"variables: {variables}\n" if variables else "") + f"layers:\n  - linear: {{out: \"{text}\"}}\n"


# (id, spec text, extra CLI arguments, expected)
SPECS = [
    # -- the evaluator let Python's TypeError through
    ("compare number with word", _expr("3 if w < 2 else 4", "{w: same}"), [],
     ("error", "cannot compare the word 'same' with 2", ":5: layers[0].linear.out")),
    ("compare with null", _expr("3 if None < 2 else 4"), [], ("error", "cannot compare null with 2", ":4: layers[0]")),
    ("complex from a fractional power", _expr("3 if (-8)**0.5 < 2 else 4"), [],
     ("error", "complex number", ":4: layers[0].linear.out")),
    ("unary minus on a list", _expr("-l", "{l: [1, 2]}"), [], ("error", "'-' needs numbers, got the list", ":5:")),
    ("'in' named as the user wrote it", _expr("3 if 2 in l else 4", "{l: [1, 2]}"), [], ("error", "'in' is not allowed", ":5:")),
    ("'~' named", _expr("~3"), [], ("error", "'~' is not allowed", ":4:")),
    ("a method call named", _expr("w.bit_length()", "{w: 3}"), [], ("error", "calling 'w.bit_length' is not allowed", ":5:")),
    ("quoted text in an expression", HEAD + "layers:\n  - linear: {out: \"'a' < 2\"}\n", [], ("error", "cannot compare the word 'a' with 2", ":4: layers[0].linear.out")),
    # -- unbounded work before a limit applied
    ("10,000 minus signs", _expr("-" * 10000 + "1"), [], ("error", "longer than 500 characters", ":4: layers[0].linear.out")),
    ("1 MB string in a block", HEAD + "blocks:\n  b:\n    layers:\n      - linear: {out: \"" + "1+" * 60000 + "1\"}\nlayers: [b]\n",
     [], ("error", "values are at most 100,000 characters", ":6")),
    ("repeat 499 x repeat 1000 relu as JSON", HEAD + "layers:\n  - repeat: {times: 499, layers: "
     "[{repeat: {times: 1000, layers: [relu]}}]}\n", ["--format", "json"], ("ok", '"count": 498')),
    # -- explain on models analyze accepts
    ("explain a repeat of 10**9", HEAD + "layers:\n  - repeat: {times: 1000000000, layers: [relu]}\n", ["explain"],
     ("ok", "999,999,999 more repetitions")),
    ("explain a concat of 1,000 inputs", IMG + "layers:\n  - parallel: {join: concat, branches: [" + ", ".join(["[relu]"] * 1000) + "]}\n",
     ["explain"], ("ok", "3000×8×8")),
    # -- large but legal numbers
    ("rank 400 input", "name: h\ninput: [" + ", ".join(["1"] * 400) + "]\nlayers: [relu]\n", [],
     ("error", "400 dimensions; calc takes at most 64", ":2: input")),
    ("a reshape to 300,000 dimensions", HEAD + "layers:\n  - reshape: {shape: [" + ", ".join(["1"] * 300000) + ", 8]}\n", [],
     ("error", "300,001 values; a shape has at most 64", ":4: layers[0].reshape.shape")),
    ("upsample by 1e308", IMG + "layers: [{upsample: {scale: 1e308}}]\n", [], ("error", "beyond 2**40", ":3: layers[0].upsample")),
    ("upsample by inf", IMG + "layers: [{upsample: {scale: .inf}}]\n", [], ("error", "finite", ":3: layers[0].upsample.scale")),
    ("huge counts print exactly", "name: h\ninput: [" + ", ".join(["1099511627776"] * 64) + "]\nlayers: [relu]\n",
     ["--format", "json"], ("ok", '"activation_bytes"')),
    # -- invalid JSON
    ("variable .inf", HEAD + "variables: {w: .inf}\nlayers: [relu]\n", ["--format", "json"], ("error", "finite number", ":3: variables.w")),
    ("variable .nan", HEAD + "variables: {w: [1, .nan]}\nlayers: [relu]\n", ["--format", "json"], ("error", "finite number", ":3: variables.w")),
    # -- an internal repr leaked in repeats
    ("ptflops on local_response_norm in a repeat", IMG + "layers:\n  - repeat: {times: 3, layers: [{local_response_norm: {size: 2}}]}\n",
     ["--convention", "ptflops"], ("error", "in repetition 1 of 3", ":4:")),
    # -- wrong answers with exit 0
    ("layer tied to itself", HEAD + "layers:\n  - linear: {out: 8, name: a, tie: a}\n", [],
     ("error", "this layer's own name", ":4: layers[0].linear.tie")),   # printed 8 params (the bias) before
    ("repeat index named like a variable", HEAD + "variables: {w: 8}\nlayers:\n  - repeat: {times: 2, index: w, layers: [{linear: {out: w}}]}\n",
     [], ("error", "already the name of a variable", ":5: layers[0].repeat.index")),
    ("YAML 1.1 octal", HEAD + "variables: {w: 010}\nlayers: [{linear: {out: w}}]\n", [], ("error", "ambiguous", ":3")),  # was 8
    ("YAML 1.1 base 60", HEAD + "variables: {w: 1:30}\nlayers: [{linear: {out: w}}]\n", [], ("error", "base 60", ":3")),  # was 90
    ("block parameter called name", HEAD + "blocks:\n  b:\n    params: {name: null}\n    layers: [relu]\nlayers: [{b: {name: x}}]\n",
     [], ("error", "rename the parameter", ":5: blocks.b.params.name")),
    # -- messages
    ("unquoted comma in a flow mapping", HEAD + "layers: [{linear: {out: max(8, 2)}}]\n", [], ("error", "quote an expression", ":3:")),
    ("a 1 MB --set value is not echoed", HEAD + "variables: {w: 8}\nlayers: [{linear: {out: w}}]\n", ["--set", "w={" + "a" * 200000],
     ("error", "characters", "")),
    # nested lists are configuration tables (issue 12), read as they are
    ("a nested list as a variable", HEAD + "variables: {a: [[1, 2]]}\nlayers: [relu]\n", ["--format", "json"],
     ("ok", '"a": [')),
    ("a 90 KB value is not echoed", HEAD + "layers: [{linear: {out: 8, bias: " + "x" * 90000 + "}}]\n", [],
     ("error", "(90,002 characters)", ":3: layers[0].linear.bias")),
    ("a derived variable names the --set that broke it", HEAD + "variables: {a: 2, b: a * 2}\nlayers: [{linear: {out: b}}]\n",
     ["--set", "a=foo"], ("error", "a is given on the command line", "")),
]

# (id, argv with SPEC standing for a small valid spec, expected)
CLI = [
    ("batch of 100 digits", ["analyze", "SPEC", "--batch", "9" * 100], ("ok", "total")),
    ("batch of 400 digits", ["analyze", "SPEC", "--batch", "9" * 400], ("error", "at most 10**100", "")),
    ("batch 10**99 in json", ["analyze", "SPEC", "--batch", "1" + "0" * 99, "--format", "json"], ("ok", '"batch": 1' + "0" * 99)),
    ("jobs without bound", ["sweep", "SPEC", "--set", "w=8,16", "--jobs", "100000"], ("error", "at most 256", "")),
    ("sweep grid beyond 2**63", ["sweep", "SPEC"] + ["--set", "w=" + ",".join(map(str, range(1, 70)))] + ["--batch", ",".join(map(str, range(1, 1000)))] * 7,
     ("error", "variants", "")),
    ("sweep table of 10**6 variants", ["sweep", "SPEC", "--set", "w=" + ",".join(map(str, range(1, 1001))), "--batch", ",".join(map(str, range(1, 1001)))],
     ("error", "at most 100,000 to sort", "")),
    ("sweep --filter of 1 MB", ["sweep", "SPEC", "--set", "w=8", "--filter=" + "-" * 1000000 + "1"], ("error", "longer than 500", "")),
    ("sweep value .inf", ["sweep", "SPEC", "--set", "w=8,.inf", "--format", "json"], ("error", "finite", "")),
    ("sweep value 010", ["sweep", "SPEC", "--set", "w=010", "--format", "json"], ("error", "ambiguous", "")),
    ("--set 010", ["analyze", "SPEC", "--set", "w=010"], ("error", "ambiguous", "")),
    ("--set .nan", ["analyze", "SPEC", "--set", "w=.nan"], ("error", "finite", "")),
    ("--input of 100 dims", ["analyze", "SPEC", "--input", "x".join(["1"] * 100)], ("error", "at most 64", "")),
    ("--set of a 5,000-digit number", ["analyze", "SPEC", "--set", "w=" + "9" * 5000], ("error", "5,000 digits", "")),
]
CLI_SPEC = HEAD + "variables: {w: 8}\nlayers: [{linear: {out: w}}]\n"
