"""`calc analyze --phase …`: an inference phase as the usual report plus its per-token figures and
KV cache. Nothing here prints."""
from __future__ import annotations

import json
from fractions import Fraction

from ..errors import SpecError
from ..inference import KV_BYTES, generate, generation_dict, phase_dict, run_phase
from .numbers import human
from .report import FORMATS, to_dict
from .table import pairs


def _sizes(n: int) -> str:
    """Bytes with both units named: GB = 10⁹ bytes, GiB = 2³⁰ bytes."""
    return f"{n:,} B ({n / 10**9:.3f} GB, {n / 2**30:.3f} GiB)"


def _per(x: Fraction) -> str:
    return f"{x.numerator:,}" if x.denominator == 1 else f"{float(x):,.2f} (exactly {x.numerator}/{x.denominator})"


def phase_lines(p) -> list[tuple[str, str]]:
    macs, flops = p.per_token
    kv = p.kv
    where = {"prefill": f"prompt of {p.context:,} tokens per sequence",
             "decode": f"1 new token per sequence attending over {p.context:,} keys (the KV cache plus itself)"}
    n = p.analysis.totals.params
    lines = [("phase", f"{p.phase}: {where[p.phase]}; batch {p.analysis.batch}"),
             ("parameters", f"{n:,} ({n / 10**9:.2f} B, billions)"),
             ("MACs per token", f"{_per(macs)} ({human(int(macs))})"),
             ("FLOPs per token", f"{_per(flops)} ({human(int(flops))})")]
    own = [x for x in kv.layers if x.grows]
    cross = [x for x in kv.layers if not x.grows]
    if kv.layers:
        tokens = sorted({x.tokens for x in own or cross})
        held = f"{tokens[0]:,}" if len(tokens) == 1 else f"{tokens[0]:,} to {tokens[-1]:,} (per layer)"
        lines += [("KV cache", f"{sum(x.count for x in own or cross):,} attention layers, {held} tokens each per "
                               f"sequence, {kv.dtype} ({KV_BYTES[kv.dtype]} B per element)")]
        if own and cross:   # an encoder–decoder: the cross attentions cache the encoder's output once
            src = sorted({x.tokens for x in cross})
            lines.append(("cross-attention cache", f"{sum(x.count for x in cross):,} layers, "
                                                   f"{', '.join(f'{t:,}' for t in src)} source tokens each per "
                                                   "sequence (projected once, at the prefill)"))
        lines += [
                  ("KV bytes per token", f"{kv.bytes_per_token:,} B per sequence while no window is full"),
                  ("KV cache per sequence", _sizes(kv.bytes_per_sequence)),
                  ("KV cache for the batch", _sizes(kv.bytes))]
    else:
        lines.append(("KV cache", "none (no self-attention layer)"))
    return lines


def weight_lines(a, args) -> list[tuple[str, str]]:
    from ..quant import quantised_weights
    if not args.weights:
        if args.group_size or args.zero_point:
            raise SpecError("--group-size and --zero-point go with --weights FORMAT")
        return []
    q = quantised_weights(a, args.weights, args.group_size, args.scale_dtype, args.zero_point)
    how = f"{q.fmt}" + (f", groups of {q.group}" if q.group else (", one scale per row" if q.scales else ""))
    parts = [f"{q.matrices:,} matrix weights {q.matrix_bytes:,} B"]
    if q.scales:
        parts.append(f"{q.scales:,} scales ({q.scale_dtype}) {q.scale_bytes:,} B")
    if q.zeros:
        parts.append(f"{q.zeros:,} zero points {q.zero_bytes:,} B")
    parts.append(f"{q.other:,} other parameters and buffers in {a.dtype} {q.other_bytes:,} B")
    return [("weight memory", f"{_sizes(q.bytes)} with {how} matrices"), ("weight bytes", "; ".join(parts))]


def run_phase_command(args, model) -> str:
    phase, context = args.phase, args.context
    if phase is None and args.weights and not (context or args.new or args.kv_dtype):
        from ..analysis import analyze
        a = analyze(model, batch=args.batch, convention=args.convention, dtype=args.dtype)
        lines = weight_lines(a, args)
        if args.format == "json":
            out = to_dict(a, args.depth)
            out["weights"] = _weights_dict(a, args)
            return json.dumps(out, indent=2) + "\n"
        text = FORMATS[args.format](a, depth=args.depth)
        return text if args.format == "csv" else text + "\n" + "\n".join(pairs(lines)) + "\n"
    if phase is None:
        raise SpecError("--context, --new and --kv-dtype need --phase prefill, decode or generate")
    if context is None:
        raise SpecError(f"--phase {phase} needs --context N (the prompt length for prefill and generate, "
                        "the keys attended for decode)")
    if (args.new is not None) != (phase == "generate"):
        raise SpecError("--new N goes with --phase generate (and --phase generate needs it)")
    opts = dict(batch=args.batch, convention=args.convention, dtype=args.dtype, kv_dtype=args.kv_dtype)
    if phase == "generate":
        g = generate(model, context, args.new, **opts)
        p, extra = g.prefill, generation_dict(g)
        lines = [("generation", f"prompt {g.prompt:,} + {g.new:,} new tokens: the prefill, then {g.new - 1:,} "
                                f"decode steps at contexts {g.prompt + 1:,} … {g.prompt + g.new - 1:,}"),
                 ("prefill MACs", f"{extra['prefill_macs']:,} ({human(extra['prefill_macs'])})"),
                 ("decode MACs", f"{g.decode_macs:,} ({human(g.decode_macs)})"),
                 ("total MACs", f"{g.macs:,} ({human(g.macs)})"),
                 ("total FLOPs", f"{g.flops:,} ({human(g.flops)})"),
                 ("final KV cache", _sizes(extra["kv_cache_bytes"]))]
    else:
        p, extra, lines = run_phase(model, phase, context, **opts), None, []
    if args.format == "json":
        out = to_dict(p.analysis, args.depth)
        out["inference"] = phase_dict(p)
        if args.weights:
            out["weights"] = _weights_dict(p.analysis, args)
        if extra is not None:
            out["generation"] = extra
        return json.dumps(out, indent=2) + "\n"
    text = FORMATS[args.format](p.analysis, depth=args.depth)
    if args.format == "csv":
        return text
    section = phase_lines(p) + lines + weight_lines(p.analysis, args)
    if args.format == "markdown":
        return text + "\n" + "\n".join(f"- **{k}**: {v}" for k, v in section) + "\n"
    return text + "\n" + "\n".join(pairs(section)) + "\n"


def _weights_dict(a, args) -> dict:
    from ..quant import quantised_weights
    q = quantised_weights(a, args.weights, args.group_size, args.scale_dtype, args.zero_point)
    return {"format": q.fmt, "group_size": q.group, "scale_dtype": q.scale_dtype, "zero_point": q.zero_point,
            "matrix_weights": q.matrices, "matrix_bytes": q.matrix_bytes, "scales": q.scales,
            "scale_bytes": q.scale_bytes, "zero_points": q.zeros, "zero_point_bytes": q.zero_bytes,
            "other_elements": q.other, "other_dtype": a.dtype, "other_bytes": q.other_bytes, "bytes": q.bytes,
            "units": "bytes; GB = 10^9 bytes, GiB = 2^30 bytes"}
