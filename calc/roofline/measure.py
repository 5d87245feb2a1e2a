"""`calc verify --time`: the oracle module's forward timed with PyTorch on this machine, beside
calc's roofline estimate for a description of this machine. Computes; never prints. Imports
PyTorch only when called.

The description is the user's hardware YAML (``--hardware``), or one calc derives here:

* peak fp32 = threads × clock × FLOPs per cycle per core, where threads is PyTorch's
  ``get_num_threads()``, the clock the largest ``cpu MHz`` of /proc/cpuinfo (the current
  clock, not the turbo maximum), and the FLOPs per cycle follow from the vector instructions
  the CPU reports: AVX-512 with FMA 64 (two 16-lane FMA units, 2 FLOPs each), AVX2 with FMA 32
  (two 8-lane units), otherwise 8 (SSE: 4 lanes, a multiply and an add);
* bandwidth: measured, the best of several copies of a 256 MiB tensor with PyTorch (bytes read
  plus bytes written, over the time).

Both are stated in the output: the derived peak is the usual upper bound of a CPU, and the ratio
measured / estimated says how far the roofline (a lower bound) is from this machine's reality.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from fractions import Fraction

from ..errors import OracleError
from ..hardware import Hardware, Source

COPY_BYTES = 256 * 2**20


@dataclass(frozen=True)
class TimeCheck:
    hardware: Hardware
    derived: str | None      # how the description was derived (None: the user's file)
    batch: int
    estimate: Fraction       # seconds, calc's roofline
    measured: float          # seconds, the median of the timed runs
    runs: int
    warmup: int
    threads: int

    @property
    def ratio(self) -> float:
        """measured / estimated: how many times slower than the roofline this machine runs."""
        return self.measured / float(self.estimate) if self.estimate else float("inf")


def _cpu_facts() -> tuple[float, set]:
    mhz, flags = 0.0, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "cpu MHz":
                    mhz = max(mhz, float(value))
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return mhz, flags


def flops_per_cycle(flags: set) -> int:
    if "avx512f" in flags and "fma" in flags:
        return 64
    if "avx2" in flags and "fma" in flags:
        return 32
    return 8


def copy_bandwidth(torch, repeats: int = 5) -> int:
    """Bytes per second of the best of ``repeats`` copies of a COPY_BYTES tensor (read + write)."""
    src = torch.ones(COPY_BYTES // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    return int(2 * COPY_BYTES / best)


def this_machine(torch) -> tuple[Hardware, str]:
    """A description of this CPU (see the module docstring) and how it was derived."""
    threads = torch.get_num_threads()
    mhz, flags = _cpu_facts()
    if not mhz:
        raise OracleError("cannot read the CPU clock from /proc/cpuinfo; give --hardware FILE")
    per = flops_per_cycle(flags)
    clock = int(mhz * 10**6)
    peak = threads * clock * per
    bandwidth = copy_bandwidth(torch)
    how = (f"derived: peak fp32 = {threads} threads × {mhz:,.0f} MHz × {per} FLOPs/cycle "
           f"({'AVX-512 FMA' if per == 64 else 'AVX2 FMA' if per == 32 else 'SSE'}) = {peak / 1e9:,.1f} GFLOPS; "
           f"bandwidth measured by copying {COPY_BYTES // 2**20} MiB with PyTorch = {bandwidth / 1e9:,.1f} GB/s")
    hw = Hardware(name="this-cpu", title=f"this machine's CPU ({os.cpu_count()} cores seen)", kind="cpu",
                  memory_bytes=0, bandwidth=bandwidth, peak={"fp32": peak},
                  sources=(Source("derived by calc verify --time", "", time.strftime("%Y-%m-%d"), how),))
    return hw, how


def time_forward(model, batch: int = 1, hardware: Hardware | None = None, *, runs: int = 10,
                 warmup: int = 3) -> TimeCheck:
    """The median of ``runs`` timed forwards (after ``warmup``) of the oracle module on a batch
    of zeros, and calc's roofline estimate (fp32, the standard convention) on ``hardware``."""
    from ..analysis import analyze
    from . import roofline
    try:
        import torch
    except ImportError:
        raise OracleError("calc verify --time needs PyTorch: pip install 'calc[torch]'") from None
    from ..oracle import build_module
    from ..oracle.core import input_shapes, zeros_inputs
    derived = None
    if hardware is None:
        hardware, derived = this_machine(torch)
    estimate = roofline(analyze(model, batch=batch), hardware).time
    module = build_module(model)
    xs = zeros_inputs(module, input_shapes(model), batch)   # one tensor per input
    times = []
    with torch.no_grad():
        for i in range(warmup + runs):
            start = time.perf_counter()
            module(*xs)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return TimeCheck(hardware, derived, batch, estimate, statistics.median(times), runs, warmup,
                     torch.get_num_threads())


def format_time_check(c: TimeCheck) -> str:
    from ..render.time import seconds
    hw = c.hardware
    lines = [f"time on this machine (batch {c.batch}, fp32, {c.threads} PyTorch threads)",
             f"  hardware   {hw.name}: {hw.title}; peak fp32 {hw.peak_for('fp32') / 1e9:,.1f} GFLOPS, "
             f"bandwidth {hw.bandwidth / 1e9:,.1f} GB/s",
             *([f"  described  {c.derived}"] if c.derived else []),
             f"  calc       {seconds(c.estimate)} (roofline lower bound)",
             f"  PyTorch    {seconds(Fraction(c.measured))} (median of {c.runs} forwards after {c.warmup} warm-up)",
             f"  ratio      {c.ratio:,.2f} × (measured / estimated)"]
    return "\n".join(lines) + "\n"


def run_verify_time(args, model) -> str:
    from ..errors import SpecError
    if not args.time:
        raise SpecError("--hardware goes with --time")
    hw = None
    if args.hardware:
        from .. import hardware
        hw = hardware.get(args.hardware)
    return "\n" + format_time_check(time_forward(model, args.batch, hw))
