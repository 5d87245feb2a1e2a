"""Counting conventions: data that decides what counts as a MAC and a FLOP.

A convention maps a layer (by type, then by kind) to a :class:`Rule`: expressions over the
layer's facts — the elementary operations from :mod:`calc.layers` (``mac``, ``bias_add``,
``add``, ``cmp`` …), the layer-specific facts (``spatial_out``, ``kernel_avg`` …), ``x`` and
``y`` (input and output elements per sample; also ``in`` and ``out``, which a rule cannot
name because ``in`` is a Python keyword), ``params``, ``weights``, ``biases``, and the hint
facts (``module``, ``functional``, ``operator``, ``method``, ``contiguous``, ``leaf``; see
:data:`calc.layers.HINTS`). The formulas never look at the convention; the convention never
recomputes a formula.

A rule has two parts because some tools do not count in proportion to the batch:

* ``sample``: a count for one sample; the analysis multiplies it by the batch size;
* ``batch``: a count for the whole batch, evaluated with ``N`` (the batch size) and not
  multiplied. ptflops divides its module-hook counts by its batch counter (so they are the
  same for any batch), and thop truncates a float per layer for the whole batch.

A layer type a convention has no rule for, or a rule marked ``unsupported``, is a
:class:`ConventionError` naming the layer — never a silent zero. A rule of ``0`` is a
statement (the tool sees the layer and counts nothing), with its reason in ``why``.

The tool presets follow how each tool counts (verified formulas: thop 0.1.1.post2209072238,
ptflops 0.7.5, fvcore 0.1.5.post20221221, torchinfo 1.8.0, torch 2.13.0
``torch.utils.flop_counter``). Where the count depends on how the PyTorch code calls a layer,
they read the hint facts, whose defaults assume modules and Python operators. Their
``attention`` rules model nn.MultiheadAttention (batch_first=True, need_weights=False, as in
torchvision's ViT) and their recurrent rules batch_first=True inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Mapping, NamedTuple, Union

from .errors import ConventionError
from .expr import _Undefined, compile_expr

# Every fact name a rule may use; missing ones are zero for a layer.
OP_NAMES = ("mac", "dots", "bias_add", "add", "mul", "div", "cmp", "exp", "sqrt", "fn")
BASE_FACTS = dict.fromkeys(OP_NAMES, 0)

Number = Union[int, Fraction]


@dataclass(frozen=True)
class Rule:
    """How a convention counts one layer type or kind.

    ``sample`` is a count per sample (scaled by the batch); ``batch`` a count for the whole
    batch that may use ``N`` and is not scaled. ``why`` says which behaviour the rule
    reproduces. ``unsupported`` refuses the layer with a ConventionError giving ``why`` as the
    reason: always (True), or when its condition (an expression over the facts) holds.
    """

    sample: str = "0"
    batch: str = "0"
    why: str = ""
    unsupported: Union[bool, str] = False

    def text(self) -> str:
        """The rule as one line: 'mac + bias_add', or with its batch part."""
        if self.unsupported is True:
            return "cannot count (an error)"
        if self.unsupported:
            return self._formula() + f"; cannot count (an error) when {self.unsupported}"
        return self._formula()

    def _formula(self) -> str:
        if self.batch == "0":
            return self.sample
        if self.sample == "0":
            return f"{self.batch} for the batch"
        return f"{self.sample} per sample + {self.batch} for the batch"


RuleSpec = Union[str, Rule]


class Count(NamedTuple):
    """One layer's count: ``macs``/``flops`` per sample (integers), and ``macs_batch``/
    ``flops_batch`` for the whole batch (exact; a fraction only where a tool divides)."""

    macs: int
    flops: int
    macs_batch: Number = 0
    flops_batch: Number = 0


def _rules(spec: Mapping[str, RuleSpec]) -> dict[str, Rule]:
    """Expand ``{"conv conv_transpose": rule}`` into one entry per type or kind."""
    out: dict[str, Rule] = {}
    for keys, rule in spec.items():
        for key in keys.split():
            if key in out:
                raise RuntimeError(f"rule for {key!r} given twice")
            out[key] = rule if isinstance(rule, Rule) else Rule(rule)
    return out


def _exact(value) -> Number:
    """A rule's value as an exact number (floats come from thop-style float arithmetic)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        value = Fraction(value)
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else value
    raise ConventionError(f"a rule gave {value!r}, not a number")


@dataclass(frozen=True)
class Convention:
    name: str
    description: str
    macs: Mapping[str, Rule]
    flops: Mapping[str, Rule] | None = None   # None: FLOPs = 2 × MACs
    reports: str = "macs"                     # the figure the tool itself prints: macs or flops
    source: str = ""                          # the tool and call it reproduces
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "macs", _rules(self.macs))
        if self.flops is not None:
            object.__setattr__(self, "flops", _rules(self.flops))

    def rule(self, table: Mapping[str, Rule], type_name: str, kind: str) -> Rule:
        for key in (type_name, kind):
            if key in table:
                return table[key]
        raise ConventionError(f"convention '{self.name}' has no rule for layer type '{type_name}' "
                              f"(kind '{kind}')")

    def rules(self, type_name: str, kind: str) -> tuple[Rule, Rule]:
        """The (MAC rule, FLOP rule) of a layer type; the FLOP rule defaults to 2 × MACs."""
        macs = self.rule(self.macs, type_name, kind)
        if self.flops is not None:
            return macs, self.rule(self.flops, type_name, kind)
        return macs, Rule(_twice(macs.sample), _twice(macs.batch), "2 × MACs")

    def count(self, type_name: str, kind: str, facts: Mapping[str, Any], batch: int = 1) -> Count:
        """The MACs and FLOPs of one layer (see :class:`Count`)."""
        compiled = self._cache.get(type_name)
        if compiled is None:
            rules = self.rules(type_name, kind)
            for rule in rules:
                if rule.unsupported is True:
                    raise ConventionError(f"convention '{self.name}' cannot count layer type '{type_name}': {rule.why}")
            refusals = tuple((r.unsupported, compile_expr(r.unsupported), r.why) for r in rules
                             if isinstance(r.unsupported, str))
            compiled = (refusals, *((r.sample, compile_expr(r.sample), r.batch, compile_expr(r.batch)) for r in rules))
            self._cache[type_name] = compiled
        refusals, *compiled = compiled
        for text, test, why in refusals:
            if self._eval(test, text, type_name, facts):
                raise ConventionError(f"convention '{self.name}' cannot count this {type_name} ({text}): {why}")
        values = []
        for sample_text, sample, batch_text, whole in compiled:
            per_sample = self._eval(sample, sample_text, type_name, facts)
            extra = self._eval(whole, batch_text, type_name, {**facts, "N": batch}) if batch_text != "0" else 0
            if not isinstance(per_sample, int):
                # A fractional per-sample count is exact only for the whole batch.
                extra, per_sample = _exact(extra + per_sample * batch), 0
            values.append((per_sample, extra))
        (m, mb), (f, fb) = values
        return Count(m, f, mb, fb)

    def _eval(self, fn, text, type_name, env) -> Number:
        try:
            return _exact(fn(env))
        except _Undefined as exc:
            raise ConventionError(f"convention '{self.name}': the rule {text!r} for layer type "
                                  f"'{type_name}' uses '{exc.name}', which that layer does not provide") from None


def _twice(text: str) -> str:
    return "0" if text == "0" else f"2 * ({text})"


# ---------------------------------------------------------------------------- kinds
# Groups of layer kinds (see `calc layers`); a new layer kind needs a rule in every convention.
DOT = "conv conv_transpose linear attention recurrent"
POOLS = "maxpool avgpool adaptive_avgpool adaptive_maxpool global_avgpool global_maxpool token_mean"
NORMS = "batchnorm layernorm groupnorm lrn rmsnorm"
FREE = "dropout identity reshape concat class_token"
REST = "activation softmax layer_scale upsample add mul embedding added_embedding"
NOT_DOT = " ".join((POOLS, NORMS, FREE, REST))
ACTIVATIONS = "relu relu6 leaky_relu elu sigmoid tanh gelu silu hardswish hardsigmoid prelu"

CONVENTIONS: dict[str, Convention] = {}


def _add(conv: Convention) -> Convention:
    if conv.name in CONVENTIONS:
        raise RuntimeError(f"convention {conv.name!r} defined twice")
    CONVENTIONS[conv.name] = conv
    return conv


def get(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ConventionError(f"unknown convention '{name}'; known: {', '.join(CONVENTIONS)}") from None


_NOT_DOT = Rule("0", why="only dot products (convolution, linear, attention, recurrent) are counted")
_FREE = Rule("0", why="a copy or a view: nothing to count")

# ---------------------------------------------------------------------------- calc's own

_add(Convention(
    "standard",
    "Multiply-accumulates of convolutions, linear layers, attention (its projections and both "
    "attention matmuls, Q·Kᵀ and attention·V, in full even when causal) and recurrent layers "
    "(W_ih·x and W_hh·h at every step), without bias; FLOPs = 2 × MACs. Activations, pooling, "
    "normalisation, embeddings and element-wise sums cost nothing. This is what "
    "torch.utils.flop_counter reports (as FLOPs, 2 per MAC) on convolutional networks and what "
    "torchvision publishes as GFLOPS (PyTorch's CPU counter sees neither the attention matmuls nor "
    "LSTMs; torchvision's ViT figures include the attention matmuls).",
    macs={DOT: Rule("mac", why="one MAC per weight per output position; the bias is left out"),
          NOT_DOT: _NOT_DOT},
))

_add(Convention(
    "with-bias",
    "As standard, plus one operation per bias element per output position (a convolution with "
    "bias costs C_in/g·K_h·K_w + 1 per output element); FLOPs = 2 × MACs. This is the MAC count of "
    "ptflops' aten backend and of torchinfo on networks made of convolutions and linear layers.",
    macs={DOT: Rule("mac + bias_add", why="the dot product's MACs and one add per biased output"),
          NOT_DOT: _NOT_DOT},
))

_EXACT = ("2 * mac - dots + bias_add + add + mul + div + cmp + exp + sqrt + fn")
_add(Convention(
    "exact",
    "Every individual arithmetic operation is one FLOP: a dot product of length n is n multiplies "
    "and n − 1 adds, so a convolution without bias costs 2·C_in/g·K_h·K_w − 1 FLOPs per output "
    "element and with bias 2·C_in/g·K_h·K_w; activations, pooling, normalisation, softmax and "
    "element-wise joins count their operations as `calc layers` lists them (ReLU 1 comparison per "
    "element, sigmoid 4, max pooling k − 1 comparisons per output, average pooling k − 1 adds and "
    "1 divide). MACs are the dot-product MACs, as in standard.",
    macs={DOT: Rule("mac", why="dot-product MACs, as in standard"), NOT_DOT: _NOT_DOT},
    flops={f"{DOT} {NOT_DOT}": Rule(_EXACT, why="every multiply, add, divide, comparison, exponential, "
                                    "square root and special function once; a dot product of n terms "
                                    "is n multiplies and n − 1 adds")},
))

_add(Convention(
    "params-hw",
    "The teaching convention: a layer with weights costs its parameters (weights and bias) once "
    "per output position — a convolution params × H_out·W_out (AlexNet 2012's first convolution: "
    "[(11·11·3)·96 + 96]·55·55 = 105,705,600), a linear layer params × rows, attention params × "
    "query positions, a recurrent layer params × steps. Everything else costs nothing; FLOPs = 2 × MACs.",
    macs={"conv conv_transpose": Rule("params * spatial_out", why="(weights + bias) × output positions"),
          "linear": Rule("params * rows", why="(weights + bias) × rows"),
          "attention": Rule("params * q_len", why="(weights + bias) × query positions; the parameter-free "
                                                  "attention matmuls are not counted"),
          "recurrent": Rule("params * steps", why="(weights + bias) × time steps: every weight is used "
                                                  "once per step"),
          NOT_DOT: Rule("0", why="only convolutions, linear layers, attention and recurrent layers are counted")},
))

# ---------------------------------------------------------------------------- tool presets

_MODULE_ONLY = "hooks modules only, so a functional call is invisible"

_THOP = {
    "conv": Rule("module * mac", why="output elements × input channels/groups × kernel; bias ignored"),
    "conv_transpose": Rule("module * y * (c_in // groups) * kernel",
                           why="the convolution formula on the output (overcounts by S_out/S_in)"),
    "linear": Rule("module * mac", why="in_features × output elements; bias ignored"),
    "batchnorm": Rule("module * x * (2 + 2 * affine)", why="2 per element, doubled when affine"),
    "layernorm": Rule("0 if channels else module * x * (2 + 2 * affine)",
                      why="2 per element, doubled when affine; torchvision's LayerNorm2d is a subclass "
                          "that thop's exact type lookup misses"),
    "groupnorm lrn": Rule("0", why="no hook registered for this type"),
    "prelu": Rule("module * x", why="count_prelu: one per element"),
    "relu relu6 leaky_relu": Rule("0", why="registered with a zero counter"),
    "elu sigmoid tanh gelu silu hardswish hardsigmoid": Rule("0", why="no hook registered for this type"),
    "softmax": Rule("module * (exp + add + div)", why="count_softmax: (3n − 1) per row of n"),
    "maxpool adaptive_maxpool global_maxpool": Rule("0", why="registered with a zero counter"),
    "avgpool": Rule("module * y", why="count_avgpool: one per output element"),
    "adaptive_avgpool": Rule(batch="module * int((kernel_avg + 1) * (y * N))",
                             why="count_adap_avgpool: (∏ in_i/out_i + 1) per output element in float64, "
                                 "truncated by int() for the whole batch"),
    "global_avgpool": Rule("module * (spatial_in + 1) * y",
                           why="as AdaptiveAvgPool(1): (∏S + 1) per output element"),
    "upsample": Rule("module * y * (1 if nearest else 5 if dims == 1 else 11 if dims == 2 else 0)",
                     why="count_upsample: per output element nearest 1, linear 5, bilinear 11; "
                         "trilinear is never reached (0)"),
    "layer_scale": Rule("0", why="a parameter multiplied with `*` inside a container: invisible"),
    "add mul": Rule("0", why="operators and torch functions are invisible to module hooks"),
    "attention embedding rmsnorm": Rule("0", why="no hook registered for this type "
                                               "(nn.MultiheadAttention, nn.Embedding, nn.RMSNorm)"),
    "added_embedding token_mean": Rule("0", why="a table added with `+`, or x.mean(): no module hook counts"),
    "rnn": Rule("module * (mac + bias_add + steps * cells * hidden)",
                why="rnn_hooks: per step and cell H·(I + H) + H, plus 2H bias; whole sequence and batch"),
    "gru": Rule("module * (mac + bias_add + 7 * steps * cells * hidden)",
                why="rnn_hooks: per step and cell 3·[(I + H)·H + H + 2H bias] + H + 3H"),
    "lstm": Rule("module * (mac + bias_add + 8 * steps * cells * hidden)",
                 why="rnn_hooks: per step and cell 4·[(I + H)·H + H + 2H bias] + 3H + H"),
    FREE: Rule("0", why="zero or no hook"),
}

_add(Convention(
    "thop",
    "thop's profile(): forward hooks on modules looked up by exact type, whole batch, MACs. Convolution "
    "and linear without bias; normalisation 2 (affine 4) per element; softmax, average pooling and "
    "upsampling by their own formulas; ReLU, max pooling, GroupNorm and every functional call or "
    "operator count nothing. Adaptive average pooling is computed in float64 and truncated.",
    macs=_THOP, source="thop 0.1.1.post2209072238, profile(model, (x,))",
))

_add(Convention(
    "thop-legacy",
    "An older thop, as an article printed it for torchvision's AlexNet (714,691,904 MACs at "
    "3×224×224): convolution bias counted as one add per output element, linear layers without bias, "
    "and adaptive average pooling as (∏ floor(in_i/out_i) + 1) per output element. Other layers "
    "are counted as the current thop counts them.",
    macs={**_THOP,
          "conv": Rule("module * (mac + bias_add)", why="kernel ops plus one bias add per output element"),
          "conv_transpose": Rule("module * (y * (c_in // groups) * kernel + bias_add)",
                                 why="the convolution formula on the output, plus bias"),
          "adaptive_avgpool": Rule("module * (kernel_floor + 1) * y",
                                   why="(∏ floor(in_i/out_i) + 1) per output element")},
    source="thop before 0.1 (older count_convNd and count_adap_avgpool)",
))

_PT_MOD = "module hook, divided by ptflops' batch counter (so per sample, whatever the batch)"
_PT_F = "patched torch.nn.functional call, counted for the whole batch"
_add(Convention(
    "ptflops",
    "ptflops with backend='pytorch': module hooks by exact type (conv and linear with bias, "
    "normalisation, activations, pooling) divided by its batch counter, plus patched functionals "
    "(F.relu, F.silu, F.softmax, the F.*pool* functions, F.interpolate, torch.add, torch.mul) "
    "counted for the whole batch. nn.ReLU, nn.ELU, nn.GELU, nn.PReLU and the pooling modules call "
    "a patched functional and are therefore counted twice; Python operators are never counted. "
    "Total = int(module hooks / batch + functionals).",
    macs={
        "conv conv_transpose linear": Rule(batch="module * (mac + bias_add)", why=_PT_MOD + "; bias included"),
        "batchnorm groupnorm": Rule(batch="module * x * (1 + affine)",
                                    why=_PT_MOD + "; one per element, two when affine"),
        "layernorm": Rule(batch="0 if channels else module * x",
                          why=_PT_MOD + "; one per element (LayerNorm has no `affine` attribute); "
                              "LayerNorm2d is a subclass the exact type lookup misses"),
        "lrn": Rule(why="not verified: F.local_response_norm calls patched Tensor.mul, Tensor.add and "
                        "avg_pool3d internally", unsupported=True),
        "relu elu gelu prelu": Rule("x", "module * y",
                                    why="module hook (one per output element) plus the patched functional "
                                        "the module calls (one per input element)"),
        "relu6": Rule("functional * x", "module * y",
                      why="module hook; nn.ReLU6 calls F.hardtanh, which is not patched (F.relu6 is)"),
        "leaky_relu": Rule(batch="module * y", why="module hook; F.leaky_relu is not patched"),
        "silu softmax": Rule("x", why="no module hook; the patched F.silu / F.softmax counts #x"),
        "sigmoid tanh hardswish hardsigmoid": Rule("0", why="neither hooked nor patched"),
        "maxpool avgpool adaptive_avgpool adaptive_maxpool": Rule(
            "x", "module * x", why="module hook (#x) plus the patched F.*pool* it calls (#x)"),
        "global_avgpool global_maxpool": Rule(
            "0 if method else x", "module * x",
            why="as nn.Adaptive*Pool(1): module hook plus patched functional; x.mean() is not patched"),
        "upsample": Rule("y if by_size else x * scale_prod", "module * y / N",
                         why="nn.Upsample's hook counts one sample's output, then is divided by the batch "
                             "counter; F.interpolate counts prod(size)·N·C or #x·∏scale"),
        "add mul": Rule("functional * y", why="torch.add/torch.mul/Tensor.add/Tensor.mul are patched "
                                                "(#broadcast); Python operators are not"),
        "layer_scale": Rule("0", why="a parameter multiplied with `*`: an operator"),
        "attention": Rule(batch="module * (q_len * dim + q_len * dim * dim + 2 * kv_len * kv_dim * kv_dim "
                                "+ (q_len + 2 * kv_len) * dim * qkv_bias + heads * (q_len * kv_len * dim // heads "
                                "+ q_len * kv_len + q_len * kv_len * kv_dim // heads) + q_len * kv_dim * (kv_dim + 1))",
                          why=_PT_MOD + "; multihead_attention_counter_hook, for nn.MultiheadAttention with "
                              "batch_first=True called with need_weights=False (torchvision's ViT): with "
                              "need_weights=True the patched bmm and softmax would add to it"),
        "rnn": Rule(batch="module * (mac + bias_add + steps * cells * hidden)",
                    why=_PT_MOD + "; rnn_flops_counter_hook: #W_ih + #W_hh + H + biases per step and layer "
                        "(batch_first=True: a seq-first input makes the batch counter the sequence length)"),
        "gru": Rule(batch="module * (mac + bias_add + 7 * steps * cells * hidden)",
                    why=_PT_MOD + "; rnn_flops_counter_hook: #W_ih + #W_hh + 7H + biases per step and layer "
                        "(batch_first=True)"),
        "lstm": Rule(batch="module * (mac + bias_add + 10 * steps * cells * hidden)",
                     why=_PT_MOD + "; rnn_flops_counter_hook: #W_ih + #W_hh + 10H + biases per step and layer "
                         "(batch_first=True)"),
        "embedding added_embedding token_mean rmsnorm": Rule(
            "0", why="not in the module mapping, and no patched function is called"),
        FREE: _FREE,
    },
    source="ptflops 0.7.5, get_model_complexity_info(..., backend='pytorch')",
))

_add(Convention(
    "ptflops-aten",
    "ptflops with backend='aten': a dispatch mode over aten ops for the whole batch that counts only "
    "convolutions and matrix products. Convolution bias adds are counted; a linear layer's bias "
    "only when its input is contiguous (it becomes addmm; otherwise mm + add). Normalisation, "
    "activations, pooling and element-wise operations count nothing.",
    macs={
        "conv conv_transpose": Rule("mac + bias_add", why="aten.convolution: N·#w·S_out, plus N·C_out·S_out with bias"),
        "linear": Rule("mac + contiguous * bias_add",
                       why="addmm (bias counted) on a contiguous input, mm + add otherwise"),
        "attention": Rule("proj_mac + q_len * out_dim * has_out_bias",
                          "(bias_add - q_len * out_dim * has_out_bias) if N == 1 else 0",
                          why="nn.MultiheadAttention (batch_first=True, need_weights=False): the projections "
                              "as addmm; the packed in-projection's bias only when its transposed input is "
                              "contiguous, i.e. at batch 1; SDPA is not counted"),
        "rnn gru": Rule("mac + (steps * gates * hidden if bias_add else 0)", unsupported="num_layers > 1 or dirs > 1",
                        why="the CPU kernel decomposes into mm/addmm with one bias vector per step; which bias "
                            "vectors a multi-layer or bidirectional layer adds is not modelled"),
        "lstm": Rule("0", why="the CPU LSTM is one fused op, which is not counted"),
        NOT_DOT: Rule("0", why="only convolution, mm, addmm and bmm are counted"),
    },
    source="ptflops 0.7.5, get_model_complexity_info(..., backend='aten')",
))

_add(Convention(
    "fvcore",
    "fvcore's FlopCountAnalysis(...).total(): a torch.jit trace of aten ops for the whole batch, "
    "one per MAC (fvcore calls them flops). Convolution and linear without bias; batch norm in eval "
    "1 per element (2 when affine); layer and group norm 4 per element (5 with weight); "
    "adaptive_avg_pool2d and 2-d upsampling by their own handles. Every other op (max and average "
    "pooling, activations, element-wise adds and multiplies) counts 0 and is listed as unsupported.",
    macs={
        "conv conv_transpose linear": Rule("mac", why="conv / linear / addmm handles: one per MAC, bias ignored"),
        "batchnorm": Rule("x * (1 + affine)", why="batchnorm_flop_jit in eval: #x, 2·#x with weight"),
        "layernorm groupnorm": Rule("x * (4 + affine)", why="norm_flop_counter: 4·#x, 5·#x with weight"),
        "adaptive_avgpool": Rule("x if dims == 2 else 0",
                                 why="aten::adaptive_avg_pool2d counts #x; the 1-d and 3-d ops are unsupported"),
        "global_avgpool": Rule("0 if method or dims != 2 else x",
                               why="as adaptive_avg_pool2d(1): #x; x.mean() is not counted"),
        "upsample": Rule("(y if nearest else 4 * y) if dims == 2 else 0",
                         why="upsample_nearest2d #y, upsample_bilinear2d 4·#y; other modes and ranks unsupported"),
        "lrn": Rule("0", why="decomposes into mul, pow, avg_pool and div, none of which has a handle"),
        "attention": Rule("proj_mac", why="nn.MultiheadAttention traces its projections as aten::linear; "
                                          "scaled_dot_product_attention is unsupported (need_weights=False)"),
        "recurrent": Rule("0", why="aten::lstm / gru / rnn are unsupported"),
        "embedding added_embedding token_mean rmsnorm": Rule(
            "0", why="no handle (embedding, add, mean, rms_norm): 0"),
        "maxpool avgpool adaptive_maxpool global_maxpool activation softmax layer_scale add mul": Rule(
            "0", why="no handle: counted as 0 and listed by unsupported_ops()"),
        FREE: _FREE,
    },
    source="fvcore 0.1.5.post20221221, FlopCountAnalysis(model, x).total()",
))

_add(Convention(
    "torchinfo",
    "torchinfo's summary().total_mult_adds: for each call of a leaf module, each parameter named "
    "weight or bias costs its size times the batch — times the output positions when 'Conv' is in the "
    "class name. A convolution thus costs (weights + bias)·S_out per sample, a linear layer "
    "weights + bias per sample whatever its rows, a norm its parameters; parameter-free layers, "
    "functional calls and parameters owned by containers cost nothing.",
    macs={
        "conv conv_transpose": Rule("leaf * module * params * spatial_out",
                                    why="'Conv' in the class name: (#w + #b) × output positions"),
        "linear": Rule("leaf * module * params", why="(#w + #b) × the first output dimension only"),
        "batchnorm layernorm groupnorm prelu": Rule("leaf * module * params", why="#params × batch"),
        "layer_scale": Rule("0", why="the scale is a container parameter (torchvision) or not named "
                                     "weight/bias (timm's gamma)"),
        f"lrn {POOLS} activation softmax upsample add mul": Rule("0", why="no parameters"),
        "embedding added_embedding rmsnorm": Rule("leaf * module * params",
                                                  why="#params × batch (nn.Embedding, nn.RMSNorm); a table held "
                                                      "by a container (ViT's pos_embedding) needs owner: container"),
        "attention": Rule("0", why="nn.MultiheadAttention is not a leaf (its in_proj_weight is a container "
                                   "parameter) and its out_proj is never called"),
        "recurrent": Rule("leaf * module * steps * params", why="prod(y.shape[:2]) × #params: steps × batch"),
        FREE: _FREE,
    },
    source="torchinfo 1.8.0, summary(model, input_size=...).total_mult_adds",
))

_add(Convention(
    "torch",
    "PyTorch's torch.utils.flop_counter.FlopCounterMode: a dispatch mode with formulas for "
    "convolutions and matrix products only, 2 FLOPs per MAC, bias ignored, whole batch. Identical "
    "to standard on convolutional networks; on CPU it misses the attention matmuls (no formula for "
    "the CPU attention kernel) and LSTMs. Its figure is the FLOPs.",
    macs={"conv conv_transpose linear": Rule("mac", why="conv_flop / addmm_flop: 2 per MAC (reported as FLOPs), "
                                                        "bias ignored"),
          "attention": Rule("proj_mac", why="the projections (addmm); the CPU attention kernel has no formula "
                                            "(need_weights=False, grad enabled)"),
          "rnn gru": Rule("mac", why="the CPU kernel decomposes into mm/addmm: W_ih·x and W_hh·h every step"),
          "lstm": Rule("0", why="the CPU LSTM is one fused op without a formula"),
          NOT_DOT: Rule("0", why="no flop formula registered for these ops")},
    reports="flops",
    source="torch 2.13.0, torch.utils.flop_counter.FlopCounterMode (grad enabled)",
))
