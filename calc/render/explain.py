"""`calc explain` output: the entries of :func:`calc.explain.explain` as indented text, one
formula a line. Nothing here prints."""
from __future__ import annotations

from fractions import Fraction

from ..analysis import Analysis
from ..explain import Entry
from ..formula import Step, _num
from ..shapes import fmt_shape


def _value(value) -> str:
    if isinstance(value, tuple):
        return fmt_shape(value)
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Fraction):
        try:
            return format(float(value), ",.6g")
        except OverflowError:   # beyond a float: the exact value, rounded down
            return f"{int(value):,}"
    return _num(value)


def format_step(s: Step) -> str:
    parts = [s.label]
    for text in (s.formula, s.substituted):
        if text and text != parts[-1]:
            parts.append(text)
    value = _value(s.value)
    if value.replace(",", "") == parts[-1] and len(parts) > 1:
        parts[-1] = value
    elif value != parts[-1]:
        parts.append(value)
    line = " = ".join(parts)
    return line + (f"   ({s.note})" if s.note else "")


def _args(layer) -> str:
    shown = []
    for name, f in type(layer).model_fields.items():
        value = getattr(layer, name)
        # per-dimension defaults (padding 0 → (0, 0)) are defaults too
        if value == f.default or (isinstance(value, tuple) and value and all(v == f.default for v in value)):
            continue
        if isinstance(value, tuple) and len(set(value)) == 1:
            value = value[0]
        shown.append(f"{f.alias or name}={list(value) if isinstance(value, tuple) else value}")
    return f"{layer.type_name}({', '.join(shown)})"


def format_explanation(a: Analysis, entries: list[Entry]) -> str:
    lines = [f"{a.model.name} · input {fmt_shape(a.input_shape)} · batch {a.batch} · "
             f"convention {a.convention}", ""]
    for e in entries:
        pad = "  " * e.depth
        r = e.result
        if r.is_leaf:
            shapes = " + ".join(fmt_shape(s) for s in r.inputs) if r.inputs else fmt_shape(r.input_shape)
            head = f"{e.name} · {_args(r.layer)} · {shapes} → {fmt_shape(r.output_shape)}"
            if getattr(r, "tied_to", None):
                head += f" · weights shared with {r.tied_to} (its parameters are counted there)"
        else:
            kind = r.kind[6:] if r.kind.startswith("block:") else r.kind
            head = f"{e.name} · {kind} · {fmt_shape(r.input_shape)} → {fmt_shape(r.output_shape)}"
        lines.append(pad + head)
        for sec in e.sections:
            if not sec.steps:
                lines.append(f"{pad}  {sec.title}: {sec.note}")
                continue
            lines.append(f"{pad}  {sec.title}" + (f" — {sec.note}" if sec.note else ""))
            lines += [f"{pad}    {format_step(s)}" for s in sec.steps]
        lines.append("")
    return "\n".join(lines)
