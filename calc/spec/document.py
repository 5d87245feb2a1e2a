"""The spec document: its pydantic models, the limits of the format, and how pydantic's
validation errors become one clear message."""

import re
from typing import Any, Literal, Mapping, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from ..errors import SpecError, close_matches, format_path
from ..expr import evaluate, names_in
from ..limits import clip
from ..layers import HINTS, MAX_SIZE
from ..limits import MAX_RANK

RESERVED = ("name", "from", "when", "trainable", "tie", "inference", "expect", *HINTS)
STRUCTURES = ("repeat", "residual", "parallel", "group")
from ..limits import MAX_BUILT_NODES, MAX_NESTING, MAX_REPEAT  # noqa: E402,F401 - stated in calc.limits
# Lists nested in lists (structures, and blocks used inside blocks): the analysis, the reports
# and the oracle walk the built tree recursively, so its depth is bounded.
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

Scalar = Union[bool, int, float, str]
# A list variable such as `layers: [3, 4, 6, 3]`, read as layers[i], or a table of rows such as
# `cfg: [[1, 16, 1, 1], [6, 24, 2, 2]]`, read as cfg[i][j]: lists nest up to three levels.
Value = Union[Scalar, list[Union[Scalar, list[Union[Scalar, list[Scalar]]]]]]


class BlockDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    description: Optional[str] = None
    params: dict[str, Optional[Value]] = Field(default_factory=dict,
                                                description="parameter -> default (null: required)")
    layers: list[Any] = Field(min_length=1, description="the block's items")


class LibraryDoc(BaseModel):
    """A file of blocks that other specs import (see calc.spec.imports): no input, no layers."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Optional[str] = None
    description: Optional[str] = None
    imports: list[Any] = Field(default_factory=list)
    variables: dict[str, Value] = Field(default_factory=dict)
    blocks: dict[str, BlockDef] = Field(default_factory=dict)


class SpecDoc(BaseModel):
    """The top level of a spec file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    description: Optional[str] = None
    # Blocks and variables from other files or bundled libraries (calc.spec.imports), merged
    # into `blocks` and `variables` when the spec is loaded.
    imports: list[Any] = Field(default_factory=list, description="blocks (and variables) from another spec file "
                               "or a bundled library: [common, {from: other.yaml, blocks: [a], variables: [b]}]")
    # where each imported block or variable was written: name -> (Source, path there)
    _origins: dict = PrivateAttr(default_factory=dict)
    # One input (`input`) or several named ones (`inputs`, e.g. an encoder-decoder's source and
    # target tokens); a spec gives exactly one of the two (checked by the builder, with its path).
    input: Optional[list[Union[int, str]]] = Field(None, min_length=1,
                                                   description="per-sample input shape, e.g. [3, 224, 224]")
    inputs: dict[str, list[Union[int, str]]] = Field(
        default_factory=dict, description="several named inputs, each a per-sample shape, e.g. {input_ids: "
                                          "[src], decoder_input_ids: [tgt]}; the first starts the flow, "
                                          "`from: NAME` reads any")
    input_kind: Literal["values", "tokens"] = Field(
        "values", description="values: real numbers (an image, features); tokens: integer token ids, "
                              "read by an embedding, e.g. input: [1024]")
    variables: dict[str, Value] = Field(default_factory=dict)
    blocks: dict[str, BlockDef] = Field(default_factory=dict)
    layers: list[Any] = Field(min_length=1)
    # Named variants: variable values (and optionally input) under a model's name, e.g.
    # resnext50_32x4d: {groups: 32, width_per_group: 4}; checked by calc.spec.variants.
    variants: dict[str, Any] = Field(
        default_factory=dict, description="named variants: variable values and optionally input "
                                          "(and description), e.g. resnext50_32x4d: {groups: 32, "
                                          "width_per_group: 4, input: [3, 224, 224]}")
    # Expectations on the whole model and the ranges `calc check --property` draws from; both
    # are read by calc.check only (see docs/spec-format.md §9).
    expect: Optional[Union[dict[str, Any], list[dict[str, Any]]]] = Field(
        None, description="expected totals, checked by `calc check`: params, weights, bias, buffers, macs, "
                          "flops, output, bytes (numbers or expressions), and convention, dtype; or a list of such "
                          "mappings, one per convention")
    ranges: dict[str, list[Union[int, float]]] = Field(
        default_factory=dict, description="for `calc check --property`: variable -> [low, high] or "
                                          "[low, high, step], e.g. {width: [0.25, 2.0], H: [32, 512]}")


# ---------------------------------------------------------------------------- pydantic errors

def _best_errors(errors: list[dict]) -> list[tuple[tuple, str]]:
    """One (location, message) per field, preferring a value error over a type mismatch
    when a field accepts several forms (int or list)."""
    by_field: dict = {}
    for err in errors:
        loc = err["loc"]
        # Union members appear in loc as type names ('int', 'tuple[...]'); drop them.
        clean = tuple(p for i, p in enumerate(loc)
                      if i == 0 or isinstance(p, int) or not _looks_like_type(p))
        key = clean[:1]
        by_field.setdefault(key, []).append((clean, err))
    out = []
    for key, errs in by_field.items():
        errs.sort(key=lambda ce: (ce[1]["type"].endswith("_type") or ce[1]["type"] == "is_instance_of",
                                  len(ce[1]["loc"])))
        clean, err = errs[0]
        union = _union_message(errs)
        out.append((clean[:len(key) + 1] if union else clean, union or _message(err)))
    return out


_KINDS = {"bool": "true/false", "int": "a number", "float": "a number", "str": "a word or an expression"}


def _union_message(errs) -> str | None:
    """A value that fits none of a union's forms (a variable that is a nested list): name the
    forms, not the last one pydantic tried ('must be a valid boolean')."""
    if len(errs) < 3 or not all(e["type"].endswith("_type") for _, e in errs):
        return None
    forms = []
    for _, e in errs:
        member = next((p for p in e["loc"] if isinstance(p, str) and _looks_like_type(p)), None)
        if member is None:
            return None
        word = _KINDS.get(member, "a list of those" if member.startswith("list") else None)
        if word and word not in forms:
            forms.append(word)
    value = errs[0][1].get("input")
    if len(forms) < 2:
        return None
    got = ("a nested list" if isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value)
           else "a mapping" if isinstance(value, dict) else clip(value))
    return f"must be {', '.join(forms[:-1])} or {forms[-1]}, got {got}"


def _looks_like_type(part: str) -> bool:
    return any(ch in part for ch in "[]-") or part in ("int", "str", "float", "bool", "tuple", "list",
                                                        "dict", "literal", "none", "function-after",
                                                        "function-before", "constrained-int")


def _message(err: dict) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown argument"
    if kind == "literal_error":
        return f"{err['msg'].replace('Input should be', 'must be')}, got {clip(value)}"
    msg = err["msg"]
    msg = msg.replace("Input should be", "must be").replace("Value error, ", "")
    if kind not in ("missing",) and not isinstance(value, (dict, list)) and value is not None:
        # pydantic sometimes says "got a number with a fractional part": then say "(got 8.5)"
        msg += f" (got {clip(value)})" if ", got " in msg else f", got {clip(value)}"
    return msg


def _raise_validation(exc: ValidationError, path: tuple, fields: list[str], what: str, ctx=()):
    problems = _best_errors(exc.errors())
    lines = []
    for loc, msg in problems:
        field = loc[0] if loc else None
        if msg == "unknown argument":
            near = close_matches(str(field), fields, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            msg = f"unknown argument '{field}' for {what}{hint}; arguments: {', '.join(fields)}"
        elif msg == "missing":
            msg = f"missing argument '{field}' for {what}"
        lines.append((path + tuple(loc), msg))
    first_path, first_msg = lines[0]
    extra = tuple(f"also: {format_path(p)}: {m}" for p, m in lines[1:])
    raise SpecError(first_msg, path=first_path, context=tuple(ctx) + extra)


def _fields_of(cls) -> list[str]:
    return [f.alias or name for name, f in cls.model_fields.items()]


# ---------------------------------------------------------------------------- values

def resolve(value, env: Mapping[str, Any], path: tuple):
    """Evaluate expression strings inside an argument value."""
    if isinstance(value, str):
        text = value.strip()
        if _IDENT.match(text) and text not in ("True", "False", "None"):
            # A bare name: a variable's value, or a word such as 'same'.
            return env[text] if text in env else value
        try:
            return evaluate(text, env)
        except SpecError as exc:
            raise SpecError(exc.message, path=path) from None
    if isinstance(value, list):
        return [resolve(v, env, path + (i,)) for i, v in enumerate(value)]
    return value


def _as_names(value, path) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SpecError("must be a name or a list of names of earlier outputs", path=path)
    return tuple(names)


def _finite(value, path):
    """A variable's value: a float must be finite (JSON has no inf or nan, and no size is)."""
    import math
    for v in value if isinstance(value, list) else (value,):
        if isinstance(v, float) and not math.isfinite(v):
            raise SpecError(f"must be a finite number, got {v}", path=path)
    return value


def check_rank(shape, path) -> None:
    if len(shape) > MAX_RANK:
        raise SpecError(f"a shape of {len(shape):,} dimensions; calc takes at most {MAX_RANK}", path=path)


def check_size(value, path) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SIZE:
        raise SpecError(f"sizes must be whole numbers from 1 to 2**40, got {value!r}", path=path)
    return value


def _names(value, out: set, keys: set) -> None:
    """The identifiers in the strings of a YAML value (``out``) and its mapping keys (``keys``:
    layer types and block names, never read as expressions)."""
    if isinstance(value, str):
        out.add(value.strip())
        out |= names_in(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            keys.add(k)
            _names(v, out, keys)
    elif isinstance(value, list):
        for v in value:
            _names(v, out, keys)


def _block_names(doc: SpecDoc, kind: str, seen: set, direct: dict | None = None) -> set:
    """Names a block's body may read from outside its parameters, including through the blocks
    it uses (a superset: every identifier in its expressions)."""
    # A worklist, not recursion: a chain of thousands of blocks must not exhaust the stack.
    seen.add(kind)
    out: set = set()
    todo = [kind]
    direct = {} if direct is None else direct   # block -> (its own free names, names it mentions)
    while todo:
        name = todo.pop()
        hit = direct.get(name)
        if hit is None:
            block = doc.blocks[name]
            found: set = set()
            keys: set = set()
            _names(block.layers, found, keys)
            for default in block.params.values():
                _names(default, found, keys)
            hit = direct[name] = (found - set(block.params), (found | keys) & set(doc.blocks))
        out |= hit[0]
        for other in hit[1]:
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return out
