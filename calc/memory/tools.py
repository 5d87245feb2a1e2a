"""Other tools' memory conventions, reproduced from their source, each with what it assumes.

calc's own count (:mod:`calc.memory.training`) is exact for the spec under stated conventions;
these reproduce what a tool prints for the same model, so that a user can see which convention
a published figure uses and why it differs. Each function returns :class:`ToolFigure` records.

* ``accelerate``: Hugging Face accelerate's ``accelerate estimate-memory`` (commands/estimate.py,
  ``gather_data`` and ``estimate_training_usage``; utils/modeling.py ``calculate_maximum_sizes``;
  utils/other.py ``convert_bytes``; accelerate 1.2). The model is loaded in fp32 on the meta
  device; its size is every parameter and buffer at its own dtype; the largest layer is the largest
  module without children. Per dtype row: float16 halves, int8 quarters, int4 eighths the fp32
  sizes. "Training using Adam" is the largest of model, gradients, optimizer and step: float32:
  4 × the fp32 size; float16: 2 × the fp32 size; int8/int4: N/A. Units: 1 KB = 1,024 bytes, printed
  rounded to 2 decimals.
* ``deepspeed-zero2`` / ``deepspeed-zero3``: DeepSpeed's ``estimate_zero2_model_states_mem_needs``
  (runtime/zero/stage_1_and_2.py) and ``estimate_zero3_model_states_mem_needs`` (runtime/zero/stage3.py),
  DeepSpeed 0.19.8: model states only (no activations), per GPU and per CPU, with a CPU buffer
  factor of 1.5. ZeRO-2 without offload: 2P + ⌊18P/G⌋ bytes per GPU; ZeRO-3: 4·largest layer +
  ⌊18P/G⌋. (DeepSpeed's documentation tables were made with an older ZeRO-2 formula, 4P + 16P/G.)
* ``eleutherai``: Transformer Math 101 (Anthony, Biderman, Schoelkopf, EleutherAI blog, 2023,
  https://blog.eleuther.ai/transformer-math/): bytes per parameter for the model (fp32 4, fp16/bf16
  2, int8 1), the optimizer (AdamW 12: fp32 copy, momentum, variance; 8-bit 6; SGD with momentum
  8), the gradients (fp32 4, 16-bit 2); ZeRO divides optimizer (stage 1), + gradients (2), + model
  (3) by the GPUs; activations sbhL(10 + 24/t + 5as/(ht)) bytes without recomputation, sbhL(10 + 24/t)
  with selective, 2sbhL with full recomputation.
* ``korthikanti``: Reducing Activation Recomputation in Large Transformer Models (Korthikanti et
  al., 2022, arXiv:2205.05198, Table 2): activation bytes per transformer layer in 16-bit with
  1-byte dropout masks: sbh(34 + 5as/h) without parallelism; sbh(10 + 24/t + 5as/(ht)) with tensor
  parallelism; sbh/t·(34 + 5as/h) with sequence parallelism too; selective recomputation drops the
  5as/h term; full recomputation keeps 2sbh (the layer's input).
* ``llm-analysis``: llm-analysis 0.2.2 (cli99/llm-analysis, analysis.py): weights, optimizer states
  and gradients from the transformer's dimensions, biases and position embeddings left out
  (attention 2h² + 2h²·g/a, MLP 2h·ffn, one layer norm 2h per layer, a final h, the embedding V·h
  shared with the head), weights in 16 bits, Adam states 12 B and gradients 4 B per parameter,
  divided by tp and by the data-parallel size under ZeRO; activations per layer in training by
  its defaults (flash attention; 16-bit activations, fp32 layer-norm inputs, a 1-byte attention
  dropout mask; Korthikanti et al.'s accounting).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..errors import SpecError
from ..inference import leaf_rows
from .training import buffer_bytes

from ..choices import MEMORY_TOOLS as TOOLS  # noqa: E402  (the command line reads them there)


@dataclass(frozen=True)
class ToolFigure:
    tool: str
    label: str             # what the figure is, in the tool's words
    bytes: int | Fraction  # exact value of the tool's arithmetic (a Fraction where it divides)
    shown: str             # as the tool prints it
    formula: str
    differs: str = ""      # why it differs from calc's count
    calc: int | None = None  # calc's exact count of the same thing under the tool's settings
    calc_how: str = ""       # which of calc's parts, under which settings


def convert_bytes(size) -> str:
    """accelerate's convert_bytes: divide by 1,024 while ≥ 1,024; round to 2 decimals."""
    size = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1024.0:
            return f"{round(size, 2)} {unit}"
        size /= 1024.0
    return f"{round(size, 2)} PB"


def _module_params(r) -> list[int]:
    """Parameters of each PyTorch module (with its own parameters) a leaf stands for, in the
    Hugging Face layout: attention's q, k, v and output projections are separate nn.Linear
    modules holding their biases; in MLA and MoE layers every tensor counts as its own module
    (a projection's bias is small beside the largest module); everything else is one module."""
    if r.kind in ("attention", "mla", "moe"):
        from math import prod

        from .tensors import tensor_shapes
        shapes = tensor_shapes(r)
        if r.kind == "attention":
            f = r.facts
            mats = [prod(s) for s in shapes if len(s) == 2]
            q, k, v, o = mats
            if f.get("qkv_bias"):
                q, k, v = q + f["heads"] * f["head_dim"], k + f["kv_heads"] * f["head_dim"], \
                    v + f["kv_heads"] * f["head_dim"]
            if f.get("has_out_bias"):
                o += f["out_dim"]
            return [q, k, v, o]
        return [prod(s) for s in shapes]
    return [r.params]


def largest_module(a, *, buffers: bool = False, size: int = 4) -> int:
    """The largest module's parameters (or bytes of parameters and buffers at ``size``)."""
    best = 0
    for _, r, _k in leaf_rows(a):
        extra = buffer_bytes_leaf(r, size) if buffers else 0
        for p in _module_params(r):
            best = max(best, p * size + extra if buffers else p)
    return best


def buffer_bytes_leaf(r, size: int) -> int:
    if not r.buffers:
        return 0
    track = r.layer.kind == "batchnorm" and getattr(r.layer, "track_running_stats", False)
    return (r.buffers - 1) * size + 8 if track else r.buffers * size


def accelerate(a, extra_buffers: int = 0) -> list[ToolFigure]:
    """``extra_buffers``: bytes of buffers the implementation registers that the spec does not
    state (Hugging Face's BERT keeps int64 position_ids and token_type_ids of max_positions each:
    2 × 512 × 8 = 8,192 bytes); accelerate counts every buffer."""
    total = a.root.params * 4 + buffer_bytes(a, 4) + extra_buffers
    largest = largest_module(a, buffers=True, size=4)
    why = ("accelerate's sizes are the model's parameters and buffers only (no activations, batch 1 "
           "whatever the input); its Adam training figure is 4 × the fp32 size (model + gradients + two "
           "states), not a sum with mixed-precision copies")
    out = []
    for dtype, div in (("float32", 1), ("float16", 2), ("int8", 4), ("int4", 8)):
        t, l = Fraction(total, div), Fraction(largest, div)
        out.append(ToolFigure("accelerate", f"{dtype} largest layer", l, convert_bytes(l),
                              f"largest module's parameters and buffers × 4 B / {div}"))
        out.append(ToolFigure("accelerate", f"{dtype} total size", t, convert_bytes(t),
                              f"{a.root.params:,} parameters × 4 B + buffers, / {div}", why))
        if dtype in ("float32", "float16"):
            train = total * (4 if dtype == "float32" else 2)
            out.append(ToolFigure("accelerate", f"{dtype} training using Adam", train, convert_bytes(train),
                                  f"{4 if dtype == 'float32' else 2} × the fp32 size", why))
    return out


def deepspeed_zero2(total_params: int, gpus_per_node: int = 1, nodes: int = 1, cpu_offload: bool = False,
                    buffer_factor: float = 1.5) -> tuple[int, int]:
    """(per CPU, per GPU) bytes, as DeepSpeed 0.19.8 computes them (its float arithmetic)."""
    g = nodes * gpus_per_node
    if cpu_offload:
        gpu = 2 * total_params
        cpu = total_params * max(4 * g, 16) * buffer_factor
    else:
        gpu = 2 * total_params + int(18 * total_params / g)
        cpu = total_params * 4 * gpus_per_node * buffer_factor
    return int(cpu), int(gpu)


def deepspeed_zero3(total_params: int, largest_layer_params: int, gpus_per_node: int = 1, nodes: int = 1,
                    cpu_offload: bool = False, cpu_offload_params: bool = False, zero_init: bool = True,
                    buffer_factor: float = 1.5) -> tuple[int, int, int]:
    """(per CPU, per GPU, largest layer) bytes, as DeepSpeed 0.19.8 computes them."""
    g, nodes_factor = nodes * gpus_per_node, 1 / nodes
    largest = 4 * largest_layer_params
    if cpu_offload:
        if cpu_offload_params:
            gpu = largest
            per = 18 * nodes_factor if zero_init else max(4 * gpus_per_node, 18 * nodes_factor)
        else:
            gpu = largest + int(2 * total_params / g)
            per = 16 * nodes_factor if zero_init else max(4 * gpus_per_node, 16 * nodes_factor)
        cpu = total_params * per * buffer_factor
    else:
        gpu = largest + int(18 * total_params / g)
        cpu = (largest_layer_params if zero_init else total_params) * 4 * gpus_per_node * buffer_factor
    return int(cpu), int(gpu), largest


def deepspeed(a, stage: int, gpus: int = 1) -> list[ToolFigure]:
    p = a.root.params
    why = ("DeepSpeed's estimators count model states only (no activations, no buffers, no temporary "
           "buffers) for fp16/bf16 training with Adam: 16-bit weights and gradients, and per partition an "
           "fp32 gradient copy beside the fp32 master and two states (18 B), which calc's master-copy "
           "convention does not keep (16 B); ZeRO-3 adds 4 B × the largest layer (its gathered fp32 copy); "
           "the per-GPU share is floored, calc takes the padded partition")
    if stage == 2:
        cpu, gpu = deepspeed_zero2(p, gpus)
        return [ToolFigure("deepspeed-zero2", f"per GPU ({gpus} GPU{'s' if gpus > 1 else ''}, no offload)", gpu,
                           f"{gpu / 2**30:.2f}GB", f"2·{p:,} + ⌊18·{p:,}/{gpus}⌋", why),
                ToolFigure("deepspeed-zero2", "per CPU", cpu, f"{cpu / 2**30:.2f}GB", f"{p:,} × 4 × {gpus} × 1.5")]
    largest = largest_module(a)
    cpu, gpu, _ = deepspeed_zero3(p, largest, gpus)
    return [ToolFigure("deepspeed-zero3", f"per GPU ({gpus} GPU{'s' if gpus > 1 else ''}, no offload)", gpu,
                       f"{gpu / 2**30:.2f}GB", f"4·{largest:,} (largest layer) + ⌊18·{p:,}/{gpus}⌋", why),
            ToolFigure("deepspeed-zero3", "per CPU", cpu, f"{cpu / 2**30:.2f}GB", f"{largest:,} × 4 × {gpus} × 1.5")]


@dataclass(frozen=True)
class Dims:
    """A transformer's dimensions as the formulas name them, read from the spec."""

    layers: int     # L: self-attention layers
    hidden: int     # h
    heads: int      # a
    kv_heads: int   # g
    seq: int        # s
    vocab: int      # V (0 without a token embedding)
    ffn: int        # the MLP's inner width (the first linear after attention that leaves h)


def transformer_dims(a) -> Dims:
    L = 0
    first = None
    ffn = vocab = 0
    for _, r, k in leaf_rows(a):
        if r.kind == "embedding" and not vocab:
            vocab = r.layer.vocab
        if r.kind == "attention":
            L += k
            if first is None:
                first = r
        elif first is not None and not ffn and r.kind == "linear" and r.output_shape[-1] != first.facts["dim"]:
            ffn = r.output_shape[-1]
    if first is None:
        raise SpecError("this convention's formulas describe transformers: the spec has no attention layer")
    f = first.facts
    return Dims(L, f["dim"], f["heads"], f["kv_heads"], first.input_shape[0], vocab, ffn)


def korthikanti_layer(s: int, b: int, h: int, a: int, t: int = 1, mode: str = "none") -> Fraction:
    """Activation bytes of one transformer layer (Korthikanti et al. 2022, Table 2).
    mode: none, sequence (tensor + sequence parallel), selective, selective+sequence, full."""
    sbh = s * b * h
    if mode == "none":
        return sbh * (10 + Fraction(24, t) + Fraction(5 * a * s, h * t))
    if mode == "sequence":
        return Fraction(sbh, t) * (34 + Fraction(5 * a * s, h))
    if mode == "selective":
        return sbh * (10 + Fraction(24, t))
    if mode == "selective+sequence":
        return Fraction(sbh * 34, t)
    if mode == "full":
        return Fraction(2 * sbh)
    raise SpecError(f"unknown recomputation '{mode}'; known: none, sequence, selective, selective+sequence, full")


def korthikanti(a, t: int = 1, mode: str = "none") -> list[ToolFigure]:
    d = transformer_dims(a)
    per = korthikanti_layer(d.seq, a.batch, d.hidden, d.heads, t, mode)
    why = ("the formula counts a GPT-style layer in 16 bits with dropout after attention and MLP "
           "(1-byte masks) and GELU; it leaves out the embeddings, the head, the final norm and anything "
           "the spec's layers do differently")
    return [ToolFigure("korthikanti", "activations per layer", per, f"{float(per):,.0f} B",
                       f"sbh(34 + 5as/h) with s={d.seq}, b={a.batch}, h={d.hidden}, a={d.heads}"
                       if mode == "none" and t == 1 else f"Table 2, {mode}, t={t}"),
            ToolFigure("korthikanti", f"activations, {d.layers} layers", per * d.layers,
                       f"{float(per * d.layers) / 2**30:,.2f} GiB", f"L × per layer", why)]


ELEUTHER_OPT = {"adamw": 12, "adam": 12, "adam8bit": 6, "sgd-momentum": 8}
ELEUTHER_MODEL = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}


def eleutherai(a, *, optimizer: str = "adamw", model_dtype: str = "bf16", grad_dtype: str = "bf16",
               zero: int = 0, gpus: int = 1, t: int = 1, recompute: str = "none") -> list[ToolFigure]:
    if optimizer not in ELEUTHER_OPT:
        raise SpecError(f"Transformer Math gives optimizer bytes for {', '.join(ELEUTHER_OPT)}, not {optimizer}")
    p = a.root.params
    model = p * ELEUTHER_MODEL[model_dtype]
    opt = p * ELEUTHER_OPT[optimizer]
    grad = p * (4 if grad_dtype == "fp32" else 2)
    n = Fraction(1, gpus)
    states = (model * (n if zero >= 3 else 1) + opt * (n if zero >= 1 else 1) + grad * (n if zero >= 2 else 1))
    d = transformer_dims(a)
    sbhL = d.seq * a.batch * d.hidden * d.layers
    act = {"none": sbhL * (10 + Fraction(24, t) + Fraction(5 * d.heads * d.seq, d.hidden * t)),
           "selective": sbhL * (10 + Fraction(24, t)), "full": Fraction(2 * sbhL)}[recompute]
    why = ("bytes per parameter are rules of thumb for a 16-bit model with an fp32 optimizer copy, divided "
           "by ZeRO's GPUs but never by tensor parallelism; activations follow the GPT-layer formula, not the "
           "spec's layers")
    per = ELEUTHER_MODEL[model_dtype] + ELEUTHER_OPT[optimizer] + (4 if grad_dtype == "fp32" else 2)
    return [ToolFigure("eleutherai", "model + optimizer + gradients", states, f"{float(states) / 1e9:,.2f} GB",
                       f"{p:,} × ({per} B/param), ZeRO-{zero} over {gpus}"),
            ToolFigure("eleutherai", "activations", act, f"{float(act) / 1e9:,.2f} GB",
                       f"sbhL(10 + 24/t + 5as/(ht)), recompute {recompute}"),
            ToolFigure("eleutherai", "total", states + act, f"{float(states + act) / 1e9:,.2f} GB", "sum", why)]


def llm_analysis(a, *, tp: int = 1, dp: int = 1, zero: int = 0, weight_bits: int = 16, embedding_bits: int = 16
                 ) -> list[ToolFigure]:
    d = transformer_dims(a)
    h, g, heads = d.hidden, d.kv_heads, d.heads
    kv = max(Fraction(g, tp), 1) * tp         # at least one key/value head per tensor-parallel GPU
    attn = 2 * h * h + 2 * h * (h * Fraction(kv) / heads)
    mlp, ln, last, emb = 2 * h * d.ffn, 2 * h, h, d.vocab * h
    per_layer = attn + mlp + ln
    w3 = dp if zero >= 3 else 1
    weights = d.layers * per_layer * Fraction(weight_bits, 8) / tp / w3 + \
        last * Fraction(weight_bits, 8) / tp / w3 + emb * Fraction(embedding_bits, 8) / tp / w3
    total = d.layers * per_layer + last + emb
    s1, s2 = (dp if zero >= 1 else 1), (dp if zero >= 2 else 1)
    opt = 12 * Fraction(total, tp) / s1
    grad = 4 * Fraction(total, tp) / s2
    why = ("llm-analysis models a GPT-style transformer from its dimensions: no biases, no position "
           "embeddings, one 2h norm per layer, two MLP matrices, a head tied to the embedding")
    # activations of one layer in training (get_activation_memory_per_layer, is_inference=False,
    # its defaults: flash attention, no softmax dropout, an attention dropout mask of 1 B, no MLP
    # dropout, layer-norm inputs in fp32, no recomputation), 16-bit activations, sp = tp
    sbh, by = d.seq * a.batch * h, Fraction(16, 8)
    attn = (sbh / Fraction(tp) + 4 * Fraction(sbh, tp)) * by + (2 * sbh + 4 * heads * d.seq * a.batch) * by / tp \
        + Fraction(sbh, tp)
    mlp_act = by * Fraction(sbh, tp) + 2 * by * Fraction(d.ffn, h) * Fraction(sbh, tp)
    norms = 2 * Fraction(sbh, tp) * 4
    act = attn + mlp_act + norms
    return [ToolFigure("llm-analysis", "activations per layer (training)", act, f"{float(act):,.0f} B",
                       f"s={d.seq}, b={a.batch}: attention {float(attn):,.0f} + MLP {float(mlp_act):,.0f} + "
                       f"two layer norms {float(norms):,.0f}"),
            ToolFigure("llm-analysis", "weight memory", weights, f"{float(weights):,.0f} B",
                       f"{int(total):,} parameters as llm-analysis counts them, weights {weight_bits} bits, "
                       f"embedding {embedding_bits} bits", why),
            ToolFigure("llm-analysis", "optimizer states", opt, f"{float(opt):,.0f} B", "12 B per parameter (Adam)"),
            ToolFigure("llm-analysis", "gradients", grad, f"{float(grad):,.0f} B", "4 B per parameter")]


def _states(m) -> int:
    return sum(p.bytes for p in m.parts if p.name != "saved activations")


def counterparts(a, figs: list[ToolFigure], *, devices: int = 1, zero: int = 0, tp: int = 1,
                 checkpointing: str = "none") -> list[ToolFigure]:
    """Each tool's figure with calc's exact count of the same thing under the tool's settings
    (and the command's devices, ZeRO stage, tensor parallelism and checkpointing where the tool
    has them), where calc counts it; the difference is the tool's convention, said in ``differs``."""
    import dataclasses

    from ..errors import CalcError
    from .training import buffer_bytes, training_memory

    def train(**kw):
        return training_memory(a, **{"devices": devices, "tp": tp, "zero": zero, "checkpointing": checkpointing,
                                     **kw})
    dp = devices // tp if devices % tp == 0 else 1
    out = []
    for f in figs:
        value, how = None, ""
        try:
            if f.tool == "accelerate" and f.label == "float32 total size":
                value, how = a.root.params * 4 + buffer_bytes(a, 4), "weights + buffers in fp32"
            elif f.tool == "accelerate" and f.label == "float32 training using Adam":
                m = training_memory(a, optimizer="adam")
                value, how = _states(m), "fp32 Adam on one device: weights, buffers, gradients, states"
            elif f.tool.startswith("deepspeed") and f.label.startswith("per GPU"):
                z = 2 if f.tool.endswith("2") else 3
                m = training_memory(a, optimizer="adam", precision="bf16-mixed", master="copy", zero=z, devices=dp)
                value, how = _states(m), f"bf16-mixed, master copy, Adam, ZeRO-{z} over {dp}: all but activations"
            elif f.tool == "eleutherai" and f.label == "model + optimizer + gradients":
                value = _states(train(optimizer="adamw", precision="bf16-mixed", master="copy"))
                how = "bf16-mixed, master copy, AdamW, the same sharding: all but activations"
            elif f.tool == "korthikanti" and f.label.startswith("activations,"):
                value = train(precision="fp16-mixed").part("saved activations").bytes
                how = f"saved activations of the whole model in fp16, checkpointing {checkpointing}"
            elif f.tool == "llm-analysis" and f.label == "weight memory":
                value, how = train(precision="bf16").part("weights").bytes, "weights in 16 bits, the same sharding"
        except CalcError:
            value = None
        out.append(dataclasses.replace(f, calc=value, calc_how=how) if value is not None else f)
    return out


def figures(a, tool: str, *, gpus: int = 1, zero: int = 0, tp: int = 1, checkpointing: str = "none",
            optimizer: str = "adamw") -> list[ToolFigure]:
    """The figures of ``tool`` for analysis ``a`` under the command's settings where the tool has
    them (devices, ZeRO stage, tensor parallelism, recomputation, optimizer)."""
    if tool == "accelerate":
        return accelerate(a)
    if tool == "deepspeed-zero2":     # its G: the GPUs ZeRO partitions over (data parallel)
        return deepspeed(a, 2, max(gpus // tp, 1))
    if tool == "deepspeed-zero3":
        return deepspeed(a, 3, max(gpus // tp, 1))
    if tool == "eleutherai":
        return eleutherai(a, gpus=gpus, zero=zero, t=tp, recompute=checkpointing,
                          optimizer=optimizer if optimizer in ELEUTHER_OPT else "adamw")
    if tool == "korthikanti":
        return korthikanti(a, t=tp, mode=checkpointing)
    if tool == "llm-analysis":
        return llm_analysis(a, tp=tp, dp=max(gpus // tp, 1), zero=zero)
    raise SpecError(f"unknown memory convention '{tool}'; known: {', '.join(TOOLS)}")
