"""Activation memory without PyTorch: saved-for-backward bytes and the inference peak on small
models, each expected number derived by hand beside it (the same numbers are checked against
PyTorch itself in tests/test_memory_oracle.py)."""
from __future__ import annotations

import textwrap

import pytest

from calc import analyze, parse_spec
from calc.errors import CalcError, SpecError
from calc.layers import LAYERS
from calc.memory import inference_peak, saved_activations
from calc.memory.saved import RULES


def analysis(text: str, batch: int = 1, dtype: str = "fp32"):
    return analyze(parse_spec("name: t\n" + textwrap.dedent(text), "t.yaml").build(), batch=batch, dtype=dtype)


CNN = """
    input: [3, 8, 8]
    layers: [{conv2d: {out: 4, kernel: 3}}, batchnorm2d, RELU, {maxpool2d: {kernel: 2}}, flatten,
             {linear: {out: 5}}]"""


def cnn(batch=2, dtype="fp32", inplace=False):
    return analysis(CNN.replace("RELU", "{relu: {inplace: true}}" if inplace else "relu"), batch, dtype)


def test_small_cnn_saved_bytes_by_hand():
    # batch 2, fp32. conv 3×8×8 → 4×6×6; pool → 4×3×3; flatten 36; linear 5.
    # conv keeps its input x: 2·3·8·8·4 = 1536
    # batch norm keeps its input (conv out) 2·4·6·6·4 = 1152 and mean, invstd 4·4 each = 32
    # ReLU keeps its output: 1152
    # max pool keeps its input (the ReLU output, kept already: 0) and int64 indices 2·4·3·3·8 = 576
    # flatten is a view; linear keeps its input, the pooled map: 2·36·4 = 288
    s = saved_activations(cnn())
    assert [(r.name, r.kind, r.bytes) for r in s.rows] == [
        ("0", "conv2d", 1536), ("1", "batchnorm2d", 1184), ("2", "relu", 1152), ("3", "maxpool2d", 576),
        ("4", "flatten", 0), ("5", "linear", 288)]
    assert s.bytes == 1536 + 1184 + 1152 + 576 + 288 == 4736


def test_half_precision_halves_values_not_indices():
    # bf16 on the CPU: x 768; conv out 576 + mean, invstd 8 + 8; ReLU out 576; indices still 576
    # (int64); linear input 144
    a = cnn(dtype="bf16")
    assert saved_activations(a, dtype="bf16", device="cpu").bytes == 768 + 592 + 576 + 576 + 144 == 2656
    # on CUDA the batch norm's statistics stay fp32: 4·4 each, 16 more bytes
    assert saved_activations(a, dtype="bf16").bytes == 2656 + 16


def test_inplace_relu_keeps_the_batch_norm_output_instead():
    # In place, the ReLU keeps its result, which is the batch norm's output storage: the same
    # 1152 bytes (the batch norm's own output is no longer a separate storage).
    assert saved_activations(cnn(inplace=True)).bytes == 4736


def test_small_cnn_inference_peak_by_hand():
    # live while each layer runs (batch 2, fp32):
    # conv: x 1536 + its output 1152 = 2688
    # bn: conv out 1152 + bn out 1152 = 2304;  relu: bn out + relu out = 2304
    # maxpool: relu out 1152 + pooled 288 + int64 indices 576 (computed while it runs) = 2016
    # flatten: pooled 288 (a view);  linear: 288 + its output 2·5·4 = 40 → 328
    p = inference_peak(cnn())
    assert [r.bytes for r in p.rows] == [2688, 2304, 2304, 2016, 288, 328]
    assert (p.bytes, p.where) == (2688, "0")


def test_inplace_relu_lowers_the_peak_where_it_runs():
    # in place, the ReLU adds no storage: bn out 1152 only; the pool then reads that storage
    p = inference_peak(cnn(inplace=True))
    assert [r.bytes for r in p.rows] == [2688, 2304, 1152, 2016, 288, 328]


REPEAT = """
    input: [8]
    layers:
      - linear: {out: 8}
      - repeat: {times: 3, layers: [{linear: {out: 8}}, relu, {linear: {out: 8}}, relu]}"""


def test_repeat_shares_the_storage_between_iterations():
    # batch 1, fp32, every tensor 8·4 = 32 bytes. The first linear keeps x (32). Each iteration:
    # its first linear keeps its input (the previous output, kept already except the first
    # linear's output: 32), ReLU a keeps its output (32, also the second linear's input), ReLU b
    # keeps its output (32, the next iteration's input).
    s = saved_activations(analysis(REPEAT))
    assert s.bytes == 32 + 32 + 3 * (32 + 32) == 256


def test_full_checkpointing_keeps_unit_inputs_and_one_recompute():
    # Each repeat iteration is a unit. Outside: the first linear keeps x (32). Units keep their
    # inputs: the first linear's output and ReLU b of iterations 1 and 2 (3·32 = 96). Recomputing
    # one unit during backward: iteration 3 keeps ReLU a and ReLU b (64; its input is kept
    # already), more than iterations 1 and 2 (ReLU a only: 32).
    s = saved_activations(analysis(REPEAT), checkpointing="full")
    assert s.bytes == 32 + 96 + 64 == 192
    kinds = [r.kind for r in s.rows if r.kind.startswith("checkpoint")]
    assert kinds == ["checkpoint input"] * 3 + ["checkpoint recompute"]


def test_full_checkpointing_without_units_changes_nothing():
    s = saved_activations(cnn(), checkpointing="full")
    assert s.bytes == 4736 and "nothing to checkpoint" in s.notes[0]


ATTENTION = """
    input: [4, 8]
    layers: [{attention: {heads: 2, causal: true}}]"""


def test_eager_attention_by_hand():
    # batch 2, L = S = 4, D = 8, h = 2, d = 4, fp32; every (N, L, h·d) tensor 2·4·8·4 = 256 bytes.
    # kept: x (for the projections) 256; Q copied for the batched matmul 256; K and V repeated to
    # h heads 256 each; probabilities N·h·L·S·4 = 2·2·4·4·4 = 256; the causal mask L·S bool = 16;
    # the merged heads (the output projection's input) 256.
    a = analysis(ATTENTION, batch=2)
    assert saved_activations(a).bytes == 256 * 6 + 16 == 1552
    # selective recomputation (Korthikanti et al.): probabilities and mask recomputed
    assert saved_activations(a, checkpointing="selective").bytes == 1552 - 256 - 16 == 1280


def test_fused_attention_by_hand():
    # sdpa: x 256; Q, K, V (the projections) 256 each; fp32 log-sum-exp N·h·L·4 = 64; the output
    # 256 (merging its heads is a view)
    a = analysis(ATTENTION, batch=2)
    assert saved_activations(a, attention="sdpa").bytes == 256 * 5 + 64 == 1344
    # the spec can say it per layer
    spec = ATTENTION.replace("causal: true", "causal: true, impl: sdpa")
    assert saved_activations(analysis(spec, batch=2)).bytes == 1344


def test_eager_attention_peak_follows_its_operations():
    # Operation by operation, each tensor freed after its last use (x, the model's input, is read
    # by the projections only); every (N, L, h·d) tensor and every N·h·L·S score tensor 256 bytes,
    # the causal mask L·S bool 16:
    #   x + Q, K, V                               1024  (x freed after the V projection)
    #   Q, K, V + K repeated                      1024  (K freed), + V repeated 1024 (V freed)
    #   Q, K rep, V rep + Q folded (N, h, L > 1)  1024  (Q freed)
    #   Q folded, K rep, V rep + scores           1024  (Q folded and K rep freed)
    #   V rep + scores + scaled 768; + ones, mask, masked 784; + probabilities 768;
    #   V rep + probabilities + context 768; context + merged 512; merged + output 512
    # (checked against PyTorch by tests/test_memory_peak_oracle.py)
    p = inference_peak(analysis(ATTENTION, batch=2))
    assert (p.bytes, p.where) == (1024, "0")


def test_dropout_mask_depends_on_the_device():
    # linear keeps its input 3·10·4 = 120; dropout's mask: CUDA bool 30 bytes, CPU fp32 120
    a = analysis("input: [10]\nlayers: [{linear: {out: 10}}, {dropout: {p: 0.5}}]", batch=3)
    assert saved_activations(a).bytes == 120 + 30
    assert saved_activations(a, device="cpu").bytes == 120 + 120


def test_embedding_keeps_int64_token_ids():
    # token ids 2·5·8 = 80; the linear keeps the embedded tokens 2·5·4·4 = 160
    a = analysis("input: [5]\ninput_kind: tokens\nlayers: [{embedding: {vocab: 10, dim: 4}}, {linear: {out: 3}}]", 2)
    assert saved_activations(a).bytes == 80 + 160


def test_a_layer_type_without_a_rule_is_an_error_naming_it(monkeypatch):
    monkeypatch.delitem(RULES, "moe")
    a = analysis("input: [5, 4]\nlayers: [{moe: {experts: 4, top_k: 2, hidden: 6}}]")
    with pytest.raises(CalcError, match="moe") as err:
        saved_activations(a)
    assert err.value.line == 3


FROZEN = """
    input: [5, 4]
    layers: [{linear: {out: 4}}, {linear: {out: 4, trainable: false}}, {layer_scale: {trainable: false}},
             {prelu: {trainable: false}}]"""


def test_frozen_linear_and_layer_scale_keep_nothing():
    # batch 1, fp32: the trained linear keeps the input 5·4·4 = 80; the frozen linear and
    # layer_scale keep nothing (a frozen weight needs no gradient, and the input's gradient needs
    # only the weight); PReLU keeps its input 80 either way (its gradient needs x's sign).
    rows = [r.bytes for r in saved_activations(analysis(FROZEN)).rows]
    assert rows == [80, 0, 0, 80]


def test_every_layer_type_has_a_rule():
    assert set(LAYERS) - set(RULES) == set()


MOE = """
    input: [5, 4]
    layers: [{linear: {out: 4}}, {moe: {experts: 4, top_k: 2, hidden: 6}}]"""


def test_mixture_of_experts_by_hand():
    # batch 1, fp32: R = 5 rows of D = 4, E = 4 experts, k = 2, H = 6 (SwiGLU experts).
    # the linear keeps the input 5·4·4 = 80. The MoE: the router keeps its rows (the linear's
    # output) 80; softmax its scores R·E·4 = 80; the gather of the chosen scores its int64 index
    # R·k·8 = 80. The R·k = 10 routed (row, expert) slots, whichever experts get them: per slot
    # an int64 row and slot (torch.where: one (n, 2) storage per expert) 16, and in fp32 the
    # gathered row D = 4, the gate output, SiLU's output, the up output and their product 4·H = 24,
    # the routing weight 1, the expert's output D = 4 and the weighted output D = 4 (index_add_
    # keeps it): 16 + 4·37 = 164 per slot, 1,640 in all.
    a = analysis(MOE)
    assert saved_activations(a).bytes == 80 + 80 + 80 + 80 + 10 * (16 + 4 * (4 + 24 + 1 + 4 + 4)) == 1960
    # bf16: every value tensor halves, the int64 indices stay: 40 + 40 + 40 + 80 + 10·(16 + 2·37)
    assert saved_activations(analysis(MOE, dtype="bf16"), dtype="bf16").bytes == 40 + 40 + 40 + 80 + 10 * 90 == 1100
    # batch 2: R = 10, twice everything
    assert saved_activations(analysis(MOE, batch=2)).bytes == 2 * 1960


MOE_OPTIONS = MOE.replace("top_k: 2, hidden: 6", "top_k: 3, hidden: 6, gated: false, activation: relu, "
                          "shared_hidden: 5, shared_gate: true, norm_topk: true")
MOE_FROZEN = MOE.replace("hidden: 6}", "hidden: 6, trainable: false}")


def test_mixture_of_experts_options_by_hand():
    # batch 1, fp32, R = 5, D = 4, E = 4, k = 3, H = 6, plain ReLU experts, shared MLP of 5 with a
    # sigmoid gate, renormalised weights. linear 80; router rows 80; scores 80; index R·k·8 = 120;
    # renormalisation keeps the chosen scores R·k·4 = 60 and their sums R·4 = 20. Per slot (15):
    # indices 16, and in fp32 the gathered row 4, ReLU's output 6 (kept by ReLU and by down), the
    # weight 1, the expert's output 4 and the weighted output 4: 16 + 4·19 = 92. Shared MLP: ReLU's
    # output R·5·4 = 100; its gate: sigmoid's output R·4 = 20 and the shared output R·D·4 = 80.
    expected = 80 + 80 + 80 + 120 + 60 + 20 + 15 * 92 + 100 + 20 + 80
    assert saved_activations(analysis(MOE_OPTIONS)).bytes == expected == 2020
    # frozen experts and router (trainable: false) after a trained layer: the linear layers keep
    # nothing of their inputs (their weights need no gradient): per slot the rows and slots 16,
    # and SiLU's input, its output and up's 3·6, the weight, the output and the weighted output:
    # 16 + 4·(18 + 1 + 8) = 124; scores 80 and index 80 as before; the router keeps nothing.
    assert saved_activations(analysis(MOE_FROZEN)).bytes == 80 + 80 + 80 + 10 * 124 == 1480


MLA = """
    input: [7, 16]
    layers: [{linear: {out: 16}}, {mla: {heads: 2, kv_lora_rank: 4, q_lora_rank: 6, qk_nope_head_dim: 3,
                                         qk_rope_head_dim: 2, v_head_dim: 5, causal: true}}]"""


def test_latent_attention_by_hand():
    # batch 1, fp32: L = 7 tokens of D = 16, h = 2, c = 4, q_r = 6, d_n = 3, d_r = 2, d_v = 5.
    # the linear keeps the input 7·16·4 = 448. MLA: x (kept by q_a and kv_a) 448; q_a's output
    # (RMSNorm's input) 7·6·4 = 168, rsqrt 7·4 = 28, the normalised 168, q_b's input 168; kv_a's
    # output, all c + d_r = 6 features (the norm reads a split view of it) 168, rsqrt 28, the
    # normalised latent 7·4·4 = 112, kv_b's input 112; Q and K (N·h·L·(d_n + d_r)) 2·7·5·4 = 280
    # each; the causal mask 49 bytes; the probabilities 2·7·7·4 = 392; V: for N = 1 the fold is a
    # view of kv_b's output, all 7·2·(3 + 5)·4 = 448 bytes; the merged heads 7·2·5·4 = 280.
    a = analysis(MLA)
    mla = 448 + (168 + 28 + 168 + 168) + (168 + 28 + 112 + 112) + 280 + 280 + 49 + 392 + 448 + 280
    assert saved_activations(a).bytes == 448 + mla == 3577
    # batch 2: every tensor doubles, but the mask (one per batch) and V, now a copy of its d_v
    # features: N·h·L·d_v·4 = 560 in place of 2·448
    assert saved_activations(analysis(MLA, batch=2)).bytes == 2 * 3577 - 49 - 2 * 448 + 560 == 6769
    # bf16: the RMSNorms compute in fp32 (torch.rms_norm casts half precision up): each keeps an
    # fp32 copy of its input's features (7·6·4 = 168, 7·4·4 = 112, not kv_a's whole output), rsqrt
    # and the normalised values in fp32; the rest halves.
    b16 = (224 + 224 + (168 + 28 + 168 + 84) + (112 + 28 + 112 + 56) + 140 + 140 + 49 + 196 + 224 + 140)
    assert saved_activations(analysis(MLA, dtype="bf16"), dtype="bf16").bytes == b16 == 2093


ATTENTION_OPTIONS = """
    input: [4, 8]
    layers:
      - {attention: {heads: 2, bias: true}}
      - {attention: {heads: 2, scaled: false}}
      - {attention: {heads: 2, rel_bias: true, rel_buckets: 8}}
      - {attention: {heads: 2, rel_bias: true}}
      - {attention: {heads: 2, sinks: true}}
      - {attention: {heads: 2, trainable: false}}
      - {reshape: {shape: [2, 2, 8]}}
      - {attention: {heads: 2}}"""


def test_attention_options_by_hand():
    # batch 1, fp32, L = S = 4, D = 8, h = 2, d = 4: as test_eager_attention_by_hand without the
    # mask: x 128, Q (a view of its projection for N = 1) 128, K and V repeated 128 each,
    # probabilities 2·4·4·4 = 128, merged heads 128: 768. Unscaled: the same (a scaling keeps
    # nothing). T5's relative bias, in the layer holding the table: + its int64 bucket index,
    # L·S·8 = 128; a layer reusing the stack's bias: nothing more (an addition). Sinks: softmax over
    # S + 1 logits keeps all of its output, 2·4·5·4 = 160 in place of 128. Frozen (trainable:
    # false): its linear layers keep nothing (no weight gradient), so neither x nor the merged
    # heads: Q, K, V and the probabilities, 4·128. The reshape is a view.
    # Groups (2, 2, 8): two sequences of L = 2: x 128, Q copied for the batched matmul
    # (N·groups = 2, h = 2, L = 2) 2·2·2·4·4 = 128, K and V 128 each, probabilities 2·2·2·2·4 = 64,
    # merged heads 128: 704.
    rows = [r.bytes for r in saved_activations(analysis(ATTENTION_OPTIONS)).rows]
    assert rows == [768, 768, 768 + 128, 768, 768 - 128 + 160, 4 * 128, 0, 5 * 128 + 64]


def test_cached_cross_attention_is_an_inference_only_error():
    a = analysis("""
        input: [4, 8]
        layers: [{linear: {out: 8, name: mem}}, {attention: {heads: 2, kv: mem, cached_kv: true}}]""")
    with pytest.raises(CalcError, match="decode step, which runs at inference only"):
        saved_activations(a)


TENSORS = """
    input: [4, 6]
    layers:
      - parameter: {name: table, shape: [9, 2]}
      - buffer: {name: index, shape: [4, 4]}
      - parameter: {name: s, shape: [2, 1, 1]}
      - linear: {out: 6}
      - reshape: {shape: [2, 4, 3]}
      - normalize: {name: q, dim: -1}
      - matmul: {name: scores, with: [q], transpose: true}
      - clamp: {from: s, max: 4.6}
      - exp: {name: f}
      - mul: {from: scores, with: [f], name: scaled}
      - gather: {from: table, index: index}
      - reshape: {shape: [4, 4, 2]}
      - permute: {name: bias, dims: [2, 0, 1]}
      - add: {from: scaled, with: [bias], broadcast: true}"""


def test_tensor_primitives_by_hand():
    # batch 2, fp32. Parameters and buffers are not activations: 0 bytes, and so is a layer
    # keeping one (the clamp of s keeps the parameter itself).
    # linear keeps its input x: 2·4·6·4 = 192; the reshape to 2×4×3 is a view of its output.
    # normalize keeps its input (the linear's output, 2·24·4 = 192) and the norm and the clamped
    # norm, one per vector of 3: 2·(2·4)·4 = 64 each: 320.
    # q·qᵀ: both operands fold as views of q (contiguous, the same batch dims): q, 2·24·4 = 192.
    # exp keeps its output, s expanded over the batch: 2·2·4 = 16.
    # the product keeps the scores 2·2·4·4·4 = 256 and exp's output (counted already).
    # gather keeps its int64 index, one for the batch: 16·8 = 128. reshape, permute, add: 0.
    s = saved_activations(analysis(TENSORS, batch=2))
    assert [(r.name, r.bytes) for r in s.rows if r.bytes] == [
        ("3", 192), ("q", 320), ("scores", 192), ("f", 16), ("scaled", 256), ("10", 128)]
    assert s.bytes == 1104


MATMULS = """
    input: [4, 6]
    layers:
      - parameter: {name: w3, shape: [2, 3, 5]}
      - parameter: {name: w1, shape: [1, 3, 5]}
      - linear: {name: m, out: 3}
      - linear: {out: 6}
      - reshape: {name: t, shape: [2, 4, 3]}
      - matmul: {name: p, with: [m], transpose: true}
      - matmul: {from: m, with: [t], transpose: true}
      - matmul: {from: t, with: [w3]}
      - matmul: {from: t, with: [w1]}
      - matmul: {from: m, with: [w3]}"""


def test_matmul_keeps_its_operands_or_the_copies_its_broadcast_makes():
    # batch 2, fp32. torch.matmul expands both operands to the broadcast batch dims and folds
    # them into one: a view where the strides allow, else a copy, which bmm keeps.
    # linear m keeps x 2·4·6·4 = 192; the second linear keeps m 2·4·3·4 = 96; t is a view of its
    # output (2·24·4 = 192 bytes).
    # t·mᵀ: t folds as a view (192); m (4×3) broadcast over t's 2: batch stride 12, the expanded
    # dim's 0, not foldable: a copy 2·2·4·3·4 = 192. Row: 384.
    # m·tᵀ: the copy of m 192 (t counted already).
    # t·w3: w3 is the parameter expanded over the batch (stride 0) with its own dim of 2 (stride
    # 15): not foldable, a copy 2·2·3·5·4 = 240.
    # t·w1: w1's dims of 1 expanded: strides 0 and 0 fold, a view of the parameter: 0.
    # m·w3: m's copy 192 and w3's 240: 432.
    s = saved_activations(analysis(MATMULS, batch=2))
    assert [(r.name, r.bytes) for r in s.rows if r.kind in ("linear", "matmul")] == [
        ("m", 192), ("3", 96), ("p", 384), ("6", 192), ("7", 240), ("8", 0), ("9", 432)]
    assert s.bytes == 1536
    # batch 1: every fold is a view; the copies go (m 48 kept by the second linear already, t 96,
    # w3 a parameter): 96 + 48 + 96 = 240
    assert saved_activations(analysis(MATMULS, batch=1)).bytes == 240


@pytest.mark.parametrize("kw", [{"dtype": "fp8"}, {"checkpointing": "some"}, {"attention": "flash"},
                                {"device": "tpu"}])
def test_bad_arguments_are_spec_errors(kw):
    with pytest.raises(SpecError):
        saved_activations(cnn(), **kw)


def test_recurrent_layers_by_hand():
    # batch 2, L = 5 steps of I = 4, H = 6, fp32; one cell state N·H·b = 2·6·4 = 48 bytes.
    # LSTM (the oracle's step-by-step form), bidirectional: the input 2·5·4·4 = 160 (kept as
    # x[:, t] views), and per direction 7·L cells (h0, c0, per step 4 gates + tanh(c), c and h
    # of steps 1…L−1 kept by the next step): 2·7·5·48 = 3360.
    lstm = analysis("input: [5, 4]\nlayers: [{lstm: {hidden: 6, bidirectional: true}}]", batch=2)
    assert saved_activations(lstm).bytes == 160 + 3360
    # GRU (nn.GRU): a time-major copy of the input 160; h0 48; per step 3 gate activations and
    # the hidden projection (3H) 6·48, and h1…h4 4·48: 160 + 48 + 5·288 + 192 = 1840.
    gru = analysis("input: [5, 4]\nlayers: [{gru: {hidden: 6}}]", batch=2)
    assert saved_activations(gru).bytes == 1840
    # RNN, two layers: the input copy 160, layer 1's output 2·5·6·4 = 240, h0 of both layers 96,
    # each layer's L tanh outputs 2·5·48 = 480: 976.
    rnn = analysis("input: [5, 4]\nlayers: [{rnn: {hidden: 6, num_layers: 2}}]", batch=2)
    assert saved_activations(rnn).bytes == 976
