"""Free tensors and attention from primitives (calc/layers/tensors.py, matmul and add's
broadcast in calc/layers/joins.py, normalize, exp and clamp): hand-derived shapes, parameters
and operation counts, and the flow passing around a parameter or buffer item.

Every Swin figure below is derived by hand beside it; the bundled Swin specs are checked against
torchvision's published figures in tests/test_models.py and against PyTorch in tests/test_oracle.py."""
import pytest

from calc.layers import LAYERS, NO_PARAMS, Params
from helpers import evaluate_layer, leaves, run_layer, run_text


def join(type_name, names=("other",), **args):
    return LAYERS[type_name].model_validate({"with": list(names), **args})


def run_many(layer, shapes):
    out, params, ops = layer.evaluate_many(shapes)
    assert (layer.infer_many(shapes), layer.params_many(shapes), layer.ops_many(shapes, out)) == (out, params, ops)
    return out, params, ops


# ---------------------------------------------------------------------------- matmul

def test_matmul_of_swin_windows():
    # Swin-T stage 1: q·kᵀ per window and head, 64 windows × 3 heads of 49 tokens × 32 features:
    # b = 64·3 = 192 products of 49×32 by 32×49: MACs 192·49·32·49 = 14,751,744; dots 192·49·49 = 460,992
    out, params, ops = run_many(join("matmul", transpose=True), [(64, 3, 49, 32), (64, 3, 49, 32)])
    assert (out, params) == ((64, 3, 49, 49), NO_PARAMS)
    assert ops["mac"] == 14_751_744 and ops["dots"] == 460_992
    # attention·v: 192 products of 49×49 by 49×32: 192·49·49·32 = 14,751,744 again
    out, _, ops = run_many(join("matmul"), [(64, 3, 49, 49), (64, 3, 49, 32)])
    assert out == (64, 3, 49, 32) and ops["mac"] == 14_751_744


def test_matmul_broadcasts_the_batch_dims():
    # (5, 1, 2, 3) by (4, 3, 6): batch dims (5, 1) and (4,) broadcast to (5, 4): 20 products of
    # 2×3 by 3×6 = 20·2·3·6 = 720 MACs, 20·2·6 = 240 dots; the first operand holds 5·2·3 = 30
    # elements (what fvcore's and ptflops' count of #a × p reads: 30·6 = 180)
    out, _, ops = run_many(join("matmul"), [(5, 1, 2, 3), (4, 3, 6)])
    assert out == (5, 4, 2, 6)
    assert (ops["mac"], ops["dots"], ops["a_numel"], ops["cols"]) == (720, 240, 30, 6)
    # a matrix times a batch of matrices: (2, 3) by (7, 3, 4) → (7, 2, 4), 7·2·3·4 = 168 MACs
    out, _, ops = run_many(join("matmul"), [(2, 3), (7, 3, 4)])
    assert out == (7, 2, 4) and ops["mac"] == 168


@pytest.mark.parametrize("shapes, args, message", [
    ([(2, 3), (4, 5)], {}, r"^cannot multiply 2×3 by 4×5: 3 columns against 4 rows$"),
    ([(2, 3), (5, 4)], {"transpose": True}, r"^cannot multiply 2×3 by 5×4ᵀ: 3 columns against 4 rows$"),
    ([(3,), (3, 2)], {}, r"^the first operand must have rank ≥ 2"),
    ([(2, 2, 3), (3, 3, 4)], {}, r"^the batch dims of 2×2×3 and 3×3×4 do not broadcast$"),
])
def test_matmul_refuses(shapes, args, message):
    with pytest.raises(ValueError, match=message):
        join("matmul", **args).infer_many(shapes)


def test_matmul_takes_one_named_input():
    with pytest.raises(ValueError, match="one named input, got 3 inputs"):
        join("matmul", names=("a", "b")).infer_many([(2, 2)] * 3)


def test_add_broadcasts_only_when_asked():
    # Swin's relative position bias, 3×49×49, added to the scores of 64 windows: one addition
    # per score, 64·3·49·49 = 460,992
    out, _, ops = run_many(join("add", broadcast=True), [(64, 3, 49, 49), (3, 49, 49)])
    assert out == (64, 3, 49, 49) and ops["add"] == 460_992
    # without broadcast: true, unequal shapes stay an error (a wrong residual), with a hint
    with pytest.raises(ValueError, match=r"^cannot add shapes 64×3×49×49 and 3×49×49 \(broadcast: true lets "
                                         r"them broadcast\)$"):
        join("add").infer_many([(64, 3, 49, 49), (3, 49, 49)])


# ---------------------------------------------------------------------------- parameter and buffer

def tensor(type_name, **args):
    """A parameter or buffer on some input (which it does not read)."""
    return run_layer(LAYERS[type_name].model_validate(args), (56, 56, 96))


def test_parameter_and_buffer_counts():
    # Swin-T's relative position bias table: (2·7 − 1)² × 3 heads = 169·3 = 507 weights
    assert tensor("parameter", shape=(169, 3)) == ((169, 3), Params(weights=507), {})
    # its relative position index: 49² = 2,401 buffer elements, no parameters
    assert tensor("buffer", shape=(2401,)) == ((2401,), Params(buffers=2401), {})
    # a tensor made in the forward pass (the attention mask) is held nowhere: nothing
    assert tensor("buffer", shape=(64, 1, 49, 49), persistent=False) == ((64, 1, 49, 49), NO_PARAMS, {})


def test_parameter_used_by_name():
    a = run_text("""
        name: t
        input: [4, 6]
        layers:
          - parameter: {name: scale_table, shape: [4, 1]}
          - linear: {out: 5}
          - mul: {with: [scale_table]}
        """)
    # linear 6 → 5 on 4 rows: 35 parameters, 120 MACs; the table 4×1: 4 weights; the product
    # 4×5 by 4×1 broadcast: 20 multiplies. Output 4×5: the table did not become the flow.
    assert a.output_shape == (4, 5)
    assert a.totals.params == 35 + 4
    assert a.totals.macs == 120
    kinds = [(r.kind, r.output_shape) for r in leaves(a)]
    assert kinds == [("parameter", (4, 1)), ("linear", (4, 5)), ("mul", (4, 5))]


def test_gather_rows_by_index():
    # table[index] with a 169×3 table and an index of 2,401 entries: 2401×3, nothing counted
    layer = LAYERS["gather"].model_validate({"index": "idx"})
    assert run_many(layer, [(169, 3), (2401,)]) == ((2401, 3), NO_PARAMS, {})
    # the index's shape is flattened: a 7×7 index picks 49 rows
    assert layer.infer_many([(10, 2, 3), (7, 7)]) == (49, 2, 3)


def test_scale_exp_clamp_normalize():
    # q · d^−½ on 64×3×49×32: one multiply per element, 301,056
    assert evaluate_layer("scale", (64, 3, 49, 32), by=32 ** -0.5) == ((64, 3, 49, 32), NO_PARAMS, {"mul": 301_056})
    # Swin V2's logit scale, 3×1×1: clamp(max) 1 comparison each, exp 1 exponential each
    assert evaluate_layer("clamp", (3, 1, 1), max=4.6) == ((3, 1, 1), NO_PARAMS, {"cmp": 3})
    assert evaluate_layer("clamp", (3, 1, 1), min=0, max=4.6)[2] == {"cmp": 6}
    assert evaluate_layer("exp", (3, 1, 1))[2] == {"exp": 3}
    with pytest.raises(ValueError, match="clamp needs min, max or both"):
        evaluate_layer("clamp", (3,))
    # F.normalize over d = 32 of 64×3×49 vectors (G = 9,408): 32·G squares = 301,056,
    # 31·G adds = 291,648, G sqrt, G comparisons with eps, 32·G divisions
    out, params, ops = evaluate_layer("normalize", (64, 3, 49, 32))
    assert ops == {"G": 9408, "mul": 301_056, "add": 291_648, "sqrt": 9408, "cmp": 9408, "div": 301_056}


def test_swin_window_attention_from_primitives():
    # One Swin-T stage-1 window attention (96 features, 3 heads, 7×7 windows on 56×56): by hand,
    # qkv 96·288 + 288 and proj 96·96 + 96 = 37,248 linear parameters plus the 507-entry table =
    # 37,755; MACs: qkv 3136·96·288 = 86,704,128, proj 3136·96·96 = 28,901,376, and the two
    # matmuls 2·14,751,744: 145,108,992 (calc analyze swin_t shows features.3.0.attn so).
    a = run_text("""
        name: window_attention
        input: [56, 56, 96]
        layers:
          - parameter: {name: table, shape: [169, 3]}
          - buffer: {name: index, shape: [2401]}
          - reshape: {shape: [8, 7, 8, 7, 96]}
          - permute: {dims: [0, 2, 1, 3, 4]}
          - reshape: {shape: [64, 49, 96]}
          - linear: {out: 288, call: functional}
          - reshape: {shape: [64, 49, 3, 3, 32]}
          - permute: {name: qkv, dims: [2, 0, 3, 1, 4]}
          - select_token: {name: k, index: 1}
          - select_token: {name: v, index: 2, from: qkv}
          - select_token: {index: 0, from: qkv}
          - scale: {by: 0.1767766952966369}
          - matmul: {name: scores, with: [k], transpose: true}
          - gather: {from: table, index: index}
          - reshape: {shape: [49, 49, 3]}
          - permute: {name: bias, dims: [2, 0, 1]}
          - add: {from: scores, with: [bias], broadcast: true}
          - softmax
          - matmul: {with: [v]}
          - permute: {dims: [0, 2, 1, 3]}
          - reshape: {shape: [64, 49, 96]}
          - linear: {out: 96, call: functional}
          - reshape: {shape: [8, 8, 7, 7, 96]}
          - permute: {dims: [0, 2, 1, 3, 4]}
          - reshape: {shape: [56, 56, 96]}
        """)
    assert a.output_shape == (56, 56, 96)
    assert a.totals.params == 37_755
    assert a.totals.macs == 86_704_128 + 28_901_376 + 2 * 14_751_744 == 145_108_992
    assert a.totals.buffers == 2401
