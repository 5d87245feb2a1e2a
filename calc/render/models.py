"""`calc models`: every bundled model and variant, calc's numbers beside torchvision's."""
from __future__ import annotations

import json

from .table import left, right, table


def _shape(shape) -> str:
    return "×".join(map(str, shape))


def format_models(rows, provenance: dict, missing=()) -> str:
    """A table, then the source of the published figures (``missing``: torchvision's models
    that no bundled spec reaches yet)."""
    columns = (left("name"), left("spec"), left("input"), right("params"), right("GMACs"),
               right("published params"), right("GFLOPS"), left(""))
    cells = []
    for r in rows:
        mark = {None: "", True: "✓", False: "≠"}[r.matches]
        cells.append((r.name, r.spec, _shape(r.input_shape), f"{r.params:,}", f"{r.macs / 1e9:.3f}",
                      "" if r.published_params is None else f"{r.published_params:,}",
                      "" if r.published_gflops is None else f"{r.published_gflops:.3f}", mark))
    matched = sum(1 for r in rows if r.matches)
    listed = sum(1 for r in rows if r.matches is not None)
    lines = table(columns, cells, closed=True)
    lines += [f"{len(rows)} models; {matched} of the {listed} that torchvision publishes figures for "
              "match them (✓: parameters equal, MACs / 1e9 equal to the 3 decimals published, at the "
              "published crop size)",
              f"published: {provenance['source']}; GFLOPS are torchvision's `_ops` (multiply-adds / 1e9); "
              "calc's MACs use the standard convention"]
    if missing:
        lines.append(f"not bundled yet ({len(missing)} of torchvision's): " + ", ".join(missing))
    return "\n".join(lines) + "\n"


def models_json(rows, provenance: dict, missing=()) -> str:
    out = {"provenance": provenance, "not_bundled": list(missing), "models": [
        {"name": r.name, "spec": r.spec, "variant": r.variant, "input_shape": list(r.input_shape),
         "params": r.params, "macs": r.macs,
         "published": None if r.published_params is None else
         {"num_params": r.published_params, "gflops": r.published_gflops, "crop_size": r.published_crop},
         "matches_published": r.matches} for r in rows]}
    return json.dumps(out, indent=2) + "\n"


FORMATS = {"table": format_models, "json": models_json}
