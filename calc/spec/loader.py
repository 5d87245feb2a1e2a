"""Safe YAML loading that remembers where every value came from.

libyaml (through PyYAML) parses the text into events; we turn the events into plain dicts,
lists and scalars ourselves (never constructing Python objects from tags), which lets us record
the line of every value, refuse duplicate keys, refuse tags other than the standard ones, and
bound the work an alias bomb or a deeply nested document could cause. An alias reuses the
anchored value (it is not copied) but still counts as all the values it stands for.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from typing import Any

import yaml

from ..errors import InputError, nearest_line
from .._gc import gc_paused
from ..limits import MAX_BYTES, MAX_DEPTH, MAX_INT_DIGITS, MAX_NODES, MAX_STRING, clip

_Loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
# Plain scalars that YAML 1.1 (PyYAML) and YAML 1.2 read differently: a leading zero (octal in
# 1.1: 010 is 8) and base 60 (1:30 is 90). calc refuses them rather than guess.
_OCTAL_11 = re.compile(r"[-+]?0[0-9_]+\Z")
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?\Z")

_BRACKETS = re.compile(r"[\[\]{}]")
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")}


class Source:
    """Where a document came from: a display name and the line of each path in it.

    A spec read by :func:`parse_yaml` keeps its text instead of the lines, and reads the text
    again for them when first asked (an error's location, ``calc check``): a map of every
    path's line was about 370 bytes a layer, most of the memory of reading a long spec, and
    a third of the time, for lines that a spec without errors never shows."""

    __slots__ = ("name", "_lines", "_text")

    def __init__(self, name: str | None, lines: dict[tuple, int] | None = None, text: str | None = None):
        self.name = name
        self._text = text
        self._lines = lines if lines is not None or text is None else None

    @property
    def lines(self) -> dict[tuple, int]:
        if self._lines is None:
            lines: dict = {}
            _read(self._text, Source(self.name, lines), lines)   # read once already: no error
            self._lines = lines
        return self._lines

    @lines.setter
    def lines(self, value: dict[tuple, int]) -> None:
        self._lines = value

    def lines_map(self):
        """The lines as a mapping, read when first used (see above)."""
        return self._lines if self._lines is not None else _Lines(self)

    def line_of(self, path: tuple) -> int | None:
        return nearest_line(self.lines, path)


class _Lines(Mapping):
    """A source's lines, read again from its text on first use (see :class:`Source`)."""

    __slots__ = ("_source",)

    def __init__(self, source: Source):
        self._source = source

    def __getitem__(self, path):
        return self._source.lines[path]

    def __iter__(self):
        return iter(self._source.lines)

    def __len__(self) -> int:
        return len(self._source.lines)

    def __repr__(self) -> str:
        return repr(self._source.lines)


class _NeedLines(Exception):
    """A message needs the line of an earlier value (a duplicate key's first line): the document
    is read again with its lines."""


def _max_flow_depth(text: str) -> int:
    # A cheap pre-scan so that a document of thousands of nested brackets is refused before
    # the (recursive) composer sees it. Brackets inside quoted strings may over-count, which
    # only makes the limit stricter for absurd documents.
    depth = best = 0
    for ch in _BRACKETS.findall(text):
        if ch in "[{":
            depth += 1
            if depth > best:
                best = depth
        else:
            depth = max(0, depth - 1)
    return best


def _max_indent_depth(text: str) -> int:
    return max((len(line) - len(line.lstrip(" -")) for line in text.splitlines()), default=0) // 2


@gc_paused
def parse_yaml(text: str, name: str | None = None) -> tuple[Any, Source]:
    """Parse one YAML document safely; returns the data and its :class:`Source`."""
    if not isinstance(text, str):
        from ..errors import ArgumentTypeError
        raise ArgumentTypeError(f"the spec text must be a str, got {type(text).__name__}"
                                + (" (decode bytes as UTF-8 first)" if isinstance(text, (bytes, bytearray)) else ""))
    if name is not None and not isinstance(name, str):
        from ..errors import ArgumentTypeError
        raise ArgumentTypeError(f"the spec's name must be a str or None, got {type(name).__name__}")
    source = Source(name, text=text)
    if len(text) > MAX_BYTES:
        raise InputError(f"file larger than {MAX_BYTES // (1024 * 1024)} MiB", file=name)
    if "\x00" in text:
        raise InputError("file contains NUL bytes; is it a binary file?", file=name)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:   # a lone surrogate: not text any file could hold
        line = text.count("\n", 0, exc.start) + 1
        raise InputError(f"not valid text: a lone surrogate {text[exc.start]!a} at character "
                         f"{exc.start + 1:,}", file=name, line=line) from None
    if _max_flow_depth(text) > MAX_DEPTH or _max_indent_depth(text) > 4 * MAX_DEPTH:
        raise InputError(f"nesting deeper than {MAX_DEPTH} levels", file=name)
    try:
        data = _read(text, source, None)
    except _NeedLines:
        source.lines = {}
        data = _read(text, source, source.lines)     # raises the error, now with its lines
    return data, source


def _read(text: str, source: Source, lines: dict | None):
    """The document's data; ``lines``: a dict to fill with the line of every path, or None."""
    name = source.name
    loader = _Loader(text)
    try:
        return _EventReader(loader, source, lines).document()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p) or "malformed YAML"
        if "flow" in problem or "expected ','" in problem or "expected ']'" in problem \
                or "expected '}'" in problem or "expected ',' or" in problem:
            problem += (" (an expression that contains commas, brackets or braces must be quoted, "
                        "e.g. out: \"max(8, c // 2)\")")
        raise InputError(f"malformed YAML: {problem}", file=name, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", file=name) from None
    except RecursionError:
        raise InputError(f"nesting deeper than {MAX_DEPTH} levels", file=name) from None
    finally:
        loader.dispose()


class _EventReader:
    """Builds plain data straight from the parser's events (PyYAML's composer and
    constructor cost far more than libyaml's parsing on long specs). Scalars are resolved and
    constructed by PyYAML itself, once per distinct (tag, text) pair."""

    def __init__(self, loader, source: Source, lines: dict | None):
        self.loader = loader
        self.next = loader.get_event
        self.source = source
        self.lines = lines        # None: no lines recorded, and no paths made
        self.count = 0
        self.anchors: dict = {}    # anchor -> (value, number of values in it)
        self.scalars: dict = {}    # (tag, text, implicit) -> (resolved tag, value)
        self.keys: dict = {}       # (tag, text, implicit) -> the mapping key made of a plain scalar

    def fail(self, message, line):
        raise InputError(message, file=self.source.name, line=line)

    def document(self):
        self.next()                                    # stream start
        event = self.next()
        if isinstance(event, yaml.StreamEndEvent):
            self.fail("empty document: expected a mapping with name, input and layers", None)
        data = self.value(self.next(), (), 0)          # after the document start
        self.next()                                    # document end
        event = self.next()
        if not isinstance(event, yaml.StreamEndEvent):
            self.fail("malformed YAML: expected a single document in the stream but found another document",
                      event.start_mark.line + 1)
        return data

    def value(self, event, path, depth):
        self.count += 1
        if self.count > MAX_NODES:
            self.fail(f"document expands to more than {MAX_NODES:,} values (an alias bomb?)",
                      event.start_mark.line + 1)
        if depth > MAX_DEPTH:
            self.fail(f"nesting deeper than {MAX_DEPTH} levels", event.start_mark.line + 1)
        line = event.start_mark.line + 1
        lines = self.lines
        if lines is not None and path not in lines:
            lines[path] = line
        kind = type(event)
        first = self.count
        if kind is yaml.ScalarEvent:
            value = self.scalar(event, line)[1]
        elif kind is yaml.MappingStartEvent:
            if event.tag is not None and event.tag not in ("!", _MAP):
                self.fail(f"YAML tag {event.tag!r} is not allowed", line)
            value = {}
            keys, scalars, scalar_event = self.keys, self.scalars, yaml.ScalarEvent
            while True:
                key_event = self.next()
                if type(key_event) is yaml.MappingEndEvent:
                    break
                key_line = key_event.start_mark.line + 1
                if type(key_event) is scalar_event and key_event.anchor is None:
                    # A plain key: what key() makes of it depends only on its text and tag.
                    seen = (key_event.tag, key_event.value, key_event.implicit)
                    key = keys.get(seen)
                    if key is None:
                        key = keys[seen] = self.key(key_event, key_line)
                else:
                    key = self.key(key_event, key_line)
                if key in value:
                    if lines is None:
                        raise _NeedLines
                    self.fail(f"duplicate key {key!r} (first on line {lines.get(path + (key,), '?')})",
                              key_line)
                if lines is not None:
                    lines[path + (key,)] = key_line
                item = self.next()
                if type(item) is scalar_event and item.anchor is None:
                    # The common case, inline (its line is the key's, recorded above).
                    self.count += 1
                    hit = scalars.get((item.tag, item.value, item.implicit))
                    value[key] = (hit or self.scalar(item, key_line))[1]
                else:
                    value[key] = self.value(item, None if lines is None else path + (key,), depth + 1)
        elif kind is yaml.SequenceStartEvent:
            if event.tag is not None and event.tag not in ("!", _SEQ):
                self.fail(f"YAML tag {event.tag!r} is not allowed", line)
            value = []
            while True:
                item = self.next()
                if type(item) is yaml.SequenceEndEvent:
                    break
                value.append(self.value(item, None if lines is None else path + (len(value),), depth + 1))
        elif kind is yaml.AliasEvent:
            if event.anchor not in self.anchors:
                self.fail(f"malformed YAML: found undefined alias {event.anchor!r}", line)
            value, size = self.anchors[event.anchor]
            # Count the values the alias stands for, so that an alias bomb is still refused.
            self.count += size - 1
            if self.count > MAX_NODES:
                self.fail(f"document expands to more than {MAX_NODES:,} values (an alias bomb?)", line)
            return value
        else:  # pragma: no cover - the parser emits only these inside a document
            self.fail(f"malformed YAML: unexpected {kind.__name__}", line)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, self.count - first + 1)
        return value

    def key(self, event, line):
        if type(event) is yaml.AliasEvent and event.anchor in self.anchors:
            key = self.anchors[event.anchor][0]
            if isinstance(key, (dict, list)):
                self.fail("mapping keys must be plain scalars", line)
        elif type(event) is not yaml.ScalarEvent:
            self.fail("mapping keys must be plain scalars", line)
        else:
            tag, key = self.scalar(event, line)
            if tag == "tag:yaml.org,2002:merge":
                self.fail("YAML merge keys ('<<') are not supported; use blocks instead", line)
            if event.anchor is not None:
                self.anchors[event.anchor] = (key, 1)
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            key = str(key)
        return key

    def scalar(self, event, line):
        cache_key = (event.tag, event.value, event.implicit)
        hit = self.scalars.get(cache_key)
        if hit is not None:
            return hit
        if len(event.value) > MAX_STRING:
            self.fail(f"a value of {len(event.value):,} characters ({clip(event.value, 40)}); "
                      f"values are at most {MAX_STRING:,} characters", line)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == "tag:yaml.org,2002:int" and len(event.value) > MAX_INT_DIGITS:
            # Reading a long integer takes time quadratic in its digits; no size has that many.
            self.fail(f"bad value {clip(event.value, 40)}: an integer of {len(event.value):,} digits "
                      f"(at most {MAX_INT_DIGITS:,})", line)
        if event.tag is None or event.tag == "!":
            if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and (
                    _OCTAL_11.match(event.value) or _SEXAGESIMAL.match(event.value)):
                octal = bool(_OCTAL_11.match(event.value))
                self.fail(f"the number {event.value!r} is ambiguous: YAML 1.1 reads it as "
                          + ("octal" if octal else "base 60 (1:30 is 90)") + "; write it "
                          + ("without the leading zero (or 0o… for octal)" if octal else
                             "as one number, or in quotes if it is text"), line)
        if tag == "tag:yaml.org,2002:merge":
            return tag, event.value
        if tag not in _SCALAR_TAGS:
            self.fail(f"YAML tag {tag!r} is not allowed (only plain values: "
                      "strings, numbers, booleans, null)", line)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            value = self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            text = event.value if len(event.value) <= 40 else \
                f"{event.value[:40]}… ({len(event.value):,} characters)"
            reason = str(exc).split(":")[0] if len(str(exc)) > 200 else str(exc)
            self.fail(f"bad value {text!r}: {reason}", line)
        self.scalars[cache_key] = hit = (tag, value)
        return hit


def parse_value(text: str):
    """A value given on the command line (``--set NAME=VALUE``, a sweep's values), read as YAML by
    the same rules as a spec: plain values only, no ambiguous YAML 1.1 numbers. Returns the value
    (None for an empty text)."""
    if not text.strip():
        return None
    data, _ = parse_yaml(text, None)
    return data


def read_text(path) -> tuple[str, str]:
    """Read a spec file (or standard input for ``-``) as UTF-8; returns (text, display name)."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        from ..errors import ArgumentTypeError
        raise ArgumentTypeError(f"a spec path must be a str or os.PathLike, got {type(path).__name__}"
                                + (" (parse_spec reads a spec's text)" if isinstance(path, bytes) else ""))
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
