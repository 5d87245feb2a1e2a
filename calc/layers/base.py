"""The base of every layer type: the Layer model, its parameter counts, the one registry, and
the argument types layers share.

A layer knows three things, all functions of the per-sample input shape (no batch dimension):
its output shape, its parameters (weights, bias) and buffers, and an honest breakdown of the
elementary operations of one forward pass of one sample:

  ``mac``       multiply-accumulates of dot products (convolution, linear, matmul);
  ``dots``      how many dot products those MACs form (one accumulator each);
  ``bias_add``  additions of a bias, one per output element per biased dot product;
  ``add`` ``mul`` ``div`` ``cmp`` ``exp`` ``sqrt`` ``fn``
                other additions/subtractions, multiplications, divisions, comparisons
                (max/min), exponentials, square roots and other special functions
                (erf, pow), each counted once per application.

Each quantity is declared once (``quantities``, a tuple of :class:`calc.formula.Q`): a template
over named symbols, from which calc derives the integer it computes, ``calc explain``'s formula
with the values put in, and the text ``calc layers`` prints. A layer type supplies the symbols'
values from its input shape and arguments (:meth:`Layer.given`, which also refuses shapes it
cannot take with a ``ValueError``) and, when the rank changes, how the output shape is assembled
(:meth:`Layer.output`). Counting conventions (:mod:`calc.conventions`) turn the operations into
MACs and FLOPs; nothing here depends on a convention or knows about a tool.
"""

from typing import Annotated, Any, ClassVar, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..formula import PARAM_ROLES, Q, Step, compile_quantities, describe_quantities, explain_quantities, given
from ..shapes import Shape, fmt_shape, numel

from ..limits import MAX_SIZE  # noqa: E402 - the largest size (channels, kernel, length...) a spec may state


def _no_bool(value):
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


PosInt = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=MAX_SIZE)]
NonNegInt = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=MAX_SIZE)]
Dim = Annotated[int, BeforeValidator(_no_bool), Field(ge=-64, le=63)]
Prob = Annotated[float, BeforeValidator(_no_bool), Field(ge=0.0, le=1.0)]
Real = Annotated[float, BeforeValidator(_no_bool), Field(allow_inf_nan=False)]
PosReal = Annotated[float, BeforeValidator(_no_bool), Field(gt=0.0, allow_inf_nan=False)]
Index = Annotated[int, BeforeValidator(_no_bool), Field(ge=-MAX_SIZE, le=MAX_SIZE)]
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
            "tool patches (x.mean, x.amax, x.view); einsum: torch.einsum (a matmul written as an einsum, "
            "as MaxViT does). Facts: module, functional, operator, method, einsum (1 or 0).",
    "contiguous": "whether a linear layer's input is contiguous in memory (true by default; a "
                  "transposed view is not). Fact: contiguous (1 or 0).",
    "owner": "who owns the layer's parameters. leaf: a leaf module (the default); container: a "
             "module that has submodules (e.g. nn.MultiheadAttention's in_proj_weight). "
             "Fact: leaf (1 or 0).",
}
CALLS = ("module", "functional", "operator", "method", "einsum")
_CALL_HINT = {"call": ("module", "functional")}
_PARAM_HINTS = {**_CALL_HINT, "owner": ("leaf", "container")}
_RESHAPE_HINTS = {"call": ("module", "functional", "method")}


class Layer(BaseModel):
    """Base of all layer models. Subclasses set ``type_name``/``kind`` through :func:`register`."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True,
                              validate_default=True)

    type_name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    # Each quantity declared once; see the module docstring and calc.formula.Q. A dims-generic
    # family builds its templates per class in `declare`.
    quantities: ClassVar[tuple[Q, ...]] = ()
    inputs: ClassVar[int] = 1  # joins take several
    # How the PyTorch code may invoke this layer, for the tool presets (see HINTS): hint ->
    # allowed values, the first being the default.
    hints: ClassVar[dict[str, tuple]] = {"call": ("module", "functional")}
    takes_tokens: ClassVar[bool] = False  # only token embeddings read token ids (shapes.Tokens)
    # A tensor the model holds (parameter, buffer): its item's output is read by name, and the
    # flow passes around it to the next item.
    keeps_flow: ClassVar[bool] = False
    # Compiled from `quantities` by `register`: fills every quantity into the symbol values.
    _fill: ClassVar[Any] = None
    _run: ClassVar[Any] = None
    _fast: ClassVar[bool] = True
    _compiled: ClassVar[bool] = False
    _op_names: ClassVar[tuple[str, ...]] = ()
    _shape_keys: ClassVar[tuple[tuple[str, int], ...]] = ()
    _param_names: ClassVar[tuple[str, str, str]] = ("", "", "")

    @classmethod
    def declare(cls) -> tuple[Q, ...]:
        return cls.quantities

    # -- what a layer type writes
    def given(self, shape: Shape) -> dict[str, Any]:
        """The values of the symbols its declarations read, from the input shape and the
        arguments; raises ValueError when the layer cannot take ``shape``."""
        return {}

    def given_many(self, shapes: list[Shape]) -> dict[str, Any]:
        """As :meth:`given`, for a layer that reads other outputs too (see :meth:`refs`)."""
        return self.given(shapes[0])

    def output(self, shape: Shape, v: dict[str, Any]) -> Shape:
        """The output shape: the input's, with each dimension declared as ``shape.i`` replaced."""
        if not self._shape_keys:
            return shape
        out = list(shape)
        for name, i in self._shape_keys:
            out[i] = v[name]
        return tuple(out)

    def refs(self) -> tuple[str, ...]:
        """Names of earlier outputs read besides the flow (a join's ``with``, a cross
        attention's ``kv``); the analysis looks them up and calls the ``*_many`` methods."""
        return ()

    def weight_shape(self, shape: Shape) -> Optional[tuple[int, ...]]:
        """Shape of the weight matrix another layer may share through ``tie`` (None: nothing
        to share). Tied layers must agree on it exactly."""
        return None

    # -- derived from the declarations
    def values(self, shape: Shape) -> dict[str, Any]:
        """Every symbol and declared quantity for input ``shape``."""
        return self._fill(self.given(shape))

    def values_many(self, shapes: list[Shape]) -> dict[str, Any]:
        return self._fill(self.given_many(shapes))

    def evaluate(self, shape: Shape) -> tuple[Shape, "Params", dict[str, Any]]:
        """(output shape, parameters, operations) in one pass over the declarations."""
        if not self._fast:
            v = self._fill(self.given(shape))
            return self.output(shape, v), self._params_of(v), {k: v[k] for k in self._op_names}
        dims, params, ops = self._run(self.given(shape))
        return self._assemble(shape, dims), (Params(*params) if any(params) else NO_PARAMS), ops

    def _assemble(self, shape: Shape, dims: tuple) -> Shape:
        if not dims:
            return shape
        out = list(shape)
        for (_, i), n in zip(self._shape_keys, dims):
            out[i] = n
        return tuple(out)

    def evaluate_many(self, shapes: list[Shape]) -> tuple[Shape, "Params", dict[str, Any]]:
        if not self._fast:
            v = self._fill(self.given_many(shapes))
            return self.output(shapes[0], v), self._params_of(v), {k: v[k] for k in self._op_names}
        dims, params, ops = self._run(self.given_many(shapes))
        return self._assemble(shapes[0], dims), (Params(*params) if any(params) else NO_PARAMS), ops

    def _params_of(self, v: dict[str, Any]) -> "Params":
        w, b, buf = self._param_names
        w, b, buf = v[w] if w else 0, v[b] if b else 0, v[buf] if buf else 0
        return Params(w, b, buf) if (w or b or buf) else NO_PARAMS

    def infer(self, shape: Shape) -> Shape:
        return self.output(shape, self.values(shape))

    def params(self, shape: Shape) -> "Params":
        return self._params_of(self.values(shape))

    def ops(self, shape: Shape, out: Shape) -> dict[str, Any]:
        v = self.values(shape)
        return {k: v[k] for k in self._op_names}

    def infer_many(self, shapes: list[Shape]) -> Shape:
        return self.output(shapes[0], self.values_many(shapes))

    def params_many(self, shapes: list[Shape]) -> "Params":
        return self._params_of(self.values_many(shapes))

    def ops_many(self, shapes: list[Shape], out: Shape) -> dict[str, Any]:
        v = self.values_many(shapes)
        return {k: v[k] for k in self._op_names}

    def explain(self, shape: Shape, out: Shape) -> list[Step]:
        """Formula steps for the output shape, the parameters and the operations."""
        return self._explain(self.values(shape), shape, out)

    def explain_many(self, shapes: list[Shape], out: Shape) -> list[Step]:
        return self._explain(self.values_many(shapes), shapes[0], out)

    def _explain(self, v: dict[str, Any], shape: Shape, out: Shape) -> list[Step]:
        steps = explain_quantities(self.quantities, v)
        if not any(s.key.startswith("shape") for s in steps):
            steps.insert(0, given("shape", "output", "input (unchanged)" if out == shape else
                                  self.shape_text(), out))
        p = self._params_of(v)
        if p.weights and p.bias:
            w, b, _ = self._param_names
            steps.append(Step("params", "params", f"{w} + {b}", f"{p.weights} + {p.bias}", p.total))
        return steps

    def shape_text(self) -> str:
        """How the output shape follows from the input, in words (for layers whose output is
        not declared dimension by dimension)."""
        return (self.__doc__ or "").strip().split("\n")[0]

    @classmethod
    def describe(cls) -> list[tuple[str, str]]:
        """(quantity, formula) pairs for `calc layers`, from the declarations."""
        return describe_quantities(cls.quantities)

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


def _compile(cls) -> None:
    """Compile a class's declarations once (see :func:`calc.formula.compile_quantities`)."""
    qs = cls.declare()
    cls.quantities = qs
    cls._op_names = tuple(q.name for q in qs if q.role not in PARAM_ROLES and not q.role.startswith("shape"))
    roles = {q.role: q.name for q in qs}
    cls._param_names = tuple(roles.get(r, "") for r in PARAM_ROLES)
    cls._shape_keys = tuple((q.name, int(q.role.split(".")[1])) for q in qs if q.role.startswith("shape."))
    # Compiled on the first call, not at import: a command compiles only the layer types its
    # spec uses (compiling all of them was a third of calc's import time).
    cls._fill = staticmethod(_first_call(cls, "_fill"))
    cls._run = staticmethod(_first_call(cls, "_run"))
    # the fast path assembles the output from the declared dimensions, unless the class says how
    cls._fast = "output" not in _overrides(cls)


def _first_call(cls, attr: str):
    """A stand-in for ``cls.<attr>`` that compiles the class's declarations (see
    :func:`calc.formula.compile_quantities`), puts the compiled functions in its place, and calls
    the one asked for."""
    def compile_then_call(v):
        compile_declarations(cls)
        return getattr(cls, attr)(v)
    return compile_then_call


def compile_declarations(cls) -> None:
    """Compile ``cls``'s declarations now (they are otherwise compiled on first use)."""
    if "_compiled" in vars(cls):
        return
    compiled = compile_quantities(cls.__name__, cls.quantities, tuple(n for n, _ in cls._shape_keys),
                                  cls._param_names, cls._op_names)
    cls._fill = staticmethod(compiled.fill)
    cls._run = staticmethod(compiled.run)
    cls._compiled = True


def _overrides(cls) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is Layer:
            break
        names.update(vars(klass))
    return names


LAYERS: dict[str, type[Layer]] = {}


def register(type_name: str, kind: str):
    def deco(cls):
        if type_name in LAYERS:
            raise RuntimeError(f"layer type {type_name!r} registered twice")
        cls.type_name = type_name
        cls.kind = kind
        _compile(cls)
        LAYERS[type_name] = cls
        return cls
    return deco


def _rank(shape: Shape, rank: int, what: str, layout: str):
    if len(shape) != rank:
        raise ValueError(f"expects a {rank}-d input ({layout}), got {fmt_shape(shape)}")


_TUPLES: dict = {}   # (size, dims) -> (size,) * dims for the sizes most layers give: one copy


def _tuple(value, dims: int, field: str):
    if isinstance(value, int):
        if type(value) is int and 0 <= value < 64:
            key = (value, dims)
            found = _TUPLES.get(key)
            if found is None:
                found = _TUPLES[key] = (value,) * dims
            return found
        return (value,) * dims
    value = tuple(value)
    if len(value) != dims:
        raise ValueError(f"{field} needs 1 or {dims} values, got {len(value)}")
    return value


_LAYOUT = {1: "C, L", 2: "C, H, W", 3: "C, D, H, W"}


def _dim_names(n: int) -> tuple[str, ...]:
    return {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(n) or tuple(f"S{i + 1}" for i in range(n))


def trailing_group(shape: Shape, normalized: int) -> int:
    """Elements normalised together when the last ``normalized`` dims form one group."""
    if normalized > len(shape):
        raise ValueError(f"cannot normalise {normalized} dims of {fmt_shape(shape)}")
    return numel(shape[len(shape) - normalized:])


def _tokens_by_features(shape: Shape, what: str = "tokens × features (L, D)") -> tuple[int, int]:
    """(L, ∏F) of a (L, *F) sequence; refuses anything of rank < 2."""
    if len(shape) < 2:
        raise ValueError(f"expects {what}, got {fmt_shape(shape)}")
    return shape[0], numel(shape[1:])
