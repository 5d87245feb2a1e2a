"""The JSON Schema of the spec format, from the layer registry (`calc schema`). The text
descriptions of layers and conventions are in :mod:`calc.render.catalog`."""
from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined

from .check.quantities import QUANTITIES
from .layers import HINTS, LAYERS
from .spec import STRUCTURES, BlockDef, SpecDoc


_EXPRESSION = {"type": "string", "description": "an expression over variables and block parameters"}
_EXPECTED = {"anyOf": [{"type": ["integer", "number"]}, {"type": "string", "description": "an expression over "
             "the variables, block parameters and the item's dimensions (C_in, H_in, W_in, C_out, H_out, W_out, "
             "the layer's symbols such as K)"}]}
# `expect:` on an item or the spec (checked by `calc check`; see calc.check.expectations).
EXPECT_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "description": "expected counts of this item, checked by `calc check`",
    "properties": {
        **{k: _EXPECTED for k in QUANTITIES if k != "output"},
        "output": {"anyOf": [{"type": "array", "items": _EXPECTED}, {"type": "string"}],
                   "description": "the output shape, e.g. [96, 55, 55]"},
        "convention": {"type": "string", "description": "counting convention (default standard)"},
        "dtype": {"type": "string", "description": "dtype of bytes (default fp32)"},
    },
}


def _or_expression(prop: dict) -> dict:
    """Any argument may also be written as an expression string, or a list with expressions."""
    return {"anyOf": [prop, _EXPRESSION, {"type": "array", "items": {"type": ["integer", "number", "string", "null"]}}],
            **({"description": prop["description"]} if "description" in prop else {})}


def spec_schema() -> dict[str, Any]:
    """JSON Schema of a spec file, so that editors can validate and complete specs."""
    reserved = {
        "name": {"type": "string", "description": "name of this item's output"},
        "from": {"type": "string", "description": "read this earlier named output instead of the previous one"},
        "when": {"type": ["boolean", "string"], "description": "expression; the item is left out when false"},
        "trainable": {"type": "boolean", "description": "false: the parameters are frozen"},
        "tie": {"type": "string", "description": "share the weight matrix of the earlier layer of this name "
                                                "(counted once, there)"},
        "inference": {"type": ["boolean", "string"], "description": "false: the item holds parameters but does "
                      "not run at inference (an auxiliary classifier): counted in parameters, not in operations"},
        "expect": {"anyOf": [EXPECT_SCHEMA, {"type": "array", "items": EXPECT_SCHEMA}]},
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
    top_props["expect"] = {"anyOf": [EXPECT_SCHEMA, {"type": "array", "items": EXPECT_SCHEMA}]}
    block = BlockDef.model_json_schema()
    block["properties"]["layers"] = items_list
    top_props["blocks"] = {"type": "object", "additionalProperties": block}
    # one input (`input`) or several named ones (`inputs`), exactly one of the two
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "calc spec",
            "type": "object", "properties": top_props, "required": top.get("required", []),
            "oneOf": [{"required": ["input"]}, {"required": ["inputs"]}],
            "additionalProperties": False, "$defs": defs}
