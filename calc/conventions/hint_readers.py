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
def _type_readers(type_name: str) -> dict[str, tuple[str, ...]]:
    """hint -> the conventions whose rules for ``type_name`` read it."""
    from . import CONVENTIONS
    from ..layers import LAYERS
    cls = LAYERS[type_name]
    out: dict = {}
    for conv in CONVENTIONS.values():
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
                out.setdefault(hint, []).append(conv.name)
    return {h: tuple(dict.fromkeys(v)) for h, v in out.items()}


def readers() -> dict[str, dict[str, tuple[str, ...]]]:
    """hint -> layer type -> the conventions whose rules for that type read the hint."""
    from ..layers import LAYERS
    out: dict = {h: {} for h in HINT_FACTS}
    for type_name in sorted(LAYERS):
        for hint, convs in _type_readers(type_name).items():
            out[hint][type_name] = convs
    return out


def read_by(hint: str, type_name: str) -> tuple[str, ...]:
    """The conventions that read ``hint`` on a layer of ``type_name`` (empty: none does)."""
    return _type_readers(type_name).get(hint, ())


def readers_text(type_name: str) -> str:
    """'read by call: thop, ptflops; owner: torchinfo', or 'no tool preset reads call'."""
    from ..layers import LAYERS
    hints = LAYERS[type_name].hints
    found = _type_readers(type_name)
    if not hints:
        return "takes no hints"
    parts = [f"{h}: {', '.join(found[h])}" for h in hints if h in found]
    unread = [h for h in hints if h not in found]
    text = "read by " + "; ".join(parts) if parts else ""
    if unread:
        text += ("; " if text else "") + f"no tool preset reads {' or '.join(unread)}"
    return text
