"""Weight memory with quantised weight matrices: exact bytes, scales and zero points included.

What is quantised: the weight matrices of linear layers (the head included), of attention and
latent attention (their projections) and of a mixture of experts' experts and shared experts.
Everything else stays in the analysis's dtype: embedding tables, normalisation γ and β, biases,
a router, convolutions and recurrent layers, buffers.

A matrix of R rows (output features) and C columns (input features) in ``bits`` per weight takes
ceil(R·C·bits/8) bytes (sub-byte weights packed). Group-wise formats (int4, nf4, and int8 or fp8
when a group size is given) add one scale per group of G consecutive weights along a row:
R·ceil(C/G) scales in the scale dtype; with zero points (asymmetric integer formats, as GPTQ and
AWQ store them) one zero point per group too, in the weight's bit width, packed. Without a group
size int8 and fp8 take one scale per row (per output channel). nf4 (bitsandbytes) takes a group
(block) of 64 by default, int4 128.
"""
from __future__ import annotations

from dataclasses import dataclass

from .analysis import DTYPE_BYTES, Analysis
from .errors import SpecError

# bits per weight, and the default group size (None: one scale per output row; 0: no scale)
from .choices import SCALE_BYTES, WEIGHT_FORMATS as FORMATS  # noqa: E402,F401 - also imported from here


@dataclass(frozen=True)
class Quantised:
    fmt: str
    group: int | None
    scale_dtype: str
    zero_point: bool
    matrices: int          # weights in quantised matrices
    matrix_bytes: int      # their packed bytes
    scales: int
    zeros: int
    other: int             # parameters and buffers kept in the dtype
    other_bytes: int

    @property
    def scale_bytes(self) -> int:
        return self.scales * SCALE_BYTES[self.scale_dtype]

    @property
    def zero_bytes(self) -> int:
        return -(-self.zeros * FORMATS[self.fmt][0] // 8)

    @property
    def bytes(self) -> int:
        return self.matrix_bytes + self.scale_bytes + self.zero_bytes + self.other_bytes


def _matrices(r) -> list[tuple[int, int]]:
    """(rows, columns) of each quantised matrix of a leaf result."""
    layer, f = r.layer, r.facts or {}
    t = r.kind
    if t == "linear":
        return [] if r.tied_to else [(r.output_shape[-1], r.input_shape[-1])]
    if t == "attention":
        h, g, d, D, Dkv, Do = (f[k] for k in ("heads", "kv_heads", "head_dim", "dim", "kv_dim", "out_dim"))
        return [(h * d, D), (g * d, Dkv), (g * d, Dkv), (Do, h * d)]
    if t == "mla":
        D, h = r.input_shape[-1], layer.heads
        c, dn, dr, dv, qr = (layer.kv_lora_rank, layer.qk_nope_head_dim, layer.qk_rope_head_dim, layer.v_head_dim,
                             layer.q_lora_rank)
        q = [(qr, D), (h * (dn + dr), qr)] if qr else [(h * (dn + dr), D)]
        return [*q, (c + dr, D), (h * (dn + dv), c), (D, h * dv)]
    if t == "moe":
        D, H, Hs = r.input_shape[-1], layer.hidden, layer.shared_hidden

        def mlp(w):
            return [(w, D)] * (2 if layer.gated else 1) + [(D, w)]
        return mlp(H) * layer.experts + (mlp(Hs) if Hs else [])
    return []


def matrix_parts(rows: int, cols: int, fmt: str, group: int | None, zero_point: bool = False) -> tuple[int, int, int]:
    """(packed bytes, scales, zero points) of one R × C matrix in ``fmt`` with groups of ``group``
    along a row (None: one scale per row; ignored by formats without scales)."""
    bits, default = FORMATS[fmt]
    packed = -(-rows * cols * bits // 8)
    if default == 0:
        return packed, 0, 0
    per = rows * (-(-cols // group)) if group else rows
    return packed, per, per if zero_point else 0


def matrix_bytes(rows: int, cols: int, fmt: str, group: int | None, scale_dtype: str = "fp16",
                 zero_point: bool = False) -> int:
    """Every byte of one quantised matrix: packed weights, scales, packed zero points."""
    packed, scales, zeros = matrix_parts(rows, cols, fmt, group, zero_point)
    return packed + scales * SCALE_BYTES[scale_dtype] + -(-zeros * FORMATS[fmt][0] // 8)


def quantised_weights(a: Analysis, fmt: str, group: int | None = None, scale_dtype: str = "fp16",
                      zero_point: bool = False) -> Quantised:
    if fmt not in FORMATS:
        raise SpecError(f"unknown weight format '{fmt}'; known: {', '.join(FORMATS)}")
    if scale_dtype not in SCALE_BYTES:
        raise SpecError(f"unknown scale dtype '{scale_dtype}'; known: {', '.join(SCALE_BYTES)}")
    default = FORMATS[fmt][1]
    if default == 0 and (group or zero_point):
        raise SpecError(f"{fmt} weights have no scales: --group-size and --zero-point apply to int8, fp8, int4, nf4")
    if zero_point and not fmt.startswith("int"):
        raise SpecError("--zero-point applies to the integer formats (int8, int4)")
    g = group if group is not None else default
    n = packed = scales = zeros = 0
    from .inference import leaf_rows
    for _, leaf, k in leaf_rows(a):   # a folded run of identical layers counts `count` times
        for rows, cols in _matrices(leaf):
            p, sc, z = matrix_parts(rows, cols, fmt, g, zero_point)
            n += k * rows * cols
            packed += k * p
            scales += k * sc
            zeros += k * z
    every = a.root.params + a.root.buffers
    other = every - n
    return Quantised(fmt, g if default != 0 else None, scale_dtype, zero_point, n, packed, scales, zeros, other,
                     other * DTYPE_BYTES[a.dtype])
