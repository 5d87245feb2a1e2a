"""The spec format: validation of the YAML document and building of the model tree.

A spec is a mapping::

    name: resnet18
    description: optional text
    input: [3, 224, 224]          # one sample, channels first, no batch dimension
    input_kind: values            # or tokens: the input holds token ids, e.g. input: [1024]
    variables: {width: 1.0}       # optional; overridable with --set width=0.5
    blocks:                       # optional reusable blocks with parameters
      basic:
        params: {out: null, stride: 1}     # null = required
        layers: [...]
    layers:                       # the network, one item per line
      - conv2d: {out: 64, kernel: 7, stride: 2, padding: 3, bias: false}
      - relu
      - basic: {out: 64}

An item is a layer type, a block name or a structure keyword (``repeat``, ``residual``,
``parallel``, ``group``) with its arguments; every item also takes ``name``, ``from`` (the
name of an earlier output to read instead of the previous one), ``when`` (an expression;
the item is left out when false) and ``trainable`` (false freezes its parameters); a layer
also takes ``tie`` (the name of an earlier layer whose weight matrix it shares).
``repeat`` takes ``index`` (a variable holding the iteration number, so that iterations may
differ); ``residual`` takes ``enabled`` (when false, only the main path remains). Variables
and block parameters may be lists (``layers: [3, 4, 6, 3]``, read as ``layers[i]``).
A layer item may also carry hints on how the PyTorch code calls it (``call``, ``contiguous``,
``owner``; see :data:`calc.layers.HINTS`), which only the tool-compatible conventions read; on
``residual`` and ``parallel``, ``call`` describes the join (``call: functional`` for ``torch.add``).

A string argument is an expression over the variables and block parameters, except a bare
word that names no variable, which stays a string (``padding: same``).
"""

import dataclasses
import os
from typing import Any, Mapping

from pydantic import ValidationError

from ..caches import build_cache
from ..errors import SpecError
from .._gc import gc_paused
from ..graph import Model, Seq
from ..layers import LAYERS
from .loader import Source, parse_yaml, read_text
from .variants import Variant, check_variants
from .flow import root_flow
from .build import Builder, check_rank, check_size, expect_sites  # noqa: F401 - check_size is used by the analysis
from .imports import resolve_imports
from .document import LibraryDoc  # noqa: E402
from .document import (_IDENT, MAX_BUILT_NODES, MAX_NESTING, MAX_REPEAT, RESERVED, STRUCTURES, BlockDef,  # noqa: F401
                       SpecDoc, _fields_of, _raise_validation)


# ---------------------------------------------------------------------------- entry points

def validate_doc(data, source: Source, base: str | None = None, merge: bool = True) -> SpecDoc:
    """The spec document ``data`` validated, its imports merged in (``base``: the directory
    that relative imports start from; None for a text with no file; ``merge``: False for a file
    that another imports, whose imports calc.spec.imports follows itself)."""
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise SpecError(f"a spec must be a mapping with name, input and layers; this document is {kind}",
                        file=source.name, line=1)
    try:
        doc = SpecDoc.model_validate(data)
    except ValidationError as exc:
        try:
            _raise_validation(exc, (), _fields_of(SpecDoc), "a spec")
        except SpecError as err:
            err.file = source.name
            err.line = source.line_of(err.path)
            raise
    if doc.imports and merge:
        doc = _merge_imports(doc, data, source, base)
    try:
        check_variants(doc)
    except SpecError as err:
        err.file = source.name
        err.line = source.line_of(err.path)
        raise
    return doc


def validate_doc_or_library(data, source: Source):
    """An imported file: a whole spec (it has layers) or a library of blocks and variables."""
    if isinstance(data, dict) and ("layers" in data or "input" in data or "inputs" in data):
        return validate_doc(data, source, merge=False)   # calc.spec.imports follows its imports
    if not isinstance(data, dict):
        raise SpecError("an imported file must be a mapping with blocks (and variables)", file=source.name, line=1)
    try:
        return LibraryDoc.model_validate(data)
    except ValidationError as exc:
        try:
            _raise_validation(exc, (), _fields_of(LibraryDoc), "a library of blocks")
        except SpecError as err:
            err.file = source.name
            err.line = source.line_of(err.path)
            raise


def _merge_imports(doc: SpecDoc, data: dict, source: Source, base) -> SpecDoc:
    got = resolve_imports(data, source, base, () if source.name is None or base is None
                          else (os.path.realpath(source.name),))
    for name in got.blocks:
        if name in doc.blocks:
            raise SpecError(f"block '{name}' is defined here and imported from {_where(got.origin[name])}; "
                            "rename one or leave it out of the import", path=("blocks", name),
                            file=source.name, line=source.line_of(("blocks", name)))
    for name in got.variables:
        if name in doc.variables:
            if name in got.auto:
                continue   # an imported block reads the spec's own value
            raise SpecError(f"variable '{name}' is defined here and imported from {_where(got.origin[name])}",
                            path=("variables", name), file=source.name, line=source.line_of(("variables", name)))
    # imported variables first: the spec's own may be computed from them
    variables = {**{n: v for n, v in got.variables.items() if n not in doc.variables}, **doc.variables}
    merged = doc.model_copy(update={"blocks": {**got.blocks, **doc.blocks}, "variables": variables})
    merged._origins = {n: w for n, w in got.origin.items() if n in got.blocks or n in variables and n not in doc.variables}
    return merged


def _where(origin) -> str:
    src, path = origin
    line = src.line_of(path)
    return src.name + (f" line {line}" if line else "")


def _relocate(err: SpecError, doc: SpecDoc) -> bool:
    """Point an error inside an imported block (or variable) at the file that wrote it."""
    path = err.path or ()
    if len(path) >= 2 and path[0] in ("blocks", "variables") and path[1] in doc._origins:
        src, there = doc._origins[path[1]]
        err.file = src.name
        err.line = src.line_of(there + tuple(path[2:]))
        return True
    return False


@gc_paused
def build(doc: SpecDoc, source: Source, overrides: Mapping[str, Any] | None = None,
          input_shape: tuple | None = None, cache: dict | None = None, builder: type = Builder) -> Model:
    """Expand blocks, repeats and expressions into a :class:`Model`. ``cache`` (a dict) shares
    validated layers and block bodies between builds of the same ``doc``; ``builder`` is the
    class that builds (a compiled sweep traces with its own, see calc.sweep_compile)."""
    try:
        for name in doc.blocks:
            if name in LAYERS or name in STRUCTURES or name in RESERVED:
                raise SpecError(f"block name '{name}' is already a layer type or keyword", path=("blocks", name))
            if not _IDENT.match(name):
                raise SpecError("block names must be identifiers", path=("blocks", name))
            for pname in doc.blocks[name].params:
                if pname == "__in__":
                    raise SpecError("parameter '__in__' is how `in`, the shape entering an item, is read; rename "
                                    "the parameter", path=("blocks", name, "params", pname))
                if pname in RESERVED or pname in STRUCTURES:
                    raise SpecError(f"parameter '{pname}' has the name of a key every item takes "
                                    f"({', '.join(RESERVED)}); rename the parameter",
                                    path=("blocks", name, "params", pname))
        builder = builder(doc, source, overrides, cache)
        if input_shape is not None:
            if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
                raise SpecError(f"input shape must be a sequence of sizes, got {input_shape!r}")
            shape = tuple(check_size(v, ("input", i)) for i, v in enumerate(input_shape))
            check_rank(shape, ("input",))
            if not shape:
                raise SpecError("input shape needs at least one size")
        else:
            shape = builder.input_shape()
        inputs = builder.named_inputs() if doc.inputs else ()
        if inputs:   # an explicit shape replaces the first input's
            inputs = ((inputs[0][0], shape), *inputs[1:])
        builder.flow = root_flow(Model(name=doc.name, description=None, input_shape=shape,
                                       root=Seq(name=None, origin=("layers",), items=()), variables={},
                                       source_name=source.name, lines=source.lines, origins=dict(doc._origins)),
                                 shape, inputs, doc.input_kind == "tokens")
        items = builder.build_list(doc.layers, ("layers",), builder.variables, True, ())
        # a body built by an earlier build of the spec (the shared cache) is not read again
        reads_in = builder.flow.used or bool(builder.cache.get(("reads in",)))
        if reads_in:
            builder.cache[("reads in",)] = True
    except SpecError as err:
        if err.path and str(err.path[0]).startswith("--"):
            raise   # a command-line value: not the spec's
        if doc._origins and err.file is None and _relocate(err, doc):
            raise
        if err.file is None:
            err.file = source.name
        if err.line is None:
            err.line = source.line_of(err.path)
        raise
    if not items:
        raise SpecError("the spec has no layers left (every item has a false 'when')", file=source.name)
    root = Seq(name=None, origin=("layers",), kind="model", items=items)
    return Model(name=doc.name, description=doc.description, input_shape=shape, root=root,
                 variables=dict(builder.variables), source_name=source.name, lines=source.lines_map(),
                 input_kind=doc.input_kind, inputs=inputs, origins=dict(doc._origins),
                 notes=tuple(sorted(builder.notes.items(), key=lambda n: source.line_of(n[0]) or 0)),
                 reads_in=reads_in,
                 expect=None if doc.expect is None else (expect_sites(doc.expect, ("expect",)), dict(builder.variables)))


class Spec:
    """A parsed, validated spec that can be built with different variables."""

    def __init__(self, doc: SpecDoc, source: Source):
        self.doc = doc
        self.source = source
        self.cache = build_cache()   # shared by every build (see calc.caches)

    @property
    def name(self) -> str:
        return self.doc.name

    @property
    def variants(self) -> dict[str, Variant]:
        """The spec's named variants (``variants:``), by name."""
        return check_variants(self.doc)

    def build(self, overrides: Mapping[str, Any] | None = None, input_shape: tuple | None = None,
              variant: str | None = None) -> Model:
        """Build with ``overrides`` of the variables; ``variant`` names one of the spec's variants,
        whose values and input apply under ``overrides`` and ``input_shape``. The model then
        bears the variant's name."""
        if overrides is not None and not isinstance(overrides, Mapping):
            from ..errors import ArgumentTypeError
            raise ArgumentTypeError(f"overrides must be a mapping of variable names to values, "
                                    f"got {type(overrides).__name__}")
        if variant is None:
            return build(self.doc, self.source, overrides, input_shape, self.cache)
        chosen = self.variants.get(variant)
        if chosen is None:
            known = ", ".join(self.variants) or "none"
            raise SpecError(f"the spec {self.name} has no variant '{variant}' (variants: {known})",
                            file=self.source.name)
        model = build(self.doc, self.source, {**chosen.variables, **(overrides or {})},
                      input_shape if input_shape is not None else chosen.input, self.cache)
        return dataclasses.replace(model, name=variant, description=chosen.description or model.description)


@gc_paused
def parse_spec(text: str, name: str | None = None) -> Spec:
    """Parse and validate a spec's text (``name`` is shown in messages). Bad content raises a
    CalcError; a value of the wrong Python type, :class:`calc.errors.ArgumentTypeError` (both a
    CalcError and a TypeError)."""
    data, source = parse_yaml(text, name)
    # relative imports start from the spec file's directory (a text with no file has none)
    base = os.path.dirname(os.path.abspath(name)) if isinstance(name, str) and os.path.isfile(name) else None
    return Spec(validate_doc(data, source, base), source)


def load_spec(path: str) -> Spec:
    """Read and validate a spec file (``-`` is standard input)."""
    text, name = read_text(path)
    return parse_spec(text, name)
