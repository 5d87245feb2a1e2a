"""Recurrent layers: Elman RNN, LSTM and GRU stacks."""

from typing import Any, ClassVar, Literal, Optional

from pydantic import Field, StrictBool

from . import activation  # noqa: F401 - registers sigmoid, tanh and relu, whose counts the cells reuse
from ..formula import Q
from ..shapes import Shape, fmt_shape
from .base import _PARAM_HINTS, LAYERS, Layer, PosInt, register

# The element-wise operations a cell may count besides its matmuls and biases, in the order
# the explanation lists them.
_CELL_OPS = ("add", "mul", "div", "cmp", "exp", "sqrt", "fn")


# ---------------------------------------------------------------------------- recurrent layers

class _Recurrent(Layer):
    """A stack of recurrent layers over a (L, I) sequence (PyTorch's layout: per layer and
    direction W_ih (G·H × I_l), W_hh (G·H × H), b_ih and b_hh (G·H each); I_0 = I, later
    layers read H·dirs). Counted per time step, times L: the two matmuls W_ih·x and W_hh·h as
    MACs (the zero initial state included, as dense kernels do), both bias vectors, and the
    gate arithmetic below, in every cell (one per layer and direction). Each activation in a
    cell costs what its layer type counts per element: sigmoid_add, tanh_mul, relu_cmp … are
    the sigmoid, tanh and relu layers' counts."""

    gates: ClassVar[int] = 1
    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    # The cell's element-wise arithmetic, from its gate equations (see each class):
    # `cell`: operation -> (count per cell and step, what it is), without the activations;
    # `activations`: (symbol, activation layer type, how many values per cell and step, what,
    # flag). Each activation costs what that layer type counts per element (activation.py).
    cell: ClassVar[dict[str, tuple[str, str]]] = {}
    activations: ClassVar[tuple[tuple[str, str, str, str, str], ...]] = ()
    _act_values: ClassVar[dict[str, int]] = {}
    hidden: PosInt = Field(description="hidden size H")
    num_layers: PosInt = 1
    bidirectional: StrictBool = False
    bias: StrictBool = Field(True, description="b_ih and b_hh in every layer")
    in_: Optional[PosInt] = Field(None, alias="in", description="input features (checked if given)")

    @classmethod
    def declare(cls):
        return (
            Q("H_out", "H * dirs", "the directions' states side by side", key="shape.1"),
            Q("cells", "layers * dirs", "one cell per layer and direction"),
            Q("w_ih", "dirs * G * H * (I + (layers - 1) * H_out)",
              "W_ih (G·H × input) per cell: the first layer reads I features, later ones H_out"),
            Q("w_hh", "cells * G * H * H", "W_hh (G·H × H) per cell"),
            Q("weights", "w_ih + w_hh", "W_ih and W_hh of every cell (w_ih and w_hh below)"),
            Q("biases", "cells * 2 * G * H", "b_ih and b_hh per cell", key="bias", when="bias"),
            Q("mac", "L * (w_ih + w_hh)", "W_ih·x and W_hh·h at every step: each weight once"),
            Q("dots", "L * cells * 2 * G * H", "the G·H outputs of both products, every step and cell"),
            Q("bias_add", "L * cells * 2 * G * H", "both bias vectors, every step and cell", when="bias"),
            *cls._declare_cell(),
            Q("steps", "L", fact=True), Q("hidden", "H", fact=True), Q("input_size", "I", fact=True),
            Q("num_layers", "layers", fact=True), Q("dirs", "dirs", fact=True), Q("gates", "G", fact=True),
        )

    @classmethod
    def _declare_cell(cls):
        """Per cell and step: how many values go through each activation, then each operation as
        the cell's own count plus the activations' (values × that activation's count per element),
        then the whole layer's: L steps × cells."""
        out = [Q(name, count, note, when=flag) for name, _, count, note, flag in cls.activations]
        values = {}
        for op in _CELL_OPS:
            parts, flags = [], set()
            if op in cls.cell:
                parts.append(cls.cell[op][0])
                flags.add("")
            for name, act, _, _, flag in cls.activations:
                per_element = LAYERS[act].per_element.get(op, 0)
                if per_element:
                    parts.append(f"{name} * {act}_{op}")
                    values[f"{act}_{op}"] = per_element
                    flags.add(flag)
            if not parts:
                continue
            # an operation only one flagged activation does is left out when that flag is off
            when = flags.pop() if len(flags) == 1 else ""
            own = cls.cell[op][1] + "; " if op in cls.cell else ""
            out += [Q(f"{op}_cell", " + ".join(parts), own + "per cell and step", when=when),
                    Q(op, f"L * cells * {op}_cell", "every step, in every cell", when=when)]
        # the activations' counts per element become symbols, read once here rather than per call
        cls._act_values = values
        return tuple(out)

    def _flags(self) -> dict[str, int]:
        return {}

    def given(self, shape: Shape) -> dict[str, Any]:
        if len(shape) != 2:
            raise ValueError(f"expects time steps × features (L, I), got {fmt_shape(shape)}")
        if self.in_ is not None and self.in_ != shape[1]:
            raise ValueError(f"states in={self.in_} but receives {shape[1]} features")
        return {"L": shape[0], "I": shape[1], "H": self.hidden, "G": self.gates, "layers": self.num_layers,
                "dirs": 2 if self.bidirectional else 1, "bias": int(self.bias), **self._act_values,
                **self._flags()}


@register("rnn", "recurrent")
class RNN(_Recurrent):
    __doc__ = "Elman RNN (G = 1): h' = act(W_ih·x + b_ih + W_hh·h + b_hh), act tanh or relu. " + _Recurrent.__doc__
    gates: ClassVar[int] = 1
    cell: ClassVar[dict[str, tuple[str, str]]] = {"add": ("H", "W_ih·x + W_hh·h")}
    activations: ClassVar[tuple[tuple[str, str, str, str, str], ...]] = (
        ("tanhs", "tanh", "H", "the nonlinearity on h'", "tanh"),
        ("relus", "relu", "H", "the nonlinearity on h'", "relu"),
    )
    nonlinearity: Literal["tanh", "relu"] = "tanh"

    def _flags(self):
        tanh = int(self.nonlinearity == "tanh")
        return {"tanh": tanh, "relu": 1 - tanh}


@register("lstm", "recurrent")
class LSTM(_Recurrent):
    __doc__ = ("LSTM, gates i, f, g, o (G = 4): each gate W_ih·x + b_ih + W_hh·h + b_hh, through a "
               "sigmoid (i, f, o) or tanh (g); c' = f⊙c + i⊙g, h' = o⊙tanh(c'). " + _Recurrent.__doc__)
    gates: ClassVar[int] = 4
    cell: ClassVar[dict[str, tuple[str, str]]] = {
        "add": ("4 * H + H", "W_ih·x + W_hh·h for the 4 gates, and f⊙c + i⊙g"),
        "mul": ("2 * H + H", "f⊙c and i⊙g, and o⊙tanh(c')"),
    }
    activations: ClassVar[tuple[tuple[str, str, str, str, str], ...]] = (
        ("sigmoids", "sigmoid", "3 * H", "the gates i, f and o", ""),
        ("tanhs", "tanh", "H + H", "the gate g, and tanh(c')", ""),
    )


@register("gru", "recurrent")
class GRU(_Recurrent):
    __doc__ = ("GRU, gates r, z, n (G = 3): r and z = sigmoid(W_ih·x + b_ih + W_hh·h + b_hh), "
               "n = tanh(W_in·x + b_in + r⊙(W_hn·h + b_hn)), h' = (1 − z)⊙n + z⊙h. " + _Recurrent.__doc__)
    gates: ClassVar[int] = 3
    cell: ClassVar[dict[str, tuple[str, str]]] = {
        "add": ("2 * H + H + 2 * H", "W_ih·x + W_hh·h for r and z, W_in·x + r⊙(…) for n, and 1 − z and the sum "
                                     "for h'"),
        "mul": ("H + 2 * H", "r⊙(W_hn·h + b_hn), and (1 − z)⊙n and z⊙h"),
    }
    activations: ClassVar[tuple[tuple[str, str, str, str, str], ...]] = (
        ("sigmoids", "sigmoid", "2 * H", "the gates r and z", ""),
        ("tanhs", "tanh", "H", "the candidate n", ""),
    )
