"""Multi-head attention, with cases derived by hand: output shape, parameters, every elementary
operation and the facts the conventions read (the derivation beside each number)."""
import pytest

from calc.render.catalog import describe_layers
from calc.formula import render
from calc.layers import LAYERS, Params
from helpers import leaves, run_text


def evaluate(shapes, **args):
    layer = LAYERS["attention"](**args)
    out, params, ops = layer.evaluate_many(shapes) if len(shapes) > 1 else layer.evaluate(shapes[0])
    # the slow path (the full symbol table, used by explain) agrees with the fast one
    assert (layer.infer_many(shapes), layer.params_many(shapes), layer.ops_many(shapes, out)) == (out, params, ops)
    return out, params, ops


def test_self_attention_vit_b():
    # ViT-B/16's attention: 197 tokens of 768 features, 12 heads of d = 768/12 = 64
    out, p, ops = evaluate([(197, 768)], heads=12)
    assert out == (197, 768)
    # W_q, W_k, W_v and the output projection are each 768 × 768 (= nn.MultiheadAttention(768, 12)'s
    # in_proj_weight 3·768·768 + out_proj.weight 768·768); biases 3·768 + 768
    assert p == Params(4 * 768 * 768, 4 * 768)                 # 2,359,296 + 3,072
    assert ops["proj_mac"] == 4 * 197 * 768 * 768             # 197 rows × 4 projections of 768·768 = 464,781,312
    scores = 12 * 197 * 197                                   # a 197 × 197 score matrix per head = 465,708
    assert ops["scores"] == scores
    assert ops["attn_mac"] == 2 * scores * 64                 # Q·Kᵀ and attention·V, 64 MACs per score = 59,610,624
    assert ops["mac"] == 464_781_312 + 59_610_624 == 524_391_936
    # one accumulator per output element: Q, K, V and out (197·768 each), the scores, attention·V (197·768)
    assert ops["dots"] == 5 * 197 * 768 + scores == 1_222_188
    assert ops["bias_add"] == 4 * 197 * 768                   # 605,184
    # 1/√d scaling, softmax exp and div once per score; the softmax sums 196 adds per row of 197
    assert ops["mul"] == ops["exp"] == ops["div"] == scores
    assert ops["add"] == 12 * 197 * 196                       # 463,344, no causal mask
    assert ops["masked"] == ops["masked_mac"] == ops["visible"] == 0
    assert {k: ops[k] for k in ("q_len", "kv_len", "dim", "kv_dim", "heads", "kv_heads", "head_dim", "out_dim",
                                "rows", "causal", "cross", "packed", "qkv_bias", "has_out_bias")} == {
        "q_len": 197, "kv_len": 197, "dim": 768, "kv_dim": 768, "heads": 12, "kv_heads": 12, "head_dim": 64,
        "out_dim": 768, "rows": 12 * 197, "causal": 0, "cross": 0, "packed": 0, "qkv_bias": 1, "has_out_bias": 1}


def test_cross_grouped_query_causal():
    # 6 queries of 16 features attend to 4 keys/values of 10 features: 4 query heads of d = 8 sharing
    # 2 key/value heads, 12 output features, no output bias, causal
    out, p, ops = evaluate([(6, 16), (4, 10)], heads=4, kv_heads=2, head_dim=8, out=12, out_bias=False,
                           causal=True, kv="memory")
    assert out == (6, 12)
    # W_q 16·(4·8) = 512, W_k and W_v 2·10·(2·8) = 320, output 32·12 = 384; biases b_q 32, b_k and b_v 2·16
    assert p == Params(512 + 320 + 384, 32 + 32)               # 1,216 + 64
    # Q: 6 rows × 512, K and V: 4 rows × 320, output: 6 rows × 384
    assert ops["proj_mac"] == 6 * 512 + 4 * 320 + 6 * 384 == 6_656
    assert ops["scores"] == 4 * 6 * 4                           # 96
    assert ops["attn_mac"] == 2 * 96 * 8 == 1_536               # the causal mask removes no MAC
    assert ops["mac"] == 8_192
    # Q 6·32, K and V 2·4·16, out 6·12, the 96 scores, attention·V 6·32
    assert ops["dots"] == 192 + 128 + 72 + 96 + 192 == 680
    assert ops["bias_add"] == 6 * 32 + 2 * 4 * 16 == 320        # no output bias
    # softmax sums 4·6·(4 − 1) = 72, plus the mask added to all 96 scores
    assert ops["add"] == 72 + 96
    assert ops["mul"] == ops["exp"] == ops["div"] == 96
    # top-left causal mask, 6 queries > 4 keys: query i keeps min(i + 1, 4) keys: 1+2+3+4+4+4 = 18 of 24
    assert ops["visible"] == 18
    assert ops["masked"] == 4 * (24 - 18) == 24                # over the 4 heads
    assert ops["masked_mac"] == 2 * 8 * 24 == 384               # Q·Kᵀ and attention·V, d = 8 each
    assert (ops["cross"], ops["kv_len"], ops["kv_dim"], ops["kv_heads"], ops["has_out_bias"]) == (1, 4, 10, 2, 0)


def test_no_bias_and_multi_query_in_a_spec():
    a = run_text("""
        name: t
        input: [5, 8]
        layers:
          - linear: {out: 8, name: memory}
          - attention: {heads: 4, kv_heads: 1, bias: false, kv: memory}
    """)
    _, att = leaves(a)
    # d = 8/4 = 2; W_q 8·8, W_k and W_v 2·8·(1·2), output 8·8; no bias anywhere (out_bias follows bias)
    assert (att.weights, att.bias) == (64 + 32 + 64, 0)
    assert att.facts["bias_add"] == 0 and att.facts["cross"] == 1
    # 5 rows × 64 for Q and the output, 5 rows × 32 for K and V; 4 heads · 5 · 5 = 100 scores × 2 × d = 2
    assert att.facts["mac"] == 5 * 64 * 2 + 5 * 32 + 2 * 100 * 2 == 1_200


@pytest.mark.parametrize("args, shapes, fragment", [
    ({"heads": 5}, [(4, 64)], "64 features are not divisible by heads=5"),
    ({"heads": 8, "kv_heads": 3}, [(4, 64)], "heads=8 is not a multiple of kv_heads=3"),
    ({"heads": 2}, [(64,)], "the input must be tokens × features"),
    ({"heads": 2, "kv": "m"}, [(4, 64), (3,)], "key/value source 'm' must be tokens × features"),
    ({"heads": 2, "kv": "m"}, [(4, 64), (3, 2, 2)], "the input 4×64 and the key/value source 3×2×2 must have "
                                                   "the same leading dims"),
    ({"heads": 2, "causal": True}, [(3, 4, 64)], "causal masks, sliding windows and KV-cache contexts are "
                                                 "modelled on"),
])
def test_refusals_name_the_reason(args, shapes, fragment):
    layer = LAYERS["attention"](**args)
    with pytest.raises(ValueError, match=fragment):
        layer.evaluate_many(shapes) if len(shapes) > 1 else layer.evaluate(shapes[0])


def test_head_dim_given_overrides_d():
    # 3 heads of 5 features on 8-feature tokens (8 is not divisible by 3, so head_dim is needed)
    out, p, _ = evaluate([(2, 8)], heads=3, head_dim=5)
    assert out == (2, 8)
    assert p == Params(8 * 15 * 3 + 15 * 8, 3 * 15 + 8)       # W_q, W_k, W_v 8 × 15, out 15 × 8; 45 + 8 biases


def test_layers_text_is_the_declaration():
    text = describe_layers()
    block = text[text.index("attention  [attention]"):]
    block = block[:block.index("\n\n")]
    decl = {q.name: q for q in LAYERS["attention"].quantities}
    # calc layers prints the very templates the counts are compiled from
    assert f"    proj_mac: {render(decl['proj_mac'].expr, str)}" in block
    assert "    proj_mac: L·D·h·d + 2·T·D_kv·g·d + L·h·d·D_out" in block
    assert "    masked: h·(L·S − visible)   (if causal)" in block
    assert "    q_len: L   (a fact for conventions)" in block


# ---------------------------------------------------------------------------- LLM options

def test_sliding_window_keeps_the_last_w_keys_per_query():
    # 6 tokens, window 3, causal: query i sees min(i + 1, 3) keys: 1 + 2 + 3 + 3 + 3 + 3 = 15 of 36
    _, _, ops = evaluate([(6, 8)], heads=2, causal=True, window=3)
    assert ops["visible"] == 15 and ops["masked"] == 2 * (36 - 15)
    assert ops["scores"] == 2 * 36                 # the dense kernel computes them all
    assert ops["kv_cached"] == 3 and ops["kv_cache"] == 2 * 2 * 4 * 3   # a rolling cache of the window
    # a window at least as long as the sequence masks what plain causal attention masks
    _, _, wide = evaluate([(6, 8)], heads=2, causal=True, window=6)
    _, _, plain = evaluate([(6, 8)], heads=2, causal=True)
    assert wide["visible"] == plain["visible"] == 21


def test_window_and_context_decode_over_at_most_the_window():
    # decode at context 10 with window 4: the new token attends over the last 4 keys only
    _, _, ops = evaluate([(1, 8)], heads=2, causal=True, window=4, context=10)
    assert (ops["scores"], ops["visible"], ops["masked"], ops["kv_cached"]) == (8, 4, 0, 4)
    # continuing a cache with 3 new tokens over 7 keys: query i sees the 4 cached keys and i + 1 new ones
    _, _, ops = evaluate([(3, 8)], heads=2, causal=True, context=7)
    assert ops["visible"] == 5 + 6 + 7 and ops["scores"] == 2 * 3 * 7
    assert ops["proj_mac"] == 3 * 8 * 8 + 2 * 3 * 8 * 8 + 3 * 8 * 8   # K, V of the 3 new tokens only


def test_rotary_alibi_and_qk_norm_operations():
    # 5 tokens of 16, h = 4, g = 2, d = 4
    _, p0, base = evaluate([(5, 16)], heads=4, kv_heads=2)
    _, p1, rope = evaluate([(5, 16)], heads=4, kv_heads=2, rope=True)
    assert p1 == p0                                  # no parameters
    rotated = (5 * 4 + 5 * 2) * 4                    # query and key elements: 120
    assert rope["rotated"] == rotated
    assert rope["mul"] - base["mul"] == 2 * rotated and rope["add"] - base["add"] == rotated
    _, _, part = evaluate([(5, 16)], heads=4, kv_heads=2, rope=True, rope_dims=2)
    assert part["rotated"] == (5 * 4 + 5 * 2) * 2
    _, p2, alibi = evaluate([(5, 16)], heads=4, kv_heads=2, alibi=True)
    assert p2 == p0 and alibi["add"] - base["add"] == 4 * 5 * 5   # one add per score
    _, p3, qk = evaluate([(5, 16)], heads=4, kv_heads=2, qk_norm=True)
    assert p3.weights - p0.weights == 2 * 4          # γ of d = 4 for Q and for K
    groups = 5 * 4 + 5 * 2                           # 30 head vectors of 4
    # as calc's rmsnorm on groups of n = 4: 2n multiplies, n adds, n + 1 divisions, 1 sqrt
    assert (qk["mul"] - base["mul"], qk["add"] - base["add"], qk["div"] - base["div"], qk["sqrt"]) == (
        groups * 8, groups * 4, groups * 5, groups)
    assert (rope["rope"], alibi["alibi"], qk["qk_norm"], base["rope"] + base["alibi"] + base["qk_norm"]) == (1, 1, 1, 0)


@pytest.mark.parametrize("args, message", [
    ({"heads": 2, "window": 4}, "needs causal self attention"),
    ({"heads": 2, "causal": True, "context": 2}, "shorter than the 3 new tokens"),
    ({"heads": 2, "causal": True, "window": 2, "context": 5}, "one token at a time"),
    ({"heads": 2, "rope_dims": 2}, "rope_dims needs rope"),
    ({"heads": 2, "rope": True, "rope_dims": 3}, "must be even"),
])
def test_llm_options_refuse_what_they_cannot_mean(args, message):
    with pytest.raises(ValueError, match=message):
        evaluate([(3, 8)], **args)


def test_attention_over_groups_of_tokens():
    # Swin-T's first window attention as one layer: 64 windows of 49 tokens of 96 features, 3 heads
    # (d = 32), each window attending within itself. Parameters as one window's: 4·96·96 weights,
    # 4·96 biases. MACs: the projections on all 64·49 = 3,136 tokens, 4·3136·96·96 = 115,605,504,
    # and per window and head 49·49 scores × 2·32: 64·3·2401·64 = 29,503,488; in all 145,108,992,
    # 64 × one window's 2,267,328 (as specs/swin_t.yaml's attention from primitives counts them,
    # less its relative position bias).
    layer = LAYERS["attention"](heads=3)
    out, params, ops = layer.evaluate((64, 49, 96))
    assert out == (64, 49, 96) and params == Params(weights=36_864, bias=384)
    assert ops["mac"] == 115_605_504 + 29_503_488 == 145_108_992 == 64 * layer.evaluate((49, 96))[2]["mac"]
    assert ops["scores"] == 64 * 3 * 49 * 49 and ops["groups"] == 64
    # two leading dims (grid partitions × windows) are B = 2·3 groups
    assert layer.evaluate((2, 3, 49, 96))[2]["mac"] == 6 * 2_267_328


def test_tool_presets_refuse_groups_of_tokens():
    from calc import analyze, parse_spec
    from calc.errors import ConventionError
    model = parse_spec("name: g\ninput: [4, 5, 8]\nlayers: [{attention: {heads: 2}}]\n").build()
    assert analyze(model).totals.macs > 0
    with pytest.raises(ConventionError, match="groups of tokens"):
        analyze(model, convention="thop")
