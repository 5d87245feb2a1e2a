"""PyTorch 2.13.0's own counter, ``torch.utils.flop_counter.FlopCounterMode``.

A dispatch mode that has formulas for convolutions and matrix products only, 2 FLOPs per
multiply-accumulate, bias ignored, for the whole batch. Its figure is the FLOPs. The rules
below name each calc layer type by the aten ops its PyTorch module runs on CPU.
"""
from __future__ import annotations

from ..engine import Convention, Rule, Runner, register
from .common import EXTENDED_ATTENTION as _EXTENDED, EXTENDED_WHEN as _EXTENDED_WHEN, NOT_MEASURED as _NOT_MEASURED

RULES = {
    "moe mla": Rule(unsupported=True, why=_NOT_MEASURED),
    "conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d linear": Rule(
        "mac", why="conv_flop / addmm_flop: 2 per MAC (reported as FLOPs), bias ignored"),
    "attention": Rule("proj_mac", why="the projections (addmm); the CPU attention kernel has no formula "
                                      "(need_weights=False, grad enabled)" + _EXTENDED, unsupported=_EXTENDED_WHEN),
    "rnn gru": Rule("mac", why="the CPU kernel decomposes into mm/addmm: W_ih·x and W_hh·h every step"),
    "lstm": Rule("0", why="the CPU LSTM is one fused op without a formula"),
    # every other type: no convolution or matrix product
    ("maxpool1d maxpool2d maxpool3d avgpool1d avgpool2d avgpool3d adaptive_avgpool1d adaptive_avgpool2d "
     "adaptive_avgpool3d adaptive_maxpool1d adaptive_maxpool2d adaptive_maxpool3d global_avgpool global_maxpool "
     "token_mean batchnorm1d batchnorm2d batchnorm3d layernorm groupnorm local_response_norm rmsnorm "
     "relu relu6 leaky_relu elu sigmoid tanh gelu silu hardswish hardsigmoid softplus prelu softmax layer_scale "
     "upsample add mul embedding pos_embedding type_embedding dropout stochastic_depth identity flatten "
     "reshape permute channel_shuffle channel_split pad roll to_tokens to_image select_token concat class_token "
     "gather parameter buffer scale exp clamp normalize"): Rule("0", why="no flop formula registered for these ops"),
    "matmul": Rule("mac", why="matmul decomposes into bmm/mm: bmm_flop counts the broadcast batch, 2 per MAC"),
}


def run(module, x, shape) -> int:
    """FlopCounterMode's total for ``module`` on the batch ``x`` (gradients off)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(x)
    return int(counter.get_total_flops())


register(Convention(
    "torch",
    "PyTorch's torch.utils.flop_counter.FlopCounterMode: a dispatch mode with formulas for "
    "convolutions and matrix products only, 2 FLOPs per MAC, bias ignored, whole batch. Identical "
    "to standard on convolutional networks; on CPU it misses the attention matmuls (no formula for "
    "the CPU attention kernel) and LSTMs. Its figure is the FLOPs.",
    macs=RULES, reports="flops", source="torch 2.13.0, torch.utils.flop_counter.FlopCounterMode (grad enabled)",
    explicit=True, runner=Runner("torch", run),
))
