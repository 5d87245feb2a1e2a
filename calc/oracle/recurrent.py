"""The recurrent builder: RNN, GRU and LSTM, batch first."""
from __future__ import annotations

import torch
from torch import nn

from .registry import Refused, builds


class Recurrent(nn.Module):
    """PyTorch's RNN/GRU/LSTM, batch first, returning the output sequence. FlopCounterMode has
    no formula for the CPU LSTM kernel, so the LSTM runs its own weights (PyTorch's layout)
    through the LSTM equations with F.linear, which it counts."""

    def __init__(self, kind, size, layer):
        super().__init__()
        cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind]
        extra = {"nonlinearity": layer.nonlinearity} if kind == "rnn" else {}
        self.rnn = cls(size, layer.hidden, num_layers=layer.num_layers, bias=layer.bias, batch_first=True,
                       bidirectional=layer.bidirectional, **extra)
        self.kind = kind

    def forward(self, x):
        if self.kind != "lstm":
            return self.rnn(x)[0]
        rnn = self.rnn
        if x.dim() != 3 or x.shape[2] != rnn.input_size:
            raise ValueError(f"LSTM: expected input (N, L, {rnn.input_size}), got {tuple(x.shape)}")
        dirs = 2 if rnn.bidirectional else 1
        for layer in range(rnn.num_layers):
            outs = []
            for direction in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                w_ih, w_hh = getattr(rnn, "weight_ih" + sfx), getattr(rnn, "weight_hh" + sfx)
                b_ih = getattr(rnn, "bias_ih" + sfx) if rnn.bias else None
                b_hh = getattr(rnn, "bias_hh" + sfx) if rnn.bias else None
                h = x.new_zeros(x.shape[0], rnn.hidden_size)
                c = x.new_zeros(x.shape[0], rnn.hidden_size)
                steps = range(x.shape[1] - 1, -1, -1) if direction else range(x.shape[1])
                seq = [None] * x.shape[1]
                for t in steps:
                    gates = torch.nn.functional.linear(x[:, t], w_ih, b_ih) + \
                        torch.nn.functional.linear(h, w_hh, b_hh)
                    i, f, g, o = gates.chunk(4, dim=1)
                    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
                    h = o.sigmoid() * c.tanh()
                    seq[t] = h
                outs.append(torch.stack(seq, dim=1))
            x = torch.cat(outs, dim=2)
        return x


@builds("rnn", "lstm", "gru")
def _recurrent(layer, shape):
    if len(shape) != 2:
        raise Refused(f"{layer.type_name} takes time steps × features (L, I), got rank {len(shape)}")
    return Recurrent(layer.type_name, layer.in_ if layer.in_ is not None else shape[1], layer)
