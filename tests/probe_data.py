"""Single-layer probes of every counting tool, loaded from tests/data (see each file's
``provenance``):

* ``data/layer_probe.json`` — the figures, measured with PyTorch and the tools by
  ``data/generate_probe.py`` (one PyTorch layer per probe, batch 2);
* ``data/layer_probe_calc.json`` — calc's description of each probe, written by hand: the
  per-sample ``input``, ``batch``, the calc ``layers`` that describe the probed layer, and the
  presets calc ``skip``s or that ``refused`` the layer; ``not_covered`` lists the probes of layer
  kinds calc does not have, with the reason.

``PROBES[name]`` joins the two: calc's description plus ``output_shape`` and ``params`` (as
PyTorch gave them, with the batch dimension), ``expected`` (each preset's figure: ``torch`` in
FLOPs, 2 per MAC, all others in MACs; keys are the calc preset names) and ``ptflops_parts``
(ptflops' split: module_hooks_raw / batch_counter + sum(functional)).
"""
import json
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

# calc preset -> the probe file's field holding that tool's figure
PRESET_FIELD = {"thop": "thop", "ptflops": "ptflops_pytorch", "ptflops-aten": "ptflops_aten",
                "fvcore": "fvcore", "torch": "torch", "torchinfo": "torchinfo"}


def _load():
    measured = json.loads((DATA / "layer_probe.json").read_text(encoding="utf-8"))["probes"]
    calc = json.loads((DATA / "layer_probe_calc.json").read_text(encoding="utf-8"))
    described, not_covered = calc["probes"], calc["not_covered"]
    both = set(described) & set(not_covered)
    unknown = (set(described) | set(not_covered)) - set(measured)
    missing = set(measured) - set(described) - set(not_covered)
    if both or unknown or missing:
        raise ValueError(f"tests/data probe files disagree: described and not covered {sorted(both)}, "
                         f"not measured {sorted(unknown)}, neither described nor excluded {sorted(missing)}")
    probes = {}
    for name, case in described.items():
        figures = measured[name]
        probes[name] = {**case, "output_shape": figures["output_shape"], "params": figures["params"],
                        "expected": {preset: figures[field] for preset, field in PRESET_FIELD.items()},
                        "ptflops_parts": figures["ptflops_pytorch_parts"]}
    return probes, dict(not_covered)


PROBES, NOT_COVERED = _load()
