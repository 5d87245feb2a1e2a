"""Element-wise activations, learned element-wise scales, and softmax."""

from typing import Any, ClassVar, Literal


from .. import shapes as S
from ..formula import Step, given, step
from ..shapes import fmt_shape, numel
from .base import (_PARAM_HINTS, Dim, Layer, Params, PosInt, Real, _elements, register)


# ---------------------------------------------------------------------------- activations

class _Elementwise(Layer):
    """Element-wise function; output shape = input shape."""

    per_element: ClassVar[dict[str, int]] = {}

    def ops(self, shape, out):
        x = numel(shape)
        return {k: v * x for k, v in self.per_element.items()}

    def explain(self, shape, out):
        return [given("shape", "output", "input (unchanged)", out), *self._explain_params(shape),
                *(step(k, k, "v * x", f"{v} per element", v=(str(v), v), x=_elements(shape))
                  for k, v in self.per_element.items())]

    def _explain_params(self, shape) -> list[Step]:
        return []


def _activation(name: str, doc: str, per_element: dict[str, int], **fields):
    annotations = {"per_element": ClassVar[dict[str, int]]}
    namespace: dict[str, Any] = {"__doc__": doc, "per_element": per_element}
    for field, (annotation, default) in fields.items():
        annotations[field] = annotation
        namespace[field] = default
    namespace["__annotations__"] = annotations
    namespace["formulas"] = {"ops": "per element: " + ", ".join(f"{v} {k}" for k, v in per_element.items())}
    annotations["formulas"] = ClassVar[dict[str, str]]
    cls = type("".join(p.title() for p in name.split("_")), (_Elementwise,), namespace)
    return register(name, "activation")(cls)


_activation("relu", "max(0, x): one comparison per element.", {"cmp": 1})
_activation("relu6", "min(max(0, x), 6): two comparisons per element.", {"cmp": 2})
_activation("leaky_relu", "x if x ≥ 0 else slope·x: a comparison and a multiply per element.",
            {"cmp": 1, "mul": 1}, negative_slope=(Real, 0.01))
_activation("elu", "x if x > 0 else α(eˣ − 1): counted branch-free, cmp, exp, add, mul.",
            {"cmp": 1, "exp": 1, "add": 1, "mul": 1}, alpha=(Real, 1.0))
_activation("sigmoid", "1 / (1 + e^(−x)): negate, exp, add, divide.", {"mul": 1, "exp": 1, "add": 1, "div": 1})
_activation("tanh", "1 − 2 / (e^(2x) + 1): mul, exp, 2 adds, divide.", {"mul": 1, "exp": 1, "add": 2, "div": 1})
_activation("gelu", "x/2 · (1 + erf(x/√2)) (or the tanh form): divide, erf, add, 2 multiplies.",
            {"div": 1, "fn": 1, "add": 1, "mul": 2}, approximate=(Literal["none", "tanh"], "none"))
_activation("silu", "x · sigmoid(x): the sigmoid's 4 operations and a multiply.",
            {"mul": 2, "exp": 1, "add": 1, "div": 1})
_activation("hardswish", "x · min(max(x + 3, 0), 6) / 6: add, 2 comparisons, multiply, divide.",
            {"add": 1, "cmp": 2, "mul": 1, "div": 1})
_activation("hardsigmoid", "min(max(x + 3, 0), 6) / 6: add, 2 comparisons, divide.",
            {"add": 1, "cmp": 2, "div": 1})


@register("prelu", "activation")
class PReLU(_Elementwise):
    """x if x ≥ 0 else a·x with learned a: one per channel (``num_parameters: C``) or one shared."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    num_parameters: PosInt = 1
    per_element: ClassVar[dict[str, int]] = {"cmp": 1, "mul": 1}
    formulas: ClassVar[dict[str, str]] = {"params": "num_parameters (1 or C)", "ops": "per element: 1 cmp, 1 mul"}

    def infer(self, shape):
        if self.num_parameters != 1 and (not shape or shape[0] != self.num_parameters):
            raise ValueError(f"num_parameters={self.num_parameters} must be 1 or the channel count "
                             f"(input {fmt_shape(shape)})")
        return shape

    def params(self, shape):
        return Params(self.num_parameters)

    def _explain_params(self, shape):
        return [given("weights", "weights", "num_parameters (1, or one per channel)", self.num_parameters)]


@register("softmax", "softmax")
class Softmax(Layer):
    """exp(x_i) / Σ exp(x_j) along ``dim`` (of the per-sample shape): per row of n values,
    n exponentials, n − 1 additions and n divisions (3n − 1)."""

    dim: Dim = -1
    formulas: ClassVar[dict[str, str]] = {"ops": "per row of n: n exp, n−1 add, n div"}

    def infer(self, shape):
        S.normalize_dim(self.dim, len(shape))
        return shape

    def ops(self, shape, out):
        n = shape[S.normalize_dim(self.dim, len(shape))]
        rows = numel(shape) // n
        return {"exp": rows * n, "add": rows * (n - 1), "div": rows * n, "rows": rows}

    def explain(self, shape, out):
        d = S.normalize_dim(self.dim, len(shape))
        sym = {"x": _elements(shape), "n": ("n", shape[d])}
        rows = step("rows", "rows", "x // n", f"n = size of dim {d}", **sym)
        sym["r"] = ("rows", rows.value)
        return [given("shape", "output", "input (unchanged)", out), rows,
                step("exp", "exp", "r * n", "one exponential per element", **sym),
                step("add", "add", "r * (n - 1)", "the sum of each row", **sym),
                step("div", "div", "r * n", "each exponential divided by its row's sum", **sym)]


@register("layer_scale", "layer_scale")
class LayerScale(_Elementwise):
    """Learned per-channel scale (CaiT/ConvNeXt): C parameters along ``dim``, one multiply
    per element."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    dim: Dim = 0
    per_element: ClassVar[dict[str, int]] = {"mul": 1}
    formulas: ClassVar[dict[str, str]] = {"params": "C (size of dim)", "ops": "per element: 1 mul"}

    def infer(self, shape):
        S.normalize_dim(self.dim, len(shape))
        return shape

    def params(self, shape):
        return Params(shape[S.normalize_dim(self.dim, len(shape))])

    def _explain_params(self, shape):
        d = S.normalize_dim(self.dim, len(shape))
        return [given("weights", "weights", f"size of dim {d}", shape[d])]
