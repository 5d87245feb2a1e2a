"""What `calc hardware` shows, computed (never printed here): each device as plain data, with
its peaks' formulas (units × clock × operations per cycle) checked against the stated figures.

A vendor rounds a peak to the digits it prints: '19.5 TFLOPS' stands for anything from 19.45 to
19.55 TFLOPS. Parts that give 19.49184 TFLOPS therefore reproduce it; the check allows exactly
half a unit in the last stated digit, no more.
"""
from __future__ import annotations

from fractions import Fraction

from . import Hardware, get, names
from .load import SCALE


def stated_value(text: str) -> tuple[Fraction, Fraction]:
    """'19.5 TFLOPS' -> (19.5e12, 0.05e12): the stated value and half a unit in its last digit."""
    number, unit = text.split()
    number = number.replace(",", "").replace("_", "")
    decimals = len(number.partition(".")[2])
    prefix = unit[0] if unit[0] in SCALE and unit[0] else ""
    scale = SCALE[prefix]
    return Fraction(number) * scale, Fraction(scale, 2 * 10 ** decimals)


def parts_check(hw: Hardware, dtype: str) -> dict | None:
    """How the parts of ``dtype``'s peak compare with the stated peak; None without parts."""
    part = hw.parts.get(dtype)
    if part is None:
        return None
    if dtype in hw.derived:
        return {"stated": None, "difference": 0, "within_rounding": True}
    value, half_unit = stated_value(hw.stated[f"peak.{dtype}"])
    difference = Fraction(part.peak) - value
    return {"stated": hw.stated[f"peak.{dtype}"], "difference": float(difference),
            "within_rounding": abs(difference) <= half_unit}


def _peak(hw: Hardware, section: str, dtype: str, value: int) -> dict:
    out = {"ops_per_s": value, "stated": hw.stated.get(f"{section}.{dtype}"),
           "sources": hw.cites.get(f"{section}.{dtype}", "").split(","),
           # operations per byte of memory traffic at which the roofline bends (compute = memory)
           "ridge_ops_per_byte": round(value / hw.bandwidth, 3)}
    if section == "peak":
        out["derived"] = dtype in hw.derived
        part = hw.parts.get(dtype)
        if part is not None:
            out["parts"] = {"units": part.units, "unit": part.unit, "clock_hz": part.clock,
                            "per_cycle": part.per_cycle, "product": part.peak, "note": part.note,
                            "sources": hw.cites.get(f"parts.{dtype}", "").split(","),
                            "check": parts_check(hw, dtype)}
    return out


def describe(hw: Hardware) -> dict:
    """One device as JSON-ready data (integers exact; ratios rounded to three decimals)."""
    return {
        "name": hw.name, "title": hw.title, "kind": hw.kind, "file": hw.path,
        "memory_bytes": hw.memory_bytes, "memory_stated": hw.stated.get("memory"),
        "memory_unit": hw.memory_unit, "memory_sources": hw.cites.get("memory", "").split(","),
        "bandwidth_bytes_per_s": hw.bandwidth, "bandwidth_stated": hw.stated.get("bandwidth"),
        "bandwidth_sources": hw.cites.get("bandwidth", "").split(","),
        "peak": {d: _peak(hw, "peak", d, v) for d, v in hw.peak.items()},
        "sparse": {d: _peak(hw, "sparse", d, v) for d, v in hw.sparse.items()},
        "efficiency": {k: float(v) for k, v in hw.efficiency.items()},
        "sources": [{"id": s.id, "title": s.title, "url": s.url, "date": s.date, "note": s.note}
                    for s in hw.sources],
        "notes": hw.notes,
    }


def catalog() -> list[dict]:
    """Every bundled preset, described."""
    return [describe(get(name)) for name in names()]
