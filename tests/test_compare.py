"""`calc compare` and `calc analyze --compare-conventions`: totals side by side and the layers
where two conventions part ways."""
import json

from calc import load_spec
from calc.cli import main
from calc.compare import compare
from calc.conventions import CONVENTIONS
from conftest import SPECS
from reference_data import REFERENCE

ALEXNET = str(SPECS / "alexnet.yaml")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_totals_under_every_convention():
    c = compare(load_spec(ALEXNET).build())
    got = {t.name: t for t in c.totals}
    assert list(got) == list(CONVENTIONS)
    ref = REFERENCE["alexnet"]
    assert got["thop"].reported == ref["thop_macs"]
    assert got["ptflops"].reported == ref["ptflops_pytorch_macs"]
    assert got["ptflops-aten"].reported == ref["ptflops_aten_macs"]
    assert got["fvcore"].reported == ref["fvcore_flops"]
    assert got["torchinfo"].reported == ref["torchinfo_mult_adds"]
    assert got["torch"].reported == ref["torch_flops"]
    # standard MACs = FlopCounterMode FLOPs / 2 (AlexNet: 714,188,480, derived in test_alexnet.py)
    assert 2 * got["standard"].macs == ref["torch_flops"] and got["standard"].reported is None


def test_diff_thop_ptflops_on_alexnet():
    d = compare(load_spec(ALEXNET).build(), diff=("thop", "ptflops")).diff
    by_type = {t.type: (t.layers, t.b - t.a) for t in d.by_type}
    # docs/conventions.md §10.1: ptflops counts each ReLU twice (module + F.relu, 493,184 outputs in all),
    # each max pool twice (376,832 inputs), and the bias adds of convs (484,992) and linears (9,192);
    # thop counts none of them. The adaptive pool agrees: thop (1 + 1)·9216, ptflops 9216 + 9216.
    assert by_type == {"relu": (7, 2 * 493_184), "maxpool2d": (3, 2 * 376_832),
                       "conv2d": (5, 484_992), "linear": (3, 9_192)}
    assert d.total_b - d.total_a == REFERENCE["alexnet"]["ptflops_pytorch_macs"] - REFERENCE["alexnet"]["thop_macs"]
    assert len(d.layers) == 18 and d.layers[0].name == "features.0"
    assert d.layers[1].rule_a == "0" and d.layers[1].rule_b == "x per sample + module * y for the batch"


def test_compare_table(capsys):
    code, out, err = run(capsys, "compare", ALEXNET, "--diff", "thop,ptflops")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "alexnet · input 3×224×224 · batch 1 · every convention"
    thop = next(ln for ln in lines if ln.startswith("thop "))
    assert thop.split() == ["thop", "714,206,912", "714.21", "M", "1,428,413,824", "+18,432", "714,206,912", "MACs"]
    torch = next(ln for ln in lines if ln.startswith("torch "))
    assert torch.rstrip().endswith("1,428,376,960 FLOPs")
    assert "where thop and ptflops part ways: thop 714,206,912 MACs, ptflops 716,441,128 MACs (+2,234,216)" in out
    relu = next(ln for ln in lines if ln.startswith("relu "))
    assert relu.split() == ["relu", "7", "0", "986,368", "+986,368"]
    assert "by layer (18 differ):" in out


def test_analyze_compare_conventions_json(capsys):
    code, out, _ = run(capsys, "analyze", ALEXNET, "--compare-conventions", "--diff", "fvcore,torchinfo",
                       "--format", "json", "--batch", "8")
    doc = json.loads(out)
    assert doc["batch"] == 8
    conv = {c["name"]: c for c in doc["conventions"]}
    assert conv["torchinfo"]["macs"] == REFERENCE["alexnet@8x3x224x224"]["torchinfo_mult_adds"]
    assert conv["fvcore"]["macs"] == REFERENCE["alexnet@8x3x224x224"]["fvcore_flops"]
    assert doc["diff"]["a"] == "fvcore" and doc["diff"]["b"] == "torchinfo"
    # torchinfo counts the biases (conv: per output position), fvcore the adaptive pool's inputs
    types = {t["type"]: t["b"] - t["a"] for t in doc["diff"]["by_type"]}
    assert types == {"conv2d": 8 * 484_992, "linear": 8 * 9_192, "adaptive_avgpool2d": -8 * 9_216}


def test_a_convention_that_cannot_count_is_shown(capsys):
    code, out, _ = run(capsys, "compare", str(SPECS / "alexnet_2012.yaml"), "--conventions", "standard,ptflops")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("ptflops"))
    assert "cannot count" in line and "local_response_norm" in line


def test_compare_errors(capsys):
    code, _, err = run(capsys, "compare", ALEXNET, "--diff", "thop")
    assert code == 2 and "--diff: expected two conventions" in err
    code, _, err = run(capsys, "compare", ALEXNET, "--diff", "thop,nope")
    assert code == 2 and "unknown convention 'nope'" in err
    code, _, err = run(capsys, "analyze", ALEXNET, "--diff", "thop,ptflops")
    assert code == 2 and "--compare-conventions" in err
    code, _, err = run(capsys, "compare", str(SPECS / "alexnet_2012.yaml"), "--diff", "thop,ptflops")
    assert code == 2 and "local_response_norm" in err


def test_conventions_command(capsys):
    code, out, _ = run(capsys, "conventions")
    assert code == 0
    for name in CONVENTIONS:
        assert any(line.startswith(name) for line in out.splitlines())
    code, out, _ = run(capsys, "conventions", "thop-legacy")
    assert out.startswith("thop-legacy  — reproduces thop before 0.1")
    assert "MACs = module * (kernel_floor + 1) * y" in out
    assert "(∏ floor(in_i/out_i) + 1) per output element" in out
    code, out, _ = run(capsys, "conventions", "ptflops")
    assert "MACs = x per sample + module * y for the batch" in out


def test_readme_conventions_table_matches_calc():
    """The README's table of conventions states what calc computes (3×224×224, batch 1)."""
    text = (SPECS.parent / "README.md").read_text()
    table = text[text.index("| convention | counts | AlexNet | ViT-B/16 |"):]
    table = table[:table.index("\n\n")]
    rows = table.splitlines()[2:]
    seen = set()
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = cells[0].split("`")[1]
        conv = CONVENTIONS[name]
        for spec, cell in (("alexnet", cells[2]), ("vit_b_16", cells[3])):
            totals = {t.name: t for t in compare(load_spec(str(SPECS / f"{spec}.yaml")).build(), names=[name]).totals}
            t = totals[name]
            # exact and torch: the figure is FLOPs (the table says so); otherwise MACs
            value = t.flops if name == "exact" or conv.reports == "flops" else t.macs
            assert int(cell.replace(",", "")) == value, (name, spec)
        seen.add(name)
    assert seen == set(CONVENTIONS)
    # and the tool rows are the tools' recorded figures
    assert "716,441,128" in table and REFERENCE["vit_b_16"]["torchinfo_mult_adds"] == 173_232_616
