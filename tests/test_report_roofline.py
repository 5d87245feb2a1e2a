"""`calc report --hardware`: the roofline data embedded in the page equals `calc time`'s JSON,
no layer is lost, and mistakes are errors (the page itself is checked in a real browser in
tests/test_report_browser.py)."""
import json
import re

import pytest

from calc.cli import main
from conftest import SPECS


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def embedded(page: str) -> dict:
    blob = re.search(r'<script type="application/json" id="calc-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(blob)


@pytest.mark.parametrize("argv", [
    [str(SPECS / "resnet50.yaml"), "--hardware", "t4"],
    [str(SPECS / "gpt2.yaml"), "--hardware", "h100-sxm", "--dtype", "bf16", "--attention", "fused"],
    [str(SPECS / "alexnet.yaml"), "--hardware", "a100-40gb", "--peak-dtype", "tf32", "--efficiency", "compute=0.5"],
])
def test_roofline_data_equals_calc_time(capsys, argv):
    code, page, _ = run(capsys, "report", *argv, "-o", "-")
    assert code == 0
    data = embedded(page)
    code, out, _ = run(capsys, "time", *argv, "--format", "json")
    ref = json.loads(out)
    batch = ref["batches"][0]
    roof = data["roofline"]
    assert roof["hardware"] == ref["hardware"]["name"] and roof["peak"] == ref["hardware"]["peak_ops_per_s"]
    assert roof["dtype"] == ref["hardware"]["peak_dtype"]
    assert (roof["flops"], roof["bytes"], roof["time_s"]) == (batch["flops"], batch["bytes"], batch["time_s"])
    drawn = {p["name"]: p for p in roof["points"]}
    for layer in batch["layers"]:
        if layer["name"] in drawn:
            p = drawn[layer["name"]]
            assert (p["flops"], p["bytes"], p["bound"], p["time_s"]) == \
                (layer["flops"], layer["bytes"], layer["bound"], layer["time_s"])
            assert p["intensity"] == pytest.approx(layer["flops"] / layer["bytes"])
            # on or under the roof: attained = FLOPs / time ≤ min(peak, intensity × bandwidth)
            assert p["performance"] <= min(roof["roof_peak"], p["intensity"] * roof["roof_bandwidth"]) * (1 + 1e-12)
        else:
            assert layer["name"] in roof["not_drawn"] and not (layer["flops"] and layer["bytes"])
    assert len(roof["points"]) + len(roof["not_drawn"]) == len(batch["layers"])
    cards = {c["label"]: c for c in data["latency"]}
    assert set(cards) == {"latency", "throughput", "bound", "arithmetic intensity"}
    assert f"{batch['flops']:,} FLOPs over {batch['bytes']:,} bytes" in cards["arithmetic intensity"]["detail"]


def test_no_hardware_no_roofline(capsys):
    code, page, _ = run(capsys, "report", str(SPECS / "alexnet.yaml"), "-o", "-")
    data = embedded(page)
    assert code == 0 and data["roofline"] is None and data["latency"] is None


def test_bad_hardware_is_an_error(capsys, tmp_path):
    code, out, err = run(capsys, "report", str(SPECS / "alexnet.yaml"), "--hardware", "t5", "-o", "-")
    assert code == 2 and out == "" and "unknown hardware 't5' (did you mean 't4'?); presets: a10," in err
    code, out, err = run(capsys, "report", str(SPECS / "alexnet.yaml"), "--hardware", "t4",
                         "--peak-dtype", "bf16", "-o", "-")
    assert code == 2 and "hardware 't4' has no bf16 peak" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\nmemory: 1 GB\nbandwidth: 1 GB/s\npeak: {fp32: 1 TFLOPS}\nsources: []\n")
    code, _, err = run(capsys, "report", str(SPECS / "alexnet.yaml"), "--hardware", str(bad), "-o", "-")
    assert code == 2 and f"{bad}:5: sources: expected a list of sources" in err


def test_resnet50_page_with_roofline_under_a_megabyte(capsys):
    code, page, _ = run(capsys, "report", "resnet50", "--hardware", "t4", "-o", "-")
    assert code == 0 and len(page.encode()) < 1_000_000
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in \
        page.split('id="calc-data">')[0]
