"""Pure shape formulas, PyTorch's exact semantics. Each raises ValueError with the reason;
the layer that calls it adds the layer name and input shape."""
from __future__ import annotations

from math import prod

Shape = tuple  # tuple[int, ...], one sample, no batch dimension


class Tokens(tuple):
    """A per-sample shape whose elements are integer token ids, not values: the input of a
    token embedding. It equals (and hashes like) the plain shape; only its type says what the
    elements are, so layers other than embeddings can refuse it."""

    __slots__ = ()

    def __repr__(self):
        return f"Tokens({tuple(self)!r})"


def numel(shape: Shape) -> int:
    return prod(shape)


def fmt_shape(shape: Shape) -> str:
    text = "×".join(str(d) for d in shape) if shape else "scalar"
    return f"{text} tokens" if isinstance(shape, Tokens) else text


def conv_out(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """floor((in + 2p − d(k−1) − 1) / s) + 1"""
    span = dilation * (kernel - 1) + 1
    if size + 2 * pad < span:
        raise ValueError(f"effective kernel {span} (d(k−1)+1 with k={kernel}, d={dilation}) is larger "
                         f"than the padded input {size + 2 * pad} (in + 2p with in={size}, p={pad})")
    return (size + 2 * pad - span) // stride + 1


def pool_out(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """Like conv_out; with ceil_mode the division rounds up, but the last window must start
    inside the input or the left padding (PyTorch's rule). In ceil mode PyTorch keeps such a
    window even when it is longer than the whole padded input, so only a result below 1 fails."""
    span = dilation * (kernel - 1) + 1
    numerator = size + 2 * pad - span
    if ceil_mode:
        out = -(-numerator // stride) + 1
        if (out - 1) * stride >= size + pad:
            out -= 1
    else:
        out = numerator // stride + 1
    if out < 1:
        raise ValueError(f"window {span} is larger than the padded input {size + 2 * pad} "
                         f"(in + 2p with in={size}, p={pad})")
    return out


def conv_transpose_out(size: int, kernel: int, stride: int, pad: int, dilation: int,
                       output_padding: int) -> int:
    """(in − 1)·s − 2p + d(k−1) + output_padding + 1"""
    if output_padding >= max(stride, dilation):
        raise ValueError(f"output_padding {output_padding} must be smaller than stride {stride} "
                         f"or dilation {dilation}")
    out = (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_padding + 1
    if out < 1:
        raise ValueError(f"output size {out} is not positive")
    return out


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling bins: [floor(i·in/out), ceil((i+1)·in/out))."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def adaptive_bin_total(size: int, out: int) -> int:
    """Sum of the bin lengths of one dimension (bins overlap when in is not a multiple of out)."""
    return sum(end - start for start, end in adaptive_bins(size, out))


def broadcast(a: Shape, b: Shape) -> Shape:
    """NumPy broadcasting, dimensions aligned on the right."""
    n = max(len(a), len(b))
    a1 = (1,) * (n - len(a)) + tuple(a)
    b1 = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a1, b1):
        if x != y and x != 1 and y != 1:
            raise ValueError(f"shapes {fmt_shape(a)} and {fmt_shape(b)} do not broadcast")
        out.append(max(x, y))
    return tuple(out)


def normalize_dim(dim: int, rank: int) -> int:
    if not -rank <= dim < rank:
        raise ValueError(f"dim {dim} is out of range for a shape of rank {rank}")
    return dim % rank
