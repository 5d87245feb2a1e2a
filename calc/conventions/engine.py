"""The rule engine: how a :class:`Convention` turns one layer's facts into MACs and FLOPs.

A convention maps a layer to a :class:`Rule` per quantity: expressions over the layer's facts
(see :mod:`calc.conventions`). :meth:`Convention.count` evaluates them; :meth:`Convention.trace`
returns the same evaluation as explanation steps, so that ``calc explain`` shows the very
computation the analysis did.

Two ways of finding a layer's rule:

* calc's own conventions (``explicit=False``) may key a rule by layer *kind*: they are defined
  on the elementary operations every layer declares (``mac``, ``add`` …), so a new layer type
  of a kind is counted by what it declares;
* a tool preset (``explicit=True``) reproduces a tool that hooks or dispatches on exact PyTorch
  types, so it counts only the layer types it names. A type it does not name is a
  :class:`ConventionError`, never a rule borrowed from another type of the same kind.

A tool preset may also derive facts of its own (``derived``): a function of the layer, its
input shape(s) and its output shape, per layer type, whose facts take precedence over the
layer's. That is where a tool's quirks live (thop's float64 mean window), not in the layers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Mapping, NamedTuple, Optional, Union

from ..errors import ConventionError
from ..expr import _Undefined, compile_expr
from ..formula import Step, render, step, substitute
from ..tracing import traced_int

# Every fact name a rule may use; missing ones are zero for a layer.
OP_NAMES = ("mac", "dots", "bias_add", "add", "mul", "div", "cmp", "exp", "sqrt", "fn")
BASE_FACTS = dict.fromkeys(OP_NAMES, 0)

Number = Union[int, Fraction]
# derive(layer, shape, out) -> facts: ``shape`` is the input shape, or the tuple of input
# shapes of a layer that reads several (a join, a cross attention).
Derive = Callable[[Any, Any, tuple], Mapping[str, Number]]


@dataclass(frozen=True)
class Rule:
    """How a convention counts one layer type or kind.

    ``sample`` is a count per sample (scaled by the batch); ``batch`` a count for the whole
    batch that may use ``N`` and is not scaled. ``why`` says which behaviour the rule
    reproduces. ``unsupported`` refuses the layer with a ConventionError giving ``why`` as the
    reason: always (True), or when its condition (an expression over the facts) holds.
    """

    sample: str = "0"
    batch: str = "0"
    why: str = ""
    unsupported: Union[bool, str] = False

    def text(self) -> str:
        """The rule as one line: 'mac + bias_add', or with its batch part."""
        if self.unsupported is True:
            return "cannot count (an error)"
        if self.unsupported:
            return self._formula() + f"; cannot count (an error) when {self.unsupported}"
        return self._formula()

    def _formula(self) -> str:
        if self.batch == "0":
            return self.sample
        if self.sample == "0":
            return f"{self.batch} for the batch"
        return f"{self.sample} per sample + {self.batch} for the batch"


RuleSpec = Union[str, Rule]


class Count(NamedTuple):
    """One layer's count: ``macs``/``flops`` per sample (integers), and ``macs_batch``/
    ``flops_batch`` for the whole batch (exact; a fraction only where a tool divides)."""

    macs: int
    flops: int
    macs_batch: Number = 0
    flops_batch: Number = 0


@dataclass(frozen=True)
class Runner:
    """How ``calc verify`` runs the real tool on the PyTorch oracle's module.

    ``run(module, x, shape)`` returns the tool's figure (MACs or FLOPs, as the convention's
    ``reports`` says) for the batched input ``x`` (``shape`` is one sample's). ``package`` is
    the import name (the check is skipped where it is not installed); ``batch_one`` marks a
    tool that always profiles a single sample."""

    package: str
    run: Callable[[Any, Any, tuple], int]
    batch_one: bool = False


@dataclass(frozen=True)
class Trace:
    """A layer's count under a convention with its working (see :meth:`Convention.trace`):
    ``key`` is the type or kind the rules are given for; ``steps`` the MACs steps then the
    FLOPs steps, the last of each being the layer's figure for the whole batch."""

    key: str
    macs_rule: Rule
    flops_rule: Rule
    why: str
    steps: tuple[Step, ...]
    count: Count


def _rules(spec: Mapping[str, RuleSpec]) -> dict[str, Rule]:
    """Expand ``{"conv1d conv2d": rule}`` into one entry per type or kind."""
    out: dict[str, Rule] = {}
    for keys, rule in spec.items():
        for key in keys.split():
            if key in out:
                raise RuntimeError(f"rule for {key!r} given twice")
            out[key] = rule if isinstance(rule, Rule) else Rule(rule)
    return out


def _expand(spec: Mapping[str, Derive]) -> dict[str, Derive]:
    out: dict[str, Derive] = {}
    for keys, fn in spec.items():
        for key in keys.split():
            if key in out:
                raise RuntimeError(f"derived facts for {key!r} given twice")
            out[key] = fn
    return out


def _exact(value) -> Number:
    """A rule's value as a plain exact number (an int whenever it is whole)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) or traced_int(value):   # traced: see calc.sweep_compile
        return value
    if isinstance(value, float):   # a rule dividing with `/` (Python's true division)
        value = Fraction(value)
    if isinstance(value, Fraction):
        # a subclass (a tool's float64 value) becomes a plain fraction: no more rounding
        return int(value) if value.denominator == 1 else Fraction(value.numerator, value.denominator)
    raise ConventionError(f"a rule gave {value!r}, not a number")


def _twice(text: str) -> str:
    return "0" if text == "0" else f"2 * ({text})"


class _Compiled(NamedTuple):
    key: str
    rules: tuple[Rule, Rule]
    refusals: tuple            # (condition text, compiled condition, why)
    parts: tuple               # per quantity: (sample text, compiled, batch text, compiled)
    derive: Optional[Derive]


@dataclass(frozen=True)
class Convention:
    name: str
    description: str
    macs: Mapping[str, Rule]
    flops: Mapping[str, Rule] | None = None   # None: FLOPs = 2 × MACs
    reports: str = "macs"                     # the figure the tool itself prints: macs or flops
    source: str = ""                          # the tool and call it reproduces
    explicit: bool = False                    # a tool preset: rules only for the layer types it names
    derived: Mapping[str, Derive] = field(default_factory=dict)   # layer type -> facts the tool derives
    runner: Optional[Runner] = None           # how `calc verify` runs the tool
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "macs", _rules(self.macs))
        if self.flops is not None:
            object.__setattr__(self, "flops", _rules(self.flops))
        object.__setattr__(self, "derived", _expand(self.derived))

    def keys(self) -> set[str]:
        """Every type or kind the convention gives a rule or derived facts for."""
        return {*self.macs, *(self.flops or {}), *self.derived}

    def rule_key(self, table: Mapping[str, Rule], type_name: str, kind: str) -> str:
        """The key under which ``table`` holds the rule of a layer type."""
        if type_name in table:
            return type_name
        if self.explicit:
            raise ConventionError(
                f"convention '{self.name}' has no rule for layer type '{type_name}' (kind '{kind}'): a tool "
                "preset counts only the layer types it names, as its tool sees exact PyTorch types; it does "
                f"not borrow the rule of another '{kind}' type (add one in calc/conventions/tools/)")
        if kind in table:
            return kind
        raise ConventionError(f"convention '{self.name}' has no rule for layer type '{type_name}' "
                              f"(kind '{kind}')")

    def rule(self, table: Mapping[str, Rule], type_name: str, kind: str) -> Rule:
        return table[self.rule_key(table, type_name, kind)]

    def rules(self, type_name: str, kind: str) -> tuple[Rule, Rule]:
        """The (MAC rule, FLOP rule) of a layer type; the FLOP rule defaults to 2 × MACs."""
        macs = self.rule(self.macs, type_name, kind)
        if self.flops is not None:
            return macs, self.rule(self.flops, type_name, kind)
        return macs, Rule(_twice(macs.sample), _twice(macs.batch), "2 × MACs")

    def _compiled(self, type_name: str, kind: str) -> _Compiled:
        compiled = self._cache.get(type_name)
        if compiled is None:
            rules = self.rules(type_name, kind)
            for rule in rules:
                if rule.unsupported is True:
                    raise ConventionError(f"convention '{self.name}' cannot count layer type '{type_name}': {rule.why}")
            refusals = tuple((r.unsupported, compile_expr(r.unsupported, False), r.why) for r in rules
                             if isinstance(r.unsupported, str))
            parts = tuple((r.sample, compile_expr(r.sample, False), r.batch, compile_expr(r.batch, False)) for r in rules)
            compiled = _Compiled(self.rule_key(self.macs, type_name, kind), rules, refusals, parts,
                                 self.derived.get(type_name))
            self._cache[type_name] = compiled
        return compiled

    def _evaluate(self, layer, facts: Mapping[str, Any], batch: int, shape, out):
        """(compiled rules, the facts the rules see, [(per sample, for the batch)] per quantity)."""
        type_name = layer.type_name
        c = self._compiled(type_name, layer.kind)
        if c.derive is None:
            env = facts
        elif getattr(c.derive, "by_batch", False):   # facts of the whole batch (a tool that rounds it)
            env = {**facts, **c.derive(layer, shape, out, batch)}
        else:
            env = {**facts, **c.derive(layer, shape, out)}
        for text, test, why in c.refusals:
            if self._eval(test, text, type_name, env):
                raise ConventionError(f"convention '{self.name}' cannot count this {type_name} ({text}): {why}")
        values = []
        for sample_text, sample, batch_text, whole in c.parts:
            per_sample = self._eval(sample, sample_text, type_name, env)
            extra = self._eval(whole, batch_text, type_name, {**env, "N": batch}) if batch_text != "0" else 0
            values.append((per_sample, extra))
        return c, env, values

    def count(self, layer, facts: Mapping[str, Any], batch: int, shape, out) -> Count:
        """The MACs and FLOPs of one layer (see :class:`Count`). ``layer`` gives the type
        and kind (and the arguments a tool's derived facts read); ``shape`` is its input shape
        (a tuple of shapes for a layer with several inputs) and ``out`` its output shape."""
        _, _, values = self._evaluate(layer, facts, batch, shape, out)
        return _count(values, batch)

    def trace(self, layer, facts: Mapping[str, Any], batch: int, shape, out) -> Trace:
        """:meth:`count` with its working: each rule with the facts put in and its value."""
        c, env, values = self._evaluate(layer, facts, batch, shape, out)
        steps = []
        for (key, label), rule, (sample, whole) in zip((("macs", "MACs"), ("flops", "FLOPs")), c.rules, values):
            steps += _rule_steps(key, label, rule, env, batch, sample, whole)
        mrule, frule = c.rules
        why = "; ".join(dict.fromkeys(w for w in (mrule.why, frule.why if self.flops is not None else "") if w))
        return Trace(c.key, mrule, frule, why, tuple(steps), _count(values, batch))

    def _eval(self, fn, text, type_name, env) -> Number:
        try:
            return _exact(fn(env))
        except _Undefined as exc:
            raise ConventionError(f"convention '{self.name}': the rule {text!r} for layer type "
                                  f"'{type_name}' uses '{exc.name}', which that layer does not provide") from None


def _count(values, batch: int) -> Count:
    counted = []
    for per_sample, extra in values:
        if not (isinstance(per_sample, int) or traced_int(per_sample)):
            # A fractional per-sample count is exact only for the whole batch.
            extra, per_sample = _exact(extra + per_sample * batch), 0
        counted.append((per_sample, extra))
    (m, mb), (f, fb) = counted
    return Count(m, f, mb, fb)


def _rule_steps(key: str, label: str, rule: Rule, env, batch: int, sample: Number, whole: Number) -> list[Step]:
    """The steps of one rule: its per-sample part, its whole-batch part, and the layer's
    figure for the batch (truncated where a tool's total is)."""
    has_batch = rule.batch != "0"
    if batch == 1 and not has_batch:
        return [Step(key, label, render(rule.sample, str), substitute(rule.sample, env), sample)]
    steps = []
    if rule.sample != "0" or not has_batch:
        steps.append(Step(f"{key}.sample", f"{label} per sample", render(rule.sample, str),
                          substitute(rule.sample, env), sample))
    if has_batch:
        steps.append(Step(f"{key}.batch", f"{label} for the batch", render(rule.batch, str),
                          substitute(rule.batch, {**env, "N": batch}), whole,
                          "counted once for the whole batch, not per sample"))
    total = _exact(Fraction(batch) * Fraction(sample) + Fraction(whole))
    st = step(key, label, "N * s + b" if has_batch else "N * s",
              N=("N", batch), s=("per sample", sample), b=("for the batch", whole))
    if not isinstance(total, int):
        return [*steps, Step(key, label, f"int({st.formula})", f"int({st.substituted})", int(total),
                             "truncated like the tool's total")]
    return [*steps, Step(key, label, st.formula, st.substituted, total)]


# ---------------------------------------------------------------------------- the registry

CONVENTIONS: dict[str, Convention] = {}


def register(conv: Convention) -> Convention:
    """Add a convention to :data:`CONVENTIONS` (in the order `calc compare` lists them). A
    tool preset's keys must all be layer types: a kind there would borrow rules silently."""
    if conv.name in CONVENTIONS:
        raise RuntimeError(f"convention {conv.name!r} defined twice")
    if conv.explicit:
        from ..layers import LAYERS
        unknown = sorted(conv.keys() - set(LAYERS))
        if unknown:
            raise RuntimeError(f"tool preset {conv.name!r} names unknown layer types {unknown}")
    CONVENTIONS[conv.name] = conv
    return conv


def get(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ConventionError(f"unknown convention '{name}'; known: {', '.join(CONVENTIONS)}") from None
