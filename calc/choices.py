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
