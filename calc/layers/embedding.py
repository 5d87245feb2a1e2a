"""Sequence plumbing: token embeddings, added (positional, type) embeddings, class tokens,
feature maps to tokens and back, token selection and mean."""

from math import isqrt, prod
from typing import ClassVar, Optional, Union

from pydantic import Field, model_validator

from ..formula import given, step
from ..shapes import fmt_shape, numel
from .base import (_PARAM_HINTS, Index, Layer, Params, PosInt, _times, _tokens_by_features, register)


# ---------------------------------------------------------------------------- embeddings

@register("embedding", "embedding")
class Embedding(Layer):
    """Token embedding: one row of a vocab × dim table per token id, (…) ids → (…, dim).
    A lookup copies a row; no arithmetic is counted (``lookups`` = rows read). Its weight may be
    shared with a linear layer through ``tie`` (a language-model head)."""

    takes_tokens: ClassVar[bool] = True
    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    vocab: PosInt = Field(description="vocabulary size (rows of the table)")
    dim: PosInt = Field(description="embedding dimension")
    padding_idx: Optional[Index] = Field(None, description="row kept at zero; still a parameter, as in PyTorch")
    formulas: ClassVar[dict[str, str]] = {
        "shape": "(…) token ids → (…, dim)",
        "params": "vocab · dim",
        "ops": "none: lookups = #tokens rows copied",
    }

    @model_validator(mode="after")
    def _padding_in_range(self):
        if self.padding_idx is not None and not -self.vocab <= self.padding_idx < self.vocab:
            raise ValueError(f"padding_idx {self.padding_idx} is outside the vocabulary of {self.vocab}")
        return self

    def infer(self, shape):
        return (*shape, self.dim)

    def params(self, shape):
        return Params(self.vocab * self.dim)

    def weight_shape(self, shape):
        return (self.vocab, self.dim)

    def ops(self, shape, out):
        return {"lookups": numel(shape)}

    def explain(self, shape, out):
        return [given(f"shape.{len(out) - 1}", "D", "dim", self.dim),
                step("weights", "weights", "v * d", v=("vocab", self.vocab), d=("dim", self.dim)),
                step("lookups", "lookups", "n", "one row copied per token id; no arithmetic",
                     n=("#ids", numel(shape)))]


class _AddedEmbedding(Layer):
    """A learned vector added to every token of a (L, *F) sequence."""

    rows_doc: ClassVar[str] = ""
    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS

    def _table_rows(self) -> int:
        raise NotImplementedError

    def infer(self, shape):
        _tokens_by_features(shape)
        return shape

    def params(self, shape):
        return Params(self._table_rows() * numel(shape[1:]))

    def ops(self, shape, out):
        n, f = _tokens_by_features(shape)
        return {"add": n * f, "positions": n}

    def explain(self, shape, out):
        n, f = _tokens_by_features(shape)
        rows = "max_len" if isinstance(self, PosEmbedding) else "types"
        sym = {"r": (rows, self._table_rows()), "f": ("F", f), "n": ("L", n)}
        return [given("shape", "output", "input (unchanged)", out),
                step("weights", "weights", "r * f", "the table", **sym),
                step("add", "add", "n * f", "one row added to every token", **sym)]


@register("pos_embedding", "added_embedding")
class PosEmbedding(_AddedEmbedding):
    """Learned absolute positional embedding (GPT-2's wpe, BERT's position embeddings, ViT's
    pos_embedding): row i of a max_len × F table is added to token i. One addition per element;
    the sequence may not be longer than the table."""

    max_len: PosInt = Field(description="rows of the table: the longest sequence it can take")
    formulas: ClassVar[dict[str, str]] = {
        "shape": "(L, F) → (L, F), L ≤ max_len",
        "params": "max_len · F",
        "add": "L · F",
    }

    def _table_rows(self):
        return self.max_len

    def infer(self, shape):
        n, _ = _tokens_by_features(shape)
        if n > self.max_len:
            raise ValueError(f"the sequence has {n} positions but the table has max_len={self.max_len} "
                             "(a longer context needs a larger table: raise max_len)")
        return shape


@register("type_embedding", "added_embedding")
class TypeEmbedding(_AddedEmbedding):
    """Token-type (segment) embedding, as in BERT: the type ids come with the input, one per
    token; the row of each token's type is added to it. One addition per element."""

    types: PosInt = Field(2, description="number of token types (rows of the table)")
    formulas: ClassVar[dict[str, str]] = {"shape": "(L, F) → (L, F)", "params": "types · F", "add": "L · F"}

    def _table_rows(self):
        return self.types


@register("class_token", "class_token")
class ClassToken(Layer):
    """Prepends ``count`` learned tokens (ViT's class token; 2 for DeiT's class and
    distillation tokens): (L, *F) → (L + count, *F). A copy: nothing counted."""

    count: PosInt = 1
    formulas: ClassVar[dict[str, str]] = {"shape": "(L, F) → (L + count, F)", "params": "count · F"}

    def infer(self, shape):
        _tokens_by_features(shape)
        return (shape[0] + self.count, *shape[1:])

    def params(self, shape):
        return Params(self.count * numel(shape[1:]))

    def explain(self, shape, out):
        sym = {"n": ("L", shape[0]), "c": ("count", self.count), "f": ("F", numel(shape[1:]))}
        return [step("shape.0", "L_out", "n + c", "learned tokens prepended; a copy, nothing counted", **sym),
                step("weights", "weights", "c * f", **sym)]


# ---------------------------------------------------------------------------- tokens and images

@register("to_tokens", "reshape")
class ToTokens(Layer):
    """Feature map to tokens: (C, *S) → (∏S, C), one token per position, as ViT's
    ``reshape(n, C, H·W).permute(0, 2, 1)`` after its patch convolution (a conv2d with
    kernel = stride = patch). Nothing counted."""

    formulas: ClassVar[dict[str, str]] = {"shape": "(C, H, W) → (H·W, C)"}

    def infer(self, shape):
        if len(shape) < 2:
            raise ValueError(f"expects a feature map (C, spatial…), got {fmt_shape(shape)}")
        return (numel(shape[1:]), shape[0])

    def explain(self, shape, out):
        return [step("shape.0", "L", _times("s", len(shape) - 1), "one token per position",
                     **{f"s{i}": (f"S_{i + 1}", v) for i, v in enumerate(shape[1:])}),
                given("shape.1", "C", "C_in", shape[0])]


@register("to_image", "reshape")
class ToImage(Layer):
    """Tokens back to a feature map: (L, C) → (C, *size) with ∏size = L; without ``size`` the
    tokens must form a square (L = n²). Nothing counted."""

    size: Optional[Union[PosInt, tuple[PosInt, ...]]] = Field(None, description="spatial size, e.g. [14, 14]")
    formulas: ClassVar[dict[str, str]] = {"shape": "(L, C) → (C, *size), ∏size = L"}

    def infer(self, shape):
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

    def explain(self, shape, out):
        return [given("shape", "output", f"the {shape[1]} channels of {shape[0]} tokens laid out as "
                      f"{fmt_shape(out[1:])}", out)]


@register("select_token", "reshape")
class SelectToken(Layer):
    """Keeps one token (ViT's and BERT's class token at index 0; −1 for the last): (L, *F) →
    F. A slice: nothing counted."""

    index: Index = 0
    formulas: ClassVar[dict[str, str]] = {"shape": "(L, F) → (F,)"}

    def infer(self, shape):
        n, _ = _tokens_by_features(shape)
        if not -n <= self.index < n:
            raise ValueError(f"index {self.index} is outside the {n} tokens")
        return tuple(shape[1:])

    def explain(self, shape, out):
        return [given("shape", "output", f"token {self.index} of {shape[0]}", out)]


@register("token_mean", "token_mean")
class TokenMean(Layer):
    """Mean pooling over tokens: (L, *F) → F; per feature L − 1 additions and one division."""

    formulas: ClassVar[dict[str, str]] = {"shape": "(L, F) → (F,)", "add": "(L − 1) · F", "div": "F"}

    def infer(self, shape):
        _tokens_by_features(shape)
        return tuple(shape[1:])

    def ops(self, shape, out):
        n, f = _tokens_by_features(shape)
        return {"add": (n - 1) * f, "div": f}

    def explain(self, shape, out):
        n, f = _tokens_by_features(shape)
        sym = {"n": ("L", n), "f": ("F", f)}
        return [given("shape", "output", "one mean per feature", out),
                step("add", "add", "(n - 1) * f", "a sum over the L tokens per feature", **sym),
                step("div", "div", "f", "one division per feature", **sym)]
