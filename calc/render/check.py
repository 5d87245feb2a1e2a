"""`calc check` output: one line per expectation (✓/✗, expected, actual, difference), calc's own
derivation under each mismatch; the property search's draws and counterexample; JSON for
programs. Nothing here prints."""
from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

from ..shapes import fmt_shape
from .explain import format_step


def _show(value) -> str:
    if isinstance(value, (tuple, list)):
        return fmt_shape(tuple(value)) if all(isinstance(v, int) for v in value) else str(list(value))
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else format(value, ".12g")
    return str(value)


def _ratio(o) -> str:
    if isinstance(o.actual, tuple) or not o.expected or not o.actual:
        return ""
    r = Fraction(o.actual) / Fraction(o.expected)
    return f", actual/expected = {r}" if r.denominator < 1000 and r.numerator < 1000 else ""


def outcome_line(o) -> str:
    mark = "✓" if o.ok else "✗"
    written = o.written if isinstance(o.written, str) else None
    expected = _show(o.expected) + (f" (= {written})" if written else "")
    line = f"{mark} {o.item} · {o.quantity} ({o.convention})"
    if o.ok:
        line += f" = {_show(o.actual)}" + (f"   (expected {written})" if written else "")
    else:
        diff = o.difference
        line += f": expected {expected}, calc counts {_show(o.actual)}"
        if diff is not None:
            line += f", difference {'+' if diff > 0 else ''}{_show(diff)}{_ratio(o)}"
    where = f"line {o.line}" if o.line else ""
    if o.note:
        where = ", ".join(filter(None, (where, o.note)))
    return line + (f"   [{where}]" if where else "")


def _outcome_lines(outcomes: list) -> list[str]:
    lines = []
    for o in outcomes:
        lines.append(outcome_line(o))
        if not o.ok and o.derivation:
            lines.append(f"    calc's derivation of {o.item}:")
            for sec in o.derivation:
                lines.append(f"      {sec.title}" + (f" — {sec.note}" if sec.note else ""))
                lines += [f"        {format_step(s)}" for s in sec.steps]
    return lines


def format_check(name: str, outcomes: list, source: str | None = None) -> str:
    lines = [f"{name}: {len(outcomes)} expectation{'s' if len(outcomes) != 1 else ''}"
             + (f" in {source}" if source else ""), ""]
    lines += _outcome_lines(outcomes)
    failed = sum(not o.ok for o in outcomes)
    lines += ["", f"{len(outcomes) - failed} hold, {failed} fail" if outcomes else
              "the spec states no expectations (add expect: to an item or to the spec)"]
    return "\n".join(lines) + "\n"


def _json_value(value) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Fraction):
        return str(value)
    return value


def outcome_record(o) -> dict[str, Any]:
    from ..errors import format_path
    record = {"item": o.item, "quantity": o.quantity, "convention": o.convention, "ok": o.ok,
              "written": _json_value(o.written), "expected": _json_value(o.expected),
              "actual": _json_value(o.actual), "difference": _json_value(o.difference),
              "path": format_path(o.path), "line": o.line}
    if o.note:
        record["note"] = o.note
    if o.derivation:
        record["derivation"] = [{"title": s.title, "steps": [format_step(st) for st in s.steps]}
                                for s in o.derivation]
    return record


def check_json(name: str, outcomes: list) -> str:
    return json.dumps({"model": name, "ok": all(o.ok for o in outcomes),
                       "expectations": [outcome_record(o) for o in outcomes]}, indent=2) + "\n"


def format_property(name: str, report) -> str:
    lines = [f"{name}: property check of {report.expressions} expression expectation"
             f"{'s' if report.expressions != 1 else ''} over {report.tried} drawn example"
             f"{'s' if report.tried != 1 else ''} (seed {report.seed}; ranges "
             + ", ".join(f"{k} {_range(v)}" for k, v in report.ranges.items()) + ")"]
    if report.skipped:
        lines.append(f"  {report.skipped} drawn example{'s' if report.skipped != 1 else ''} the network cannot take "
                     f"(skipped), e.g. {report.skip_reason}")
    if report.counterexample is None:
        lines.append(f"✓ every expression expectation holds at all {report.tried - report.skipped} examples")
        return "\n".join(lines) + "\n"
    values = ", ".join(f"{k}={_show(v)}" for k, v in report.counterexample.items())
    lines.append(f"✗ counterexample (shrunk in {report.shrink_steps} step{'s' if report.shrink_steps != 1 else ''} "
                 f"from {', '.join(f'{k}={_show(v)}' for k, v in report.first.items())}): {values}")
    n = len(report.outcomes)
    lines.append(f"  there, {n} expectation{'s fail' if n != 1 else ' fails'}:")
    lines += ["  " + line for line in _outcome_lines(report.outcomes)]
    lines.append(f"  run `calc check SPEC {' '.join(f'--set {k}={v}' for k, v in report.counterexample.items())}` "
                 "to see it again")
    return "\n".join(lines) + "\n"


def _range(v) -> str:
    return f"[{', '.join(_show(x) for x in v)}]"


def property_json(name: str, report) -> str:
    return json.dumps({"model": name, "ok": report.counterexample is None, "seed": report.seed,
                       "tried": report.tried, "skipped": report.skipped, "ranges": report.ranges,
                       "first_failure": report.first, "counterexample": report.counterexample,
                       "shrink_steps": report.shrink_steps,
                       "expectations": [outcome_record(o) for o in report.outcomes]}, indent=2) + "\n"
