"""Layers of sequence models: embeddings, token handling, attention, RMS norm, recurrent layers.

They register into the one registry of :mod:`calc.layers` (which imports this module) and follow
its rules: frozen pydantic models, per-sample shapes, an honest ``ops`` breakdown.

A sequence is ``(L, D)`` per sample: L tokens (positions) of D features. A model whose input is
token ids says ``input_kind: tokens``; its input shape is then a :class:`calc.shapes.Tokens`,
which only a token ``embedding`` accepts.
"""

from math import isqrt, prod
from typing import Annotated, ClassVar, Literal, Optional, Union

from pydantic import BeforeValidator, Field, StrictBool, model_validator

from .formula import given, step
from .layers import (_PARAM_HINTS, trailing_group, LAYERS, MAX_SIZE, NO_PARAMS, Layer, Params, PosInt, PosReal, _elements,
                     _no_bool, _times, register)
from .shapes import Shape, fmt_shape, numel

Index = Annotated[int, BeforeValidator(_no_bool), Field(ge=-MAX_SIZE, le=MAX_SIZE)]


def _tokens_by_features(shape: Shape, what: str = "tokens × features (L, D)") -> tuple[int, int]:
    """(L, ∏F) of a (L, *F) sequence; refuses anything of rank < 2."""
    if len(shape) < 2:
        raise ValueError(f"expects {what}, got {fmt_shape(shape)}")
    return shape[0], numel(shape[1:])


def _scaled(per_element: dict[str, int], n: int) -> dict[str, int]:
    return {k: v * n for k, v in per_element.items()}


def _merge(*parts: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in parts:
        for k, v in part.items():
            out[k] = out.get(k, 0) + v
    return out


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


# ---------------------------------------------------------------------------- RMS norm

@register("rmsnorm", "rmsnorm")
class RMSNorm(Layer):
    """Root-mean-square normalisation over the last ``normalized`` dims (PyTorch's RMSNorm,
    Llama): x / sqrt(mean(x²) + eps) · γ. Per group of n: n squares, n − 1 adds and one
    division for the mean, one add (eps), one sqrt, n divisions; affine: n multiplies."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    normalized: PosInt = Field(1, description="how many trailing dims are normalised together")
    eps: Optional[PosReal] = None
    affine: StrictBool = True
    formulas: ClassVar[dict[str, str]] = {
        "params": "n if affine (γ), n = ∏ normalised dims",
        "ops": "per group of n: mul n (+n if affine), add n, div n + 1, sqrt 1",
    }

    def _group(self, shape) -> int:
        return trailing_group(shape, self.normalized)

    def infer(self, shape):
        self._group(shape)
        return shape

    def params(self, shape):
        return Params(self._group(shape)) if self.affine else NO_PARAMS

    def ops(self, shape, out):
        n = self._group(shape)
        x = numel(shape)
        groups = x // n
        return {"mul": x * (2 if self.affine else 1), "add": groups * n, "div": groups * (n + 1),
                "sqrt": groups, "affine": int(self.affine)}

    def explain(self, shape, out):
        self._group(shape)
        dims = shape[len(shape) - self.normalized:]
        n_step = step("n", "n", _times("d", len(dims)), "the last normalised dims",
                      **{f"d{i}": (f"n_{i + 1}", d) for i, d in enumerate(dims)})
        sym = {"x": _elements(shape), "n": ("n", n_step.value), "a": ("affine", int(self.affine))}
        groups = step("groups", "G", "x // n", "groups of n elements normalised together", **sym)
        sym["G"] = ("G", groups.value)
        steps = [given("shape", "output", "input (unchanged)", out), n_step, groups]
        if self.affine:
            steps.append(given("weights", "weights", "n (γ)", n_step.value))
        return steps + [
            step("mul", "mul", "x * (1 + a)", "squares; affine multiplies by γ", **sym),
            step("add", "add", "G * n", "per group: n − 1 to sum the squares, 1 for eps", **sym),
            step("div", "div", "G * (n + 1)", "per group: the mean, and n normalising divisions", **sym),
            step("sqrt", "sqrt", "G", "one per group", **sym)]


# ---------------------------------------------------------------------------- attention

def _visible_pairs(q_len: int, kv_len: int) -> int:
    """Query/key pairs a causal mask keeps: row i sees keys 0..i (PyTorch's is_causal, aligned
    top-left), i.e. Σ_{i<L} min(i + 1, S)."""
    if q_len <= kv_len:
        return q_len * (q_len + 1) // 2
    return kv_len * (kv_len + 1) // 2 + (q_len - kv_len) * kv_len


@register("attention", "attention")
class Attention(Layer):
    """Multi-head attention on (L, D) tokens, with its projections: Q = x·W_q, K = m·W_k,
    V = m·W_v (m = x for self attention, the output named by ``kv`` for cross attention),
    per head softmax(Q·Kᵀ/√d)·V, heads concatenated, output projection. ``kv_heads`` below
    ``heads`` gives grouped-query attention (1: multi-query): K and V have kv_heads heads, each
    shared by heads/kv_heads query heads.

    Counted: the four projections and both attention matmuls (Q·Kᵀ and attention·V) as MACs;
    projection biases as ``bias_add``; the scaling by 1/√d as one ``mul`` per score; the
    softmax as ``exp``, ``add`` and ``div`` per score (as the softmax layer); a causal mask as
    one ``add`` (of −∞) per score. Causal masking changes none of the MACs: dense kernels compute
    the full L × S score matrix and the full attention·V product. The facts ``masked`` (masked
    scores) and ``masked_mac`` (2·d MACs per masked score) let a convention discount them; no
    bundled convention does."""

    heads: PosInt = Field(description="query heads")
    head_dim: Optional[PosInt] = Field(None, description="features per head (default D / heads)")
    kv_heads: Optional[PosInt] = Field(None, description="key/value heads (default heads; 1 = multi-query)")
    kv: Optional[str] = Field(None, description="name of an earlier output: keys and values come from it "
                                                "(cross attention); default: self attention")
    out: Optional[PosInt] = Field(None, description="output features (default D)")
    bias: StrictBool = Field(True, description="biases of the Q, K and V projections")
    out_bias: Optional[StrictBool] = Field(None, description="bias of the output projection (default: bias)")
    packed: StrictBool = Field(False, description="Q, K, V projected by one packed matrix (PyTorch's "
                                                  "in_proj_weight, GPT-2's c_attn); the counts are the same")
    causal: StrictBool = False
    # The tool presets model nn.MultiheadAttention called as a module (see calc.conventions).
    hints: ClassVar[dict[str, tuple]] = {"call": ("module",), "owner": ("leaf", "container")}

    formulas: ClassVar[dict[str, str]] = {
        "shape": "(L, D) → (L, out); keys/values (S, D_kv) from the flow or kv; h heads, g = kv_heads, d = head_dim",
        "params": "D·h·d + 2·D_kv·g·d + h·d·out + bias·(h·d + 2·g·d) + out_bias·out",
        "mac": "projections L·D·h·d + 2·S·D_kv·g·d + L·h·d·out, plus Q·Kᵀ h·L·S·d and attention·V h·L·S·d "
               "(causal masking changes no MAC: dense kernels compute the full matrices)",
        "bias_add": "bias·(L·h·d + 2·S·g·d) + out_bias·L·out",
        "softmax": "per score (h·L·S): 1 mul (1/√d), 1 exp, 1 div; h·L·(S − 1) add; causal: +1 add (mask)",
        "facts": "proj_mac, attn_mac, masked = h·(L·S − visible pairs), masked_mac = 2·d·masked",
    }

    def refs(self):
        return (self.kv,) if self.kv else ()

    def _dims(self, q: Shape, m: Shape):
        for s, what in ((q, "input"), (m, f"key/value source '{self.kv}'")):
            if len(s) != 2:
                raise ValueError(f"the {what} must be tokens × features (L, D), got {fmt_shape(s)}")
        (n, dim), (s_len, kv_dim) = q, m
        h, g = self.heads, self.kv_heads or self.heads
        if h % g:
            raise ValueError(f"heads={h} is not a multiple of kv_heads={g}")
        if self.head_dim is None:
            if dim % h:
                raise ValueError(f"{dim} features are not divisible by heads={h}; give head_dim")
            d = dim // h
        else:
            d = self.head_dim
        return n, dim, s_len, kv_dim, h, g, d, self.out or dim

    def _out_bias(self) -> bool:
        return self.bias if self.out_bias is None else self.out_bias

    def infer(self, shape):
        return self.infer_many([shape])

    def infer_many(self, shapes):
        n, *_, o = self._dims(shapes[0], shapes[-1])
        return (n, o)

    def params(self, shape):
        return self.params_many([shape])

    def params_many(self, shapes):
        n, dim, s_len, kv_dim, h, g, d, o = self._dims(shapes[0], shapes[-1])
        weights = dim * h * d + 2 * kv_dim * g * d + h * d * o
        bias = (h * d + 2 * g * d if self.bias else 0) + (o if self._out_bias() else 0)
        return Params(weights, bias)

    def ops(self, shape, out):
        return self.ops_many([shape], out)

    def ops_many(self, shapes, out):
        n, dim, s_len, kv_dim, h, g, d, o = self._dims(shapes[0], shapes[-1])
        proj = n * dim * h * d + 2 * s_len * kv_dim * g * d + n * h * d * o
        scores = h * n * s_len                 # entries of the score matrices
        attn = 2 * scores * d                  # Q·Kᵀ and attention·V
        masked = h * (n * s_len - _visible_pairs(n, s_len)) if self.causal else 0
        bias_add = (n * h * d + 2 * s_len * g * d if self.bias else 0) + (n * o if self._out_bias() else 0)
        return {
            "mac": proj + attn,
            "dots": n * h * d + 2 * s_len * g * d + n * o + scores + n * h * d,
            "bias_add": bias_add,
            "mul": scores,
            "exp": scores,
            "add": h * n * (s_len - 1) + (scores if self.causal else 0),
            "div": scores,
            "rows": h * n,
            "proj_mac": proj, "attn_mac": attn, "masked": masked, "masked_mac": 2 * d * masked,
            "q_len": n, "kv_len": s_len, "dim": dim, "kv_dim": kv_dim, "heads": h, "kv_heads": g,
            "head_dim": d, "out_dim": o, "packed": int(self.packed), "causal": int(self.causal),
            "cross": int(self.kv is not None), "qkv_bias": int(self.bias), "has_out_bias": int(self._out_bias()),
        }

    def explain(self, shape, out):
        return self.explain_many([shape], out)

    def explain_many(self, shapes, out):
        n, dim, s_len, kv_dim, h, g, d, o = self._dims(shapes[0], shapes[-1])
        sym = {"L": ("L", n), "D": ("D", dim), "S": ("S", s_len), "E": ("D_kv", kv_dim), "h": ("h", h),
               "g": ("g", g), "d": ("d", d), "o": ("out", o), "b": ("bias", int(self.bias)),
               "ob": ("out_bias", int(self._out_bias()))}
        f = self.ops_many(shapes, out)
        steps = [given("shape.0", "L", "query tokens", n), given("shape.1", "out", "out (default D)", o),
                 step("weights", "weights", "D * h * d + 2 * E * g * d + h * d * o",
                      "W_q, W_k, W_v and the output projection", **sym),
                 step("bias", "bias", "(h * d + 2 * g * d) * b + o * ob", **sym),
                 step("params", "params", "D * h * d + 2 * E * g * d + h * d * o + (h * d + 2 * g * d) * b + o * ob",
                      **sym),
                 step("proj_mac", "proj_mac", "L * D * h * d + 2 * S * E * g * d + L * h * d * o",
                      "Q from the L queries, K and V from the S keys, the output projection", **sym),
                 step("attn_mac", "attn_mac", "2 * h * L * S * d", "Q·Kᵀ and attention·V, h heads", **sym)]
        sym.update(p=("proj_mac", f["proj_mac"]), a=("attn_mac", f["attn_mac"]), c=("causal", int(self.causal)))
        steps += [step("mac", "mac", "p + a", "causal masking changes no MAC", **sym),
                  step("bias_add", "bias_add", "(L * h * d + 2 * S * g * d) * b + L * o * ob", **sym),
                  step("mul", "mul", "h * L * S", "the 1/√d scaling of every score", **sym),
                  step("exp", "exp", "h * L * S", "softmax", **sym),
                  step("add", "add", "h * L * (S - 1) + c * h * L * S", "softmax sums (and the causal mask)", **sym),
                  step("div", "div", "h * L * S", "softmax", **sym)]
        if self.causal:
            steps.append(given("masked", "masked", "h·(L·S − visible pairs)", f["masked"]))
        return steps


# ---------------------------------------------------------------------------- recurrent layers

class _Recurrent(Layer):
    """A stack of recurrent layers over a (L, I) sequence (PyTorch's layout: per layer and
    direction W_ih (G·H × I_l), W_hh (G·H × H), b_ih and b_hh (G·H each); I_0 = I, later
    layers read H·dirs). Counted per time step, times L: the two matmuls W_ih·x and W_hh·h as
    MACs (the zero initial state included, as dense kernels do), both bias vectors, and the
    gate arithmetic below."""

    gates: ClassVar[int] = 1
    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    hidden: PosInt = Field(description="hidden size H")
    num_layers: PosInt = 1
    bidirectional: StrictBool = False
    bias: StrictBool = Field(True, description="b_ih and b_hh in every layer")
    in_: Optional[PosInt] = Field(None, alias="in", description="input features (checked if given)")

    def _sizes(self, shape) -> list[int]:
        if len(shape) != 2:
            raise ValueError(f"expects time steps × features (L, I), got {fmt_shape(shape)}")
        if self.in_ is not None and self.in_ != shape[1]:
            raise ValueError(f"states in={self.in_} but receives {shape[1]} features")
        return [shape[1]] + [self.hidden * self._dirs()] * (self.num_layers - 1)

    def _dirs(self) -> int:
        return 2 if self.bidirectional else 1

    def _cell_ops(self) -> dict[str, int]:
        """Element-wise operations of one step of one direction, besides matmuls and biases."""
        raise NotImplementedError

    def infer(self, shape):
        self._sizes(shape)
        return (shape[0], self.hidden * self._dirs())

    def params(self, shape):
        gh, dirs = self.gates * self.hidden, self._dirs()
        weights = dirs * sum(gh * (i + self.hidden) for i in self._sizes(shape))
        return Params(weights, dirs * self.num_layers * 2 * gh if self.bias else 0)

    def ops(self, shape, out):
        sizes = self._sizes(shape)
        steps, gh, dirs, hid = shape[0], self.gates * self.hidden, self._dirs(), self.hidden
        cells = self.num_layers * dirs
        w_ih = dirs * sum(gh * i for i in sizes)
        w_hh = cells * gh * hid
        return {
            "mac": steps * (w_ih + w_hh),
            "dots": steps * cells * 2 * gh,
            "bias_add": steps * cells * 2 * gh if self.bias else 0,
            **_scaled(self._cell_ops(), steps * cells),
            "steps": steps, "hidden": hid, "input_size": shape[1], "num_layers": self.num_layers,
            "dirs": dirs, "cells": cells, "gates": self.gates, "w_ih": w_ih, "w_hh": w_hh,
        }

    def explain(self, shape, out):
        sym = {"L": ("L", shape[0]), "I": ("I", shape[1]), "H": ("H", self.hidden), "G": ("G", self.gates),
               "k": ("dirs", self._dirs()), "m": ("layers", self.num_layers)}
        weights = "k * G * H * (I + H) + (m - 1) * k * G * H * (H * k + H)"
        steps = [given("shape.0", "L", "steps", shape[0]), step("shape.1", "H_out", "H * k", **sym),
                 step("weights", "weights", weights, "W_ih and W_hh per layer and direction; later layers read H·dirs",
                      **sym)]
        if self.bias:
            steps += [step("bias", "bias", "m * k * 2 * G * H", "b_ih and b_hh", **sym),
                      step("params", "params", f"{weights} + m * k * 2 * G * H", **sym)]
        steps += [step("mac", "mac", "L * k * G * H * (I + (m - 1) * H * k + m * H)",
                       "W_ih·x and W_hh·h at every step, per layer and direction", **sym)]
        if self.bias:
            steps.append(step("bias_add", "bias_add", "L * m * k * 2 * G * H", "both bias vectors every step", **sym))
        for key, value in self._cell_ops().items():
            steps.append(step(key, key, "L * m * k * v", "per step, layer and direction",
                              v=(f"{key} per cell", value), **sym))
        return steps


_FORMULA_COMMON = {
    "shape": "(L, I) → (L, H·dirs)",
    "params": "dirs · Σ_l G·H·(I_l + H)  +  bias · dirs · layers · 2·G·H   (I_0 = I, I_l = H·dirs)",
    "mac": "L · dirs · Σ_l G·H·(I_l + H)",
    "bias_add": "L · dirs · layers · 2·G·H if bias",
}


def _sig(n):
    return _scaled(LAYERS["sigmoid"].per_element, n)


def _tanh(n):
    return _scaled(LAYERS["tanh"].per_element, n)


@register("rnn", "recurrent")
class RNN(_Recurrent):
    __doc__ = ("Elman RNN: h' = act(W_ih·x + b_ih + W_hh·h + b_hh), G = 1. Per step and direction: "
               "H adds (the two products) and the nonlinearity (tanh or relu) on H values. "
               + _Recurrent.__doc__)
    gates: ClassVar[int] = 1
    nonlinearity: Literal["tanh", "relu"] = "tanh"
    formulas: ClassVar[dict[str, str]] = {**_FORMULA_COMMON, "G": "1",
                                          "per step": "add H; tanh on H (or relu: cmp H)"}

    def _cell_ops(self):
        h = self.hidden
        act = _tanh(h) if self.nonlinearity == "tanh" else {"cmp": h}
        return _merge({"add": h}, act)


@register("lstm", "recurrent")
class LSTM(_Recurrent):
    __doc__ = ("LSTM, gates i, f, g, o (G = 4): c' = f⊙c + i⊙g, h' = o⊙tanh(c'). Per step and "
               "direction: 4H adds (the two products), sigmoid on 3H, tanh on H (g) and on H (c'), "
               "3H multiplies and H adds. " + _Recurrent.__doc__)
    gates: ClassVar[int] = 4
    formulas: ClassVar[dict[str, str]] = {**_FORMULA_COMMON, "G": "4",
                                          "per step": "add 4H + H; mul 3H; sigmoid on 3H; tanh on 2H"}

    def _cell_ops(self):
        h = self.hidden
        return _merge({"add": 4 * h}, _sig(3 * h), _tanh(h), {"mul": 2 * h, "add": h}, _tanh(h), {"mul": h})


@register("gru", "recurrent")
class GRU(_Recurrent):
    __doc__ = ("GRU, gates r, z, n (G = 3): n = tanh(W_in·x + b_in + r⊙(W_hn·h + b_hn)), "
               "h' = (1 − z)⊙n + z⊙h. Per step and direction: 2H adds (r and z products), sigmoid "
               "on 2H, H multiplies and H adds for n, tanh on H, then H subtractions, 2H multiplies "
               "and H adds. " + _Recurrent.__doc__)
    gates: ClassVar[int] = 3
    formulas: ClassVar[dict[str, str]] = {**_FORMULA_COMMON, "G": "3",
                                          "per step": "add 2H + H + 2H; mul 3H; sigmoid on 2H; tanh on H"}

    def _cell_ops(self):
        h = self.hidden
        return _merge({"add": 2 * h}, _sig(2 * h), {"mul": h, "add": h}, _tanh(h),
                      {"add": 2 * h, "mul": 2 * h})
