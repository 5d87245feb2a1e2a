"""Descriptions of the layer types and the JSON Schema of the spec format, from the registry."""
from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined

import textwrap

from .conventions import CONVENTIONS, Convention
from .layers import HINTS, LAYERS
from .spec import RESERVED, STRUCTURES, BlockDef, SpecDoc


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
        for quantity, formula in [*getattr(cls, "formulas", {}).items(), *cls.describe()]:
            out.append(f"    {quantity}: {formula}")
        out.append("")
    out.append("Hints (how the PyTorch code calls a layer; read only by the tool conventions):")
    for key, doc in HINTS.items():
        out += textwrap.wrap(f"{key}: {doc}", 100, initial_indent="    ", subsequent_indent="      ")
    out.append("Every item also takes: " + ", ".join(RESERVED) + ". Structure: " + ", ".join(STRUCTURES) + ".")
    return "\n".join(out) + "\n"


_EXPRESSION = {"type": "string", "description": "an expression over variables and block parameters"}


def _or_expression(prop: dict) -> dict:
    """Any argument may also be written as an expression string, or a list with expressions."""
    return {"anyOf": [prop, _EXPRESSION, {"type": "array", "items": {"type": ["integer", "number", "string", "null"]}}],
            **({"description": prop["description"]} if "description" in prop else {})}


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
    from .conventions import get
    convs = [get(name)] if name else list(CONVENTIONS.values())
    text = "\n".join(describe_convention(c) for c in convs)
    note = ("Rules are expressions over a layer's facts: its operations as `calc layers` lists them, x and y "
            "(input and output elements per sample), params, weights, biases, and the hints module, functional, "
            "operator, method, contiguous and leaf (1 or 0), and the facts a tool preset derives; N is the batch "
            "size. A part marked 'for the batch' is counted once for the whole batch instead of once per sample. "
            "A tool preset counts only the layer types it names: any other type is an error.")
    return text + "\n" + "\n".join(textwrap.wrap(note, 100)) + "\n"


def spec_schema() -> dict[str, Any]:
    """JSON Schema of a spec file, so that editors can validate and complete specs."""
    reserved = {
        "name": {"type": "string", "description": "name of this item's output"},
        "from": {"type": "string", "description": "read this earlier named output instead of the previous one"},
        "when": {"type": ["boolean", "string"], "description": "expression; the item is left out when false"},
        "trainable": {"type": "boolean", "description": "false: the parameters are frozen"},
        "tie": {"type": "string", "description": "share the weight matrix of the earlier layer of this name "
                                                "(counted once, there)"},
    }

    def hint_props(allowed: dict) -> dict:
        return {k: {"enum": list(v), "description": HINTS[k]} for k, v in allowed.items()}
    item_ref = {"$ref": "#/$defs/item"}
    items_list = {"type": "array", "items": item_ref}
    variants: list[dict] = [{"type": "string", "enum": sorted(
        n for n, c in LAYERS.items()
        if all(f.default is not PydanticUndefined or f.default_factory for f in c.model_fields.values()))}]
    defs: dict[str, Any] = {}
    for name in sorted(LAYERS):
        schema = LAYERS[name].model_json_schema(by_alias=True)
        props = {k: _or_expression(v) for k, v in schema.get("properties", {}).items()}
        props.update(reserved)
        props.update(hint_props(LAYERS[name].hints))
        for sub in schema.get("$defs", {}).items():
            defs[sub[0]] = sub[1]
        args = {"type": "object", "properties": props, "additionalProperties": False}
        if schema.get("required"):
            args["required"] = schema["required"]
        else:
            args = {"anyOf": [args, {"type": "null"}]}
        variants.append({"type": "object", "properties": {name: args}, "required": [name],
                         "additionalProperties": False})
    structure_args = {
        "repeat": {"times": {"type": ["integer", "string"]}, "layers": items_list,
                   "index": {"type": "string", "description": "variable holding the iteration number (0, 1, …)"}},
        "residual": {"main": items_list, "shortcut": items_list, **hint_props(LAYERS["add"].hints),
                     "enabled": {"type": ["boolean", "string"],
                                 "description": "expression; when false only the main path remains"}},
        "parallel": {"branches": {"type": "array", "items": items_list},
                     "join": {"enum": ["concat", "add", "mul"]}, "dim": {"type": "integer"},
                     **hint_props(LAYERS["add"].hints)},
        "group": {"layers": items_list},
    }
    for name, props in structure_args.items():
        variants.append({"type": "object", "required": [name], "additionalProperties": False,
                         "properties": {name: {"type": "object", "additionalProperties": False,
                                               "properties": {**props, **reserved}}}})
    # A block instance: any other one-key mapping whose value is a mapping of parameters.
    variants.append({"type": "object", "minProperties": 1, "maxProperties": 1,
                     "not": {"anyOf": [{"required": [n]} for n in [*LAYERS, *STRUCTURES]]},
                     "additionalProperties": {"type": ["object", "null"]}})
    # A bare block name (a block without required parameters): any other identifier.
    variants.append({"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$",
                     "not": {"enum": [*LAYERS, *STRUCTURES]}})
    defs["item"] = {"anyOf": variants}
    top = SpecDoc.model_json_schema()
    top_props = top["properties"]
    top_props["layers"] = items_list
    block = BlockDef.model_json_schema()
    block["properties"]["layers"] = items_list
    top_props["blocks"] = {"type": "object", "additionalProperties": block}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "calc spec",
            "type": "object", "properties": top_props, "required": top.get("required", []),
            "additionalProperties": False, "$defs": defs}
