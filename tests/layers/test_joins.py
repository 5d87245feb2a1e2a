"""The joins (calc/layers/joins.py): add, mul with broadcasting, concat; hand-derived shapes
and operation counts, explanations that stay short however many inputs there are."""
import pytest

from calc import analyze, parse_spec
from calc.explain import explain
from calc.render.explain import format_explanation, format_step
from calc.layers import LAYERS, NO_PARAMS


def join(type_name, **args):
    return LAYERS[type_name].model_validate({"with": ["other"], **args})


def run(layer, shapes):
    """(output shape, params, ops) as the analysis gets them, checked against the derived
    infer_many/params_many/ops_many."""
    out, params, ops = layer.evaluate_many(shapes)
    assert (layer.infer_many(shapes), layer.params_many(shapes), layer.ops_many(shapes, out)) == (out, params, ops)
    return out, params, ops


def explained(layer, shapes):
    return [format_step(s) for s in layer.explain_many(shapes, layer.infer_many(shapes))]


def test_add():
    # ResNet's residual sum: 2 inputs of 256×56×56, one addition per element:
    # (2 − 1)·256·56·56 = 802,816
    assert run(join("add"), [(256, 56, 56)] * 2) == ((256, 56, 56), NO_PARAMS, {"add": 802_816, "operands": 2})
    # three inputs of 2×3: two additions for each of the 6 elements = 12
    assert run(join("add"), [(2, 3)] * 3)[2] == {"add": 12, "operands": 3}
    assert explained(join("add"), [(3, 4, 5)] * 2) == [
        "output = the inputs' common shape = 3×4×5",
        "add = (k − 1)·y = (2 − 1)·60 = 60   (k inputs: k − 1 additions for each of the y output elements)"]
    with pytest.raises(ValueError, match="^cannot add shapes 3×4×5 and 3×4×6$"):
        join("add").infer_many([(3, 4, 5), (3, 4, 6)])
    # with more inputs the refusal names the first that differs, not all of them
    with pytest.raises(ValueError, match=r"^cannot add shapes 2×3 and 2×4 \(input 3 of 4\)$"):
        join("add").infer_many([(2, 3), (2, 3), (2, 4), (2, 5)])


def test_mul_broadcasts():
    # squeeze-and-excitation: a 64×1×1 gate over 64×56×56, one product per output element:
    # (2 − 1)·64·56·56 = 200,704
    out, params, ops = run(join("mul"), [(64, 56, 56), (64, 1, 1)])
    assert (out, params, ops) == ((64, 56, 56), NO_PARAMS, {"mul": 200_704, "operands": 2})
    # the flow may be the smaller one: 1×4 times 3×1 broadcast to 3×4, (2 − 1)·12 = 12
    out, _, ops = run(join("mul"), [(1, 4), (3, 1)])
    assert (out, ops) == ((3, 4), {"mul": 12, "operands": 2})
    # three inputs, rank aligned on the right: 5 · (2, 5) · (3, 1, 1) → 3×2×5, (3 − 1)·30 = 60
    out, _, ops = run(join("mul"), [(5,), (2, 5), (3, 1, 1)])
    assert (out, ops) == ((3, 2, 5), {"mul": 60, "operands": 3})
    assert explained(join("mul"), [(64, 56, 56), (64, 1, 1)]) == [
        "output = the inputs broadcast together = 64×56×56",
        "mul = (k − 1)·y = (2 − 1)·200704 = 200,704   "
        "(k inputs: k − 1 multiplications for each of the y output elements)"]
    with pytest.raises(ValueError, match=r"^shapes 3×4 and 2×4 do not broadcast \(input 3 of 3\)$"):
        join("mul").infer_many([(3, 4), (1, 4), (2, 4)])


def test_concat():
    # Inception's four branches: 64 + 128 + 32 + 32 = 256 channels; a copy, nothing counted
    shapes = [(64, 28, 28), (128, 28, 28), (32, 28, 28), (32, 28, 28)]
    assert run(join("concat"), shapes) == ((256, 28, 28), NO_PARAMS, {"operands": 4})
    # along the last dim: 3 + 4 = 7
    assert run(join("concat", dim=-1), [(2, 3), (2, 4)])[0] == (2, 7)
    assert explained(join("concat"), [(3, 4, 5), (5, 4, 5)]) == [
        "joined = Σ n_i = 8   (the sizes n_i of the 2 inputs along dim 0, added; a copy, nothing counted)"]
    with pytest.raises(ValueError, match=r"^cannot concatenate along dim 0: shapes 3×4×5, 3×4×6$"):
        join("concat").infer_many([(3, 4, 5), (3, 4, 6)])
    with pytest.raises(ValueError, match=r"shapes 3×4, 3×4×1 \(input 3 of 3\)$"):
        join("concat").infer_many([(3, 4), (3, 4), (3, 4, 1)])


def test_a_join_has_no_parameters():
    # asked about the flow alone (what a check of every layer's parameters does), nothing
    for type_name in ("add", "mul", "concat"):
        assert join(type_name).params((3, 4, 5)) == NO_PARAMS


def test_many_inputs_are_explained_in_bounded_text():
    # 2,000 named outputs of 3×4×4 joined by add, mul and concat: one step each, whatever k
    n = 2000
    names = ", ".join(f"a{i}" for i in range(n))
    spec = "\n".join(["name: wide", "input: [3, 4, 4]", "layers:",
                      *(f"  - identity: {{name: a{i}}}" for i in range(n)),
                      f"  - add: {{with: [{names}]}}", f"  - mul: {{with: [{names}]}}",
                      f"  - concat: {{with: [{names}]}}"])
    a = analyze(parse_spec(spec, "wide.yaml").build(), convention="exact")
    steps = {r.kind: [format_step(s) for s in r.layer.explain_many(list(r.inputs), r.output_shape)]
             for r in (e.result for e in explain(a)) if r.kind in ("add", "mul", "concat")}
    # 2,001 inputs (the flow and 2,000 names) of 48 elements: 2,000·48 = 96,000 each
    assert steps["add"][1].startswith("add = (k − 1)·y = (2001 − 1)·48 = 96,000")
    assert steps["mul"][1].startswith("mul = (k − 1)·y = (2001 − 1)·48 = 96,000")
    # 2,001 inputs of 3 channels: 6,003
    assert steps["concat"] == ["joined = Σ n_i = 6,003   (the sizes n_i of the 2001 inputs along dim 0, "
                               "added; a copy, nothing counted)"]
    assert a.totals.flops == 2 * 96_000   # exact: every addition and multiplication once
    assert all(len(line) < 150 for lines in steps.values() for line in lines)


def test_residual_join_in_explain(tmp_path):
    a = analyze(parse_spec("""
name: block
input: [8, 6, 6]
layers:
  - residual:
      main: [{conv2d: {out: 8, kernel: 3, padding: 1}}]
      shortcut: []
""", "block.yaml").build(), convention="exact")
    text = format_explanation(a, explain(a))
    # the sum of two 8×6×6 tensors: 288 additions
    assert "add = (k − 1)·y = (2 − 1)·288 = 288" in text
    assert "output = the inputs' common shape = 8×6×6" in text


def test_calc_layers_shows_the_declared_formula(capsys):
    from calc.cli import main
    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    section = out[out.index("\nmul  [mul]"):].split("\n\n")[0]
    # the text comes from the declaration that computes the count
    listed = ["mul: (k − 1)·y", "operands: k   (a fact for conventions)"]
    assert [ln.strip() for ln in section.splitlines()[-2:]] == listed
    assert [f"{q}: {f}" for q, f in LAYERS["mul"].describe()] == listed
