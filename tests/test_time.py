"""The roofline (`calc time`): bytes moved per layer type, times, efficiencies, phases and the
exact sum over a generation, each expected number derived by hand beside it."""
import json
import random
from fractions import Fraction

import pytest

from calc import hardware, parse_spec
from calc.analysis import analyze
from calc.cli import main
from calc.errors import SpecError
from calc.layers.base import LAYERS
from calc.roofline import Options, roofline
from calc.roofline.phases import sum_max, time_generation, time_phase
from calc.roofline.traffic import RULES, Sizes, traffic
from helpers import run_spec

# A made-up device with round numbers, so that every time below is a hand calculation:
# 1,000 bytes/s of bandwidth and 10,000 fp16 (8,000 fp32) operations per second.
TOY = """
name: toy
title: Toy device
kind: gpu
memory: 1 GB
bandwidth: 1000 B/s
peak:
  fp32: 8000
  fp16: 10000
"""


@pytest.fixture
def toy(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(TOY)
    return hardware.get(str(path))


def spec(layers: str, input_: str, kind: str = "") -> object:
    return parse_spec(f"name: t\ninput: {input_}\n{kind}layers:\n{layers}").build()


def test_linear_by_hand(toy):
    # linear 64 -> 32 without bias on 64 features, fp16, batch 4:
    #   weights 64·32·2 = 4,096 B; inputs 4·64·2 = 512 B; outputs 4·32·2 = 256 B; total 4,864 B
    #   FLOPs (standard: 2 per MAC) 2·4·64·32 = 16,384
    #   compute 16,384 / 10,000 s; memory 4,864 / 1,000 s -> memory-bound, 4.864 s
    a = analyze(spec("  - linear: {out: 32, bias: false}\n", "[64]"), batch=4, dtype="fp16")
    rf = roofline(a, toy)
    (row,) = rf.rows
    t = row.traffic
    assert (t.weights, t.inputs, t.outputs, t.kv_read, t.kv_write, t.intermediates) == (4096, 512, 256, 0, 0, 0)
    assert row.flops == 16384
    assert row.compute_time == Fraction(16384, 10000) and row.memory_time == Fraction(4864, 1000)
    assert row.time == Fraction(4864, 1000) and row.bound == "memory"
    assert row.intensity == Fraction(16384, 4864)
    assert rf.throughput == Fraction(4) / Fraction(4864, 1000)


def test_efficiency_keys(toy):
    a = analyze(spec("  - linear: {out: 32, bias: false}\n", "[64]"), batch=4, dtype="fp16")
    # memory at half the bandwidth doubles the memory time: 4,864 / 500 s
    assert roofline(a, toy, Options(efficiency={"memory": Fraction(1, 2)})).time == Fraction(4864, 500)
    # the per-type key wins over the global one
    o = Options(efficiency={"memory": Fraction(1, 2), "linear.memory": Fraction(1, 4)})
    assert roofline(a, toy, o).time == Fraction(4864, 250)
    # compute at 1/10 of peak: 16,384 / 1,000 s > 4.864 s, compute-bound
    slow = roofline(a, toy, Options(efficiency={"compute": Fraction(1, 10)}))
    assert slow.time == Fraction(16384, 1000) and slow.rows[0].bound == "compute"
    for bad in ({"compute": Fraction(0)}, {"memory": Fraction(3, 2)}, {"speed": Fraction(1, 2)},
                {"nosuchlayer.compute": Fraction(1, 2)}):
        with pytest.raises(SpecError):
            roofline(a, toy, Options(efficiency=bad))


def test_peak_dtype_missing(toy):
    a = analyze(spec("  - linear: {out: 32}\n", "[64]"), dtype="bf16")
    with pytest.raises(SpecError, match="no bf16 peak"):
        roofline(a, toy)
    assert roofline(a, toy, Options(dtype="fp16")).peak == 10000


def test_every_layer_type_has_a_rule():
    assert set(LAYERS) <= set(RULES), set(LAYERS) - set(RULES)


def test_a_type_without_rule_is_an_error():
    a = analyze(spec("  - relu: {}\n", "[8]"))
    r = a.root.children[0].result._replace(kind="warp_drive")
    with pytest.raises(SpecError, match="warp_drive"):
        traffic(r, Sizes(act=4, kv=4, batch=1, weight_bytes=lambda r, experts_only=False: 0))


def test_views_move_nothing(toy):
    a = analyze(spec("  - flatten: {}\n  - dropout: {p: 0.5}\n", "[4, 8]"), dtype="fp16")
    assert all(r.bytes == 0 and r.time == 0 and r.bound == "none" for r in roofline(a, toy).rows)


def test_embedding_reads_only_its_rows(toy):
    # 10 token ids into a 1,000 × 16 table, fp32: ids 10·8 B, rows 10·16·4 = 640 B, output 640 B
    a = analyze(spec("  - embedding: {vocab: 1000, dim: 16}\n", "[10]", "input_kind: tokens\n"))
    t = roofline(a, toy, Options(dtype="fp32")).rows[0].traffic
    assert (t.inputs, t.weights, t.outputs) == (80, 640, 640)


ATTN = "  - attention: {heads: 4, kv_heads: 2, causal: true, bias: false}\n"


def test_attention_bytes_decode(toy):
    # one decode step at context S = 10, D = 32, h = 4, g = 2, d = 8, fp16, batch 3:
    #   KV read 2·g·d·S·b·2 = 2·2·8·10·3·2 = 1,920 B; KV written (the new token) 2·2·8·1·3·2 = 192 B
    #   eager intermediates: Q and context written and read 4·h·L·d = 128, scores and
    #   probabilities written and read 4·h·L·S = 160 -> 288 elements · 3 · 2 B = 1,728 B; fused 768 B
    m = spec(ATTN, "[16, 32]")
    eager = time_phase(m, "decode", 10, toy, Options(dtype="fp16"), batch=3, dtype="fp16").roofline.rows[0]
    fused = time_phase(m, "decode", 10, toy, Options(dtype="fp16", attention="fused"), batch=3,
                       dtype="fp16").roofline.rows[0]
    assert (eager.traffic.kv_read, eager.traffic.kv_write) == (1920, 192)
    assert eager.traffic.intermediates == 1728 and fused.traffic.intermediates == 768
    # weights: W_q 32·32, W_k, W_v 32·16 each, W_o 32·32 = 3,072 · 2 B; input and output 3·32·2 each
    assert eager.traffic.weights == 6144 and eager.traffic.inputs == eager.traffic.outputs == 192
    assert [p.name for p in eager.parts] == ["projections", "Q·Kᵀ", "softmax", "attention·V"]
    assert [p.name for p in fused.parts] == ["projections", "fused attention"]
    assert eager.bytes == sum(p.bytes for p in eager.parts)
    assert eager.flops == fused.flops == sum(p.flops for p in eager.parts)


def test_quantised_weights(toy):
    # int4 linear 256 -> 64 in groups of 128 with fp16 scales: 256·64/2 = 8,192 B packed,
    # 64·2 scales · 2 B = 256 B; its bias (64) in fp16 = 128 B
    a = analyze(spec("  - linear: {out: 64}\n", "[256]"), dtype="fp16")
    t = roofline(a, toy, Options(weights="int4")).rows[0].traffic
    assert t.weights == 8192 + 256 + 128


def test_moe_reads_only_routed_experts(toy):
    # one token, top 2 of 8 experts (gated, D = 16, H = 32, fp32): router 16·8, two experts 3·16·32 each
    m = spec("  - moe: {experts: 8, top_k: 2, hidden: 32}\n", "[1, 16]")
    a = analyze(m)
    t = roofline(a, toy, Options(dtype="fp32")).rows[0].traffic
    assert t.weights == (16 * 8 + 2 * 3 * 16 * 32) * 4
    # 8 tokens route to at most 16 experts: all 8 are read
    a8 = analyze(m, batch=8)
    assert roofline(a8, toy, Options(dtype="fp32")).rows[0].traffic.weights == (16 * 8 + 8 * 3 * 16 * 32) * 4


def test_sum_max_is_the_brute_force_sum():
    rng = random.Random(7)
    for _ in range(500):
        a = rng.randint(0, 20)
        b = a + rng.randint(0, 25)
        ca, cb, ma, mb = (Fraction(rng.randint(-40, 40), rng.randint(1, 4)) for _ in range(4))

        def at(x0, x1, s):
            return x0 if b == a else x0 + (x1 - x0) * Fraction(s - a, b - a)
        assert sum_max(ca, cb, ma, mb, a, b) == sum(max(at(ca, cb, s), at(ma, mb, s)) for s in range(a, b + 1))


@pytest.mark.parametrize("attention", ["eager", "fused"])
def test_generation_is_the_sum_of_its_steps(attention):
    hw = hardware.get("a100-40gb")
    m = run_spec("gpt2", input_shape=(8,)).model
    o = Options(attention=attention)
    g = time_generation(m, 20, 30, hw, o, dtype="fp16")
    steps = [time_phase(m, "decode", s, hw, o, dtype="fp16").time for s in range(21, 50)]
    assert g.time == time_phase(m, "prefill", 20, hw, o, dtype="fp16").time + sum(steps)
    assert g.time_per_output_token == sum(steps) / 29
    assert g.tokens_per_second == 30 / g.time


def test_batch_scales_throughput():
    hw = hardware.get("a100-40gb")
    m = run_spec("resnet18").model
    one, many = (roofline(analyze(m, batch=b, dtype="fp16"), hw) for b in (1, 64))
    # weights are read once per pass: a larger batch has a higher intensity and throughput
    assert many.intensity > one.intensity and many.throughput > one.throughput
    assert many.traffic.weights == one.traffic.weights


def test_cli_resnet50_batches(capsys):
    assert main(["time", "resnet50", "--hardware", "a100-40gb", "--batch", "1,8,64", "--dtype", "fp16"]) == 0
    out = capsys.readouterr().out
    assert "lower bound" in out and "samples/s" in out and "batch 64" in out
    assert "layer4.2.conv2" in out and "compute" in out and "memory" in out


def test_cli_llama_decode_json(capsys):
    assert main(["time", "llama2_7b", "--hardware", "a100-40gb", "--phase", "decode", "--context", "1024",
                 "--dtype", "bf16", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (b,) = data["batches"]
    assert data["estimate"] == "roofline lower bound" and data["hardware"]["peak_ops_per_s"] == 312 * 10**12
    # the KV cache read in decode: 32 layers · 2·32·128 · 1,024 tokens · 2 B = 536,870,912 B
    assert b["traffic"]["kv_read"] == 536_870_912
    assert b["tokens_per_s"] == pytest.approx(1 / b["time_s"])
    assert sum(x["time_s"] for x in b["layers"]) == pytest.approx(b["time_s"])


def test_cli_generate(capsys):
    assert main(["time", "gpt2", "--hardware", "a100-40gb", "--phase", "generate", "--context", "16", "--new", "8",
                 "--batch", "1,4"]) == 0
    out = capsys.readouterr().out
    assert "TTFT" in out and "tok/s" in out


@pytest.mark.parametrize("argv, message", [
    (["time", "resnet18", "--hardware", "nosuch"], "unknown hardware"),
    (["time", "resnet18", "--hardware", "a100-40gb", "--context", "5"], "need --phase"),
    (["time", "gpt2", "--hardware", "a100-40gb", "--phase", "decode"], "needs --context"),
    (["time", "resnet18", "--hardware", "a100-40gb", "--efficiency", "compute=2"], "at most 1"),
    (["time", "resnet18", "--hardware", "a100-40gb", "--batch", "1,0"], "--batch"),
    (["time", "resnet18", "--hardware", "a100-40gb", "--mode", "llm-viewer"], "llm-viewer"),
])
def test_cli_errors(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_sweep_latency_matches_calc_time(capsys):
    # the sweep's latency column is roofline(analysis of that batch).time, for every batch
    assert main(["sweep", "resnet18", "--batch", "1,8", "--hardware", "a100-40gb", "--dtype", "fp16",
                 "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    hw = hardware.get("a100-40gb")
    m = run_spec("resnet18").model
    for row in rows:
        rf = roofline(analyze(m, batch=row["batch"], dtype="fp16"), hw)
        assert row["latency_s"] == float(rf.time) and row["throughput"] == float(rf.throughput)


def test_sweep_pareto_on_time(capsys):
    assert main(["sweep", "resnet18", "--batch", "1,8,64", "--hardware", "a100-40gb", "--dtype", "fp16",
                 "--pareto", "latency,-throughput", "--sort", "latency"]) == 0
    out = capsys.readouterr().out
    assert "latency ms" in out and "Pareto-optimal" in out and "lower bound" in out


def test_sweep_time_columns_need_hardware(capsys):
    assert main(["sweep", "resnet18", "--sort", "latency"]) == 2
    assert "unknown column 'latency'" in capsys.readouterr().err
    assert main(["sweep", "resnet18", "--hardware", "nosuch"]) == 2


def test_verify_time_prints_both(tmp_path, capsys):
    pytest.importorskip("torch")
    path = tmp_path / "tiny.yaml"
    path.write_text("name: tiny\ninput: [64]\nlayers:\n  - linear: {out: 32}\n  - relu: {}\n")
    assert main(["verify", str(path), "--time"]) == 0
    out = capsys.readouterr().out
    # no timing assertion: the roofline estimate and the measured median are both printed
    assert "roofline lower bound" in out and "median of 10 forwards" in out and "ratio" in out


def test_verify_time_with_a_hardware_file(tmp_path, capsys):
    pytest.importorskip("torch")
    spec_path, hw_path = tmp_path / "tiny.yaml", tmp_path / "cpu.yaml"
    spec_path.write_text("name: tiny\ninput: [64]\nlayers:\n  - linear: {out: 32}\n")
    hw_path.write_text(TOY)
    assert main(["verify", str(spec_path), "--time", "--hardware", str(hw_path)]) == 0
    out = capsys.readouterr().out
    assert "toy: Toy device" in out and "derived" not in out


def test_weight_memory_and_the_fit_note(capsys):
    # Mixtral-8x7B's 46,702,792,704 parameters in bf16 are 93.4 GB, more than an A100's 40 GB
    a = run_spec("mixtral_8x7b", input_shape=(4,), dtype="bf16")
    rf = roofline(a, hardware.get("a100-40gb"))
    assert rf.weight_memory == (a.totals.params + a.totals.buffers) * 2
    assert main(["time", "mixtral_8x7b", "--hardware", "a100-40gb", "--input", "4", "--dtype", "bf16"]) == 0
    assert "does not fit" in capsys.readouterr().out
    assert main(["time", "resnet18", "--hardware", "a100-40gb"]) == 0
    assert "does not fit" not in capsys.readouterr().out


@pytest.mark.parametrize("fmt, zero", [("int4", True), ("int8", False), ("nf4", False)])
def test_quantised_weights_read_once_add_up(toy, fmt, zero):
    # every weight of a model of linear and attention layers is read once per pass: the bytes read
    # add up to the weight memory calc.quant computes for the same format
    from calc.quant import quantised_weights
    m = spec("  - linear: {out: 256}\n" + ATTN.replace("bias: false", "bias: true") + "  - linear: {out: 64}\n",
             "[8, 128]")
    a = analyze(m, dtype="fp16")
    rf = roofline(a, toy, Options(dtype="fp16", weights=fmt, zero_point=zero))
    assert rf.traffic.weights == quantised_weights(a, fmt, zero_point=zero).bytes == rf.weight_memory


def test_attained_is_under_the_roof():
    # a roofline plot's point: (intensity, flops / time) lies on or under min(peak, bandwidth · intensity)
    hw = hardware.get("a100-40gb")
    rf = roofline(analyze(run_spec("resnet18").model, batch=8, dtype="fp16"), hw)
    for r in rf.rows:
        if r.attained is not None and r.intensity is not None:
            assert r.attained <= min(hw.peak["fp16"], hw.bandwidth * r.intensity)
