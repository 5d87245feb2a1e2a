"""`calc hardware` output: the presets as a table with their sources, one device in full with
its peaks' formulas, or either as JSON. Renders data from calc.hardware.info; never prints."""
from __future__ import annotations

import json

_PREFIX = ((10**15, "P"), (10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))


def _si(value: int, unit: str) -> str:
    """312000000000000, 'FLOPS' -> '312 TFLOPS' (up to four significant digits, trailing zeros cut)."""
    for factor, prefix in _PREFIX:
        if value >= factor:
            text = f"{value / factor:.4g}"
            return f"{text} {prefix}{unit}"
    return f"{value} {unit}"


def _ops_unit(dtype: str) -> str:
    return "OPS" if dtype.startswith("int") else "FLOPS"


def _main_peaks(device: dict) -> str:
    """The peaks people compare first: fp32, the 16-bit one, int8 (dense)."""
    peak = device["peak"]
    shown = []
    for dtype in ("fp64", "fp32", "bf16", "fp16", "fp8", "int8"):
        if dtype in peak and not (dtype == "fp16" and "bf16" in peak
                                  and peak["fp16"]["ops_per_s"] == peak["bf16"]["ops_per_s"]):
            shown.append(f"{dtype} {_si(peak[dtype]['ops_per_s'], '')}".rstrip())
    return ", ".join(shown)


def _memory(device: dict) -> str:
    n = device["memory_bytes"]
    if device["memory_unit"].endswith("iB"):
        for power, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB")):
            if n >= 2**power:
                return f"{n / 2**power:.4g} {unit}"
    return _si(n, "B")


def format_list(devices: list[dict]) -> str:
    """The presets, one a row, then where their figures come from."""
    rows = [("name", "title", "memory", "bandwidth", "dense peaks (ops/s)")]
    for d in devices:
        rows.append((d["name"], d["title"], _memory(d), _si(d["bandwidth_bytes_per_s"], "B/s"),
                     _main_peaks(d)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    out = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
    out.insert(1, "-" * len(out[0]))
    out += ["", "Sources (a figure cites the first unless its file says otherwise; "
            "`calc hardware NAME` shows which):"]
    for d in devices:
        first = d["sources"][0]
        more = f" (+{len(d['sources']) - 1} more)" if len(d["sources"]) > 1 else ""
        out.append(f"  {d['name']}: {first['title']}, {first['date']}{more}")
        out.append(f"      {first['url']}")
    out += ["", "Units: GB/s = 10⁹ bytes/s; memory in GiB (2³⁰ bytes) where the vendor's GB are "
            "binary. Peaks count a multiply-add as two operations; 2:4-sparse peaks are kept apart "
            "(calc hardware NAME). Your own device: calc hardware my.yaml (docs/hardware.md)."]
    return "\n".join(out) + "\n"


def _cite(ids: list[str], index: dict) -> str:
    if not all(i in index for i in ids):      # a user's file without sources
        return ""
    return "[" + ",".join(str(index[i]) for i in ids) + "]"


def format_device(d: dict) -> str:
    """One device in full: capacity, bandwidth, each peak with its formula and sources."""
    index = {s["id"]: n for n, s in enumerate(d["sources"], 1)}
    out = [f"{d['title']}  ({d['name']}, {d['kind']})", f"file: {d['file']}", ""]
    stated = lambda text: f"{text} = " if text else ""   # noqa: E731 (a record built in code states nothing)
    out.append(f"memory     {stated(d['memory_stated'])}{d['memory_bytes']:,} bytes  "
               f"{_cite(d['memory_sources'], index)}")
    out.append(f"bandwidth  {stated(d['bandwidth_stated'])}{d['bandwidth_bytes_per_s']:,} bytes/s  "
               f"{_cite(d['bandwidth_sources'], index)}")
    for section, label in (("peak", "dense peaks"), ("sparse", "2:4 structured-sparse peaks")):
        if not d[section]:
            continue
        out += ["", f"{label} (operations/s; ridge = where the roofline bends, operations per byte)"]
        for dtype, p in d[section].items():
            shown = p["stated"] or ("computed from its parts" if p.get("derived") else "")
            out.append(f"  {dtype:<5} {p['ops_per_s']:>26,}  {shown:<24} ridge {p['ridge_ops_per_byte']:>9,.3f}"
                       f"  {_cite(p['sources'], index)}")
            part = p.get("parts")
            if part:
                clock = _si(part["clock_hz"], "Hz")
                formula = (f"{part['units']:,} {part['unit'] or 'units'} × {clock} × {part['per_cycle']:,} "
                           f"per cycle = {part['product']:,}")
                check = part["check"]
                if check["stated"] is None:
                    verdict = "(the peak)"
                elif check["within_rounding"]:
                    verdict = f"(stated {check['stated']}: within its rounding)"
                else:
                    verdict = f"(stated {check['stated']}: DIFFERS by {_si(abs(int(check['difference'])), '')})"
                out.append(f"          = {formula} {verdict}  {_cite(part['sources'], index)}")
                if part["note"]:
                    out.append(f"            {part['note']}")
    if d["efficiency"]:
        out += ["", "efficiency: " + ", ".join(f"{k} {v:g}" for k, v in d["efficiency"].items())]
    if d["notes"]:
        out += ["", d["notes"]]
    out += ["", "sources" if d["sources"] else "sources: none given"]
    for n, s in enumerate(d["sources"], 1):
        out.append(f"  [{n}] {s['title']}, {s['date']}")
        out.append(f"      {s['url']}")
        if s["note"]:
            out.append(f"      {s['note']}")
    return "\n".join(out) + "\n"


def format_json(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def hardware_text(name: str | None, fmt: str = "table") -> str:
    """What `calc hardware [NAME|FILE] [--format json]` prints."""
    from ..hardware import get
    from ..hardware.info import catalog, describe
    if name is None:
        devices = catalog()
        return format_json({"hardware": devices}) if fmt == "json" else format_list(devices)
    device = describe(get(name))
    return format_json(device) if fmt == "json" else format_device(device)
