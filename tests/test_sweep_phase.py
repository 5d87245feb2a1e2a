"""`calc sweep --phase`: every variant equals `calc analyze --phase` of the same sizes (the
inference module, itself derived by hand in tests/test_llm.py and tests/test_t5.py and checked
against transformers); the phase's sizes are axes; bad combinations are clear errors."""
import json
from fractions import Fraction

import pytest

from calc.cli import main
from calc.inference import generate, run_phase
from conftest import SPECS
from calc import load_spec


def lines(capsys, *argv):
    assert main(["sweep", *argv]) == 0
    return [json.loads(x) for x in capsys.readouterr().out.splitlines()]


def test_decode_sweep_matches_each_phase(capsys):
    rows = lines(capsys, str(SPECS / "llama2_7b.yaml"), "--phase", "decode", "--context", "1024,4096", "--batch",
                 "1,8", "--format", "json")
    assert [(r["context"], r["batch"]) for r in rows] == [(1024, 1), (1024, 8), (4096, 1), (4096, 8)]
    model = load_spec(str(SPECS / "llama2_7b.yaml")).build()
    for r in rows:
        p = run_phase(model, "decode", r["context"], batch=r["batch"])
        assert (r["macs"], r["flops"], r["kv_cache_bytes"]) == (p.analysis.totals.macs, p.analysis.totals.flops,
                                                                 p.kv.bytes)
        assert r["phase"] == "decode" and r["variables"] == {}
    # the check: 7,680,819,200 MACs per token over 4,096 keys; the KV cache 524,288 B per token
    # in 16 bits, i.e. 2 × 16 GiB in fp32 for 8 × 4,096 tokens
    assert rows[3]["macs_per_token"] == 7_680_819_200
    assert rows[3]["kv_cache_bytes"] == 2 * 16 * 2**30


def test_phase_sweep_on_hardware_is_calc_time_of_each_phase(capsys):
    # sweep --phase --hardware: each row's latency and throughput are the roofline of that phase
    # (calc.roofline.phases, itself checked by hand and against LLM-Viewer in tests/test_time*.py)
    from calc.hardware import get
    from calc.roofline import Options
    from calc.roofline.phases import time_generation, time_phase
    spec = str(SPECS / "gpt2.yaml")
    model = load_spec(spec).build()
    a100 = get("a100-40gb")
    rows = lines(capsys, spec, "--phase", "decode", "--context", "64,512", "--batch", "1,4", "--hardware",
                 "a100-40gb", "--format", "json")
    for r in rows:
        t = time_phase(model, "decode", r["context"], a100, Options(), batch=r["batch"])
        assert (r["latency_s"], r["throughput"]) == (float(t.time), float(t.tokens_per_second))
    rows = lines(capsys, spec, "--phase", "generate", "--context", "32", "--new", "1,16", "--hardware", "a100-40gb",
                 "--format", "json")
    for r in rows:
        g = time_generation(model, 32, r["new"], a100, Options())
        assert (r["latency_s"], r["throughput"]) == (float(g.time), float(g.tokens_per_second))


def test_generate_sweep_with_variables(capsys):
    spec = SPECS / "t5_small.yaml"
    rows = lines(capsys, str(spec), "--phase", "generate", "--context", "1", "--new", "3,10", "--set", "src=16,32",
                 "--format", "json")
    assert [(r["variables"], r["new"]) for r in rows] == [({"src": 16}, 3), ({"src": 16}, 10), ({"src": 32}, 3),
                                                          ({"src": 32}, 10)]
    for r in rows:
        g = generate(load_spec(str(spec)).build(r["variables"]), 1, r["new"])
        assert (r["macs"], r["flops"]) == (g.macs, g.flops)
        assert Fraction(r["macs_per_token"]) == Fraction(g.macs, r["new"])   # per generated token


def test_prefill_sweep_csv_and_filter(capsys):
    assert main(["sweep", str(SPECS / "llama2_7b.yaml"), "--phase", "prefill", "--context", "100,200",
                 "--set", "depth=1,2", "--filter", "kv_bytes < 10000000", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("kv_cache_bytes,macs_per_token,flops_per_token,error")
    # one layer's cache is 2·32·128·4 B = 32,768 B per token in fp32: 1 layer × 100 tokens 3,276,800 B,
    # 1 × 200 and 2 × 100 6,553,600 B pass; 2 × 200 = 13,107,200 B does not
    kept = [row.split(",")[1:3] for row in out[1:]]
    assert kept == [["1", "100"], ["1", "200"], ["2", "100"]]
    assert out[1].split(",")[-4] == str(32_768 * 100)


@pytest.mark.parametrize("argv, message", [
    (["--context", "8"], "go with --phase"),
    (["--phase", "decode"], "needs --context"),
    (["--phase", "generate", "--context", "8"], "needs --new"),
    (["--phase", "decode", "--context", "8", "--new", "2"], "--new goes with --phase generate"),
    (["--phase", "decode", "--context", "8", "--input", "8"], "--input does not go with --phase"),
    (["--phase", "decode", "--context", "0"], "positive whole number"),
])
def test_bad_phase_sweeps_are_clear_errors(argv, message, capsys):
    assert main(["sweep", str(SPECS / "gpt2.yaml"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_variant_that_fails_is_a_row(capsys):
    # gpt2 has a learned position table of 1,024 rows: decoding at 2,000 keys is an error row
    rows = lines(capsys, str(SPECS / "gpt2.yaml"), "--phase", "decode", "--context", "10,2000", "--format", "json")
    assert rows[0]["error"] is None and "max_len=1,024" in rows[1]["error"]
