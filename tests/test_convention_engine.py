"""The rule engine (calc/conventions/engine.py): tool presets name every layer type, tool facts
are derived in the tool modules (exact, with the tools' double arithmetic reproduced), and the
trace explain shows is the count itself."""
from fractions import Fraction
from typing import ClassVar

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from calc import ConventionError, analyze, parse_spec
from calc.conventions import CONVENTIONS, Convention, Count, Rule, register
from calc.conventions.tools.common import Float64, float64_product
from calc.formula import Q
from calc.layers import LAYERS, Layer
from calc.layers import register as register_layer
from helpers import leaves, run_text
from layer_samples import SAMPLES, sample_spec
from probe_data import PROBES

TOOL_PRESETS = sorted(name for name, c in CONVENTIONS.items() if c.explicit)
# Facts only tool presets read: the presets derive them (calc/conventions/tools/); no layer has them.
TOOL_ONLY_FACTS = {"kernel_avg", "kernel_floor", "scale_prod", "by_size", "nearest", "dims", "channels"}


def test_layers_know_nothing_of_tools():
    for cls in LAYERS.values():
        assert not {q.name for q in cls.quantities} & TOOL_ONLY_FACTS, cls.type_name


def test_tool_presets_are_the_conventions_with_a_source():
    assert TOOL_PRESETS == sorted(n for n, c in CONVENTIONS.items() if c.source)
    assert set(TOOL_PRESETS) == {"thop", "thop-legacy", "ptflops", "ptflops-aten", "fvcore", "torchinfo", "torch"}


# ---------------------------------------------------------------------------- no borrowing

class _Scale(Layer):
    """A test-only layer: one multiply per input element (kind conv, so standard counts its mac)."""

    quantities: ClassVar[tuple] = (Q("mac", "C * L"),)

    def given(self, shape):
        if len(shape) != 2:
            raise ValueError("takes (C, L)")
        return {"C": shape[0], "L": shape[1]}


@pytest.fixture
def new_layer_type():
    name = "test_only_scale_b6f1"
    assert name not in LAYERS
    register_layer(name, "conv")(_Scale)
    try:
        yield name
    finally:
        del LAYERS[name]


def test_a_new_layer_type_is_counted_by_calc_and_refused_by_every_tool_preset(new_layer_type):
    model = parse_spec(yaml.safe_dump({"name": "t", "input": [4, 5], "layers": [{new_layer_type: {}}]}),
                       "t.yaml").build()
    # calc's own conventions count it by what it declares: mac = C·L = 4·5 = 20 under its kind's rule
    assert analyze(model, convention="standard").totals.macs == 20
    assert analyze(model, convention="exact").totals.flops == 2 * 20   # 2·mac − dots, no dots declared
    for preset in TOOL_PRESETS:
        with pytest.raises(ConventionError) as info:
            analyze(model, convention=preset)
        message = str(info.value)
        assert f"convention '{preset}' has no rule for layer type '{new_layer_type}'" in message
        assert "counts only the layer types it names" in message and "t.yaml" in message


def test_a_tool_preset_must_name_layer_types():
    with pytest.raises(RuntimeError, match=r"unknown layer types \['conv'\]"):
        register(Convention("test-only-kinds", "keyed by a kind", macs={"conv": Rule("mac")}, explicit=True))
    assert "test-only-kinds" not in CONVENTIONS
    for name in TOOL_PRESETS:
        assert CONVENTIONS[name].keys() <= set(LAYERS), name


# ---------------------------------------------------------------------------- derived facts

def _strip_and_recount(a, conv):
    """Count every leaf of ``a`` again without the tool-only facts the layer provides."""
    for r in leaves(a):
        facts = {k: v for k, v in r.facts.items() if k not in TOOL_ONLY_FACTS}
        shape = r.inputs or r.input_shape
        again = conv.count(r.layer, facts, a.batch, shape, r.output_shape)
        assert again == Count(r.macs, r.flops, r.macs_batch, r.flops_batch), (r.kind, conv.name)


EXTRA = [  # layers whose tool facts vary with their arguments
    ([2, 15, 17], {"adaptive_avgpool2d": {"size": [5, 5]}}),
    ([2, 7, 9, 11], {"adaptive_avgpool3d": {"size": [2, 4, 3]}}),
    ([1, 1, 6], {"adaptive_avgpool2d": {"size": [1, 5]}}),
    ([3, 10], {"adaptive_avgpool1d": {"size": 4}}),
    ([4, 6, 6], {"layernorm": {"channels": True}}),
    ([4, 6, 6], {"layernorm": {"normalized": 2}}),
    ([3, 5, 7], {"upsample": {"scale": 1.5, "mode": "bilinear"}}),
    ([3, 5, 7], {"upsample": {"scale": [1.3, 2.7]}}),
    ([3, 5, 7], {"upsample": {"size": [9, 9], "mode": "bilinear"}}),
    ([3, 5], {"upsample": {"scale": 2.0, "mode": "linear"}}),
    ([3, 4, 5, 6], {"upsample": {"scale": 0.75, "mode": "trilinear"}}),
    ([3, 5, 7], {"global_avgpool": {}}),
    ([3, 5], {"global_avgpool": {}}),
]


def _models():
    for type_name in sorted(SAMPLES):
        yield parse_spec(sample_spec(type_name), "sample.yaml").build()
    for name, case in PROBES.items():
        doc = {"name": "probe", "input": case["input"], "layers": case["layers"], **(
            {"input_kind": case["input_kind"]} if "input_kind" in case else {})}
        yield parse_spec(yaml.safe_dump(doc), "probe.yaml").build()
    for shape, item in EXTRA:
        yield parse_spec(yaml.safe_dump({"name": "extra", "input": shape, "layers": [item]}), "extra.yaml").build()


@pytest.mark.parametrize("preset", TOOL_PRESETS)
def test_tool_presets_derive_their_own_facts(preset):
    # Every count is the same without the tool-only facts the layers provide: the presets read
    # the facts their tool modules derive from the layer's arguments and shapes.
    conv = CONVENTIONS[preset]
    for model in _models():
        for batch in (1, 3):
            try:
                a = analyze(model, batch=batch, convention=preset)
            except ConventionError:
                continue   # a documented refusal (see test_conventions)
            _strip_and_recount(a, conv)


def test_thop_adaptive_pool_is_counted_in_double_arithmetic():
    # thop's count_adap_avgpool for 1×1×6 → 1×5: kernel = (1/1)·(6/5) = 1.2 in double, then
    # int((kernel + 1)·#y·N). In doubles 1.2 + 1 rounds up to 2.2000000000000002 and ·5 to 11.0,
    # so thop prints 11 at batch 1 and 33 at batch 3 (as measured with thop 0.1.1 on
    # nn.AdaptiveAvgPool2d((1, 5))); exact arithmetic on the double 1.2 would give 10 and 32.
    for batch, printed in ((1, 11), (3, 33)):
        a = run_text("""
            name: t
            input: [1, 1, 6]
            layers: [{adaptive_avgpool2d: {size: [1, 5]}}]
        """, convention="thop", batch=batch)
        assert a.totals.macs == printed == int((1.0 * (1 / 1) * (6 / 5) + 1) * (5 * batch))
        assert int((Fraction(6 / 5) + 1) * 5 * batch) == printed - 1


def test_ptflops_interpolate_scale_is_a_double_product():
    # F.interpolate's counter multiplies #x by ∏ scale in double arithmetic: 3·5·7 · (1.3·2.7)
    a = run_text("""
        name: t
        input: [3, 5, 7]
        layers: [{upsample: {scale: [1.3, 2.7], call: functional}}]
    """, convention="ptflops", batch=2)
    per_sample = Fraction(105 * (1.0 * 1.3 * 2.7))
    assert a.totals.macs == int(2 * per_sample)


# sizes and scales: neither tiny nor huge (no result overflows or becomes subnormal)
finite = st.floats(min_value=-1e12, max_value=1e12).filter(lambda v: v == 0 or abs(v) > 1e-12)


@given(finite, finite, st.integers(-(2 ** 60), 2 ** 60))
def test_float64_rounds_like_python_floats(a, b, n):
    x = Float64.of(a)
    assert x == Fraction(a) and str(x) == format(a + 0.0, ".12g")   # (-0.0 + 0.0 is 0.0)
    for got, want in ((x + b, a + b), (x - b, a - b), (x * b, a * b), (b - x, b - a),
                      (x + n, a + n), (n * x, n * a), (n - x, n - a)):
        assert isinstance(got, Float64) and got == Fraction(want)
    if b:
        assert x / b == Fraction(a / b)
    if a:
        assert n / x == Fraction(n / a)
    assert int(x) == int(a)


@given(st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=4))
def test_float64_product_is_the_left_to_right_double_product(values):
    want = 1.0
    for v in values:
        want *= v
    assert float64_product(values) == Fraction(want)


# ---------------------------------------------------------------------------- trace

@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_trace_is_the_count(convention):
    conv = CONVENTIONS[convention]
    for model in _models():
        try:
            a = analyze(model, batch=3, convention=convention)
        except ConventionError:
            continue
        for r in leaves(a):
            t = conv.trace(r.layer, r.facts, a.batch, r.inputs or r.input_shape, r.output_shape)
            assert t.count == Count(r.macs, r.flops, r.macs_batch, r.flops_batch)
            totals = {s.key: s.value for s in t.steps if s.key in ("macs", "flops")}
            assert totals == {"macs": a.macs_of(r), "flops": a.flops_of(r)}
            type_name = r.layer.type_name
            assert t.key in (type_name, r.layer.kind) and (t.key == type_name or not conv.explicit)
