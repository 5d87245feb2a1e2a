"""Sequence layers one by one: token inputs, embeddings, tying, attention variants, token
handling, RMS norm and a gated MLP. Every expected number is derived beside it."""
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calc.cli import main
from calc.errors import ShapeError, SpecError
from calc.layers import LAYERS
from calc.shapes import Tokens
from conftest import SPECS
from helpers import leaves, run_text

TOKENS = """
name: t
input: [{seq}]
input_kind: tokens
layers:
{layers}
"""


def tokens(layers: str, seq: int = 10, **kw):
    body = "\n".join("  " + line for line in layers.strip().splitlines())
    return run_text(TOKENS.format(seq=seq, layers=body), **kw)


# ---------------------------------------------------------------------------- token inputs

def test_token_input_and_embedding():
    a = tokens("- embedding: {vocab: 100, dim: 16}")
    (emb,) = leaves(a)
    assert isinstance(a.input_shape, Tokens) and a.input_shape == (10,)
    assert emb.output_shape == (10, 16)
    assert emb.params == 100 * 16 and emb.macs == 0
    assert emb.facts["lookups"] == 10


def test_values_input_is_unchanged():
    a = run_text("name: t\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3}\n")
    assert not isinstance(a.input_shape, Tokens) and a.model.input_kind == "values"


@pytest.mark.parametrize("text, fragment", [
    ("name: t\ninput: [10]\ninput_kind: tokens\nlayers:\n  - linear: {out: 4}\n",
     "linear cannot take token ids (10 tokens)"),
    ("name: t\ninput: [10, 8]\nlayers:\n  - embedding: {vocab: 5, dim: 4}\n",
     "embedding reads token ids, but its input 10×8 holds values"),
    ("name: t\ninput: [10]\ninput_kind: tokens\nlayers:\n  - embedding: {vocab: 5, dim: 4}\n"
     "  - embedding: {vocab: 5, dim: 4}\n", "embedding reads token ids"),
    ("name: t\ninput: [10]\ninput_kind: tokens\nlayers:\n  - residual: {main: [identity]}\n",
     "cannot take token ids"),
])
def test_token_misuse_is_an_error(text, fragment):
    with pytest.raises(ShapeError, match=re.escape(fragment)):
        run_text(text)


def test_input_kind_must_be_known():
    with pytest.raises(SpecError, match="input_kind"):
        run_text("name: t\ninput: [10]\ninput_kind: ids\nlayers:\n  - identity\n")


def test_embedding_from_the_input_inside_a_branch():
    a = tokens("""
- embedding: {vocab: 50, dim: 8, name: a}
- embedding: {vocab: 50, dim: 8, from: input}
- add: {with: [a]}
""")
    assert a.output_shape == (10, 8) and a.totals.params == 2 * 50 * 8


# ---------------------------------------------------------------------------- tying

def test_tie_counts_shared_weights_once_and_ops_every_time():
    a = tokens("""
- embedding: {vocab: 100, dim: 16, name: wte}
- linear: {out: 100, bias: false, tie: wte, name: head}
""")
    emb, head = leaves(a)
    assert head.tied_to == "wte" and head.weights == 0 and head.params == 0
    assert a.totals.params == 100 * 16                       # the table, once
    assert head.macs == 10 * 16 * 100                        # L · D · V, as untied
    assert a.totals.param_bytes == 4 * 100 * 16


def test_tied_layer_keeps_its_own_bias():
    a = tokens("""
- embedding: {vocab: 100, dim: 16, name: wte}
- linear: {out: 100, tie: wte}
""")
    assert a.totals.params == 100 * 16 + 100 and a.totals.bias == 100


@pytest.mark.parametrize("layers, fragment", [
    ("- embedding: {vocab: 100, dim: 16, name: wte}\n- linear: {out: 99, tie: wte}",
     "weight of this linear is 99×16, that of 'wte' (embedding) is 100×16"),
    ("- embedding: {vocab: 100, dim: 16}\n- linear: {out: 100, tie: wte}", "no earlier layer named 'wte'"),
    ("- embedding: {vocab: 100, dim: 16, name: wte}\n- gelu: {tie: wte}", "gelu has no weight matrix"),
])
def test_tie_errors(layers, fragment):
    with pytest.raises(ShapeError, match=re.escape(fragment)):
        tokens(layers)


def test_tie_on_a_structure_is_a_spec_error():
    with pytest.raises(SpecError, match="tie applies to a single layer"):
        tokens("- embedding: {vocab: 10, dim: 4, name: e}\n- group: {layers: [identity], tie: e}")


def test_json_reports_tie_and_input_kind(capsys):
    code = main(["analyze", str(SPECS / "gpt2.yaml"), "--format", "json", "--input", "8"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["input_kind"] == "tokens" and doc["input_shape"] == [8]
    head = next(layer for layer in doc["layers"] if layer["name"] == "lm_head")
    assert head["tied_to"] == "wte" and head["params"] == 0
    assert all(layer["tied_to"] is None for layer in doc["layers"] if layer["name"] != "lm_head")
    assert doc["totals"]["params"] == 124_439_808


def test_cli_long_context_error_names_the_table(capsys):
    code = main(["analyze", str(SPECS / "gpt2.yaml"), "--input", "2048"])
    err = capsys.readouterr().err
    assert code == 2 and "pos_embedding" in err and "2048 positions" in err and "max_len=1024" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------- attention

SEQ = "name: t\ninput: [{n}, {d}]\nlayers:\n{layers}\n"


def seq(layers: str, n: int = 10, d: int = 64, **kw):
    body = "\n".join("  " + line for line in layers.strip().splitlines())
    return run_text(SEQ.format(n=n, d=d, layers=body), **kw)


def attention_counts(L, S, D, Dkv, h, g, d, out, bias=True, out_bias=True):
    """Independent statement of the attention formulas: per-projection params and MACs."""
    q = (D * h * d, h * d * bias, L * D * h * d)
    k = (Dkv * g * d, g * d * bias, S * Dkv * g * d)
    v = (Dkv * g * d, g * d * bias, S * Dkv * g * d)
    o = (h * d * out, out * out_bias, L * h * d * out)
    params = sum(w + b for w, b, _ in (q, k, v, o))
    macs = sum(m for *_, m in (q, k, v, o)) + 2 * h * L * S * d
    return params, macs


@pytest.mark.parametrize("args, h, g, d, out", [
    ("{heads: 8}", 8, 8, 8, 64),                                  # multi-head
    ("{heads: 8, kv_heads: 2}", 8, 2, 8, 64),                     # grouped-query
    ("{heads: 8, kv_heads: 1}", 8, 1, 8, 64),                     # multi-query
    ("{heads: 4, head_dim: 32, out: 48}", 4, 4, 32, 48),          # wider heads, other output
])
def test_self_attention_variants(args, h, g, d, out):
    a = seq(f"- attention: {args}")
    (r,) = leaves(a)
    params, macs = attention_counts(10, 10, 64, 64, h, g, d, out)
    assert (r.params, r.macs, r.output_shape) == (params, macs, (10, out))


def test_attention_without_biases_and_with_out_bias_only():
    (r,) = leaves(seq("- attention: {heads: 8, bias: false}"))
    assert r.bias == 0 and r.facts["bias_add"] == 0
    (r,) = leaves(seq("- attention: {heads: 8, bias: false, out_bias: true}"))
    assert r.bias == 64 and r.facts["bias_add"] == 10 * 64


def test_cross_attention_reads_keys_and_values_from_a_named_output():
    a = run_text("""
name: t
input: [7, 48]
layers:
  - linear: {out: 48, name: memory}
  - linear: {out: 64, from: input}
  - reshape: {shape: [14, 32]}
  - attention: {heads: 4, kv: memory}
""")
    r = leaves(a)[-1]
    params, macs = attention_counts(14, 7, 32, 48, 4, 4, 8, 32)
    assert (r.params, r.macs, r.output_shape) == (params, macs, (14, 32))
    assert r.facts["cross"] == 1 and r.facts["kv_len"] == 7


def test_attention_ops_breakdown_and_causal_facts():
    L, D, h = 6, 16, 2
    (full,) = leaves(seq("- attention: {heads: 2}", n=L, d=D))
    (causal,) = leaves(seq("- attention: {heads: 2, causal: true}", n=L, d=D))
    scores = h * L * L
    f = full.facts
    assert (f["exp"], f["div"], f["mul"]) == (scores, scores, scores)    # softmax and 1/√d per score
    assert f["add"] == h * L * (L - 1)
    assert f["bias_add"] == 4 * L * D
    assert f["attn_mac"] == 2 * scores * (D // h)
    # causal masking: the same MACs (dense kernels compute the full matrix), one mask add per
    # score, and the masked half reported as facts: L·(L − 1)/2 pairs per head are masked
    assert causal.macs == full.macs
    assert causal.facts["add"] == f["add"] + scores
    assert causal.facts["masked"] == h * L * (L - 1) // 2
    assert causal.facts["masked_mac"] == 2 * (D // h) * causal.facts["masked"]


@given(L=st.integers(1, 30), S=st.integers(1, 30))
def test_causal_visible_pairs_match_a_brute_force_mask(L, S):
    v = LAYERS["attention"](heads=1, causal=True, kv="m").values_many([(L, 4), (S, 4)])
    # PyTorch's is_causal mask is torch.ones(L, S).tril(): row i keeps columns 0..i
    assert v["visible"] == sum(1 for i in range(L) for j in range(S) if j <= i)
    assert v["masked"] == L * S - v["visible"]


def test_packed_projection_changes_no_count():
    (a,) = leaves(seq("- attention: {heads: 8}"))
    (b,) = leaves(seq("- attention: {heads: 8, packed: true}"))
    assert (a.params, a.macs) == (b.params, b.macs) and b.facts["packed"] == 1


@pytest.mark.parametrize("layers, fragment", [
    ("- attention: {heads: 5}", "64 features are not divisible by heads=5"),
    ("- attention: {heads: 8, kv_heads: 3}", "heads=8 is not a multiple of kv_heads=3"),
    ("- attention: {heads: 8, kv: nowhere}", "no earlier output named 'nowhere'"),
    ("- flatten\n- attention: {heads: 8}", "tokens × features"),
])
def test_attention_errors(layers, fragment):
    with pytest.raises(ShapeError, match=fragment):
        seq(layers)


# ---------------------------------------------------------------------------- tokens and images

def test_patch_embedding_round_trip():
    a = run_text("""
name: t
input: [3, 32, 32]
layers:
  - conv2d: {out: 24, kernel: 8, stride: 8}
  - to_tokens
  - class_token: {count: 2}
  - pos_embedding: {max_len: 18}
  - select_token: {index: -1}
""")
    conv, tok, cls, pos, sel = leaves(a)
    assert tok.output_shape == (16, 24) and cls.output_shape == (18, 24) and sel.output_shape == (24,)
    assert cls.params == 2 * 24 and pos.params == 18 * 24 and pos.facts["add"] == 18 * 24
    assert tok.macs == cls.macs == pos.macs == sel.macs == 0
    b = run_text("name: t\ninput: [3, 32, 32]\nlayers:\n  - conv2d: {out: 24, kernel: 8, stride: 8}\n"
                 "  - to_tokens\n  - to_image\n  - to_tokens\n  - to_image: {size: [2, 8]}\n")
    assert b.output_shape == (24, 2, 8)


@pytest.mark.parametrize("layers, fragment", [
    ("- to_tokens\n- to_image: {size: [3, 3]}", "holds 9 positions, not the 16 tokens"),
    ("- reshape: {shape: [8, 8]}\n- to_image", "8 tokens are not a square"),
    ("- to_tokens\n- select_token: {index: 16}", "index 16 is outside the 16 tokens"),
    ("- to_tokens\n- pos_embedding: {max_len: 15}", "16 positions but the table has max_len=15"),
])
def test_token_layer_errors(layers, fragment):
    body = "\n".join("  " + line for line in layers.splitlines())
    with pytest.raises(ShapeError, match=fragment):
        run_text(f"name: t\ninput: [4, 4, 4]\nlayers:\n{body}\n")


def test_token_mean_and_type_embedding():
    a = seq("- type_embedding: {types: 3}\n- token_mean", n=5, d=8)
    typ, mean = leaves(a)
    assert typ.params == 3 * 8 and typ.facts["add"] == 5 * 8
    assert mean.output_shape == (8,) and mean.facts["add"] == 4 * 8 and mean.facts["div"] == 8


def test_rmsnorm():
    (r,) = leaves(seq("- rmsnorm", n=5, d=8))
    # per token of n = 8: 8 squares + 8 γ multiplies, 7 adds + 1 (eps), 1 + 8 divisions, 1 sqrt
    assert r.params == 8 and r.bias == 0
    assert {k: r.facts[k] for k in ("mul", "add", "div", "sqrt")} == {"mul": 80, "add": 40, "div": 45, "sqrt": 5}
    (r,) = leaves(seq("- rmsnorm: {affine: false}", n=5, d=8))
    assert r.params == 0 and r.facts["mul"] == 40


def test_swiglu_mlp_with_parallel_branches():
    # Llama's MLP: down(silu(gate(x)) ⊙ up(x)), no biases
    a = seq("""
- parallel:
    join: mul
    branches:
      - [linear: {out: 172, bias: false}, silu]
      - [linear: {out: 172, bias: false}]
- linear: {out: 64, bias: false}
""", n=10, d=64)
    assert a.totals.params == 3 * 64 * 172
    assert a.totals.macs == 3 * 10 * 64 * 172
    join = next(r for r in leaves(a) if r.kind == "mul")
    assert join.facts["mul"] == 10 * 172


def test_layers_catalog_lists_the_sequence_types(capsys):
    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    for name in ("embedding", "pos_embedding", "type_embedding", "class_token", "to_tokens", "to_image",
                 "select_token", "token_mean", "attention", "rmsnorm", "rnn", "lstm", "gru"):
        assert f"\n{name}  [" in "\n" + out
    assert "tie" in out.splitlines()[-1]
    assert set(LAYERS) >= {"attention", "lstm"}


@given(L=st.integers(1, 12), S=st.integers(1, 12), Dkv=st.integers(1, 24), g=st.integers(1, 4),
       group=st.integers(1, 3), d=st.integers(1, 8), out=st.integers(1, 24), bias=st.booleans(),
       out_bias=st.booleans(), cross=st.booleans())
def test_attention_matches_the_per_projection_statement(L, S, Dkv, g, group, d, out, bias, out_bias, cross):
    h = g * group
    D = h * d
    layer = LAYERS["attention"](heads=h, kv_heads=g, out=out, bias=bias, out_bias=out_bias,
                                kv="m" if cross else None)
    shapes = [(L, D), (S, Dkv)] if cross else [(L, D)]
    S_, Dkv_ = (S, Dkv) if cross else (L, D)
    params, macs = attention_counts(L, S_, D, Dkv_, h, g, d, out, bias, out_bias)
    assert layer.params_many(shapes).total == params
    assert layer.ops_many(shapes, None)["mac"] == macs
    assert layer.infer_many(shapes) == (L, out)
