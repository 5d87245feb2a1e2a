"""RNN, LSTM and GRU: PyTorch's parameter layout, per-step counts, and a bidirectional LSTM tagger.

During development the parameter counts, output shapes and (for RNN and GRU) MACs were also
compared with /work/venv's torch 2.13 (nn.RNN/LSTM/GRU, FlopCounterMode) over 144 configurations;
the suite does not depend on torch.
"""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calc.errors import ShapeError
from calc.layers import LAYERS
from helpers import leaves, run_spec, run_text

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def torch_layout_params(kind, I, H, num_layers, bidirectional, bias):
    """nn.RNN/LSTM/GRU's parameters, tensor by tensor: weight_ih_l{k}[_reverse] (G·H × I_k),
    weight_hh_l{k} (G·H × H), bias_ih_l{k} and bias_hh_l{k} (G·H), with I_0 = I and
    I_k = H·directions for k > 0."""
    G, dirs = GATES[kind], 2 if bidirectional else 1
    total = 0
    for k in range(num_layers):
        in_k = I if k == 0 else H * dirs
        for _ in range(dirs):
            total += G * H * in_k + G * H * H + (2 * G * H if bias else 0)
    return total


@given(kind=st.sampled_from(sorted(GATES)), I=st.integers(1, 40), H=st.integers(1, 40),
       num_layers=st.integers(1, 4), bidirectional=st.booleans(), bias=st.booleans(), L=st.integers(1, 20))
def test_params_follow_pytorch_layout(kind, I, H, num_layers, bidirectional, bias, L):
    layer = LAYERS[kind](hidden=H, num_layers=num_layers, bidirectional=bidirectional, bias=bias)
    assert layer.params((L, I)).total == torch_layout_params(kind, I, H, num_layers, bidirectional, bias)
    dirs = 2 if bidirectional else 1
    assert layer.infer((L, I)) == (L, H * dirs)
    # MACs: every step multiplies each W_ih and W_hh once (torch's FlopCounterMode gives
    # 2·steps·N·Σ(#W_ih + #W_hh) for RNN and GRU, docs/conventions.md §8)
    weights = torch_layout_params(kind, I, H, num_layers, bidirectional, False)
    assert layer.ops((L, I), None)["mac"] == L * weights


def test_pytorch_documented_sizes():
    # nn.LSTM(10, 20, 2): 4·20·10 + 4·20·20 + 2·80 = 2,560 (layer 0), 4·20·20·2 + 160 = 3,360 (layer 1)
    assert LAYERS["lstm"](hidden=20, num_layers=2).params((5, 10)).total == 2_560 + 3_360
    # nn.GRU(10, 20, 2, bidirectional=True): layer 0 2·(3·20·10 + 3·20·20 + 120) = 3,840,
    # layer 1 reads 40 features: 2·(3·20·40 + 3·20·20 + 120) = 7,440
    assert LAYERS["gru"](hidden=20, num_layers=2, bidirectional=True).params((5, 10)).total == 3_840 + 7_440


def test_lstm_facts_give_thops_probe_figure():
    # docs/conventions.md §4.3: thop counts LSTM(16, 32) on 9 steps × batch 2 as 6,656·9·2 = 119,808,
    # its cell being 4·[(I+H)·H + H + 2H] + 3H + H = (#W_ih + #W_hh) + 16H per step.
    f = LAYERS["lstm"](hidden=32).ops((9, 16), None)
    per_step = (f["w_ih"] + f["w_hh"]) // f["cells"] + 16 * f["hidden"]
    assert per_step == 6_656
    assert per_step * f["steps"] * f["cells"] * 2 == 119_808


def test_gate_arithmetic_per_step():
    L, H, I = 3, 4, 5
    sig = LAYERS["sigmoid"].per_element     # negate, exp, add, divide
    tanh = LAYERS["tanh"].per_element       # mul, exp, 2 adds, divide
    lstm = LAYERS["lstm"](hidden=H).ops((L, I), None)
    # per step: 4H (ih + hh) + H (f⊙c + i⊙g) adds, plus the sigmoids' (3H) and tanhs' (2H) adds;
    # 3H multiplies (f⊙c, i⊙g, o⊙tanh c) plus theirs
    assert lstm["add"] == L * (5 * H + 3 * H * sig["add"] + 2 * H * tanh["add"])
    assert lstm["mul"] == L * (3 * H + 3 * H * sig["mul"] + 2 * H * tanh["mul"])
    assert lstm["exp"] == L * 5 * H
    assert lstm["bias_add"] == L * 2 * 4 * H
    gru = LAYERS["gru"](hidden=H, bias=False).ops((L, I), None)
    # per step: 2H (r, z) + H (n) + H (1 − z) + H (the final sum) adds; r⊙·, (1−z)⊙n, z⊙h multiplies
    assert gru["add"] == L * (5 * H + 2 * H * sig["add"] + H * tanh["add"])
    assert gru["mul"] == L * (3 * H + 2 * H * sig["mul"] + H * tanh["mul"])
    assert gru["bias_add"] == 0
    relu = LAYERS["rnn"](hidden=H, nonlinearity="relu").ops((L, I), None)
    assert (relu["add"], relu["cmp"], relu.get("exp", 0)) == (L * H, L * H, 0)


def test_lstm_tagger():
    a = run_spec("lstm_tagger")
    L, V, E, H, T = 50, 10_000, 100, 128, 17
    emb, lstm, tagger = leaves(a)
    # layer 0 reads E = 100, layer 1 reads 2H = 256; two directions; 4 gates; b_ih and b_hh
    w0 = 4 * H * (E + H)
    w1 = 4 * H * (2 * H + H)
    assert (w0, w1) == (116_736, 196_608)
    assert lstm.weights == 2 * (w0 + w1) == 626_688
    assert lstm.bias == 2 * 2 * 2 * 4 * H == 4_096
    assert emb.params == V * E and tagger.params == 2 * H * T + T
    assert a.totals.params == V * E + 630_784 + 4_369 == 1_635_153
    assert lstm.output_shape == (L, 2 * H) and a.output_shape == (L, T)
    # MACs: 50 steps of both directions' matmuls, then the tagger at every token
    assert lstm.macs == L * 2 * (w0 + w1) == 31_334_400
    assert tagger.macs == L * 2 * H * T == 217_600
    assert a.totals.macs == 31_552_000 and emb.macs == 0


def test_recurrent_errors():
    with pytest.raises(ShapeError, match="time steps × features"):
        run_text("name: t\ninput: [3, 8, 8]\nlayers:\n  - lstm: {hidden: 4}\n")
    with pytest.raises(ShapeError, match="states in=7"):
        run_text("name: t\ninput: [3, 8]\nlayers:\n  - gru: {hidden: 4, in: 7}\n")
