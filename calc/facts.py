"""The facts of a leaf: what the counting conventions read of an analysed layer (its
operations, its sizes, its parameters and the facts of its hints); see calc.analysis."""
from __future__ import annotations

from collections.abc import Mapping

from .conventions import BASE_FACTS
from .shapes import Shape, numel

_BASE_FACTS: dict = {}


def _base_facts(layer, hints: tuple) -> dict:
    """BASE_FACTS with the facts of the hints: the same for every layer of a type given the same
    hints, so made once per (type, hints)."""
    key = (type(layer), hints)
    found = _BASE_FACTS.get(key)
    if found is None:
        found = _BASE_FACTS[key] = {**BASE_FACTS, **layer.hint_facts(dict(hints))}
    return found


def _leaf_facts(layer, shape: Shape, hints: tuple, tied: int, out: Shape, p, ops: dict) -> dict:
    """What the conventions read of a leaf: its operations and facts, its sizes and its
    parameters. They describe the weights the layer uses, shared or not (a result owns only
    its own)."""
    return {**_base_facts(layer, hints), **ops, "in": numel(shape), "out": numel(out), "x": numel(shape),
            "y": numel(out), "params": p.total, "weights": p.weights, "biases": p.bias, "tied": tied}


class LeafFacts(Mapping):
    """A leaf's facts (:func:`_leaf_facts`) as a read-only mapping, made again from the layer
    on first reading and then kept. The analysis counts with the facts, then keeps only what
    makes them: a dict of some 30 facts per layer was most of the memory of an analysis of
    distinct layers. (``inputs``: every input shape of a layer with several, else empty.)"""

    __slots__ = ("_layer", "_shape", "_inputs", "_hints", "_tied", "_facts")

    def __init__(self, layer, shape: Shape, inputs: tuple, hints: tuple, tied: int):
        self._layer, self._shape, self._inputs, self._hints, self._tied = layer, shape, inputs, hints, tied
        self._facts = None

    def _made(self) -> dict:
        if self._facts is None:
            layer = self._layer
            out, p, ops = layer.evaluate_many(list(self._inputs)) if self._inputs else layer.evaluate(self._shape)
            self._facts = _leaf_facts(layer, self._shape, self._hints, self._tied, out, p, ops)
        return self._facts

    def __getitem__(self, key):
        return self._made()[key]

    def __iter__(self):
        return iter(self._made())

    def __bool__(self) -> bool:      # never empty (BASE_FACTS), and `facts or {}` need not make them
        return True

    def __len__(self) -> int:
        return len(self._made())

    def __repr__(self) -> str:
        return repr(self._made())
