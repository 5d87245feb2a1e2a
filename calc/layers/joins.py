"""Joins: layers that combine the flow with named earlier outputs.

A join reads k ≥ 2 inputs; :meth:`Join.given_many` checks that they fit together and gives the
symbols its declarations read: ``k`` (the number of inputs) and, for the element-wise joins,
``y`` (the output elements). Nothing here grows with k but the checks: a concatenation of a
thousand inputs is explained in as many lines as one of two.
"""

from typing import Any, ClassVar

from pydantic import Field, StrictBool

from .. import shapes as S
from ..formula import Q, Step, explain_quantities, given
from ..shapes import Shape, fmt_shape, numel
from .base import Dim, Layer, register


def _which(i: int, shapes: list[Shape]) -> str:
    """Which input a refusal is about, when there are more than two (an error names two shapes,
    however many inputs there are)."""
    return f" (input {i + 1} of {len(shapes)})" if len(shapes) > 2 else ""


class Join(Layer):
    """Combines several inputs (the flow and named earlier outputs)."""

    inputs: ClassVar[int] = 2
    hints: ClassVar[dict[str, tuple]] = {"call": ("operator", "functional")}
    with_: tuple[str, ...] = Field((), alias="with", description="names of earlier outputs to join with the flow")

    def refs(self):
        return self.with_

    def given(self, shape: Shape) -> dict[str, Any]:
        # Asked about the flow alone (its parameters, of which a join has none), a join is the
        # join of that one input.
        return self.given_many([shape])

    def explain_many(self, shapes: list[Shape], out: Shape) -> list[Step]:
        v = self.values_many(shapes)
        return [self.output_step(v, out), *explain_quantities(self.quantities, v)]

    def output_step(self, v: dict[str, Any], out: Shape) -> Step:
        """The explanation's output step: how the inputs combine, in words. (The base would call
        an output equal to the flow's shape "input (unchanged)", which a join's is not.)"""
        return given("shape", "output", self.shape_text(), out)


@register("add", "add")
class Add(Join):
    """Element-wise sum of k inputs of equal shape (with ``broadcast: true``, shapes that
    broadcast, as a bias of h×L×L added to scores of n×h×L×L): k − 1 additions per output
    element (y of them)."""

    broadcast: StrictBool = Field(False, description="let the shapes broadcast (PyTorch's rules); by default "
                                                     "they must be equal, which catches a wrong residual")

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("add", "(k - 1) * y", "k inputs: k − 1 additions for each of the y output elements"),
        Q("operands", "k", fact=True),
    )

    def given_many(self, shapes: list[Shape]) -> dict[str, Any]:
        first = shapes[0]
        if self.broadcast:
            return _broadcast_all(shapes)
        for i, other in enumerate(shapes[1:], 1):
            if other != first:
                raise ValueError(f"cannot add shapes {fmt_shape(first)} and {fmt_shape(other)}{_which(i, shapes)}"
                                 + (" (broadcast: true lets them broadcast)" if _broadcasts(first, other) else ""))
        return {"k": len(shapes), "y": numel(first), "broadcast": first}

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        return v["broadcast"]

    def evaluate_many(self, shapes: list[Shape]):
        if self.broadcast:   # the output is the broadcast shape, which the fast path cannot assemble
            v = self._fill(self.given_many(shapes))
            return self.output(shapes[0], v), self._params_of(v), {k: v[k] for k in self._op_names}
        return super().evaluate_many(shapes)

    def shape_text(self) -> str:
        return "the inputs broadcast together" if self.broadcast else "the inputs' common shape"


# Equal shapes (the default, every residual) keep the fast path, whose output is the flow's shape.
Add._fast = True


def _broadcasts(a: Shape, b: Shape) -> bool:
    try:
        S.broadcast(a, b)
    except ValueError:
        return False
    return True


def _broadcast_all(shapes: list[Shape]) -> dict[str, Any]:
    out = shapes[0]
    for i, other in enumerate(shapes[1:], 1):
        try:
            out = S.broadcast(out, other)
        except ValueError as exc:
            raise ValueError(f"{exc}{_which(i, shapes)}") from None
    # the broadcast shape travels with the symbols to `output`, which sees only the flow's
    return {"k": len(shapes), "y": numel(out), "broadcast": out}


@register("mul", "mul")
class Mul(Join):
    """Element-wise product of k inputs with broadcasting (e.g. squeeze-and-excitation gates
    C×1×1 over C×H×W): k − 1 multiplications per output element (y of them)."""

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("mul", "(k - 1) * y", "k inputs: k − 1 multiplications for each of the y output elements"),
        Q("operands", "k", fact=True),
    )

    def given_many(self, shapes: list[Shape]) -> dict[str, Any]:
        return _broadcast_all(shapes)

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        return v["broadcast"]

    def shape_text(self) -> str:
        return "the inputs broadcast together"


@register("concat", "concat")
class Concat(Join):
    """Concatenation of k inputs along ``dim`` (default channels): the output's size there is
    the sum Σ n_i of theirs; all other dims must agree. A copy: nothing counted."""

    hints: ClassVar[dict[str, tuple]] = {"call": ("functional",)}
    dim: Dim = 0

    quantities: ClassVar[tuple[Q, ...]] = (Q("operands", "k", fact=True),)

    def given_many(self, shapes: list[Shape]) -> dict[str, Any]:
        first = shapes[0]
        rank = len(first)
        d = S.normalize_dim(self.dim, rank)
        for j, s in enumerate(shapes[1:], 1):
            if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, first)) if i != d):
                raise ValueError(f"cannot concatenate along dim {self.dim}: shapes {fmt_shape(first)}, "
                                 f"{fmt_shape(s)}{_which(j, shapes)}")
        return {"k": len(shapes), "d": d, "joined": sum(s[d] for s in shapes)}

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        d = v["d"]
        return (*shape[:d], v["joined"], *shape[d + 1:])

    def output_step(self, v: dict[str, Any], out: Shape) -> Step:
        # Σ with the count of its terms, however many inputs there are
        return Step(f"shape.{v['d']}", "joined", "Σ n_i", "", v["joined"],
                    f"the sizes n_i of the {v['k']} inputs along dim {v['d']}, added; a copy, nothing counted")


@register("matmul", "matmul")
class MatMul(Join):
    """Matrix product of the flow (…, n, m) and one named input (…, m, p), as torch.matmul:
    the leading (batch) dims broadcast, and each of the b products of their broadcast shape
    is n × m by m × p. ``transpose: true`` multiplies by the named input's transpose over its
    last two dims (q·kᵀ of k (…, p, m)). Both operands have rank ≥ 2 per sample. Counted as a
    dot product: b·n·p dot products of m terms (b·n·m·p MACs), no bias."""

    # torch.matmul (functional), `a @ b` (operator) or torch.einsum over the same indices (einsum)
    hints: ClassVar[dict[str, tuple]] = {"call": ("functional", "operator", "einsum")}
    transpose: StrictBool = Field(False, description="use the named input's transpose over its last two dims")

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("mac", "b * n * m * p", "b products of n × m by m × p matrices: m multiply-accumulates per output element"),
        Q("dots", "b * n * p", "one dot product per output element"),
        Q("a_numel", "b_a * n * m", fact=True), Q("rows", "b * n", fact=True), Q("inner", "m", fact=True),
        Q("cols", "p", fact=True),
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        # Asked about the flow alone (for its parameters, of which it has none): the flow by itself.
        return self.given_many([shape, shape])

    def given_many(self, shapes: list[Shape]) -> dict[str, Any]:
        if len(shapes) != 2:
            raise ValueError(f"matmul multiplies the flow by one named input, got {len(shapes)} inputs")
        a, b = shapes
        for s, what in ((a, "first"), (b, "second")):
            if len(s) < 2:
                raise ValueError(f"the {what} operand must have rank ≥ 2 per sample (…, rows, columns), "
                                 f"got {fmt_shape(s)}")
        n, m = a[-2:]
        m2, p = (b[-1], b[-2]) if self.transpose else b[-2:]
        if m != m2:
            t = "ᵀ" if self.transpose else ""
            raise ValueError(f"cannot multiply {fmt_shape(a)} by {fmt_shape(b)}{t}: {m} columns against {m2} rows")
        try:
            lead = S.broadcast(a[:-2], b[:-2])
        except ValueError:
            raise ValueError(f"the batch dims of {fmt_shape(a)} and {fmt_shape(b)} do not broadcast") from None
        return {"n": n, "m": m, "p": p, "b": numel(lead), "b_a": numel(a[:-2]), "out_shape": (*lead, n, p)}

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        return v["out_shape"]

    def shape_text(self) -> str:
        return "the batch dims broadcast, then rows of the first by columns of the second" + (
            " (transposed)" if self.transpose else "")
