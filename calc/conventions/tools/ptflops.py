"""ptflops 0.7.5, ``get_model_complexity_info`` with its two backends.

backend='pytorch' (preset ``ptflops``): forward hooks on modules looked up by exact type, whose
counts are divided by ptflops' batch counter, plus patched torch.nn.functional / torch functions
counted for the whole batch. backend='aten' (preset ``ptflops-aten``): a dispatch mode over aten
ops that counts only convolutions and matrix products. ptflops builds its own input of one
sample from the shape it is given. The rules below name each calc layer type by the PyTorch
module it stands for.
"""
from __future__ import annotations

from ...shapes import Shape
from ..engine import Convention, Rule, Runner, register
from .common import float64_product, layernorm_subclass
from .common import EXTENDED_ATTENTION as _EXTENDED, EXTENDED_WHEN as _EXTENDED_WHEN, NOT_MEASURED as _NOT_MEASURED

CONV = "conv1d conv2d conv3d"
CONV_T = "conv_transpose1d conv_transpose2d conv_transpose3d"
POOLS = ("maxpool1d maxpool2d maxpool3d avgpool1d avgpool2d avgpool3d adaptive_avgpool1d adaptive_avgpool2d "
         "adaptive_avgpool3d adaptive_maxpool1d adaptive_maxpool2d adaptive_maxpool3d")
FREE = ("dropout stochastic_depth identity flatten reshape permute channel_shuffle channel_split pad roll to_tokens "
        "to_image select_token concat class_token gather parameter buffer")
_FREE = Rule("0", why="a copy or a view: nothing to count")


# ---------------------------------------------------------------------------- facts

def upsample_size(layer, shape: Shape, out: Shape) -> dict:
    """by_size: 1 when the output size is given (F.interpolate counts ∏size·N·C then);
    scale_prod: the product of the scale factors in double arithmetic, by which
    F.interpolate's counter multiplies #x (0 with a size; an int when whole)."""
    if layer.scale is None:
        return {"by_size": 1, "scale_prod": 0}
    scales = layer.scale if isinstance(layer.scale, tuple) else (layer.scale,) * (len(shape) - 1)
    product = float64_product(scales)
    return {"by_size": 0, "scale_prod": int(product) if product.denominator == 1 else product}


# ---------------------------------------------------------------------------- backend='pytorch'

_PT_MOD = "module hook, divided by ptflops' batch counter (so per sample, whatever the batch)"

RULES = {
    "moe mla": Rule(unsupported=True, why=_NOT_MEASURED),
    f"{CONV} {CONV_T} linear": Rule(batch="module * (mac + bias_add)", why=_PT_MOD + "; bias included"),
    "batchnorm1d batchnorm2d batchnorm3d groupnorm": Rule(batch="module * x * (1 + affine)",
                                                          why=_PT_MOD + "; one per element, two when affine"),
    "layernorm": Rule(batch="0 if channels else module * x",
                      why=_PT_MOD + "; one per element (LayerNorm has no `affine` attribute); "
                          "LayerNorm2d is a subclass the exact type lookup misses"),
    "local_response_norm": Rule(why="not verified: F.local_response_norm calls patched Tensor.mul, Tensor.add "
                                    "and avg_pool3d internally", unsupported=True),
    "relu elu gelu prelu": Rule("x", "module * y",
                                why="module hook (one per output element) plus the patched functional "
                                    "the module calls (one per input element)"),
    "relu6": Rule("functional * x", "module * y",
                  why="module hook; nn.ReLU6 calls F.hardtanh, which is not patched (F.relu6 is)"),
    "leaky_relu": Rule(batch="module * y", why="module hook; F.leaky_relu is not patched"),
    "silu softmax": Rule("x", why="no module hook; the patched F.silu / F.softmax counts #x"),
    "sigmoid tanh hardswish hardsigmoid softplus": Rule("0", why="neither hooked nor patched"),
    POOLS: Rule("x", "module * x", why="module hook (#x) plus the patched F.*pool* it calls (#x)"),
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
                          "need_weights=True the patched bmm and softmax would add to it" + _EXTENDED,
                      unsupported=_EXTENDED_WHEN),
    "rnn": Rule(batch="module * (mac + bias_add + steps * cells * hidden)",
                why=_PT_MOD + "; rnn_flops_counter_hook: #W_ih + #W_hh + H + biases per step and layer "
                    "(batch_first=True: a seq-first input makes the batch counter the sequence length)"),
    "gru": Rule(batch="module * (mac + bias_add + 7 * steps * cells * hidden)",
                why=_PT_MOD + "; rnn_flops_counter_hook: #W_ih + #W_hh + 7H + biases per step and layer "
                    "(batch_first=True)"),
    "lstm": Rule(batch="module * (mac + bias_add + 10 * steps * cells * hidden)",
                 why=_PT_MOD + "; rnn_flops_counter_hook: #W_ih + #W_hh + 10H + biases per step and layer "
                     "(batch_first=True)"),
    "embedding pos_embedding type_embedding token_mean rmsnorm": Rule(
        "0", why="not in the module mapping, and no patched function is called"),
    FREE: _FREE,
    "matmul": Rule("functional * a_numel * cols", why="torch.matmul / Tensor.matmul are patched: #a × p (the "
                                                      "first operand's elements times the second's columns); "
                                                      "the @ operator is not patched"),
    "exp clamp normalize": Rule("0", why="torch.exp, torch.clamp and F.normalize are not patched"),
    "scale": Rule("functional * x", why="torch.mul is patched (#output); the * operator is not"),
}


# ---------------------------------------------------------------------------- backend='aten'

ATEN_RULES = {
    "moe mla": Rule(unsupported=True, why=_NOT_MEASURED),
    f"{CONV} {CONV_T}": Rule("mac + bias_add", why="aten.convolution: N·#w·S_out, plus N·C_out·S_out with bias"),
    "linear": Rule("mac + contiguous * bias_add",
                   why="addmm (bias counted) on a contiguous input, mm + add otherwise"),
    "attention": Rule("proj_mac + q_len * out_dim * has_out_bias",
                      "(bias_add - q_len * out_dim * has_out_bias) if N == 1 else 0",
                      why="nn.MultiheadAttention (batch_first=True, need_weights=False): the projections "
                          "as addmm; the packed in-projection's bias only when its transposed input is "
                          "contiguous, i.e. at batch 1; SDPA is not counted" + _EXTENDED,
                      unsupported=_EXTENDED_WHEN),
    "rnn gru": Rule("mac + (steps * gates * hidden if bias_add else 0)", unsupported="num_layers > 1 or dirs > 1",
                    why="the CPU kernel decomposes into mm/addmm with one bias vector per step; which bias "
                        "vectors a multi-layer or bidirectional layer adds is not modelled"),
    "lstm": Rule("0", why="the CPU LSTM is one fused op, which is not counted"),
    # every other type: no convolution or matrix product
    f"{POOLS} global_avgpool global_maxpool token_mean batchnorm1d batchnorm2d batchnorm3d layernorm groupnorm "
    "local_response_norm rmsnorm relu relu6 leaky_relu elu sigmoid tanh gelu silu hardswish hardsigmoid softplus prelu "
    f"softmax layer_scale upsample add mul scale exp clamp normalize embedding pos_embedding type_embedding {FREE}": Rule(
        "0", why="only convolution, mm, addmm and bmm are counted"),
    "matmul": Rule("mac", why="matmul decomposes into bmm/mm, counted over the broadcast batch"),
}


def runner(backend: str) -> Runner:
    """``get_model_complexity_info`` with ``backend``, on the one-sample shape it is given."""
    def run(module, x, shape) -> int:
        from ptflops import get_model_complexity_info
        # Several inputs (a tuple of tensors, one sample each): ptflops calls the model with what
        # its input_constructor returns. Given as keywords (a dict, the form ptflops documents for
        # several inputs): its batch counter then finds no positional input and takes batch 1,
        # the one sample it counts; a tuple would be taken for a batch of len(tuple).
        names = getattr(module, "input_names", ())
        more = ({"input_constructor": lambda _res: dict(zip(names, x))}
                if isinstance(x, tuple) else {})
        macs, _ = get_model_complexity_info(module, tuple(shape), as_strings=False, backend=backend,
                                            print_per_layer_stat=False, verbose=False, **more)
        return int(macs)
    return Runner("ptflops", run, batch_one=True)


register(Convention(
    "ptflops",
    "ptflops with backend='pytorch': module hooks by exact type (conv and linear with bias, "
    "normalisation, activations, pooling) divided by its batch counter, plus patched functionals "
    "(F.relu, F.silu, F.softmax, the F.*pool* functions, F.interpolate, torch.add, torch.mul) "
    "counted for the whole batch. nn.ReLU, nn.ELU, nn.GELU, nn.PReLU and the pooling modules call "
    "a patched functional and are therefore counted twice; Python operators are never counted. "
    "Total = int(module hooks / batch + functionals).",
    macs=RULES, source="ptflops 0.7.5, get_model_complexity_info(..., backend='pytorch')",
    explicit=True, derived={"layernorm": layernorm_subclass, "upsample": upsample_size},
    runner=runner("pytorch"),
))

register(Convention(
    "ptflops-aten",
    "ptflops with backend='aten': a dispatch mode over aten ops for the whole batch that counts only "
    "convolutions and matrix products. Convolution bias adds are counted; a linear layer's bias "
    "only when its input is contiguous (it becomes addmm; otherwise mm + add). Normalisation, "
    "activations, pooling and element-wise operations count nothing.",
    macs=ATEN_RULES, source="ptflops 0.7.5, get_model_complexity_info(..., backend='aten')",
    explicit=True, runner=runner("aten"),
))
