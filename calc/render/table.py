"""The one text-table layout of every report: titled columns, each left- or right-aligned,
two spaces apart, a rule under the titles, and optionally a totals line below a second rule.

Cells are strings already formatted by the caller; this module only places them. Lines carry
no trailing spaces (an empty last cell leaves nothing behind), and a rule is as long as the
title line.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Callable, Sequence

RULE = "─"
GAP = "  "       # between columns
INDENT = "  "    # per nesting level of a row (its first cell)


@dataclass(frozen=True)
class Column:
    title: str
    right: bool = False    # numbers are right-aligned so that their digits line up


def left(title: str) -> Column:
    return Column(title)


def right(title: str) -> Column:
    return Column(title, right=True)


def _aligner(columns: Sequence[Column], rows: Sequence[Sequence[str]]):
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        return GAP.join(c.rjust(w) if col.right else c.ljust(w)
                        for col, c, w in zip(columns, cells, widths)).rstrip()
    return line


def table(columns: Sequence[Column], rows: Sequence[Sequence[str]], *, indent: Sequence[int] | None = None,
          total: Sequence[str] | None = None, closed: bool = False) -> list[str]:
    """The lines of a table: titles, rule, rows, then (with ``total``) a rule and the totals line.

    ``indent[k]`` nests row k that many levels: its first cell is indented. ``closed`` ends the
    rows with a rule even without a totals line (for a summary written under the table)."""
    if indent is not None:
        rows = [(INDENT * level + r[0], *r[1:]) for r, level in zip(rows, indent)]
    head = [c.title for c in columns]
    line = _aligner(columns, [head, *rows, *([total] if total is not None else [])])
    top = line(head)
    rule = RULE * len(top)
    out = [top, rule, *(line(r) for r in rows)]
    if total is not None:
        out += [rule, line(total)]
    elif closed:
        out.append(rule)
    return out


def stream_table(columns: Sequence[Column], make_rows, *, total: Sequence[str] | None = None):
    """:func:`table`'s lines one at a time, for a table too long to hold: ``make_rows()`` returns
    a new iterator of (cells, nesting level) each time it is called; the first pass measures the
    columns and the second writes the lines, so memory does not grow with the rows."""
    widths = [len(c.title) for c in columns]
    for cells, level in make_rows():
        for i, c in enumerate(cells):
            n = len(c) + (len(INDENT) * level if i == 0 else 0)
            if n > widths[i]:
                widths[i] = n
    if total is not None:
        widths = [max(w, len(c)) for w, c in zip(widths, total)]

    def line(cells: Sequence[str]) -> str:
        return GAP.join(c.rjust(w) if col.right else c.ljust(w)
                        for col, c, w in zip(columns, cells, widths)).rstrip()
    top = line([c.title for c in columns])
    rule = RULE * len(top)
    yield top
    yield rule
    for cells, level in make_rows():
        yield line((INDENT * level + cells[0], *cells[1:]))
    if total is not None:
        yield rule
        yield line(total)


def pairs(items: Sequence[tuple[str, str]]) -> list[str]:
    """'label  value' lines without titles, the values starting in one column."""
    columns = (left(""), left(""))
    line = _aligner(columns, items)
    return [line(item) for item in items]


def csv_line() -> Callable[[Sequence], str]:
    """A function that turns one row of cells into one CSV line, quoted as the csv module quotes
    (for reports written one line at a time)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")

    def line(cells) -> str:
        buf.seek(0)
        buf.truncate()
        writer.writerow(cells)
        return buf.getvalue()
    return line
