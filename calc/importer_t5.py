"""`calc import hf` for T5 (model_type t5): an encoder–decoder with two inputs, written as a
readable spec (see :mod:`calc.importer` for the decoder-only families).

T5 (Raffel et al., 2020) as Hugging Face's T5ForConditionalGeneration builds it: one shared token
embedding read by both stacks; pre-norm blocks with T5's RMS layer norm (γ only, no bias, no mean);
attention without biases and without the 1/√d scaling, a relative position bias whose bucket table
(buckets × heads) the first block of each stack holds and the others reuse; the decoder's causal
self attention, then cross attention over the encoder's output; the feed-forward ``relu``
(DenseReluDense: wi, act, wo) or ``gated-<act>`` (T5 v1.1, Flan-T5: act(wi_0)·wi_1, then wo).
``tie_word_embeddings`` false (T5 v1.1: "no parameter sharing between embedding and classifier
layer") gives the head its own weight, as the checkpoints hold it; a tied head reads the decoder
output scaled by d_model^-0.5 (a ``scale``), as Hugging Face computes it.
"""
from __future__ import annotations

from .errors import SpecError
from .importer import _get   # the config reader every family uses (calc.importer loads this module lazily)

# the default input lengths of an imported spec (T5 was pre-trained on 512 tokens; --set src=N)
SRC = TGT = 512
# feed_forward_proj's activation → calc's (Hugging Face maps gated-gelu to gelu_new, the tanh form)
_ACT = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu: {approximate: tanh}", "silu": "silu", "swish": "silu"}


def t5_spec(cfg: dict, name: str) -> str:
    proj = str(_get(cfg, "feed_forward_proj", "relu"))
    parts = proj.split("-")
    gated = parts[0] == "gated" and len(parts) == 2
    act_name = "gelu_new" if proj == "gated-gelu" else parts[-1]
    if len(parts) > 2 or (len(parts) == 2 and not gated) or act_name not in _ACT:
        raise SpecError(f"config.json: feed_forward_proj '{proj}' is not one calc imports (relu, gelu, "
                        "gated-gelu, gated-silu, ...)")
    act = _ACT[act_name]
    layers = _get(cfg, "num_layers", 6)
    var = {"src": SRC, "tgt": TGT, "vocab": _get(cfg, "vocab_size", 32128), "d": _get(cfg, "d_model", 512),
           "depth": layers, "decoder_depth": cfg.get("num_decoder_layers") or layers,
           "heads": _get(cfg, "num_heads", 8), "d_kv": _get(cfg, "d_kv", 64), "ffn": _get(cfg, "d_ff", 2048),
           "buckets": _get(cfg, "relative_attention_num_buckets", 32)}
    eps = format(float(_get(cfg, "layer_norm_epsilon", 1e-6)), "g")
    tied = cfg.get("tie_word_embeddings", True) is not False
    attn = "heads: heads, head_dim: d_kv, bias: false, out_bias: false, scaled: false"
    norm = f"            - rmsnorm: {{eps: {eps}, name: layer_norm}}"
    if gated:
        ff = ["                  - parallel:", "                      join: mul", "                      branches:",
              f"                        - [linear: {{out: ffn, bias: false, name: wi_0}}, {act}]",
              "                        - [linear: {out: ffn, bias: false, name: wi_1}]",
              "                  - linear: {out: d, bias: false, name: wo}"]
        ff_name = "DenseGatedActDense"
    else:
        ff = [f"                  - linear: {{out: ffn, bias: false, name: wi}}", f"                  - {act}",
              "                  - linear: {out: d, bias: false, name: wo}"]
        ff_name = "DenseReluDense"

    def self_attn(causal: str) -> list[str]:
        return [f"            - attention: {{{attn}, rel_bias: true{causal}, rel_buckets: buckets, "
                "name: SelfAttention, when: first}",
                f"            - attention: {{{attn}, rel_bias: true{causal}, name: SelfAttention, when: not first}}"]

    desc = (f"Imported from a Hugging Face config.json (T5ForConditionalGeneration, model_type t5): {layers} encoder "
            f"and {var['decoder_depth']} decoder layers of d_model {var['d']}, {var['heads']} heads of {var['d_kv']}, "
            f"feed-forward {proj} of {var['ffn']}, {var['buckets']} relative-position buckets, "
            + ("the head tied to the shared embedding, the decoder output scaled by d_model^-0.5 before it"
               if tied else "an untied head")
            + ". Two inputs: src encoder and tgt decoder token ids (--set src=N tgt=M).")
    return "\n".join([
        f"name: {name}", "description: >", f"  {desc}",
        "inputs: {input_ids: [src], decoder_input_ids: [tgt]}", "input_kind: tokens",
        "variables: {" + ", ".join(f"{k}: {v}" for k, v in var.items()) + "}",
        "blocks:", "  ff:", f'    description: "x + {ff_name}(layer_norm(x))"', "    layers:",
        "      - residual:", "          main:", norm, "            - group:", f"                name: {ff_name}",
        "                layers:", *ff,
        "  encoder_block:", '    description: "x + SelfAttention(layer_norm(x)), then the feed-forward; the first '
        'block holds the bias table"', "    params: {first: false}", "    layers:",
        "      - residual:", "          main:", norm, *self_attn(""), "      - ff: {name: layer_ff}",
        "  decoder_block:", '    description: "causal self attention, cross attention over the encoder output, '
        'the feed-forward"', "    params: {first: false}", "    layers:",
        "      - residual:", "          main:", norm, *self_attn(", causal: true"),
        "      - residual:", "          main:", norm,
        f"            - attention: {{{attn}, kv: encoder_out, name: EncDecAttention}}",
        "      - ff: {name: layer_ff}",
        "layers:", "  - embedding: {vocab: vocab, dim: d, name: shared}",
        "  - group:", "      name: encoder", "      layers:", "        - encoder_block: {first: true}",
        "        - repeat: {times: depth - 1, name: block, layers: [encoder_block: {}]}",
        f"        - rmsnorm: {{eps: {eps}, name: final_layer_norm}}",
        "  - identity: {name: encoder_out}",
        "  - group:", "      name: decoder", "      layers:",
        "        - embedding: {vocab: vocab, dim: d, from: decoder_input_ids, tie: shared, name: embed_tokens}",
        "        - decoder_block: {first: true}",
        "        - repeat: {times: decoder_depth - 1, name: block, layers: [decoder_block: {}]}",
        f"        - rmsnorm: {{eps: {eps}, name: final_layer_norm}}",
        *(["  - scale: {by: d ** -0.5, name: scale_decoder_outputs}"] if tied else []),
        "  - linear: {out: vocab, bias: false" + (", tie: shared" if tied else "") + ", name: lm_head}", ""])
