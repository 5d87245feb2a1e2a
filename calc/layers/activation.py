"""Element-wise activations, learned and constant element-wise scales, and softmax.

Each quantity is declared once (see :mod:`calc.formula`); ``x`` is the input's element count."""

from typing import Any, ClassVar, Literal, Optional

from pydantic import Field, StrictBool

from .. import shapes as S
from ..formula import Q
from ..shapes import Shape, fmt_shape, numel
from .base import _PARAM_HINTS, Dim, Layer, PosInt, PosReal, Real, register


# ---------------------------------------------------------------------------- activations

class _Elementwise(Layer):
    """Element-wise function; output shape = input shape."""

    # The operations applied to each element, operation -> how many: the one statement of an
    # activation's cost. Its quantities (`count * x` each) are built from it, and the recurrent
    # cells read the sigmoid's and the tanh's.
    per_element: ClassVar[dict[str, int]] = {}
    # What each of those operations does, shown beside it by `calc explain`.
    doing: ClassVar[dict[str, str]] = {}
    # Quantities declared before the operations (a learned layer's parameters).
    params_declared: ClassVar[tuple[Q, ...]] = ()

    @classmethod
    def declare(cls) -> tuple[Q, ...]:
        return (*cls.params_declared,
                *(Q(op, f"{count} * x", "per element: " + cls.doing[op] if op in cls.doing else "")
                  for op, count in cls.per_element.items()))

    def given(self, shape: Shape) -> dict[str, Any]:
        return {"x": numel(shape)}


class _InPlace(_Elementwise):
    """An activation PyTorch can apply in place (``nn.ReLU(inplace=True)``, as torchvision's
    models do): no count changes; the memory count does (no new storage, and autograd keeps the
    overwritten result; see calc.memory)."""

    inplace: StrictBool = Field(False, description="applied in place, overwriting its input (PyTorch's "
                                                   "inplace=True); changes memory only")


@register("relu", "activation")
class ReLU(_InPlace):
    """max(0, a) for each element a: one comparison per element (x elements)."""

    per_element: ClassVar[dict[str, int]] = {"cmp": 1}
    doing: ClassVar[dict[str, str]] = {"cmp": "compare with 0"}


@register("relu6", "activation")
class ReLU6(_InPlace):
    """min(max(0, a), 6) for each element a: two comparisons per element (x elements)."""

    per_element: ClassVar[dict[str, int]] = {"cmp": 2}
    doing: ClassVar[dict[str, str]] = {"cmp": "compare with 0 and with 6"}


@register("leaky_relu", "activation")
class LeakyReLU(_InPlace):
    """a if a ≥ 0 else slope·a for each element a: a comparison and a multiply per element
    (x elements)."""

    negative_slope: Real = 0.01
    per_element: ClassVar[dict[str, int]] = {"cmp": 1, "mul": 1}
    doing: ClassVar[dict[str, str]] = {"cmp": "test the sign", "mul": "scale by the slope"}


@register("elu", "activation")
class ELU(_InPlace):
    """a if a > 0 else α(eᵃ − 1) for each element a, counted branch-free: cmp, exp, add, mul per
    element (x elements)."""

    alpha: Real = 1.0
    per_element: ClassVar[dict[str, int]] = {"cmp": 1, "exp": 1, "add": 1, "mul": 1}
    doing: ClassVar[dict[str, str]] = {"cmp": "test the sign", "exp": "the exponential", "add": "subtract 1",
                                       "mul": "scale by α"}


@register("sigmoid", "activation")
class Sigmoid(_Elementwise):
    """1 / (1 + e^(−a)) for each element a: negate, exp, add, divide (x elements)."""

    per_element: ClassVar[dict[str, int]] = {"mul": 1, "exp": 1, "add": 1, "div": 1}
    doing: ClassVar[dict[str, str]] = {"mul": "negate", "exp": "the exponential", "add": "add 1",
                                       "div": "1 divided by the sum"}


@register("tanh", "activation")
class Tanh(_Elementwise):
    """1 − 2 / (e^(2a) + 1) for each element a: mul, exp, 2 adds, divide (x elements)."""

    per_element: ClassVar[dict[str, int]] = {"mul": 1, "exp": 1, "add": 2, "div": 1}
    doing: ClassVar[dict[str, str]] = {"mul": "double", "exp": "the exponential", "add": "add 1; subtract from 1",
                                       "div": "2 divided by the sum"}


@register("exp", "activation")
class Exp(_Elementwise):
    """eᵃ for each element a (torch.exp; Swin V2's logit scale): one exponential per element
    (x elements)."""

    hints: ClassVar[dict[str, tuple]] = {"call": ("functional",)}
    per_element: ClassVar[dict[str, int]] = {"exp": 1}
    doing: ClassVar[dict[str, str]] = {"exp": "the exponential"}


@register("clamp", "activation")
class Clamp(_Elementwise):
    """torch.clamp: each element limited to [min, max] (either may be left out): one comparison
    per bound given, per element (x elements)."""

    hints: ClassVar[dict[str, tuple]] = {"call": ("functional",)}
    min: Optional[Real] = None
    max: Optional[Real] = None

    @classmethod
    def declare(cls) -> tuple[Q, ...]:
        return (Q("cmp", "bounds * x", "per element: one comparison per bound given (min, max)"),)

    def given(self, shape: Shape) -> dict[str, Any]:
        if self.min is None and self.max is None:
            raise ValueError("clamp needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return {"x": numel(shape), "bounds": int(self.min is not None) + int(self.max is not None)}


@register("gelu", "activation")
class GELU(_Elementwise):
    """a/2 · (1 + erf(a/√2)) for each element a (or the tanh form): divide, erf, add, 2 multiplies
    (x elements)."""

    approximate: Literal["none", "tanh"] = "none"
    per_element: ClassVar[dict[str, int]] = {"div": 1, "fn": 1, "add": 1, "mul": 2}
    doing: ClassVar[dict[str, str]] = {"div": "divide by √2", "fn": "erf", "add": "add 1",
                                       "mul": "halve; times the input"}


@register("silu", "activation")
class SiLU(_InPlace):
    """a · sigmoid(a) for each element a: the sigmoid's 4 operations and a multiply (x elements)."""

    per_element: ClassVar[dict[str, int]] = {"mul": 2, "exp": 1, "add": 1, "div": 1}
    doing: ClassVar[dict[str, str]] = {"mul": "negate; times the input", "exp": "the exponential", "add": "add 1",
                                       "div": "1 divided by the sum"}


@register("softplus", "activation")
class Softplus(_Elementwise):
    """log(1 + e^(β·a)) / β for each element a, or a itself where β·a > threshold (PyTorch's
    Softplus): multiply, compare, exp, add, log, divide, counted branch-free (x elements)."""

    beta: PosReal = 1.0
    threshold: PosReal = 20.0
    per_element: ClassVar[dict[str, int]] = {"mul": 1, "cmp": 1, "exp": 1, "add": 1, "fn": 1, "div": 1}
    doing: ClassVar[dict[str, str]] = {"mul": "β·a", "cmp": "against the threshold", "exp": "the exponential",
                                       "add": "add 1", "fn": "the logarithm", "div": "divided by β"}


@register("hardswish", "activation")
class Hardswish(_InPlace):
    """a · min(max(a + 3, 0), 6) / 6 for each element a: add, 2 comparisons, multiply, divide
    (x elements)."""

    per_element: ClassVar[dict[str, int]] = {"add": 1, "cmp": 2, "mul": 1, "div": 1}
    doing: ClassVar[dict[str, str]] = {"add": "add 3", "cmp": "clamp to [0, 6]", "mul": "times the input",
                                       "div": "divide by 6"}


@register("hardsigmoid", "activation")
class Hardsigmoid(_InPlace):
    """min(max(a + 3, 0), 6) / 6 for each element a: add, 2 comparisons, divide (x elements)."""

    per_element: ClassVar[dict[str, int]] = {"add": 1, "cmp": 2, "div": 1}
    doing: ClassVar[dict[str, str]] = {"add": "add 3", "cmp": "clamp to [0, 6]", "div": "divide by 6"}


@register("prelu", "activation")
class PReLU(_Elementwise):
    """a if a ≥ 0 else w·a for each element a, with learned slopes w: one per channel
    (``num_parameters: C``) or one shared. A comparison and a multiply per element (x elements)."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    num_parameters: PosInt = 1
    params_declared: ClassVar[tuple[Q, ...]] = (
        Q("weights", "num_parameters", "the slopes: one shared, or one per channel"),)
    per_element: ClassVar[dict[str, int]] = {"cmp": 1, "mul": 1}
    doing: ClassVar[dict[str, str]] = {"cmp": "test the sign", "mul": "scale by the learned slope"}

    def given(self, shape: Shape) -> dict[str, Any]:
        if self.num_parameters != 1 and (not shape or shape[0] != self.num_parameters):
            raise ValueError(f"num_parameters={self.num_parameters} must be 1 or the channel count "
                             f"(input {fmt_shape(shape)})")
        return {"x": numel(shape), "num_parameters": self.num_parameters}


@register("layer_scale", "layer_scale")
class LayerScale(_Elementwise):
    """Learned per-channel scale (CaiT/ConvNeXt): C parameters along ``dim`` (C its size), one
    multiply per element (x elements)."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    dim: Dim = 0
    params_declared: ClassVar[tuple[Q, ...]] = (Q("weights", "C", "one scale per index of dim (C its size)"),)
    per_element: ClassVar[dict[str, int]] = {"mul": 1}
    doing: ClassVar[dict[str, str]] = {"mul": "scale by the learned factor of its index along dim"}

    def given(self, shape: Shape) -> dict[str, Any]:
        return {"x": numel(shape), "C": shape[S.normalize_dim(self.dim, len(shape))]}


# ---------------------------------------------------------------------------- softmax

@register("softmax", "softmax")
class Softmax(Layer):
    """exp(a_i) / Σ exp(a_j) along ``dim`` (of the per-sample shape): x elements in rows of n
    values; per row n exponentials, n − 1 additions and n divisions (3n − 1)."""

    dim: Dim = -1

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("rows", "x // n", "n: the size of the softmax's dim"),
        Q("exp", "rows * n", "one exponential per element"),
        Q("add", "rows * (n - 1)", "the sum of each row"),
        Q("div", "rows * n", "each exponential divided by its row's sum"),
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        return {"x": numel(shape), "n": shape[S.normalize_dim(self.dim, len(shape))]}
