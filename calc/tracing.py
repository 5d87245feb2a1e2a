"""Tracing: run calc's own code once with the swept variables as :class:`Traced` numbers, and
record every operation on them as straight-line code (see :mod:`calc.sweep_compile`).

A :class:`Traced` holds its value at the traced variant (``v``, an int or a float) and the name
of the local variable that holds it in the recorded program. Arithmetic on it computes the value
with Python's own operator (so the program repeats exactly what the traced run computed) and
appends one line. Anything that decides with it — a comparison, a truth test — returns the plain
outcome and records a *guard*: the program gives up (returns None) where a guard does not hold,
and the variant is then evaluated as before. Anything the program could not repeat — converting
to ``int``/``float`` by Python's built-ins, indexing with it, hashing it, printing it — raises
:class:`Untraceable` (or ``TypeError`` for hashing), which abandons the trace: the sweep then
evaluates those variants as before. The class is deliberately not a subclass of ``int``: C code
(``range``, indexing, ``math.gcd``, ``Fraction``) reads the raw value of an ``int`` subclass
without asking it, which would bake a value into the program silently.

Imports nothing from calc, so that :mod:`calc.expr` and the conventions can recognise it.
"""
from __future__ import annotations

import math
from operator import add as _add, floordiv as _floordiv, mod as _mod, mul as _mul, pow as _pow, sub as _sub
from operator import truediv as _truediv

MAX_LINES = 200_000        # a trace longer than this is abandoned (the program would be too large)


_RAISING = ("int(", "round(", "_floor(", "_ceil(")
_RAISING_OPS = (" / ", " // ", " % ", " ** ")


class Untraceable(Exception):
    """A traced value reached an operation the recorded program cannot repeat."""


def _lit(x) -> str:
    """A constant as program text: exact for bool, int and finite float (repr round-trips)."""
    t = type(x)
    if t is bool or t is int:
        return repr(x)
    if t is float and math.isfinite(x):
        return repr(x)
    raise Untraceable(f"a constant {t.__name__} in a traced computation")


class Tape:
    """The recorded program: numbered lines, each ``tN = <expression>``, and guards. Identical
    lines are shared (``cse``), so a formula computed for many identical layers is computed once."""

    def __init__(self):
        self.lines: list[tuple[str, str, tuple]] = []   # (name, expression, names it reads)
        self.guards: list[tuple[str, tuple]] = []       # (condition that must hold, names it reads)
        self.cse: dict[str, Traced] = {}
        self.seen_guards: set[str] = set()
        self.checks: list = []                          # extra objects the program calls (see add_check)
        self.inputs: list[str] = []
        self.sets: dict = {}                            # see add_member_check
        # lines that may raise (a division by zero, an overflow): kept even when nothing reads
        # them, so that the program fails where the traced code would
        self.raising: list[str] = []
        self.set_fns: list = []

    def input(self, value) -> "Traced":
        name = f"a{len(self.inputs)}"
        self.inputs.append(name)
        return Traced(self, name, value)

    def line(self, expr: str, deps: tuple, value) -> "Traced":
        hit = self.cse.get(expr)
        if hit is not None and type(hit.v) is type(value):
            return hit
        if len(self.lines) >= MAX_LINES:
            raise Untraceable("the traced program is too long")
        name = f"t{len(self.lines)}"
        self.lines.append((name, expr, deps))
        if expr.startswith(_RAISING) or any(op in expr for op in _RAISING_OPS):
            self.raising.append(name)
        t = self.cse[expr] = Traced(self, name, value)
        return t

    def guard(self, cond: str, deps: tuple) -> None:
        if cond not in self.seen_guards:
            self.seen_guards.add(cond)
            self.guards.append((cond, deps))

    def add_check(self, fn, args: list) -> None:
        """A guard that calls ``fn(tuple of args)`` (a Python function, e.g. validating a layer's
        arguments at each variant)."""
        k = len(self.checks)
        self.checks.append(fn)
        text = ", ".join(_code(a) for a in args)
        self.guard(f"_chk{k}(({text},))", tuple(a.name for a in args if isinstance(a, Traced)))

    def add_member_check(self, key, fn, arg) -> None:
        """A guard that ``arg`` is in a set shared by every guard of this ``key``, or that
        ``fn(arg)`` (which adds it to the set when it holds) holds: validation of a layer's
        argument, remembered across layers and variants."""
        j = self.sets.get(key)
        if j is None:
            j = self.sets[key] = len(self.sets)
            self.set_fns.append(fn)
        deps = tuple(a.name for a in _leaves(arg))
        text = _code(arg)
        self.guard(f"({text} in _S{j} or _c{j}({text}))", deps)

    def compile(self, outputs: list, owner: str):
        """The program: a function of the inputs returning ``outputs`` (with traced parts as
        computed), or None where a guard fails. Only the lines the outputs and guards read are
        kept. The text is made here from calc's own operations and numeric literals only."""
        out_text = [_code(o) for o in outputs]
        needed: set = set()
        for o in _leaves(outputs):
            needed.add(o.name)
        for _, deps in self.guards:
            needed.update(deps)
        needed.update(self.raising)
        keep = []
        for name, expr, deps in reversed(self.lines):
            if name in needed:
                keep.append((name, expr))
                needed.update(deps)
        keep.reverse()
        # Guards go right after the last line they read, so that a failing one stops early.
        position = {name: i for i, (name, _) in enumerate(keep)}
        after: dict[int, list[str]] = {}
        for cond, deps in self.guards:
            at = max((position[d] for d in deps if d in position), default=-1)
            after.setdefault(at, []).append(cond)
        body = [f"    if not ({c}): return None" for c in after.get(-1, [])]
        for i, (name, expr) in enumerate(keep):
            body.append(f"    {name} = {expr}")
            body += [f"    if not ({c}): return None" for c in after.get(i, [])]
        body.append(f"    return ({', '.join(out_text)},)")
        source = f"def program({', '.join(self.inputs)}):\n" + "\n".join(body) + "\n"
        namespace = {"_floor": math.floor, "_ceil": math.ceil, "_isfinite": math.isfinite,
                     **{f"_chk{k}": fn for k, fn in enumerate(self.checks)},
                     **{f"_c{j}": fn for j, fn in enumerate(self.set_fns)},
                     **{f"_S{j}": fn.members for j, fn in enumerate(self.set_fns)}}
        exec(compile(source, f"<compiled sweep of {owner}>", "exec"), namespace)  # noqa: S102 - see above
        return namespace["program"], len(keep), len(self.guards)


def _leaves(value):
    if isinstance(value, Traced):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _leaves(v)


def _code(value) -> str:
    if isinstance(value, Traced):
        return value.name
    if isinstance(value, tuple):
        return "(" + "".join(_code(v) + ", " for v in value) + ")"
    return _lit(value)


def _parts(x):
    return (x.name, x.v, (x.name,)) if type(x) is Traced else (_lit(x), x, ())


def traced_int(x) -> bool:
    """Whether ``x`` is a traced whole number (an int at the traced variant)."""
    return type(x) is Traced and type(x.v) is int


class Traced:
    """A number computed from the swept variables (see the module docstring)."""

    __slots__ = ("tape", "name", "v")

    def __init__(self, tape: Tape, name: str, value):
        self.tape, self.name, self.v = tape, name, value

    # -- arithmetic: the value as Python computes it, and one line
    def _op(self, other, sym: str, fn, swap: bool = False):
        to = type(other)
        if to is Traced:
            on, ov, od = other.name, other.v, (other.name,)
        elif to is int or to is float or to is bool:
            on, ov, od = _lit(other), other, ()
        else:
            return NotImplemented
        sv = self.v
        if swap:
            an, av, bn, bv = on, ov, self.name, sv
            value = fn(ov, sv)
        else:
            an, av, bn, bv = self.name, sv, on, ov
            value = fn(sv, ov)
        # Identities that hold for every value of the traced operand (whole numbers only where a
        # float would differ: 0 * x is -0.0 for a negative x).
        if to is int:
            if ov == 1 and (sym == "*" or (sym == "//" and not swap and type(sv) is int)):
                return self
            if ov == 0 and type(sv) is int and (sym == "+" or (sym == "-" and not swap)):
                return self      # (for a float, -0.0 + 0 is 0.0)
        tv = type(value)
        if tv is not int and tv is not float:
            raise Untraceable(f"{sym} gave a {tv.__name__}")
        t = self.tape.line(f"({an} {sym} {bn})", (self.name, *od), value)
        if sym == "**":
            # int ** int is a float when the exponent is negative; a negative base to a
            # fractional power is complex: the result's type is guarded.
            self.tape.guard(f"type({t.name}) is {tv.__name__}", (t.name,))
        return t

    def __add__(self, o): return self._op(o, "+", _add)
    def __radd__(self, o): return self._op(o, "+", _add, True)
    def __sub__(self, o): return self._op(o, "-", _sub)
    def __rsub__(self, o): return self._op(o, "-", _sub, True)
    def __mul__(self, o): return self._op(o, "*", _mul)
    def __rmul__(self, o): return self._op(o, "*", _mul, True)
    def __truediv__(self, o): return self._op(o, "/", _truediv)
    def __rtruediv__(self, o): return self._op(o, "/", _truediv, True)
    def __floordiv__(self, o): return self._op(o, "//", _floordiv)
    def __rfloordiv__(self, o): return self._op(o, "//", _floordiv, True)
    def __mod__(self, o): return self._op(o, "%", _mod)
    def __rmod__(self, o): return self._op(o, "%", _mod, True)
    def __pow__(self, o): return self._op(o, "**", _pow)
    def __rpow__(self, o): return self._op(o, "**", _pow, True)

    def _unary(self, text: str, value):
        if type(value) not in (int, float):
            raise Untraceable(f"{text} gave a {type(value).__name__}")
        return self.tape.line(text.format(self.name), (self.name,), value)

    def __neg__(self): return self._unary("(-{})", -self.v)
    def __pos__(self): return self
    def __abs__(self): return self._unary("abs({})", abs(self.v))
    def __floor__(self): return self._unary("_floor({})", math.floor(self.v))
    def __ceil__(self): return self._unary("_ceil({})", math.ceil(self.v))
    def __trunc__(self): return self.to_int()

    def __round__(self, ndigits=None):
        if ndigits is None:
            return self._unary("round({})", round(self.v))
        return self.tape.line(f"round({self.name}, {_lit(ndigits)})", (self.name,), round(self.v, ndigits))

    def to_int(self):
        """``int(x)`` of the expression language."""
        return self if type(self.v) is int else self._unary("int({})", int(self.v))

    def to_float(self):
        """``float(x)`` of the expression language."""
        return self if type(self.v) is float else self._unary("float({})", float(self.v))

    def is_integer(self) -> bool:
        if type(self.v) is not float:
            raise Untraceable("is_integer of a whole number")
        return self._test(f"{self.name}.is_integer()", self.v.is_integer())

    # -- decisions: the outcome now, and a guard that it stays so
    def _test(self, cond: str, outcome: bool, deps: tuple | None = None) -> bool:
        outcome = bool(outcome)
        self.tape.guard(cond if outcome else f"not ({cond})", deps if deps is not None else (self.name,))
        return outcome

    def _cmp(self, other, sym: str, fn):
        if type(other) not in (int, float, bool, Traced):
            if sym in ("==", "!="):
                return sym == "!="     # a number never equals text, None or a tuple
            return NotImplemented
        bn, bv, bd = _parts(other)
        return self._test(f"({self.name} {sym} {bn})", fn(self.v, bv), (self.name, *bd))

    def __lt__(self, o): return self._cmp(o, "<", lambda a, b: a < b)
    def __le__(self, o): return self._cmp(o, "<=", lambda a, b: a <= b)
    def __gt__(self, o): return self._cmp(o, ">", lambda a, b: a > b)
    def __ge__(self, o): return self._cmp(o, ">=", lambda a, b: a >= b)
    def __eq__(self, o): return self._cmp(o, "==", lambda a, b: a == b)
    def __ne__(self, o): return self._cmp(o, "!=", lambda a, b: a != b)

    def __bool__(self):
        return self._test(self.name, self.v)

    def pin(self):
        """The value itself, for a use the program cannot follow with a traced number (a repeat
        count): a guard that the value stays this one, so the program is of this structure."""
        self._test(f"({self.name} == {_lit(self.v)})", True)
        return self.v

    def check_number(self, bounded: bool, limit: int) -> "Traced":
        """What the expression evaluator checks of each value, as guards: finite floats; whole
        numbers within ``limit`` when ``bounded``."""
        if type(self.v) is float:
            self._test(f"_isfinite({self.name})", math.isfinite(self.v))
        elif bounded:
            self._test(f"(-{limit} <= {self.name} <= {limit})", abs(self.v) <= limit)
        return self

    # -- what the program cannot repeat
    def __hash__(self):
        raise TypeError("a traced number is not hashable")

    def _refuse(self, *args):
        raise Untraceable("a traced number was converted or printed")

    __int__ = __float__ = __index__ = __complex__ = __str__ = __repr__ = __format__ = __len__ = _refuse
