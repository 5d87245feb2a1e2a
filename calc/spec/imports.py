"""``imports:``: blocks (and variables) from another spec file or from a bundled library.

::

    imports:
      - common                                    # every block of the bundled library `common`
      - {from: common, blocks: [conv_bn_act]}     # only these (and the blocks they use)
      - {from: mobilenet_v3_large.yaml, blocks: [inverted_residual], variables: [width_mult]}

``from`` is a file (a name ending in .yaml or .yml, relative to the importing spec's directory)
or the name of a library shipped with calc (calc/library/NAME.yaml, listed in
docs/spec-format.md). Blocks come in under their own names, with the blocks they use; the variables an
imported block reads come with it, with their file's values, unless the importing spec defines
them (then the spec's value is read, as a block always reads the variables of the spec that uses
it). ``variables:`` imports variables by name. A name that the importing spec (or another import)
also defines is an error, as is a cycle of imports, a missing name or file, and a URL.
Bounded: at most MAX_IMPORT_FILES files, each read as any spec is (size, depth, nodes).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import SpecError
from .loader import Source, parse_yaml, read_text

from ..limits import MAX_IMPORT_FILES  # noqa: E402

LIBRARY = Path(__file__).resolve().parent.parent / "library"
ENTRY_KEYS = ("from", "blocks", "variables")


def library_names() -> list[str]:
    return sorted(p.stem for p in LIBRARY.glob("*.yaml"))


class Imported:
    """What a spec's imports bring: blocks and variables by name, and where each block came from."""

    def __init__(self):
        self.blocks: dict = {}       # name -> BlockDef
        self.variables: dict = {}    # name -> value
        self.origin: dict = {}       # block or variable name -> (Source, its path there)
        self.auto: set = set()       # variables that came because an imported block reads them


def resolve_imports(data: dict, source: Source, base: str | None, chain: tuple = (), files: dict | None = None):
    """The blocks and variables that ``data``'s ``imports:`` bring, as an :class:`Imported`;
    ``base``: the directory relative paths start from (None: the importing text has no file).
    ``files``: each file read so far, by its real path (a file that two imports reach is read
    once, and its blocks are the same blocks)."""
    from . import validate_doc_or_library   # the document models live there
    files = {} if files is None else files
    out = Imported()
    entries = data.get("imports") if isinstance(data, dict) else None
    if entries is None:
        return out
    if not isinstance(entries, list):
        raise SpecError("imports must be a list such as [common, {from: blocks.yaml, blocks: [stem]}]",
                        path=("imports",), file=source.name, line=source.line_of(("imports",)))
    for i, entry in enumerate(entries):
        path = ("imports", i)

        def fail(message, where=path):
            raise SpecError(message, path=where, file=source.name, line=source.line_of(where))
        if isinstance(entry, str):
            entry = {"from": entry}
        if not isinstance(entry, dict) or "from" not in entry:
            fail("an import is a library name, a file name, or a mapping {from: ..., blocks: [...], variables: [...]}")
        unknown = [k for k in entry if k not in ENTRY_KEYS]
        if unknown:
            fail(f"unknown argument '{unknown[0]}' for an import; arguments: {', '.join(ENTRY_KEYS)}", path + (unknown[0],))
        target = entry["from"]
        if not isinstance(target, str) or not target.strip():
            fail("from must be a library name or a file name", path + ("from",))
        file, shown = _locate(target, base, fail, path + ("from",))
        if file in chain:
            names = [os.path.basename(f) for f in chain[chain.index(file):]] + [os.path.basename(file)]
            fail("imports form a cycle: " + " → ".join(names), path + ("from",))
        if file not in files:
            if len(files) >= MAX_IMPORT_FILES:
                fail(f"more than {MAX_IMPORT_FILES} imported files", path + ("from",))
            files[file] = None   # being read (a cycle through it is caught by the chain)
            text, _ = read_text(file)
            other, other_source = parse_yaml(text, shown)
            doc = validate_doc_or_library(other, other_source)
            # the imported file's own imports first: its blocks may use what it imported
            inner = resolve_imports(other, other_source, os.path.dirname(file), chain + (file,), files)
            files[file] = (other_source, doc, inner)
        other_source, doc, inner = files[file]
        blocks = {**inner.blocks, **doc.blocks}
        variables = {**inner.variables, **doc.variables}
        # a block of the file reads the file's variables, whether the file defines or imports them
        origin = {**inner.origin, **{n: (other_source, ("blocks", n)) for n in doc.blocks},
                  **{n: (other_source, ("variables", n)) for n in doc.variables}}
        wanted = _names_list(entry.get("blocks", list(blocks)), "blocks", path, fail)
        asked = _names_list(entry.get("variables", []), "variables", path, fail)
        for j, name in enumerate(wanted):
            if name not in blocks:
                fail(f"{shown} has no block '{name}' (blocks: {', '.join(blocks) or 'none'})", path + ("blocks", j))
        for j, name in enumerate(asked):
            if name not in variables:
                fail(f"{shown} has no variable '{name}' (variables: {', '.join(variables) or 'none'})",
                     path + ("variables", j))
        used, reads = _closure(blocks, wanted)
        for name in used:
            _add(out.blocks, out.origin, name, blocks[name], origin[name], fail, "block")
        for name in asked:
            _add(out.variables, out.origin, name, variables[name], origin[name], fail, "variable")
        for name in sorted(reads & set(variables)):
            if name not in out.variables:
                out.variables[name] = variables[name]
                out.origin[name] = origin[name]
                out.auto.add(name)
    return out


def _locate(target: str, base, fail, where) -> tuple[str, str]:
    """(the file to read, the name messages show) for ``from: target``."""
    if "://" in target or target.startswith(("http:", "https:", "ftp:", "file:")):
        fail(f"imports read files only, not URLs ({target!r})", where)
    if target.endswith((".yaml", ".yml")):
        if base is None and not os.path.isabs(target):
            fail(f"a spec given as text has no directory for the relative file {target!r}; load it with "
                 "load_spec (or the command line), or give an absolute path", where)
        file = os.path.normpath(os.path.join(base or "", target))
        if not os.path.isfile(file):
            fail(f"no such file to import: {target!r} (looked for {file})", where)
        return os.path.realpath(file), target
    if not target.isidentifier():
        fail(f"{target!r} is neither a bundled library name nor a file name ending in .yaml", where)
    file = LIBRARY / f"{target}.yaml"
    if not file.is_file():
        fail(f"no bundled library '{target}' (libraries: {', '.join(library_names()) or 'none'}; a file "
             "name ends in .yaml)", where)
    return str(file), f"calc/library/{target}.yaml"


def _names_list(value, key, path, fail) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail(f"{key} must be a list of names", path + (key,))
    return value


def _closure(blocks: dict, wanted: list) -> tuple[list, set]:
    """The blocks ``wanted`` use (themselves included, in file order), and every name they read."""
    from .document import _names
    todo, seen, reads = list(wanted), set(wanted), set()
    while todo:
        block = blocks[todo.pop()]
        found: set = set()
        keys: set = set()
        _names(block.layers, found, keys)
        for default in block.params.values():
            _names(default, found, keys)
        reads |= found - set(block.params)
        for other in (found | keys) & set(blocks):   # used as an item, or named by a parameter
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return [n for n in blocks if n in seen], reads


def _add(table, origin, name, value, where, fail, what) -> None:
    if name in table and origin.get(name) != where:
        fail(f"{what} '{name}' is imported twice ({_shown(origin[name])} and {_shown(where)})")
    table[name] = value
    origin[name] = where


def _shown(where) -> str:
    src, path = where
    line = src.line_of(path)
    return f"{src.name}" + (f" line {line}" if line else "")
