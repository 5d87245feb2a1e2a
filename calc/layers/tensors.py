"""Free tensors and the operations on them that attention written from primitives needs.

``parameter`` and ``buffer`` declare a named tensor that the model holds (Swin's relative
position bias table, a relative position index, a logit scale); ``gather`` picks rows of one by
an index (``table[index]``); ``scale`` multiplies by a constant (q · d^−½). A tensor item does
not change the flow: the next item reads the item's input, and later items read the tensor by
its name (``from:``, ``with:``), as PyTorch code reads ``self.table`` beside ``x``.

Shapes are per sample, as everywhere in calc: a parameter of shape (169, 3) is the same tensor
for every sample; PyTorch broadcasts it over the batch, and so do calc's joins.
"""

from typing import Any, ClassVar

from pydantic import Field, StrictBool

from ..formula import Q
from ..shapes import Shape, fmt_shape, numel
from .base import Layer, PosInt, Real, register


class _Tensor(Layer):
    """A tensor the model holds; its input is not read, and the flow passes around it."""

    # The analysis and the oracle let the flow pass around an item of such a layer.
    keeps_flow: ClassVar[bool] = True
    hints: ClassVar[dict[str, tuple]] = {}

    shape: tuple[PosInt, ...] = Field(description="the tensor's shape (as PyTorch declares it)")

    def given(self, shape: Shape) -> dict[str, Any]:
        if not self.shape:
            raise ValueError("a tensor needs a shape of at least one dimension")
        return {"n": numel(self.shape)}

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        return tuple(self.shape)

    def shape_text(self) -> str:
        return f"the tensor's own shape {fmt_shape(tuple(self.shape))} (the input is not read)"


@register("parameter", "parameter")
class Parameter(_Tensor):
    """A learned tensor of ``shape`` (PyTorch's nn.Parameter): its elements are weights; it is
    read, not computed, so nothing is counted. The flow passes around the item."""

    quantities: ClassVar[tuple[Q, ...]] = (Q("weights", "n", "every element of the tensor"),)


@register("buffer", "parameter")
class Buffer(_Tensor):
    """A tensor of ``shape`` that the model holds but does not learn (register_buffer: a
    relative position index, a coordinates table): its elements are buffers, not parameters.
    ``persistent: false`` for a tensor made in the forward pass (Swin's attention mask), which
    PyTorch holds nowhere: nothing is counted then. The flow passes around the item."""

    persistent: StrictBool = Field(True, description="held by the model (register_buffer); false: made "
                                                     "in the forward pass and held nowhere")

    quantities: ClassVar[tuple[Q, ...]] = (Q("buffers", "n if held else 0", "every element of the tensor"),)

    def given(self, shape: Shape) -> dict[str, Any]:
        return {**super().given(shape), "held": int(self.persistent)}


@register("gather", "reshape")
class Gather(Layer):
    """Rows of the flow picked by an index (``table[index]``): the output has one row per index
    element, (numel(index), *rest). ``index`` names an earlier output (usually a ``buffer``);
    its values are not known to calc, only its size. A copy: nothing counted."""

    hints: ClassVar[dict[str, tuple]] = {}
    index: str = Field(description="name of the earlier output that holds the index")

    def refs(self):
        return (self.index,)

    def given(self, shape: Shape) -> dict[str, Any]:
        return self.given_many([shape, (1,)])

    def given_many(self, shapes: list[Shape]) -> dict[str, Any]:
        table, index = shapes[0], shapes[-1]
        if not table:
            raise ValueError("the table to gather from needs at least one dimension")
        return {"rows": numel(index), "table": table}

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        return (v["rows"], *v["table"][1:])

    def shape_text(self) -> str:
        return "one row of the table per index element"


@register("scale", "scale")
class Scale(Layer):
    """Multiplies every element by a constant ``by`` (q · d^−½, 16 · sigmoid(b)): one multiply
    per element (x elements)."""

    hints: ClassVar[dict[str, tuple]] = {"call": ("operator", "functional")}
    by: Real = Field(description="the constant factor")

    quantities: ClassVar[tuple[Q, ...]] = (Q("mul", "x", "one multiply per element"),)

    def given(self, shape: Shape) -> dict[str, Any]:
        return {"x": numel(shape)}
