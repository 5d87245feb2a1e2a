"""`calc report` without a browser: the page is one self-contained file (nothing fetched), its
embedded numbers are those of `calc analyze --format json` (the same analysis, another rendering),
every convention's counts are those of `calc analyze --convention NAME --format json`, the
explanations are `calc explain`'s lines, it stays small, and the commands write it. The page's
behaviour in a real browser is tested in test_report_browser.py."""
import json
import re

from importlib import resources

import pytest

from calc import conventions as conv_mod
from calc.cli import main
from calc.render.html import ROW_COLUMNS
from conftest import ROOT, SPECS

DATA = re.compile(r'<script type="application/json" id="calc-data">(.*?)</script>', re.S)


def page_data(html: str) -> dict:
    return json.loads(DATA.search(html).group(1))


def cli_json(capsys, *args) -> dict:
    assert main(["analyze", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def resnet_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "r.html"
    assert main(["report", str(SPECS / "resnet50.yaml"), "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def leaf_rows(data):
    """The table's rows that are layers (or folded runs), in order: those no row nests under."""
    rows = data["rows"]
    d = ROW_COLUMNS.index("depth")
    return [r for k, r in enumerate(rows) if k + 1 == len(rows) or rows[k + 1][d] <= r[d]]


def test_page_is_self_contained(resnet_page):
    # Nothing is loaded from anywhere: no src/href other than in-page anchors and data: URLs, no
    # @import or url() in the style. (The SVG namespace URI names a namespace; it is not fetched.)
    html = resnet_page
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html)
    assert all(r.startswith(("#", "data:")) for r in refs), refs
    assert "@import" not in html and "url(" not in html
    assert set(re.findall(r"https?://[^\s\"'`<>)]+", html)) == {"http://www.w3.org/2000/svg"}
    assert "{{" not in html.replace("{{data}}", "")   # every placeholder filled
    assert html.count("<script") == 2                 # the data and the script, both inline


def test_resnet50_page_is_under_one_megabyte(resnet_page):
    size = len(resnet_page.encode("utf-8"))
    assert size < 1_000_000, size


def test_embedded_numbers_equal_the_json_output(resnet_page, capsys):
    data = page_data(resnet_page)
    ref = cli_json(capsys, str(SPECS / "resnet50.yaml"))
    assert data["info"]["totals"] == ref["totals"]
    c = {name: i for i, name in enumerate(ROW_COLUMNS)}
    leaves = leaf_rows(data)
    assert [r[c["name"]] for r in leaves] == [x["name"] for x in ref["layers"]]
    for row, layer in zip(leaves, ref["layers"]):
        assert (row[c["params"]], row[c["macs"]], row[c["flops"]]) == (layer["params"], layer["macs"], layer["flops"])
        assert row[c["output"]] == "×".join(map(str, layer["output_shape"]))
    # bytes per layer: parameters × 4 (fp32); activations: output elements × 4 × batch 1
    conv1 = leaves[0]
    assert conv1[c["param_bytes"]] == 9408 * 4 and conv1[c["activation_bytes"]] == 64 * 112 * 112 * 4


@pytest.mark.parametrize("name", ["thop", "fvcore", "exact"])
def test_every_convention_per_layer_equals_its_json_output(resnet_page, capsys, name):
    data = page_data(resnet_page)
    ref = cli_json(capsys, str(SPECS / "resnet50.yaml"), "--convention", name)
    conv = data["conventions"][name]
    assert (conv["total_macs"], conv["total_flops"]) == (ref["totals"]["macs"], ref["totals"]["flops"])
    index = {r[0]: k for k, r in enumerate(data["rows"])}
    for layer in ref["layers"]:
        k = index[layer["name"]]
        assert (conv["macs"][k], conv["flops"][k]) == (layer["macs"], layer["flops"])


def test_every_convention_is_present_or_says_why_not(resnet_page):
    data = page_data(resnet_page)
    assert set(data["conventions"]) | set(data["failed"]) == set(conv_mod.CONVENTIONS)
    assert not set(data["conventions"]) & set(data["failed"])


def test_types_add_up_to_the_totals(resnet_page):
    data = page_data(resnet_page)
    types = data["types"]
    for name, conv in data["conventions"].items():
        assert sum(t["macs"][name] for t in types.values()) == conv["total_macs"]
    assert sum(t["params"] for t in types.values()) == data["info"]["totals"]["params"]
    # ResNet-50 has 53 convolutions (1 stem + 16 blocks × 3 + 4 projections) and one linear
    assert types["conv2d"]["layers"] == 53 and types["linear"]["layers"] == 1


def test_explanations_are_calc_explains_lines(resnet_page, capsys):
    data = page_data(resnet_page)
    c = {name: i for i, name in enumerate(ROW_COLUMNS)}
    row = next(r for r in data["rows"] if r[c["name"]] == "layer1.0.conv2")
    expl = data["explanations"][row[c["explanation"]]]
    assert main(["explain", str(SPECS / "resnet50.yaml"), "--layer", "layer1.0.conv2"]) == 0
    text = capsys.readouterr().out
    steps = [s for _, _, lines in expl["s"] for s in lines]
    assert steps and all(s in text for s in steps)
    assert any(s.endswith("= 115,605,504") for s in steps)   # the MACs of the table


def test_graph_names_point_at_their_rows():
    from calc import analyze, parse_spec
    from calc.analysis import FOLD
    from calc.render.graphview import graph_tree
    spec = parse_spec((SPECS / "unet.yaml").read_text(), "unet.yaml")
    a = analyze(spec.build({}))
    rows = [r.name for r in a.rows(fold=FOLD)]
    tree = graph_tree(a, {n: i for i, n in enumerate(rows)})
    found, skips = [], []

    def walk(p):
        if p["k"] in ("l", "g"):
            assert p["r"] >= 0 and rows[p["r"]] == p["n"]
            found.append(p["n"])
        skips.extend(p.get("x", []))
        for q in [*p.get("i", []), *([p["b"]] if p["k"] == "g" else p.get("b", [])), *([p["j"]] if "j" in p else [])]:
            walk(q)
    walk(tree)
    assert sorted(found) == sorted(rows)       # every row is drawn once
    assert sorted(skips) == ["enc1", "enc2", "enc3", "enc4"]   # each decoder stage concatenates an encoder output


def test_long_repeat_folds_in_table_and_graph(tmp_path):
    spec = tmp_path / "long.yaml"
    spec.write_text("name: long\ninput: [4]\nlayers:\n  - repeat:\n      times: 5000\n"
                    "      layers:\n        - linear: {out: 4}\n")
    out = tmp_path / "long.html"
    assert main(["report", str(spec), "-o", str(out)]) == 0
    data = page_data(out.read_text())
    assert [r[0] for r in data["rows"]] == ["0", "1…4999"]
    assert data["rows"][1][ROW_COLUMNS.index("macs")] == 4999 * 16   # 4×4 MACs per linear
    rep = data["graph"]["i"][0]
    assert rep["k"] == "r" and rep["t"] == 5000 and rep["m"] == 4999 and len(rep["i"]) == 1


def test_huge_counts_travel_as_digits(tmp_path):
    # 2**53 is where JavaScript's numbers stop holding every integer: a count above it is written
    # as a string of digits, so that the page prints it exactly.
    spec = tmp_path / "big.yaml"
    spec.write_text("name: big\ninput: [65536]\nlayers:\n  - linear: {out: 65536, bias: false}\n")
    out = tmp_path / "big.html"
    assert main(["report", str(spec), "--batch", "4194304", "-o", str(out)]) == 0
    data = page_data(out.read_text())
    macs = 65536 * 65536 * 4194304                       # in × out × batch = 2**54
    assert data["info"]["totals"]["macs"] == str(macs)
    assert data["rows"][0][ROW_COLUMNS.index("params")] == 65536 * 65536   # below 2**53: a number


def test_sweep_and_compare_write_reports(tmp_path, capsys):
    s, c = tmp_path / "s.html", tmp_path / "c.html"
    assert main(["sweep", str(SPECS / "resnet50.yaml"), "--set", "width=0.5,1.0", "--set", "groups=1,2",
                 "--pareto", "macs,params", "--report", str(s)]) == 0
    assert "Pareto-optimal" in capsys.readouterr().out        # the table is still printed
    data = page_data(s.read_text())
    assert data["kind"] == "sweep" and len(data["variants"]) == 4 and data["pareto"] == ["macs", "params"]
    assert main(["sweep", str(SPECS / "resnet50.yaml"), "--set", "width=0.5,1.0", "--format", "json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert main(["sweep", str(SPECS / "resnet50.yaml"), "--set", "width=0.5,1.0", "--report", str(s)]) == 0
    assert page_data(s.read_text())["variants"] == lines
    assert main(["compare", str(SPECS / "alexnet.yaml"), "--report", str(c)]) == 0
    assert "every convention" in capsys.readouterr().out
    data = page_data(c.read_text())
    assert data["focus"] == "conventions" and data["conventions"]["thop"]["total_macs"] == 714_206_912  # README


def test_report_errors_are_plain(tmp_path, capsys):
    assert main(["report", str(SPECS / "alexnet.yaml"), "-o", str(tmp_path / "no" / "such" / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the report to ") and "Traceback" not in err
    assert main(["report", str(SPECS / "alexnet.yaml"), "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")


def test_assets_ship_with_the_package():
    tomllib = pytest.importorskip("tomllib")   # Python 3.11+
    assets = resources.files("calc.render") / "assets"
    names = sorted(p.name for p in assets.iterdir())
    assert names == ["report.css", "report.html", "report.js", "roofline.css", "roofline.js"]
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = conf["package-data"]["calc.render"]
    assert all(any(re.fullmatch(g.replace(".", r"\.").replace("*", ".*"), "assets/" + n) for g in globs)
               for n in names)
    include = conf["packages"]["find"]["include"]               # calc.render and every subpackage
    assert any(re.fullmatch(g.replace(".", r"\.").replace("*", ".*"), "calc.render") for g in include)


def test_a_convention_that_cannot_count_says_why(tmp_path, capsys):
    # local response normalisation is a layer type that some tool does not name: `calc compare`
    # says which and why; the page lists the same conventions with the same reasons
    spec = tmp_path / "lrn.yaml"
    spec.write_text("name: lrn\ninput: [4, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3}\n"
                    "  - local_response_norm: {size: 2}\n")
    assert main(["compare", str(spec), "--format", "json"]) == 0
    errors = {c["name"]: c["error"] for c in json.loads(capsys.readouterr().out)["conventions"] if c["error"]}
    assert errors
    out = tmp_path / "lrn.html"
    assert main(["report", str(spec), "-o", str(out)]) == 0
    data = page_data(out.read_text())
    assert data["failed"] == errors
