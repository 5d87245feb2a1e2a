"""thop (0.1.1.post2209072238) and the older thop an article printed (thop-legacy).

thop's ``profile(model, (x,))`` registers a forward hook on every module whose exact type is in
its table of counters (a subclass is missed) and adds what the hook counts for the whole batch,
in float64, to the module's ``total_ops``. Functional calls and Python operators are never
seen. The rules below name each calc layer type by the PyTorch module it stands for.
"""
from __future__ import annotations

from fractions import Fraction
from math import prod

from ...shapes import Shape
from ..engine import Convention, Rule, Runner, register
from .common import Float64, float64_product, layernorm_subclass, upsample_mode
from .common import EXTENDED_ATTENTION as _EXTENDED, EXTENDED_WHEN as _EXTENDED_WHEN, NOT_MEASURED as _NOT_MEASURED

# calc layer types grouped as thop's counters take them (every type listed by name).
CONV = "conv1d conv2d conv3d"
CONV_T = "conv_transpose1d conv_transpose2d conv_transpose3d"
ADAPTIVE_AVG = "adaptive_avgpool1d adaptive_avgpool2d adaptive_avgpool3d"
ZERO_COUNTER = ("relu relu6 leaky_relu maxpool1d maxpool2d maxpool3d adaptive_maxpool1d adaptive_maxpool2d "
                "adaptive_maxpool3d global_maxpool")
NO_HOOK = "groupnorm local_response_norm elu sigmoid tanh gelu silu hardswish hardsigmoid softplus"
FREE = ("dropout stochastic_depth identity flatten reshape permute channel_shuffle channel_split pad roll to_tokens "
        "to_image select_token concat class_token gather parameter buffer")


# ---------------------------------------------------------------------------- facts

def adaptive_avgpool(layer, shape: Shape, out: Shape) -> dict:
    """kernel_avg: count_adap_avgpool's kernel, ∏ in_i/out_i in float64 (each ratio a double
    division, multiplied left to right); kernel_floor: the older thop's ∏ floor(in_i/out_i)."""
    ratios = [Float64.of(Fraction(n, o)) for n, o in zip(shape[1:], out[1:])]
    return {"kernel_avg": float64_product(ratios),
            "kernel_floor": prod(n // o for n, o in zip(shape[1:], out[1:]))}


DERIVED = {ADAPTIVE_AVG: adaptive_avgpool, "upsample": upsample_mode, "layernorm": layernorm_subclass}


# ---------------------------------------------------------------------------- rules

RULES = {
    "moe mla": Rule(unsupported=True, why=_NOT_MEASURED),
    CONV: Rule("module * mac", why="output elements × input channels/groups × kernel; bias ignored"),
    CONV_T: Rule("module * y * (c_in // groups) * kernel",
                 why="the convolution formula on the output (overcounts by S_out/S_in)"),
    "linear": Rule("module * mac", why="in_features × output elements; bias ignored"),
    "batchnorm1d batchnorm2d batchnorm3d": Rule("module * x * (2 + 2 * affine)",
                                                why="2 per element, doubled when affine"),
    "layernorm": Rule("0 if channels else module * x * (2 + 2 * affine)",
                      why="2 per element, doubled when affine; torchvision's LayerNorm2d is a subclass "
                          "that thop's exact type lookup misses"),
    NO_HOOK: Rule("0", why="no hook registered for this type"),
    "prelu": Rule("module * x", why="count_prelu: one per element"),
    ZERO_COUNTER: Rule("0", why="registered with a zero counter"),
    "softmax": Rule("module * (exp + add + div)", why="count_softmax: (3n − 1) per row of n"),
    "avgpool1d avgpool2d avgpool3d": Rule("module * y", why="count_avgpool: one per output element"),
    ADAPTIVE_AVG: Rule(batch="module * int((kernel_avg + 1) * (y * N))",
                       why="count_adap_avgpool: (∏ in_i/out_i + 1) per output element in float64, "
                           "truncated by int() for the whole batch"),
    "global_avgpool": Rule("module * (spatial_in + 1) * y",
                           why="as AdaptiveAvgPool(1): (∏S + 1) per output element"),
    "upsample": Rule("module * y * (1 if nearest else 5 if dims == 1 else 11 if dims == 2 else 0)",
                     why="count_upsample: per output element nearest 1, linear 5, bilinear 11; "
                         "trilinear is never reached (0)"),
    "layer_scale": Rule("0", why="a parameter multiplied with `*` inside a container: invisible"),
    "add mul": Rule("0", why="operators and torch functions are invisible to module hooks"),
    "embedding rmsnorm": Rule("0", why="no hook registered for this type (nn.Embedding, nn.RMSNorm)"),
    "attention": Rule("0", why="no hook registered for nn.MultiheadAttention" + _EXTENDED, unsupported=_EXTENDED_WHEN),
    "pos_embedding type_embedding token_mean": Rule(
        "0", why="a table added with `+`, or x.mean(): no module hook counts"),
    "rnn": Rule("module * (mac + bias_add + steps * cells * hidden)",
                why="rnn_hooks: per step and cell H·(I + H) + H, plus 2H bias; whole sequence and batch"),
    "gru": Rule("module * (mac + bias_add + 7 * steps * cells * hidden)",
                why="rnn_hooks: per step and cell 3·[(I + H)·H + H + 2H bias] + H + 3H"),
    "lstm": Rule("module * (mac + bias_add + 8 * steps * cells * hidden)",
                 why="rnn_hooks: per step and cell 4·[(I + H)·H + H + 2H bias] + 3H + H"),
    FREE: Rule("0", why="zero or no hook"),
    "exp clamp normalize": Rule("0", why="functions (torch.exp, torch.clamp, F.normalize): no module hook"),
    "matmul scale": Rule("0", why="torch.matmul, @ and * are functions and operators: no module hook sees them"),
}


def run(module, x, shape) -> int:
    """thop's figure for ``module`` on the batch ``x``: profile()'s MACs."""
    from thop import profile
    macs, _ = profile(module, inputs=(x,), verbose=False)
    return int(macs)


register(Convention(
    "thop",
    "thop's profile(): forward hooks on modules looked up by exact type, whole batch, MACs. Convolution "
    "and linear without bias; normalisation 2 (affine 4) per element; softmax, average pooling and "
    "upsampling by their own formulas; ReLU, max pooling, GroupNorm and every functional call or "
    "operator count nothing. Adaptive average pooling is computed in float64 and truncated.",
    macs=RULES, source="thop 0.1.1.post2209072238, profile(model, (x,))",
    explicit=True, derived=DERIVED, runner=Runner("thop", run),
))

register(Convention(
    "thop-legacy",
    "An older thop, as an article printed it for torchvision's AlexNet (714,691,904 MACs at "
    "3×224×224): convolution bias counted as one add per output element, linear layers without bias, "
    "and adaptive average pooling as (∏ floor(in_i/out_i) + 1) per output element. Other layers "
    "are counted as the current thop counts them.",
    macs={**RULES,
          CONV: Rule("module * (mac + bias_add)", why="kernel ops plus one bias add per output element"),
          CONV_T: Rule("module * (y * (c_in // groups) * kernel + bias_add)",
                       why="the convolution formula on the output, plus bias"),
          ADAPTIVE_AVG: Rule("module * (kernel_floor + 1) * y",
                             why="(∏ floor(in_i/out_i) + 1) per output element")},
    source="thop before 0.1 (older count_convNd and count_adap_avgpool)",
    explicit=True, derived=DERIVED,
))
