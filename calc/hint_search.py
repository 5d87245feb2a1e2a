"""Which missing hint would explain a tool's figure (for `calc verify`).

When a tool preset differs from the tool, the spec may lack a hint the preset reads: the
PyTorch code calls a layer as a function (``F.relu``) where the spec says nothing (a module
call). For each layer type in the model and each hint value that the preset reads for it
(calc.conventions.hint_readers), the model is counted again with that value on every layer of
the type that does not state the hint; a value that gives the tool's figure exactly is a likely
missing hint. One type at a time, at most MAX_TRIES recounts (they share one cache).
"""
from __future__ import annotations

from dataclasses import replace

from .errors import CalcError
from .graph import Branches, Leaf, Repeat, Seq

MAX_TRIES = 24


def missing_hints(model, convention: str, batch: int, measure: str, target) -> list[str]:
    """Hints that, stated on every layer of one type that lacks them, make ``convention``'s
    ``measure`` ('macs' or 'flops') of ``model`` equal ``target``; as 'call: functional on the
    3 relu layers' phrases."""
    from .analysis import analyze
    from .conventions.hint_readers import read_by
    from .layers import LAYERS
    types: set = set()
    _types(model.root, types)
    cache: dict = {}
    found, tries = [], 0
    for type_name in sorted(types):
        cls = LAYERS[type_name]
        for hint, allowed in cls.hints.items():
            if convention not in read_by(hint, type_name):
                continue
            for value in allowed[1:]:   # the first is the default: stating it changes nothing
                changed = [0]
                root = _with_hint(model.root, type_name, hint, value, changed)
                if not changed[0]:
                    continue
                tries += 1
                if tries > MAX_TRIES:
                    return found
                try:
                    got = getattr(analyze(replace(model, root=root), batch=batch, convention=convention,
                                          cache=cache).totals, measure)
                except CalcError:
                    continue
                if got == target:
                    word = "layer that does" if changed[0] == 1 else "layers that do"
                    shown = ("true" if value else "false") if isinstance(value, bool) else value
                    found.append(f"{hint}: {shown} on the {changed[0]} {type_name} {word} not state it")
    return found


def _types(node, out: set) -> None:
    if isinstance(node, Leaf):
        out.add(node.layer.type_name)
    elif isinstance(node, Seq):
        for item in node.items:
            _types(item, out)
    elif isinstance(node, Repeat):
        for body in node.bodies or (node.body,):
            _types(body, out)
    elif isinstance(node, Branches):
        for branch in node.branches:
            _types(branch, out)
        _types(node.join, out)


def _with_hint(node, type_name: str, hint: str, value, changed: list):
    """``node`` with ``hint: value`` on every leaf of ``type_name`` that does not state the hint
    (shared subtrees that do not change stay shared)."""
    if isinstance(node, Leaf):
        if node.layer.type_name == type_name and hint not in dict(node.hints):
            changed[0] += 1
            return replace(node, hints=tuple(sorted((*node.hints, (hint, value)))))
        return node
    if isinstance(node, Seq):
        items = tuple(_with_hint(i, type_name, hint, value, changed) for i in node.items)
        return node if all(a is b for a, b in zip(items, node.items)) else replace(node, items=items)
    if isinstance(node, Repeat):
        body = _with_hint(node.body, type_name, hint, value, changed)
        bodies = None if node.bodies is None else tuple(_with_hint(b, type_name, hint, value, changed)
                                                        for b in node.bodies)
        return replace(node, body=body, bodies=bodies)
    if isinstance(node, Branches):
        branches = tuple(_with_hint(b, type_name, hint, value, changed) for b in node.branches)
        join = _with_hint(node.join, type_name, hint, value, changed)
        return replace(node, branches=branches, join=join)
    return node
