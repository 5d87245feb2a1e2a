"""Safe YAML loading that remembers where every value came from.

PyYAML composes the document into nodes (never constructing Python objects from tags);
we turn nodes into plain dicts, lists and scalars ourselves, which lets us record the line of
every value, refuse duplicate keys, refuse tags other than the standard ones, and bound the
work an alias bomb or a deeply nested document could cause.
"""
from __future__ import annotations

import os
import sys
from typing import Any

import yaml

from .errors import InputError

_Loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader

MAX_NODES = 200_000        # values after alias expansion
MAX_DEPTH = 64             # nesting of mappings and lists
MAX_BYTES = 16 * 1024 * 1024

_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")}


class Source:
    """Where a document came from: a display name and the line of each path in it."""

    __slots__ = ("name", "lines")

    def __init__(self, name: str | None, lines: dict[tuple, int] | None = None):
        self.name = name
        self.lines = lines if lines is not None else {}

    def line_of(self, path: tuple) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        path = tuple(path)
        while True:
            line = self.lines.get(path)
            if line is not None or not path:
                return line
            path = path[:-1]


def _max_flow_depth(text: str) -> int:
    # A cheap pre-scan so that a document of thousands of nested brackets is refused before
    # the (recursive) composer sees it. Brackets inside quoted strings may over-count, which
    # only makes the limit stricter for absurd documents.
    depth = best = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            if depth > best:
                best = depth
        elif ch in "]}":
            depth = max(0, depth - 1)
    return best


def _max_indent_depth(text: str) -> int:
    return max((len(line) - len(line.lstrip(" -")) for line in text.splitlines()), default=0) // 2


def parse_yaml(text: str, name: str | None = None) -> tuple[Any, Source]:
    """Parse one YAML document safely; returns the data and its :class:`Source`."""
    source = Source(name)
    if len(text) > MAX_BYTES:
        raise InputError(f"file larger than {MAX_BYTES // (1024 * 1024)} MiB", file=name)
    if "\x00" in text:
        raise InputError("file contains NUL bytes; is it a binary file?", file=name)
    if _max_flow_depth(text) > MAX_DEPTH or _max_indent_depth(text) > 4 * MAX_DEPTH:
        raise InputError(f"nesting deeper than {MAX_DEPTH} levels", file=name)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p) or "malformed YAML"
        raise InputError(f"malformed YAML: {problem}", file=name, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", file=name) from None
    except RecursionError:
        raise InputError(f"nesting deeper than {MAX_DEPTH} levels", file=name) from None
    finally:
        loader.dispose()
    if node is None:
        raise InputError("empty document: expected a mapping with name, input and layers", file=name)
    counter = [0]
    data = _convert(node, (), 0, source, loader, counter)
    return data, source


def _convert(node, path, depth, source: Source, loader, counter):
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise InputError(f"document expands to more than {MAX_NODES:,} values "
                         "(an alias bomb?)", file=source.name, line=node.start_mark.line + 1)
    if depth > MAX_DEPTH:
        raise InputError(f"nesting deeper than {MAX_DEPTH} levels", file=source.name,
                         line=node.start_mark.line + 1)
    line = node.start_mark.line + 1
    source.lines.setdefault(path, line)
    if isinstance(node, yaml.MappingNode):
        if node.tag != _MAP:
            raise InputError(f"YAML tag {node.tag!r} is not allowed", file=source.name, line=line)
        result: dict = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:merge":
                raise InputError("YAML merge keys ('<<') are not supported; use blocks instead",
                                 file=source.name, line=key_node.start_mark.line + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError("mapping keys must be plain scalars", file=source.name,
                                 line=key_node.start_mark.line + 1)
            key = _scalar(key_node, source, loader)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                key = str(key)
            if key in result:
                raise InputError(f"duplicate key {key!r} (first on line "
                                 f"{source.lines.get(path + (key,), '?')})", file=source.name,
                                 line=key_node.start_mark.line + 1, path=path)
            source.lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = _convert(value_node, path + (key,), depth + 1, source, loader, counter)
        return result
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ:
            raise InputError(f"YAML tag {node.tag!r} is not allowed", file=source.name, line=line)
        return [_convert(item, path + (i,), depth + 1, source, loader, counter)
                for i, item in enumerate(node.value)]
    return _scalar(node, source, loader)


def _scalar(node, source: Source, loader):
    line = node.start_mark.line + 1
    if node.tag not in _SCALAR_TAGS:
        raise InputError(f"YAML tag {node.tag!r} is not allowed (only plain values: "
                         "strings, numbers, booleans, null)", file=source.name, line=line)
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        text = node.value if len(node.value) <= 40 else f"{node.value[:40]}… ({len(node.value):,} characters)"
        reason = str(exc).split(":")[0] if len(str(exc)) > 200 else str(exc)
        raise InputError(f"bad value {text!r}: {reason}", file=source.name, line=line) from None


def read_text(path: str) -> tuple[str, str]:
    """Read a spec file (or standard input for ``-``) as UTF-8; returns (text, display name)."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_BYTES + 1)
        name = "<stdin>"
    else:
        name = path
        if os.path.isdir(path):
            raise InputError("is a directory, not a spec file", file=name)
        if not os.path.exists(path):
            raise InputError("no such file", file=name)
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", file=name) from None
    if len(data) > MAX_BYTES:
        raise InputError(f"file larger than {MAX_BYTES // (1024 * 1024)} MiB", file=name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); "
                         "is it a binary file?", file=name) from None
    return text, name
