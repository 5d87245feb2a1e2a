"""The values that command-line options choose among, with what each means in bytes or bits.

A module of its own, importing nothing, so that the command line can build its parser (and
answer ``--version`` and ``--help``) without loading the analysis, pydantic or any layer type.
The modules that compute with these tables import them from here.
"""

# Bytes per element of the parameters and activations (calc.analysis).
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "fp64": 8}

# Inference phases of a sequence model (calc.inference).
PHASES = ("prefill", "decode", "generate")
# Bytes per element of the KV cache (and of activations); GB = 10⁹ bytes, GiB = 2³⁰.
KV_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "fp64": 8}

# Weight formats (calc.quant): bits per weight, and the default group size (None: one scale per
# output row; 0: no scale); and the bytes of each dtype a scale may have.
WEIGHT_FORMATS = {"fp32": (32, 0), "fp16": (16, 0), "bf16": (16, 0), "fp8_e4m3": (8, None), "fp8_e5m2": (8, None),
                  "int8": (8, None), "int4": (4, 128), "nf4": (4, 64)}
SCALE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8_e4m3": 1, "fp8_e5m2": 1}

# Memory (calc.memory): optimizers, mixed-precision conventions, activation checkpointing, and the
# tools whose memory conventions calc reproduces (their meanings are in those modules).
OPTIMIZER_NAMES = ("sgd", "sgd-momentum", "adam", "adamw", "adafactor", "adam8bit")
PRECISIONS = ("fp32", "bf16", "fp16", "bf16-mixed", "fp16-mixed")
MASTERS = ("amp", "copy")
CHECKPOINTING = ("none", "full", "selective")
MEMORY_TOOLS = ("accelerate", "deepspeed-zero2", "deepspeed-zero3", "eleutherai", "korthikanti", "llm-analysis")

# Attention implementations. Memory (what autograd saves) names PyTorch's: eager, or sdpa
# (F.scaled_dot_product_attention, whose fused kernels keep the score matrix on chip). The
# roofline (calc.roofline) names the kernel: eager (scores through memory) or fused; it takes
# sdpa as fused.
MEMORY_ATTENTION = ("eager", "sdpa")
ROOFLINE_ATTENTION = ("eager", "fused", "sdpa")
