"""`calc check --property`: the expectations written as expressions, checked at many values of
the variables drawn from the spec's ``ranges:``, and a failure shrunk to a minimal
counterexample. Own drawing and shrinking (no hypothesis needed); deterministic for a seed.

Drawing: the first example takes every variable at its low end, the second at its high end,
the rest uniformly (whole numbers stay whole; ``[low, high, step]`` draws from that grid).
Values the network cannot take (a kernel larger than its input) are skipped and counted.
Shrinking: one variable at a time, the smallest candidate that still fails is kept — the low
end, halfway points, then single steps down — until no variable can go lower, so a floor
error that shows at odd sizes ends at the smallest odd size in the range.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ..analysis import analyze
from ..errors import CalcError, SpecError
from .expectations import check_model

from ..limits import MAX_EXAMPLES, MAX_SHRINK_TRIES  # noqa: E402 - stated in calc.limits


@dataclass
class PropertyReport:
    seed: int
    ranges: dict
    tried: int = 0
    skipped: int = 0
    skip_reason: str = ""
    expressions: int = 0
    first: dict | None = None
    counterexample: dict | None = None
    shrink_steps: int = 0
    outcomes: list = field(default_factory=list)


@dataclass(frozen=True)
class Range:
    name: str
    low: Any
    high: Any
    step: Any = None

    @property
    def whole(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high)) and (
            self.step is None or isinstance(self.step, int))

    def draw(self, rng: random.Random):
        if self.step is not None:
            return self.snap(self.low + rng.randrange(int((self.high - self.low) // self.step) + 1) * self.step)
        return rng.randint(self.low, self.high) if self.whole else rng.uniform(self.low, self.high)

    def snap(self, value):
        if self.step is None:
            return value
        k = (value - self.low) // self.step
        v = self.low + k * self.step
        return int(v) if self.whole else v

    def smaller(self, value) -> list:
        """Candidates below ``value``, simplest first."""
        out = [self.low]
        gap = value - self.low
        unit = self.step or 1
        while gap > unit:
            gap = gap / 2 if not self.whole else gap // 2
            out.append(self.snap(value - gap))
        if self.whole or self.step:
            out += [self.snap(value - k * unit) for k in range(8, 0, -1)]
        else:
            out += [round(value, k) for k in range(0, 4)]
        seen, result = set(), []
        for c in sorted(out):
            if self.low <= c < value and c not in seen:
                seen.add(c)
                result.append(c)
        return result


def ranges_of(spec) -> list[Range]:
    doc = spec.doc
    if not doc.ranges:
        raise SpecError("--property draws the variables within ranges: the spec declares none (add e.g. "
                        "ranges: {H: [32, 512]} for a variable H)", file=spec.source.name)
    out = []
    for name, bounds in doc.ranges.items():
        path = ("ranges", name)
        err = None
        if name not in doc.variables:
            err = f"'{name}' is not a variable of the spec (variables: {', '.join(doc.variables) or 'none'})"
        elif isinstance(doc.variables[name], (list, str, bool)):
            err = f"'{name}' is not a number, so it has no range"
        elif len(bounds) not in (2, 3) or any(isinstance(b, bool) for b in bounds):
            err = "a range is [low, high] or [low, high, step]"
        elif bounds[0] > bounds[1] or (len(bounds) == 3 and bounds[2] <= 0):
            err = f"low must not exceed high and step must be positive, got {bounds}"
        if err:
            raise SpecError(err, path=path, file=spec.source.name, line=spec.source.line_of(path))
        out.append(Range(name, bounds[0], bounds[1], bounds[2] if len(bounds) == 3 else None))
    return out


def search(spec, overrides: dict, shape, variant, *, examples: int = 100, seed: int = 0) -> PropertyReport:
    if not 1 <= examples <= MAX_EXAMPLES:
        raise SpecError(f"--examples must be from 1 to {MAX_EXAMPLES:,}")
    ranges = ranges_of(spec)
    for r in ranges:
        if r.name in overrides:
            raise SpecError(f"--set {r.name} fixes a variable that ranges: lets --property draw; leave one out")
    report = PropertyReport(seed, {r.name: [r.low, r.high] + ([r.step] if r.step else []) for r in ranges})
    rng = random.Random(seed)
    cache: dict = {}

    def attempt(values: dict):
        """None when the network cannot take ``values``; else the failing expression outcomes."""
        try:
            model = spec.build({**overrides, **values}, input_shape=shape, variant=variant)
            analyze(model, cache=cache)
        except CalcError as err:
            if not report.skip_reason:
                report.skip_reason = f"{_values(values)}: {err.message}"
            return None
        outcomes = [o for o in check_model(model, derive=False, cache=cache) if o.is_expression]
        report.expressions = len(outcomes)
        return [o for o in outcomes if not o.ok]

    failing = None
    for i in range(examples):
        values = {r.name: (r.low if i == 0 else r.high if i == 1 else r.draw(rng)) for r in ranges}
        report.tried += 1
        result = attempt(values)
        if result is None:
            report.skipped += 1
            continue
        if report.expressions == 0:
            raise SpecError("--property checks the expectations written as expressions, and this spec has none "
                            "(write e.g. macs: \"C_out * H_out * W_out * C_in * K * K\")", file=spec.source.name)
        if result:
            failing = values
            break
    if failing is None:
        return report
    report.first = dict(failing)
    tries = 0
    improved = True
    while improved and tries < MAX_SHRINK_TRIES:
        improved = False
        for r in ranges:
            for candidate in r.smaller(failing[r.name]):
                tries += 1
                trial = {**failing, r.name: candidate}
                result = attempt(trial)
                if result:
                    failing = trial
                    report.shrink_steps += 1
                    improved = True
                    break
                if tries >= MAX_SHRINK_TRIES:
                    break
    report.counterexample = failing
    model = spec.build({**overrides, **failing}, input_shape=shape, variant=variant)
    report.outcomes = [o for o in check_model(model, cache=cache) if o.is_expression and not o.ok]
    return report


def _values(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())
