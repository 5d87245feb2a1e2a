"""Layers that move or pass values without arithmetic: dropout, identity, reshapes, slices."""

from typing import Annotated, ClassVar, Literal, Optional

from pydantic import BeforeValidator, Field

from .. import shapes as S
from ..formula import given, step
from ..shapes import fmt_shape, numel
from .base import (_RESHAPE_HINTS, MAX_SIZE, Dim, Layer, NonNegInt, PosInt, Prob, _no_bool, _times,
                   register)


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


@register("flatten", "reshape")
class Flatten(Layer):
    """Merges dims ``start``..``end`` of the per-sample shape (PyTorch's Flatten(1, -1) is
    start 0, end −1 here, because spec shapes have no batch dimension)."""

    hints: ClassVar[dict[str, tuple]] = _RESHAPE_HINTS

    start: Dim = 0
    end: Dim = -1

    def infer(self, shape):
        if not shape:
            return (1,)
        a, b = S.normalize_dim(self.start, len(shape)), S.normalize_dim(self.end, len(shape))
        if a > b:
            raise ValueError(f"start {self.start} comes after end {self.end}")
        return (*shape[:a], numel(shape[a:b + 1]), *shape[b + 1:])

    def explain(self, shape, out):
        if not shape:
            return [given("shape", "output", "a scalar becomes one element", out)]
        a, b = S.normalize_dim(self.start, len(shape)), S.normalize_dim(self.end, len(shape))
        return [step(f"shape.{a}", "merged", _times("d", b + 1 - a), f"dims {a}..{b} merged",
                     **{f"d{i}": (f"n_{a + i}", shape[a + i]) for i in range(b + 1 - a)})]


@register("reshape", "reshape")
class Reshape(Layer):
    """View the per-sample tensor with another shape; one entry may be −1 (inferred)."""

    hints: ClassVar[dict[str, tuple]] = _RESHAPE_HINTS

    shape: tuple[Annotated[int, BeforeValidator(_no_bool), Field(ge=-1, le=MAX_SIZE)], ...]

    def infer(self, shape):
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

    def explain(self, shape, out):
        return [given("shape", "output", f"the same {numel(shape)} elements viewed as "
                      f"{list(self.shape)}", out)]


@register("permute", "reshape")
class Permute(Layer):
    """Reorder the per-sample dimensions (``dims`` is a permutation of 0..rank−1)."""

    hints: ClassVar[dict[str, tuple]] = _RESHAPE_HINTS

    dims: tuple[Dim, ...]

    def infer(self, shape):
        order = [S.normalize_dim(d, len(shape)) for d in self.dims]
        if sorted(order) != list(range(len(shape))):
            raise ValueError(f"dims {list(self.dims)} is not a permutation of a rank-{len(shape)} shape")
        return tuple(shape[i] for i in order)

    def explain(self, shape, out):
        return [given("shape", "output", f"input dims reordered as {list(self.dims)}", out)]


@register("channel_shuffle", "reshape")
class ChannelShuffle(Layer):
    """ShuffleNet's channel shuffle: a reshape and transpose, nothing counted."""

    hints: ClassVar[dict[str, tuple]] = _RESHAPE_HINTS

    groups: PosInt

    def infer(self, shape):
        if len(shape) < 2:
            raise ValueError(f"needs (C, spatial…) as PyTorch's channel_shuffle, got {fmt_shape(shape)}")
        if shape[0] % self.groups:
            raise ValueError(f"channels {shape[0] if shape else 0} are not divisible by groups={self.groups}")
        return shape


@register("channel_split", "reshape")
class ChannelSplit(Layer):
    """Keep one part of the channels: ``parts`` equal parts, or explicit ``sections``;
    ``index`` chooses the part. A slice: nothing counted."""

    hints: ClassVar[dict[str, tuple]] = _RESHAPE_HINTS

    parts: Optional[PosInt] = None
    sections: Optional[tuple[PosInt, ...]] = None
    index: NonNegInt = 0
    dim: Dim = 0

    def infer(self, shape):
        d = S.normalize_dim(self.dim, len(shape))
        c = shape[d]
        if (self.parts is None) == (self.sections is None):
            raise ValueError("give exactly one of parts and sections")
        if self.parts is not None:
            if c % self.parts:
                raise ValueError(f"size {c} is not divisible into {self.parts} parts")
            sections = (c // self.parts,) * self.parts
        else:
            sections = self.sections
            if sum(sections) != c:
                raise ValueError(f"sections {list(sections)} sum to {sum(sections)}, not {c}")
        if self.index >= len(sections):
            raise ValueError(f"index {self.index} but only {len(sections)} parts")
        return (*shape[:d], sections[self.index], *shape[d + 1:])

    def explain(self, shape, out):
        d = S.normalize_dim(self.dim, len(shape))
        return [given(f"shape.{d}", "kept", f"part {self.index} of dim {d}", out[d])]
