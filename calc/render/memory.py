"""`calc memory`: the memory breakdown per device as a table or JSON, the tools' conventions side
by side, and what fits. The command's glue (arguments -> library -> text) lives here too, so that
calc/cli.py only parses."""
from __future__ import annotations

import json
import re
from fractions import Fraction

from ..errors import CalcError, SpecError
from ..limits import MAX_BATCH

ANALYZE_WALK = 20_000     # layers (with repetitions) whose activations analyze's JSON walks
UNITS = "bytes, exact; MB = 10^6 B, GB = 10^9 B, MiB = 2^20 B, GiB = 2^30 B"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.I)
_FACTORS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
            "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(text: str) -> tuple[int, str]:
    """'80GB' -> (80·10⁹, '80GB'); '80GiB' -> 80·2³⁰; a plain number is bytes; anything else is a
    hardware preset's name (or YAML file), whose memory capacity is used."""
    m = _SIZE.match(text) if len(text) < 40 else None
    if m:
        value = Fraction(m.group(1)) * _FACTORS[(m.group(2) or "B").upper()]
        if value.denominator != 1 or value < 1:
            raise SpecError(f"--fits: {text} is not a positive whole number of bytes")
        return int(value), text.strip()
    from .. import hardware
    hw = hardware.get(text)
    return hw.memory_bytes, f"{hw.title} ({hw.memory_bytes:,} B)"


def _gib(n) -> str:
    return f"{float(n) / 2**30:,.2f} GiB"


def _mb(n) -> str:
    return f"{float(n) / 10**6:,.2f} MB"


def _exact(x):
    if isinstance(x, Fraction):
        return x.numerator if x.denominator == 1 else f"{x.numerator}/{x.denominator}"
    return x


def memory_dict(mem, fit=None, tools=None) -> dict:
    out = {"mode": mem.mode, "settings": mem.settings, "units": UNITS,
           "parts": [{"name": p.name, "bytes": p.bytes, "formula": p.formula, **({"note": p.note} if p.note else {})}
                     for p in mem.parts],
           "total_bytes": mem.total, "complete": mem.complete, "notes": list(mem.notes)}
    if fit is not None:
        out["fits"] = {"limit_bytes": fit.limit, "over": fit.over, "largest": fit.largest, "total_bytes": fit.total,
                       "evaluations": fit.evaluations, "stopped_by": fit.stopped_by or None}
    if tools is not None:
        out["conventions"] = [{"tool": f.tool, "label": f.label, "bytes": _exact(f.bytes), "shown": f.shown,
                               "formula": f.formula, "differs": f.differs, "calc_bytes": f.calc,
                               "calc_how": f.calc_how or None} for f in tools]
    return out


def format_table(mem, title: str, fit=None, fit_label: str = "", tools=None) -> str:
    rows = [(p.name, f"{p.bytes:,}" if p.bytes is not None else "—",
             _mb(p.bytes) if p.bytes is not None else "", _gib(p.bytes) if p.bytes is not None else "",
             p.formula + (f" ({p.note})" if p.note else "")) for p in mem.parts]
    label = "peak per device" if mem.mode == "training" else "total"
    rows.append((label, f"{mem.total:,}", _mb(mem.total), _gib(mem.total),
                 "peak at the end of the forward pass: the states above + the saved activations"
                 if mem.mode == "training" else "weights + KV cache + the activation peak"))
    widths = [max(len(r[i]) for r in rows + [("part", "bytes", "MB", "GiB", "")]) for i in range(4)]
    line = "─" * (sum(widths) + 8 + 40)
    out = [title, f"units: {UNITS}", "",
           f"{'part':<{widths[0]}}  {'bytes':>{widths[1]}}  {'MB':>{widths[2]}}  {'GiB':>{widths[3]}}  how", line]
    for i, r in enumerate(rows):
        if i == len(rows) - 1:
            out.append(line)
        out.append(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}")
    for n in mem.notes:
        out.append(f"note: {n}")
    if not mem.complete:
        out.append("note: the total leaves out the parts marked —")
    if fit is not None:
        out.append("")
        if fit.largest:
            out.append(f"fits in {fit_label}: {fit.over} up to {fit.largest:,} "
                       f"({fit.total:,} B = {_gib(fit.total)} per device; {fit.evaluations} exact totals evaluated)")
            if fit.stopped_by:
                out.append(f"  (the next {fit.over} is impossible rather than too large: {fit.stopped_by})")
        else:
            out.append(f"does not fit in {fit_label} even at {fit.over} 1")
    if tools:
        out.append("")
        out += format_tools(tools, mem).splitlines()
    return "\n".join(out) + "\n"


def format_tools(tools, mem=None) -> str:
    out = ["other tools' conventions (each reproduces what the tool computes; see docs/memory.md):"]
    wt = max(len(f.tool) for f in tools)
    wl = max(len(f.label) for f in tools)
    wb = max(len(f"{float(f.bytes):,.0f}") for f in tools)
    seen = set()
    for f in tools:
        exact = f"{float(f.bytes):,.0f}" if not isinstance(f.bytes, Fraction) or f.bytes.denominator == 1 \
            else f"{float(f.bytes):,.2f}"
        out.append(f"  {f.tool:<{wt}}  {f.label:<{wl}}  {exact:>{wb}} B  {f.shown:>12}  {f.formula}")
        if f.calc is not None:
            out.append(f"  {'':<{wt}}  {'calc: ' + f.calc_how}  {f.calc:,} B ({float(f.calc - f.bytes):+,.0f} B beside the tool)")
    for f in tools:
        if f.differs and f.tool not in seen:
            seen.add(f.tool)
            out.append(f"  why {f.tool} differs from calc: {f.differs}")
    return "\n".join(out) + "\n"


def run_memory(args) -> str:
    """The `calc memory` command: arguments -> library -> text."""
    from ..analysis import analyze
    from ..cli import load_model
    from ..inference import prefill_model
    from ..memory import tools as tool_mod
    from ..memory.training import fits, inference_memory, training_memory

    train = args.train
    if train and args.weights:
        raise SpecError("--weights applies to inference; calc does not model training with quantised weights")
    if not train:
        used = [f"--{k}" for k, v, d in (("zero", args.zero, 0), ("tp", args.tp, 1), ("accumulate", args.accumulate, 1),
                                         ("checkpointing", args.checkpointing, "none"),
                                         ("precision", args.precision, "fp32"), ("optimizer", args.optimizer, "adamw"))
                if v != d]
        if used:
            raise SpecError(f"{', '.join(used)} appl{'ies' if len(used) == 1 else 'y'} to training: add --train")
    model = load_model(args)

    def memory_at(batch: int, m=model):
        a = analyze(m, batch=batch, dtype=args.dtype)
        if train:
            return a, training_memory(a, optimizer=args.optimizer, precision=args.precision, master=args.master,
                                      accumulate=args.accumulate, checkpointing=args.checkpointing,
                                      attention=args.attention, zero=args.zero, devices=args.devices, tp=args.tp)
        return a, inference_memory(a, weights=args.weights, attention=args.attention)

    a, mem = memory_at(args.batch)
    fit = fit_label = None
    if args.fits:
        limit, fit_label = parse_size(args.fits)
        if args.over == "context":
            if not model.input_shape or model.input_kind != "tokens":
                raise SpecError("--over context needs a sequence model (tokens in)")
            fit = fits(lambda n: memory_at(args.batch, prefill_model(model, n))[1].total, limit, over="context")
        else:
            fit = fits(lambda n: memory_at(n)[1].total, limit, over="batch", step=args.accumulate,
                       upper=min(MAX_BATCH, 2**40))
    names = tool_mod.TOOLS if args.compare else ([args.convention] if args.convention != "calc" else [])
    figs = []
    for name in names:
        try:
            figs += tool_mod.counterparts(a, tool_mod.figures(a, name, gpus=args.devices, zero=args.zero,
                                                              tp=args.tp, checkpointing=args.checkpointing,
                                                              optimizer=args.optimizer),
                                          devices=args.devices, zero=args.zero, tp=args.tp,
                                          checkpointing=args.checkpointing)
        except SpecError as err:
            if not args.compare:
                raise
            figs.append(tool_mod.ToolFigure(name, "not applicable", 0, "—", err.message))
    if args.format == "json":
        return json.dumps({"model": model.name, "input_shape": list(a.input_shape), "dtype": args.dtype,
                           "memory": memory_dict(mem, fit, figs if names else None)}, indent=2) + "\n"
    what = "training" if train else "inference"
    title = (f"{model.name} · memory per device, {what} · batch {args.batch:,}"
             + (f" · {args.optimizer} · {args.precision}" if train else f" · {args.dtype}")
             + (f" · ZeRO-{args.zero} over {args.devices // args.tp} data-parallel" if train and args.zero else "")
             + (f" · devices {args.devices}" if args.devices > 1 else "") + (f" · tp {args.tp}" if args.tp > 1 else ""))
    return format_table(mem, title, fit, fit_label or "", figs or None)


def analysis_memory(a) -> dict:
    """The ``memory`` section of ``analyze --format json``: inference at the analysis's dtype and
    one training step with AdamW in the same precision (fp32 unless the dtype is 16-bit). The
    activations are walked for models of at most ANALYZE_WALK layers, so that the report of a
    huge repeat stays fast (`calc memory` walks further)."""
    from ..memory.training import inference_memory, training_memory
    out = {}
    shared: dict = {}     # one activation walk serves both where the dtypes' sizes agree
    try:
        out["inference"] = memory_dict(inference_memory(a, walk_limit=ANALYZE_WALK, shared=shared))
        precision = a.dtype if a.dtype in ("fp32", "bf16", "fp16") else "fp32"
        out["training"] = memory_dict(training_memory(a, optimizer="adamw", precision=precision,
                                                      walk_limit=ANALYZE_WALK, shared=shared))
    except CalcError as err:
        out["error"] = err.message
    return out
