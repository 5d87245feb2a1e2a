"""The report's roofline plot and latency cards (`calc report SPEC --hardware NAME`): data only.

Everything comes from :func:`calc.roofline.roofline` (the same numbers as `calc time`): each leaf
layer's FLOPs, bytes moved, time and bound. The page draws, on log–log axes, arithmetic intensity
(FLOPs per byte) against attained performance (FLOPs / time), under the roof
min(peak × compute efficiency, intensity × bandwidth × memory efficiency). A layer that does no
FLOPs or moves no bytes has no place on log axes: it is listed as not drawn, with its share of
the time, never dropped silently. Nothing here computes a count of its own or prints.
"""
from __future__ import annotations

from fractions import Fraction

_SAFE = 2**53 - 1


def _n(value: int):
    return str(value) if abs(value) > _SAFE else value


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def roofline_extras(a, hardware: str, peak_dtype: str | None = None, attention: str = "eager",
                    efficiency: dict | None = None) -> dict:
    """``{"latency": cards, "roofline": plot data}`` for analysis ``a`` on ``hardware`` (a preset
    name or a YAML file), for :func:`calc.render.html.model_data`'s ``extras``."""
    from ..hardware import get
    from ..roofline import ASSUMPTIONS, Options, efficiency as eff, ridge, roofline
    from .time import seconds

    hw = get(hardware)
    options = Options(dtype=peak_dtype, attention=attention,
                      efficiency={k: Fraction(v) for k, v in (efficiency or {}).items()})
    rf = roofline(a, hw, options)
    e_compute, e_memory = eff(options, hw, "", "compute"), eff(options, hw, "", "memory")
    points, hidden, hidden_time = [], [], Fraction(0)
    for r in rf.rows:
        point = {"name": r.name, "type": r.type, "count": r.count, "flops": _n(r.flops),
                 "bytes": _n(r.bytes), "time_s": float(r.time), "bound": r.bound}
        if r.flops and r.bytes and r.time:
            point["intensity"] = float(Fraction(r.flops, r.bytes))
            point["performance"] = float(r.attained)            # attained FLOPs per second
            points.append(point)
        else:
            hidden.append(r.name)
            hidden_time += r.time
    total = rf.time
    unit = "OPS" if rf.dtype.startswith("int") else "FLOPS"
    roof_peak = rf.peak * e_compute
    roof_bw = hw.bandwidth * e_memory
    head = f"{hw.title}: {rf.dtype} peak {_si(rf.peak, unit)}, bandwidth {_si(hw.bandwidth, 'B/s')}"
    if e_compute != 1 or e_memory != 1:
        head += f" (at {float(e_compute):g} and {float(e_memory):g} of them)"
    plot = {
        "hardware": hw.name, "title": hw.title, "dtype": rf.dtype, "batch": rf.batch,
        "peak": _n(rf.peak), "bandwidth": _n(hw.bandwidth),
        "roof_peak": float(roof_peak), "roof_bandwidth": float(roof_bw),
        "ridge": float(ridge(hw, rf.dtype, options)),
        "caption": head, "assumptions": ASSUMPTIONS, "attention": rf.attention,
        "convention": a.convention,
        "points": points, "not_drawn": hidden,
        "not_drawn_share": float(hidden_time / total) if total else 0.0,
        "time_s": float(total), "flops": _n(rf.flops), "bytes": _n(rf.bytes),
    }
    compute_share = rf.share("compute")
    through = rf.throughput
    cards = [
        {"label": "latency", "value": seconds(total),
         "detail": f"one pass of batch {rf.batch} on {hw.name} ({rf.dtype}); a roofline lower bound"},
        {"label": "throughput", "value": "–" if through is None else f"{float(through):,.1f} samples/s",
         "detail": "batch / latency (FPS for images)"},
        {"label": "bound", "value": f"{float(compute_share):.0%} compute-bound",
         "detail": f"{float(rf.share('memory')):.0%} of the time memory-bound; ridge "
                   f"{float(plot['ridge']):,.1f} FLOPs per byte"},
        {"label": "arithmetic intensity",
         "value": "–" if rf.intensity is None else f"{float(rf.intensity):,.2f} FLOPs/B",
         "detail": f"{rf.flops:,} FLOPs over {rf.bytes:,} bytes moved"},
    ]
    return {"latency": cards, "roofline": plot}
