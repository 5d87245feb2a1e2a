"""A small whitelisted evaluator for arithmetic in specs and convention rules.

Never calls ``eval``: the text is parsed with :mod:`ast` and only the node kinds below are
accepted; everything else is a :class:`SpecError`. Expressions are compiled once into
closures so that re-evaluating them with other variable values (sweeps) is cheap.
"""
from __future__ import annotations

import ast
import math
import operator
import re
import warnings
from fractions import Fraction
from functools import lru_cache
from typing import Any, Callable, Mapping

from .errors import SpecError
from .tracing import Traced
# Integers larger than MAX_ABS_INT in an expression are refused so that a hostile power or
# product cannot make calc allocate unbounded memory; real sizes are many orders smaller.
from .limits import MAX_ABS_INT, MAX_EXPR_CHARS, MAX_INT_DIGITS, MAX_POW_EXPONENT, clip


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The channel rounding MobileNets and EfficientNets use: the nearest multiple of
    ``divisor`` (at least ``min_value``, default ``divisor``), bumped up by one ``divisor``
    when rounding down lost more than 10 % of ``value``."""
    if divisor <= 0:
        raise SpecError(f"make_divisible: divisor must be positive, got {divisor}")
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, _int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def _int(value=0, *rest):
    # int("…") of a long text takes time quadratic in its length: refuse it first.
    if isinstance(value, str) and len(value) > MAX_INT_DIGITS:
        raise SpecError(f"int(): a text of {len(value):,} characters (at most {MAX_INT_DIGITS:,} digits)")
    if rest:
        raise SpecError("int() takes one value")
    if type(value) is Traced:   # a swept variable, traced (calc.sweep_compile)
        return value.to_int()
    return int(value)


def _float(value=0.0, *rest):
    if type(value) is Traced:
        return value.to_float() if not rest else float(value, *rest)
    return float(value, *rest)


def _round(value, ndigits=None):
    return round(value) if ndigits is None else round(value, ndigits)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "round": _round,
    "int": _int,
    "float": _float,
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


def _check_number(value, bounded: bool = True):
    if type(value) is Traced:
        return value.check_number(bounded, MAX_ABS_INT)
    if bounded and isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ABS_INT:
        raise SpecError("integer too large in expression (limit 2**256)")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"expression gives {value}")
    if isinstance(value, complex):   # a negative number to a fractional power: (-8) ** 0.5
        raise SpecError("expression gives a complex number (a negative number to a fractional power?)")
    return value


def _describe(value) -> str:
    """A value as a message names it: its kind and (clipped) text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Fraction)):
        return clip(value)
    if isinstance(value, str):
        return f"the word {clip(value)}"
    if isinstance(value, (list, tuple)):
        return f"the list {clip(list(value))}"
    return f"a {type(value).__name__}"


def _number(value, sym: str):
    # a Fraction: an exact count, or a tool's float64 value (calc.conventions.tools)
    if not isinstance(value, (int, float, Fraction, Traced)):
        raise SpecError(f"'{sym}' needs numbers, got {_describe(value)}")
    return value


def _binop(op_type, left: Compiled, right: Compiled, bounded: bool) -> Compiled:
    fn = _BINOPS[op_type]
    sym = _SYMBOL[op_type]

    def run(env):
        a, b = _number(left(env), sym), _number(right(env), sym)
        if op_type is ast.Pow and (abs(b) > MAX_POW_EXPONENT):
            raise SpecError(f"exponent {b} too large (limit {MAX_POW_EXPONENT})")
        try:
            return _check_number(fn(a, b), bounded)
        except ZeroDivisionError:
            raise SpecError(f"division by zero in '{sym}'") from None
        except OverflowError:
            raise SpecError(f"number too large in '{sym}'") from None
        except (TypeError, ValueError) as exc:   # pragma: no cover - numbers only reach here
            raise SpecError(f"cannot compute '{sym}': {exc}") from None
    return run


def _whole(value, what: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(f"{what} must be a whole number, got {_describe(value)}")
    return value


def _subscript(seq: Compiled, node: ast.AST, bounded: bool) -> Compiled:
    # Lists come from list variables such as ``layers: [3, 4, 6, 3]``: ``layers[i]`` (an index
    # may be negative) or a slice ``layers[:i]`` (for running sums such as block offsets).
    if isinstance(node, ast.Slice):
        if node.step is not None:
            raise SpecError("a slice takes no step")
        lower = _compile(node.lower, bounded) if node.lower is not None else None
        upper = _compile(node.upper, bounded) if node.upper is not None else None

        def run_slice(env):
            values = _as_list(seq(env))
            a = None if lower is None else _whole(lower(env), "a slice bound")
            b = None if upper is None else _whole(upper(env), "a slice bound")
            return values[a:b]
        return run_slice
    index = _compile(node, bounded)

    def run(env):
        values, i = _as_list(seq(env)), _whole(index(env), "a list index")
        if not -len(values) <= i < len(values):
            raise SpecError(f"index {i} is out of range for a list of {len(values)}")
        return values[i]
    return run


def _as_list(values):
    if not isinstance(values, (list, tuple)):
        raise SpecError(f"only a list can be indexed, got {_describe(values)}")
    return list(values)


def _compile(node: ast.AST, bounded: bool = True) -> Compiled:
    """``bounded``: refuse integers beyond MAX_ABS_INT (spec expressions); the conventions'
    own rules compute exact counts, however large, and are not bounded."""
    def sub(n):
        return _compile(n, bounded)
    if isinstance(node, ast.Expression):
        return sub(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _text(node.value)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (bool, int, float)) or node.value is None:
            value = _check_number(node.value, bounded)
            return lambda env: value
        kind = "text in quotes" if isinstance(node.value, (str, bytes)) else f"the constant {clip(node.value)}"
        raise SpecError(f"{kind} is not allowed in an expression (a word must be written without quotes)")
    if isinstance(node, ast.Attribute):
        return _shape_letter(node, bounded)
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
        return _binop(type(node.op), sub(node.left), sub(node.right), bounded)
    if isinstance(node, ast.UnaryOp):
        operand = sub(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda env: _check_number(-_number(operand(env), "-"), bounded)
        if isinstance(node.op, ast.UAdd):
            return lambda env: +_number(operand(env), "+")
        if isinstance(node.op, ast.Not):
            return lambda env: not operand(env)
    if isinstance(node, ast.BoolOp):
        parts = [sub(v) for v in node.values]
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
        first = sub(node.left)
        rest = [(_CMPOPS[type(o)], sub(c)) for o, c in zip(node.ops, node.comparators)]

        def run_cmp(env):
            left = first(env)
            for fn, right_c in rest:
                right = right_c(env)
                try:
                    if not fn(left, right):
                        return False
                except TypeError:   # 'relu' < 3: text and numbers have no order
                    raise SpecError(f"cannot compare {_describe(left)} with {_describe(right)}") from None
                left = right
            return True
        return run_cmp
    if isinstance(node, ast.Subscript):
        return _subscript(sub(node.value), node.slice, bounded)
    if isinstance(node, ast.IfExp):
        test, body, orelse = sub(node.test), sub(node.body), sub(node.orelse)
        return lambda env: body(env) if test(env) else orelse(env)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            what = (f"function {node.func.id!r}" if isinstance(node.func, ast.Name)
                    else f"calling {clip(_source(node.func), 40)}")
            raise SpecError(f"{what} is not allowed; the functions are {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise SpecError("keyword arguments are not allowed in expressions")
        fname = node.func.id
        fn = FUNCTIONS[fname]
        args = [sub(a) for a in node.args]

        def run_call(env):
            values = [a(env) for a in args]
            try:
                return _check_number(fn(*values), bounded)
            except SpecError:
                raise
            except ZeroDivisionError:
                raise SpecError(f"division by zero in {fname}()") from None
            except (TypeError, ValueError, OverflowError) as exc:
                raise SpecError(f"{fname}(): {exc}") from None
        return run_call
    raise SpecError(f"{_construct(node)} is not allowed in an expression "
                    "(allowed: numbers, names, list[index], list[a:b], + - * / // % **, comparisons, "
                    "and/or/not, 'a if c else b', and the functions " + ", ".join(sorted(FUNCTIONS)) + ")")


# What the user wrote, for the constructs the evaluator refuses.
_WORDS = {
    ast.In: "'in'", ast.NotIn: "'not in'", ast.Is: "'is'", ast.IsNot: "'is not'",
    ast.Invert: "'~'", ast.BitAnd: "'&'", ast.BitOr: "'|'", ast.BitXor: "'^' (write ** for a power)",
    ast.LShift: "'<<'", ast.RShift: "'>>'", ast.MatMult: "'@'",
    ast.Attribute: "attribute access (a.b)", ast.Lambda: "lambda", ast.List: "a list in brackets",
    ast.Tuple: "a tuple (a, b)", ast.Dict: "a mapping {...}", ast.Set: "a set {...}",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension", ast.JoinedStr: "an f-string", ast.NamedExpr: "':='",
    ast.Starred: "'*' unpacking", ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}


def _construct(node: ast.AST) -> str:
    if isinstance(node, ast.Compare):
        bad = next(o for o in node.ops if type(o) not in _CMPOPS)
        return _WORDS.get(type(bad), f"'{type(bad).__name__}'")
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return _WORDS.get(type(node.op), f"'{type(node.op).__name__}'")
    return _WORDS.get(type(node), f"'{type(node).__name__}'")


def _source(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # noqa: BLE001 - only for a message
        return "this"


def _parse(text: str) -> ast.AST:
    # Python warns on some odd text ('1if x', '3x'): the user gets an error or a value, not a
    # warning line from the parser on standard error.
    text = shape_refs(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(text.strip(), mode="eval")


@lru_cache(maxsize=4096)
def compile_expr(text: str, bounded: bool = True) -> Compiled:
    """Parse ``text`` once; the result evaluates it against a mapping of names. ``bounded``
    (spec expressions) refuses integers beyond 2**256; a convention's rule, which computes an
    exact count from the layer's facts, is not bounded."""
    if not isinstance(text, str):
        raise SpecError(f"an expression must be text, got {_describe(text)}")
    if len(text) > MAX_EXPR_CHARS:
        raise SpecError(f"expression of {len(text):,} characters is longer than {MAX_EXPR_CHARS} "
                        f"characters ({clip(text, 40)})")
    try:
        tree = _parse(text)
    except SyntaxError as exc:
        hint = ""
        if "never closed" in exc.msg or "unmatched" in exc.msg:
            hint = (" (inside YAML's {...} or [...], quote an expression that contains commas or "
                    "brackets: out: \"max(8, c // 2)\")")
        raise SpecError(f"cannot parse expression {clip(text)}: {exc.msg}{hint}") from None
    except (RecursionError, MemoryError, ValueError):
        raise SpecError(f"cannot parse expression {text!r}") from None
    try:
        return _compile(tree, bounded)
    except RecursionError:
        raise SpecError(f"expression {text!r} nests too deeply") from None


def names_in(text: str) -> set[str]:
    """The free names an expression refers to (for messages and checks); none for a text too
    long to be an expression (it is refused when evaluated)."""
    if not isinstance(text, str) or len(text) > MAX_EXPR_CHARS:
        return set()
    try:
        return {n.id for n in ast.walk(_parse(text)) if isinstance(n, ast.Name)}
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return set()


def evaluate(text: str, env: Mapping[str, Any], bounded: bool = True):
    """Evaluate ``text`` with the names in ``env``; an unknown name is a SpecError listing the known ones."""
    fn = compile_expr(text, bounded)
    try:
        return fn(env)
    except _Undefined as exc:
        if exc.name == IN_NAME:
            raise SpecError(f"'in' in {text!r} names the tensor entering an item: only an item's arguments, "
                            "its 'when' and the parameters of a block it uses can read it, not a variable "
                            "or an input shape") from None
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


# ---------------------------------------------------------------------------- the incoming shape
# `in` in an item's expression is the shape of the tensor entering the item, one sample's (the
# batch excluded, as permute and reshape dims are): in[0], in[-1], len(in), and the letters of
# PyTorch's channels-first layouts: (C, L) as Conv1d reads, (C, H, W) as Conv2d, (C, D, H, W)
# as Conv3d. `in` is a Python keyword, so the text is rewritten before parsing: an `in` where an
# operand may stand (not after a name, number, text or closing bracket, where it would be the
# membership test that expressions refuse) becomes the name IN_NAME, which the builder binds.
IN_NAME = "__in__"
_LETTERS = {2: "CL", 3: "CHW", 4: "CDHW"}


def shape_refs(text: str) -> str:
    """``text`` with each `in` that names the incoming shape written as IN_NAME."""
    if "in" not in text or not re.search(r"\bin\b", text):
        return text
    import io
    import keyword
    import tokenize
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return text   # the parser says what is wrong
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    spots = []
    prev = None
    for tok in tokens:
        if tok.type in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
            continue
        if tok.type == tokenize.NAME and tok.string == "in":
            operand_before = prev is not None and (
                (prev.type == tokenize.NAME and not keyword.iskeyword(prev.string))
                or prev.type in (tokenize.NUMBER, tokenize.STRING)
                or prev.string in (")", "]", "}"))
            if not operand_before:
                spots.append(offsets[tok.start[0] - 1] + tok.start[1])
        prev = tok
    for at in reversed(spots):
        text = text[:at] + IN_NAME + text[at + 2:]
    return text


def _shape_letter(node: ast.Attribute, bounded: bool) -> Compiled:
    """``in.H``: a dimension of the incoming shape by its letter (see IN_NAME)."""
    if not (isinstance(node.value, ast.Name) and node.value.id == IN_NAME):
        raise SpecError("attribute access (a.b) is not allowed in an expression; only the incoming shape "
                        "has named dimensions (in.C, in.H, in.W, in.L, in.D)")
    letter = node.attr
    if letter not in "CLDHW" or len(letter) != 1:
        raise SpecError(f"in.{letter}: the incoming shape's dimensions are named C, L (rank 2), C, H, W "
                        "(rank 3) and C, D, H, W (rank 4); index it for others: in[0], in[-1]")

    def run(env):
        try:
            shape = env[IN_NAME]
        except KeyError:
            raise _Undefined(IN_NAME) from None
        letters = _LETTERS.get(len(shape), "")
        if letter not in letters:
            layout = ", ".join(_LETTERS[len(shape)]) if letters else None
            has = f"(rank {len(shape)}: {layout})" if layout else f"(rank {len(shape)}, which has no named dimensions)"
            raise SpecError(f"in.{letter}: the tensor entering this item is {tuple(shape)} {has}; {letter} is a "
                            "dimension of " + " or ".join("(" + ", ".join(v) + ")" for v in _LETTERS.values()
                                                           if letter in v)
                            + " (PyTorch's channels-first layouts, batch excluded); index other layouts: "
                              "in[0], in[-1]")
        return shape[letters.index(letter)]
    return run
