"""Checking `tie`: which earlier layer a tied layer shares its weight with.

A tie names its target by the target's own name (``tie: wte``) or by its dotted path as the
report prints it (``tie: encoder.embed_tokens``, ``tie: features.3.conv``). A bare name that
several earlier layers carry is ambiguous: the error lists their paths, so that the spec can
say which. The analysis has already counted the tied layer without its weight; this checks,
in report order (what comes first in the report ran first), that the target exists, came
earlier, and has a weight of the same shape.
"""
from __future__ import annotations

import re

from .errors import ShapeError
from .shapes import fmt_shape

_SEGMENT = re.compile(r"#\d+\Z")


def check_ties(analysis, ties: dict) -> None:
    """``ties``: id(result) -> (leaf node, context) for each leaf with a tie."""
    model = analysis.model
    by_path: dict = {}      # dotted path -> result, of the leaves so far
    by_name: dict = {}      # a leaf's own name -> [dotted paths]
    for row in analysis.rows(leaves_only=True):
        r = row.result
        if r.tied_to is not None and id(r) in ties:
            node, ctx = ties[id(r)]
            _check(model, row.name, r, node, ctx, by_path, by_name)
        by_path[row.name] = r
        last = _SEGMENT.sub("", row.name.rsplit(".", 1)[-1])
        if not last.isdigit():
            by_name.setdefault(last, []).append(row.name)


def _check(model, path: str, r, node, ctx, by_path: dict, by_name: dict) -> None:
    tie = node.tie
    where = node.origin + ("tie",)

    def fail(message):
        file, line = model.locate(where)
        raise ShapeError(message, path=where, file=file, line=line, context=ctx)
    if "." in tie or "#" in tie:
        target = by_path.get(tie)
        if target is None:
            near = [p for p in by_path if p.endswith("." + tie)][:4]
            fail(f"tie: no earlier layer has the path '{tie}'" + (f" (did you mean {', '.join(near)}?)" if near else
                 " (a path is a layer's name as the report prints it, from the top: encoder.embed)"))
    else:
        found = by_name.get(tie, [])
        if not found:
            known = ", ".join(sorted(by_name)) or "none"
            fail(f"tie: no earlier layer named '{tie}' (named layers so far: {known}; a dotted path is the "
                 "name the report prints, e.g. encoder.embed)")
        if len(found) > 1:
            shown = ", ".join(found[:8]) + (f", … ({len(found) - 8} more)" if len(found) > 8 else "")
            fail(f"tie: {len(found)} earlier layers are named '{tie}', so the name does not say which weight to "
                 f"share: {shown}; write the path of one (tie: {found[0]}) or give that layer a name used once")
        target = by_path[found[0]]
    layer, other = r.layer, target.layer
    mine, theirs = layer.weight_shape(r.input_shape), other.weight_shape(target.input_shape)
    if mine is None or theirs is None:
        which = layer if mine is None else other
        fail(f"tie: {which.type_name} has no weight matrix to share (embedding and linear do)")
    if mine != theirs:
        fail(f"tie: the weight of this {layer.type_name} is {fmt_shape(mine)}, that of '{tie}' "
             f"({other.type_name}) is {fmt_shape(theirs)}; tied weights must have the same shape")
