"""Training and inference memory per device (calc.memory.training, `calc memory`).

Every expected number has its derivation beside it. ResNet-50's parameter count, 25,557,032, is
torchvision's published figure (calc/models/published.json); its batch-norm channels are summed
by hand below."""
from __future__ import annotations

import json

import pytest

from calc import models
from calc.analysis import analyze
from calc.cli import main
from calc.errors import SpecError
from calc.memory.activations import saved_activations
from calc.memory.optimizers import adafactor, adam8bit
from calc.memory.tensors import model_tensors
from calc.memory.training import fits, inference_memory, training_memory
from calc.spec import parse_spec

P50 = 25_557_032
# ResNet-50's batch norms: stem 64; layer1 3·(64+64+256)+256; layer2 4·(128+128+512)+512;
# layer3 6·(256+256+1024)+1024; layer4 3·(512+512+2048)+2048 channels
BN50 = 64 + (3 * 384 + 256) + (4 * 768 + 512) + (6 * 1536 + 1024) + (3 * 3072 + 2048)


def named(name, batch=1, **sets):
    spec, variant = models.open_named(name)
    return analyze(spec.build(sets, variant=variant), batch=batch)


def small(text, batch=1):
    return analyze(parse_spec(text, "t.yaml").build(), batch=batch)


def test_bn_channels_derivation():
    assert BN50 == 26_560


def test_resnet50_adamw_bf16_mixed_amp():
    a = named("resnet50", batch=32)
    m = training_memory(a, optimizer="adamw", precision="bf16-mixed")
    part = {p.name: p.bytes for p in m.parts}
    assert part["weights"] == 4 * P50                          # fp32 parameters (AMP keeps them)
    assert part["buffers"] == 2 * BN50 * 4 + 53 * 8            # running mean and var fp32, 53 int64 counters
    assert part["working copies"] == 2 * (P50 - 2 * BN50)      # bf16 copies of conv and fc weights (not BN γ, β)
    assert part["gradients"] == 4 * P50
    assert part["optimizer states"] == 2 * 4 * P50             # exp_avg, exp_avg_sq in fp32
    assert part["saved activations"] == saved_activations(a, dtype="bf16").bytes
    assert m.total == sum(part.values()) and m.complete
    assert "master weights" not in part


def test_master_copy_convention_is_16_bytes_per_param_plus_activations():
    a = named("resnet50")
    m = training_memory(a, optimizer="adam", precision="bf16-mixed", master="copy")
    part = {p.name: p.bytes for p in m.parts}
    # Megatron/DeepSpeed: 2 (bf16 weights) + 2 (bf16 grads) + 4 (fp32 master) + 8 (two fp32 states)
    assert part["weights"] + part["gradients"] + part["master weights"] + part["optimizer states"] == 16 * P50
    assert "working copies" not in part


@pytest.mark.parametrize("precision,per_param", [("fp32", 4 + 4 + 8), ("bf16", 2 + 2 + 4), ("fp16", 2 + 2 + 4)])
def test_precision_bytes_per_param(precision, per_param):
    a = named("resnet18")
    m = training_memory(a, optimizer="adamw", precision=precision)
    part = {p.name: p.bytes for p in m.parts}
    assert part["weights"] + part["gradients"] + part["optimizer states"] == per_param * a.root.params


@pytest.mark.parametrize("optimizer,states", [("sgd", 0), ("sgd-momentum", 1), ("adam", 2), ("adamw", 2)])
def test_elementwise_optimizers(optimizer, states):
    a = named("resnet18")
    m = training_memory(a, optimizer=optimizer)
    assert m.part("optimizer states").bytes == states * 4 * a.root.params


def test_adafactor_factors_matrices_by_hand():
    # linear 8→16 with bias: weight (16, 8) keeps 16 row + 8 column statistics, bias (16,) keeps 16;
    # conv 3→4, 3×3 kernel: weight (4, 3, 3, 3): rows ∏(4,3,3) = 36, columns 4·3·3 = 36; bias 4
    a = small("name: t\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3}\n  - global_avgpool\n"
              "  - linear: {out: 16}\n")
    assert sorted(s for s, _, _ in model_tensors(a)) == sorted([(4, 3, 3, 3), (4,), (16, 4), (16,)])
    st = adafactor(model_tensors(a), 4)
    assert st.bytes == 4 * ((36 + 36) + 4 + (16 + 4) + 16)


def test_adam8bit_by_hand():
    # bitsandbytes: a tensor under 4,096 elements keeps two fp32 states (8 B each element); a
    # larger one 2 B per element + two fp32 absmax per block of 256, plus the 2,048 B of maps
    a = small("name: t\ninput: [100]\nlayers:\n  - linear: {out: 50}\n")   # weight 5,000, bias 50
    st = adam8bit(model_tensors(a))
    assert st.bytes == 8 * 50 + 2 * 5000 + 2 * 4 * 20 + 2048     # ⌈5000/256⌉ = 20 blocks


def test_frozen_layers_have_no_gradients_or_states():
    a = small("name: t\ninput: [10]\nlayers:\n  - linear: {out: 10, trainable: false}\n  - linear: {out: 5}\n")
    m = training_memory(a, optimizer="adamw")
    assert m.part("gradients").bytes == 4 * 55                    # only the second layer (50 + 5)
    assert m.part("optimizer states").bytes == 8 * 55
    assert m.part("weights").bytes == 4 * (110 + 55)


def test_zero_stages_partition_per_device():
    a = named("gpt2")
    p = a.root.params                                               # 124,439,808
    per = -(-p // 8)
    parts = {z: {x.name: x.bytes for x in training_memory(a, zero=z, devices=8).parts} for z in range(4)}
    assert parts[0]["optimizer states"] == 8 * p and parts[1]["optimizer states"] == 8 * per
    assert parts[1]["gradients"] == 4 * p and parts[2]["gradients"] == 4 * per
    assert parts[2]["weights"] == 4 * p and parts[3]["weights"] == 4 * per == 4 * 15_554_976


def test_tensor_parallel_splits_weight_matrices():
    # linear 10→20 with bias: the 200 weights split over tp = 2, the 20 biases stay whole
    a = small("name: t\ninput: [10]\nlayers:\n  - linear: {out: 20}\n  - layernorm\n")
    m = training_memory(a, tp=2, devices=2)
    assert m.part("weights").bytes == 4 * (100 + 20 + 40)


def test_accumulation_counts_one_micro_batch():
    a = named("resnet18", batch=8)
    m = training_memory(a, accumulate=4)
    assert m.part("saved activations").bytes == saved_activations(named("resnet18", batch=2)).bytes
    with pytest.raises(SpecError, match="does not divide"):
        training_memory(a, accumulate=3)


@pytest.mark.parametrize("kw,message", [({"optimizer": "lion"}, "unknown optimizer"),
                                        ({"precision": "fp8"}, "unknown precision"),
                                        ({"devices": 3, "tp": 2}, "not a multiple"),
                                        ({"optimizer": "adafactor", "zero": 1, "devices": 2}, "depends on each tensor")])
def test_refusals(kw, message):
    with pytest.raises(SpecError, match=message):
        training_memory(named("resnet18"), **kw)


def test_inference_weights_kv_and_peak():
    a = named("gpt2")
    m = inference_memory(a)
    part = {p.name: p.bytes for p in m.parts}
    assert part["weights"] == 4 * 124_439_808
    # KV cache: 12 layers × 2 (K and V) × 1,024 tokens × 768 features × 4 B
    assert part["KV cache"] == 12 * 2 * 1024 * 768 * 4


def test_fits_is_the_exact_boundary():
    limit = 3 * 10**9
    a1 = named("resnet18")

    def total(n):
        return training_memory(analyze(a1.model, batch=n)).total
    f = fits(total, limit)
    assert f.largest > 1 and total(f.largest) <= limit < total(f.largest + 1)
    assert f.total == total(f.largest)
    assert fits(total, 1000).largest == 0


def test_cli_done_when(capsys):
    assert main(["memory", "resnet50", "--train", "--optimizer", "adamw", "--precision", "bf16-mixed",
                 "--batch", "32"]) == 0
    out = capsys.readouterr().out
    for word in ("weights", "gradients", "optimizer states", "saved activations", "peak per device", "GiB",
                 f"{4 * P50:,}"):
        assert word in out


def test_cli_json_and_fits(capsys):
    assert main(["memory", "resnet18", "--train", "--fits", "2GB", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)["memory"]
    assert d["fits"]["limit_bytes"] == 2 * 10**9 and d["fits"]["total_bytes"] <= 2 * 10**9
    assert d["total_bytes"] == sum(p["bytes"] for p in d["parts"])


def test_cli_bad_size(capsys):
    assert main(["memory", "resnet18", "--fits", "1.5B"]) == 2
    assert "positive whole number of bytes" in capsys.readouterr().err


def test_cli_training_options_need_train(capsys):
    assert main(["memory", "resnet18", "--zero", "2"]) == 2
    assert "--zero applies to training: add --train" in capsys.readouterr().err
    assert main(["memory", "gpt2", "--train", "--weights", "int4"]) == 2
    assert "--weights applies to inference" in capsys.readouterr().err


def test_analyze_json_has_memory(capsys):
    assert main(["analyze", "resnet18", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["memory"]["training"]["parts"][0]["bytes"] == 4 * d["totals"]["params"]
    assert list(d)[-1] == "layers"


ORACLE_SPECS = {
    "cnn": "name: t\ninput: [3, 16, 16]\nlayers:\n  - conv2d: {out: 8, kernel: 3, padding: 1}\n  - batchnorm2d\n"
           "  - relu\n  - conv2d: {out: 80, kernel: 3, groups: 2, bias: false}\n  - global_avgpool\n"
           "  - linear: {out: 100}\n  - layernorm\n",
    "lstm": "name: t\ninput: [5, 12]\nlayers:\n  - lstm: {hidden: 70, num_layers: 2, bidirectional: true}\n"
            "  - linear: {out: 3}\n",
}


@pytest.mark.parametrize("name", sorted(ORACLE_SPECS))
def test_optimizer_states_and_tensors_against_pytorch(name):
    """The oracle: PyTorch's own optimizers, one step on the oracle's module; the bytes of every
    state tensor except the CPU ``step`` scalars, and the shapes of the parameters."""
    torch = pytest.importorskip("torch")
    from calc.oracle.core import build_module
    model = parse_spec(ORACLE_SPECS[name], "t.yaml").build()
    a = analyze(model, batch=2)
    module = build_module(model)
    x = torch.zeros(2, *model.input_shape)
    with torch.no_grad():
        module(x)
    params = list(module.parameters())
    ours = sorted(s for s, k, _ in model_tensors(a) for _ in range(k))
    assert sorted(tuple(p.shape) for p in params) == ours
    assert sum(b.numel() * b.element_size() for b in module.buffers()) == \
        training_memory(a).part("buffers").bytes
    for optimizer, make in (("adamw", lambda: torch.optim.AdamW(params)),
                            ("sgd-momentum", lambda: torch.optim.SGD(params, lr=0.1, momentum=0.9)),
                            ("adafactor", lambda: torch.optim.Adafactor(params))):
        o = make()
        module.train()
        module(x).float().sum().backward()
        o.step()
        measured = sum(t.numel() * t.element_size() for st in o.state.values() for key, t in st.items()
                       if torch.is_tensor(t) and key != "step")
        assert training_memory(a, optimizer=optimizer).part("optimizer states").bytes == measured, optimizer
        o.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", ["deepseek_v3", "mixtral_8x7b", "llama3_8b", "qwen2_7b", "bert_base", "lstm_tagger",
                                  "convnext_tiny", "vit_b_16", "unet", "efficientnet_b0"])
def test_every_parameter_lands_in_a_tensor(name):
    # the split is checked against each layer's count inside tensor_shapes; here the whole model's
    a = named(name)
    from math import prod
    assert sum(k * prod(s) for s, k, _ in model_tensors(a)) == a.root.params
