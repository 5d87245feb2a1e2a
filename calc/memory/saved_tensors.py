"""What the free-tensor primitives save for backward (Swin's and MaxViT's attention written from
parts; see :mod:`calc.memory.saved`): ``parameter``, ``buffer``, ``gather``, ``matmul`` and
``normalize``.

A ``parameter`` or ``buffer`` item stands for a tensor the model holds. PyTorch code reads it
directly (``self.logit_scale``) and broadcasts it over the batch; calc's memory oracle hands it on
as that: the parameter or buffer expanded over the batch, a view of its storage. A layer that
keeps it keeps the parameter, which is not an activation: its storage counts 0 bytes. The view
is not contiguous when the batch has more than one sample, so a layer that folds it (a linear on
a rank ≥ 2 input, a reshape) copies it, and that copy is an activation. A buffer with
``persistent: false`` (Swin's attention mask) is made in the forward pass: a fresh tensor, one
copy per sample as calc's per-sample shapes have it.
"""
from __future__ import annotations

from math import prod

from .rules import IN, INDEX_BYTES, MADE, NOTHING, Effect, free, last, make, rule


@rule("parameter", "buffer")
def _tensor(op):
    # expand is a view and its gradient (a sum over the batch) needs only shapes. Whether the
    # tensor requires a gradient is the walker's business (a trainable parameter only: the flow
    # around the item is not read).
    if op.layer.type_name == "buffer" and not op.layer.persistent:
        # made in the forward pass (new_zeros), then repeated over the batch: at inference the
        # one made tensor exists beside the repeated one until the repeat is done
        return Effect(steps=(make("made", op.b(op.out) // op.batch), MADE, free("made")))
    return Effect(output="held", contiguous=op.batch == 1)


@rule("gather")
def _gather(op):
    # table[:, index.long()]: the index op keeps its int64 indices (numel(index) of them, one
    # tensor for the whole batch, made by .long() from the held buffer), not the table.
    index = INDEX_BYTES * prod(op.ins[-1])
    steps = (make("index", index), MADE, free("index"), last(0))   # at inference: the int64 index, then the rows
    if not op.in_grad[0]:
        return Effect(steps=steps)
    return Effect((("new", "index", index),), work=index, steps=steps)


def _lead(shape, rank):
    """The batch dims of a per-sample operand aligned (with leading 1s) to ``rank``."""
    return (1,) * (rank - len(shape)) + tuple(shape[:-2])


def _folds(op, k: int, shape, lead) -> bool:
    """Whether torch.matmul folds operand ``k`` (per-sample ``shape``), expanded to the broadcast
    batch dims ``lead``, into one batch dimension as a view (reshape) rather than a copy.

    Dims of size 1 fold anyway; two others fold when the outer one's stride is the inner one's
    stride times its size. A contiguous operand has contiguous strides, an expanded dim stride 0,
    and a parameter or buffer (a view of the model's tensor expanded over the batch) stride 0
    along the batch. calc does not track the strides of other non-contiguous tensors: it takes
    them to be copied, as PyTorch does with the split views of attention's heads."""
    own = _lead(shape, len(lead) + 2)
    held = bool(op.held) and op.held[k]
    if not (op.contiguous[k] or held):
        return False
    strides, step = [], prod(shape[-2:])
    for size in reversed(own):
        strides.append(step)
        step *= size
    strides = [0 if held else step] + strides[::-1]
    sizes = [op.batch, *lead]
    strides = [0 if i > 0 and own[i - 1] == 1 and lead[i - 1] > 1 else st for i, st in enumerate(strides)]
    dims = [(n, st) for n, st in zip(sizes, strides) if n != 1]
    return all(outer == inner * n for (_, outer), (n, inner) in zip(dims, dims[1:]))


@rule("matmul")
def _matmul(op):
    # torch.matmul of operands of rank ≥ 3 (with the batch) expands both to the broadcast batch
    # dims and folds those into one (reshape), then bmm, which keeps each operand for the other's
    # gradient: the operand itself where the fold is a view (the transposed view of one as well:
    # only its last two dims are swapped), else the copy the fold makes.
    a, b = op.ins[0], op.ins[-1]
    rank = max(len(a), len(b))
    lead = tuple(max(x, y) for x, y in zip(_lead(a, rank), _lead(b, rank)))
    saved, work = [], 0
    for k, shape in enumerate((a, b)):
        other_grad = op.in_grad[1 - k]
        if _folds(op, k, shape, lead):
            if other_grad:
                saved.append(("in", k))
            continue
        copy = op.batch * prod(lead) * prod(shape[-2:]) * op.size
        work += copy
        if other_grad:
            saved.append(("new", f"{'ab'[k]} folded", copy))
    return Effect(tuple(saved), work=work)


@rule("normalize")
def _normalize(op):
    # F.normalize: x / ‖x‖₂.clamp_min(eps).expand_as(x). The norm keeps x and its result (one per
    # vector), clamp_min keeps the norm (the same storage), the division keeps x and the clamped
    # norm: x and two tensors of G = numel/n values.
    g = op.n(op.ins[0]) // op.ins[0][op.layer.dim % len(op.ins[0])] * op.size
    # at inference, in order: the norm, clamped (a new tensor), x divided by it
    steps = (make("norm", g), make("clamped norm", g), free("norm"), MADE, free("clamped norm"), last(0))
    if not any(op.in_grad):
        return Effect(steps=steps)
    return Effect((IN, ("new", "norm", g), ("new", "clamped norm", g)), work=2 * g, steps=steps)
