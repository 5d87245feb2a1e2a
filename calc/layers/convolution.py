"""The dot-product layers: convolutions (1-d, 2-d, 3-d, transposed) and fully connected layers."""

from typing import Any, ClassVar, Literal, Optional, Union

from pydantic import Field, StrictBool, field_validator

from ..formula import Q
from ..shapes import Shape, fmt_shape, numel
from .base import (_LAYOUT, _PARAM_HINTS, Layer, NonNegInt, PadArg, PosInt, SizeArg, _dim_names, _rank, _tuple,
                   register)


def _product(names) -> str:
    return " * ".join(names)


class _ConvNd(Layer):
    """Convolution. Counts one MAC per weight per output element (C_in/g·∏K per output); the
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

    @field_validator("kernel", "stride", "dilation", "padding", mode="after")
    @classmethod
    def _per_dim(cls, value, info):
        if isinstance(value, str):
            return value
        return _tuple(value, cls.dims, info.field_name)

    # -- declarations: symbols per spatial dimension are named after it (H_in, K_h, s_h …)
    @classmethod
    def _names(cls):
        return [(n, n.lower()) for n in _dim_names(cls.dims)]

    @classmethod
    def _out_dim(cls, n: str, low: str) -> str:
        return f"{n}_in if same else floor(({n}_in + 2 * p_{low} - d_{low} * (K_{low} - 1) - 1) / s_{low}) + 1"

    @classmethod
    def declare(cls):
        names = cls._names()
        kernel = _product(f"K_{low}" for _, low in names)
        return (
            Q("C_out", "out", key="shape.0"),
            *(Q(f"{n}_out", cls._out_dim(n, low), key=f"shape.{i + 1}") for i, (n, low) in enumerate(names)),
            Q("weights", f"{kernel} * C_in // g * C_out", "C_in/g input channels per group"),
            Q("biases", "C_out", key="bias", when="bias"),
            Q("outputs", "C_out * " + _product(f"{n}_out" for n, _ in names), "output elements"),
            Q("mac", f"outputs * C_in // g * {kernel}", "one multiply-accumulate per weight per output element"),
            Q("dots", "outputs", "one dot product (one accumulator) per output element"),
            Q("bias_add", "outputs", "one per output element", when="bias"),
            *cls._facts(names, kernel),
        )

    @classmethod
    def _facts(cls, names, kernel):
        return (Q("spatial_out", _product(f"{n}_out" for n, _ in names), fact=True),
                Q("spatial_in", _product(f"{n}_in" for n, _ in names), fact=True),
                Q("c_in", "C_in", fact=True), Q("c_out", "C_out", fact=True), Q("groups", "g", fact=True),
                Q("kernel", kernel, fact=True))

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

    def _symbols(self, shape: Shape, pads) -> dict[str, Any]:
        v = {"C_in": shape[0], "out": self.out, "g": self.groups, "bias": int(self.bias),
             "same": int(self.padding == "same")}
        # the symbol names of each dimension, made once per class (this is on the hot path)
        keys = self.__class__.__dict__.get("_dim_keys")
        if keys is None:
            keys = tuple((f"{n}_in", f"K_{low}", f"s_{low}", f"p_{low}", f"d_{low}") for n, low in self._names())
            type(self)._dim_keys = keys
        for i, (n_in, k, s, p, d) in enumerate(keys):
            v[n_in] = shape[i + 1]
            v[k] = self.kernel[i]
            v[s] = self.stride[i]
            v[p] = pads[i]
            v[d] = self.dilation[i]
        return v

    def given(self, shape: Shape) -> dict[str, Any]:
        self._check_channels(shape)
        pads = self.pads()
        same = self.padding == "same"
        if same and any(s != 1 for s in self.stride):
            raise ValueError("padding='same' needs stride 1 (as in PyTorch)")
        for n, k, p, d in zip(shape[1:], self.kernel, pads, self.dilation):
            span = d * (k - 1) + 1
            if same:
                p += (span - 1) % 2   # the odd extra padding on the right counts for the fit
            if n + 2 * p < span:
                raise ValueError(f"effective kernel {span} (d(k−1)+1 with k={k}, d={d}) is larger than "
                                 f"the padded input {n + 2 * p} (in + 2p with in={n}, p={p})")
        return self._symbols(shape, pads)


@register("conv1d", "conv")
class Conv1d(_ConvNd):
    __doc__ = _ConvNd.__doc__
    dims: ClassVar[int] = 1


@register("conv2d", "conv")
class Conv2d(_ConvNd):
    __doc__ = _ConvNd.__doc__
    dims: ClassVar[int] = 2


@register("conv3d", "conv")
class Conv3d(_ConvNd):
    __doc__ = _ConvNd.__doc__
    dims: ClassVar[int] = 3


class _ConvTransposeNd(_ConvNd):
    """Transposed convolution. Each input element is multiplied by every weight of its
    group: ``C_in·(C_out/g)·∏k·∏in_i`` MACs; scattered products that land on the same output
    are summed (``dots`` is the output count). Bias adds one per output element."""

    padding: PadArg = 0
    output_padding: Union[NonNegInt, tuple[NonNegInt, ...]] = 0

    @field_validator("output_padding", mode="after")
    @classmethod
    def _per_dim_op(cls, value, info):
        return _tuple(value, cls.dims, info.field_name)

    @classmethod
    def declare(cls):
        names = cls._names()
        kernel = _product(f"K_{low}" for _, low in names)
        x = "C_in * " + _product(f"{n}_in" for n, _ in names)
        return (
            Q("C_out", "out", key="shape.0"),
            *(Q(f"{n}_out", f"({n}_in - 1) * s_{low} - 2 * p_{low} + d_{low} * (K_{low} - 1) + op_{low} + 1",
                key=f"shape.{i + 1}") for i, (n, low) in enumerate(names)),
            Q("weights", f"C_in * {kernel} * C_out // g", "every input channel feeds C_out/g outputs"),
            Q("biases", "C_out", key="bias", when="bias"),
            Q("outputs", "C_out * " + _product(f"{n}_out" for n, _ in names), "output elements"),
            Q("mac", f"{x} * C_out // g * {kernel}", "each input element times every weight of its group"),
            Q("dots", "outputs", "the scattered products land on the output elements"),
            Q("bias_add", "outputs", "one per output element", when="bias"),
            *cls._facts(names, kernel),
        )

    def given(self, shape: Shape) -> dict[str, Any]:
        self._check_channels(shape)
        v = self._symbols(shape, self.padding)
        for i, (n, low) in enumerate(self._names()):
            op, s, d, k = self.output_padding[i], self.stride[i], self.dilation[i], self.kernel[i]
            if op >= max(s, d):
                raise ValueError(f"output_padding {op} must be smaller than stride {s} or dilation {d}")
            size = (shape[i + 1] - 1) * s - 2 * self.padding[i] + d * (k - 1) + op + 1
            if size < 1:
                raise ValueError(f"output size {size} is not positive")
            v[f"op_{low}"] = op
        return v


@register("conv_transpose1d", "conv_transpose")
class ConvTranspose1d(_ConvTransposeNd):
    __doc__ = _ConvTransposeNd.__doc__
    dims: ClassVar[int] = 1


@register("conv_transpose2d", "conv_transpose")
class ConvTranspose2d(_ConvTransposeNd):
    __doc__ = _ConvTransposeNd.__doc__
    dims: ClassVar[int] = 2


@register("conv_transpose3d", "conv_transpose")
class ConvTranspose3d(_ConvTransposeNd):
    __doc__ = _ConvTransposeNd.__doc__
    dims: ClassVar[int] = 3


# ---------------------------------------------------------------------------- linear

@register("linear", "linear")
class Linear(Layer):
    """Fully connected layer on the last dimension: ``R·F_in·F_out`` MACs where R is the
    number of rows (all other dimensions); the bias adds ``R·F_out``."""

    hints: ClassVar[dict[str, tuple]] = {**_PARAM_HINTS, "contiguous": (True, False)}
    out: PosInt = Field(description="output features")
    bias: StrictBool = True
    in_: Optional[PosInt] = Field(None, alias="in", description="input features (checked if given)")

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("F_out", "out", key="shape.-1"),
        Q("weights", "F_in * F_out"),
        Q("biases", "F_out", key="bias", when="bias"),
        Q("mac", "R * F_in * F_out", "one multiply-accumulate per weight per row "
                                     "(R rows: the product of every dimension but the last)"),
        Q("dots", "R * F_out", "one dot product per output element"),
        Q("bias_add", "R * F_out", "one per output element", when="bias"),
        Q("rows", "R", fact=True),
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        if not shape:
            raise ValueError("needs at least a 1-d input")
        if self.in_ is not None and self.in_ != shape[-1]:
            raise ValueError(f"states in={self.in_} but receives {shape[-1]} features "
                             f"(input {fmt_shape(shape)})")
        return {"F_in": shape[-1], "out": self.out, "R": numel(shape[:-1]), "bias": int(self.bias)}

    def weight_shape(self, shape: Shape):
        return (self.out, shape[-1])   # PyTorch's layout, equal to an embedding's (V, D)

