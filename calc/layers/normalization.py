"""Normalisation layers: batch, layer, group, local response and RMS norm.

Each quantity is declared once (see :mod:`calc.formula`). The symbols: ``x`` the input's element
count, ``C`` its channels, ``n`` the elements normalised together, ``G`` how many such groups a
sample has, and the flags ``affine`` (γ, and β where the layer has it), ``beta`` (layer norm's β: affine
and bias) and ``track_running_stats``."""

from typing import Any, ClassVar, Optional

from pydantic import Field, StrictBool

from ..formula import Q
from .. import shapes as S
from ..shapes import Shape, fmt_shape, numel
from .base import _LAYOUT, _PARAM_HINTS, Dim, Layer, PosInt, PosReal, Prob, Real, register, trailing_group


# ---------------------------------------------------------------------------- batch norm

class _BatchNormNd(Layer):
    """Batch normalisation in inference: per element (x of them) subtract the mean, divide by
    sqrt(var + eps) (one sqrt and one add per channel, C of them), then scale and shift when
    affine. γ and β are parameters; running mean and variance and the batch counter are buffers."""

    dims: ClassVar[int] = 2
    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    eps: PosReal = 1e-5
    momentum: Optional[Prob] = 0.1
    affine: StrictBool = True
    track_running_stats: StrictBool = True

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("weights", "C", "γ, one per channel", when="affine"),
        Q("biases", "C", "β, one per channel", key="bias", when="affine"),
        Q("buffers", "2 * C + 1", "running mean and variance per channel, and the batches seen",
          when="track_running_stats"),
        Q("add", "x * (1 + affine) + C", "per element: subtract the mean (and add β when affine); "
                                         "per channel: ε added to the variance"),
        Q("mul", "x", "multiply by γ", when="affine"),
        Q("div", "x", "divide by the standard deviation"),
        Q("sqrt", "C", "√(var + ε) once per channel"),
        Q("affine", "affine", fact=True),
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        # Per sample: PyTorch's BatchNorm1d takes (N, C) or (N, C, L), i.e. (C) or (C, L).
        ranks = (1, 2) if self.dims == 1 else (self.dims + 1,)
        if len(shape) not in ranks:
            want = " or ".join(f"{r}-d" for r in ranks)
            layout = "(C) or (C, L)" if self.dims == 1 else f"({_LAYOUT[self.dims]})"
            raise ValueError(f"expects a {want} input {layout}, got {fmt_shape(shape)}")
        return {"x": numel(shape), "C": shape[0], "affine": int(self.affine),
                "track_running_stats": int(self.track_running_stats)}


@register("batchnorm1d", "batchnorm")
class BatchNorm1d(_BatchNormNd):
    __doc__ = _BatchNormNd.__doc__
    dims: ClassVar[int] = 1


@register("batchnorm2d", "batchnorm")
class BatchNorm2d(_BatchNormNd):
    __doc__ = _BatchNormNd.__doc__
    dims: ClassVar[int] = 2


@register("batchnorm3d", "batchnorm")
class BatchNorm3d(_BatchNormNd):
    __doc__ = _BatchNormNd.__doc__
    dims: ClassVar[int] = 3


# ---------------------------------------------------------------------------- layer and group norm

# The arithmetic of normalising G groups of n elements each, as layer and group norm do it: per
# group the mean (n − 1 adds, 1 div), the variance (n subtractions, n squares, n − 1 adds,
# 1 div), ε (1 add), one square root and the normalisation (n subtractions, n divs); when
# affine, γ and β once per element (x = G·n).
_NORM_OPS = (
    Q("G", "x // n", "groups of n elements normalised together"),
    Q("add", "G * (4 * n - 1) + x * affine", "per group: mean n − 1, variance n + n − 1, ε 1, "
                                             "normalise n; affine adds β"),
    Q("mul", "G * n + x * affine", "per group: n squares; affine multiplies by γ"),
    Q("div", "G * (n + 2)", "per group: mean 1, variance 1, normalise n"),
    Q("sqrt", "G", "one per group"),
    Q("affine", "affine", fact=True),
)


@register("layernorm", "layernorm")
class LayerNorm(Layer):
    """Layer normalisation over the last ``normalized`` dimensions (PyTorch's LayerNorm), or,
    with ``channels: true``, over the channel dimension at every position (ConvNeXt's
    LayerNorm2d). n is the product of the normalised dimensions (C with ``channels: true``), and
    the x elements form G groups of n. Mean and variance per group, then normalise; affine adds
    γ and, unless ``bias`` is false, β."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    normalized: PosInt = Field(1, description="how many trailing dims are normalised together")
    channels: StrictBool = Field(False, description="normalise over dim 0 (channels-first maps)")
    eps: PosReal = 1e-5
    affine: StrictBool = True
    bias: StrictBool = True

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("weights", "n", "γ, one per normalised element", when="affine"),
        Q("biases", "n", "β, one per normalised element", key="bias", when="beta"),
        *_NORM_OPS,
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        if self.channels:
            if len(shape) < 2:
                raise ValueError(f"channels: true needs (C, …), got {fmt_shape(shape)}")
            n = shape[0]
        else:
            n = trailing_group(shape, self.normalized)
        return {"x": numel(shape), "n": n, "affine": int(self.affine), "beta": int(self.affine and self.bias)}


@register("groupnorm", "groupnorm")
class GroupNorm(Layer):
    """Group normalisation: channels split into ``groups``; mean and variance per group and
    sample (n = C/g channels × S positions each; the x elements form G = g groups of n); affine
    γ, β per channel."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    groups: PosInt
    eps: PosReal = 1e-5
    affine: StrictBool = True

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("weights", "C", "γ, one per channel", when="affine"),
        Q("biases", "C", "β, one per channel", key="bias", when="affine"),
        Q("n", "C // g * S", "channels per group × positions (S: the product of the dims after C)"),
        *_NORM_OPS,
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        if len(shape) < 1 or shape[0] % self.groups:
            raise ValueError(f"channels {shape[0] if shape else 0} are not divisible by groups={self.groups}")
        return {"x": numel(shape), "C": shape[0], "g": self.groups, "S": numel(shape[1:]),
                "affine": int(self.affine)}


# ---------------------------------------------------------------------------- local response norm

@register("local_response_norm", "lrn")
class LocalResponseNorm(Layer):
    """Local response normalisation across ``size`` neighbouring channels:
    b = a / (k + α/n · Σ a²)^β. Per element: 1 square, n−1 adds, 1 mul and 1 div for α/n,
    1 add for k, 1 pow, 1 div (x elements)."""

    size: PosInt
    alpha: Real = 1e-4
    beta: Real = 0.75
    k: Real = 1.0

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("mul", "2 * x", "a², and α/n times the sum"),
        Q("add", "size * x", "size − 1 to sum the squares, 1 to add k"),
        Q("div", "2 * x", "α/n, and a divided by the denominator"),
        Q("fn", "x", "the power β"),
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        if len(shape) < 2:
            raise ValueError(f"needs (C, …), got {fmt_shape(shape)}")
        return {"x": numel(shape), "size": self.size}


# ---------------------------------------------------------------------------- RMS norm

@register("rmsnorm", "rmsnorm")
class RMSNorm(Layer):
    """Root-mean-square normalisation over the last ``normalized`` dims (PyTorch's RMSNorm,
    Llama): a / sqrt(mean(a²) + eps) · γ over each group of n elements a, n the product of the
    normalised dims; x elements in G groups. Per group of n: n squares, n − 1 adds and one
    division for the mean, one add (eps), one sqrt, n divisions; affine: n multiplies."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    normalized: PosInt = Field(1, description="how many trailing dims are normalised together")
    eps: Optional[PosReal] = None
    affine: StrictBool = True

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("weights", "n", "γ, one per normalised element", when="affine"),
        Q("G", "x // n", "groups of n elements normalised together"),
        Q("mul", "x * (1 + affine)", "squares; affine multiplies by γ"),
        Q("add", "G * n", "per group: n − 1 to sum the squares, 1 for ε"),
        Q("div", "G * (n + 1)", "per group: the mean, and n normalising divisions"),
        Q("sqrt", "G", "one per group"),
        Q("affine", "affine", fact=True),
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        return {"x": numel(shape), "n": trailing_group(shape, self.normalized), "affine": int(self.affine)}


@register("normalize", "normalize")
class Normalize(Layer):
    """F.normalize (p = 2) along ``dim``: each vector of n elements divided by its Euclidean
    norm, floored at eps (a / max(‖a‖₂, eps); Swin V2's cosine attention); x elements in G
    vectors. Per vector: n squares, n − 1 adds, one sqrt, one comparison with eps, n divisions.
    No parameters."""

    hints: ClassVar[dict[str, tuple]] = {"call": ("functional",)}
    dim: Dim = -1
    eps: PosReal = 1e-12

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("G", "x // n", "vectors normalised, n the size of dim"),
        Q("mul", "x", "the squares"),
        Q("add", "G * (n - 1)", "per vector: the sum of its n squares"),
        Q("sqrt", "G", "one norm per vector"),
        Q("cmp", "G", "the norm floored at eps (clamp_min)"),
        Q("div", "x", "every element divided by its vector's norm"),
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        if not shape:
            raise ValueError("F.normalize needs at least one dimension")
        return {"x": numel(shape), "n": shape[S.normalize_dim(self.dim, len(shape))]}
