"""Reading a hardware YAML file (a bundled preset or the user's own) into :class:`Hardware`.

The file is parsed by calc's own safe YAML reader (no tags, no object construction, bounded
size), which remembers the line of every key, so an error names the file, the line and the key
path (``peak.bf16``) in the user's words. Every quantity is exact: '19.5 TFLOPS' is
19,500,000,000,000 operations per second, '1555 GB/s' is 1,555,000,000,000 bytes per second.
"""
from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

from ..errors import CalcError, SpecError, close_matches
from . import DTYPES, PRESETS, Hardware, Parts, Source, names

SCALE = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
BYTES = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
         "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
KINDS = ("gpu", "cpu", "soc", "tpu", "npu", "other")
TOP = ("name", "title", "kind", "memory", "bandwidth", "peak", "sparse", "parts",
       "efficiency", "sources", "notes")
_NUMBER = re.compile(r"[0-9][0-9_,]*(\.[0-9]+)?\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}(-[0-9]{2})?\Z")


class _File:
    """One hardware file being read: where errors point."""

    def __init__(self, name: str, source):
        self.name = name
        self.source = source

    def fail(self, path: tuple, message: str):
        raise SpecError(message, file=self.name, line=self.source.line_of(path), path=path)

    def mapping(self, value, path, keys=None) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {_shown(value)}")
        if keys is not None:
            for key in value:
                if key not in keys:
                    self.fail(path + (key,), f"unknown key {key!r}; expected one of {', '.join(keys)}")
        return value

    def text(self, value, path, *, required=True) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(path, f"expected a non-empty text, got {_shown(value)}")
        return value.strip()

    def whole(self, value, path, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.fail(path, f"expected a positive whole number of {what}, got {_shown(value)}")
        return value

    def quantity(self, value, path, units: dict, suffixes: tuple, example: str) -> tuple[int, str, str]:
        """'312 TFLOPS' -> (312 * 10**12, '312 TFLOPS', 'T'): exact integer, the text, the unit."""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(path, f"expected a number and a unit such as '{example}', got {_shown(value)}")
        text = value if isinstance(value, str) else repr(value)
        words = text.split()
        if len(words) == 1 and _NUMBER.match(text):      # a plain number: base units (ops/s, bytes, bytes/s)
            words = [text, suffixes[0]]
            text = " ".join(words)
        if len(words) != 2:
            self.fail(path, f"expected a number and a unit such as '{example}', got {text!r}")
        number, unit = words
        if not _NUMBER.match(number):
            self.fail(path, f"{number!r} is not a number (write it like '{example}')")
        prefix = None
        for suffix in suffixes:
            if unit.endswith(suffix) and unit[: len(unit) - len(suffix)] in units:
                prefix = unit[: len(unit) - len(suffix)]
                break
        if prefix is None:
            known = ", ".join(p + suffixes[0] for p in units)
            self.fail(path, f"unknown unit {unit!r} in {text!r}; expected one of {known}")
        exact = Fraction(number.replace("_", "").replace(",", "")) * units[prefix]
        if exact.denominator != 1 or exact <= 0:
            self.fail(path, f"{text!r} is not a positive whole number of {suffixes[0].lstrip('/') or 'units'}")
        return int(exact), text, prefix


def _shown(value) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    if value is None:
        return "nothing"
    return repr(value)


def _path_for(name_or_path: str) -> Path:
    if not isinstance(name_or_path, str):
        from ..errors import ArgumentTypeError
        raise ArgumentTypeError(f"a hardware name or path must be a str, got {type(name_or_path).__name__}")
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path or "\\" in name_or_path:
        return Path(name_or_path)
    path = PRESETS / f"{name_or_path.lower()}.yaml"
    if not path.is_file():
        close = close_matches(name_or_path.lower(), names(), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"unknown hardware {name_or_path!r}{hint}; presets: {', '.join(names())}, "
                        "or give a YAML file (see docs/hardware.md)")
    return path


def load(name_or_path: str) -> Hardware:
    """A bundled preset by name, or a user's YAML file by path, checked and exact."""
    path = _path_for(name_or_path)
    shown = str(path) if path.parent != PRESETS else f"preset {path.stem!r} ({path.name})"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError(f"cannot read hardware file {str(path)!r}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise SpecError(f"hardware file {str(path)!r} is not UTF-8 text") from None
    return _parse(text, str(path), path.stem, shown, path.parent == PRESETS)


def from_text(text: str, name: str = "<hardware>") -> Hardware:
    """A hardware description from YAML text (for tests and the library)."""
    return _parse(text, name, Path(name).stem, name)


def _parse(text: str, name: str, stem: str, shown: str, preset: bool = False) -> Hardware:
    from ..spec.loader import parse_yaml
    try:
        data, source = parse_yaml(text, name)
    except CalcError as err:
        if "timestamp" in err.message:     # an unquoted 2024-03-18: YAML would make it a date
            err.message = 'a date must be quoted, e.g. date: "2024-03-18" (or written 2024-03)'
            err.args = (err.message,)
        elif err.message.startswith("empty document"):
            err.message = "empty hardware file: expected a mapping with title, memory, bandwidth and peak"
            err.args = (err.message,)
        raise
    return _read(data, _File(name, source), stem, shown, preset)


def _read(data, f: _File, stem: str, shown: str, preset: bool = False) -> Hardware:
    if data is None:
        f.fail((), "empty hardware file: expected a mapping with title, memory, bandwidth and peak")
    f.mapping(data, (), TOP)
    for key in ("title", "memory", "bandwidth") + (("sources",) if preset else ()):
        if key not in data:
            f.fail((), f"missing {key!r} (a hardware file needs title, memory, bandwidth and peak"
                   + (", and a preset its sources)" if preset else ")"))
    # A preset must cite where every figure comes from; a user's own file may (sources: [...]).
    sources = _sources(data["sources"], f) if "sources" in data or preset else ()
    ids = {s.id for s in sources}
    default = sources[0].id if sources else ""
    cites: dict[str, str] = {}
    stated: dict[str, str] = {}

    def cited(raw, path) -> str:
        """A source id, or a list of them (a figure built from several sources): 'a,b'."""
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            f.fail(path, "expected a source id or a list of them")
        out = []
        for i, item in enumerate(items):
            where = path + ((i,) if isinstance(raw, list) else ())
            ident = f.text(item, where)
            if ident not in ids or not sources:
                f.fail(where, f"no source with id {ident!r}; ids: "
                       + ", ".join(repr(i) for i in sorted(ids) if i))
            out.append(ident)
        return ",".join(out)

    def figure(value, path):
        """A figure is a value ('312 TFLOPS') citing the first source, or a mapping
        {value, source, note} citing another."""
        cite = default
        if isinstance(value, dict):
            f.mapping(value, path, ("value", "source", "note"))
            if "value" not in value:
                f.fail(path, "missing 'value'")
            if "source" in value:
                cite = cited(value["source"], path + ("source",))
            value = value["value"]
            path = path + ("value",)
        return value, path, cite

    name = f.text(data.get("name", stem), ("name",))
    title = f.text(data["title"], ("title",))
    kind = f.text(data.get("kind", "gpu"), ("kind",))
    if kind not in KINDS:
        f.fail(("kind",), f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")

    value, path, cites["memory"] = figure(data["memory"], ("memory",))
    memory, stated["memory"], prefix = f.quantity(value, path, {k[:-1]: v for k, v in BYTES.items()},
                                                  ("B",), "40 GB")
    memory_unit = prefix + "B"
    value, path, cites["bandwidth"] = figure(data["bandwidth"], ("bandwidth",))
    bandwidth, stated["bandwidth"], _ = f.quantity(value, path, {k[:-1]: v for k, v in BYTES.items()},
                                                   ("B/s",), "1555 GB/s")

    parts: dict[str, Parts] = {}
    for dtype, spec in f.mapping(data.get("parts") or {}, ("parts",)).items():
        p = ("parts", dtype)
        _dtype(f, dtype, p)
        f.mapping(spec, p, ("units", "unit", "clock", "per_cycle", "source", "note"))
        for key in ("units", "clock", "per_cycle"):
            if key not in spec:
                f.fail(p, f"missing {key!r} (a peak's parts are units × clock × per_cycle)")
        cite = cited(spec["source"], p + ("source",)) if "source" in spec else default
        clock, _, _ = f.quantity(spec["clock"], p + ("clock",), SCALE, ("Hz",), "1410 MHz")
        parts[dtype] = Parts(f.whole(spec["units"], p + ("units",), "units"), clock,
                             f.whole(spec["per_cycle"], p + ("per_cycle",), "operations per cycle"),
                             f.text(spec.get("unit", ""), p + ("unit",), required=False),
                             f.text(spec.get("note", ""), p + ("note",), required=False), cite)
        cites[f"parts.{dtype}"] = cite

    def peaks(section) -> dict[str, int]:
        out = {}
        for dtype, raw in f.mapping(data.get(section) or {}, (section,)).items():
            p = (section, dtype)
            _dtype(f, dtype, p)
            value, vp, cites[f"{section}.{dtype}"] = figure(raw, p)
            out[dtype], stated[f"{section}.{dtype}"], _ = f.quantity(
                value, vp, SCALE, ("FLOPS", "OPS"), "312 TFLOPS")
        return out

    peak = peaks("peak")
    sparse = peaks("sparse")
    derived = set()
    for dtype, part in parts.items():
        if dtype not in peak:       # the vendor states only the parts: the peak is their product
            peak[dtype] = part.peak
            cites[f"peak.{dtype}"] = part.source
            derived.add(dtype)
    if not peak:
        f.fail(("peak",), "no peaks: give at least one dtype's peak under 'peak:' (e.g. fp32: 19.5 TFLOPS) "
               "or its parts under 'parts:'")

    efficiency = {}
    for key, raw in f.mapping(data.get("efficiency") or {}, ("efficiency",), ("compute", "memory")).items():
        p = ("efficiency", key)
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            f.fail(p, f"expected a fraction of peak between 0 and 1, got {_shown(raw)}")
        try:
            frac = Fraction(str(raw))
        except (ValueError, ZeroDivisionError):
            f.fail(p, f"expected a fraction of peak between 0 and 1, got {raw!r}")
        if not 0 < frac <= 1:
            f.fail(p, f"an efficiency is a fraction of peak in (0, 1], got {raw!r}")
        efficiency[key] = frac

    return Hardware(name=name, title=title, kind=kind, memory_bytes=memory, bandwidth=bandwidth,
                    peak=peak, sparse=sparse, efficiency=efficiency, sources=sources, parts=parts,
                    cites=cites, stated=stated, derived=frozenset(derived), memory_unit=memory_unit,
                    notes=f.text(data.get("notes", ""), ("notes",), required=False), path=shown)


def _dtype(f: _File, dtype, path):
    if dtype not in DTYPES:
        f.fail(path, f"unknown dtype {dtype!r}; one of {', '.join(DTYPES)}")


def _sources(raw, f: _File) -> tuple:
    if not isinstance(raw, list) or not raw:
        f.fail(("sources",), "expected a list of sources (title, url, date), at least one")
    out, seen = [], set()
    for i, item in enumerate(raw):
        p = ("sources", i)
        f.mapping(item, p, ("id", "title", "url", "date", "note"))
        for key in ("title", "url", "date"):
            if key not in item:
                f.fail(p, f"missing {key!r}: every source needs a title, a url and a date")
        ident = f.text(item["id"], p + ("id",)) if "id" in item else ""
        if i > 0 and not ident:
            f.fail(p, "missing 'id': a source after the first needs an id for figures to cite it by")
        if ident in seen:
            f.fail(p + ("id",), f"two sources with id {ident!r}")
        seen.add(ident)
        url = f.text(item["url"], p + ("url",))
        if not url.startswith(("https://", "http://")):
            f.fail(p + ("url",), f"expected a web address (https://...), got {url!r}")
        date = item["date"]
        date = date.isoformat() if hasattr(date, "isoformat") else date
        date = f.text(str(date) if isinstance(date, int) else date, p + ("date",))
        if not _DATE.match(date):
            f.fail(p + ("date",), f"expected a date as YYYY-MM or YYYY-MM-DD, got {date!r}")
        out.append(Source(f.text(item["title"], p + ("title",)), url, date,
                          f.text(item.get("note", ""), p + ("note",), required=False), ident))
    # The first source is the default that every figure without a 'source:' cites.
    return tuple(out)


__all__ = ["load", "from_text", "CalcError"]
