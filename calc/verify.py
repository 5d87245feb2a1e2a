"""``calc verify``: calc's numbers beside PyTorch's, from the oracle (:mod:`calc.oracle`).

:func:`verify` computes (it imports the oracle, hence PyTorch, only when called);
:func:`compare` pairs an analysis with a measurement; :func:`format_verification` renders. All
three are pure of I/O; the CLI prints.
"""
from __future__ import annotations

from dataclasses import dataclass

from .analysis import DTYPE_BYTES, Analysis, analyze
from .conventions import CONVENTIONS
from .errors import ConventionError, OracleError, format_path
from .graph import Model
from .render.table import left, right, table
from .shapes import fmt_shape

# The oracle allocates real tensors: refuse a run whose parameters plus activations (fp32,
# every layer output of the whole batch, an upper bound of the peak) exceed this.
from .limits import MAX_ORACLE_BYTES, MAX_TOOL_NESTING  # noqa: E402


@dataclass(frozen=True)
class Check:
    """One quantity compared. ``ok`` is None when the comparison was skipped (``note`` says why)."""

    what: str
    calc: object
    torch: object
    ok: bool | None
    note: str = ""


@dataclass(frozen=True)
class LeafCheck:
    """One leaf layer on both sides (None: that side has no such leaf at this position)."""

    name: str | None
    torch_name: str | None
    type: str
    calc_shape: tuple | None
    torch_shape: tuple | None
    calc_params: int | None
    torch_params: int | None
    calc_flops: int | None
    torch_flops: int | None

    @property
    def ok(self) -> bool:
        return (self.name == self.torch_name and self.calc_shape == self.torch_shape
                and self.calc_params == self.torch_params and self.calc_flops == self.torch_flops)


@dataclass(frozen=True)
class Verification:
    analysis: Analysis
    torch_version: str
    totals: tuple      # of Check
    leaves: tuple      # of LeafCheck
    presets: tuple     # of Check

    @property
    def ok(self) -> bool:
        return (all(c.ok is not False for c in (*self.totals, *self.presets))
                and all(leaf.ok for leaf in self.leaves))


def compare(analysis: Analysis, measured) -> tuple[tuple, tuple]:
    """(total checks, leaf checks) of calc's standard analysis against the oracle's measurement.
    Leaves are matched by their dotted names; one present on one side only is a disagreement."""
    t = analysis.totals
    totals = (
        Check("parameters", t.params, measured.params, t.params == measured.params),
        Check("trainable parameters", t.trainable_params, measured.trainable_params,
              t.trainable_params == measured.trainable_params),
        Check("buffers", t.buffers, measured.buffers, t.buffers == measured.buffers),
        Check("output shape", analysis.output_shape, measured.output_shape,
              tuple(analysis.output_shape) == tuple(measured.output_shape)),
        Check("FLOPs (standard vs FlopCounterMode)", t.flops, measured.flops, t.flops == measured.flops,
              "FlopCounterMode counts conv, linear and matmul only, 2 per MAC"),
    )
    # Both sides list leaves in execution order (calc depth-first, PyTorch as its hooks fire),
    # so they are paired by position and their dotted names must match too.
    rows = list(analysis.rows(leaves_only=True))
    leaves = []
    for i in range(max(len(rows), len(measured.leaves))):
        row = rows[i] if i < len(rows) else None
        m = measured.leaves[i] if i < len(measured.leaves) else None
        r = row.result if row is not None else None
        leaves.append(LeafCheck(
            row.name if row is not None else None, m.name if m is not None else None,
            r.kind if r is not None else m.type,
            tuple(r.output_shape) if r is not None else None, m.output_shape if m is not None else None,
            r.params if r is not None else None, m.params if m is not None else None,
            r.flops * analysis.batch if r is not None else None, m.flops if m is not None else None))
    return totals, tuple(leaves)


def verify(model: Model, batch: int = 1, *, presets: bool = True) -> Verification:
    """Analyse ``model`` with calc (standard convention), measure it with the PyTorch oracle,
    and, for each tool-compatible preset whose tool is installed, run the tool too."""
    analysis = analyze(model, batch=batch)
    t = analysis.totals
    need = (t.params + t.buffers) * DTYPE_BYTES["fp32"] + t.activation_bytes  # analysed in fp32
    if need > MAX_ORACLE_BYTES:
        raise OracleError(f"running this model in PyTorch needs up to {need:,} bytes; the oracle "
                          f"runs models up to {MAX_ORACLE_BYTES:,} bytes (use a smaller --batch or --input)")
    from . import oracle
    measured = oracle.measure(model, batch=batch)
    totals, leaves = compare(analysis, measured)
    checks = tuple(_preset_checks(model, batch, measured, oracle)) if presets else ()
    return Verification(analysis, measured.torch_version, totals, leaves, checks)


def _preset_checks(model, batch, measured, oracle):
    unlike = sorted({leaf.type for leaf in measured.leaves} & oracle.NOT_AS_TOOLS_SEE)
    # torchinfo's summary takes time exponential in the nesting of modules (it doubles with each
    # level: 14 s at 20 levels); the tools run only on models nested at most MAX_TOOL_NESTING deep.
    nesting = max((n.count(".") + 1 for n, _ in measured.module.named_modules() if n), default=0)
    for name, tool in oracle.TOOLS.items():
        if name not in CONVENTIONS:
            yield Check(f"preset {name}", None, None, None, "no such preset in this calc")
            continue
        b = 1 if tool.batch_one else batch
        try:
            calc_value = getattr(analyze(model, batch=b, convention=name).totals, tool.measure)
        except ConventionError as err:   # a type the tool's preset refuses (moe, mla): say which
            yield Check(f"preset {name}", None, None, None, _refusal(err))
            continue
        if unlike:
            yield Check(f"preset {name}", None, None, None,
                        f"the oracle's {' and '.join(unlike)} are written for exact counting, not as the "
                        "PyTorch modules the preset describes")
            continue
        if not oracle.tool_available(name):
            yield Check(f"preset {name}", None, None, None, f"{tool.package} is not installed")
            continue
        if name == "torchinfo" and nesting > MAX_TOOL_NESTING:
            yield Check(f"preset {name}", None, None, None,
                        f"not run: the module nests {nesting} levels deep; torchinfo runs on models "
                        f"nested at most {MAX_TOOL_NESTING} levels (its time doubles with each level)")
            continue
        try:
            tool_value = oracle.run_tool(name, measured.module, measured.input_shape, batch,
                                         measured.input_shapes)
        except Exception as exc:  # a third-party tool failing is reported, not fatal
            yield Check(f"preset {name}", calc_value, None, False, f"{tool.package} failed: {exc}")
            continue
        note = f"{tool.measure}" + (", batch 1 (the tool counts one sample)" if tool.batch_one and batch > 1 else "")
        if calc_value != tool_value:
            from .hint_search import missing_hints
            likely = missing_hints(model, name, b, tool.measure, tool_value)
            if likely:
                note += "; the tool's figure is calc's with " + " or with ".join(likely) + ": a missing hint?"
        yield Check(f"preset {name}", calc_value, tool_value, calc_value == tool_value, note)


def _refusal(err: ConventionError) -> str:
    """The preset's refusal, without the spec location (the row is the preset's)."""
    return f"{err.message} ({format_path(err.path)})" if err.path else err.message


# ---------------------------------------------------------------------------- rendering

def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return fmt_shape(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _mark(ok) -> str:
    return {True: "ok", False: "DIFFERS", None: "skipped"}[ok]


def format_verification(v: Verification) -> str:
    a = v.analysis
    lines = [f"{a.model.name} · input {fmt_shape(a.input_shape)} · batch {a.batch} · "
             f"calc (standard) beside PyTorch {v.torch_version}", ""]
    rows = []
    for leaf in v.leaves:
        name = leaf.name if leaf.name == leaf.torch_name else f"{leaf.name or '-'} / {leaf.torch_name or '-'}"
        rows.append((name, leaf.type.removeprefix("block:"), _fmt(leaf.calc_shape), _fmt(leaf.torch_shape),
                     _fmt(leaf.calc_params), _fmt(leaf.torch_params), _fmt(leaf.calc_flops),
                     _fmt(leaf.torch_flops), "" if leaf.ok else "DIFFERS"))
    lines += table((left("layer"), left("type"), left("calc shape"), left("torch shape"), right("calc params"),
                    right("torch params"), right("calc FLOPs"), right("torch FLOPs"), left("")), rows)
    lines.append("")
    rows = [(c.what, _fmt(c.calc), _fmt(c.torch), _mark(c.ok), c.note) for c in (*v.totals, *v.presets)]
    lines += table((left("quantity"), right("calc"), right("PyTorch / tool"), left(""), left("note")), rows)
    lines.append("")
    bad = sum(not leaf.ok for leaf in v.leaves)
    bad_totals = [c.what for c in (*v.totals, *v.presets) if c.ok is False]
    if v.ok:
        lines.append(f"agree: {len(v.leaves)} layers and every total")
    else:
        parts = ([f"{bad} of {len(v.leaves)} layers"] if bad else []) + bad_totals
        lines.append("DISAGREE: " + ", ".join(parts))
    return "\n".join(lines) + "\n"
