"""Compiled sweeps (calc/sweep_compile.py, calc/tracing.py): the rows are exactly those of the plain
path. The oracle of every expected row here is the plain path itself (building and analysing each
variant, which the rest of the suite checks against hand derivations and PyTorch); the compiled
path must agree with it field by field, types included, errors included."""
import math
from pathlib import Path

import pytest

from calc import sweep as sw
from calc.spec import parse_spec
from calc.tracing import Tape, Untraceable

SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.fixture(autouse=True)
def _collector_as_found():
    # Evaluator.run sets what exists aside from the garbage collector (gc.freeze); sweep()
    # undoes it, these tests call run directly.
    import gc
    frozen = gc.get_freeze_count()
    yield
    if not frozen:
        gc.unfreeze()


def _both(spec, grid, convention="standard", dtype="fp32"):
    compiled = sw.Evaluator(spec, grid, convention, dtype, compile=True)
    plain = sw.Evaluator(spec, grid, convention, dtype, compile=False)
    rows = compiled.run(0, grid.size)
    expected = plain.run(0, grid.size)
    assert plain.compiled is None
    assert compiled.mismatches == 0
    for a, b in zip(rows, expected):
        assert a == b, (a, b)
        # equal and of the same types (1 and 1.0 are equal but print differently)
        assert [type(x) for x in a] == [type(x) for x in b], (a, b)
    assert len(rows) == len(expected)
    return compiled, rows


def _spec(name):
    if name == "structured_index":
        return parse_spec(INDEXED, "indexed.yaml")
    path = SPECS / f"{name}.yaml"
    return parse_spec(path.read_text(), str(path))


INDEXED = """
name: indexed
input: [3, 16, 16]
variables: {k: 0, c: 8, sizes: [8, 16, 24]}
layers:
  - conv2d: {out: "sizes[k]", kernel: 3}
  - conv2d: {out: c, kernel: 3}
"""


# Grids over the bundled specs' numeric variables: (spec, axes, inputs, whether programs answer).
GRIDS = [
    ("resnet50", [("width", [0.25, 0.5, 0.625, 1.0, 1.3]), ("width_per_group", [4, 16, 64, 70])], None, True),
    ("resnet50", [("width", [0.5, 1.0]), ("groups", [1, 3, 32]), ("layers", [[2, 2, 2, 2], [3, 4, 6, 3]])],
     [(3, 64, 64), (3, 224, 224)], True),
    ("mobilenet_v2", [("width_mult", [0.35, 0.5, 0.75, 1.0, 1.4]), ("round_nearest", [4, 8])], None, True),
    ("densenet121", [("growth_rate", [12, 32]), ("bn_size", [2, 4]), ("num_init_features", [32, 64])], None, True),
    # depth_mult sets repeat counts: a program per count (the count is pinned by a guard)
    ("efficientnet_b0", [("width_mult", [0.5, 1.0, 1.1]), ("depth_mult", [1.0, 1.2, 1.4])], None, True),
    # a swept number used as a list index: the trace cannot follow it, every row is plain
    ("structured_index", [("k", [0, 1, 2, -1]), ("c", [4, 8, 12, 16, 20, 24, 28, 32])], None, False),
    ("gpt2", [("d", [64, 768, 770]), ("vocab", [1000, 50257]), ("n_ctx", [64, 1024])], None, True),
    ("lstm_tagger", [("emb", [16, 100]), ("vocab", [100, 5000]), ("seq", [8, 35])], None, True),
    ("t5_small", [("vocab", [100, 32128]), ("src", [16, 64]), ("tgt", [8, 32])], None, True),
    ("unet", [("base", [8, 16, 64]), ("classes", [1, 2, 5])], None, True),
    ("vit_b_16", [("dim", [96, 768]), ("patch", [16, 32]), ("image", [224, 240])], None, True),
    # Swin reads the incoming shape (`in`): the trace gives way and the plain path rebuilds the
    # model for each input, as it does without compiling
    ("swin_t", [("embed_dim", [48, 96])], [(3, 224, 224), (3, 256, 256)], False),
]


@pytest.mark.parametrize("name, axes, inputs, answers", GRIDS, ids=[f"{g[0]}-{i}" for i, g in enumerate(GRIDS)])
@pytest.mark.parametrize("convention", ["standard", "ptflops", "fvcore"])
def test_compiled_rows_equal_plain_rows(name, axes, inputs, answers, convention):
    spec = _spec(name)
    grid = sw.make_grid(spec, axes, inputs, [1, 2, 7])
    ev, rows = _both(spec, grid, convention)
    if all(r.error for r in rows):     # the tool presets refuse T5's attention: nothing to answer
        assert ev.compiled.answered == 0
    elif answers:
        assert ev.compiled is not None and ev.compiled.answered > 0
    else:
        assert ev.compiled is not None and ev.compiled.answered == 0 and ev.compiled.failed


def test_distinct_resnet50_networks_are_one_program():
    # The benchmark's grid, smaller: every variant a different network, one structure.
    spec = _spec("resnet50")
    grid = sw.make_grid(spec, [("width", [k / 64 for k in range(16, 80, 8)]), ("width_per_group", [16, 20, 64])])
    ev, rows = _both(spec, grid)
    assert ev.compiled.traces == 1 and ev.compiled.answered == grid.size
    assert len({r.params for r in rows}) == grid.size        # distinct networks


STRUCTURED = """
name: structured
input: [3, 32, 32]
variables: {c: 8, k: 3, scale: 1.0}
layers:
  - conv2d: {out: "int(c * scale)", kernel: k, padding: "k // 2"}
  - relu
  - conv2d: {out: 16, kernel: 3, when: "c > 10"}
  - conv2d: {out: "c if c % 2 == 0 else c + 1", kernel: 1, groups: "2 if c % 4 == 0 else 1"}
  - maxpool2d: {kernel: "max(2, k - 1)"}
  - flatten
  - linear: {out: "max(1, c // 3)"}
"""


def test_a_structure_that_turns_gets_a_program_per_structure():
    # `when`, `a if c else b`, max(): each decision is a guard; a variant on its other side
    # is traced again (hand check: c = 8 and c = 12 differ in the when, c = 9 in the parity).
    spec = parse_spec(STRUCTURED, "structured.yaml")
    grid = sw.make_grid(spec, [("c", [4, 5, 8, 9, 11, 12, 16, 17]), ("k", [1, 3, 5, 40]), ("scale", [0.5, 1.0, 2.5])])
    ev, rows = _both(spec, grid)
    assert sum(len(p) for p in ev.compiled.programs.values()) > 1
    assert ev.compiled.answered > 0
    # k = 40 makes a 39-wide pooling window, larger than the 31- or 33-wide input: the error row is
    # the plain path's (checked above)
    assert any(r.error and "larger than the padded input" in r.error for r in rows)


def test_error_rows_are_the_plain_paths():
    # groups must divide the channels: width_per_group 3 with groups 32 gives 96-channel convs
    # for some widths and not others; the first variant of the grid is itself invalid.
    spec = _spec("resnet50")
    grid = sw.make_grid(spec, [("groups", [3, 32, 1]), ("width", [0.3, 0.5, 1.0]), ("width_per_group", [3, 4, 5])])
    ev, rows = _both(spec, grid)
    assert rows[0].error is not None
    assert any(r.error for r in rows) and any(r.error is None for r in rows)


def test_ints_and_floats_of_one_value_stay_apart():
    spec = _spec("resnet50")
    grid = sw.make_grid(spec, [("width", [1, 1.0, 0.5, 2]), ("num_classes", [10, 1000])], None, [1, 4])
    _both(spec, grid)


def test_words_and_booleans_are_constants_of_a_program():
    spec = _spec("mobilenet_v3_large")
    names = [k for k, v in spec.doc.variables.items() if type(v) in (int, float)][:1]
    grid = sw.make_grid(spec, [(names[0], [0.5, 0.75, 1.0, 1.25])], [(3, 96, 96), (3, 224, 224)], [1, 3])
    _both(spec, grid, dtype="bf16")


def test_filters_sorting_and_pareto_see_the_same_rows():
    spec = _spec("resnet50")
    grid = sw.make_grid(spec, [("width", [0.25, 0.5, 0.75, 1.0]), ("width_per_group", [8, 32, 64])], None, [1, 8])
    _, rows = _both(spec, grid)
    plain = sw.Evaluator(spec, grid, compile=False).run(0, grid.size)
    keep = sw.compile_filter("macs < 2e9 and width >= 0.5", grid)
    assert [v for v in rows if keep(v)] == [v for v in plain if keep(v)]
    assert sw.sort_variants(grid, rows, "params", True) == sw.sort_variants(grid, plain, "params", True)
    cols = [sw.parse_order("macs", grid), sw.parse_order("-params", grid)]
    assert sw.pareto_flags(grid, rows, cols) == sw.pareto_flags(grid, plain, cols)


def test_library_stream_compiles_by_default_and_can_be_told_not_to():
    path = SPECS / "resnet18.yaml"
    text = path.read_text()
    spec = parse_spec(text, str(path))
    grid = sw.make_grid(spec, [("width", [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]), ("num_classes", [10, 100, 1000, 21])])
    assert list(sw.sweep(text, str(path), grid)) == list(sw.sweep(text, str(path), grid, compile=False))


def test_hardware_and_phase_grids_take_the_plain_path():
    # The roofline times every layer and a phase runs calc.inference: both need the model.
    spec = _spec("resnet50")
    grid = sw.make_grid(spec, [("width", [0.5, 1.0] * 1)], None, [1, 2], hardware="h100-sxm")
    ev = sw.Evaluator(spec, grid, compile=True)
    assert ev.compiled is None
    gpt = _spec("gpt2")
    from calc.sweep_phase import phase_axes
    grid = sw.make_grid(gpt, [("d", [64, 128])], phase="prefill", phase_axes=phase_axes("prefill", [16, 32], []))
    assert sw.Evaluator(gpt, grid, compile=True).compiled is None


def test_grids_of_few_networks_per_program_are_not_compiled_by_default():
    spec = _spec("resnet50")
    assert sw.Evaluator(spec, sw.make_grid(spec, [("width", [0.5, 1.0])])).compiled is None
    # 16 widths per (depths, input): 16 networks per program, fewer than a trace repays
    grid = sw.make_grid(spec, [("width", [k / 16 for k in range(4, 20)]), ("layers", [[2, 2, 2, 2], [3, 4, 6, 3]])],
                        [(3, 64, 64), (3, 96, 96)])
    assert grid.size >= sw.COMPILE_FROM and sw.Evaluator(spec, grid).compiled is None
    grid = sw.make_grid(spec, [("width", [k / 16 for k in range(4, 20)]), ("num_classes", [10, 100])])
    assert sw.Evaluator(spec, grid).compiled is not None


# ---------------------------------------------------------------------------- tracing itself

def _program(fn, *values):
    tape = Tape()
    xs = [tape.input(v) for v in values]
    out = fn(*xs)
    program, _, _ = tape.compile([out], "test")
    return program


def test_a_traced_formula_repeats_python_exactly():
    # PyTorch's convolution output size, floor((H + 2p − d(k − 1) − 1)/s) + 1, with true division
    # as calc's declarations write it; the program must give what Python gives for every size.
    def out_size(h, k, s):
        return math.floor((h + 2 * 1 - 1 * (k - 1) - 1) / s) + 1
    program = _program(out_size, 224, 3, 2)
    for h in range(1, 300, 7):
        for k in (1, 3, 5):
            for s in (1, 2, 3):
                assert program(h, k, s) == (out_size(h, k, s),)


def test_decisions_become_guards():
    def f(c):
        return c * 2 if c > 10 else c + 1
    program = _program(f, 12)
    assert program(11) == (22,) and program(400) == (800,)
    assert program(10) is None and program(3) is None      # the other branch: not this program


def test_what_a_program_cannot_repeat_abandons_the_trace():
    tape = Tape()
    x = tape.input(3)
    for convert in (int, float, str, repr, range, lambda v: [0, 1, 2, 3][v], lambda v: f"{v}"):
        with pytest.raises(Untraceable):
            convert(x)
    with pytest.raises(TypeError):
        hash(x)
    with pytest.raises(TypeError):
        {x: 1}


def test_int_and_float_results_keep_their_types():
    program = _program(lambda a, b: (a / b, a // b, a * 1, a ** b), 7, 2)
    assert program(9, 3) == ((3.0, 3, 9, 729),)
    assert [type(v) for v in program(9, 3)[0]] == [float, int, int, int]
    assert program(9, -1) is None          # 9 ** -1 is a float: the type is guarded


# ---------------------------------------------------------------------------- random specs

from hypothesis import HealthCheck, given, settings  # noqa: E402

from spec_strategies import specs  # noqa: E402


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(specs(wild=0.1))
def test_random_specs_compiled_rows_equal_plain_rows(doc):
    # The generator writes channel counts as `w * k` over its variable w (tests/spec_strategies.py)
    # and, now and then, an argument that does not suit the shape; sweeping w makes every layer's
    # arguments traced numbers, and some variants invalid.
    import yaml
    from calc.errors import CalcError
    try:
        spec = parse_spec(yaml.safe_dump(doc, sort_keys=False), "generated.yaml")
    except CalcError:
        return
    grid = sw.make_grid(spec, [("w", [1, 2, 3, 4, 5, 7, 8])], None, [1, 3])
    for convention in ("standard", "fvcore", "ptflops"):
        _both(spec, grid, convention)


def test_identities_are_taken_only_where_they_hold():
    # x * 1, x // 1, x + 0, x - 0 need no line; -0.0 + 0 is 0.0 and 0 - x is not x, so those stay.
    program = _program(lambda x, y: (x * 1, 1 * x, x // 1, x + 0, 0 + x, x - 0, 0 - x, y + 0, y * 1), 5, -0.0)
    for x, y in ((5, -0.0), (-3, 2.5), (0, -0.0)):
        got = program(x, y)[0]
        want = (x * 1, 1 * x, x // 1, x + 0, 0 + x, x - 0, 0 - x, y + 0, y * 1)
        assert got == want and [math.copysign(1, v) for v in got] == [math.copysign(1, v) for v in want]


def test_worker_processes_compile_too():
    # Chunks of 400 variants go to two workers, each with its own programs (when the machine
    # has two cores); the stream is the plain path's, in grid order.
    path = SPECS / "resnet18.yaml"
    text = path.read_text()
    spec = parse_spec(text, str(path))
    grid = sw.make_grid(spec, [("width", [k / 32 for k in range(8, 48)]), ("num_classes", list(range(10, 30)))])
    assert grid.size == 800
    assert list(sw.sweep(text, str(path), grid, jobs=2)) == list(sw.sweep(text, str(path), grid, jobs=1, compile=False))


VALIDATED = """
name: validated
input: [6]
input_kind: tokens
variables: {c: 8, v: 10}
layers:
  - embedding: {vocab: v, dim: "c - 4", padding_idx: 5}
  - linear: {out: "c - 2"}
"""


def test_arguments_that_fail_validation_give_the_plain_error():
    # dim = c − 4 is refused for c ≤ 4 (a positive size), padding_idx 5 for a vocabulary of 5 or
    # fewer rows (the embedding's model validator): those rows carry the plain path's errors.
    spec = parse_spec(VALIDATED, "validated.yaml")
    grid = sw.make_grid(spec, [("c", [3, 4, 5, 6, 9, 12, 16, 20]), ("v", [2, 5, 6, 10, 100])], None, [1, 2])
    ev, rows = _both(spec, grid)
    assert ev.compiled.answered > 0
    errors = {r.error for r in rows if r.error}
    assert any("padding_idx" in e for e in errors) and any("dim" in e for e in errors)
