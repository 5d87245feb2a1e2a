"""Every layer type calc knows: one registry, one small frozen pydantic model per type.

A layer knows three things, all functions of the per-sample input shape (no batch dimension):

* ``infer(shape)`` — its output shape (raises ``ValueError`` with the reason when impossible);
* ``params(shape)`` — its parameters (weights and bias) and buffers;
* ``ops(shape, out)`` — an honest breakdown of the elementary operations of one forward pass
  of one sample. The keys are:

  ``mac``       multiply-accumulates of dot products (convolution, linear, matmul);
  ``dots``      how many dot products those MACs form (one accumulator each);
  ``bias_add``  additions of a bias, one per output element per biased dot product;
  ``add`` ``mul`` ``div`` ``cmp`` ``exp`` ``sqrt`` ``fn``
                other additions/subtractions, multiplications, divisions, comparisons
                (max/min), exponentials, square roots and other special functions
                (erf, pow), each counted once per application.

  A layer may add facts of its own (``affine``, ``kernel_avg`` ...) that conventions use.

* ``explain(shape, out)`` — the same numbers as formulas for people (:mod:`calc.formula`):
  one step per output dimension, parameter count and operation, each carrying the value it
  evaluates to, which the tests compare with ``infer``, ``params`` and ``ops``.

Counting conventions (``calc.conventions``) turn these numbers into MACs and FLOPs; the
formulas here never depend on the convention.
"""

from math import gcd, prod
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator

from . import shapes as S
from .formula import Step, given, step
from .shapes import Shape, fmt_shape, numel

MAX_SIZE = 2**40  # the largest size (channels, kernel, length...) a spec may state


def _no_bool(value):
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


PosInt = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=MAX_SIZE)]
NonNegInt = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=MAX_SIZE)]
Dim = Annotated[int, BeforeValidator(_no_bool), Field(ge=-64, le=63)]
Prob = Annotated[float, BeforeValidator(_no_bool), Field(ge=0.0, le=1.0)]
Real = Annotated[float, BeforeValidator(_no_bool)]
PosReal = Annotated[float, BeforeValidator(_no_bool), Field(gt=0.0)]
SizeArg = Union[PosInt, tuple[PosInt, ...]]
PadArg = Union[NonNegInt, tuple[NonNegInt, ...]]


class Params:
    """Parameter counts of one layer: trainable weights and biases, plus buffers (not parameters)."""

    __slots__ = ("weights", "bias", "buffers")

    def __init__(self, weights: int = 0, bias: int = 0, buffers: int = 0):
        self.weights = weights
        self.bias = bias
        self.buffers = buffers

    @property
    def total(self) -> int:
        return self.weights + self.bias

    def __eq__(self, other):
        return isinstance(other, Params) and (self.weights, self.bias, self.buffers) == (
            other.weights, other.bias, other.buffers)

    def __repr__(self):
        return f"Params(weights={self.weights}, bias={self.bias}, buffers={self.buffers})"


NO_PARAMS = Params()


# ---------------------------------------------------------------------------- hints
# How the PyTorch code invokes a layer. A hint changes no formula: it only becomes facts for the
# conventions, because hook- and patch-based tools see the same operation differently depending on
# it (see the tool presets in calc.conventions). A spec states a hint as an item key.
HINTS: dict[str, str] = {
    "call": "how the layer is invoked. module: an nn.Module is called (the default for layers); "
            "functional: a function of torch or torch.nn.functional, or the same Tensor method "
            "(F.relu, F.adaptive_avg_pool2d, torch.add, x.add); operator: a Python operator "
            "(+, +=, *; the default for the add and mul joins); method: a Tensor method that no "
            "tool patches (x.mean, x.amax, x.view). Facts: module, functional, operator, method (1 or 0).",
    "contiguous": "whether a linear layer's input is contiguous in memory (true by default; a "
                  "transposed view is not). Fact: contiguous (1 or 0).",
    "owner": "who owns the layer's parameters. leaf: a leaf module (the default); container: a "
             "module that has submodules (e.g. nn.MultiheadAttention's in_proj_weight). "
             "Fact: leaf (1 or 0).",
}
CALLS = ("module", "functional", "operator", "method")
_CALL_HINT = {"call": ("module", "functional")}
_PARAM_HINTS = {**_CALL_HINT, "owner": ("leaf", "container")}


class Layer(BaseModel):
    """Base of all layer models. Subclasses set ``type_name``/``kind`` through :func:`register`."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True,
                              validate_default=True)

    type_name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    # Text shown by `calc layers` and used by explanations: quantity -> formula.
    formulas: ClassVar[dict[str, str]] = {}
    inputs: ClassVar[int] = 1  # joins take several
    # How the PyTorch code may invoke this layer, for the tool presets (see HINTS): hint ->
    # allowed values, the first being the default.
    hints: ClassVar[dict[str, tuple]] = {"call": ("module", "functional")}
    takes_tokens: ClassVar[bool] = False  # only token embeddings read token ids (shapes.Tokens)

    def infer(self, shape: Shape) -> Shape:
        return shape

    def params(self, shape: Shape) -> Params:
        return NO_PARAMS

    def params_many(self, shapes: list[Shape]) -> Params:
        """Parameters of a layer that reads other outputs too (see :meth:`refs`)."""
        return self.params(shapes[0])

    def refs(self) -> tuple[str, ...]:
        """Names of earlier outputs read besides the flow (a join's ``with``, a cross
        attention's ``kv``); the analysis looks them up and calls ``infer_many``/``ops_many``."""
        return ()

    def weight_shape(self, shape: Shape) -> Optional[tuple[int, ...]]:
        """Shape of the weight matrix another layer may share through ``tie`` (None: nothing
        to share). Tied layers must agree on it exactly."""
        return None

    def ops(self, shape: Shape, out: Shape) -> dict[str, Any]:
        return {}

    def explain(self, shape: Shape, out: Shape) -> list[Step]:
        """Formula steps for the output shape, the parameters and the operations."""
        return [given("shape", "output", "input (unchanged)", out)] if out == shape else []

    @classmethod
    def hint_facts(cls, given: dict[str, Any] | None = None) -> dict[str, int]:
        """Facts from the hints a spec states (the class defaults for the others)."""
        values = {k: allowed[0] for k, allowed in cls.hints.items()}
        values.update(given or {})
        call = values.get("call", "module")
        facts = {c: int(call == c) for c in CALLS}
        facts["contiguous"] = int(values.get("contiguous", True))
        facts["leaf"] = int(values.get("owner", "leaf") == "leaf")
        return facts

    def args(self) -> dict[str, Any]:
        """The arguments as the user would write them (non-default ones only)."""
        return self.model_dump(exclude_defaults=True, by_alias=True)


LAYERS: dict[str, type[Layer]] = {}


def register(type_name: str, kind: str):
    def deco(cls):
        if type_name in LAYERS:
            raise RuntimeError(f"layer type {type_name!r} registered twice")
        cls.type_name = type_name
        cls.kind = kind
        LAYERS[type_name] = cls
        return cls
    return deco


def _per_dims(base: type, type_name: str, class_name: str, kind: str) -> None:
    """Register the 1-d, 2-d and 3-d variants of a dimension-generic layer class
    (``type_name``/``class_name`` contain ``{d}``)."""
    for d in (1, 2, 3):
        register(type_name.format(d=d), kind)(type(class_name.format(d=d), (base,), {
            "__doc__": base.__doc__, "dims": d, "__annotations__": {"dims": ClassVar[int]}}))


def _rank(shape: Shape, rank: int, what: str, layout: str):
    if len(shape) != rank:
        raise ValueError(f"expects a {rank}-d input ({layout}), got {fmt_shape(shape)}")


def _tuple(value, dims: int, field: str):
    if isinstance(value, int):
        return (value,) * dims
    value = tuple(value)
    if len(value) != dims:
        raise ValueError(f"{field} needs 1 or {dims} values, got {len(value)}")
    return value


_LAYOUT = {1: "C, L", 2: "C, H, W", 3: "C, D, H, W"}


def _dim_names(n: int) -> tuple[str, ...]:
    return {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(n) or tuple(f"S{i + 1}" for i in range(n))


def _spatial(names, sizes, suffix: str, prefix: str) -> dict[str, tuple[str, int]]:
    """Symbols {prefix0: ('H_in', 224), ...} for a template."""
    return {f"{prefix}{i}": (f"{nm}{suffix}", v) for i, (nm, v) in enumerate(zip(names, sizes))}


def _times(prefix: str, n: int) -> str:
    return " * ".join(f"{prefix}{i}" for i in range(n))


def _elements(shape: Shape, what: str = "x") -> tuple[str, int]:
    return (f"#{what}", numel(shape))


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


# ---------------------------------------------------------------------------- normalisation

class _BatchNormNd(Layer):
    """Batch normalisation in inference: per element subtract the mean, divide by
    sqrt(var + eps) (one sqrt and one add per channel), then scale and shift when affine.
    γ and β are parameters; running mean and variance and the batch counter are buffers."""

    dims: ClassVar[int] = 2
    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    eps: PosReal = 1e-5
    momentum: Optional[Prob] = 0.1
    affine: StrictBool = True
    track_running_stats: StrictBool = True
    formulas: ClassVar[dict[str, str]] = {
        "params": "2·C if affine (γ, β)",
        "buffers": "2·C + 1 (running mean, running var, batches seen) if track_running_stats",
        "ops": "per element: 1 sub, 1 div (+1 mul, 1 add if affine); per channel: 1 add, 1 sqrt",
    }

    def infer(self, shape):
        # Per sample: PyTorch's BatchNorm1d takes (N, C) or (N, C, L), i.e. (C) or (C, L).
        ranks = (1, 2) if self.dims == 1 else (self.dims + 1,)
        if len(shape) not in ranks:
            want = " or ".join(f"{r}-d" for r in ranks)
            layout = "(C) or (C, L)" if self.dims == 1 else f"({_LAYOUT[self.dims]})"
            raise ValueError(f"expects a {want} input {layout}, got {fmt_shape(shape)}")
        return shape

    def params(self, shape):
        c = shape[0]
        return Params(c if self.affine else 0, c if self.affine else 0,
                      2 * c + 1 if self.track_running_stats else 0)

    def ops(self, shape, out):
        x, c, a = numel(shape), shape[0], int(self.affine)
        return {"add": x * (1 + a) + c, "div": x, "mul": x * a, "sqrt": c, "affine": a}

    def explain(self, shape, out):
        c = shape[0]
        sym = {"c": ("C", c), "x": _elements(shape), "a": ("affine", int(self.affine))}
        steps = [given("shape", "output", "input (unchanged)", out)]
        if self.affine:
            steps += [given("weights", "weights", "C (γ)", c), given("bias", "bias", "C (β)", c),
                      step("params", "params", "2 * c", **sym)]
        if self.track_running_stats:
            steps.append(step("buffers", "buffers", "2 * c + 1", "running mean, running variance, batches seen",
                              **sym))
        steps += [step("add", "add", "x * (1 + a) + c", "subtract the mean (and add β) per element; "
                       "ε once per channel", **sym),
                  step("mul", "mul", "x * a", "multiply by γ", **sym),
                  step("div", "div", "x", "divide by the standard deviation", **sym),
                  step("sqrt", "sqrt", "c", "√(var + ε) once per channel", **sym)]
        return steps


_per_dims(_BatchNormNd, "batchnorm{d}d", "BatchNorm{d}d", "batchnorm")


def trailing_group(shape: Shape, normalized: int) -> int:
    """Elements normalised together when the last ``normalized`` dims form one group."""
    if normalized > len(shape):
        raise ValueError(f"cannot normalise {normalized} dims of {fmt_shape(shape)}")
    return numel(shape[len(shape) - normalized:])


def _norm_ops(x: int, group: int, affine: bool) -> dict[str, int]:
    # Per group of n elements: mean (n−1 adds, 1 div), variance (n subs, n muls, n−1 adds,
    # 1 div), + eps and sqrt (1 add, 1 sqrt), normalise (n subs, n divs); affine: n muls, n adds.
    groups = x // group
    n = group
    add = groups * ((n - 1) + n + (n - 1) + 1 + n) + (x if affine else 0)
    return {"add": add, "mul": groups * n + (x if affine else 0), "div": groups * (2 + n),
            "sqrt": groups, "affine": int(affine)}


def _explain_norm(shape: Shape, n: int, affine: bool) -> list[Step]:
    """Steps for _norm_ops over groups of n elements."""
    sym = {"x": _elements(shape), "n": ("n", n), "a": ("affine", int(affine))}
    groups = step("groups", "G", "x // n", "groups of n elements normalised together", **sym)
    sym["G"] = ("G", groups.value)
    return [groups,
            step("add", "add", "G * (4 * n - 1) + x * a",
                 "per group: mean n − 1, variance n + n − 1, ε 1, normalise n; affine adds β", **sym),
            step("mul", "mul", "G * n + x * a", "per group: squares n; affine multiplies by γ", **sym),
            step("div", "div", "G * (n + 2)", "per group: mean 1, variance 1, normalise n", **sym),
            step("sqrt", "sqrt", "G", "one per group", **sym)]


@register("layernorm", "layernorm")
class LayerNorm(Layer):
    """Layer normalisation over the last ``normalized`` dimensions (PyTorch's LayerNorm), or,
    with ``channels: true``, over the channel dimension at every position (ConvNeXt's
    LayerNorm2d). Mean and variance per group, then normalise; affine adds γ and β."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    normalized: PosInt = Field(1, description="how many trailing dims are normalised together")
    channels: StrictBool = Field(False, description="normalise over dim 0 (channels-first maps)")
    eps: PosReal = 1e-5
    affine: StrictBool = True
    bias: StrictBool = True
    formulas: ClassVar[dict[str, str]] = {
        "params": "2·n if affine (γ, β), n = ∏ normalised dims (n if bias is false)",
        "ops": "per group of n: 4n − 1 adds, n muls, n + 2 divs, 1 sqrt (mean, variance, eps, "
               "normalise); affine adds n muls and n adds",
    }

    def _group(self, shape) -> int:
        if self.channels:
            if len(shape) < 2:
                raise ValueError(f"channels: true needs (C, …), got {fmt_shape(shape)}")
            return shape[0]
        return trailing_group(shape, self.normalized)

    def infer(self, shape):
        self._group(shape)
        return shape

    def params(self, shape):
        n = self._group(shape)
        return Params(n if self.affine else 0, n if self.affine and self.bias else 0)

    def ops(self, shape, out):
        # channels: torchvision's LayerNorm2d, a subclass that exact-type matching tools miss
        return {**_norm_ops(numel(shape), self._group(shape), self.affine), "channels": int(self.channels)}

    def explain(self, shape, out):
        if self.channels:
            n_step = given("n", "n", "C (normalised over channels at every position)", shape[0])
        else:
            dims = shape[len(shape) - self.normalized:]
            n_step = step("n", "n", _times("d", len(dims)), "the last normalised dims",
                          **{f"d{i}": (f"n_{i + 1}", d) for i, d in enumerate(dims)})
        steps = [given("shape", "output", "input (unchanged)", out), n_step]
        n = n_step.value
        if self.affine:
            steps.append(given("weights", "weights", "n (γ)", n))
            if self.bias:
                steps += [given("bias", "bias", "n (β)", n), step("params", "params", "2 * n", n=("n", n))]
            else:
                steps.append(given("params", "params", "n (no β)", n))
        return [*steps, *_explain_norm(shape, n, self.affine)]


@register("groupnorm", "groupnorm")
class GroupNorm(Layer):
    """Group normalisation: channels split into ``groups``; mean and variance per group and
    sample; affine γ, β per channel."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    groups: PosInt
    eps: PosReal = 1e-5
    affine: StrictBool = True
    formulas: ClassVar[dict[str, str]] = {"params": "2·C if affine", "ops": "as layernorm, per group of C/g·∏S"}

    def infer(self, shape):
        if len(shape) < 1 or shape[0] % self.groups:
            raise ValueError(f"channels {shape[0] if shape else 0} are not divisible by groups={self.groups}")
        return shape

    def params(self, shape):
        return Params(shape[0], shape[0]) if self.affine else NO_PARAMS

    def ops(self, shape, out):
        x = numel(shape)
        return _norm_ops(x, x // self.groups, self.affine)

    def explain(self, shape, out):
        c = shape[0]
        sym = {"c": ("C", c), "g": ("groups", self.groups), **_spatial(_dim_names(len(shape) - 1), shape[1:], "", "s")}
        n_step = step("n", "n", "c // g" + "".join(f" * s{i}" for i in range(len(shape) - 1)),
                      "channels per group × positions", **sym)
        steps = [given("shape", "output", "input (unchanged)", out), n_step]
        if self.affine:
            steps += [given("weights", "weights", "C (γ)", c), given("bias", "bias", "C (β)", c),
                      step("params", "params", "2 * c", **sym)]
        return [*steps, *_explain_norm(shape, n_step.value, self.affine)]


@register("local_response_norm", "lrn")
class LocalResponseNorm(Layer):
    """Local response normalisation across ``size`` neighbouring channels:
    b = a / (k + α/n · Σ a²)^β. Per element: 1 square, n−1 adds, 1 mul and 1 div for α/n,
    1 add for k, 1 pow, 1 div."""

    size: PosInt
    alpha: Real = 1e-4
    beta: Real = 0.75
    k: Real = 1.0
    formulas: ClassVar[dict[str, str]] = {"ops": "per element: mul 2, add size, div 2, fn 1 (pow)"}

    def infer(self, shape):
        if len(shape) < 2:
            raise ValueError(f"needs (C, …), got {fmt_shape(shape)}")
        return shape

    def ops(self, shape, out):
        x = numel(shape)
        return {"mul": 2 * x, "add": x * self.size, "div": 2 * x, "fn": x}

    def explain(self, shape, out):
        sym = {"x": _elements(shape), "n": ("size", self.size)}
        return [given("shape", "output", "input (unchanged)", out),
                step("mul", "mul", "2 * x", "a², and α/n times the sum", **sym),
                step("add", "add", "n * x", "size − 1 to sum the squares, 1 to add k", **sym),
                step("div", "div", "2 * x", "α/n, and a divided by the denominator", **sym),
                step("fn", "fn", "x", "the power β", **sym)]


# ---------------------------------------------------------------------------- activations

class _Elementwise(Layer):
    """Element-wise function; output shape = input shape."""

    per_element: ClassVar[dict[str, int]] = {}

    def ops(self, shape, out):
        x = numel(shape)
        return {k: v * x for k, v in self.per_element.items()}

    def explain(self, shape, out):
        return [given("shape", "output", "input (unchanged)", out), *self._explain_params(shape),
                *(step(k, k, "v * x", f"{v} per element", v=(str(v), v), x=_elements(shape))
                  for k, v in self.per_element.items())]

    def _explain_params(self, shape) -> list[Step]:
        return []


def _activation(name: str, doc: str, per_element: dict[str, int], **fields):
    annotations = {"per_element": ClassVar[dict[str, int]]}
    namespace: dict[str, Any] = {"__doc__": doc, "per_element": per_element}
    for field, (annotation, default) in fields.items():
        annotations[field] = annotation
        namespace[field] = default
    namespace["__annotations__"] = annotations
    namespace["formulas"] = {"ops": "per element: " + ", ".join(f"{v} {k}" for k, v in per_element.items())}
    annotations["formulas"] = ClassVar[dict[str, str]]
    cls = type("".join(p.title() for p in name.split("_")), (_Elementwise,), namespace)
    return register(name, "activation")(cls)


_activation("relu", "max(0, x): one comparison per element.", {"cmp": 1})
_activation("relu6", "min(max(0, x), 6): two comparisons per element.", {"cmp": 2})
_activation("leaky_relu", "x if x ≥ 0 else slope·x: a comparison and a multiply per element.",
            {"cmp": 1, "mul": 1}, negative_slope=(Real, 0.01))
_activation("elu", "x if x > 0 else α(eˣ − 1): counted branch-free, cmp, exp, add, mul.",
            {"cmp": 1, "exp": 1, "add": 1, "mul": 1}, alpha=(Real, 1.0))
_activation("sigmoid", "1 / (1 + e^(−x)): negate, exp, add, divide.", {"mul": 1, "exp": 1, "add": 1, "div": 1})
_activation("tanh", "1 − 2 / (e^(2x) + 1): mul, exp, 2 adds, divide.", {"mul": 1, "exp": 1, "add": 2, "div": 1})
_activation("gelu", "x/2 · (1 + erf(x/√2)) (or the tanh form): divide, erf, add, 2 multiplies.",
            {"div": 1, "fn": 1, "add": 1, "mul": 2}, approximate=(Literal["none", "tanh"], "none"))
_activation("silu", "x · sigmoid(x): the sigmoid's 4 operations and a multiply.",
            {"mul": 2, "exp": 1, "add": 1, "div": 1})
_activation("hardswish", "x · min(max(x + 3, 0), 6) / 6: add, 2 comparisons, multiply, divide.",
            {"add": 1, "cmp": 2, "mul": 1, "div": 1})
_activation("hardsigmoid", "min(max(x + 3, 0), 6) / 6: add, 2 comparisons, divide.",
            {"add": 1, "cmp": 2, "div": 1})


@register("prelu", "activation")
class PReLU(_Elementwise):
    """x if x ≥ 0 else a·x with learned a: one per channel (``num_parameters: C``) or one shared."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    num_parameters: PosInt = 1
    per_element: ClassVar[dict[str, int]] = {"cmp": 1, "mul": 1}
    formulas: ClassVar[dict[str, str]] = {"params": "num_parameters (1 or C)", "ops": "per element: 1 cmp, 1 mul"}

    def infer(self, shape):
        if self.num_parameters != 1 and (not shape or shape[0] != self.num_parameters):
            raise ValueError(f"num_parameters={self.num_parameters} must be 1 or the channel count "
                             f"(input {fmt_shape(shape)})")
        return shape

    def params(self, shape):
        return Params(self.num_parameters)

    def _explain_params(self, shape):
        return [given("weights", "weights", "num_parameters (1, or one per channel)", self.num_parameters)]


@register("softmax", "softmax")
class Softmax(Layer):
    """exp(x_i) / Σ exp(x_j) along ``dim`` (of the per-sample shape): per row of n values,
    n exponentials, n − 1 additions and n divisions (3n − 1)."""

    dim: Dim = -1
    formulas: ClassVar[dict[str, str]] = {"ops": "per row of n: n exp, n−1 add, n div"}

    def infer(self, shape):
        S.normalize_dim(self.dim, len(shape))
        return shape

    def ops(self, shape, out):
        n = shape[S.normalize_dim(self.dim, len(shape))]
        rows = numel(shape) // n
        return {"exp": rows * n, "add": rows * (n - 1), "div": rows * n, "rows": rows}

    def explain(self, shape, out):
        d = S.normalize_dim(self.dim, len(shape))
        sym = {"x": _elements(shape), "n": ("n", shape[d])}
        rows = step("rows", "rows", "x // n", f"n = size of dim {d}", **sym)
        sym["r"] = ("rows", rows.value)
        return [given("shape", "output", "input (unchanged)", out), rows,
                step("exp", "exp", "r * n", "one exponential per element", **sym),
                step("add", "add", "r * (n - 1)", "the sum of each row", **sym),
                step("div", "div", "r * n", "each exponential divided by its row's sum", **sym)]


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


_RESHAPE_HINTS = {"call": ("module", "functional", "method")}


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


@register("layer_scale", "layer_scale")
class LayerScale(_Elementwise):
    """Learned per-channel scale (CaiT/ConvNeXt): C parameters along ``dim``, one multiply
    per element."""

    hints: ClassVar[dict[str, tuple]] = _PARAM_HINTS
    dim: Dim = 0
    per_element: ClassVar[dict[str, int]] = {"mul": 1}
    formulas: ClassVar[dict[str, str]] = {"params": "C (size of dim)", "ops": "per element: 1 mul"}

    def infer(self, shape):
        S.normalize_dim(self.dim, len(shape))
        return shape

    def params(self, shape):
        return Params(shape[S.normalize_dim(self.dim, len(shape))])

    def _explain_params(self, shape):
        d = S.normalize_dim(self.dim, len(shape))
        return [given("weights", "weights", f"size of dim {d}", shape[d])]


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
        out = tuple(int(n * s) for n, s in zip(shape[1:], scales))
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


# ---------------------------------------------------------------------------- joins

class Join(Layer):
    """Combines several inputs (the flow and named earlier outputs)."""

    inputs: ClassVar[int] = 2
    hints: ClassVar[dict[str, tuple]] = {"call": ("operator", "functional")}
    with_: tuple[str, ...] = Field((), alias="with", description="names of earlier outputs to join with the flow")

    def refs(self):
        return self.with_

    def infer_many(self, shapes: list[Shape]) -> Shape:
        raise NotImplementedError

    def explain_many(self, shapes: list[Shape], out: Shape) -> list[Step]:
        return [given("shape", "output", "the inputs' common shape", out)]


@register("add", "add")
class Add(Join):
    """Element-wise sum of inputs of equal shape: (n − 1) additions per element."""

    def infer_many(self, shapes):
        first = shapes[0]
        for other in shapes[1:]:
            if other != first:
                raise ValueError("cannot add shapes " + " and ".join(fmt_shape(s) for s in shapes))
        return first

    def ops_many(self, shapes, out):
        return {"add": numel(out) * (len(shapes) - 1), "operands": len(shapes)}

    def explain_many(self, shapes, out):
        return [*super().explain_many(shapes, out),
                step("add", "add", "(k - 1) * y", "k inputs: k − 1 additions per element",
                     k=("k", len(shapes)), y=_elements(out, "y"))]


@register("mul", "mul")
class Mul(Join):
    """Element-wise product with broadcasting (e.g. squeeze-and-excitation gates C×1×1 over
    C×H×W): (n − 1) multiplies per output element."""

    def infer_many(self, shapes):
        out = shapes[0]
        for other in shapes[1:]:
            out = S.broadcast(out, other)
        return out

    def ops_many(self, shapes, out):
        return {"mul": numel(out) * (len(shapes) - 1), "operands": len(shapes)}

    def explain_many(self, shapes, out):
        return [given("shape", "output", "the inputs broadcast together", out),
                step("mul", "mul", "(k - 1) * y", "k inputs: k − 1 multiplications per output element",
                     k=("k", len(shapes)), y=_elements(out, "y"))]


@register("concat", "concat")
class Concat(Join):
    """Concatenation along ``dim`` (default channels); all other dims must agree. A copy:
    nothing counted."""

    hints: ClassVar[dict[str, tuple]] = {"call": ("functional",)}
    dim: Dim = 0

    def infer_many(self, shapes):
        rank = len(shapes[0])
        d = S.normalize_dim(self.dim, rank)
        for s in shapes[1:]:
            if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != d):
                raise ValueError(f"cannot concatenate along dim {self.dim}: shapes "
                                 + ", ".join(fmt_shape(x) for x in shapes))
        return (*shapes[0][:d], sum(s[d] for s in shapes), *shapes[0][d + 1:])

    def ops_many(self, shapes, out):
        return {"operands": len(shapes)}

    def explain_many(self, shapes, out):
        d = S.normalize_dim(self.dim, len(out))
        return [step(f"shape.{d}", "joined", " + ".join(f"c{i}" for i in range(len(shapes))),
                     f"sizes along dim {d} added; a copy, nothing counted",
                     **{f"c{i}": (f"n_{i + 1}", s[d]) for i, s in enumerate(shapes)})]


# The sequence layers (embeddings, attention, recurrent layers) live in their own module and
# register into the same LAYERS; importing it here keeps `from calc.layers import LAYERS` complete.
from . import sequence as _sequence  # noqa: E402,F401
