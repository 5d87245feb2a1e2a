"""calc's activation checkpointing figures against torch.utils.checkpoint (use_reentrant=False).

The oracle (calc.oracle.checkpoint.measure_checkpointed) wraps the outermost units (block
instances, iterations of repeats outside blocks) of the oracle's module in checkpoint ("full"), or
the core of each eager attention from Q, K, V to the context ("selective"), runs one training
forward pass and the backward pass, and measures the bytes held at the end of the forward pass
(saved_tensors_hooks outside the checkpoints, and each checkpoint's input) plus the most one unit
saves again when it is recomputed. Every expected number is PyTorch's, or derived by hand where
written.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from calc import analyze, load_spec  # noqa: E402
from calc.memory import saved_activations  # noqa: E402
from calc.oracle.checkpoint import measure_checkpointed  # noqa: E402
from conftest import SPECS  # noqa: E402
from test_memory_oracle import REDUCED  # noqa: E402

# gpt2 and vit_b_16 at two blocks (gpt2 also at d 64: REDUCED), resnet18 at full size, and a
# LLaMA (separate Q, K, V projections, grouped-query attention)
MODELS = {"resnet18": None, "vit_b_16": {"depth": 2}, "gpt2": REDUCED["gpt2"], "llama2_7b": REDUCED["llama2_7b"]}


def calc_bytes(model, batch, mode):
    s = saved_activations(analyze(model, batch=batch), checkpointing=mode, device="cpu")
    recompute = sum(r.bytes for r in s.rows if r.kind == "checkpoint recompute")
    return s.bytes, recompute


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("mode", ["full", "selective"])
def test_checkpointing_keeps_what_pytorch_keeps(name, mode):
    model = load_spec(str(SPECS / f"{name}.yaml")).build(MODELS[name])
    for batch in (1, 2):
        total, recompute = calc_bytes(model, batch, mode)
        m = measure_checkpointed(model, batch, mode=mode)
        assert (total, recompute) == (m.bytes, m.recompute), (name, mode, batch, total, recompute, m)
        if mode == "full":
            assert m.units > 0
        # less than without checkpointing (selective recomputes attention only: the same for a CNN)
        none = saved_activations(analyze(model, batch=batch), device="cpu").bytes
        assert total == none if (mode, name) == ("selective", "resnet18") else total < none


def test_resnet18_full_checkpointing_figures():
    # resnet18 at batch 1: the units are layer1 … layer4. Held at the end of the forward pass:
    # 10,840,576 bytes (the stem and the head outside the units, and the four units' inputs);
    # the largest recompute is layer1's, 6,424,576 bytes, which counts its own output afresh
    # (kept by its last in-place ReLU, though the same values are layer2's held input): PyTorch's
    # recomputation makes new tensors.
    model = load_spec(str(SPECS / "resnet18.yaml")).build()
    m = measure_checkpointed(model, 1)
    assert (m.kept, m.recompute, m.units) == (10_840_576, 6_424_576, 4)
    s = saved_activations(analyze(model, batch=1), checkpointing="full", device="cpu")
    rows = [r for r in s.rows if r.kind.startswith("checkpoint")]
    assert [(r.name, r.kind) for r in rows] == [("layer1", "checkpoint input"), ("layer2", "checkpoint input"),
                                                ("layer3", "checkpoint input"), ("layer4", "checkpoint input"),
                                                ("layer1", "checkpoint recompute")]
    # layer1's own output, 64·56·56·4 = 802,816 bytes, is in its recompute figure
    assert rows[-1].bytes == 6_424_576 and 64 * 56 * 56 * 4 == 802_816


def test_selective_holds_the_packed_projection():
    # gpt2 (packed c_attn) at batch 2, L 64, d 64: the checkpointed core holds Q as a view of the
    # packed projection, all of Q, K, V: 2·64·3·64·4 = 98,304 bytes, where without
    # checkpointing the product's folded copy of Q, 2·64·64·4 = 32,768, is kept: 65,536 more per
    # layer than that copy, two layers
    model = load_spec(str(SPECS / "gpt2.yaml")).build(REDUCED["gpt2"])
    m = measure_checkpointed(model, 2, mode="selective")
    none = saved_activations(analyze(model, batch=2), device="cpu")
    probs = 2 * 4 * 64 * 64 * 4       # N·h·L·S·4 per layer, recomputed
    mask = 64 * 64                    # the causal mask, bool, recomputed
    assert m.bytes == none.bytes - 2 * (probs + mask) + 2 * 65_536
