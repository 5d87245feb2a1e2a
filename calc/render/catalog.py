"""`calc layers` and `calc conventions` output: the layer registry and the conventions' rules
as text. Nothing here prints."""
from __future__ import annotations

import textwrap

from pydantic_core import PydanticUndefined

from ..conventions import CONVENTIONS, Convention, get
from ..layers import HINTS, LAYERS
from ..spec import RESERVED, STRUCTURES
from ..conventions.hint_readers import readers_text


def _word(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def describe_layers() -> str:
    """Every layer type with its arguments, defaults and formulas (for `calc layers`)."""
    out = []
    for name in sorted(LAYERS):
        cls = LAYERS[name]
        doc = " ".join((cls.__doc__ or "").split())
        args = []
        for fname, f in cls.model_fields.items():
            label = f.alias or fname
            if f.default is PydanticUndefined and f.default_factory is None:
                args.append(f"{label} (required)")
            else:
                default = f.default
                if isinstance(default, tuple):
                    default = list(default)
                args.append(f"{label}={default!r}" if default is not None else f"{label}=none")
        out.append(f"{name}  [{cls.kind}]")
        out.append(f"    {doc}")
        out.append(f"    arguments: {', '.join(args) if args else 'none'}")
        if cls.hints:
            allowed = ", ".join(f"{k} ({'|'.join(map(_word, v))})" for k, v in cls.hints.items())
            out.append(f"    hints: {allowed}; {readers_text(name)}")
        for quantity, formula in cls.describe():
            out.append(f"    {quantity}: {formula}")
        out.append("")
    out.append("Hints (how the PyTorch code calls a layer; read only by the tool conventions):")
    for key, doc in HINTS.items():
        out += textwrap.wrap(f"{key}: {doc}", 100, initial_indent="    ", subsequent_indent="      ")
    out.append("Every item also takes: " + ", ".join(RESERVED) + ". Structure: " + ", ".join(STRUCTURES) + ".")
    return "\n".join(out) + "\n"


def _rule_groups(table) -> list[tuple[str, object]]:
    groups: dict = {}
    for key, rule in table.items():
        groups.setdefault(rule, []).append(key)
    return [(", ".join(keys), rule) for rule, keys in groups.items()]


def describe_convention(conv: Convention) -> str:
    """One convention: name, what it reproduces, description and rules (for `calc conventions`)."""
    unit = "FLOPs" if conv.reports == "flops" else "MACs"
    head = conv.name + (f"  — reproduces {conv.source}; the tool prints {unit}" if conv.source else "")
    out = [head, *textwrap.wrap(conv.description, 100, initial_indent="    ", subsequent_indent="    ")]
    tables = [("MACs", conv.macs)] + ([("FLOPs", conv.flops)] if conv.flops is not None else [])
    per = "per layer type" if conv.explicit else "per layer type or kind"
    for label, table in tables:
        out.append(f"    {label}, {per} (per sample unless marked 'for the batch'):")
        for keys, rule in _rule_groups(table):
            out += textwrap.wrap(keys + ":", 100, initial_indent="      ", subsequent_indent="      ")
            out.append(f"          {label} = {rule.text()}")
            if rule.why:
                out += textwrap.wrap(rule.why, 100, initial_indent="          — ", subsequent_indent="            ")
    if conv.flops is None:
        out.append("    FLOPs = 2 × MACs")
    if conv.derived:
        out.append("    Facts it derives from a layer's arguments and shapes:")
        for types, fn in _rule_groups(conv.derived):
            out += textwrap.wrap(types + ":", 100, initial_indent="      ", subsequent_indent="      ")
            out += textwrap.wrap(" ".join((fn.__doc__ or "").split()), 100, initial_indent="          ",
                                 subsequent_indent="          ")
    return "\n".join(out) + "\n"


def describe_conventions(name: str | None = None) -> str:
    """Every convention (or one), with its rules."""
    convs = [get(name)] if name else list(CONVENTIONS.values())
    text = "\n".join(describe_convention(c) for c in convs)
    note = ("Rules are expressions over a layer's facts: its operations as `calc layers` lists them, x and y "
            "(input and output elements per sample), params, weights, biases, and the hints module, functional, "
            "operator, method, contiguous and leaf (1 or 0), and the facts a tool preset derives; N is the batch "
            "size. A part marked 'for the batch' is counted once for the whole batch instead of once per sample. "
            "A tool preset counts only the layer types it names: any other type is an error.")
    return text + "\n" + "\n".join(textwrap.wrap(note, 100)) + "\n"
