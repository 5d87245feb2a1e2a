"""Recurrent layers: Elman RNN, LSTM and GRU stacks."""

from typing import ClassVar, Literal, Optional

from pydantic import Field, StrictBool

from ..formula import given, step
from ..shapes import fmt_shape
from .base import (_PARAM_HINTS, LAYERS, Layer, Params, PosInt, _scaled, _merge, register)


# ---------------------------------------------------------------------------- recurrent layers

class _Recurrent(Layer):
    """A stack of recurrent layers over a (L, I) sequence (PyTorch's layout: per layer and
    direction W_ih (G·H × I_l), W_hh (G·H × H), b_ih and b_hh (G·H each); I_0 = I, later
    layers read H·dirs). Counted per time step, times L: the two matmuls W_ih·x and W_hh·h as
    MACs (the zero initial state included, as dense kernels do), both bias vectors, and the
    gate arithmetic below."""

    gates: ClassVar[int] = 1
    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    hidden: PosInt = Field(description="hidden size H")
    num_layers: PosInt = 1
    bidirectional: StrictBool = False
    bias: StrictBool = Field(True, description="b_ih and b_hh in every layer")
    in_: Optional[PosInt] = Field(None, alias="in", description="input features (checked if given)")

    def _sizes(self, shape) -> list[int]:
        if len(shape) != 2:
            raise ValueError(f"expects time steps × features (L, I), got {fmt_shape(shape)}")
        if self.in_ is not None and self.in_ != shape[1]:
            raise ValueError(f"states in={self.in_} but receives {shape[1]} features")
        return [shape[1]] + [self.hidden * self._dirs()] * (self.num_layers - 1)

    def _dirs(self) -> int:
        return 2 if self.bidirectional else 1

    def _cell_ops(self) -> dict[str, int]:
        """Element-wise operations of one step of one direction, besides matmuls and biases."""
        raise NotImplementedError

    def infer(self, shape):
        self._sizes(shape)
        return (shape[0], self.hidden * self._dirs())

    def params(self, shape):
        gh, dirs = self.gates * self.hidden, self._dirs()
        weights = dirs * sum(gh * (i + self.hidden) for i in self._sizes(shape))
        return Params(weights, dirs * self.num_layers * 2 * gh if self.bias else 0)

    def ops(self, shape, out):
        sizes = self._sizes(shape)
        steps, gh, dirs, hid = shape[0], self.gates * self.hidden, self._dirs(), self.hidden
        cells = self.num_layers * dirs
        w_ih = dirs * sum(gh * i for i in sizes)
        w_hh = cells * gh * hid
        return {
            "mac": steps * (w_ih + w_hh),
            "dots": steps * cells * 2 * gh,
            "bias_add": steps * cells * 2 * gh if self.bias else 0,
            **_scaled(self._cell_ops(), steps * cells),
            "steps": steps, "hidden": hid, "input_size": shape[1], "num_layers": self.num_layers,
            "dirs": dirs, "cells": cells, "gates": self.gates, "w_ih": w_ih, "w_hh": w_hh,
        }

    def explain(self, shape, out):
        sym = {"L": ("L", shape[0]), "I": ("I", shape[1]), "H": ("H", self.hidden), "G": ("G", self.gates),
               "k": ("dirs", self._dirs()), "m": ("layers", self.num_layers)}
        weights = "k * G * H * (I + H) + (m - 1) * k * G * H * (H * k + H)"
        steps = [given("shape.0", "L", "steps", shape[0]), step("shape.1", "H_out", "H * k", **sym),
                 step("weights", "weights", weights, "W_ih and W_hh per layer and direction; later layers read H·dirs",
                      **sym)]
        if self.bias:
            steps += [step("bias", "bias", "m * k * 2 * G * H", "b_ih and b_hh", **sym),
                      step("params", "params", f"{weights} + m * k * 2 * G * H", **sym)]
        steps += [step("mac", "mac", "L * k * G * H * (I + (m - 1) * H * k + m * H)",
                       "W_ih·x and W_hh·h at every step, per layer and direction", **sym)]
        if self.bias:
            steps.append(step("bias_add", "bias_add", "L * m * k * 2 * G * H", "both bias vectors every step", **sym))
        for key, value in self._cell_ops().items():
            steps.append(step(key, key, "L * m * k * v", "per step, layer and direction",
                              v=(f"{key} per cell", value), **sym))
        return steps


_FORMULA_COMMON = {
    "shape": "(L, I) → (L, H·dirs)",
    "params": "dirs · Σ_l G·H·(I_l + H)  +  bias · dirs · layers · 2·G·H   (I_0 = I, I_l = H·dirs)",
    "mac": "L · dirs · Σ_l G·H·(I_l + H)",
    "bias_add": "L · dirs · layers · 2·G·H if bias",
}


def _sig(n):
    return _scaled(LAYERS["sigmoid"].per_element, n)


def _tanh(n):
    return _scaled(LAYERS["tanh"].per_element, n)


@register("rnn", "recurrent")
class RNN(_Recurrent):
    __doc__ = ("Elman RNN: h' = act(W_ih·x + b_ih + W_hh·h + b_hh), G = 1. Per step and direction: "
               "H adds (the two products) and the nonlinearity (tanh or relu) on H values. "
               + _Recurrent.__doc__)
    gates: ClassVar[int] = 1
    nonlinearity: Literal["tanh", "relu"] = "tanh"
    formulas: ClassVar[dict[str, str]] = {**_FORMULA_COMMON, "G": "1",
                                          "per step": "add H; tanh on H (or relu: cmp H)"}

    def _cell_ops(self):
        h = self.hidden
        act = _tanh(h) if self.nonlinearity == "tanh" else {"cmp": h}
        return _merge({"add": h}, act)


@register("lstm", "recurrent")
class LSTM(_Recurrent):
    __doc__ = ("LSTM, gates i, f, g, o (G = 4): c' = f⊙c + i⊙g, h' = o⊙tanh(c'). Per step and "
               "direction: 4H adds (the two products), sigmoid on 3H, tanh on H (g) and on H (c'), "
               "3H multiplies and H adds. " + _Recurrent.__doc__)
    gates: ClassVar[int] = 4
    formulas: ClassVar[dict[str, str]] = {**_FORMULA_COMMON, "G": "4",
                                          "per step": "add 4H + H; mul 3H; sigmoid on 3H; tanh on 2H"}

    def _cell_ops(self):
        h = self.hidden
        return _merge({"add": 4 * h}, _sig(3 * h), _tanh(h), {"mul": 2 * h, "add": h}, _tanh(h), {"mul": h})


@register("gru", "recurrent")
class GRU(_Recurrent):
    __doc__ = ("GRU, gates r, z, n (G = 3): n = tanh(W_in·x + b_in + r⊙(W_hn·h + b_hn)), "
               "h' = (1 − z)⊙n + z⊙h. Per step and direction: 2H adds (r and z products), sigmoid "
               "on 2H, H multiplies and H adds for n, tanh on H, then H subtractions, 2H multiplies "
               "and H adds. " + _Recurrent.__doc__)
    gates: ClassVar[int] = 3
    formulas: ClassVar[dict[str, str]] = {**_FORMULA_COMMON, "G": "3",
                                          "per step": "add 2H + H + 2H; mul 3H; sigmoid on 2H; tanh on H"}

    def _cell_ops(self):
        h = self.hidden
        return _merge({"add": 2 * h}, _sig(2 * h), {"mul": h, "add": h}, _tanh(h),
                      {"add": 2 * h, "mul": 2 * h})
