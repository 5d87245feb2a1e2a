"""`calc time`: the roofline estimate of a model on a piece of hardware, per layer and per batch
size, as a table or JSON. Nothing here prints."""
from __future__ import annotations

import json
from fractions import Fraction

from ..errors import SpecError
from .numbers import human
from .table import left, pairs, right, table


def add_arguments(p, phase_args) -> None:
    """The `calc time` arguments (``phase_args``: the LLM phase arguments shared with analyze)."""
    from ..choices import DTYPE_BYTES, ROOFLINE_ATTENTION as ATTENTION
    from ..hardware import DTYPES
    p.add_argument("spec", help="spec file (YAML), - for standard input, or a bundled model's name")
    p.add_argument("--hardware", required=True, metavar="NAME|FILE",
                   help="a preset (see `calc hardware`) or a hardware YAML file")
    p.add_argument("--batch", default="1", metavar="N,N,...", help="batch sizes (default 1)")
    p.add_argument("--input", help="per-sample input shape, e.g. 3x512x512 (overrides the spec)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a spec variable")
    p.add_argument("--convention", default="standard", help="counting convention for the FLOPs")
    p.add_argument("--dtype", default="fp32", choices=sorted(DTYPE_BYTES), help="parameter/activation dtype")
    p.add_argument("--peak-dtype", choices=DTYPES, help="the peak to use (default --dtype; e.g. tf32 for fp32 "
                   "models on tensor cores)")
    p.add_argument("--attention", default="eager", choices=ATTENTION, help="eager: the score and probability "
                   "matrices go through memory (default); fused (or sdpa): a FlashAttention-style kernel keeps them on chip")
    p.add_argument("--efficiency", action="append", default=[], metavar="KEY=FRACTION",
                   help="fraction of peak reached: compute=0.7, memory=0.8, or per layer type, linear.compute=0.9 "
                        "(repeatable; default the hardware's, else 1)")
    p.add_argument("--mode", default="calc", choices=("calc", "llm-viewer", "llm-analysis"), help="calc's rules "
                   "(default), or another tool's for a cross-check: LLM-Viewer's (decoders, --phase prefill or "
                   "decode), llm-analysis's (decoders, --phase generate); see docs/time.md")
    p.add_argument("--format", default="table", choices=("table", "json"), help="output format")
    phase_args(p)


def _batches(text: str, batch_type) -> list[int]:
    import argparse
    out = []
    for part in text.split(","):
        try:
            out.append(batch_type(part.strip()))
        except argparse.ArgumentTypeError as exc:
            raise SpecError(f"--batch: {exc}") from None
    return out


def parse_efficiency(pairs_: list[str]) -> dict:
    out = {}
    for pair in pairs_:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SpecError(f"--efficiency: expected KEY=FRACTION such as compute=0.7, got {pair!r}")
        try:
            out[key.strip()] = Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise SpecError(f"--efficiency {key.strip()}: expected a fraction such as 0.7 or 7/10, got {value!r}") \
                from None
    return out


def seconds(t: Fraction | None) -> str:
    """A duration with a readable unit."""
    if t is None:
        return "—"
    x = float(t)
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if x >= scale:
            return f"{x / scale:,.3f} {unit}"
    return "0" if x == 0 else f"{x / 1e-9:.3g} ns"


def _rate(x: Fraction | None, unit: str) -> str:
    return "—" if x is None else f"{float(x):,.1f} {unit}"


def _intensity(x: Fraction | None) -> str:
    return "—" if x is None else f"{float(x):,.2f}"


def _exact(x: Fraction | None):
    if x is None:
        return None
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def run_time(args, model, batch_type) -> str:
    from .. import hardware as hw_mod
    from ..roofline import Options, roofline
    from ..roofline.phases import time_generation, time_phase
    hw = hw_mod.get(args.hardware)
    batches = _batches(args.batch, batch_type)
    options = Options(dtype=args.peak_dtype, weights=args.weights, group_size=args.group_size,
                      scale_dtype=args.scale_dtype, zero_point=args.zero_point, kv_dtype=args.kv_dtype,
                      attention=args.attention, efficiency=parse_efficiency(args.efficiency))
    phase, context = args.phase, args.context
    if phase is None and (context or args.new):
        raise SpecError("--context and --new need --phase prefill, decode or generate")
    if phase is not None and context is None:
        raise SpecError(f"--phase {phase} needs --context N (the prompt length for prefill and generate, "
                        "the keys attended for decode)")
    if (args.new is not None) != (phase == "generate"):
        raise SpecError("--new N goes with --phase generate (and --phase generate needs it)")
    common = dict(convention=args.convention, dtype=args.dtype)
    results = []
    if args.mode == "llm-viewer":
        return _llm_viewer(args, model, hw, options, batches)
    if args.mode == "llm-analysis":
        return _llm_analysis(args, model, hw, options, batches)
    for b in batches:
        if phase is None:
            from ..analysis import analyze
            results.append(roofline(analyze(model, batch=b, **common), hw, options))
        elif phase == "generate":
            results.append(time_generation(model, context, args.new, hw, options, batch=b, **common))
        else:
            results.append(time_phase(model, phase, context, hw, options, batch=b, **common))
    if args.format == "json":
        return json.dumps(time_dict(model, hw, options, args, results), indent=2) + "\n"
    return format_time(model, hw, options, args, results)


def _llm_viewer(args, model, hw, options, batches) -> str:
    from ..inference import KV_BYTES, run_phase
    from ..roofline.llm_viewer import llm_viewer
    from ..roofline.phases import PhaseTime
    if args.phase not in ("prefill", "decode"):
        raise SpecError("--mode llm-viewer times --phase prefill or decode")
    if options.efficiency or options.weights or args.dtype not in ("fp16", "bf16") or options.attention != "eager":
        raise SpecError("--mode llm-viewer takes LLM-Viewer's own assumptions: 16-bit weights and activations "
                        "(--dtype fp16 or bf16), eager attention, efficiency 1, no --weights")
    kv_bits = 8 * KV_BYTES[options.kv_dtype] if options.kv_dtype else None
    results = []
    for b in batches:
        p = run_phase(model, args.phase, args.context, batch=b, dtype=args.dtype, kv_dtype=options.kv_dtype)
        rf = llm_viewer(model, args.phase, args.context, hw, batch=b, kv_bits=kv_bits)
        results.append(PhaseTime(args.phase, args.context, p.tokens, rf, p.kv))
    if args.format == "json":
        out = time_dict(model, hw, options, args, results)
        out["mode"] = "llm-viewer"
        return json.dumps(out, indent=2) + "\n"
    return format_time(model, hw, options, args, results).replace(
        "Estimate: ", "Mode llm-viewer: LLM-Viewer's rules (docs/time.md lists them). Estimate: ", 1)


def _llm_analysis(args, model, hw, options, batches) -> str:
    from ..roofline.llm_analysis import llm_analysis
    if args.phase != "generate":
        raise SpecError("--mode llm-analysis times --phase generate --context P --new N (its inference())")
    if options.efficiency or options.weights or args.dtype not in ("fp16", "bf16") or options.kv_dtype:
        raise SpecError("--mode llm-analysis takes its own assumptions: 16-bit weights, activations and KV cache "
                        "(--dtype fp16 or bf16), efficiency 1, no --weights")
    res = [(b, llm_analysis(model, hw, batch=b, seq_len=args.context, new_tokens=args.new, dtype=args.dtype))
           for b in batches]
    if args.format == "json":
        return json.dumps({"model": model.name, "mode": "llm-analysis", "hardware": hw.name,
                           "context": args.context, "new_tokens": args.new,
                           "batches": [{"batch": b, "prefill_s": float(x.prefill), "decode_per_token_s": float(x.decode),
                                        "kv_cache_s": float(x.kv_cache), "total_s": float(x.total)} for b, x in res]},
                          indent=2) + "\n"
    rows = [[f"{b:,}", seconds(x.prefill), seconds(x.decode), seconds(x.total)] for b, x in res]
    out = [f"{model.name} · prompt {args.context:,} + {args.new:,} new tokens · {hw.name} · mode llm-analysis", "",
           *table([right("batch"), right("prefill"), right("decode per token"), right("total")], rows), "",
           "Mode llm-analysis: llm-analysis's inference latency formulas (docs/time.md lists them), efficiency 1. "
           "Estimate: a roofline lower bound under its assumptions, not calc's."]
    return "\n".join(out) + "\n"


# -- text

def _roof(result):
    """The Roofline of a result (a pass, a phase, or a generation's prefill)."""
    from ..roofline.phases import GenerationTime, PhaseTime
    if isinstance(result, GenerationTime):
        return result.prefill.roofline
    return result.roofline if isinstance(result, PhaseTime) else result


def layer_table(rf) -> list[str]:
    columns = [left("name"), left("type"), right("FLOPs"), right("bytes"), right("FLOP/B"), left("bound"),
               right("time"), right("share")]
    total = rf.time
    rows = []
    for r in rf.rows:
        name = r.name + (f" (×{r.count})" if r.count > 1 else "")
        share = f"{float(r.time / total) * 100:.2f}%" if total else "—"
        rows.append([name, r.type, human(r.flops), human(r.bytes) + "B", _intensity(r.intensity), r.bound,
                     seconds(r.time), share])
        if len(r.parts) > 1:
            for p in r.parts:
                rows.append(["  " + p.name, "", human(p.flops), human(p.bytes) + "B",
                             _intensity(Fraction(p.flops, p.bytes) if p.bytes else None), p.bound, seconds(p.time), ""])
    return table(columns, rows, total=["total", "", human(rf.flops), human(rf.bytes) + "B", _intensity(rf.intensity),
                                      f"{float(rf.share('compute')) * 100:.0f}% compute", seconds(total), "100%"])


def _head(model, hw, options, args, rf) -> list[tuple[str, str]]:
    from ..roofline import ridge
    eff = ", ".join(f"{k}={float(v):g}" for k, v in {**hw.efficiency, **options.efficiency}.items()) or "1 (peak)"
    return [("hardware", f"{hw.name}: {hw.title}"),
            ("peak", f"{rf.dtype} {hw.peak_for(rf.dtype) / 10**12:,g} T operations/s (dense); bandwidth "
                     f"{hw.bandwidth / 10**9:,g} GB/s (10⁹ bytes/s)"),
            ("ridge", f"{float(ridge(hw, rf.dtype, options)):,.1f} FLOPs per byte: below it a kernel is memory-bound"),
            ("efficiency", eff),
            ("attention", options.attention + (" (scores and probabilities through memory)"
                                               if options.attention == "eager" else " (scores kept on chip)")),
            ("weights", (options.weights or args.dtype) + "; activations " + args.dtype + "; KV cache "
             + (options.kv_dtype or args.dtype))]


def format_time(model, hw, options, args, results) -> str:
    from ..roofline import ASSUMPTIONS
    from ..roofline.phases import GenerationTime, PhaseTime
    out = []
    first = _roof(results[0])
    what = {None: "one forward pass", "prefill": f"prefill of {args.context or 0:,} tokens",
            "decode": f"one decode step at context {args.context or 0:,}",
            "generate": f"prompt {args.context or 0:,} + {args.new or 0:,} new tokens"}[args.phase]
    out.append(f"{model.name} · {what} · {hw.name} · convention {args.convention} · {args.dtype}")
    out.append("")
    out += pairs(_head(model, hw, options, args, first))
    for res in results:
        rf = _roof(res)
        if isinstance(res, GenerationTime):
            continue      # per-layer tables: --phase prefill or decode
        out.append("")
        out.append(f"batch {rf.batch:,}")
        out += layer_table(rf)
    out.append("")
    out += totals_table(args, results)
    out += _fit_lines(hw, results)
    out.append("")
    out.append("Estimate: " + ASSUMPTIONS + ". Real runs are slower; see docs/time.md.")
    return "\n".join(out) + "\n"


def _needed(res) -> int:
    """Device memory the weights and (for the phases) the KV cache take, bytes."""
    from ..roofline.phases import GenerationTime, PhaseTime
    if isinstance(res, GenerationTime):
        return res.prefill.roofline.weight_memory + (res.last or res.prefill).kv.bytes
    if isinstance(res, PhaseTime):
        return res.roofline.weight_memory + res.kv.bytes
    return res.weight_memory


def _fit_lines(hw, results) -> list[str]:
    """A warning when the weights (and KV cache) exceed the device's memory; activations not counted."""
    if not hw.memory_bytes:
        return []
    over = [(_roof(r).batch, _needed(r)) for r in results if _needed(r) > hw.memory_bytes]
    if not over:
        return []
    from ..roofline.phases import GenerationTime, PhaseTime
    b, need = over[0]
    what = "weights and KV cache" if isinstance(results[0], (PhaseTime, GenerationTime)) else "weights"
    return ["", f"note: at batch {b:,} the {what} "
                f"take {need / 10**9:,.2f} GB, more than the {hw.memory_bytes / 10**9:,.0f} GB of {hw.name}: "
                "the model does not fit on one device as timed here"]


def totals_table(args, results) -> list[str]:
    from ..roofline.phases import GenerationTime, PhaseTime
    if isinstance(results[0], GenerationTime):
        columns = [right("batch"), right("TTFT"), right("per token"), right("total"), right("tokens/s"),
                   right("KV cache")]
        rows = [[f"{g.batch:,}", seconds(g.time_to_first_token), seconds(g.time_per_output_token), seconds(g.time),
                 _rate(g.tokens_per_second, "tok/s"), human((g.last or g.prefill).kv.bytes) + "B"] for g in results]
        return table(columns, rows)
    if isinstance(results[0], PhaseTime):
        label = "TTFT" if results[0].phase == "prefill" else "per token"
        columns = [right("batch"), right(label), right("tokens/s"), right("FLOPs"), right("bytes"), right("FLOP/B"),
                   right("compute-bound"), right("KV cache")]
        rows = [[f"{p.roofline.batch:,}", seconds(p.time), _rate(p.tokens_per_second, "tok/s"),
                 human(p.roofline.flops), human(p.roofline.bytes) + "B", _intensity(p.roofline.intensity),
                 f"{float(p.roofline.share('compute')) * 100:.0f}%", human(p.kv.bytes) + "B"] for p in results]
        return table(columns, rows)
    columns = [right("batch"), right("latency"), right("samples/s"), right("FLOPs"), right("bytes"), right("FLOP/B"),
               right("compute-bound")]
    rows = [[f"{rf.batch:,}", seconds(rf.time), _rate(rf.throughput, "/s"), human(rf.flops), human(rf.bytes) + "B",
             _intensity(rf.intensity), f"{float(rf.share('compute')) * 100:.0f}%"] for rf in results]
    return table(columns, rows)


# -- JSON

def _traffic(t) -> dict:
    from ..roofline.traffic import FIELDS
    return {**{f: getattr(t, f) for f in FIELDS}, "total": t.total}


def roofline_dict(rf) -> dict:
    return {
        "batch": rf.batch, "flops": rf.flops, "bytes": rf.bytes, "traffic": _traffic(rf.traffic),
        "weight_memory_bytes": rf.weight_memory,
        "time_s": float(rf.time), "time_exact_s": _exact(rf.time),
        "samples_per_s": None if rf.throughput is None else float(rf.throughput),
        "intensity": None if rf.intensity is None else float(rf.intensity),
        "compute_bound_share": float(rf.share("compute")),
        "layers": [{"name": r.name, "type": r.type, **({"count": r.count} if r.count > 1 else {}),
                    "flops": r.flops, "bytes": r.bytes, "traffic": _traffic(r.traffic),
                    "intensity": None if r.intensity is None else float(r.intensity), "bound": r.bound,
                    "time_s": float(r.time),
                    **({"kernels": [{"name": p.name, "flops": p.flops, "bytes": p.bytes, "bound": p.bound,
                                     "time_s": float(p.time)} for p in r.parts]} if len(r.parts) > 1 else {})}
                   for r in rf.rows],
    }


def time_dict(model, hw, options, args, results) -> dict:
    from ..roofline import ASSUMPTIONS
    from ..roofline.phases import GenerationTime, PhaseTime
    first = _roof(results[0])
    out = {"model": model.name, "convention": args.convention, "dtype": args.dtype,
           "hardware": {"name": hw.name, "title": hw.title, "bandwidth_bytes_per_s": hw.bandwidth,
                        "peak_dtype": first.dtype, "peak_ops_per_s": first.peak},
           "options": {"attention": options.attention, "weights": options.weights,
                       "kv_dtype": options.kv_dtype or args.dtype,
                       "efficiency": {k: float(v) for k, v in {**hw.efficiency, **options.efficiency}.items()}},
           "estimate": "roofline lower bound", "assumptions": ASSUMPTIONS,
           "phase": args.phase, "context": args.context, "new_tokens": args.new, "batches": []}
    for res in results:
        if isinstance(res, GenerationTime):
            rec = {"batch": res.batch, "time_to_first_token_s": float(res.time_to_first_token),
                   "decode_steps": res.new - 1, "decode_time_s": float(res.decode_time),
                   "time_per_output_token_s": None if res.time_per_output_token is None
                   else float(res.time_per_output_token),
                   "time_s": float(res.time), "time_exact_s": _exact(res.time),
                   "tokens_per_s": None if res.tokens_per_second is None else float(res.tokens_per_second),
                   "kv_cache_bytes": (res.last or res.prefill).kv.bytes}
        elif isinstance(res, PhaseTime):
            rec = roofline_dict(res.roofline)
            rec["tokens_per_s"] = None if res.tokens_per_second is None else float(res.tokens_per_second)
            rec["kv_cache_bytes"] = res.kv.bytes
        else:
            rec = roofline_dict(res)
        out["batches"].append(rec)
    return out
