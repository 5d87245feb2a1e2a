"""Reference figures for torchvision models, loaded from tests/data (see each file's ``provenance``):

* ``REFERENCE`` — ``data/torchvision_reference.json``: torchvision models measured by PyTorch and
  every counting tool (made by ``data/generate_reference.py``; torch 2.13.0+cpu, torchvision 0.28.0,
  thop 0.1.1-2209072238, ptflops 0.7.5, fvcore 0.1.5.post20221221, torchinfo 1.8.0; weights=None,
  eval mode). Units: torch_flops = FlopCounterMode FLOPs (2 per MAC, grad on); fvcore_flops = 1 per
  MAC; thop_macs, ptflops_*_macs, torchinfo_mult_adds = MACs as each tool counts them (see
  docs/conventions.md §3.1).
  input_shape and output_shape include the batch dimension. Keys like "alexnet@1x3x512x512" are
  extra cases of the same model at another input or batch. ``leaves`` holds one row per leaf
  module, its columns named by ``leaf_columns``.
* ``PUBLISHED`` — ``data/torchvision_published.json``: the figures torchvision 0.28.0 publishes in
  its weights metadata (``num_params``, ``_ops`` = GFLOPS, in fact MACs / 1e9 rounded to 3
  decimals, at the weights' ``crop_size``), per model builder and weights (made by
  ``data/extract_published.py`` from torchvision's source).
"""
import json
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def _load(name: str, key: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))[key]


REFERENCE = _load("torchvision_reference.json", "models")
PUBLISHED = _load("torchvision_published.json", "models")


def leaf_rows(key: str) -> dict:
    """{qualified module name: {column: value}} of a reference case's leaf table."""
    case = REFERENCE[key]
    return {row[0]: dict(zip(case["leaf_columns"], row)) for row in case["leaves"]}
