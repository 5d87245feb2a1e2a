"""Convolutions and fully connected layers: the dot-product layers."""

from math import prod
from typing import Any, ClassVar, Literal, Optional, Union

from pydantic import Field, StrictBool, field_validator

from .. import shapes as S
from ..formula import Step, given, step
from ..shapes import Shape, fmt_shape, numel
from .base import (_LAYOUT, _PARAM_HINTS, Layer, NonNegInt, PadArg, Params, PosInt, SizeArg, _dim_names,
                   _per_dims, _rank, _spatial, _times, _tuple, register)


# ---------------------------------------------------------------------------- convolution

class _ConvNd(Layer):
    """Convolution. Counts one MAC per weight per output position (``#y·C_in/g·K``); the
    bias, when present, adds one ``bias_add`` per output element."""

    dims: ClassVar[int] = 2
    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    out: PosInt = Field(description="output channels")
    kernel: SizeArg = Field(description="kernel size: one int or one per spatial dim")
    stride: SizeArg = 1
    padding: Union[PadArg, Literal["same", "valid"]] = 0
    dilation: SizeArg = 1
    groups: PosInt = 1
    bias: StrictBool = True
    in_: Optional[PosInt] = Field(None, alias="in", description="input channels (checked if given)")

    formulas: ClassVar[dict[str, str]] = {
        "shape": "out_i = floor((in_i + 2·p_i − d_i·(k_i − 1) − 1) / s_i) + 1",
        "params": "(C_in/g · ∏k + bias) · C_out",
        "mac": "#y · C_in/g · ∏k   (#y = C_out · ∏out_i)",
        "bias_add": "#y if bias",
    }

    @field_validator("kernel", "stride", "dilation", "padding", mode="after")
    @classmethod
    def _per_dim(cls, value, info):
        if isinstance(value, str):
            return value
        return _tuple(value, cls.dims, info.field_name)

    def pads(self) -> tuple[int, ...]:
        if self.padding == "valid":
            return (0,) * self.dims
        if self.padding == "same":
            # PyTorch puts the odd extra padding on the right; only the left part matters here
            # because the output size equals the input size by definition.
            return tuple(d * (k - 1) // 2 for k, d in zip(self.kernel, self.dilation))
        return self.padding

    def _check_channels(self, shape: Shape):
        _rank(shape, self.dims + 1, self.type_name, _LAYOUT[self.dims])
        c_in = shape[0]
        if self.in_ is not None and self.in_ != c_in:
            raise ValueError(f"states in={self.in_} but receives {c_in} channels")
        if c_in % self.groups:
            raise ValueError(f"input channels {c_in} are not divisible by groups={self.groups}")
        if self.out % self.groups:
            raise ValueError(f"output channels {self.out} are not divisible by groups={self.groups}")
        return c_in

    def infer(self, shape: Shape) -> Shape:
        self._check_channels(shape)
        if self.padding == "same":
            if any(s != 1 for s in self.stride):
                raise ValueError("padding='same' needs stride 1 (as in PyTorch)")
            for n, k, d in zip(shape[1:], self.kernel, self.dilation):
                S.conv_out(n, k, 1, d * (k - 1) // 2 + (d * (k - 1)) % 2, d)
            return (self.out, *shape[1:])
        return (self.out, *(S.conv_out(n, k, s, p, d) for n, k, s, p, d in zip(
            shape[1:], self.kernel, self.stride, self.pads(), self.dilation)))

    def params(self, shape: Shape) -> Params:
        return Params(shape[0] // self.groups * prod(self.kernel) * self.out,
                      self.out if self.bias else 0)

    def ops(self, shape: Shape, out: Shape) -> dict[str, Any]:
        y = numel(out)
        mac = y * (shape[0] // self.groups) * prod(self.kernel)
        return {"mac": mac, "dots": y, "bias_add": y if self.bias else 0,
                **self._shape_facts(shape, out)}

    def _kernel_symbols(self) -> dict:
        names = _dim_names(self.dims)
        return {f"k{i}": (f"K_{nm.lower()}", k) for i, (nm, k) in enumerate(zip(names, self.kernel))}

    def _channel_symbols(self, shape: Shape) -> dict:
        return {"c": ("C_in", shape[0]), "g": ("g", self.groups), "co": ("C_out", self.out)}

    def _explain_dims(self, shape: Shape, out: Shape) -> list[Step]:
        steps = [given("shape.0", "C_out", "out", self.out)]
        for i, nm in enumerate(_dim_names(self.dims)):
            low = nm.lower()
            n, k, s, d = shape[i + 1], self.kernel[i], self.stride[i], self.dilation[i]
            if self.padding == "same":
                steps.append(step(f"shape.{i + 1}", f"{nm}_out", "n", "padding 'same' keeps the size",
                                  n=(f"{nm}_in", n)))
                continue
            steps.append(step(f"shape.{i + 1}", f"{nm}_out", "floor((n + 2 * p - d * (k - 1) - 1) / s) + 1",
                              n=(f"{nm}_in", n), p=(f"p_{low}", self.pads()[i]), d=(f"d_{low}", d),
                              k=(f"K_{low}", k), s=(f"s_{low}", s)))
        return steps

    def _explain_params(self, shape: Shape, fan: str) -> list[Step]:
        sym = {**self._kernel_symbols(), **self._channel_symbols(shape)}
        steps = [step("weights", "weights", f"{fan} * co", **sym)]
        if self.bias:
            steps.append(given("bias", "bias", "C_out", self.out))
            steps.append(step("params", "params", f"({fan} + 1) * co", **sym))
        else:
            steps.append(step("params", "params", f"{fan} * co", "no bias", **sym))
        return steps

    def explain(self, shape: Shape, out: Shape) -> list[Step]:
        kernel = _times("k", self.dims)
        outs = _spatial(_dim_names(self.dims), out[1:], "_out", "o")
        sym = {**self._kernel_symbols(), **self._channel_symbols(shape), **outs}
        y = "co * " + _times("o", self.dims)
        steps = [*self._explain_dims(shape, out), *self._explain_params(shape, f"{kernel} * c // g"),
                 step("mac", "mac", f"{y} * c // g * {kernel}",
                      "one multiply-accumulate per weight per output position", **sym)]
        if self.bias:
            steps.append(step("bias_add", "bias_add", y, "one per output element", **sym))
        return steps

    def _shape_facts(self, shape: Shape, out: Shape) -> dict[str, int]:
        return {"spatial_out": numel(out[1:]), "spatial_in": numel(shape[1:]), "c_in": shape[0],
                "c_out": self.out, "groups": self.groups, "kernel": prod(self.kernel)}


_per_dims(_ConvNd, "conv{d}d", "Conv{d}d", "conv")


class _ConvTransposeNd(_ConvNd):
    """Transposed convolution. Each input element is multiplied by every weight of its
    group: ``C_in·(C_out/g)·∏k·∏in_i`` MACs; scattered products that land on the same output
    are summed (``dots`` is the output count). Bias adds one per output element."""

    padding: PadArg = 0
    output_padding: Union[NonNegInt, tuple[NonNegInt, ...]] = 0

    formulas: ClassVar[dict[str, str]] = {
        "shape": "out_i = (in_i − 1)·s_i − 2·p_i + d_i·(k_i − 1) + output_padding_i + 1",
        "params": "C_in · C_out/g · ∏k + bias·C_out",
        "mac": "C_in · C_out/g · ∏k · ∏in_i",
        "bias_add": "#y if bias",
    }

    @field_validator("output_padding", mode="after")
    @classmethod
    def _per_dim_op(cls, value, info):
        return _tuple(value, cls.dims, info.field_name)

    def _explain_dims(self, shape: Shape, out: Shape) -> list[Step]:
        steps = [given("shape.0", "C_out", "out", self.out)]
        for i, nm in enumerate(_dim_names(self.dims)):
            low = nm.lower()
            steps.append(step(f"shape.{i + 1}", f"{nm}_out", "(n - 1) * s - 2 * p + d * (k - 1) + q + 1",
                              n=(f"{nm}_in", shape[i + 1]), s=(f"s_{low}", self.stride[i]),
                              p=(f"p_{low}", self.padding[i]), d=(f"d_{low}", self.dilation[i]),
                              k=(f"K_{low}", self.kernel[i]), q=(f"op_{low}", self.output_padding[i])))
        return steps

    def explain(self, shape: Shape, out: Shape) -> list[Step]:
        kernel = _times("k", self.dims)
        sym = {**self._kernel_symbols(), **self._channel_symbols(shape),
               **_spatial(_dim_names(self.dims), shape[1:], "_in", "i"),
               **_spatial(_dim_names(self.dims), out[1:], "_out", "o")}
        steps = [*self._explain_dims(shape, out), *self._explain_params(shape, f"c * {kernel} // g"),
                 step("mac", "mac", f"c * {_times('i', self.dims)} * co // g * {kernel}",
                      "each input element times every weight of its group", **sym)]
        if self.bias:
            steps.append(step("bias_add", "bias_add", "co * " + _times("o", self.dims), "one per output element", **sym))
        return steps

    def infer(self, shape: Shape) -> Shape:
        self._check_channels(shape)
        return (self.out, *(S.conv_transpose_out(n, k, s, p, d, op) for n, k, s, p, d, op in zip(
            shape[1:], self.kernel, self.stride, self.padding, self.dilation, self.output_padding)))

    def params(self, shape: Shape) -> Params:
        return Params(shape[0] * (self.out // self.groups) * prod(self.kernel),
                      self.out if self.bias else 0)

    def ops(self, shape: Shape, out: Shape) -> dict[str, Any]:
        mac = numel(shape) * (self.out // self.groups) * prod(self.kernel)
        y = numel(out)
        return {"mac": mac, "dots": y, "bias_add": y if self.bias else 0,
                **self._shape_facts(shape, out)}


_per_dims(_ConvTransposeNd, "conv_transpose{d}d", "ConvTranspose{d}d", "conv_transpose")


# ---------------------------------------------------------------------------- linear

@register("linear", "linear")
class Linear(Layer):
    """Fully connected layer on the last dimension: ``R·F_in·F_out`` MACs where R is the
    number of rows (all other dimensions); the bias adds ``R·F_out``."""

    hints: ClassVar[dict[str, tuple]] = {**_PARAM_HINTS, "contiguous": (True, False)}
    out: PosInt = Field(description="output features")
    bias: StrictBool = True
    in_: Optional[PosInt] = Field(None, alias="in", description="input features (checked if given)")

    formulas: ClassVar[dict[str, str]] = {
        "shape": "(…, F_in) → (…, F_out)",
        "params": "F_in · F_out + bias·F_out",
        "mac": "R · F_in · F_out   (R = rows = #x / F_in)",
        "bias_add": "R · F_out if bias",
    }

    def infer(self, shape: Shape) -> Shape:
        if not shape:
            raise ValueError("needs at least a 1-d input")
        if self.in_ is not None and self.in_ != shape[-1]:
            raise ValueError(f"states in={self.in_} but receives {shape[-1]} features "
                             f"(input {fmt_shape(shape)})")
        return (*shape[:-1], self.out)

    def params(self, shape: Shape) -> Params:
        return Params(shape[-1] * self.out, self.out if self.bias else 0)

    def weight_shape(self, shape: Shape):
        return (self.out, shape[-1])   # PyTorch's layout, equal to an embedding's (V, D)

    def ops(self, shape: Shape, out: Shape) -> dict[str, Any]:
        rows = numel(shape[:-1])
        return {"mac": rows * shape[-1] * self.out, "dots": rows * self.out,
                "bias_add": rows * self.out if self.bias else 0, "rows": rows}

    def explain(self, shape: Shape, out: Shape) -> list[Step]:
        sym = {"fi": ("F_in", shape[-1]), "fo": ("F_out", self.out), "r": ("R", numel(shape[:-1]))}
        steps = [given(f"shape.{len(out) - 1}", "F_out", "out", self.out)]
        if len(shape) > 1:
            lead = {f"a{i}": (f"n_{i + 1}", n) for i, n in enumerate(shape[:-1])}
            steps.append(step("rows", "R", _times("a", len(shape) - 1),
                              "rows: every dimension but the last", **lead))
        steps.append(step("weights", "weights", "fi * fo", **sym))
        if self.bias:
            steps += [given("bias", "bias", "F_out", self.out), step("params", "params", "(fi + 1) * fo", **sym)]
        else:
            steps.append(step("params", "params", "fi * fo", "no bias", **sym))
        rows = "r * " if len(shape) > 1 else ""
        steps.append(step("mac", "mac", f"{rows}fi * fo", "one multiply-accumulate per weight per row", **sym))
        if self.bias:
            steps.append(step("bias_add", "bias_add", f"{rows}fo", "one per output element", **sym))
        return steps
