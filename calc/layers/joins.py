"""Joins: layers that combine the flow with named earlier outputs."""

from typing import ClassVar

from pydantic import Field

from .. import shapes as S
from ..formula import Step, given, step
from ..shapes import Shape, fmt_shape, numel
from .base import (Dim, Layer, _elements, register)


# ---------------------------------------------------------------------------- joins

class Join(Layer):
    """Combines several inputs (the flow and named earlier outputs)."""

    inputs: ClassVar[int] = 2
    hints: ClassVar[dict[str, tuple]] = {"call": ("operator", "functional")}
    with_: tuple[str, ...] = Field((), alias="with", description="names of earlier outputs to join with the flow")

    def refs(self):
        return self.with_

    def infer_many(self, shapes: list[Shape]) -> Shape:
        raise NotImplementedError

    def explain_many(self, shapes: list[Shape], out: Shape) -> list[Step]:
        return [given("shape", "output", "the inputs' common shape", out)]


@register("add", "add")
class Add(Join):
    """Element-wise sum of inputs of equal shape: (n − 1) additions per element."""

    def infer_many(self, shapes):
        first = shapes[0]
        for other in shapes[1:]:
            if other != first:
                raise ValueError("cannot add shapes " + " and ".join(fmt_shape(s) for s in shapes))
        return first

    def ops_many(self, shapes, out):
        return {"add": numel(out) * (len(shapes) - 1), "operands": len(shapes)}

    def explain_many(self, shapes, out):
        return [*super().explain_many(shapes, out),
                step("add", "add", "(k - 1) * y", "k inputs: k − 1 additions per element",
                     k=("k", len(shapes)), y=_elements(out, "y"))]


@register("mul", "mul")
class Mul(Join):
    """Element-wise product with broadcasting (e.g. squeeze-and-excitation gates C×1×1 over
    C×H×W): (n − 1) multiplies per output element."""

    def infer_many(self, shapes):
        out = shapes[0]
        for other in shapes[1:]:
            out = S.broadcast(out, other)
        return out

    def ops_many(self, shapes, out):
        return {"mul": numel(out) * (len(shapes) - 1), "operands": len(shapes)}

    def explain_many(self, shapes, out):
        return [given("shape", "output", "the inputs broadcast together", out),
                step("mul", "mul", "(k - 1) * y", "k inputs: k − 1 multiplications per output element",
                     k=("k", len(shapes)), y=_elements(out, "y"))]


@register("concat", "concat")
class Concat(Join):
    """Concatenation along ``dim`` (default channels); all other dims must agree. A copy:
    nothing counted."""

    hints: ClassVar[dict[str, tuple]] = {"call": ("functional",)}
    dim: Dim = 0

    def infer_many(self, shapes):
        rank = len(shapes[0])
        d = S.normalize_dim(self.dim, rank)
        for s in shapes[1:]:
            if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != d):
                raise ValueError(f"cannot concatenate along dim {self.dim}: shapes "
                                 + ", ".join(fmt_shape(x) for x in shapes))
        return (*shapes[0][:d], sum(s[d] for s in shapes), *shapes[0][d + 1:])

    def ops_many(self, shapes, out):
        return {"operands": len(shapes)}

    def explain_many(self, shapes, out):
        d = S.normalize_dim(self.dim, len(out))
        return [step(f"shape.{d}", "joined", " + ".join(f"c{i}" for i in range(len(shapes))),
                     f"sizes along dim {d} added; a copy, nothing counted",
                     **{f"c{i}": (f"n_{i + 1}", s[d]) for i, s in enumerate(shapes)})]
