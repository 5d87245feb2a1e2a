"""Named variants of a spec: ``variants: {resnext50_32x4d: {groups: 32, width_per_group: 4}}``.

A variant is a name for a set of variable values, and optionally an input shape, of one spec,
so that a published model is reached by its name (``calc analyze resnext50_32x4d``) instead of
by a list of ``--set`` options. Every key of a variant other than ``input`` and ``description``
must be one of the spec's variables; its value replaces the variable's default exactly as
``--set NAME=VALUE`` would (``--set`` and ``--input`` given with a variant still win).
"""

from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from .document import _IDENT, SpecDoc

VARIANT_KEYS = ("input", "description")   # the keys of a variant that are not variables


@dataclass(frozen=True)
class Variant:
    name: str
    variables: dict            # variable -> value, as the spec file writes it
    input: tuple | None        # per-sample input shape, or None: the spec's own
    description: str | None


def check_variants(doc: SpecDoc) -> dict[str, Variant]:
    """Every variant of ``doc``, checked: identifiers, known variables, whole-number inputs."""
    out = {}
    for name, body in doc.variants.items():
        path = ("variants", name)
        if not _IDENT.match(name):
            raise SpecError("variant names must be identifiers (letters, digits, _), like torchvision's "
                            "model names", path=path)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise SpecError(f"a variant is a mapping of variables to values (and optionally input), "
                            f"got {type(body).__name__} {body!r}", path=path)
        variables = {}
        for key, value in body.items():
            if key in VARIANT_KEYS:
                continue
            if key not in doc.variables:
                known = ", ".join(doc.variables) or "none"
                raise SpecError(f"'{key}' is not a variable of the spec (variables: {known}; a variant "
                                f"may also give input and description)", path=path + (key,))
            if not _is_value(value):
                raise SpecError(f"a variable's value must be a number, true/false, a string or a list "
                                f"of them, got {value!r}", path=path + (key,))
            variables[key] = value
        shape = body.get("input")
        if shape is not None:
            if not isinstance(shape, list) or not shape or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape):
                raise SpecError(f"input must be a list of positive whole numbers such as [3, 240, 240], "
                                f"got {shape!r}", path=path + ("input",))
            shape = tuple(shape)
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise SpecError("description must be text", path=path + ("description",))
        out[name] = Variant(name, variables, shape, description)
    return out


def _is_value(value: Any) -> bool:
    scalar = (bool, int, float, str)
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))
