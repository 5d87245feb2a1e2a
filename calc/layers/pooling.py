"""Pooling (max, average, adaptive, global) and resampling (upsample)."""

from math import gcd, prod
from typing import ClassVar, Literal, Optional, Union

from pydantic import Field, StrictBool, field_validator

from .. import shapes as S
from ..formula import Step, given, step
from ..shapes import Shape, fmt_shape, numel
from .base import (_LAYOUT, MAX_SIZE, Layer, PadArg, PosInt, PosReal, SizeArg, _dim_names, _elements, _per_dims,
                   _rank, _spatial, _times, _tuple, register)


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

    def _dilation(self):
        return (1,) * self.dims

    def _max_pad(self, k, d):
        return k // 2

    def _explain_dims(self, shape: Shape, out: Shape) -> list[Step]:
        steps = [given("shape.0", "C", "C_in", shape[0])]
        stride = self.stride or self.kernel
        dilated = any(d != 1 for d in self._dilation())
        span = "d * (k - 1) + 1" if dilated else "k"
        for i, nm in enumerate(_dim_names(self.dims)):
            low = nm.lower()
            sym = dict(n=(f"{nm}_in", shape[i + 1]), p=(f"p_{low}", self.padding[i]), k=(f"K_{low}", self.kernel[i]),
                       s=(f"s_{low}", stride[i]), d=(f"d_{low}", self._dilation()[i]))
            inner = f"(n + 2 * p - ({span})) / s" if dilated else "(n + 2 * p - k) / s"
            if not self.ceil_mode:
                steps.append(step(f"shape.{i + 1}", f"{nm}_out", f"floor({inner}) + 1", **sym))
                continue
            first = step(f"ceil.{i + 1}", f"{nm}_ceil", f"ceil({inner}) + 1", "ceil_mode", **sym)
            steps += [first, step(f"shape.{i + 1}", f"{nm}_out", "m - 1 if (m - 1) * s >= n + p else m",
                                  "the last window must start inside the input or the left padding",
                                  m=(f"{nm}_ceil", first.value), **sym)]
        return steps

    def _out_symbols(self, out: Shape) -> dict:
        return {"c": ("C", out[0]), "kk": ("∏K", prod(self.kernel)),
                **_spatial(_dim_names(self.dims), out[1:], "_out", "o"),
                **{f"k{i}": (f"K_{nm.lower()}", k) for i, (nm, k) in enumerate(zip(_dim_names(self.dims), self.kernel))}}

    def infer(self, shape: Shape) -> Shape:
        _rank(shape, self.dims + 1, self.type_name, _LAYOUT[self.dims])
        stride = self.stride or self.kernel
        for k, p, d in zip(self.kernel, self.padding, self._dilation()):
            if p > self._max_pad(k, d):
                raise ValueError(f"padding {p} is more than half the kernel {k} (PyTorch refuses it)")
        return (shape[0], *(S.pool_out(n, k, s, p, d, self.ceil_mode) for n, k, s, p, d in zip(
            shape[1:], self.kernel, stride, self.padding, self._dilation())))


class _MaxPoolNd(_PoolNd):
    """Max pooling: ``∏k − 1`` comparisons per output element."""

    dilation: SizeArg = 1
    formulas: ClassVar[dict[str, str]] = {
        "shape": "out_i = floor_or_ceil((in_i + 2·p_i − d_i·(k_i − 1) − 1) / s_i) + 1",
        "cmp": "#y · (∏k − 1)",
    }

    @field_validator("dilation", mode="after")
    @classmethod
    def _per_dim_d(cls, value, info):
        return _tuple(value, cls.dims, info.field_name)

    def _dilation(self):
        return self.dilation

    def ops(self, shape, out):
        return {"cmp": numel(out) * (prod(self.kernel) - 1)}

    def explain(self, shape, out):
        y = "c * " + _times("o", self.dims)
        return [*self._explain_dims(shape, out),
                step("cmp", "cmp", f"{y} * ({_times('k', self.dims)} - 1)",
                     "a window of ∏K values needs ∏K − 1 comparisons", **self._out_symbols(out))]


class _AvgPoolNd(_PoolNd):
    """Average pooling: ``∏k − 1`` additions and one division per output element."""

    count_include_pad: StrictBool = True
    formulas: ClassVar[dict[str, str]] = {
        "shape": "out_i = floor_or_ceil((in_i + 2·p_i − k_i) / s_i) + 1",
        "add": "#y · (∏k − 1)",
        "div": "#y",
    }

    def infer(self, shape: Shape) -> Shape:
        out = super().infer(shape)
        if self.dims == 3 and any(n < k for n, k in zip(shape[1:], self.kernel)):
            # PyTorch's avg_pool3d (unlike 1-d, 2-d and max pooling) checks the unpadded input.
            raise ValueError(f"input {fmt_shape(shape[1:])} is smaller than the kernel "
                             f"{fmt_shape(self.kernel)} (PyTorch's avg_pool3d refuses it, padding or not)")
        return out

    def ops(self, shape, out):
        y = numel(out)
        return {"add": y * (prod(self.kernel) - 1), "div": y}

    def explain(self, shape, out):
        y = "c * " + _times("o", self.dims)
        sym = self._out_symbols(out)
        return [*self._explain_dims(shape, out),
                step("add", "add", f"{y} * ({_times('k', self.dims)} - 1)", "∏K − 1 adds per window", **sym),
                step("div", "div", y, "one division per output element", **sym)]


_per_dims(_MaxPoolNd, "maxpool{d}d", "MaxPool{d}d", "maxpool")
_per_dims(_AvgPoolNd, "avgpool{d}d", "AvgPool{d}d", "avgpool")


class _AdaptivePoolNd(Layer):
    dims: ClassVar[int] = 2
    size: Union[PosInt, tuple[Optional[PosInt], ...]] = Field(
        description="output size: one int or one per spatial dim (null keeps that dim)")

    @field_validator("size", mode="after")
    @classmethod
    def _per_dim(cls, value, info):
        return _tuple(value, cls.dims, "size")

    def infer(self, shape: Shape) -> Shape:
        _rank(shape, self.dims + 1, self.type_name, _LAYOUT[self.dims])
        return (shape[0], *(n if o is None else o for n, o in zip(shape[1:], self.size)))

    def _window_total(self, shape, out) -> int:
        # Σ over output positions of the window size = ∏ over dims of Σ bin lengths, and the
        # bins of one dim sum to in + out − gcd(in, out) (they overlap when out ∤ in).
        return shape[0] * prod(n + o - gcd(n, o) for n, o in zip(shape[1:], out[1:]))

    def _facts(self, shape, out):
        ratio = 1.0
        for n, o in zip(shape[1:], out[1:]):
            ratio *= n / o  # float, left to right, as thop computes its kernel
        return {"kernel_avg": ratio, "kernel_floor": prod(n // o for n, o in zip(shape[1:], out[1:])),
                "dims": self.dims}

    def _explain_common(self, shape, out) -> tuple[list[Step], dict, str]:
        names = _dim_names(self.dims)
        steps = [given("shape.0", "C", "C_in", shape[0])]
        for i, nm in enumerate(names):
            o = self.size[i]
            steps.append(given(f"shape.{i + 1}", f"{nm}_out", "size" if o is not None else f"{nm}_in (size null)",
                               out[i + 1]))
        sym = {"c": ("C", shape[0]), **_spatial(names, shape[1:], "_in", "n"), **_spatial(names, out[1:], "_out", "o"),
               **{f"g{i}": (f"gcd({nm}_in, {nm}_out)", gcd(n, o))
                  for i, (nm, n, o) in enumerate(zip(names, shape[1:], out[1:]))}}
        windows = "c * " + " * ".join(f"(n{i} + o{i} - g{i})" for i in range(self.dims))
        ratio = " * ".join(f"(n{i} / o{i})" if i else f"n{i} / o{i}" for i in range(self.dims))
        steps += [step("kernel_avg", "kernel_avg", ratio, "the mean window (a float, multiplied left to right)", **sym),
                  step("kernel_floor", "kernel_floor", " * ".join(f"floor(n{i} / o{i})" for i in range(self.dims)),
                       **sym)]
        return steps, sym, windows


class _AdaptiveAvgPoolNd(_AdaptivePoolNd):
    """Adaptive average pooling: per output element, (its bin size − 1) additions and one
    division; PyTorch's bins are [floor(i·in/out), ceil((i+1)·in/out))."""

    formulas: ClassVar[dict[str, str]] = {
        "shape": "(C, *in) → (C, *size)",
        "add": "Σ over outputs (bin size − 1)  (per dim, bins sum to in + out − gcd(in, out))",
        "div": "#y",
    }

    def ops(self, shape, out):
        y = numel(out)
        return {"add": self._window_total(shape, out) - y, "div": y, **self._facts(shape, out)}

    def explain(self, shape, out):
        steps, sym, windows = self._explain_common(shape, out)
        y = "c * " + _times("o", self.dims)
        return [*steps,
                step("add", "add", f"{windows} - {y}", "Σ (bin size − 1); the bins of one dimension "
                     "sum to in + out − gcd(in, out)", **sym),
                step("div", "div", y, "one division per output element", **sym)]


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    """Adaptive max pooling: per output element, (its bin size − 1) comparisons."""

    formulas: ClassVar[dict[str, str]] = {
        "shape": "(C, *in) → (C, *size)",
        "cmp": "Σ over outputs (bin size − 1)",
    }

    def ops(self, shape, out):
        return {"cmp": self._window_total(shape, out) - numel(out), **self._facts(shape, out)}

    def explain(self, shape, out):
        steps, sym, windows = self._explain_common(shape, out)
        return [*steps, step("cmp", "cmp", f"{windows} - c * {_times('o', self.dims)}",
                             "Σ (bin size − 1); the bins of one dimension sum to in + out − gcd(in, out)", **sym)]


_per_dims(_AdaptiveAvgPoolNd, "adaptive_avgpool{d}d", "AdaptiveAvgPool{d}d", "adaptive_avgpool")
_per_dims(_AdaptiveMaxPoolNd, "adaptive_maxpool{d}d", "AdaptiveMaxPool{d}d", "adaptive_maxpool")


@register("global_avgpool", "global_avgpool")
class GlobalAvgPool(Layer):
    """Mean over every dimension after the first (channels): (C, …) → (C,), or (C, 1, …, 1)
    with ``keepdim``. ``S − 1`` additions and one division per channel. For the tool presets it
    stands for nn.AdaptiveAvgPoolNd(1) (then a flatten) by default, F.adaptive_avg_pool with
    ``call: functional``, and ``x.mean(dims)`` with ``call: method``."""

    hints: ClassVar[dict[str, tuple]] = {"call": ("module", "functional", "method")}
    keepdim: StrictBool = False
    formulas: ClassVar[dict[str, str]] = {"shape": "(C, *S) → (C,)", "add": "C·(∏S − 1)", "div": "C"}

    def infer(self, shape):
        if len(shape) < 2:
            raise ValueError(f"needs a channel dimension and at least one more, got {fmt_shape(shape)}")
        return (shape[0], *([1] * (len(shape) - 1))) if self.keepdim else (shape[0],)

    def ops(self, shape, out):
        return {"add": shape[0] * (numel(shape[1:]) - 1), "div": shape[0], **self._facts(shape)}

    def _facts(self, shape):
        return {"spatial_in": numel(shape[1:]), "dims": len(shape) - 1}

    def _explain_common(self, shape, out) -> tuple[list[Step], dict, str]:
        names = _dim_names(len(shape) - 1)
        steps = [given("shape.0", "C", "C_in", shape[0])]
        if self.keepdim:
            steps += [given(f"shape.{i + 1}", f"{nm}_out", "1 (keepdim)", 1) for i, nm in enumerate(names)]
        sym = {"c": ("C", shape[0]), **_spatial(names, shape[1:], "_in", "n")}
        return steps, sym, _times("n", len(names))

    def explain(self, shape, out):
        steps, sym, size = self._explain_common(shape, out)
        return [*steps, step("add", "add", f"c * ({size} - 1)", "one sum of ∏S values per channel", **sym),
                step("div", "div", "c", "one division per channel", **sym)]


@register("global_maxpool", "global_maxpool")
class GlobalMaxPool(GlobalAvgPool):
    """Max over every dimension after the first: ``S − 1`` comparisons per channel (for the
    tools: nn.AdaptiveMaxPoolNd(1), F.adaptive_max_pool or, with ``call: method``, ``x.amax``)."""

    formulas: ClassVar[dict[str, str]] = {"shape": "(C, *S) → (C,)", "cmp": "C·(∏S − 1)"}

    def ops(self, shape, out):
        return {"cmp": shape[0] * (numel(shape[1:]) - 1), **self._facts(shape)}

    def explain(self, shape, out):
        steps, sym, size = self._explain_common(shape, out)
        return [*steps, step("cmp", "cmp", f"c * ({size} - 1)", "∏S − 1 comparisons per channel", **sym)]


@register("upsample", "upsample")
class Upsample(Layer):
    """Resize the spatial dims (all after the channel) by ``scale`` or to ``size``.
    nearest: a copy, nothing counted; bilinear/linear/trilinear: per output element one lerp
    a + w·(b − a) (1 mul, 2 add) per interpolated dimension pair, i.e. 2^d − 1 lerps."""

    scale: Optional[Union[PosReal, tuple[PosReal, ...]]] = None
    size: Optional[Union[PosInt, tuple[PosInt, ...]]] = None
    mode: Literal["nearest", "linear", "bilinear", "trilinear"] = "nearest"
    align_corners: StrictBool = False

    def infer(self, shape):
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
            return (shape[0], *_tuple(self.size, d, "size"))
        scales = _tuple(self.scale, d, "scale") if not isinstance(self.scale, float) else (self.scale,) * d
        # floor(in · scale) in floating point, as PyTorch computes it
        exact = [n * s for n, s in zip(shape[1:], scales)]
        if not all(v <= MAX_SIZE for v in exact):   # also inf: no size is that large
            raise ValueError(f"scale {self.scale} gives output sizes beyond 2**40")
        out = tuple(int(v) for v in exact)
        if min(out) < 1:
            raise ValueError(f"scale {self.scale} gives output size {fmt_shape(out)}; sizes must be at least 1")
        return (shape[0], *out)

    def ops(self, shape, out):
        dims = len(shape) - 1
        facts = {"nearest": int(self.mode == "nearest"), "dims": dims, "by_size": int(self.size is not None),
                 "scale_prod": self._scale_prod(dims)}
        if self.mode == "nearest":
            return facts
        lerps = 2 ** dims - 1
        y = numel(out)
        return {"mul": lerps * y, "add": 2 * lerps * y, **facts}

    def explain(self, shape, out):
        d = len(shape) - 1
        steps = [given("shape.0", "C", "C_in", shape[0])]
        scales = None
        if self.scale is not None:
            scales = (self.scale,) * d if isinstance(self.scale, float) else _tuple(self.scale, d, "scale")
        for i, nm in enumerate(_dim_names(d)):
            if scales is None:
                steps.append(given(f"shape.{i + 1}", f"{nm}_out", "size", out[i + 1]))
            else:
                steps.append(step(f"shape.{i + 1}", f"{nm}_out", "floor(n * s)", n=(f"{nm}_in", shape[i + 1]),
                                  s=(f"scale_{nm.lower()}", scales[i])))
        if self.mode != "nearest":
            sym = {"d": ("d", d), "y": _elements(out, "y")}
            steps += [step("mul", "mul", "(2 ** d - 1) * y", "2^d − 1 interpolations a + w·(b − a) per output",
                           **sym),
                      step("add", "add", "2 * (2 ** d - 1) * y", "two adds per interpolation", **sym)]
        return steps

    def _scale_prod(self, dims: int) -> float:
        # The product of the scale factors (0 with size), as ptflops multiplies #x by it.
        if self.scale is None:
            return 0
        scales = (self.scale,) * dims if isinstance(self.scale, float) else _tuple(self.scale, dims, "scale")
        result = 1
        for sc in scales:
            result *= sc
        return int(result) if float(result).is_integer() else result
