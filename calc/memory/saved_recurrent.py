"""What recurrent layers save for backward (see :mod:`calc.memory.saved`), as the oracle runs them:
RNN and GRU through PyTorch's nn.RNN / nn.GRU (batch first, its CPU cell-by-cell implementation),
the LSTM written out step by step with F.linear (the oracle's form, which FlopCounterMode counts).

In the formulas: N samples, L time steps, I input features, H hidden, D directions (2 when
bidirectional), K layers, b bytes per element; counts derived from what autograd keeps per step
and checked against PyTorch 2.13 (tests/test_memory_oracle.py).
"""
from __future__ import annotations

from .rules import IN, Effect, MemoryError_, rule


def _dims(op):
    if not op.own_grad and any(op.in_grad):
        # Frozen weights but a gradient to pass back: autograd keeps a different subset (no input
        # copies, not every state), which calc has not derived.
        raise MemoryError_(f"calc has no rule for what PyTorch saves for backward in a frozen "
                           f"(trainable: false) {op.layer.type_name} layer that passes a gradient back")
    (length, features), layer = op.ins[0], op.layer
    dirs = 2 if layer.bidirectional else 1
    return op.batch, length, features, layer.hidden, dirs, layer.num_layers, op.size


@rule("rnn", "gru")
def _rnn(op):
    n, length, i, h, dirs, layers, b = _dims(op)
    # The first layer reads the batch-first input as time-major: one contiguous copy per
    # direction, unless N = 1 or L = 1 (then the transposed view is contiguous: the input itself).
    if n == 1 or length == 1:
        saved = [IN]
    else:
        saved = [("new", f"time-major input {k + 1}", n * length * i * b) for k in range(dirs)]
    # Later layers keep their input, the layer before's time-major output.
    saved += [("new", f"layer {k} output", n * length * dirs * h * b) for k in range(1, layers)]
    saved.append(("new", "initial state", layers * dirs * n * h * b))    # h0: zeros, one tensor
    cell = n * h * b
    if op.layer.type_name == "rnn":
        # each step keeps the nonlinearity's output (tanh and relu keep their result)
        per_run = length * cell
    else:
        # each step: three gate activations of H and the hidden projection's 3H (a chunk of it is
        # kept), and the previous hidden state (h1 … h_{L−1}; h0 is the initial state above)
        per_run = length * 6 * cell + (length - 1) * cell
    saved += [("new", f"steps {k + 1}", per_run) for k in range(layers * dirs)]
    # the output is the time-major result seen batch first: not contiguous unless N or L is 1
    work = sum(e[2] for e in saved if e[0] == "new") - layers * dirs * per_run + 6 * cell
    return Effect(tuple(saved), contiguous=n == 1 or length == 1, work=work)


@rule("lstm")
def _lstm(op):
    n, length, i, h, dirs, layers, b = _dims(op)
    cell = n * h * b
    # Each layer reads x[:, t] (a view: the first layer keeps the input itself); a later layer
    # keeps the concatenated outputs of the layer before. Per layer and direction: the zero h0 and
    # c0, per step the four gate activations and tanh(c) (5), and c1 … c_{L−1} and h1 … h_{L−1}
    # kept by the next step: (2 + 5L + 2(L − 1))·N·H·b = 7·L·N·H·b.
    saved = [IN] + [("new", f"layer {k} output", n * length * dirs * h * b) for k in range(1, layers)]
    saved += [("new", f"steps {k + 1}", 7 * length * cell) for k in range(layers * dirs)]
    work = (n * length * dirs * h * b if layers > 1 else 0) + (dirs + 1) * n * length * h * b + 8 * cell
    return Effect(tuple(saved), work=work)
