"""Transformers: ViT-B/16, GPT-2 small and BERT-base, with every expected number derived here."""
import pytest

from calc.errors import ShapeError
from helpers import leaves, run_spec
from reference_data import PUBLISHED, REFERENCE

# The reference data's vit_b_16.torch_by_op (FlopCounterMode FLOPs, 2 per MAC, grad on; see
# reference_data.py): the convolution and the addmm (every Linear) it saw.
VIT_TORCH_BY_OP = REFERENCE["vit_b_16"]["torch_by_op"]


def attention_matmul_macs(analysis):
    """MACs of Q·Kᵀ and attention·V over the model (the `attn_mac` fact of every attention)."""
    return sum(r.facts["attn_mac"] for r in leaves(analysis) if r.kind == "attention")


# ---------------------------------------------------------------------------- ViT-B/16

def test_vit_b_16_parameters():
    a = run_spec("vit_b_16")
    d, mlp, layers, n = 768, 3072, 12, 197
    conv = 768 * 3 * 16 * 16 + 768                      # patch convolution and its bias
    per_layer = (2 * d                                   # ln_1
                 + 4 * d * d + 4 * d                     # in_proj (3·d·d + 3·d) and out_proj (d·d + d)
                 + 2 * d                                 # ln_2
                 + d * mlp + mlp + mlp * d + d)          # MLP
    expected = conv + d + n * d + layers * per_layer + 2 * d + (d * 1000 + 1000)
    assert per_layer == 7_087_872
    assert a.totals.params == expected == 86_567_656 == REFERENCE["vit_b_16"]["params_total"]
    assert a.totals.buffers == 0


def test_vit_b_16_standard_macs():
    a = run_spec("vit_b_16")
    d, mlp, layers, n, heads = 768, 3072, 12, 197, 12
    patch_conv = 768 * (14 * 14) * 3 * 16 * 16           # C_out · H·W · C_in · k²
    projections = n * d * 3 * d + n * d * d               # packed Q/K/V, out projection
    attn = 2 * heads * n * n * (d // heads)              # Q·Kᵀ and attention·V, h·L·S·d each
    mlp_macs = n * d * mlp + n * mlp * d
    head = d * 1000
    assert attn == 59_610_624
    expected = patch_conv + layers * (projections + attn + mlp_macs) + head
    assert a.totals.macs == expected == 17_563_828_224
    assert a.totals.flops == 2 * expected
    assert attention_matmul_macs(a) == layers * attn == 715_327_488
    # torchvision publishes 17.564 GFLOPS (its "_ops" in vision_transformer.py), i.e. these MACs.
    assert round(a.totals.macs / 1e9, 3) == 17.564 == PUBLISHED["vit_b_16"]["weights"]["IMAGENET1K_V1"]["_ops"]
    # PyTorch's CPU FlopCounterMode sees the convolution and the Linears, not the attention
    # matmuls (SDPA has no CPU formula; docs/conventions.md §8): its figure is 2 × (the rest).
    # Note: the issue and the reference note on the tools (shared/reference/CONVENTIONS.md §7)
    # quote 17,563,527,168, from 12·2·197·197·768 mis-added as 715,026,432; the product is
    # 715,327,488, and torch.bmm under FlopCounterMode (nn.MultiheadAttention with
    # need_weights=True) confirms 2·59,610,624 FLOPs per block.
    rest = a.totals.macs - attention_matmul_macs(a)
    assert 2 * rest == REFERENCE["vit_b_16"]["torch_flops"] == sum(VIT_TORCH_BY_OP.values())
    conv_row = next(r for r in leaves(a) if r.kind == "conv2d")
    assert 2 * conv_row.macs == VIT_TORCH_BY_OP["aten.convolution"]


def test_vit_b_16_shapes():
    a = run_spec("vit_b_16")
    rows = {row.name: row.result for row in a.rows()}
    assert rows["conv_proj"].output_shape == (768, 14, 14)
    assert rows["1"].output_shape == (196, 768)               # to_tokens
    assert rows["class_token"].output_shape == (197, 768)
    assert rows["encoder"].output_shape == (197, 768)
    assert rows["4"].output_shape == (768,)                   # select_token
    assert [1, *a.output_shape] == REFERENCE["vit_b_16"]["output_shape"]


def test_vit_other_image_size_needs_the_position_table_to_follow():
    with pytest.raises(ShapeError, match="577 positions but the table has max_len=197"):
        run_spec("vit_b_16", input_shape=(3, 384, 384))
    a = run_spec("vit_b_16", input_shape=(3, 384, 384), set={"image": 384})
    # 24·24 patches + the class token; the table grows by (577 − 197)·768
    assert a.output_shape == (1000,)
    assert a.totals.params == 86_567_656 + (577 - 197) * 768


# ---------------------------------------------------------------------------- GPT-2

def test_gpt2_parameters_with_tied_head():
    a = run_spec("gpt2")
    d, v, ctx, layers = 768, 50257, 1024, 12
    per_layer = (2 * d + (d * 3 * d + 3 * d) + (d * d + d)        # ln_1, c_attn, attn c_proj
                 + 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d))  # ln_2, c_fc, mlp c_proj
    expected = v * d + ctx * d + layers * per_layer + 2 * d      # wte, wpe, blocks, ln_f; lm_head tied
    assert a.totals.params == expected == 124_439_808
    head = next(row for row in a.rows() if row.name == "lm_head").result
    assert head.tied_to == "wte" and head.params == 0
    # the tied head still uses the whole V × D matrix at every position
    assert head.macs == ctx * d * v
    assert head.facts["weights"] == v * d and head.facts["tied"] == 1


def test_gpt2_forward_flops_per_token_against_kaplan():
    a = run_spec("gpt2")
    d, v, n_ctx, n_layer = 768, 50257, 1024, 12
    # standard, per token, by hand: the four attention projections and the MLP, 12·d² MACs per
    # layer; both attention matmuls at full length (2·n_ctx·d per layer: causal masking is not
    # discounted, a dense kernel computes the whole matrix); the tied LM head d·V; embeddings and
    # positions are lookups and adds, not MACs; biases, norms, GELU and softmax are not MACs.
    proj = n_layer * 12 * d * d
    attn = n_layer * 2 * n_ctx * d
    head = d * v
    flops_per_token = 2 * (proj + attn + head)
    assert flops_per_token == 284_812_800
    assert a.totals.flops == n_ctx * flops_per_token

    # Kaplan et al. 2020, Table 1: C_forward ≈ 2·N + 2·n_layer·n_ctx·d_attn per token, with N the
    # non-embedding parameters 2·d·n_layer·(2·d_attn + d_ff) = 12·n_layer·d² (no biases or norms).
    n_params = 2 * d * n_layer * (2 * d + 4 * d)
    kaplan = 2 * n_params + 2 * n_layer * n_ctx * d
    assert n_params == proj == 84_934_656 and kaplan == 188_743_680
    # The difference, term by term:
    # * the LM head: Kaplan's N leaves out the (tied) embedding matrix, so the unembedding matmul
    #   2·d·V per token is missing there; calc counts the tied head as a full matmul;
    # * attention: Kaplan's 2·n_layer·n_ctx·d is half of the two matmuls' 4·n_layer·n_ctx·d, i.e. it
    #   averages over a causal mask; calc counts the full matrices (a causal count of the visible
    #   pairs, d·L·(L+1) MACs per layer, would be 2·n_layer·(n_ctx + 1)·d FLOPs per token);
    # * embeddings: Kaplan's 4·d per token for the lookups is dropped from its total, and calc counts
    #   no MAC for them.
    assert flops_per_token - kaplan == 2 * d * v + 2 * n_layer * n_ctx * d == 96_069_120
    attention_row = next(r for r in leaves(a) if r.kind == "attention")
    assert attention_row.facts["masked_mac"] == 2 * (d // 12) * 12 * (n_ctx * (n_ctx - 1) // 2)
    causal_attn = attn * n_ctx - n_layer * attention_row.facts["masked_mac"]
    assert 2 * causal_attn == n_ctx * 2 * n_layer * (n_ctx + 1) * d


def split(analysis):
    attn = attention_matmul_macs(analysis)
    return attn, analysis.totals.macs - attn


def test_gpt2_longer_context_scales_attention_quadratically():
    with pytest.raises(ShapeError, match="2048 positions but the table has max_len=1024"):
        run_spec("gpt2", input_shape=(2048,))
    base = run_spec("gpt2")
    long = run_spec("gpt2", input_shape=(2048,), set={"n_ctx": 2048})
    attn1, rest1 = split(base)
    attn2, rest2 = split(long)
    assert attn2 == 4 * attn1 and rest2 == 2 * rest1
    # the same with the context variable alone (the input is [n_ctx])
    assert split(run_spec("gpt2", set={"n_ctx": 2048})) == (attn2, rest2)
    # a shorter prompt fits the 1,024-position table: no parameter changes
    short = run_spec("gpt2", input_shape=(512,))
    assert split(short) == (attn1 // 4, rest1 // 2)
    assert short.totals.params == base.totals.params
    assert long.totals.params == base.totals.params + 1024 * 768     # wpe grows


# ---------------------------------------------------------------------------- BERT-base

def test_bert_base_parameters():
    a = run_spec("bert_base")
    d, mlp, layers = 768, 3072, 12
    embeddings = 30522 * d + 512 * d + 2 * d + 2 * d              # words, positions, types, LayerNorm
    per_layer = 4 * d * d + 4 * d + 2 * d + d * mlp + mlp + mlp * d + d + 2 * d
    pooler = d * d + d
    assert a.totals.params == embeddings + layers * per_layer + pooler == 109_482_240
    assert a.output_shape == (768,)


def test_bert_base_macs_at_128_tokens():
    a = run_spec("bert_base", input_shape=(128,))
    d, mlp, layers, n = 768, 3072, 12, 128
    per_layer = 4 * n * d * d + 2 * n * n * d + 2 * n * d * mlp
    assert a.totals.macs == layers * per_layer + d * d
    assert a.totals.params == 109_482_240


# ---------------------------------------------------------------------------- the tools on ViT

def ptflops_mha(f):
    """ptflops' multihead_attention_counter_hook, per sample (docs/conventions.md §5.5), from the
    facts; kd = vd = the key/value feature size (PyTorch's kdim/vdim)."""
    L, S, E, h, vd = f["q_len"], f["kv_len"], f["dim"], f["heads"], f["kv_dim"]
    return (L * E + L * E * E + S * vd * vd + S * vd * vd + (L + 2 * S) * E * f["qkv_bias"]
            + h * (L * S * E // h + L * S + L * S * vd // h) + L * vd * (vd + 1))


# How each tool counts the layer kinds of torchvision's ViT (docs/conventions.md §4-§9): the
# residual adds, positional embedding and class token are Python operators or raw parameters,
# which no tool counts; nn.MultiheadAttention runs F.multi_head_attention_forward with need_weights=False,
# so the attention matmuls go through SDPA, which no tool counts on CPU; its out_proj is a
# NonDynamicallyQuantizableLinear that is never called.
VIT_TOOL_RULES = {
    "thop_macs": {"conv2d": lambda f: f["mac"], "linear": lambda f: f["mac"],
                  "layernorm": lambda f: 4 * f["in"]},
    "ptflops_pytorch_macs": {"conv2d": lambda f: f["mac"] + f["bias_add"],
                             "linear": lambda f: f["mac"] + f["bias_add"],
                             "layernorm": lambda f: f["in"],              # no `affine` attribute
                             "gelu": lambda f: f["out"] + f["in"],        # module hook + F.gelu
                             "attention": ptflops_mha},
    "ptflops_aten_macs": {"conv2d": lambda f: f["mac"] + f["bias_add"],
                          "linear": lambda f: f["mac"] + f["bias_add"],   # addmm, contiguous input
                          "attention": lambda f: f["proj_mac"] + f["bias_add"]},
    "fvcore_flops": {"conv2d": lambda f: f["mac"], "linear": lambda f: f["mac"],
                     "layernorm": lambda f: 5 * f["in"], "attention": lambda f: f["proj_mac"]},
    "torch_flops": {"conv2d": lambda f: 2 * f["mac"], "linear": lambda f: 2 * f["mac"],
                    "attention": lambda f: 2 * f["proj_mac"]},
    # torchinfo: conv (#w + #b)·S_out; Linear and LayerNorm: #params × the batch dimension only
    "torchinfo_mult_adds": {"conv2d": lambda f: f["mac"] + f["bias_add"],
                            "linear": lambda f: f["params"], "layernorm": lambda f: f["params"]},
}


@pytest.mark.parametrize("tool", sorted(VIT_TOOL_RULES))
def test_vit_facts_rebuild_every_tools_recorded_figure(tool):
    """The per-layer facts are enough for each tool's figure: a later convention preset needs
    only these rules."""
    a = run_spec("vit_b_16")
    rules = VIT_TOOL_RULES[tool]
    total = sum(rules[r.kind](r.facts) for r in leaves(a) if r.kind in rules)
    assert total == REFERENCE["vit_b_16"][tool]


def test_ptflops_mha_block_figure():
    # docs/conventions.md §5.5: one ViT-B/16 encoder block gives 525,614,124.
    a = run_spec("vit_b_16")
    attention = next(r for r in leaves(a) if r.kind == "attention")
    assert ptflops_mha(attention.facts) == 525_614_124
