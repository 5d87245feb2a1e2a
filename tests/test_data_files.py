"""The reference data in tests/data: each file states its provenance, the scripts that make them
are in the repository, and (where PyTorch and the counting tools are installed) the probe
generator still measures the committed figures."""
import ast
import json
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
FILES = sorted(p.name for p in DATA.glob("*.json"))


def test_the_data_files_are_there():
    assert FILES == ["layer_probe.json", "layer_probe_calc.json", "torchvision_published.json",
                     "torchvision_reference.json"]


@pytest.mark.parametrize("name", FILES)
def test_each_file_states_its_provenance(name):
    provenance = json.loads((DATA / name).read_text(encoding="utf-8"))["provenance"]
    assert provenance["what"]
    made = provenance.get("generated_by") or provenance.get("written_by")
    assert made
    if "generated_by" in provenance:
        script = made.split()[0]
        assert (DATA.parent.parent / script).is_file(), script
        assert provenance["generated_at_utc"]
        for tool in ("torch", "thop", "ptflops", "fvcore", "torchinfo") if "torch" in provenance else ():
            assert provenance[tool], tool


def test_the_probe_generator_measures_exactly_the_committed_probes():
    # read without importing (the generator needs torch): the keys of its PROBES table
    tree = ast.parse((DATA / "generate_probe.py").read_text(encoding="utf-8"))
    table = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", None) == "PROBES" for t in node.targets))
    names = [ast.literal_eval(k) for k in table.keys]
    committed = json.loads((DATA / "layer_probe.json").read_text(encoding="utf-8"))["probes"]
    assert names == list(committed)


def test_published_figures_are_complete():
    models = json.loads((DATA / "torchvision_published.json").read_text(encoding="utf-8"))["models"]
    assert len(models) > 50
    for name, model in models.items():
        assert model["default"] in model["weights"], name
        for weights, figures in model["weights"].items():
            assert isinstance(figures["num_params"], int) and figures["num_params"] > 0, (name, weights)
            assert figures["_ops"] > 0 and isinstance(figures["crop_size"], int), (name, weights)


# A few probes of different families, measured anew (a few seconds): the generator is kept working.
SAMPLE = ["Conv2d(6,10,k3x5,s2,p1,bias)", "BatchNorm2d(6)", "ReLU", "AdaptiveAvgPool2d((5,5))_nondivisible",
          "add: torch.add(x,x)", "MultiheadAttention(32,4,seq_first,need_weights=True)", "LSTMCell(16,32)",
          "Linear(20,30,bias)_3d_noncontiguous_input"]


@pytest.mark.parametrize("probe", SAMPLE)
def test_the_probe_generator_reproduces_committed_figures(probe, monkeypatch):
    pytest.importorskip("torch")
    for tool in ("thop", "ptflops", "fvcore", "torchinfo"):
        pytest.importorskip(tool)
    monkeypatch.syspath_prepend(str(DATA))
    import generate_probe
    committed = json.loads((DATA / "layer_probe.json").read_text(encoding="utf-8"))["probes"]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert generate_probe.measure(probe) == committed[probe]
    assert "generate_probe" in sys.modules
