"""Which tool presets read which hint, for which layer types.

A hint (``call``, ``contiguous``, ``owner``; see calc.layers.HINTS) changes no formula: it
becomes facts (module, functional, operator, method; contiguous; leaf) that a convention's rules
may read. Which rules read them is found from the rules themselves, so that the table below, the
docs, `calc layers` and the builder's check never disagree with the presets.
"""
from __future__ import annotations

from functools import lru_cache

from ..errors import ConventionError
from ..expr import names_in

# the facts each hint becomes (calc.layers.Layer.hint_facts)
HINT_FACTS = {"call": frozenset({"module", "functional", "operator", "method", "einsum"}),
              "contiguous": frozenset({"contiguous"}),
              "owner": frozenset({"leaf"})}


@lru_cache(maxsize=None)
def readers() -> dict[str, dict[str, tuple[str, ...]]]:
    """hint -> layer type -> the conventions whose rules for that type read the hint."""
    from . import CONVENTIONS
    from ..layers import LAYERS
    out: dict = {h: {} for h in HINT_FACTS}
    for conv in CONVENTIONS.values():
        for type_name, cls in sorted(LAYERS.items()):
            try:
                rules = conv.rules(type_name, cls.kind)
            except ConventionError:
                continue
            names: set = set()
            for rule in rules:
                for text in (rule.sample, rule.batch, rule.unsupported):
                    if isinstance(text, str):
                        names |= names_in(text)
            for hint, facts in HINT_FACTS.items():
                if names & facts and hint in cls.hints:
                    out[hint].setdefault(type_name, []).append(conv.name)
    return {h: {t: tuple(dict.fromkeys(v)) for t, v in by_type.items()} for h, by_type in out.items()}


def read_by(hint: str, type_name: str) -> tuple[str, ...]:
    """The conventions that read ``hint`` on a layer of ``type_name`` (empty: none does)."""
    return readers().get(hint, {}).get(type_name, ())
