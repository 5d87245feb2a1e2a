"""Hardware descriptions for time estimates: peak operations per second per dtype, memory
bandwidth and capacity, each figure with its source. Computes; never prints.

Units are explicit and exact: bandwidth in bytes per second (a datasheet's GB/s is 10⁹ bytes/s),
memory capacity in bytes (GB = 10⁹, GiB = 2³⁰), peaks in operations per second, dense and 2:4
sparse kept apart. A FLOP is a floating-point operation (a multiply-accumulate is two), an OP on
integer dtypes likewise; the vendors' TFLOPS/TOPS figures count the same way.

Presets are YAML files in ``calc/hardware/presets``; a user's own hardware is a YAML file of the
same form (``--hardware path/to/device.yaml``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Mapping, NamedTuple

from ..errors import SpecError

PRESETS = Path(__file__).parent / "presets"
DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4")


@dataclass(frozen=True)
class Source:
    title: str
    url: str
    date: str                 # when the source was published or read, YYYY-MM(-DD)
    note: str = ""
    id: str = ""              # the key figures cite it by ('' for the file's first source)


class Parts(NamedTuple):
    """A peak as the vendor builds it: units × clock × operations per unit per cycle.
    A tuple ``(units, clock Hz, ops per unit per cycle)`` first, so the record's contract holds."""
    units: int
    clock: int                # Hz
    per_cycle: int            # operations (a multiply-accumulate is two) per unit per cycle
    unit: str = ""            # what a unit is, e.g. 'Tensor Cores', 'CUDA cores', 'cores'
    note: str = ""
    source: str = ""          # the id of the source of the parts

    @property
    def peak(self) -> int:
        return self.units * self.clock * self.per_cycle


@dataclass(frozen=True)
class Hardware:
    name: str                 # the preset's key, e.g. 'a100-40gb'
    title: str                # e.g. 'NVIDIA A100 40GB SXM4'
    kind: str                 # 'gpu', 'cpu', 'soc', 'tpu'
    memory_bytes: int         # device memory capacity, bytes
    bandwidth: int            # memory bandwidth, bytes per second
    peak: Mapping[str, int]   # dense peak operations per second, by dtype (only those the device has)
    sparse: Mapping[str, int] = field(default_factory=dict)   # 2:4 structured-sparsity peaks
    # Default efficiency factors (fractions of peak actually reached): 'compute', 'memory'.
    efficiency: Mapping[str, Fraction] = field(default_factory=dict)
    sources: tuple = ()       # of Source
    # How a peak follows from the parts, where the vendor gives them: dtype -> (units, clock Hz, ops per unit per cycle)
    parts: Mapping[str, tuple] = field(default_factory=dict)   # of Parts
    # Which source each figure comes from: 'memory', 'bandwidth', 'peak.bf16', 'sparse.int8',
    # 'parts.fp32' -> a Source.id. Every figure has one (the loader refuses a file where one lacks it).
    cites: Mapping[str, str] = field(default_factory=dict)
    # Each figure as the file states it ('312 TFLOPS'), so a check of the parts against the
    # peak can allow exactly the vendor's rounding (half a unit in the last digit stated).
    stated: Mapping[str, str] = field(default_factory=dict)
    # Peaks the vendor does not state, computed here from their parts (units × clock × per cycle).
    derived: frozenset = frozenset()
    memory_unit: str = "GB"   # how the vendor states the capacity: 'GB' (10⁹) or 'GiB' (2³⁰)
    notes: str = ""           # assumptions worth reading (clocks used, what a figure covers)
    path: str = ""            # the file it was read from

    def sources_of(self, figure: str) -> list:
        """The sources of one figure ('peak.bf16'): one, or several for a peak computed from
        parts found in different documents."""
        keys = self.cites.get(figure, "").split(",")
        return [src for key in keys for src in self.sources if src.id == key]

    def peak_for(self, dtype: str) -> int:
        """Dense peak for ``dtype``; an error naming the dtypes the device has when it lacks it."""
        try:
            return self.peak[dtype]
        except KeyError:
            raise SpecError(f"hardware {self.name!r} has no {dtype} peak; it gives "
                            + ", ".join(self.peak)) from None


def names() -> list[str]:
    """The bundled presets' names, sorted."""
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def get(name_or_path: str) -> Hardware:
    """A bundled preset by name, or a user's YAML file by path."""
    from .load import load
    return load(name_or_path)
