"""A small whitelisted evaluator for arithmetic in specs and convention rules.

Never calls ``eval``: the text is parsed with :mod:`ast` and only the node kinds below are
accepted; everything else is a :class:`SpecError`. Expressions are compiled once into
closures so that re-evaluating them with other variable values (sweeps) is cheap.
"""
from __future__ import annotations

import ast
import math
import operator
from fractions import Fraction
from functools import lru_cache
from typing import Any, Callable, Mapping

from .errors import SpecError

MAX_EXPR_CHARS = 500
MAX_POW_EXPONENT = 64
# Integers larger than this in an expression are refused so that a hostile power or product
# cannot make calc allocate unbounded memory; real sizes are many orders of magnitude smaller.
MAX_ABS_INT = 1 << 256


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The channel rounding MobileNets and EfficientNets use: the nearest multiple of
    ``divisor`` (at least ``min_value``, default ``divisor``), bumped up by one ``divisor``
    when rounding down lost more than 10 % of ``value``."""
    if divisor <= 0:
        raise SpecError(f"make_divisible: divisor must be positive, got {divisor}")
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def _round(value, ndigits=None):
    return round(value) if ndigits is None else round(value, ndigits)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "round": _round,
    "int": int,
    "float": float,
    "floor": math.floor,
    "ceil": math.ceil,
    "make_divisible": make_divisible,
    "len": len,
    "sum": sum,
}

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
           ast.Mod: "%", ast.Pow: "**"}

Compiled = Callable[[Mapping[str, Any]], Any]


class _Undefined(Exception):
    def __init__(self, name: str):
        self.name = name


def _check_number(value):
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ABS_INT:
        raise SpecError("integer too large in expression (limit 2**256)")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"expression gives {value}")
    return value


def _binop(op_type, left: Compiled, right: Compiled) -> Compiled:
    fn = _BINOPS[op_type]
    sym = _SYMBOL[op_type]

    def run(env):
        a, b = left(env), right(env)
        for v in (a, b):
            # a Fraction: an exact count, or a tool's float64 value (calc.conventions.tools)
            if not isinstance(v, (int, float, Fraction)):
                raise SpecError(f"'{sym}' needs numbers, got {v!r}")
        if op_type is ast.Pow and (abs(b) > MAX_POW_EXPONENT):
            raise SpecError(f"exponent {b} too large (limit {MAX_POW_EXPONENT})")
        try:
            return _check_number(fn(a, b))
        except ZeroDivisionError:
            raise SpecError(f"division by zero in '{sym}'") from None
        except OverflowError:
            raise SpecError(f"number too large in '{sym}'") from None
    return run


def _whole(value, what: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(f"{what} must be a whole number, got {value!r}")
    return value


def _subscript(seq: Compiled, node: ast.AST) -> Compiled:
    # Lists come from list variables such as ``layers: [3, 4, 6, 3]``: ``layers[i]`` (an index
    # may be negative) or a slice ``layers[:i]`` (for running sums such as block offsets).
    if isinstance(node, ast.Slice):
        if node.step is not None:
            raise SpecError("a slice takes no step")
        lower = _compile(node.lower) if node.lower is not None else None
        upper = _compile(node.upper) if node.upper is not None else None

        def run_slice(env):
            values = _as_list(seq(env))
            a = None if lower is None else _whole(lower(env), "a slice bound")
            b = None if upper is None else _whole(upper(env), "a slice bound")
            return values[a:b]
        return run_slice
    index = _compile(node)

    def run(env):
        values, i = _as_list(seq(env)), _whole(index(env), "a list index")
        if not -len(values) <= i < len(values):
            raise SpecError(f"index {i} is out of range for a list of {len(values)}")
        return values[i]
    return run


def _as_list(values):
    if not isinstance(values, (list, tuple)):
        raise SpecError(f"only a list can be indexed, got {values!r}")
    return list(values)


def _compile(node: ast.AST) -> Compiled:
    if isinstance(node, ast.Expression):
        return _compile(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _text(node.value)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (bool, int, float)) or node.value is None:
            value = _check_number(node.value)
            return lambda env: value
        raise SpecError(f"constant {node.value!r} is not allowed in an expression")
    if isinstance(node, ast.Name):
        name = node.id
        if name in ("True", "False", "None"):  # pragma: no cover - parsed as Constant
            pass

        def lookup(env):
            try:
                return env[name]
            except KeyError:
                raise _Undefined(name) from None
        return lookup
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _binop(type(node.op), _compile(node.left), _compile(node.right))
    if isinstance(node, ast.UnaryOp):
        operand = _compile(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda env: -operand(env)
        if isinstance(node.op, ast.UAdd):
            return lambda env: +operand(env)
        if isinstance(node.op, ast.Not):
            return lambda env: not operand(env)
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v) for v in node.values]
        if isinstance(node.op, ast.And):
            def run_and(env):
                result = True
                for p in parts:
                    result = p(env)
                    if not result:
                        return result
                return result
            return run_and

        def run_or(env):
            result = False
            for p in parts:
                result = p(env)
                if result:
                    return result
            return result
        return run_or
    if isinstance(node, ast.Compare) and all(type(o) in _CMPOPS for o in node.ops):
        first = _compile(node.left)
        rest = [(_CMPOPS[type(o)], _compile(c)) for o, c in zip(node.ops, node.comparators)]

        def run_cmp(env):
            left = first(env)
            for fn, right_c in rest:
                right = right_c(env)
                try:
                    if not fn(left, right):
                        return False
                except TypeError:   # 'relu' < 3: text and numbers have no order
                    raise SpecError(f"cannot compare {left!r} with {right!r}") from None
                left = right
            return True
        return run_cmp
    if isinstance(node, ast.Subscript):
        return _subscript(_compile(node.value), node.slice)
    if isinstance(node, ast.IfExp):
        test, body, orelse = _compile(node.test), _compile(node.body), _compile(node.orelse)
        return lambda env: body(env) if test(env) else orelse(env)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            what = node.func.id if isinstance(node.func, ast.Name) else "this call"
            raise SpecError(f"function {what!r} is not allowed; allowed: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise SpecError("keyword arguments are not allowed in expressions")
        fname = node.func.id
        fn = FUNCTIONS[fname]
        args = [_compile(a) for a in node.args]

        def run_call(env):
            values = [a(env) for a in args]
            try:
                return _check_number(fn(*values))
            except SpecError:
                raise
            except ZeroDivisionError:
                raise SpecError(f"division by zero in {fname}()") from None
            except (TypeError, ValueError, OverflowError) as exc:
                raise SpecError(f"{fname}(): {exc}") from None
        return run_call
    raise SpecError(f"'{type(node).__name__}' is not allowed in an expression "
                    "(allowed: numbers, names, list[index], list[a:b], + - * / // % **, comparisons, "
                    "and/or/not, 'a if c else b', and the functions " + ", ".join(sorted(FUNCTIONS)) + ")")


@lru_cache(maxsize=4096)
def compile_expr(text: str) -> Compiled:
    """Parse ``text`` once; the result evaluates it against a mapping of names."""
    if len(text) > MAX_EXPR_CHARS:
        raise SpecError(f"expression longer than {MAX_EXPR_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SpecError(f"cannot parse expression {text!r}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise SpecError(f"cannot parse expression {text!r}") from None
    return _compile(tree)


def names_in(text: str) -> set[str]:
    """The free names an expression refers to (for messages and checks)."""
    try:
        return {n.id for n in ast.walk(ast.parse(text.strip(), mode="eval")) if isinstance(n, ast.Name)}
    except (SyntaxError, RecursionError, ValueError):
        return set()


def evaluate(text: str, env: Mapping[str, Any]):
    """Evaluate ``text`` with the names in ``env``; an unknown name is a SpecError listing the known ones."""
    fn = compile_expr(text)
    try:
        return fn(env)
    except _Undefined as exc:
        known = ", ".join(sorted(k for k in env if not k.startswith("_"))) or "none"
        raise SpecError(f"undefined name {exc.name!r} in {text!r} (defined: {known})") from None
    except RecursionError:
        raise SpecError(f"expression {text!r} nests too deeply") from None


# ---------------------------------------------------------------------------- additions (issue 12)
# Quoted text ('relu', "same") compares with == and != to the words block parameters hold
# (`act: relu` passes the word relu); computed configurations (RegNet's widths) need log, exp,
# sqrt and range. Each is bounded: range to MAX_RANGE items, exp to finite results.
MAX_RANGE = 10_000


def _text(value: str) -> Compiled:
    return lambda env: value


def _range(*bounds):
    for b in bounds:
        if isinstance(b, bool) or not isinstance(b, int):
            raise SpecError(f"range() takes whole numbers, got {b!r}")
    values = range(*bounds)
    if len(values) > MAX_RANGE:
        raise SpecError(f"range() of {len(values):,} numbers (at most {MAX_RANGE:,})")
    return list(values)


FUNCTIONS.update({
    "log": math.log,      # log(x) natural, log(x, base)
    "exp": math.exp,      # an overflow is an error (OverflowError → SpecError in run_call)
    "sqrt": math.sqrt,
    "range": _range,      # range(n), range(a, b), range(a, b, step): a list
})
