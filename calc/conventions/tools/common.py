"""What several tool presets share: float64 arithmetic as exact fractions, and facts derived
from a layer's arguments and shapes that more than one tool reads."""
from __future__ import annotations

from fractions import Fraction
from typing import Iterable

from ...shapes import Shape


def _double(value) -> Fraction:
    """The IEEE double nearest ``value``, as an exact fraction. ``float()`` of an int or a
    fraction rounds correctly (to nearest, ties to even), exactly as double arithmetic rounds
    each result; it serves here only as that rounding."""
    return Fraction(float(value))


class Float64(Fraction):
    """The exact value of a double that a tool computes with (thop's torch.DoubleTensor
    arithmetic, a Python float). ``+ - * /`` with it round the exact result to the nearest
    double, each operand being rounded first as Python converts an int to a float: the same
    numbers as the tool's double arithmetic, with every value an exact fraction."""

    __slots__ = ()

    @classmethod
    def of(cls, value) -> "Float64":
        d = _double(value)
        return cls(d.numerator, d.denominator)

    def _op(self, other, fn):
        if isinstance(other, bool) or not isinstance(other, (int, float, Fraction)):
            return NotImplemented
        return Float64.of(fn(Fraction(self), _double(other)))

    def __add__(self, other):
        return self._op(other, lambda a, b: a + b)

    def __radd__(self, other):
        return self._op(other, lambda a, b: b + a)

    def __sub__(self, other):
        return self._op(other, lambda a, b: a - b)

    def __rsub__(self, other):
        return self._op(other, lambda a, b: b - a)

    def __mul__(self, other):
        return self._op(other, lambda a, b: a * b)

    def __rmul__(self, other):
        return self._op(other, lambda a, b: b * a)

    def __truediv__(self, other):
        return self._op(other, lambda a, b: a / b)

    def __rtruediv__(self, other):
        return self._op(other, lambda a, b: b / a)

    def __str__(self):
        # shown as calc shows a float in a formula (calc.formula)
        return format(float(self), ".12g")

    def __repr__(self):
        return f"Float64({float(self)!r})"


def float64_product(values: Iterable) -> Float64:
    """The product of ``values`` as double arithmetic gives it, multiplied left to right."""
    result = Float64.of(1)
    for v in values:
        result = result * v
    return result


# ---------------------------------------------------------------------------- shared facts

def spatial_dims(layer, shape: Shape, out: Shape) -> dict[str, int]:
    """dims: the spatial dimensions of a channels-first input (which of a tool's 1-d, 2-d or
    3-d ops runs)."""
    return {"dims": len(shape) - 1}


def upsample_mode(layer, shape: Shape, out: Shape) -> dict[str, int]:
    """nearest: 1 for nearest-neighbour upsampling (the tools count it apart from the
    interpolating modes); dims: the spatial dimensions."""
    return {"nearest": int(layer.mode == "nearest"), **spatial_dims(layer, shape, out)}


def layernorm_subclass(layer, shape: Shape, out: Shape) -> dict[str, int]:
    """channels: 1 for a layer norm over the channels of a map, which PyTorch code writes as
    a subclass of nn.LayerNorm (torchvision's LayerNorm2d): a tool that looks modules up by
    exact type does not see it."""
    return {"channels": int(layer.channels)}


# The attention options calc counts that nn.MultiheadAttention lacks (the presets model it): refused
# when any of the layer's facts for them is set.
EXTENDED_WHEN = "window or context or rope or alibi or qk_norm or unscaled or rel_bias or sinks or groups > 1"
EXTENDED_ATTENTION = ("; a sliding window, a KV-cache context, rotary, ALiBi, QK-norm, unscaled scores (T5), a "
                      "relative position bias, attention sinks and groups of tokens (…, L, D) are refused: "
                      "the preset models nn.MultiheadAttention, which has none of them")

# Layer types no tool preset counts: the PyTorch modules they stand for (Hugging Face's expert
# loops, DeepSeek's latent attention) are not what the presets were measured on.
NOT_MEASURED = ("no measurement of this tool on a mixture of experts or latent attention exists in calc's "
                "reference data, so the preset refuses it rather than guess (use standard or exact)")
