"""The `memory` section of `analyze --format json` walks a model's activations once for both its
figures (the training step's saved activations and the inference peak) and sums parameters and
buffers without naming rows. Each figure is checked against the separate computation it replaces
(its own walk, its own named rows), which the other memory tests check by hand and against
PyTorch."""
from __future__ import annotations

import textwrap

import pytest

from calc import analyze, parse_spec
from calc.errors import CalcError
from calc.inference import leaf_counts, leaf_rows
from calc.memory import inference_peak, saved_activations
from calc.memory.activations import training_and_inference
from calc.memory.training import inference_memory, training_memory
from calc.render.memory import ANALYZE_WALK, analysis_memory, memory_dict
from calc.spec import load_spec
from conftest import SPECS

BUNDLED = sorted(p.name for p in SPECS.glob("*.yaml"))


def analysis(text: str, batch: int = 1, dtype: str = "fp32"):
    return analyze(parse_spec("name: t\n" + textwrap.dedent(text), "t.yaml").build(), batch=batch, dtype=dtype)


def _separately(a, dtype):
    """(saved bytes or the error's message, peak bytes or the error's message), each from its own walk."""
    out = []
    for fn in (lambda: saved_activations(a, dtype=dtype).bytes, lambda: inference_peak(a, dtype=dtype).bytes):
        try:
            out.append(fn())
        except CalcError as err:
            out.append(err.message)
    return tuple(out)


def _unshared(a) -> dict:
    """analysis_memory as it was computed before the walk was shared: each figure on its own."""
    out = {}
    try:
        out["inference"] = memory_dict(inference_memory(a, walk_limit=ANALYZE_WALK))
        precision = a.dtype if a.dtype in ("fp32", "bf16", "fp16") else "fp32"
        out["training"] = memory_dict(training_memory(a, optimizer="adamw", precision=precision,
                                                      walk_limit=ANALYZE_WALK))
    except CalcError as err:
        out["error"] = err.message
    return out


@pytest.mark.parametrize("name", BUNDLED)
def test_one_walk_gives_what_two_walks_give_on_every_bundled_spec(name):
    model = load_spec(str(SPECS / name)).build()
    for batch, dtype in ((1, "fp32"), (2, "bf16")):
        a = analyze(model, batch=batch, dtype=dtype)
        expected = _separately(a, dtype)
        try:
            saved, peak = training_and_inference(a, dtype=dtype)
        except CalcError as err:
            assert err.message == expected[0]     # the error the training walk raises
        else:
            assert saved == expected[0]
            assert peak is None or peak == expected[1]
        assert analysis_memory(a) == _unshared(a)


@pytest.mark.parametrize("name", BUNDLED)
def test_leaf_counts_sum_as_the_named_rows_do(name):
    a = analyze(load_spec(str(SPECS / name)).build())
    rows = [(r, k) for _, r, k in leaf_rows(a)]
    counts = list(leaf_counts(a))
    for field in ("weights", "bias", "buffers", "frozen", "activations"):
        assert sum(k * getattr(r, field) for r, k in counts) == sum(k * getattr(r, field) for r, k in rows), field
    assert {id(r) for r, _ in counts} == {id(r) for r, _ in rows}
    # and both are the analysis's own totals (calc.analysis sums its tree the same way)
    assert sum(k * r.params for r, k in counts) == a.root.params


def test_leaf_counts_of_a_folded_repeat():
    # A block of two linears (4·4 + 4 = 20 parameters each) repeated a million times: the report
    # folds it into its first iteration and one row of 999,999; leaf_counts gives each linear
    # once, with count 1,000,000. Parameters: 2 · 20 · 10⁶ = 40,000,000.
    a = analysis("""
        input: [4]
        layers: [{repeat: {times: 1000000, layers: [{linear: {out: 4}}, {linear: {out: 4}}]}}]""")
    assert sorted(k for _, k in leaf_counts(a)) == [1_000_000, 1_000_000]
    assert sum(k * r.params for r, k in leaf_counts(a)) == sum(k * r.params for _, r, k in leaf_rows(a)) == 40_000_000


# A dropout after a non-contiguous view (to_tokens of a 2-sample batch): in training it makes a
# new, contiguous tensor; at inference it is the view itself, so the linear after it copies its
# input (Effect.work). The training walk cannot answer for inference here, and says so.
VIEW_THEN_DROPOUT = """
    input: [2, 3, 3]
    layers: [{conv2d: {out: 4, kernel: 1}}, to_tokens, {dropout: {p: 0.1}}, {linear: {out: 5}}]"""


def test_a_dropout_of_a_non_contiguous_view_is_walked_again_for_inference():
    a = analysis(VIEW_THEN_DROPOUT, batch=2)
    saved, peak = training_and_inference(a)
    assert peak is None
    assert saved == saved_activations(a).bytes
    # the peak, walked on its own: the linear copies its input (the conv's output viewed,
    # 2·4·9·4 = 288 B) while reading it, 288 + 288; the input, read by no later layer, is then
    # freed; the product 2·9·5·4 = 360 B is made from the copy (288 + 360), then the bias added
    # into a new tensor (360 + 360 = 720 B), the order PyTorch's operations take (matmul, then
    # add: tests/test_memory_peak_oracle.py)
    assert inference_peak(a).bytes == max(288 + 288, 288 + 360, 360 + 360) == 720
    shared: dict = {}
    training_memory(a, shared=shared)
    assert inference_memory(a, shared=shared).part("activation peak").bytes == 720
    assert analysis_memory(a) == _unshared(a)


def test_dropout_after_a_contiguous_tensor_is_read_from_the_training_walk():
    # conv2d 2→4 (1×1) on 2×3×3, dropout, flatten, linear. Inference: the dropout is the
    # conv's output itself. While the conv runs: input 2·2·9·4 = 144 B + output 2·4·9·4 = 288 B
    # = 432 B; while the linear runs: its input (the conv's output, 288 B) + its output
    # 2·5·4 = 40 B = 328 B. The peak is 432 B, at the conv.
    a = analysis("""
        input: [2, 3, 3]
        layers: [{conv2d: {out: 4, kernel: 1}}, {dropout: {p: 0.1}}, flatten, {linear: {out: 5}}]""", batch=2)
    saved, peak = training_and_inference(a)
    assert peak == inference_peak(a).bytes == 432
    assert saved == saved_activations(a).bytes
