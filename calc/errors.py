"""The one error family calc raises for anything the user got wrong.

Library code raises these; only the CLI turns them into ``error: ...`` and exit status 2.
"""
from __future__ import annotations

from typing import Iterable, Union

PathPart = Union[str, int]
Path = tuple  # tuple[PathPart, ...]


def format_path(path: Iterable[PathPart]) -> str:
    """``('layers', 4, 'conv2d', 'kernel')`` -> ``layers[4].conv2d.kernel``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class CalcError(Exception):
    """Base class: a problem with what the user gave calc (file, spec, shape, option).

    Carries where it happened: ``file``, ``line`` (1-based, when known), ``path`` (a tuple
    such as ``('layers', 4, 'conv2d', 'kernel')``) and ``context`` (lines such as
    "in block 'bottleneck' instantiated at layers[7], input 256×56×56").
    """

    exit_code = 2

    def __init__(self, message: str, *, path: tuple = (), file: str | None = None,
                 line: int | None = None, context: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.path = tuple(path)
        self.file = file
        self.line = line
        # An entry may be a function returning the line, so that callers build text only on error.
        self.context = tuple(c() if callable(c) else c for c in context)

    def locate(self, *, path: tuple = (), file: str | None = None, line: int | None = None,
               context: tuple = ()) -> "CalcError":
        """Fill in where the error happened, keeping what it already knows."""
        self.path = self.path or tuple(path)
        self.file = self.file or file
        self.line = self.line or line
        self.context = self.context or tuple(c() if callable(c) else c for c in context)
        return self

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file) + (f":{self.line}" if self.line else ""))
        elif self.line:
            parts.append(f"line {self.line}")
        if self.path:
            parts.append(format_path(self.path))
        return ": ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        text = f"{where}: {self.message}" if where else str(self.message)
        for extra in self.context:
            text += f"\n  {extra() if callable(extra) else extra}"
        return text


class ArgumentTypeError(CalcError, TypeError):
    """A library function was called with a Python value of the wrong type (bytes for a spec's
    text, a number for a path). Both a CalcError and a TypeError, so that either catches it."""


class InputError(CalcError):
    """The file or text could not be read as a YAML mapping."""


class SpecError(CalcError):
    """The spec does not follow the format (types, arguments, names, expressions)."""


class ShapeError(CalcError):
    """A layer cannot take the shape it receives."""


class ConventionError(CalcError):
    """A counting convention is unknown or has no rule for a layer."""


class OracleError(CalcError):
    """The PyTorch oracle cannot run: PyTorch is not installed, a layer type has no builder,
    or PyTorch refuses the model (``calc.oracle.TorchRejected``)."""


def nearest_line(lines: dict | None, path: tuple) -> int | None:
    """The line of ``path`` in ``lines``, or of its nearest ancestor that has one."""
    if not lines:
        return None
    path = tuple(path)
    while True:
        line = lines.get(path)
        if line is not None or not path:
            return line
        path = path[:-1]


def close_matches(word: str, choices, n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The suggestions of a "did you mean" message. difflib is imported here, when a message
    needs it, to keep it off the start-up path of every command (docs/performance.md)."""
    import difflib
    return difflib.get_close_matches(word, choices, n=n, cutoff=cutoff)
