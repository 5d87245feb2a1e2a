"""Layers that move or pass values without arithmetic: dropout, identity, reshapes, slices.

None of them counts anything, so they declare no quantities: the ones that keep the shape
need nothing more (the base passes it through and the explanation says "input (unchanged)");
the ones that change it say how in :meth:`output` and, in words, in :meth:`shape_text`."""

from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import BeforeValidator, Field

from .. import shapes as S
from ..shapes import Shape, fmt_shape, numel
from .base import _RESHAPE_HINTS, MAX_SIZE, Dim, Layer, NonNegInt, PosInt, Prob, _no_bool, register


# ---------------------------------------------------------------------------- no-cost layers

@register("dropout", "dropout")
class Dropout(Layer):
    """Dropout: the identity at inference; nothing is counted."""

    p: Prob = 0.5


@register("stochastic_depth", "dropout")
class StochasticDepth(Layer):
    """Stochastic depth (drop path): the identity at inference; nothing is counted."""

    p: Prob
    mode: Literal["row", "batch"] = "row"


@register("identity", "identity")
class Identity(Layer):
    """Passes its input through; nothing is counted."""


# ---------------------------------------------------------------------------- views and slices

def _dim(d: int) -> str:
    return str(d).replace("-", "−")   # as the explanations write a minus

# The output shape is the whole result of these layers; it is computed in `output` (which also
# refuses what PyTorch refuses), and `given` has nothing to supply.

@register("flatten", "reshape")
class Flatten(Layer):
    """Merges dims ``start``..``end`` of the per-sample shape into one whose size is their
    product (PyTorch's Flatten(1, -1) is start 0, end −1 here, because spec shapes have no batch
    dimension)."""

    hints: ClassVar[dict[str, tuple]] = _RESHAPE_HINTS

    start: Dim = 0
    end: Dim = -1

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        if not shape:
            return (1,)   # a scalar becomes one element, as torch.flatten does
        a, b = S.normalize_dim(self.start, len(shape)), S.normalize_dim(self.end, len(shape))
        if a > b:
            raise ValueError(f"start {self.start} comes after end {self.end}")
        return (*shape[:a], numel(shape[a:b + 1]), *shape[b + 1:])

    def shape_text(self) -> str:
        return f"dims {_dim(self.start)}..{_dim(self.end)} merged into one, the product of their sizes"


@register("reshape", "reshape")
class Reshape(Layer):
    """View the per-sample tensor with another shape; one entry may be −1 (inferred)."""

    hints: ClassVar[dict[str, tuple]] = _RESHAPE_HINTS

    shape: tuple[Annotated[int, BeforeValidator(_no_bool), Field(ge=-1, le=MAX_SIZE)], ...]

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        target = list(self.shape)
        if target.count(-1) > 1:
            raise ValueError("at most one −1 in shape")
        if 0 in target:
            raise ValueError("sizes must be positive (or −1)")
        total = numel(shape)
        if -1 in target:
            known = numel([t for t in target if t != -1])
            if total % known:
                raise ValueError(f"cannot reshape {fmt_shape(shape)} ({total} elements) to {self.shape}")
            target[target.index(-1)] = total // known
        if numel(target) != total:
            raise ValueError(f"cannot reshape {fmt_shape(shape)} ({total} elements) to "
                             f"{fmt_shape(tuple(target))} ({numel(target)} elements)")
        return tuple(target)

    def shape_text(self) -> str:
        return f"the same elements viewed as {list(self.shape)}" + (
            " (−1: the size that keeps every element)" if -1 in self.shape else "")


@register("permute", "reshape")
class Permute(Layer):
    """Reorder the per-sample dimensions (``dims`` is a permutation of 0..rank−1)."""

    hints: ClassVar[dict[str, tuple]] = _RESHAPE_HINTS

    dims: tuple[Dim, ...]

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        order = [S.normalize_dim(d, len(shape)) for d in self.dims]
        if sorted(order) != list(range(len(shape))):
            raise ValueError(f"dims {list(self.dims)} is not a permutation of a rank-{len(shape)} shape")
        return tuple(shape[i] for i in order)

    def shape_text(self) -> str:
        return f"input dims reordered as {list(self.dims)}"


@register("channel_shuffle", "reshape")
class ChannelShuffle(Layer):
    """ShuffleNet's channel shuffle: a reshape and transpose that keeps the shape; nothing
    counted."""

    hints: ClassVar[dict[str, tuple]] = _RESHAPE_HINTS

    groups: PosInt

    def given(self, shape: Shape) -> dict[str, Any]:
        if len(shape) < 2:
            raise ValueError(f"needs (C, spatial…) as PyTorch's channel_shuffle, got {fmt_shape(shape)}")
        if shape[0] % self.groups:
            raise ValueError(f"channels {shape[0]} are not divisible by groups={self.groups}")
        return {}


@register("channel_split", "reshape")
class ChannelSplit(Layer):
    """Keep one part of the channels: ``parts`` parts as ``torch.chunk`` makes them (each
    ceil(C / parts), the last smaller, and fewer parts when C is small), or explicit
    ``sections``; ``index`` chooses the part. A slice: nothing counted."""

    hints: ClassVar[dict[str, tuple]] = _RESHAPE_HINTS

    parts: Optional[PosInt] = None
    sections: Optional[tuple[PosInt, ...]] = None
    index: NonNegInt = 0
    dim: Dim = 0

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        d = S.normalize_dim(self.dim, len(shape))
        c = shape[d]
        if (self.parts is None) == (self.sections is None):
            raise ValueError("give exactly one of parts and sections")
        if self.parts is not None:
            # torch.chunk: chunks of ceil(c / parts); the last one holds what is left
            size = -(-c // self.parts)
            sections = (size,) * (c // size) + ((c % size,) if c % size else ())
        else:
            sections = self.sections
            if sum(sections) != c:
                raise ValueError(f"sections {list(sections)} sum to {sum(sections)}, not {c}")
        if self.index >= len(sections):
            made = f" (torch.chunk makes {len(sections)} of {c} into {self.parts})" if self.parts is not None else ""
            raise ValueError(f"index {self.index} but only {len(sections)} parts{made}")
        return (*shape[:d], sections[self.index], *shape[d + 1:])

    def shape_text(self) -> str:
        split = f"{self.parts} equal parts" if self.parts is not None else f"sections {list(self.sections or ())}"
        return f"part {self.index} of dim {_dim(self.dim)}, split into {split}"


# ---------------------------------------------------------------------------- padding and rolling

@register("pad", "reshape")
class Pad(Layer):
    """PyTorch's F.pad: ``pad`` lists (before, after) pairs from the last dimension backwards,
    as F.pad does ([left, right, top, bottom] pads width, then height); a negative amount crops.
    ``mode`` constant (with ``value``), reflect, replicate or circular gives the same shape.
    A copy: nothing counted (no tool counts it either)."""

    pad: tuple[int, ...]
    mode: Literal["constant", "reflect", "replicate", "circular"] = "constant"
    value: float = 0.0

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        if not self.pad or len(self.pad) % 2:
            raise ValueError(f"pad needs (before, after) pairs, got {list(self.pad)}")
        pairs = len(self.pad) // 2
        if pairs > len(shape):
            raise ValueError(f"{pairs} pairs of padding for a rank-{len(shape)} shape")
        out = list(shape)
        for k in range(pairs):
            d = len(shape) - 1 - k
            before, after = self.pad[2 * k], self.pad[2 * k + 1]
            if self.mode == "reflect" and max(before, after) >= shape[d]:
                raise ValueError(f"reflect padding {max(before, after)} must be smaller than the size {shape[d]}")
            if self.mode == "circular" and max(before, after) > shape[d]:
                raise ValueError(f"circular padding {max(before, after)} may not exceed the size {shape[d]}")
            out[d] = shape[d] + before + after
            if out[d] < 1:
                raise ValueError(f"padding {before}, {after} leaves dim {d} of size {shape[d]} empty")
        return tuple(out)

    def shape_text(self) -> str:
        return f"input padded by {list(self.pad)} (pairs from the last dim), mode {self.mode}"


@register("roll", "reshape")
class Roll(Layer):
    """torch.roll: shifts the elements along ``dims`` by ``shifts`` (cyclically, as Swin's
    shifted windows do); the shape is kept and nothing is counted."""

    shifts: tuple[int, ...]
    dims: tuple[Dim, ...]

    def given(self, shape: Shape) -> dict[str, Any]:
        if len(self.shifts) != len(self.dims) or not self.dims:
            raise ValueError(f"shifts {list(self.shifts)} and dims {list(self.dims)} must be as long")
        for d in self.dims:
            S.normalize_dim(d, len(shape))
        return {}
