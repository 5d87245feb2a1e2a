"""Joins: layers that combine the flow with named earlier outputs.

A join reads k ≥ 2 inputs; :meth:`Join.given_many` checks that they fit together and gives the
symbols its declarations read: ``k`` (the number of inputs) and, for the element-wise joins,
``y`` (the output elements). Nothing here grows with k but the checks: a concatenation of a
thousand inputs is explained in as many lines as one of two.
"""

from typing import Any, ClassVar

from pydantic import Field

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
    """Element-wise sum of k inputs of equal shape: k − 1 additions per output element (y of
    them)."""

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("add", "(k - 1) * y", "k inputs: k − 1 additions for each of the y output elements"),
        Q("operands", "k", fact=True),
    )

    def given_many(self, shapes: list[Shape]) -> dict[str, Any]:
        first = shapes[0]
        for i, other in enumerate(shapes[1:], 1):
            if other != first:
                raise ValueError(f"cannot add shapes {fmt_shape(first)} and {fmt_shape(other)}{_which(i, shapes)}")
        return {"k": len(shapes), "y": numel(first)}

    def shape_text(self) -> str:
        return "the inputs' common shape"


@register("mul", "mul")
class Mul(Join):
    """Element-wise product of k inputs with broadcasting (e.g. squeeze-and-excitation gates
    C×1×1 over C×H×W): k − 1 multiplications per output element (y of them)."""

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("mul", "(k - 1) * y", "k inputs: k − 1 multiplications for each of the y output elements"),
        Q("operands", "k", fact=True),
    )

    def given_many(self, shapes: list[Shape]) -> dict[str, Any]:
        out = shapes[0]
        for i, other in enumerate(shapes[1:], 1):
            try:
                out = S.broadcast(out, other)
            except ValueError as exc:
                raise ValueError(f"{exc}{_which(i, shapes)}") from None
        # the broadcast shape travels with the symbols to `output`, which sees only the flow's
        return {"k": len(shapes), "y": numel(out), "broadcast": out}

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
