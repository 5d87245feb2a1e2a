"""RNN, LSTM and GRU stacks, each type with a case derived by hand: output shape, parameters,
every elementary operation and the facts the conventions read (the derivation beside each number).

The activations inside a cell cost what the activation layers count per element (activation.py):
sigmoid 1/(1 + e^(−x)) is 1 mul (negate), 1 exp, 1 add, 1 div; tanh 1 − 2/(e^(2x) + 1) is 1 mul,
1 exp, 2 adds, 1 div; relu one comparison.
"""
from calc.render.catalog import describe_layers
from calc.formula import render
from calc.layers import LAYERS, Params
from helpers import evaluate_layer as evaluate


def test_the_cells_reuse_the_activation_counts():
    assert LAYERS["sigmoid"].per_element == {"mul": 1, "exp": 1, "add": 1, "div": 1}
    assert LAYERS["tanh"].per_element == {"mul": 1, "exp": 1, "add": 2, "div": 1}
    assert LAYERS["relu"].per_element == {"cmp": 1}


def test_rnn_two_layers_tanh():
    # nn.RNN(10, 20, num_layers=2) over 5 steps: layer 0 W_ih 20×10, layer 1 W_ih 20×20, W_hh 20×20 each
    out, p, ops = evaluate("rnn", (5, 10), hidden=20, num_layers=2)
    assert out == (5, 20)
    assert (ops["w_ih"], ops["w_hh"]) == (200 + 400, 2 * 400)
    assert p == Params(1_400, 2 * 2 * 20)                      # b_ih and b_hh (20 each) per layer; 1,480 in all
    assert ops["mac"] == 5 * 1_400 == 7_000                   # every weight once per step
    assert ops["dots"] == ops["bias_add"] == 5 * 2 * 2 * 20   # 2 products and 2 bias vectors of 20, 5 steps, 2 cells
    # per cell and step: 20 adds (W_ih·x + W_hh·h) and tanh on 20 values: 20·(1 mul, 1 exp, 2 adds, 1 div)
    assert ops["add"] == 5 * 2 * (20 + 2 * 20) == 600
    assert ops["mul"] == ops["exp"] == ops["div"] == 5 * 2 * 20 == 200
    assert ops["cmp"] == 0
    assert {k: ops[k] for k in ("steps", "hidden", "input_size", "num_layers", "dirs", "cells", "gates")} == {
        "steps": 5, "hidden": 20, "input_size": 10, "num_layers": 2, "dirs": 1, "cells": 2, "gates": 1}


def test_rnn_bidirectional_relu():
    # 6 steps of 3 features, H = 4, both directions: the states side by side, 8 features per step
    out, p, ops = evaluate("rnn", (6, 3), hidden=4, bidirectional=True, nonlinearity="relu")
    assert out == (6, 8)
    assert p == Params(2 * 4 * 3 + 2 * 4 * 4, 2 * 2 * 4)      # W_ih 4×3 and W_hh 4×4 per direction: 56 + 16
    assert ops["mac"] == 6 * 56 == 336
    # per cell and step: 4 adds and relu on 4 values (one comparison each); 6 steps × 2 cells
    assert (ops["add"], ops["cmp"]) == (6 * 2 * 4, 6 * 2 * 4)
    assert ops["mul"] == ops["exp"] == ops["div"] == 0


def test_lstm():
    # nn.LSTM(10, 20) over 5 steps: 4 gates, W_ih 80×10 = 800, W_hh 80×20 = 1,600, biases 2·80
    out, p, ops = evaluate("lstm", (5, 10), hidden=20)
    assert out == (5, 20)
    assert p == Params(2_400, 160)
    assert ops["mac"] == 5 * 2_400 == 12_000
    assert ops["dots"] == ops["bias_add"] == 5 * 2 * 80 == 800
    # per step: sigmoid on i, f, o (60 values), tanh on g and on c' (40 values);
    # adds: 80 gate sums + 20 for f⊙c + i⊙g + 60·1 (sigmoid) + 40·2 (tanh) = 240
    assert ops["add"] == 5 * (80 + 20 + 60 + 80) == 1_200
    # multiplies: f⊙c, i⊙g, o⊙tanh(c') (60) + 60·1 + 40·1 = 160
    assert ops["mul"] == 5 * (60 + 60 + 40) == 800
    assert ops["exp"] == ops["div"] == 5 * (60 + 40) == 500    # one each per sigmoid and tanh value
    assert ops["cells"] == 1 and ops["gates"] == 4


def test_gru_two_layers_bidirectional_without_bias():
    # nn.GRU(6, 5, num_layers=2, bidirectional=True, bias=False) over 4 steps: 3 gates (15 rows);
    # layer 0 reads 6 features, layer 1 the 10 of both directions; W_hh 15×5 in each of the 4 cells
    out, p, ops = evaluate("gru", (4, 6), hidden=5, num_layers=2, bidirectional=True, bias=False)
    assert out == (4, 10)
    assert ops["w_ih"] == 2 * 15 * 6 + 2 * 15 * 10 == 480
    assert ops["w_hh"] == 4 * 15 * 5 == 300
    assert p == Params(780, 0)
    assert ops["mac"] == 4 * 780 == 3_120
    assert ops["dots"] == 4 * 4 * 2 * 15 == 480 and ops["bias_add"] == 0
    # per cell and step: sigmoid on r, z (10 values), tanh on n (5 values);
    # adds: 10 (r, z sums) + 5 (n) + 10 (1 − z and the final sum) + 10·1 + 5·2 = 45
    assert ops["add"] == 4 * 4 * 45 == 720
    # multiplies: r⊙(…), (1 − z)⊙n, z⊙h (15) + 10·1 + 5·1 = 30
    assert ops["mul"] == 4 * 4 * 30 == 480
    assert ops["exp"] == ops["div"] == 4 * 4 * 15 == 240


def test_layers_text_is_the_declaration():
    text = describe_layers()
    block = text[text.index("lstm  [recurrent]"):]
    block = block[:block.index("\n\n")]
    decl = {q.name: q for q in LAYERS["lstm"].quantities}
    # calc layers prints the very templates the counts are compiled from
    assert f"    add_cell: {render(decl['add_cell'].expr, str)}" in block
    assert "    add_cell: 4·H + H + sigmoids·sigmoid_add + tanhs·tanh_add" in block
    assert "    add: L·cells·add_cell" in block
    assert "    w_ih: dirs·G·H·(I + (layers − 1)·H_out)" in block
    assert "    biases: cells·2·G·H   (if bias)" in block
