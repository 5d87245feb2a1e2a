"""Normalisation layers: batch, layer, group, local response and RMS norm."""

from typing import ClassVar, Optional

from pydantic import Field, StrictBool

from ..formula import Step, given, step
from ..shapes import Shape, fmt_shape, numel
from .base import (_LAYOUT, _PARAM_HINTS, NO_PARAMS, Layer, Params, PosInt, PosReal, Prob, Real,
                   _dim_names, _elements, _per_dims, _spatial, _times, register, trailing_group)


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
