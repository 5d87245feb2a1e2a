"""Sequence plumbing: token embeddings, added (positional, type) embeddings, class tokens,
feature maps to tokens and back, token selection and mean.

Symbols: a sequence is (L, *F) with L tokens of F features (F the product of the feature dims);
``ids`` is the number of token ids an embedding reads."""

from math import isqrt, prod
from typing import Any, ClassVar, Optional, Union

from pydantic import Field, model_validator

from ..formula import Q
from ..shapes import Shape, fmt_shape, numel
from .base import _PARAM_HINTS, Index, Layer, PosInt, _tokens_by_features, register


# ---------------------------------------------------------------------------- embeddings

@register("embedding", "embedding")
class Embedding(Layer):
    """Token embedding: one row of a vocab × dim table per token id, (…) ids → (…, dim).
    A lookup copies a row; no arithmetic is counted (``lookups`` = ``ids``, the number of token
    ids read). Its weight may be shared with a linear layer through ``tie`` (a language-model
    head)."""

    takes_tokens: ClassVar[bool] = True
    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    vocab: PosInt = Field(description="vocabulary size (rows of the table)")
    dim: PosInt = Field(description="embedding dimension")
    padding_idx: Optional[Index] = Field(None, description="row kept at zero; still a parameter, as in PyTorch")

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("D", "dim", "a new last dimension: one vector per token id", key="shape.-1"),
        Q("weights", "vocab * dim", "the table; a padding row, if any, counts too"),
        Q("lookups", "ids", "one row copied per token id; no arithmetic"),
    )

    @model_validator(mode="after")
    def _padding_in_range(self):
        if self.padding_idx is not None and not -self.vocab <= self.padding_idx < self.vocab:
            raise ValueError(f"padding_idx {self.padding_idx} is outside the vocabulary of {self.vocab}")
        return self

    def given(self, shape: Shape) -> dict[str, Any]:
        return {"vocab": self.vocab, "dim": self.dim, "ids": numel(shape)}

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        return (*shape, v["D"])

    def weight_shape(self, shape):
        return (self.vocab, self.dim)


class _AddedEmbedding(Layer):
    """A learned vector added to every token of a (L, *F) sequence: the table's rows are
    parameters, and each of the L·F elements gets one addition."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    _rows: ClassVar[str] = ""   # the argument that gives the table's rows, also its symbol

    @classmethod
    def declare(cls):
        rows = cls._rows
        return (
            Q("weights", f"{rows} * F", "the table"),
            Q("add", "L * F", "one row added to every token"),
            Q("positions", "L", fact=True),
        )

    def given(self, shape: Shape) -> dict[str, Any]:
        n, f = _tokens_by_features(shape)
        return {"L": n, "F": f, self._rows: getattr(self, self._rows)}


@register("pos_embedding", "added_embedding")
class PosEmbedding(_AddedEmbedding):
    """Learned absolute positional embedding (GPT-2's wpe, BERT's position embeddings, ViT's
    pos_embedding): row i of a max_len × F table is added to token i of an (L, F) sequence.
    One addition per element; the sequence may not be longer than the table (L ≤ max_len)."""

    _rows: ClassVar[str] = "max_len"
    max_len: PosInt = Field(description="rows of the table: the longest sequence it can take")

    def given(self, shape: Shape) -> dict[str, Any]:
        v = super().given(shape)
        if v["L"] > self.max_len:
            raise ValueError(f"the sequence has {v['L']} positions but the table has max_len={self.max_len} "
                             "(a longer context needs a larger table: raise max_len)")
        return v


@register("type_embedding", "added_embedding")
class TypeEmbedding(_AddedEmbedding):
    """Token-type (segment) embedding, as in BERT: the type ids come with the input, one per
    token of an (L, F) sequence; the row of a types × F table for each token's type is added to
    it. One addition per element."""

    _rows: ClassVar[str] = "types"
    types: PosInt = Field(2, description="number of token types (rows of the table)")


@register("class_token", "class_token")
class ClassToken(Layer):
    """Prepends ``count`` learned tokens (ViT's class token; 2 for DeiT's class and
    distillation tokens): (L, *F) → (L + count, *F). A copy: nothing counted."""

    count: PosInt = 1

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("L_out", "L + count", "learned tokens prepended; a copy, nothing counted", key="shape.0"),
        Q("weights", "count * F"),
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        n, f = _tokens_by_features(shape)
        return {"L": n, "F": f, "count": self.count}


# ---------------------------------------------------------------------------- tokens and images
# Moves between layouts: the output shape is the whole result (`output`), said in words in
# `shape_text`; nothing is counted.

@register("to_tokens", "reshape")
class ToTokens(Layer):
    """Feature map to tokens: (C, *S) → (∏S, C), one token per position, as ViT's
    ``reshape(n, C, H·W).permute(0, 2, 1)`` after its patch convolution (a conv2d with
    kernel = stride = patch). Nothing counted."""

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        if len(shape) < 2:
            raise ValueError(f"expects a feature map (C, spatial…), got {fmt_shape(shape)}")
        return (numel(shape[1:]), shape[0])

    def shape_text(self) -> str:
        return "one token per position (the product of the spatial sizes), the channels as its features"


@register("to_image", "reshape")
class ToImage(Layer):
    """Tokens back to a feature map: (L, C) → (C, *size) with ∏size = L; without ``size`` the
    tokens must form a square (L = n²). Nothing counted."""

    size: Optional[Union[PosInt, tuple[PosInt, ...]]] = Field(None, description="spatial size, e.g. [14, 14]")

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        if len(shape) != 2:
            raise ValueError(f"expects tokens × channels (L, C), got {fmt_shape(shape)}")
        n, c = shape
        if self.size is None:
            side = isqrt(n)
            if side * side != n:
                raise ValueError(f"{n} tokens are not a square; give size")
            size: tuple = (side, side)
        else:
            size = (self.size,) if isinstance(self.size, int) else tuple(self.size)
        if prod(size) != n:
            raise ValueError(f"size {fmt_shape(size)} holds {prod(size)} positions, not the {n} tokens")
        return (c, *size)

    def shape_text(self) -> str:
        layout = "a square" if self.size is None else fmt_shape(
            (self.size,) if isinstance(self.size, int) else tuple(self.size))
        return f"the channels of the tokens, laid out as {layout}"


@register("select_token", "reshape")
class SelectToken(Layer):
    """Keeps one token (ViT's and BERT's class token at index 0; −1 for the last): (L, *F) →
    F. A slice: nothing counted."""

    index: Index = 0

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        n, _ = _tokens_by_features(shape)
        if not -n <= self.index < n:
            raise ValueError(f"index {self.index} is outside the {n} tokens")
        return tuple(shape[1:])

    def shape_text(self) -> str:
        return f"the features of token {str(self.index).replace('-', '−')}"


@register("token_mean", "token_mean")
class TokenMean(Layer):
    """Mean pooling over tokens: (L, *F) → F; per feature L − 1 additions and one division."""

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("add", "(L - 1) * F", "a sum over the L tokens per feature"),
        Q("div", "F", "one division per feature"),
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        n, f = _tokens_by_features(shape)
        return {"L": n, "F": f}

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        return tuple(shape[1:])

    def shape_text(self) -> str:
        return "one mean per feature"
