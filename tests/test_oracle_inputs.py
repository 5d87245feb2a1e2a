"""Specs with several inputs (``inputs:``) against the PyTorch oracle: the module takes one tensor
per declared input, each known by its name, and ``calc verify`` (shapes, parameters, FLOPs and the
tool presets), ``calc verify --memory`` (saved activations) and the inference peak run on them.

Every expected number is PyTorch's (FlopCounterMode, the tools themselves, saved_tensors_hooks),
measured by the oracle on the spec's module; calc's count must equal it.
"""
from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from calc import analyze, load_spec, parse_spec  # noqa: E402
from calc.verify import verify  # noqa: E402
from conftest import SPECS  # noqa: E402

# Two image inputs, each through its own convolution, joined: every tool can count these layers.
TWO_IMAGES = """
    name: two
    inputs: {a: [3, 8, 8], b: [3, 8, 8]}
    layers:
      - conv2d: {out: 4, kernel: 3, padding: 1, name: ca}
      - conv2d: {out: 4, kernel: 3, padding: 1, from: b, name: cb}
      - concat: {from: ca, with: [cb], dim: 0}
      - relu
      - flatten
      - linear: {out: 5}"""

# The encoder–decoders at a reduced size (2 + 2 blocks, d 64, short sequences): the same layer
# types and structure as the published sizes; the full t5_small width is run below as well.
T5 = {"src": 12, "tgt": 7, "vocab": 100, "d": 64, "depth": 2, "decoder_depth": 2, "heads": 4, "d_kv": 16,
      "ffn": 96, "buckets": 8}


def model_of(text):
    return parse_spec(textwrap.dedent(text), "t.yaml").build()


@pytest.mark.parametrize("batch", [1, 2])
def test_two_inputs_agree_with_pytorch_and_every_tool(batch):
    v = verify(model_of(TWO_IMAGES), batch=batch)
    assert v.ok, [c for c in (*v.totals, *v.presets) if not c.ok]
    assert [leaf.name for leaf in v.leaves] == ["ca", "cb", "2", "3", "4", "5"]
    # the tools that are installed ran on the two tensors (a tuple; ptflops by keywords)
    ran = [c for c in v.presets if c.ok is not None]
    assert ran and all(c.ok for c in ran)


def test_the_module_takes_one_tensor_per_input_in_every_form():
    from calc.errors import OracleError
    from calc.oracle import build_module
    module = build_module(model_of(TWO_IMAGES))
    a, b = torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)
    with torch.no_grad():
        y = module(a, b)
        assert torch.equal(module((a, b)), y) and torch.equal(module(a=a, b=b), y)
        with pytest.raises(OracleError, match="takes 2 input tensor"):
            module(a)


@pytest.mark.parametrize("name", ["t5_small", "flan_t5_base"])
@pytest.mark.parametrize("batch", [1, 2])
def test_t5_reduced_agrees_with_pytorch(name, batch):
    model = load_spec(str(SPECS / f"{name}.yaml")).build(T5)
    v = verify(model, batch=batch)
    assert v.ok, [c for c in v.totals if not c.ok] + [leaf for leaf in v.leaves if not leaf.ok]
    # the decoder reads the encoder's output through every cross attention
    assert sum(leaf.name.endswith("EncDecAttention") for leaf in v.leaves) == 2


@pytest.mark.parametrize("name", ["t5_small", "flan_t5_base"])
@pytest.mark.parametrize("batch", [1, 2])
def test_t5_reduced_saves_what_pytorch_saves(name, batch):
    from calc.memory.verify import verify_memory
    v = verify_memory(load_spec(str(SPECS / f"{name}.yaml")).build(T5), batch=batch)
    assert v.ok, [leaf for leaf in v.leaves if not leaf.ok]
    # the bucket table's lookup keeps its int64 index of L × S relative positions once per stack:
    # encoder 12 × 12, decoder 7 × 7, 8 B each
    tables = [leaf for leaf in v.leaves if leaf.name in ("encoder.0.SelfAttention", "decoder.1.SelfAttention")]
    assert len(tables) == 2


@pytest.mark.slow
def test_t5_small_full_width_agrees_with_pytorch():
    # every published dimension of t5-small (60,506,624 parameters), sequences 64 and 32
    model = load_spec(str(SPECS / "t5_small.yaml")).build({"src": 64, "tgt": 32})
    v = verify(model, batch=1)
    assert v.ok and v.totals[0].torch == 60_506_624
    from calc.memory.verify import verify_memory
    assert verify_memory(model, batch=1).ok


def test_relative_position_index_is_kept_by_the_table_layer_only():
    # one self-attention stack of two layers, the first holding the bucket table: its lookup
    # keeps the int64 index of L × S = 5 × 5 relative positions, 200 B; the second reuses the bias
    # and keeps what unscaled attention without a bias keeps (the scaling kept nothing anyway)
    text = """
        name: rb
        input: [5, 8]
        layers:
          - attention: {heads: 2, bias: false, scaled: false, rel_bias: true, rel_buckets: 4}
          - attention: {heads: 2, bias: false, scaled: false, rel_bias: true}
          - attention: {heads: 2, bias: false}"""
    from calc.memory import saved_activations
    from calc.oracle.memory import measure_saved
    model = model_of(text)
    for batch in (1, 2):
        rows = saved_activations(analyze(model, batch=batch), device="cpu").rows
        measured = measure_saved(model, batch=batch)
        assert [(r.name, r.kind, r.bytes) for r in rows] == list(measured.leaves)
        assert rows[0].bytes - rows[2].bytes == 5 * 5 * 8
        assert rows[1].bytes == rows[2].bytes
