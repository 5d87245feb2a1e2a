"""``calc verify --memory``: calc's saved-activation bytes beside PyTorch's.

The oracle (:func:`calc.oracle.memory.measure_saved`) runs one training forward pass of the
oracle's module on the CPU under ``torch.autograd.graph.saved_tensors_hooks`` and sums the
distinct storages autograd keeps; calc counts the same pass with ``device="cpu"`` (the CPU's
dropout keeps a mask of the input's dtype, CUDA's a bool mask). Pure of I/O; the CLI prints.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..analysis import DTYPE_BYTES, Analysis, analyze
from ..errors import OracleError
from ..graph import Model
from ..limits import MAX_ORACLE_BYTES
from ..render.table import left, right, table
from ..shapes import fmt_shape
from .activations import Peak, Saved, inference_peak, saved_activations


@dataclass(frozen=True)
class MemoryLeaf:
    name: str | None
    type: str
    calc: int | None       # bytes first kept at this layer
    torch: int | None

    @property
    def ok(self) -> bool:
        return self.calc == self.torch


@dataclass(frozen=True)
class MemoryVerification:
    analysis: Analysis
    saved: Saved
    torch_version: str
    torch_bytes: int
    leaves: tuple          # of MemoryLeaf, in execution order

    @property
    def ok(self) -> bool:
        return self.saved.bytes == self.torch_bytes and all(leaf.ok for leaf in self.leaves)


def verify_memory(model: Model, batch: int = 1, dtype: str = "fp32") -> MemoryVerification:
    analysis = analyze(model, batch=batch, dtype=dtype)
    saved = saved_activations(analysis, dtype=dtype, device="cpu")
    t = analysis.totals
    # parameters, and every layer output (kept or not) plus what the layers keep besides
    need = (t.params + t.buffers) * DTYPE_BYTES[dtype] + t.activation_bytes + saved.bytes
    if need > MAX_ORACLE_BYTES:
        raise OracleError(f"running this model in PyTorch needs up to {need:,} bytes; the oracle "
                          f"runs models up to {MAX_ORACLE_BYTES:,} bytes (use a smaller --batch, "
                          "--input or --set)")
    from ..oracle.memory import measure_saved
    measured = measure_saved(model, batch=batch, dtype=dtype)
    rows = [r for r in saved.rows if r.kind not in ("checkpoint input", "checkpoint recompute")]
    leaves = []
    for i in range(max(len(rows), len(measured.leaves))):
        c = rows[i] if i < len(rows) else None
        m = measured.leaves[i] if i < len(measured.leaves) else None
        if c is not None and m is not None and c.name != m[0]:
            leaves.append(MemoryLeaf(f"{c.name} / {m[0]}", c.kind, c.bytes, m[2]))
            continue
        leaves.append(MemoryLeaf(c.name if c else m[0], c.kind if c else m[1],
                                 c.bytes if c else None, m[2] if m else None))
    return MemoryVerification(analysis, saved, measured.torch_version, measured.bytes, tuple(leaves))


def _fmt(v) -> str:
    return "-" if v is None else f"{v:,}"


def format_memory_verification(v: MemoryVerification) -> str:
    a = v.analysis
    lines = [f"{a.model.name} · input {fmt_shape(a.input_shape)} · batch {a.batch} · {v.saved.dtype} · "
             f"activations saved for backward (bytes), calc beside PyTorch {v.torch_version}", "",
             "Each tensor autograd keeps is counted once, at the first layer that keeps it; parameters "
             "and buffers are not activations.", ""]
    rows = [(leaf.name or "-", leaf.type, _fmt(leaf.calc), _fmt(leaf.torch), "" if leaf.ok else "DIFFERS")
            for leaf in v.leaves]
    lines += table((left("layer"), left("type"), right("calc"), right("PyTorch"), left("")), rows)
    lines.append("")
    same = v.saved.bytes == v.torch_bytes
    lines += table((left("quantity"), right("calc"), right("PyTorch"), left("")),
                   [("saved activations (bytes)", _fmt(v.saved.bytes), _fmt(v.torch_bytes),
                     "ok" if same else "DIFFERS")])
    lines.append("")
    bad = sum(not leaf.ok for leaf in v.leaves)
    lines.append(f"agree: {len(v.leaves)} layers and the total" if v.ok else
                 "DISAGREE: " + ", ".join(([f"{bad} of {len(v.leaves)} layers"] if bad else [])
                                          + ([] if same else ["the total"])))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class PeakVerification:
    analysis: Analysis
    peak: Peak
    torch_version: str
    torch_bytes: int       # the oracle's peak, each tensor freed after its last use
    torch_where: str
    as_run: int            # the oracle's peak as its Python code holds the tensors
    leaves: tuple          # of MemoryLeaf: bytes live while each layer runs

    @property
    def ok(self) -> bool:
        return self.peak.bytes == self.torch_bytes and all(leaf.ok for leaf in self.leaves)


def verify_peak(model: Model, batch: int = 1, dtype: str = "fp32") -> PeakVerification:
    """calc's inference peak (eager attention, statistics as on the CPU) beside the oracle's, per
    layer and at the peak (:func:`calc.oracle.peak.measure_peak`)."""
    analysis = analyze(model, batch=batch, dtype=dtype)
    peak = inference_peak(analysis, dtype=dtype, attention="eager", device="cpu")
    t = analysis.totals
    need = (t.params + t.buffers) * DTYPE_BYTES[dtype] + t.activation_bytes + peak.bytes
    if need > MAX_ORACLE_BYTES:
        raise OracleError(f"running this model in PyTorch needs up to {need:,} bytes; the oracle "
                          f"runs models up to {MAX_ORACLE_BYTES:,} bytes (use a smaller --batch, "
                          "--input or --set)")
    from ..oracle.peak import measure_peak
    m = measure_peak(model, batch=batch, dtype=dtype)
    leaves = _pair([(r.name, r.kind, r.bytes) for r in peak.rows], m.leaves)
    return PeakVerification(analysis, peak, m.torch_version, m.bytes, m.where, m.as_run, leaves)


def _pair(ours: list, theirs) -> tuple:
    leaves = []
    for i in range(max(len(ours), len(theirs))):
        c = ours[i] if i < len(ours) else None
        m = theirs[i] if i < len(theirs) else None
        if c is not None and m is not None and c[0] != m[0]:
            leaves.append(MemoryLeaf(f"{c[0]} / {m[0]}", c[1], c[2], m[2]))
            continue
        leaves.append(MemoryLeaf(c[0] if c else m[0], c[1] if c else m[1], c[2] if c else None,
                                 m[2] if m else None))
    return tuple(leaves)


def format_peak_verification(v: PeakVerification) -> str:
    a = v.analysis
    lines = [f"{a.model.name} · input {fmt_shape(a.input_shape)} · batch {a.batch} · {v.peak.dtype} · "
             f"inference peak of live activations (bytes), calc beside PyTorch {v.torch_version}", "",
             "Bytes alive while each layer runs, each tensor freed after its last use (the input from "
             "the start, the output to the end); parameters and buffers are not activations.", ""]
    rows = [(leaf.name or "-", leaf.type, _fmt(leaf.calc), _fmt(leaf.torch), "" if leaf.ok else "DIFFERS")
            for leaf in v.leaves]
    lines += table((left("layer"), left("type"), right("calc"), right("PyTorch"), left("")), rows)
    lines.append("")
    same = v.peak.bytes == v.torch_bytes
    lines += table((left("quantity"), right("calc"), right("PyTorch"), left(""), left("note")),
                   [("inference peak (bytes)", _fmt(v.peak.bytes), _fmt(v.torch_bytes), "ok" if same else "DIFFERS",
                     f"at {v.peak.where}" + ("" if v.peak.where == v.torch_where else f" / {v.torch_where}")),
                    ("as the module holds them", "-", _fmt(v.as_run), "", "not compared: Python frames hold "
                     "each module call's input until it returns, and the caller the input throughout")])
    lines.append("")
    bad = sum(not leaf.ok for leaf in v.leaves)
    lines.append(f"agree: {len(v.leaves)} layers and the peak" if v.ok else
                 "DISAGREE: " + ", ".join(([f"{bad} of {len(v.leaves)} layers"] if bad else [])
                                          + ([] if same else ["the peak"])))
    return "\n".join(lines) + "\n"


def run_verify_memory(args, model: Model, out) -> int:
    """The CLI's ``verify --memory`` (with ``--inference``: the inference peak): print, and exit
    1 on any disagreement."""
    if not args.memory:
        from ..errors import SpecError
        raise SpecError("--inference compares the inference peak of memory: give it with --memory")
    if getattr(args, "inference", False):
        peak = verify_peak(model, batch=args.batch, dtype=args.dtype)
        out(format_peak_verification(peak))
        return 0 if peak.ok else 1
    result = verify_memory(model, batch=args.batch, dtype=args.dtype)
    out(format_memory_verification(result))
    return 0 if result.ok else 1
