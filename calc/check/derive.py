"""calc's own derivation of one quantity of one item, shown beside a failed expectation: the
part of `calc explain` for that item that computes it (the layer's declared formulas with their
values, the convention's rule), or, for a block or structure, the sum of its parts."""
from __future__ import annotations

from ..analysis import DTYPE_BYTES, Analysis, Result
from ..explain import Section, _leaf_sections
from ..formula import Step, _num
from .quantities import QUANTITIES

_SECTIONS = {"output": ("output",), "parameters": ("parameters",),
             "operations": ("output", "operations per sample", "convention")}   # the output's size is a factor


def derivation(a: Analysis, r: Result, key: str, item: str) -> tuple[Section, ...]:
    want = _SECTIONS[QUANTITIES[key].section]
    if r.is_leaf:
        sections = tuple(s for s in _leaf_sections(a, r) if s.title.startswith(want))
        if key == "bytes":
            size = DTYPE_BYTES[a.dtype]
            sections += (Section("memory", (Step("bytes", "bytes", f"params·{size}",
                                                 f"{_num(r.params)}·{size}", r.params * size),)),)
        return sections
    if key == "output":
        return (Section(f"{_kind(r)}: its last item gives the output", ()),)
    steps = []
    for label, res, count in _parts(r):
        value = QUANTITIES[key].read(a, res, DTYPE_BYTES[a.dtype]) * count
        if value:
            times = f"{count:,}·" if count > 1 else ""
            steps.append(Step(key, label, "", f"{times}{_num(value // count)}", value))
    total = sum(s.value for s in steps)
    steps.append(Step(key, key, "", " + ".join(_num(s.value) for s in steps) or "0", total))
    what = "the model" if r.kind == "model" else f"{_kind(r)} {item}"
    return (Section(f"{what}: {key} is the sum of its parts (zeros left out, convention "
                    f"{a.convention})", tuple(steps)),)


def _parts(r: Result, count: int = 1):
    """The parts of a namespace as the reports list them: leaves, named items and block
    instances; unnamed structure (a residual, a repeat's iterations) is looked through."""
    for child in r.children:
        sub, k = child.result, count * child.count
        if sub.is_leaf or child.name is not None or sub.kind.startswith("block:"):
            yield (child.name or (sub.layer.type_name if sub.is_leaf else _kind(sub))), sub, k
        else:
            yield from _parts(sub, k)


def _kind(r: Result) -> str:
    return r.kind[6:] if r.kind.startswith("block:") else r.kind
