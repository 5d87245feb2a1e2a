"""Formulas shown to people: one template gives the symbolic text, the text with the values
put in, and the value, so the three cannot drift apart.

A template is an expression in the syntax of :mod:`calc.expr` over named symbols; each symbol
has a display name and a value::

    step("params", "params", "(kh * kw * c // g + 1) * co",
         kh=("K_h", 11), kw=("K_w", 11), c=("C_in", 3), g=("g", 1), co=("C_out", 64))
    # params = (K_h·K_w·C_in/g + 1)·C_out = (11·11·3/1 + 1)·64 = 23,296

Rendering: ``*`` is ``·``, ``-`` is ``−``, ``//`` and ``/`` are ``/`` (templates use ``//`` only
for exact divisions and ``floor(a / b)`` where the result is rounded), ``**`` is ``^``.
The value is computed by the same evaluator the conventions use.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping, NamedTuple

from .expr import evaluate
from .shapes import fmt_shape


@dataclass(frozen=True)
class Step:
    """One line of an explanation: ``label = formula = substituted = value``.

    ``key`` names what the value is, so that it can be checked against the computed numbers:
    ``shape`` (the output shape), ``shape.i`` (its dimension i), ``weights``, ``bias``,
    ``buffers``, ``params``, an operation name from ``ops()`` (``mac``, ``add`` …), or a
    helper quantity (``rows`` …). ``note`` is an optional remark shown after the value.
    """

    key: str
    label: str
    formula: str
    substituted: str
    value: Any
    note: str = ""


_PREC = {ast.IfExp: 0, ast.BoolOp: 1, ast.Compare: 3, ast.Add: 5, ast.Sub: 5, ast.Mult: 6,
         ast.Div: 6, ast.FloorDiv: 6, ast.Mod: 6, ast.Pow: 8}
_SYM = {ast.Add: " + ", ast.Sub: " − ", ast.Mult: "·", ast.Div: "/", ast.FloorDiv: "/",
        ast.Mod: " mod ", ast.Pow: "^"}
_CMP = {ast.Eq: " == ", ast.NotEq: " != ", ast.Lt: " < ", ast.LtE: " ≤ ", ast.Gt: " > ", ast.GtE: " ≥ "}


def _num(value) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return format(value, ".12g")
    return str(value)


def render(text: str, name: Callable[[str], str], values: Mapping[str, Any] | None = None,
           elide: bool = True) -> str:
    """The expression ``text`` with ``name(symbol)`` for each symbol, in mathematical notation.
    With ``values``, a conditional shows only the branch taken, and (``elide``) a division by a
    symbol whose value is 1 is left out (C_in/g with g = 1)."""
    return _render(_parse(text), name, values or {}, elide)[0]


@lru_cache(maxsize=2048)
def _parse(text: str) -> ast.AST:
    return ast.parse(text.strip(), mode="eval").body


def _taken(node: ast.IfExp, values) -> ast.AST | None:
    """The branch of a conditional that ``values`` select (None when they cannot tell)."""
    if not values:
        return None
    try:
        return node.body if evaluate(ast.unparse(node.test), values, bounded=False) else node.orelse
    except Exception:  # noqa: BLE001 - a test over symbols without values: show both branches
        return None


def _render(node, name, values, elide=True) -> tuple[str, int]:
    if isinstance(node, ast.Name):
        return name(node.id), 9
    if isinstance(node, ast.Constant):
        return _num(node.value), 9
    if isinstance(node, ast.BinOp):
        if (elide and isinstance(node.op, (ast.Div, ast.FloorDiv)) and isinstance(node.right, ast.Name)
                and values.get(node.right.id) == 1):
            return _render(node.left, name, values, elide)
        prec = _PREC[type(node.op)]
        left, lp = _render(node.left, name, values, elide)
        right, rp = _render(node.right, name, values, elide)
        if lp < prec:
            left = f"({left})"
        # a − (b + c), a/(b·c): the right side needs parentheses at equal precedence too
        if rp < prec or (rp == prec and not isinstance(node.op, (ast.Add, ast.Mult))):
            right = f"({right})"
        return left + _SYM[type(node.op)] + right, prec
    if isinstance(node, ast.UnaryOp):
        inner, p = _render(node.operand, name, values, elide)
        inner = inner if p >= 7 else f"({inner})"
        return {ast.USub: "−", ast.UAdd: "+", ast.Not: "not "}[type(node.op)] + inner, 7
    if isinstance(node, ast.Call):
        args = ", ".join(_render(a, name, values, elide)[0] for a in node.args)
        return f"{node.func.id}({args})", 9
    if isinstance(node, ast.IfExp):
        branch = _taken(node, values)
        if branch is not None:
            return _render(branch, name, values, elide)
        body, bp = _render(node.body, name, values)
        test, _ = _render(node.test, name, values)
        orelse, _ = _render(node.orelse, name, values)
        return f"{body if bp > 0 else '(' + body + ')'} if {test} else {orelse}", 0
    if isinstance(node, ast.Compare):
        out, _ = _render(node.left, name, values)
        for op, comp in zip(node.ops, node.comparators):
            out += _CMP[type(op)] + _render(comp, name, values)[0]
        return out, 3
    if isinstance(node, ast.BoolOp):
        word = " and " if isinstance(node.op, ast.And) else " or "
        return word.join(_render(v, name, values)[0] for v in node.values), 1
    raise ValueError(f"cannot render {ast.dump(node)}")  # pragma: no cover - templates are ours


def substitute(text: str, values: Mapping[str, Any]) -> str:
    """``text`` with every symbol replaced by its value."""
    return render(text, lambda n: _num(values[n]) if n in values else n, values)


def step(key: str, label: str, template: str, note: str = "", **symbols: tuple[str, Any]) -> Step:
    """A :class:`Step` from a template and its symbols ``name=(display, value)``."""
    values = {k: v for k, (_, v) in symbols.items()}
    formula = render(template, lambda n: symbols[n][0] if n in symbols else n)
    return Step(key, label, formula, substitute(template, values), evaluate(template, values, bounded=False), note)


def given(key: str, label: str, formula: str, value: Any, note: str = "") -> Step:
    """A step that states a value without arithmetic (``C_out = out = 64``)."""
    return Step(key, label, formula, fmt_shape(value) if isinstance(value, tuple) else _num(value), value, note)


# ---------------------------------------------------------------------------- declarations
# A layer declares each quantity once, as a template (see the module docstring) over named
# symbols; from that one declaration calc derives the integer (compiled below), the
# explanation with values (:func:`explain_quantities`) and the text `calc layers` prints
# (:func:`describe_quantities`).

@dataclass(frozen=True)
class Q:
    """One declared quantity of a layer.

    ``name`` is the symbol later templates use for its value (``H_out``, ``rows``, ``mac``).
    ``key`` says what it is, for the analysis and the checks: ``shape.i`` (dimension i of the
    output), ``weights``, ``bias``, ``buffers``, an operation (``mac``, ``add`` …) or a fact a
    convention reads; it defaults to ``name``. ``when`` names a 0/1 symbol: the quantity is 0
    when it is false, and the explanation leaves it out. ``fact``: read by conventions, not
    shown in explanations.
    """

    name: str
    expr: str
    note: str = ""
    key: str = ""
    when: str = ""
    fact: bool = False

    @property
    def role(self) -> str:
        return self.key or self.name


PARAM_ROLES = ("weights", "bias", "buffers")

# Functions a declaration may call. floor(a / b) and ceil(a / b) are compiled to exact integer
# division, so that no size loses precision in a float; ``a // b`` states an exact division
# (C_in // g) and renders as a fraction.
_DECL_FUNCS = {"floor", "ceil", "min", "max", "gcd", "int"}


class _ToCode(ast.NodeTransformer):
    """A declaration's tree as Python code over local variables (``_s_NAME`` for symbol NAME)."""

    def __init__(self):
        self.names: set[str] = set()

    def visit_Name(self, node):
        self.names.add(node.id)
        return ast.copy_location(ast.Name("_s_" + node.id, ast.Load()), node)

    def visit_Call(self, node):
        fname = node.func.id
        if fname in ("floor", "ceil") and len(node.args) == 1 and isinstance(node.args[0], ast.BinOp) \
                and isinstance(node.args[0].op, ast.Div):
            a, b = self.visit(node.args[0].left), self.visit(node.args[0].right)
            if fname == "floor":
                return ast.BinOp(a, ast.FloorDiv(), b)
            # ceil(a / b) = −(−a // b)
            return ast.UnaryOp(ast.USub(), ast.BinOp(ast.UnaryOp(ast.USub(), a), ast.FloorDiv(), b))
        node.args = [self.visit(a) for a in node.args]
        return node


_ALLOWED_NODES = (ast.Expression, ast.Name, ast.Load, ast.Constant, ast.BinOp, ast.UnaryOp, ast.IfExp,
                  ast.Compare, ast.BoolOp, ast.Call, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv,
                  ast.Mod, ast.Pow, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or, ast.Eq, ast.NotEq,
                  ast.Lt, ast.LtE, ast.Gt, ast.GtE)


class Compiled(NamedTuple):
    """A class's declarations compiled: ``fill(v)`` adds every quantity to the symbol values
    ``v`` (for explanations); ``run(v)`` returns (the declared output dimensions, (weights,
    bias, buffers), the operations and facts) without building the full mapping, which is what
    the analysis needs on its hot path."""

    fill: Callable[[dict], dict]
    run: Callable[[dict], tuple]


def compile_quantities(owner: str, quantities: tuple[Q, ...], shape_names: tuple[str, ...],
                       param_names: tuple[str, ...], op_names: tuple[str, ...]) -> Compiled:
    """Compile a class's declarations once.

    The templates are the package's own source (never text from a spec): each is checked against
    the same small set of node kinds as the spec evaluator, then turned into Python statements
    over local variables and compiled, because evaluating them is on the analysis's hot path."""
    from math import ceil, floor, gcd
    declared: list[str] = []
    free: list[str] = []
    lines = []
    for q in quantities:
        tree = ast.parse(q.expr.strip(), mode="eval")
        for node in ast.walk(tree):
            if not isinstance(node, _ALLOWED_NODES) or (
                    isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name)
                                                    or node.func.id not in _DECL_FUNCS or node.keywords)):
                raise RuntimeError(f"{owner}: declaration {q.name} = {q.expr!r} uses {ast.dump(node)[:60]}")
        code = _ToCode()
        value = ast.unparse(code.visit(tree).body)
        needed = code.names | ({q.when} if q.when else set())
        free += sorted(n for n in needed if n not in declared and n not in free)
        if q.when:
            value = f"({value}) if _s_{q.when} else 0"
        lines.append(f"    _s_{q.name} = {value}")
        declared.append(q.name)
    load = [f"    _s_{n} = v[{n!r}]" for n in free]
    store = [f"    v[{n!r}] = _s_{n}" for n in declared]
    ops = ", ".join(f"{n!r}: _s_{n}" for n in op_names)
    params = ", ".join(f"_s_{n}" if n else "0" for n in param_names)
    dims = "".join(f"_s_{n}, " for n in shape_names)
    source = "\n".join(["def fill(v):", *load, *lines, *store, "    return v", "",
                        "def run(v):", *load, *lines, f"    return ({dims}), ({params}), {{{ops}}}", ""])
    namespace = {"floor": floor, "ceil": ceil, "min": min, "max": max, "gcd": gcd, "int": int}
    exec(compile(source, f"<declarations of {owner}>", "exec"), namespace)  # noqa: S102 - our own templates
    return Compiled(namespace["fill"], namespace["run"])


def explain_quantities(quantities: tuple[Q, ...], values: Mapping[str, Any]) -> list[Step]:
    """The explanation of declared quantities: each one's template, with its symbols, with their
    values, and its value (the one the analysis uses)."""
    steps = []
    for q in quantities:
        if q.fact or (q.when and not values[q.when]):
            continue
        formula = render(q.expr, str, values, elide=False)
        if formula == q.name:
            continue
        substituted = substitute(q.expr, values)
        steps.append(Step(q.role, q.name, formula, substituted, values[q.name], q.note))
    return steps


def describe_quantities(quantities: tuple[Q, ...]) -> list[tuple[str, str]]:
    """(name, formula) of each declaration, as `calc layers` prints them."""
    out = []
    for q in quantities:
        text = render(q.expr, str)
        if q.when:
            text += f"   (if {q.when})"
        if q.fact:
            text += "   (a fact for conventions)"
        out.append((q.name, text))
    return out
