"""Property-based checks of the formulas (hypothesis), each against an independent statement."""
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from calc.graph import Leaf, Model, Seq
from calc.analysis import analyze
from calc.layers import LAYERS
from calc.shapes import adaptive_bins, conv_out, pool_out

small = st.integers(1, 12)


def brute_windows(n, k, s, p, d, ceil_mode=False):
    """Count window positions by walking the padded input one start at a time."""
    span = d * (k - 1) + 1
    count = 0
    start = -p
    while start <= n + p:
        fits = start + span <= n + p
        # ceil mode keeps a last partial window that hangs over the padded end by less than a
        # stride, as long as it starts inside the input or the left padding
        partial = ceil_mode and start + span - 1 < n + p + s - 1 and start < n
        if fits or partial:
            count += 1
        start += s
    return count


@given(n=st.integers(1, 40), k=small, s=small, p=st.integers(0, 6), d=st.integers(1, 4))
def test_conv_output_length_matches_brute_force(n, k, s, p, d):
    assume(n + 2 * p >= d * (k - 1) + 1)
    assert conv_out(n, k, s, p, d) == brute_windows(n, k, s, p, d)


@given(n=st.integers(1, 40), k=small, s=small, p=st.integers(0, 6), d=st.integers(1, 3), ceil=st.booleans())
def test_pool_output_length_matches_brute_force(n, k, s, p, d, ceil):
    # PyTorch refuses pooling padding above half the window, so such cases never occur
    assume(p <= (d * (k - 1) + 1) // 2)
    expected = brute_windows(n, k, s, p, d, ceil)
    if expected == 0:  # no window at all (only possible when the window outgrows the input)
        with pytest.raises(ValueError):
            pool_out(n, k, s, p, d, ceil)
    else:
        assert pool_out(n, k, s, p, d, ceil) == expected


@given(n=st.integers(1, 60), o=st.integers(1, 60))
def test_adaptive_bins_cover_input_and_window_total(n, o):
    bins = adaptive_bins(n, o)
    assert bins[0][0] == 0 and bins[-1][1] == n
    assert all(end > start for start, end in bins)
    layer = LAYERS["adaptive_avgpool1d"](size=o)
    ops = layer.ops((2, n), (2, o))
    assert ops["add"] + ops["div"] == 2 * sum(e - s for s, e in bins)


def one(layer_type, shape, batch=1, **args):
    layer = LAYERS[layer_type](**args)
    model = Model("t", None, shape, Seq(None, (), items=(Leaf(None, (), layer=layer),), kind="model"), {})
    return analyze(model, batch=batch)


convs = st.fixed_dictionaries({
    "out": st.integers(1, 8), "kernel": st.integers(1, 4), "stride": st.integers(1, 3),
    "padding": st.integers(0, 2), "groups": st.sampled_from([1, 2]), "bias": st.booleans()})


@given(args=convs, c=st.integers(1, 4), h=st.integers(4, 12), w=st.integers(4, 12), batch=st.integers(1, 5))
def test_conv_params_independent_of_batch_and_size_and_macs_linear(args, c, h, w, batch):
    c *= args["groups"]
    args["out"] *= args["groups"]
    a1 = one("conv2d", (c, h, w), 1, **args)
    ab = one("conv2d", (c, h, w), batch, **args)
    bigger = one("conv2d", (c, h + 3, w + 5), 1, **args)
    assert ab.totals.params == a1.totals.params == bigger.totals.params
    assert ab.totals.macs == batch * a1.totals.macs
    assert ab.totals.flops == 2 * ab.totals.macs
    k = args["kernel"]
    # weights: C_out · C_in/g · k²; independent statement of the conv formula
    assert a1.totals.weights == args["out"] * (c // args["groups"]) * k * k


@given(c=st.integers(1, 16), o=st.integers(1, 16), bias=st.booleans(), batch=st.integers(1, 4))
def test_pointwise_conv_on_one_pixel_equals_linear(c, o, bias, batch):
    conv = one("conv2d", (c, 1, 1), batch, out=o, kernel=1, bias=bias)
    lin = one("linear", (c,), batch, out=o, bias=bias)
    assert (conv.totals.params, conv.totals.macs) == (lin.totals.params, lin.totals.macs)


@given(g=st.integers(1, 6), cpg=st.integers(1, 4), opg=st.integers(1, 4), k=st.integers(1, 3))
def test_grouped_conv_has_one_gth_of_dense_weights(g, cpg, opg, k):
    shape = (g * cpg, 8, 8)
    dense = one("conv2d", shape, out=g * opg, kernel=k, bias=False)
    grouped = one("conv2d", shape, out=g * opg, kernel=k, groups=g, bias=False)
    assert grouped.totals.weights * g == dense.totals.weights
    assert grouped.totals.macs * g == dense.totals.macs


@given(c=st.integers(1, 12), o=st.integers(1, 12), k=st.integers(1, 5))
def test_depthwise_separable_weight_ratio(c, o, k):
    shape = (c, 9, 9)
    standard = one("conv2d", shape, out=o, kernel=k, padding=k // 2, bias=False).totals.weights
    depthwise = one("conv2d", shape, out=c, kernel=k, groups=c, padding=k // 2, bias=False).totals.weights
    pointwise = one("conv2d", shape, out=o, kernel=1, bias=False).totals.weights
    assert Fraction(depthwise + pointwise, standard) == Fraction(1, o) + Fraction(1, k * k)


@given(n=st.integers(1, 20), k=st.integers(1, 5), s=st.integers(1, 4), ceil=st.booleans(),
       batch=st.integers(1, 4))
def test_pool_stack_params_zero_and_macs_standard_zero(n, k, s, ceil, batch):
    assume(n >= k)
    a = one("maxpool2d", (3, n, n), batch, kernel=k, stride=s, ceil_mode=ceil)
    assert a.totals.params == 0 and a.totals.macs == 0
    assert a.output_shape[1] == brute_windows(n, k, s, 0, 1, ceil)
