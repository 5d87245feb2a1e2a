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
from typing import Any, Callable, Mapping

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


def render(text: str, name: Callable[[str], str], values: Mapping[str, Any] | None = None) -> str:
    """The expression ``text`` with ``name(symbol)`` for each symbol, in mathematical notation.
    With ``values``, a division by a symbol whose value is 1 is left out (C_in/g with g = 1)."""
    return _render(_parse(text), name, values or {})[0]


@lru_cache(maxsize=2048)
def _parse(text: str) -> ast.AST:
    return ast.parse(text.strip(), mode="eval").body


def _render(node, name, values) -> tuple[str, int]:
    if isinstance(node, ast.Name):
        return name(node.id), 9
    if isinstance(node, ast.Constant):
        return _num(node.value), 9
    if isinstance(node, ast.BinOp):
        if (isinstance(node.op, (ast.Div, ast.FloorDiv)) and isinstance(node.right, ast.Name)
                and values.get(node.right.id) == 1):
            return _render(node.left, name, values)
        prec = _PREC[type(node.op)]
        left, lp = _render(node.left, name, values)
        right, rp = _render(node.right, name, values)
        if lp < prec:
            left = f"({left})"
        # a − (b + c), a/(b·c): the right side needs parentheses at equal precedence too
        if rp < prec or (rp == prec and not isinstance(node.op, (ast.Add, ast.Mult))):
            right = f"({right})"
        return left + _SYM[type(node.op)] + right, prec
    if isinstance(node, ast.UnaryOp):
        inner, p = _render(node.operand, name, values)
        inner = inner if p >= 7 else f"({inner})"
        return {ast.USub: "−", ast.UAdd: "+", ast.Not: "not "}[type(node.op)] + inner, 7
    if isinstance(node, ast.Call):
        args = ", ".join(_render(a, name, values)[0] for a in node.args)
        return f"{node.func.id}({args})", 9
    if isinstance(node, ast.IfExp):
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
    return Step(key, label, formula, substitute(template, values), evaluate(template, values), note)


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
    """A declaration's tree as Python code over ``v`` (the symbol values)."""

    def visit_Name(self, node):
        return ast.copy_location(ast.Subscript(ast.Name("v", ast.Load()), ast.Constant(node.id), ast.Load()), node)

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


def compile_quantities(owner: str, quantities: tuple[Q, ...]) -> Callable[[dict], dict]:
    """One function that fills every declared quantity into a dict of symbol values, in order.

    The templates are the package's own source (never text from a spec), checked against the
    same small set of node kinds as the spec evaluator and then compiled by Python, because
    evaluating them is on the analysis's hot path (a compiled template costs a tenth of the
    closure evaluator's time)."""
    from math import ceil, floor, gcd
    body = []
    for q in quantities:
        tree = ast.parse(q.expr.strip(), mode="eval")
        for node in ast.walk(tree):
            if not isinstance(node, _ALLOWED_NODES) or (
                    isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name)
                                                    or node.func.id not in _DECL_FUNCS or node.keywords)):
                raise RuntimeError(f"{owner}: declaration {q.name} = {q.expr!r} uses {ast.dump(node)[:60]}")
        value = _ToCode().visit(tree).body
        if q.when:
            value = ast.IfExp(ast.Subscript(ast.Name("v", ast.Load()), ast.Constant(q.when), ast.Load()),
                              value, ast.Constant(0))
        body.append(ast.Assign([ast.Subscript(ast.Name("v", ast.Load()), ast.Constant(q.name), ast.Store())],
                               value))
    body.append(ast.Return(ast.Name("v", ast.Load())))
    fn = ast.FunctionDef("fill", ast.arguments([], [ast.arg("v")], None, [], [], None, []), body, [], None,
                         type_params=[]) if hasattr(ast, "TypeVar") else \
        ast.FunctionDef("fill", ast.arguments([], [ast.arg("v")], None, [], [], None, []), body, [], None)
    module = ast.fix_missing_locations(ast.Module([fn], []))
    namespace = {"floor": floor, "ceil": ceil, "min": min, "max": max, "gcd": gcd, "int": int}
    exec(compile(module, f"<declarations of {owner}>", "exec"), namespace)  # noqa: S102 - our own templates
    return namespace["fill"]


def explain_quantities(quantities: tuple[Q, ...], values: Mapping[str, Any]) -> list[Step]:
    """The explanation of declared quantities: each one's template, with its symbols, with their
    values, and its value (the one the analysis uses)."""
    steps = []
    for q in quantities:
        if q.fact or (q.when and not values[q.when]):
            continue
        formula = render(q.expr, str)
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
