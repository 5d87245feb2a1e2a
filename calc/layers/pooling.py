"""Pooling (max, average, adaptive, global) and resampling (upsample)."""

from typing import Any, ClassVar, Literal, Optional, Union

from pydantic import Field, StrictBool, field_validator

from ..formula import Q
from ..shapes import Shape, fmt_shape, numel
from .base import _LAYOUT, MAX_SIZE, Layer, PadArg, PosInt, PosReal, SizeArg, _dim_names, _rank, _tuple, register


def _product(names) -> str:
    return " * ".join(names)


def _names(dims: int) -> list[tuple[str, str]]:
    """(H, h) for each spatial dimension: symbols are named after it (H_in, K_h, s_h …)."""
    return [(n, n.lower()) for n in _dim_names(dims)]


# ---------------------------------------------------------------------------- pooling

class _PoolNd(Layer):
    dims: ClassVar[int] = 2
    kernel: SizeArg
    stride: Optional[SizeArg] = Field(None, description="defaults to the kernel")
    padding: PadArg = 0
    ceil_mode: StrictBool = False

    @field_validator("kernel", "stride", "padding", mode="after")
    @classmethod
    def _per_dim(cls, value, info):
        return None if value is None else _tuple(value, cls.dims, info.field_name)

    # -- declarations
    @classmethod
    def _reach(cls, n: str, low: str) -> str:
        """How far windows can start past the first one: the padded input less the window."""
        raise NotImplementedError

    @classmethod
    def _window_ops(cls, kernel: str) -> tuple[Q, ...]:
        raise NotImplementedError

    @classmethod
    def declare(cls):
        names = _names(cls.dims)
        shape = []
        for i, (n, low) in enumerate(names):
            reach = cls._reach(n, low)
            shape += [
                Q(f"{n}_ceil", f"ceil(({reach}) / s_{low}) + 1",
                  "ceil_mode rounds up, but the last window must start inside the input or its left padding",
                  key=f"ceil.{i + 1}", when="ceil_mode"),
                Q(f"{n}_out", f"({n}_ceil - 1 if ({n}_ceil - 1) * s_{low} >= {n}_in + p_{low} else {n}_ceil) "
                              f"if ceil_mode else floor(({reach}) / s_{low}) + 1", key=f"shape.{i + 1}"),
            ]
        return (*shape,
                Q("outputs", "C * " + _product(f"{n}_out" for n, _ in names), "output elements"),
                *cls._window_ops(_product(f"K_{low}" for _, low in names)))

    def _dilation(self) -> tuple[int, ...]:
        return (1,) * self.dims

    def given(self, shape: Shape) -> dict[str, Any]:
        _rank(shape, self.dims + 1, self.type_name, _LAYOUT[self.dims])
        stride = self.stride or self.kernel
        dilation = self._dilation()
        for k, p in zip(self.kernel, self.padding):
            if p > k // 2:
                raise ValueError(f"padding {p} is more than half the kernel {k} (PyTorch refuses it)")
        v = {"C": shape[0], "ceil_mode": int(self.ceil_mode)}
        # the symbol names of each dimension, made once per class (this is on the hot path)
        keys = self.__class__.__dict__.get("_dim_keys")
        if keys is None:
            keys = tuple((f"{n}_in", f"K_{low}", f"s_{low}", f"p_{low}", f"d_{low}") for n, low in _names(self.dims))
            type(self)._dim_keys = keys
        for i, (n_in, k_, s_, p_, d_) in enumerate(keys):
            n, k, s, p, d = shape[i + 1], self.kernel[i], stride[i], self.padding[i], dilation[i]
            span = d * (k - 1) + 1
            # No window at all: in floor mode when the window outgrows the padded input; in ceil
            # mode only when even rounding up leaves no start (PyTorch then keeps one window that
            # is longer than the padded input).
            room = n + 2 * p - span
            if room < 0 and (not self.ceil_mode or room <= -s):
                raise ValueError(f"window {span} is larger than the padded input {n + 2 * p} "
                                 f"(in + 2p with in={n}, p={p})")
            v[n_in], v[k_], v[s_], v[p_], v[d_] = n, k, s, p, d
        return v


class _MaxPoolNd(_PoolNd):
    """Max pooling: ``∏k − 1`` comparisons per output element."""

    dilation: SizeArg = 1

    @field_validator("dilation", mode="after")
    @classmethod
    def _per_dim_d(cls, value, info):
        return _tuple(value, cls.dims, info.field_name)

    @classmethod
    def _reach(cls, n, low):
        return f"{n}_in + 2 * p_{low} - d_{low} * (K_{low} - 1) - 1"

    @classmethod
    def _window_ops(cls, kernel):
        return (Q("cmp", f"outputs * ({kernel} - 1)", "a window of ∏K values needs ∏K − 1 comparisons"),)

    def _dilation(self):
        return self.dilation


@register("maxpool1d", "maxpool")
class MaxPool1d(_MaxPoolNd):
    __doc__ = _MaxPoolNd.__doc__
    dims: ClassVar[int] = 1


@register("maxpool2d", "maxpool")
class MaxPool2d(_MaxPoolNd):
    __doc__ = _MaxPoolNd.__doc__
    dims: ClassVar[int] = 2


@register("maxpool3d", "maxpool")
class MaxPool3d(_MaxPoolNd):
    __doc__ = _MaxPoolNd.__doc__
    dims: ClassVar[int] = 3


class _AvgPoolNd(_PoolNd):
    """Average pooling: ``∏k − 1`` additions and one division per output element."""

    count_include_pad: StrictBool = True

    @classmethod
    def _reach(cls, n, low):
        return f"{n}_in + 2 * p_{low} - K_{low}"

    @classmethod
    def _window_ops(cls, kernel):
        return (Q("add", f"outputs * ({kernel} - 1)", "∏K − 1 adds per window"),
                Q("div", "outputs", "one division per output element"))

    def given(self, shape: Shape) -> dict[str, Any]:
        v = super().given(shape)
        if self.dims == 3 and any(n < k for n, k in zip(shape[1:], self.kernel)):
            # PyTorch's avg_pool3d (unlike 1-d, 2-d and max pooling) checks the unpadded input.
            raise ValueError(f"input {fmt_shape(shape[1:])} is smaller than the kernel "
                             f"{fmt_shape(self.kernel)} (PyTorch's avg_pool3d refuses it, padding or not)")
        return v


@register("avgpool1d", "avgpool")
class AvgPool1d(_AvgPoolNd):
    __doc__ = _AvgPoolNd.__doc__
    dims: ClassVar[int] = 1


@register("avgpool2d", "avgpool")
class AvgPool2d(_AvgPoolNd):
    __doc__ = _AvgPoolNd.__doc__
    dims: ClassVar[int] = 2


@register("avgpool3d", "avgpool")
class AvgPool3d(_AvgPoolNd):
    __doc__ = _AvgPoolNd.__doc__
    dims: ClassVar[int] = 3


# ---------------------------------------------------------------------------- adaptive pooling

class _AdaptivePoolNd(Layer):
    dims: ClassVar[int] = 2
    size: Union[PosInt, tuple[Optional[PosInt], ...]] = Field(
        description="output size: one int or one per spatial dim (null keeps that dim)")

    @field_validator("size", mode="after")
    @classmethod
    def _per_dim(cls, value, info):
        return _tuple(value, cls.dims, "size")

    @classmethod
    def _bin_ops(cls) -> tuple[Q, ...]:
        raise NotImplementedError

    @classmethod
    def declare(cls):
        names = _names(cls.dims)
        # Σ over output positions of the window size = ∏ over dims of Σ bin lengths, and the bins
        # of one dim sum to in + out − gcd(in, out) (neighbours overlap when out does not divide in).
        windows = "C * " + _product(f"({n}_in + {n}_out - gcd({n}_in, {n}_out))" for n, _ in names)
        return (
            *(Q(f"{n}_out", f"{n}_in if keep_{low} else size_{low}", key=f"shape.{i + 1}")
              for i, (n, low) in enumerate(names)),
            Q("outputs", "C * " + _product(f"{n}_out" for n, _ in names), "output elements"),
            Q("windows", windows, "the bin sizes summed over the outputs: PyTorch's bins [floor(i·in/out), "
                                  "ceil((i+1)·in/out)) of one dimension sum to in + out − gcd(in, out)"),
            *cls._bin_ops(),
        )

    def given(self, shape: Shape) -> dict[str, Any]:
        _rank(shape, self.dims + 1, self.type_name, _LAYOUT[self.dims])
        v = {"C": shape[0]}
        keys = self.__class__.__dict__.get("_dim_keys")
        if keys is None:
            keys = tuple((f"{n}_in", f"size_{low}", f"keep_{low}") for n, low in _names(self.dims))
            type(self)._dim_keys = keys
        for i, (n_in, size, keep) in enumerate(keys):
            o = self.size[i]
            v[n_in], v[size], v[keep] = shape[i + 1], o or 0, int(o is None)
        return v


class _AdaptiveAvgPoolNd(_AdaptivePoolNd):
    """Adaptive average pooling: per output element, (its bin size − 1) additions and one
    division; PyTorch's bins are [floor(i·in/out), ceil((i+1)·in/out)). A null size keeps its
    dimension (``keep_l``, ``keep_h`` … is 1 there)."""

    @classmethod
    def _bin_ops(cls):
        return (Q("add", "windows - outputs", "(bin size − 1) adds per output element"),
                Q("div", "outputs", "one division per output element"))


@register("adaptive_avgpool1d", "adaptive_avgpool")
class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    __doc__ = _AdaptiveAvgPoolNd.__doc__
    dims: ClassVar[int] = 1


@register("adaptive_avgpool2d", "adaptive_avgpool")
class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    __doc__ = _AdaptiveAvgPoolNd.__doc__
    dims: ClassVar[int] = 2


@register("adaptive_avgpool3d", "adaptive_avgpool")
class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    __doc__ = _AdaptiveAvgPoolNd.__doc__
    dims: ClassVar[int] = 3


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    """Adaptive max pooling: per output element, (its bin size − 1) comparisons. A null size
    keeps its dimension (``keep_l``, ``keep_h`` … is 1 there)."""

    @classmethod
    def _bin_ops(cls):
        return (Q("cmp", "windows - outputs", "(bin size − 1) comparisons per output element"),)


@register("adaptive_maxpool1d", "adaptive_maxpool")
class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    __doc__ = _AdaptiveMaxPoolNd.__doc__
    dims: ClassVar[int] = 1


@register("adaptive_maxpool2d", "adaptive_maxpool")
class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    __doc__ = _AdaptiveMaxPoolNd.__doc__
    dims: ClassVar[int] = 2


@register("adaptive_maxpool3d", "adaptive_maxpool")
class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    __doc__ = _AdaptiveMaxPoolNd.__doc__
    dims: ClassVar[int] = 3


# ---------------------------------------------------------------------------- global pooling

class _GlobalPool(Layer):
    """Reduces every dimension after the first (channels); any rank from 2 up, so the output
    shape is assembled in :meth:`output`. Symbols: ``C`` channels, ``S`` the product of the
    other sizes, ``d`` their number."""

    hints: ClassVar[dict[str, tuple]] = {"call": ("module", "functional", "method")}
    keepdim: StrictBool = False

    def given(self, shape: Shape) -> dict[str, Any]:
        if len(shape) < 2:
            raise ValueError(f"needs a channel dimension and at least one more, got {fmt_shape(shape)}")
        return {"C": shape[0], "S": numel(shape[1:]), "d": len(shape) - 1}

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        return (shape[0], *([1] * (len(shape) - 1))) if self.keepdim else (shape[0],)

    def shape_text(self) -> str:
        return "C, then 1 for every other dimension (keepdim)" if self.keepdim else "C (the other dimensions reduced)"


@register("global_avgpool", "global_avgpool")
class GlobalAvgPool(_GlobalPool):
    """Mean over every dimension after the first (channels): (C, *spatial) → (C,), or (C, 1, …, 1)
    with ``keepdim``. ``S − 1`` additions and one division per channel, S the product of the
    spatial sizes. For the tool presets it stands for nn.AdaptiveAvgPoolNd(1) (then a flatten) by
    default, F.adaptive_avg_pool with ``call: functional``, and ``x.mean(dims)`` with ``call: method``."""

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("add", "C * (S - 1)", "one sum of S values per channel, S the product of the spatial sizes"),
        Q("div", "C", "one division per channel"),
        Q("spatial_in", "S", fact=True),
    )


@register("global_maxpool", "global_maxpool")
class GlobalMaxPool(_GlobalPool):
    """Max over every dimension after the first: ``S − 1`` comparisons per channel, S the product
    of the spatial sizes (for the tools: nn.AdaptiveMaxPoolNd(1), F.adaptive_max_pool or, with
    ``call: method``, ``x.amax``)."""

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("cmp", "C * (S - 1)", "S − 1 comparisons per channel, S the product of the spatial sizes"),
        Q("spatial_in", "S", fact=True),
    )


# ---------------------------------------------------------------------------- resampling

@register("upsample", "upsample")
class Upsample(Layer):
    """Resize the spatial dims (all after the channel) by ``scale`` or to ``size``.
    nearest: a copy, nothing counted; bilinear/linear/trilinear: per output element one lerp
    a + w·(b − a) (1 mul, 2 add) per interpolated dimension pair, i.e. 2^d − 1 lerps for d
    spatial dims (``outputs``: the output elements; ``interp``: 1 unless nearest)."""

    scale: Optional[Union[PosReal, tuple[PosReal, ...]]] = None
    size: Optional[Union[PosInt, tuple[PosInt, ...]]] = None
    mode: Literal["nearest", "linear", "bilinear", "trilinear"] = "nearest"
    align_corners: StrictBool = False

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("mul", "(2 ** d - 1) * outputs", "2^d − 1 interpolations a + w·(b − a) per output element",
          when="interp"),
        Q("add", "2 * (2 ** d - 1) * outputs", "two adds per interpolation", when="interp"),
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        if len(shape) < 2:
            raise ValueError(f"needs (C, spatial…), got {fmt_shape(shape)}")
        d = len(shape) - 1
        want = {"linear": 1, "bilinear": 2, "trilinear": 3}.get(self.mode)
        if want is not None and want != d:
            raise ValueError(f"mode {self.mode} needs {want} spatial dims, input has {d}")
        if d > 3:
            raise ValueError(f"upsamples 1 to 3 spatial dims (as PyTorch), input has {d}")
        if self.align_corners and self.mode == "nearest":
            raise ValueError("align_corners applies to the interpolating modes only (PyTorch refuses it "
                             "with nearest)")
        if (self.scale is None) == (self.size is None):
            raise ValueError("give exactly one of scale and size")
        if self.size is not None:
            sizes = _tuple(self.size, d, "size")
        else:
            scales = (self.scale,) * d if isinstance(self.scale, float) else _tuple(self.scale, d, "scale")
            # floor(in · scale) in floating point, as PyTorch computes it
            exact = [n * s for n, s in zip(shape[1:], scales)]
            if not all(v <= MAX_SIZE for v in exact):   # also inf: no size is that large
                raise ValueError(f"scale {self.scale} gives output sizes beyond 2**40")
            sizes = tuple(int(v) for v in exact)
            if min(sizes) < 1:
                raise ValueError(f"scale {self.scale} gives output size {fmt_shape(sizes)}; "
                                 "sizes must be at least 1")
        return {"C": shape[0], "sizes": sizes, "outputs": shape[0] * numel(sizes), "d": d,
                "interp": int(self.mode != "nearest")}

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        return (shape[0], *v["sizes"])

    def shape_text(self) -> str:
        return "C, then size" if self.size is not None else \
            "C, then floor(in·scale) per spatial dimension (in floating point, as PyTorch)"
