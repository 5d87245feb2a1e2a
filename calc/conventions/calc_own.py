"""calc's own conventions: standard, with-bias, exact and params-hw.

They are defined on the elementary operations every layer declares (``mac``, ``bias_add``,
``add``, ``cmp`` …, see :mod:`calc.layers`), not on how a tool sees PyTorch modules. So they
give their rules per layer *kind*: a new layer type is counted by the operations it declares
under its kind's rule (a new kind needs a rule here). The tool presets, in
:mod:`calc.conventions.tools`, name every layer type instead.
"""
from __future__ import annotations

from .engine import Convention, Rule, register

# Groups of layer kinds (see `calc layers`).
DOT = "conv conv_transpose linear attention recurrent moe"
POOLS = "maxpool avgpool adaptive_avgpool adaptive_maxpool global_avgpool global_maxpool token_mean"
NORMS = "batchnorm layernorm groupnorm lrn rmsnorm normalize"
FREE = "dropout identity reshape concat class_token parameter"
REST = "activation softmax layer_scale upsample add mul embedding added_embedding scale"
NOT_DOT = " ".join((POOLS, NORMS, FREE, REST))
# A product of two activations (windowed attention written from primitives): a dot product
# without weights or bias.
_MATMUL = Rule("mac", why="the product's multiply-accumulates: b·n·m·p, as FlopCounterMode counts its bmm")

_NOT_DOT = Rule("0", why="only dot products (convolution, linear, attention, recurrent) are counted")

register(Convention(
    "standard",
    "Multiply-accumulates of convolutions, linear layers, attention (its projections and both "
    "attention matmuls, Q·Kᵀ and attention·V, in full even when causal) and recurrent layers "
    "(W_ih·x and W_hh·h at every step), without bias; FLOPs = 2 × MACs. Activations, pooling, "
    "normalisation, embeddings and element-wise sums cost nothing. This is what "
    "torch.utils.flop_counter reports (as FLOPs, 2 per MAC) on convolutional networks and what "
    "torchvision publishes as GFLOPS (PyTorch's CPU counter sees neither the attention matmuls nor "
    "LSTMs; torchvision's ViT figures include the attention matmuls).",
    macs={DOT: Rule("mac", why="one MAC per weight per output position; the bias is left out"),
          "matmul": _MATMUL, NOT_DOT: _NOT_DOT},
))

register(Convention(
    "with-bias",
    "As standard, plus one operation per bias element per output position (a convolution with "
    "bias costs C_in/g·K_h·K_w + 1 per output element); FLOPs = 2 × MACs. This is the MAC count of "
    "ptflops' aten backend and of torchinfo on networks made of convolutions and linear layers.",
    macs={DOT: Rule("mac + bias_add", why="the dot product's MACs and one add per biased output"),
          "matmul": _MATMUL, NOT_DOT: _NOT_DOT},
))

_EXACT = ("2 * mac - dots + bias_add + add + mul + div + cmp + exp + sqrt + fn")
register(Convention(
    "exact",
    "Every individual arithmetic operation is one FLOP: a dot product of length n is n multiplies "
    "and n − 1 adds, so a convolution without bias costs 2·C_in/g·K_h·K_w − 1 FLOPs per output "
    "element and with bias 2·C_in/g·K_h·K_w; activations, pooling, normalisation, softmax and "
    "element-wise joins count their operations as `calc layers` lists them (ReLU 1 comparison per "
    "element, sigmoid 4, max pooling k − 1 comparisons per output, average pooling k − 1 adds and "
    "1 divide). MACs are the dot-product MACs, as in standard.",
    macs={DOT: Rule("mac", why="dot-product MACs, as in standard"), "matmul": _MATMUL, NOT_DOT: _NOT_DOT},
    flops={f"{DOT} matmul {NOT_DOT}": Rule(_EXACT, why="every multiply, add, divide, comparison, exponential, "
                                    "square root and special function once; a dot product of n terms "
                                    "is n multiplies and n − 1 adds")},
))

register(Convention(
    "params-hw",
    "The teaching convention: a layer with weights costs its parameters (weights and bias) once "
    "per output position — a convolution params × H_out·W_out (AlexNet 2012's first convolution: "
    "[(11·11·3)·96 + 96]·55·55 = 105,705,600), a linear layer params × rows, attention params × "
    "query positions, a recurrent layer params × steps. Everything else costs nothing; FLOPs = 2 × MACs.",
    macs={"conv conv_transpose": Rule("params * spatial_out", why="(weights + bias) × output positions"),
          "linear": Rule("params * rows", why="(weights + bias) × rows"),
          "attention": Rule("params * q_len", why="(weights + bias) × query positions; the parameter-free "
                                                  "attention matmuls are not counted"),
          "matmul": Rule("0", why="a product of two activations has no parameters: nothing, as the attention "
                                  "matmuls"),
          "moe": Rule("active * rows", why="the parameters a token uses (router, its k experts, the shared "
                                           "experts) × tokens"),
          "recurrent": Rule("params * steps", why="(weights + bias) × time steps: every weight is used "
                                                  "once per step"),
          NOT_DOT: Rule("0", why="only convolutions, linear layers, attention and recurrent layers are counted")},
))

register(Convention(
    "unmasked",
    "As standard, but attention counts only the scores its causal mask and sliding window keep: Q·Kᵀ "
    "and attention·V cost 2·d MACs per visible score (a causal L × L matrix keeps L·(L + 1)/2 of "
    "L² scores; a window W at most W per query). This is the work a kernel that skips masked "
    "blocks (FlashAttention's causal mode) needs in the limit, and what papers counting "
    "'causal FLOPs' report; standard counts the dense kernel's full matrices. FLOPs = 2 × MACs.",
    macs={"attention": Rule("mac - masked_mac", why="the dense count less 2·d MACs per masked score"),
          "conv conv_transpose linear recurrent moe matmul": Rule("mac", why="as standard"),
          NOT_DOT: _NOT_DOT},
))
