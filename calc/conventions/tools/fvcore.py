"""fvcore 0.1.5.post20221221, ``FlopCountAnalysis(model, x).total()``.

fvcore traces the model with torch.jit and counts the aten ops it has a handle for, for the
whole batch, one per multiply-accumulate (fvcore calls them flops). An op without a handle
counts 0 and is listed by ``unsupported_ops()``. The rules below name each calc layer type by
the aten ops its PyTorch module traces to.
"""
from __future__ import annotations

from ..engine import Convention, Rule, Runner, register
from .common import spatial_dims, upsample_mode
from ...shapes import broadcast, numel
from .common import EXTENDED_ATTENTION as _EXTENDED, EXTENDED_WHEN as _EXTENDED_WHEN, NOT_MEASURED as _NOT_MEASURED

CONV = "conv1d conv2d conv3d"
CONV_T = "conv_transpose1d conv_transpose2d conv_transpose3d"
ADAPTIVE_AVG = "adaptive_avgpool1d adaptive_avgpool2d adaptive_avgpool3d"
FREE = ("dropout stochastic_depth identity flatten reshape permute channel_shuffle channel_split pad roll to_tokens "
        "to_image select_token concat class_token gather parameter buffer")

RULES = {
    "moe mla": Rule(unsupported=True, why=_NOT_MEASURED),
    f"{CONV} {CONV_T} linear": Rule("mac", why="conv / linear / addmm handles: one per MAC, bias ignored"),
    "batchnorm1d batchnorm2d batchnorm3d": Rule("x * (1 + affine)",
                                                why="batchnorm_flop_jit in eval: #x, 2·#x with weight"),
    "layernorm groupnorm": Rule("x * (4 + affine)", why="norm_flop_counter: 4·#x, 5·#x with weight"),
    ADAPTIVE_AVG: Rule("x if dims == 2 else 0",
                       why="aten::adaptive_avg_pool2d counts #x; the 1-d and 3-d ops are unsupported"),
    "global_avgpool": Rule("0 if method or dims != 2 else x",
                           why="as adaptive_avg_pool2d(1): #x; x.mean() is not counted"),
    "upsample": Rule("(y if nearest else 4 * y) if dims == 2 else 0",
                     why="upsample_nearest2d #y, upsample_bilinear2d 4·#y; other modes and ranks unsupported"),
    "local_response_norm": Rule("0", why="decomposes into mul, pow, avg_pool and div, none of which has a handle"),
    "attention": Rule("proj_mac", why="nn.MultiheadAttention traces its projections as aten::linear; "
                                      "scaled_dot_product_attention is unsupported (need_weights=False)"
                                      + _EXTENDED, unsupported=_EXTENDED_WHEN),
    "rnn lstm gru": Rule("0", why="aten::lstm / gru / rnn are unsupported"),
    "embedding pos_embedding type_embedding token_mean rmsnorm": Rule(
        "0", why="no handle (embedding, add, mean, rms_norm): 0"),
    ("maxpool1d maxpool2d maxpool3d avgpool1d avgpool2d avgpool3d adaptive_maxpool1d adaptive_maxpool2d "
     "adaptive_maxpool3d global_maxpool relu relu6 leaky_relu elu sigmoid tanh gelu silu hardswish hardsigmoid softplus "
     "prelu softmax layer_scale add mul"): Rule(
        "0", why="no handle: counted as 0 and listed by unsupported_ops()"),
    FREE: Rule("0", why="a copy or a view: nothing to count"),
    "matmul": Rule("(1 - einsum) * a_numel * cols", batch="einsum * einsum_count",
                   why="aten::matmul (torch.matmul and @ trace alike): matmul_flop_jit "
                       "counts #a × p, the first operand's elements times the second's "
                       "columns (a broadcast batch of the second is not seen); aten::einsum (call: einsum): "
                       "einsum_flop_jit's general path, half of numpy's optimal-path FLOP count as "
                       "einsum_path prints it (%.3e: 4 significant digits), for the whole batch"),
    "scale": Rule("0", why="aten::mul has no handle"),
    "exp clamp normalize": Rule("0", why="aten::exp, clamp, linalg_vector_norm and div have no handle"),
}


def run(module, x, shape) -> int:
    """fvcore's figure for ``module`` on the batch ``x``: FlopCountAnalysis(...).total()."""
    from fvcore.nn import FlopCountAnalysis
    analysis = FlopCountAnalysis(module, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(analysis.total())


def einsum_count(layer, shapes, out, batch: int) -> dict:
    """einsum_count: what fvcore's einsum_flop_jit gives for a two-operand einsum of the whole
    batch (jit_handles.py, fvcore 0.1.5): numpy's einsum_path (numpy 2.4, einsumfunc.py) reports
    the optimal path's cost, 2 × (the product of every index size) + 1 = 2·N·b·n·m·p + 1, as text
    with '%.3e'; fvcore reads the text back and halves it, flooring."""
    a, b = shapes
    m, p = a[-1], (b[-2] if layer.transpose else b[-1])
    cost = 2 * batch * numel(broadcast(a[:-2], b[:-2])) * a[-2] * m * p + 1   # numpy adds 1 (opt_cost)
    return {"einsum_count": int(float("%.3e" % cost) // 2)}


einsum_count.by_batch = True


register(Convention(
    "fvcore",
    "fvcore's FlopCountAnalysis(...).total(): a torch.jit trace of aten ops for the whole batch, "
    "one per MAC (fvcore calls them flops). Convolution and linear without bias; batch norm in eval "
    "1 per element (2 when affine); layer and group norm 4 per element (5 with weight); "
    "adaptive_avg_pool2d and 2-d upsampling by their own handles. Every other op (max and average "
    "pooling, activations, element-wise adds and multiplies) counts 0 and is listed as unsupported.",
    macs=RULES, source="fvcore 0.1.5.post20221221, FlopCountAnalysis(model, x).total()",
    explicit=True, derived={f"{ADAPTIVE_AVG} global_avgpool": spatial_dims, "upsample": upsample_mode,
                            "matmul": einsum_count},
    runner=Runner("fvcore", run),
))
