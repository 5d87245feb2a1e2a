"""torchinfo 1.8.0, ``summary(model, input_size=...).total_mult_adds``.

For each call of a leaf module, torchinfo multiplies the size of every parameter named
``weight`` or ``bias`` by the batch, and also by the output positions when 'Conv' is in the
module's class name. Parameter-free modules, functional calls and parameters owned by
containers count nothing. The rules below name each calc layer type by its PyTorch module.
"""
from __future__ import annotations

from ..engine import Convention, Rule, Runner, register
from .common import EXTENDED_ATTENTION as _EXTENDED, EXTENDED_WHEN as _EXTENDED_WHEN, NOT_MEASURED as _NOT_MEASURED

FREE = ("dropout stochastic_depth identity flatten reshape permute channel_shuffle channel_split pad roll to_tokens "
        "to_image select_token concat class_token gather parameter buffer")

RULES = {
    "moe mla": Rule(unsupported=True, why=_NOT_MEASURED),
    "conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d": Rule(
        "leaf * module * params * spatial_out", why="'Conv' in the class name: (#w + #b) × output positions"),
    "linear": Rule("leaf * module * params", why="(#w + #b) × the first output dimension only"),
    "batchnorm1d batchnorm2d batchnorm3d layernorm groupnorm prelu": Rule("leaf * module * params",
                                                                          why="#params × batch"),
    "layer_scale": Rule("0", why="the scale is a container parameter (torchvision) or not named "
                                 "weight/bias (timm's gamma)"),
    ("local_response_norm maxpool1d maxpool2d maxpool3d avgpool1d avgpool2d avgpool3d adaptive_avgpool1d "
     "adaptive_avgpool2d adaptive_avgpool3d adaptive_maxpool1d adaptive_maxpool2d adaptive_maxpool3d "
     "global_avgpool global_maxpool token_mean relu relu6 leaky_relu elu sigmoid tanh gelu silu hardswish "
     "hardsigmoid softplus softmax upsample add mul"): Rule("0", why="no parameters"),
    "embedding pos_embedding type_embedding rmsnorm": Rule(
        "leaf * module * params", why="#params × batch (nn.Embedding, nn.RMSNorm); a table held by a "
                                      "container (ViT's pos_embedding) needs owner: container"),
    "attention": Rule("0", why="nn.MultiheadAttention is not a leaf (its in_proj_weight is a container "
                               "parameter) and its out_proj is never called" + _EXTENDED, unsupported=_EXTENDED_WHEN),
    "rnn lstm gru": Rule("leaf * module * steps * params", why="prod(y.shape[:2]) × #params: steps × batch"),
    FREE: Rule("0", why="a copy or a view: nothing to count"),
    "exp clamp normalize": Rule("0", why="functions without parameters (torch.exp, torch.clamp, F.normalize)"),
    "matmul scale": Rule("0", why="a function or an operator: no module call, no parameters"),
}


def run(module, x, shape) -> int:
    """torchinfo's figure for ``module`` on the batch ``x``: summary(...).total_mult_adds."""
    from torchinfo import summary
    return int(summary(module, input_data=[x], verbose=0).total_mult_adds)


register(Convention(
    "torchinfo",
    "torchinfo's summary().total_mult_adds: for each call of a leaf module, each parameter named "
    "weight or bias costs its size times the batch — times the output positions when 'Conv' is in the "
    "class name. A convolution thus costs (weights + bias)·S_out per sample, a linear layer "
    "weights + bias per sample whatever its rows, a norm its parameters; parameter-free layers, "
    "functional calls and parameters owned by containers cost nothing.",
    macs=RULES, source="torchinfo 1.8.0, summary(model, input_size=...).total_mult_adds",
    explicit=True, runner=Runner("torchinfo", run),
))
