"""Reading a hardware YAML file (a bundled preset or the user's own) into :class:`Hardware`."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from ..errors import SpecError
from . import DTYPES, PRESETS, Hardware, Source, names

UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
BYTE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
              "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def _number(text, what: str) -> Fraction:
    try:
        return Fraction(str(text).replace("_", "").replace(",", ""))
    except (ValueError, ZeroDivisionError):
        raise SpecError(f"{what}: expected a number, got {text!r}") from None


def _quantity(value, units: dict, suffix: str, what: str) -> int:
    """'312 TFLOPS' / '1555 GB/s' / '40 GiB' / a plain number -> exact integer in base units."""
    if isinstance(value, bool):
        raise SpecError(f"{what}: expected a number with a unit, got {value!r}")
    if isinstance(value, (int, float)):
        amount = _number(repr(value), what)
        scale = 1
    else:
        parts = str(value).split()
        if len(parts) != 2:
            raise SpecError(f"{what}: expected a number and a unit such as '312 T{suffix}', got {value!r}")
        amount = _number(parts[0], what)
        unit = parts[1]
        if suffix and unit.endswith(suffix):
            unit = unit[: -len(suffix)]
        if unit not in units:
            raise SpecError(f"{what}: unknown unit {parts[1]!r}")
        scale = units[unit]
    exact = amount * scale
    if exact.denominator != 1 or exact < 0:
        raise SpecError(f"{what}: {value!r} is not a whole number of {suffix or 'bytes'}")
    return int(exact)


def load(name_or_path: str) -> Hardware:
    import yaml
    path = Path(name_or_path)
    if not name_or_path.endswith((".yaml", ".yml")):
        path = PRESETS / f"{name_or_path}.yaml"
        if not path.is_file():
            raise SpecError(f"unknown hardware {name_or_path!r}; presets: {', '.join(names())} "
                            "(or give a YAML file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SpecError(f"cannot read hardware file {str(path)!r}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise SpecError(f"hardware file {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise SpecError(f"hardware file {str(path)!r}: expected a mapping")
    where = str(path)

    def need(key):
        if key not in data:
            raise SpecError(f"{where}: missing {key!r}")
        return data[key]

    peak = {}
    for dtype, value in (need("peak") or {}).items():
        if dtype not in DTYPES:
            raise SpecError(f"{where}: peak.{dtype}: unknown dtype; one of {', '.join(DTYPES)}")
        peak[dtype] = _quantity(value, UNITS, "FLOPS" if not dtype.startswith("int") else "OPS", f"{where}: peak.{dtype}")
    sparse = {d: _quantity(v, UNITS, "FLOPS" if not d.startswith("int") else "OPS", f"{where}: sparse.{d}")
              for d, v in (data.get("sparse") or {}).items()}
    sources = tuple(Source(str(s.get("title", "")), str(s.get("url", "")), str(s.get("date", "")),
                           str(s.get("note", ""))) for s in data.get("sources") or ())
    efficiency = {k: _number(v, f"{where}: efficiency.{k}") for k, v in (data.get("efficiency") or {}).items()}
    return Hardware(name=str(data.get("name", path.stem)), title=str(need("title")), kind=str(data.get("kind", "gpu")),
                    memory_bytes=_quantity(need("memory"), BYTE_UNITS, "", f"{where}: memory"),
                    bandwidth=_quantity(need("bandwidth"), {k[:-1] if k.endswith("B") else k: v for k, v in BYTE_UNITS.items()} | UNITS, "B/s", f"{where}: bandwidth"),
                    peak=peak, sparse=sparse, efficiency=efficiency, sources=sources)
