"""`calc import hf config.json`: a readable spec from a Hugging Face ``config.json``, offline.

The spec states the config's sizes as variables and the layer as a block, so that it reads like
the model's code and can be edited (``--set depth=4``). Families: Llama, Mistral, Mixtral, Qwen2,
Qwen3, Qwen3-MoE (decoder-only, pre-norm, RMSNorm, rotary, gated MLP or mixture of experts),
GPT-2, BERT and T5 (:mod:`calc.importer_t5`). Anything in a config that changes the counts and that calc does not model is an
error naming the key, never silently dropped.
"""
from __future__ import annotations

import json

from .errors import SpecError

DECODERS = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe")
FAMILIES = (*DECODERS, "deepseek_v3", "gpt2", "bert", "t5")
# HF's hidden_act names → calc's activation (and GELU's form)
_ACT = {"silu": "silu", "swish": "silu", "gelu": "gelu", "relu": "relu"}
# the default input length of an imported spec: the context, at most this (--input N changes it)
SEQ = 4096


def _get(cfg: dict, key: str, default=None, required=True):
    if key in cfg and cfg[key] is not None:
        return cfg[key]
    if default is None and required:
        raise SpecError(f"config.json has no '{key}', which a {cfg.get('model_type')} model needs")
    return default


def _num(x) -> str:
    return format(x, "g") if isinstance(x, float) else str(x)


def _act(cfg: dict, key: str) -> str:
    name = _get(cfg, key, "silu")
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return "gelu: {approximate: tanh}"
    if name not in _ACT:
        raise SpecError(f"config.json: {key} '{name}' is not an activation calc knows "
                        f"({', '.join([*_ACT, 'gelu_new', 'gelu_pytorch_tanh'])})")
    return _ACT[name]


def _decoder(cfg: dict, name: str) -> str:
    t = cfg["model_type"]
    d, heads = _get(cfg, "hidden_size"), _get(cfg, "num_attention_heads")
    kv = _get(cfg, "num_key_value_heads", heads)
    hd = cfg.get("head_dim") or d // heads
    var = {"seq": min(_get(cfg, "max_position_embeddings", SEQ), SEQ), "vocab": _get(cfg, "vocab_size"), "d": d,
           "depth": _get(cfg, "num_hidden_layers"), "heads": heads, "kv_heads": kv}
    if hd != d // heads or d % heads:
        var["head_dim"] = hd
    for key in ("layer_types",):
        kinds = set(cfg.get(key) or ())
        if len(kinds) > 1:
            raise SpecError(f"config.json: {key} mixes {sorted(kinds)}; calc imports one attention kind for all layers")
    window = cfg.get("sliding_window")
    if t == "qwen2" or t.startswith("qwen3"):
        window = window if cfg.get("use_sliding_window") else None
    if t == "mixtral" and window is not None:
        pass   # Mixtral's config may state a window; it is used as Mistral's
    bias = bool(cfg.get("attention_bias", t == "qwen2"))
    attn = [f"heads: heads, kv_heads: kv_heads"]
    if "head_dim" in var:
        attn.append("head_dim: head_dim")
    attn.append(f"bias: {str(bias).lower()}, out_bias: {str(bool(cfg.get('attention_bias', False))).lower()}")
    attn.append("causal: true, rope: true")
    partial = cfg.get("partial_rotary_factor")
    if partial not in (None, 1, 1.0):
        attn.append(f"rope_dims: {int(hd * partial)}")
    if t.startswith("qwen3"):
        attn.append("qk_norm: true")
    if window:
        var["window"] = window
        attn.append("window: window")
    eps = _num(_get(cfg, "rms_norm_eps", 1e-6))
    act = _act(cfg, "hidden_act")
    experts = None
    if t == "mixtral":
        experts = (_get(cfg, "num_local_experts"), _get(cfg, "num_experts_per_tok"), _get(cfg, "intermediate_size"), False)
    elif t == "qwen3_moe":
        if cfg.get("mlp_only_layers") or _get(cfg, "decoder_sparse_step", 1) != 1:
            raise SpecError("config.json: mlp_only_layers / decoder_sparse_step ≠ 1 (dense layers between the "
                            "mixture-of-experts layers) are not imported")
        experts = (_get(cfg, "num_experts"), _get(cfg, "num_experts_per_tok"), _get(cfg, "moe_intermediate_size"),
                   bool(cfg.get("norm_topk_prob", False)))
    if experts:
        var.update(experts=experts[0], top_k=experts[1], ffn=experts[2])
        mlp = (f"            - moe: {{experts: experts, top_k: top_k, hidden: ffn, activation: {act}"
               f"{', norm_topk: true' if experts[3] else ''}, name: mlp}}")
    else:
        var["ffn"] = _get(cfg, "intermediate_size")
        mlp = "\n".join([
            "            - group:", "                name: mlp", "                layers:",
            "                  - parallel:", "                      join: mul", "                      branches:",
            f"                        - [linear: {{out: ffn, bias: false, name: gate_proj}}, {act}]",
            "                        - [linear: {out: ffn, bias: false, name: up_proj}]",
            "                  - linear: {out: d, bias: false, name: down_proj}"])
    tied = bool(cfg.get("tie_word_embeddings", False))
    head = "  - linear: {out: vocab, bias: false" + (", tie: embed_tokens" if tied else "") + ", name: lm_head}"
    desc = (f"Imported from a Hugging Face config.json ({cfg.get('architectures', [t])[0]}, model_type {t}): "
            f"{var['depth']} decoder layers of hidden size {d}, {heads} heads, {kv} key/value heads of {hd}, "
            f"{'a mixture of experts' if experts else 'a gated MLP'}, RMSNorm eps {eps}, rotary"
            f"{', sliding window ' + str(window) if window else ''}{', head tied to the embedding' if tied else ''}. "
            f"The input is seq token ids (at most {SEQ:,} by default; --input N).")
    return "\n".join([
        f"name: {name}", "description: >", f"  {desc}", "input: [seq]", "input_kind: tokens",
        "variables: {" + ", ".join(f"{k}: {v}" for k, v in var.items()) + "}",
        "blocks:", "  layer:", '    description: "x + self_attn(input_layernorm(x)), then x + mlp(post_attention_layernorm(x))"',
        "    layers:", "      - residual:", "          main:",
        f"            - rmsnorm: {{eps: {eps}, name: input_layernorm}}",
        f"            - attention: {{{', '.join(attn)}, name: self_attn}}",
        "      - residual:", "          main:", f"            - rmsnorm: {{eps: {eps}, name: post_attention_layernorm}}",
        mlp, "layers:", "  - embedding: {vocab: vocab, dim: d, name: embed_tokens}",
        "  - repeat: {times: depth, name: layers, layers: [layer: {}]}", f"  - rmsnorm: {{eps: {eps}, name: norm}}",
        head, ""])


def _deepseek(cfg: dict, name: str) -> str:
    """DeepSeek-V3 (and V2's layout): multi-head latent attention; the first
    first_k_dense_replace layers with a dense gated MLP, the others a mixture of experts with
    shared experts and a sigmoid-scored router (its e_score_correction_bias a buffer of the
    router, as Hugging Face holds it). The multi-token-prediction module (num_nextn_predict_layers) is not part of
    the model Hugging Face builds, nor of the spec."""
    if _get(cfg, "moe_layer_freq", 1) != 1:
        raise SpecError("config.json: moe_layer_freq ≠ 1 is not imported")
    depth, dense = _get(cfg, "num_hidden_layers"), _get(cfg, "first_k_dense_replace", 0, required=False)
    var = {"seq": min(_get(cfg, "max_position_embeddings", SEQ), SEQ), "vocab": _get(cfg, "vocab_size"),
           "d": _get(cfg, "hidden_size"), "dense_layers": dense, "moe_layers": depth - dense,
           "heads": _get(cfg, "num_attention_heads"), "ffn": _get(cfg, "intermediate_size"),
           "experts": _get(cfg, "n_routed_experts"), "top_k": _get(cfg, "num_experts_per_tok"),
           "expert_ffn": _get(cfg, "moe_intermediate_size"), "shared": _get(cfg, "n_shared_experts", 0, required=False),
           # false: as Hugging Face computes it (kv_b expands the cached latents every step); --set absorbed=true
           "absorbed": "false"}
    q_r = cfg.get("q_lora_rank")
    eps = _num(_get(cfg, "rms_norm_eps", 1e-6))
    act = _act(cfg, "hidden_act")
    attn = (f"heads: heads, kv_lora_rank: {_get(cfg, 'kv_lora_rank')}, " + (f"q_lora_rank: {q_r}, " if q_r else "")
            + f"qk_nope_head_dim: {_get(cfg, 'qk_nope_head_dim')}, qk_rope_head_dim: {_get(cfg, 'qk_rope_head_dim')}, "
            f"v_head_dim: {_get(cfg, 'v_head_dim')}, bias: {str(bool(cfg.get('attention_bias', False))).lower()}, "
            "causal: true, absorbed: absorbed")
    scoring = "sigmoid" if cfg.get("scoring_func", "sigmoid") == "sigmoid" else "softmax"
    moe = (f"experts: experts, top_k: top_k, hidden: expert_ffn, shared_hidden: shared * expert_ffn, activation: {act}, "
           f"router_bias: true, scoring: {scoring}" + (", norm_topk: true" if cfg.get("norm_topk_prob") else ""))

    def block(key, mlp):
        return ["  " + key + ":", "    layers:", "      - residual:", "          main:",
                f"            - rmsnorm: {{eps: {eps}, name: input_layernorm}}",
                f"            - mla: {{{attn}, name: self_attn}}",
                "      - residual:", "          main:",
                f"            - rmsnorm: {{eps: {eps}, name: post_attention_layernorm}}", *mlp]
    dense_mlp = ["            - group:", "                name: mlp", "                layers:",
                 "                  - parallel:", "                      join: mul", "                      branches:",
                 f"                        - [linear: {{out: ffn, bias: false, name: gate_proj}}, {act}]",
                 "                        - [linear: {out: ffn, bias: false, name: up_proj}]",
                 "                  - linear: {out: d, bias: false, name: down_proj}"]
    tied = bool(cfg.get("tie_word_embeddings", False))
    return "\n".join([
        f"name: {name}", "description: >",
        f"  Imported from a Hugging Face config.json ({cfg.get('architectures', ['DeepseekV3ForCausalLM'])[0]}): "
        f"multi-head latent attention, {dense} dense layers then {depth - dense} mixture-of-experts layers "
        f"({var['experts']} routed experts, top {var['top_k']}, {var['shared']} shared). Group-limited routing's "
        "selection is counted as a plain top-k; no multi-token-prediction module. The input is seq token ids.",
        "input: [seq]", "input_kind: tokens",
        "variables: {" + ", ".join(f"{k}: {v}" for k, v in var.items()) + "}",
        "blocks:", *block("dense_layer", dense_mlp),
        *block("moe_layer", [f"            - moe: {{{moe}, name: mlp}}"]),
        "layers:", "  - embedding: {vocab: vocab, dim: d, name: embed_tokens}",
        *(["  - repeat: {times: dense_layers, name: dense, layers: [dense_layer: {}]}"] if dense else []),
        "  - repeat: {times: moe_layers, name: layers, layers: [moe_layer: {}]}",
        f"  - rmsnorm: {{eps: {eps}, name: norm}}",
        "  - linear: {out: vocab, bias: false" + (", tie: embed_tokens" if tied else "") + ", name: lm_head}", ""])


def _gpt2(cfg: dict, name: str) -> str:
    d = _get(cfg, "n_embd")
    var = {"n_ctx": _get(cfg, "n_positions"), "vocab": _get(cfg, "vocab_size"), "d": d,
           "depth": _get(cfg, "n_layer"), "heads": _get(cfg, "n_head"), "mlp": cfg.get("n_inner") or 4 * d}
    eps = _num(_get(cfg, "layer_norm_epsilon", 1e-5))
    act = _act(cfg, "activation_function")
    return "\n".join([
        f"name: {name}", "description: >",
        f"  Imported from a Hugging Face config.json (GPT2LMHeadModel): {var['depth']} pre-norm blocks of {d}, "
        f"{var['heads']} heads, learned positions, the head tied to wte. The input is n_ctx token ids (--input N).",
        "input: [n_ctx]", "input_kind: tokens",
        "variables: {" + ", ".join(f"{k}: {v}" for k, v in var.items()) + "}",
        "blocks:", "  block:", '    description: "x + attn(ln_1(x)), then x + mlp(ln_2(x))"', "    layers:",
        "      - residual:", "          main:", f"            - layernorm: {{eps: {eps}, name: ln_1}}",
        "            - attention: {heads: heads, causal: true, packed: true, name: attn}",
        "      - residual:", "          main:", f"            - layernorm: {{eps: {eps}, name: ln_2}}",
        "            - group:", "                name: mlp", "                layers:",
        "                  - linear: {out: mlp, name: c_fc}", f"                  - {act}",
        "                  - linear: {out: d, name: c_proj}",
        "layers:", "  - embedding: {vocab: vocab, dim: d, name: wte}", "  - pos_embedding: {max_len: n_ctx, name: wpe}",
        "  - repeat: {times: depth, name: h, layers: [block: {}]}", f"  - layernorm: {{eps: {eps}, name: ln_f}}",
        "  - linear: {out: vocab, bias: false, tie: wte, name: lm_head}", ""])


def _bert(cfg: dict, name: str) -> str:
    var = {"seq": _get(cfg, "max_position_embeddings"), "max_positions": _get(cfg, "max_position_embeddings"),
           "vocab": _get(cfg, "vocab_size"), "types": _get(cfg, "type_vocab_size"), "d": _get(cfg, "hidden_size"),
           "depth": _get(cfg, "num_hidden_layers"), "heads": _get(cfg, "num_attention_heads"),
           "mlp_dim": _get(cfg, "intermediate_size")}
    eps = _num(_get(cfg, "layer_norm_eps", 1e-12))
    act = _act(cfg, "hidden_act")
    return "\n".join([
        f"name: {name}", "description: >",
        f"  Imported from a Hugging Face config.json (BertModel with its pooler): {var['depth']} post-norm encoder "
        f"layers of {var['d']}, {var['heads']} heads. The input is seq token ids (--input N).",
        "input: [seq]", "input_kind: tokens",
        "variables: {" + ", ".join(f"{k}: {v}" for k, v in var.items()) + "}",
        "blocks:", "  encoder_layer:", '    description: "ln(x + attention(x)), then ln(x + mlp(x)): BertLayer"',
        "    layers:", "      - residual: {main: [{attention: {heads: heads, name: self}}]}",
        f"      - layernorm: {{eps: {eps}, name: attention_ln}}",
        f"      - residual: {{main: [{{linear: {{out: mlp_dim, name: intermediate}}}}, {act}, "
        "{linear: {out: d, name: output}}]}",
        f"      - layernorm: {{eps: {eps}, name: output_ln}}",
        "layers:", "  - group:", "      name: embeddings", "      layers:",
        f"        - embedding: {{vocab: vocab, dim: d, padding_idx: {cfg.get('pad_token_id') or 0}, name: word_embeddings}}",
        "        - pos_embedding: {max_len: max_positions, name: position_embeddings}",
        "        - type_embedding: {types: types, name: token_type_embeddings}",
        f"        - layernorm: {{eps: {eps}, name: LayerNorm}}",
        "  - repeat: {times: depth, name: encoder, layers: [encoder_layer: {}]}",
        "  - group:", "      name: pooler", "      layers:", "        - select_token: {index: 0}",
        "        - linear: {out: d, name: dense}", "        - tanh", ""])


def hf_spec(cfg: dict, name: str | None = None) -> str:
    """The spec text for a parsed config.json."""
    if not isinstance(cfg, dict):
        raise SpecError("config.json must hold a JSON object")
    t = cfg.get("model_type")
    name = name or str(t or "model").replace("-", "_")
    if t in DECODERS:
        return _decoder(cfg, name)
    if t == "deepseek_v3":
        return _deepseek(cfg, name)
    if t == "gpt2":
        return _gpt2(cfg, name)
    if t == "bert":
        return _bert(cfg, name)
    if t == "t5":
        from .importer_t5 import t5_spec
        return t5_spec(cfg, name)
    raise SpecError(f"config.json: model_type '{t}' is not a family calc imports; known: {', '.join(FAMILIES)}")


def import_hf(path: str, name: str | None = None) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not JSON: {exc.msg} (line {exc.lineno})") from None
    return hf_spec(cfg, name)
