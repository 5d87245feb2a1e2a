"""`calc explain --symbolic` and its algebra: the formulas in the input sizes agree with calc's
numeric analysis (an independent path: the analysis computes every layer at each size) for every
bundled CNN over a range of sizes, and so does the polynomial on its residue class."""
from fractions import Fraction

import pytest

from calc import analyze
from calc.check.algebra import Dual, Poly, on_residue_class
from calc.check.symbolic import symbolic
from calc.cli import main
from calc.errors import CalcError
from calc.spec import load_spec
from conftest import SPECS

H = Poly.symbol("H")


def value(p: Poly, **sizes) -> Fraction:
    return p.evaluate(sizes)


# ---------------------------------------------------------------------------- algebra

def test_floor_is_exact_and_canonical():
    # conv k=11, s=4, p=2: floor((H + 4 − 11)/4) + 1 = floor((H + 1)/4) − 2 + 1, as −7 = 4·(−2) + 1
    out = (H + Poly.const(4 - 11)).floordiv(4) + Poly.const(1)
    assert out.text() == "floor((H + 1)/4) − 1"
    for h in range(1, 300):
        assert value(out, H=h) == (h + 4 - 11) // 4 + 1


def test_nested_floors_merge():
    # floor((floor((H + 1)/4) − 1)/2) = floor((H − 3)/8) = floor((H + 5)/8) − 1
    inner = (H + Poly.const(1)).floordiv(4)
    out = (inner - Poly.const(1)).floordiv(2)
    assert "floor((H + 5)/8)" in out.text()
    for h in range(0, 200):
        assert value(out, H=h) == ((h + 1) // 4 - 1) // 2


def test_whole_division_is_no_floor():
    assert (H.scale(6) + Poly.const(4)).floordiv(2).text() == "3·H + 2"


def test_ceil_through_negation():
    # ceil(H/3) = −floor(−H/3)
    out = -((-H).floordiv(3))
    for h in range(0, 50):
        assert value(out, H=h) == -(-h // 3)


def test_residue_class_polynomial():
    # floor((H + 1)/4)·floor((H + 1)/8) for H divisible by 8: (H/4)·(H/8) = H²/32
    p = (H + Poly.const(1)).floordiv(4) * (H + Poly.const(1)).floordiv(8)
    poly, m = on_residue_class(p, ["H"])
    assert m == 8 and poly.text() == "(1/32)·H^2"
    assert on_residue_class(p, ["H"], modulus=4) is None
    poly3, _ = on_residue_class(p, ["H"], modulus=8, residue=3)
    for h in range(3, 200, 8):
        assert value(poly3, H=h) == value(p, H=h)


def test_dual_behaves_as_its_int_and_builds_the_formula():
    x = Dual(224, H)
    y = (x + 2 * 2 - 7) // 2 + 1
    assert y == (224 - 3) // 2 + 1 and isinstance(y, int)
    assert value(y.p, H=225) == (225 - 3) // 2 + 1
    assert x * 3 > 600 and hash(x) == hash(224) and f"{x:,}" == "224"


# ---------------------------------------------------------------------------- every bundled CNN

CNNS = sorted(p.stem for p in SPECS.glob("*.yaml")
              if load_spec(str(p)).doc.input_kind == "values" and len(load_spec(str(p)).doc.input) == 3)


def _analysis_at(model, h, w):
    try:
        return analyze(model, input_shape=(model.input_shape[0], h, w))
    except CalcError:
        return None


@pytest.mark.parametrize("name", CNNS)
def test_symbolic_agrees_with_the_analysis(name):
    model = load_spec(str(SPECS / f"{name}.yaml")).build()
    h0, w0 = model.input_shape[1:]
    try:
        sym = symbolic(model, check_sizes=[])
    except CalcError:
        # A network whose shapes a variable fixes (Swin and MaxViT reshape by `image`, which
        # --input does not change) has no formula in H and W: the analysis must refuse other
        # sizes too (a size the patch embedding floors to the same grid is still taken), or
        # --symbolic gave up on a network it should have followed.
        assert any(_analysis_at(model, h, w) is None
                   for h, w in [(h0 + 1, w0 + 3), (h0 + 32, w0 + 32), (2 * h0, 2 * w0)])
        return
    assert sym.symbols == ["H", "W"] and not sym.lost
    # odd, even, non-square, smaller and larger sizes: the floors must be right at each
    sizes = [(h0, w0), (h0 + 1, w0 + 3), (h0 - 5, w0 + 17), (h0 + 31, w0 - 2), (2 * h0 + 7, h0 + 9)]
    checked = 0
    for h, w in sizes:
        a = _analysis_at(model, h, w)
        if a is None:       # a fixed-size network (a stated in=, a position table) cannot take it
            continue
        checked += 1
        assert (value(sym.params, H=h, W=w), value(sym.macs, H=h, W=w)) == (a.totals.params, a.totals.macs), (h, w)
        per_layer = {row.name: row.result for row in a.rows() if row.result.is_leaf}
        for lf in sym.layers[::7]:   # every seventh layer: its own formulas, not only the sums
            r = per_layer[lf.name]
            assert value(lf.params, H=h, W=w) == r.params, (lf.name, h, w)
            assert value(lf.macs, H=h, W=w) == a.macs_of(r), (lf.name, h, w)
    assert checked >= 1
    # the polynomial on the residue class, at sizes of that class
    assert sym.macs_class is not None and sym.modulus in (8, 16, 32, 64, 96)
    m = sym.modulus
    for k in (h0 // m, h0 // m + 3):
        h = k * m
        a = _analysis_at(model, h, h)
        if a is not None:
            assert value(sym.macs_class, H=h, W=h) == a.totals.macs
            assert value(sym.params_class, H=h, W=h) == a.totals.params


def test_resnet50_polynomial(capsys):
    # ResNet-50: 4,089,184,256 MACs at 224 (torchvision publishes 4.09 GFLOPS as MACs);
    # for H, W divisible by 32 the count is a·H·W + b with the classifier's 2,048,000 as b
    code = main(["explain", str(SPECS / "resnet50.yaml"), "--symbolic"])
    out = capsys.readouterr().out
    assert code == 0
    assert "for H, W divisible by 32:" in out
    assert "MACs = B·(81456·H·W + 2048000)" in out
    assert 81456 * 224 * 224 + 2048000 == 4_089_184_256
    assert "checked against calc's numeric count at" in out


def test_symbolic_refuses_other_conventions(capsys):
    code = main(["explain", str(SPECS / "resnet18.yaml"), "--symbolic", "--convention", "exact"])
    assert code == 2 and "standard" in capsys.readouterr().err


def test_symbolic_sequence_model():
    # a token model: the sequence length L is the symbol; attention brings L² terms
    model = load_spec(str(SPECS / "gpt2.yaml")).build(input_shape=(128,))
    sym = symbolic(model, check_sizes=[{"L": 128}, {"L": 77}, {"L": 1000}])
    assert sym.symbols == ["L"]
    assert all(ok is True for _, ok in sym.checked), sym.checked


# ---------------------------------------------------------------------------- --sizes and --vary

def _explain(capsys, *argv):
    code = main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_transformer_layer_in_l_and_d(capsys):
    # §8 of docs/derivations.md derived by calc: 12·d² + 13·d parameters, 12·L·d² + 2·L²·d MACs
    # (24·L·d² + 4·L²·d FLOPs), with L a size of the input and d interpolated over values of d
    code, out, _ = _explain(capsys, str(SPECS / "examples" / "transformer_layer.yaml"), "--symbolic",
                            "--sizes", "L", "--vary", "d")
    assert code == 0
    assert "MACs = B·(1536·L^2 + 7077888·L)" in out      # d = 768: 2·768 = 1,536, 12·768² = 7,077,888
    assert "params = 12·d^2 + 13·d" in out
    assert "MACs = B·(12·L·d^2 + 2·L^2·d)" in out
    assert out.count(": equal") == 2


def test_vary_library():
    from calc.check.variables import vary
    spec = load_spec(str(SPECS / "examples" / "group_conv.yaml"))
    base = symbolic(spec.build(), names=["C", "H", "H"], check_sizes=[])
    assert base.symbols == ["H"]          # input: [C, H, H]: one symbol for both sides
    v = vary(spec, ["C"], {}, None, None, base)
    C = Poly.symbol("C")
    # dense 9·C² + grouped 9·C²/4 weights; MACs the same per output position, H² of them
    assert (v.params - (C * C).scale(Fraction(45, 4))).terms == {}
    assert (v.macs - (C * C * H * H).scale(Fraction(45, 4))).terms == {}
    assert all(ok is True for _, ok in v.checked) and len(v.checked) == 2


def test_vary_says_when_there_is_no_polynomial(capsys, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nvariables: {n: 40}\ninput: [3, 16, 16]\nlayers:\n"
                    "  - conv2d: {out: \"make_divisible(n * 3, 8)\", kernel: 3}\n")
    code, out, _ = _explain(capsys, str(spec), "--symbolic", "--vary", "n")
    assert code == 0 and "in n: no formula — the parameters are not a polynomial" in out


@pytest.mark.parametrize("argv, words", [
    (["--vary", "width_mult"], ["only whole-number variables"]),
    (["--vary", "nope"], ["no such variable"]),
    (["--sizes", "Q"], ["--sizes Q", "C, H, W"]),
])
def test_symbolic_option_errors(capsys, argv, words):
    code, _, err = _explain(capsys, str(SPECS / "mobilenet_v2.yaml"), "--symbolic", *argv)
    assert code == 2
    for w in words:
        assert w in err


def test_totals_at_the_batch(capsys):
    # 8 × 4,089,184,256 = 32,713,474,048, as `calc analyze resnet50 --batch 8` counts
    code, out, _ = _explain(capsys, str(SPECS / "resnet50.yaml"), "--symbolic", "--batch", "8")
    assert code == 0 and "at H = 224, W = 224 and B = 8: params = 25,557,032, MACs = 32,713,474,048" in out
