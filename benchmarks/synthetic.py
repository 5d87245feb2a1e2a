"""Synthetic specs for the scaling benchmarks (text generators; nothing is written here)."""
from __future__ import annotations

CHANNELS = (16, 24, 32)


def flat(n: int) -> str:
    """``n`` layers written out one per line: convolution, batch norm, ReLU, ... on 16×8×8 maps,
    the convolutions cycling through 16, 24 and 32 output channels (so the layers differ)."""
    lines = [f"name: flat_{n}", "input: [16, 8, 8]", "layers:"]
    for i in range(n):
        step = i % 3
        if step == 0:
            out = CHANNELS[(i // 3) % len(CHANNELS)]
            lines.append(f"  - conv2d: {{out: {out}, kernel: 3, padding: 1, bias: false}}")
        else:
            lines.append("  - batchnorm2d" if step == 1 else "  - relu")
    return "\n".join(lines) + "\n"


def repeated(times: int) -> str:
    """A shape-preserving residual block (7 layers) repeated ``times`` times."""
    return f"""name: repeat_{times}
input: [64, 16, 16]
layers:
  - repeat:
      times: {times}
      layers:
        - residual:
            main:
              - conv2d: {{out: 64, kernel: 3, padding: 1, bias: false}}
              - batchnorm2d
              - relu
              - conv2d: {{out: 64, kernel: 3, padding: 1, bias: false}}
              - batchnorm2d
        - relu
"""


def distinct(n: int) -> str:
    """``n`` layers, every one different from every other (so no cache can answer for another):
    convolution, batch norm, ReLU, ... on 8×8 maps, the k-th convolution having 8 + k output
    channels, so that each layer's arguments or input shape differ from every other's."""
    lines = [f"name: distinct_{n}", "input: [8, 8, 8]", "layers:"]
    for i in range(n):
        step = i % 3
        if step == 0:
            lines.append(f"  - conv2d: {{out: {9 + i // 3}, kernel: 3, padding: 1, bias: false}}")
        else:
            lines.append("  - batchnorm2d" if step == 1 else "  - relu")
    return "\n".join(lines) + "\n"
