"""What the free-tensor primitives save for backward (Swin's and MaxViT's attention written from
parts; see :mod:`calc.memory.saved`): ``parameter``, ``buffer``, ``gather``, ``matmul`` and
``normalize``.

A ``parameter`` or ``buffer`` item stands for a tensor the model holds. calc's per-sample shapes
give it one copy per sample, and calc's oracle hands it on as exactly that: the tensor repeated
over the batch (``value.unsqueeze(0).repeat(N, …)``, a fresh storage of N·numel·b bytes that
requires a gradient only for a trainable parameter). A layer that keeps it (the clamp of Swin V2's
logit scale, the linear reading its coordinates table) therefore keeps that per-sample copy, and
calc counts it as such. PyTorch code that reads the parameter itself (``self.logit_scale``) keeps
the parameter, which is not an activation: there calc over-counts by at most N·numel·b per
consumer (a few hundred bytes in Swin V2; nothing in Swin V1 or MaxViT, whose tables are only
gathered, which keeps the index, not the table).
"""
from __future__ import annotations

from math import prod

from .rules import IN, INDEX_BYTES, NOTHING, Effect, rule


@rule("parameter", "buffer")
def _tensor(op):
    # The repeat copies; repeat's gradient (a sum over the copies) needs only shapes. Whether the
    # copy requires a gradient is the walker's business (a trainable parameter only: the flow
    # around the item is not read).
    return NOTHING


@rule("gather")
def _gather(op):
    # table[:, index.long()]: the index op keeps its int64 indices (numel(index) of them, one
    # tensor for the whole batch, made by .long() from the held buffer), not the table.
    if not op.in_grad[0]:
        return NOTHING
    index = INDEX_BYTES * prod(op.ins[-1])
    return Effect((("new", "index", index),), work=index)


def _lead(shape, rank):
    """The batch dims of a per-sample operand aligned (with leading 1s) to ``rank``."""
    return (1,) * (rank - len(shape)) + tuple(shape[:-2])


@rule("matmul")
def _matmul(op):
    # torch.matmul of operands of rank ≥ 3 (with the batch) expands both to the broadcast batch
    # dims and folds those into one (reshape), then bmm, which keeps each operand for the other's
    # gradient. The fold is a view of a contiguous operand, and of the transposed view of one
    # (only the last two dims are swapped); a non-contiguous operand, or one whose batch dims are
    # broadcast (expanded), is copied, and the copy is what bmm keeps.
    a, b = op.ins[0], op.ins[-1]
    rank = max(len(a), len(b))
    la, lb = _lead(a, rank), _lead(b, rank)
    lead = tuple(max(x, y) for x, y in zip(la, lb))
    saved, work = [], 0
    for k, (shape, own_lead) in enumerate(((a, la), (b, lb))):
        other_grad = op.in_grad[1 - k]
        if own_lead != lead or not op.contiguous[k]:
            copy = op.batch * prod(lead) * prod(shape[-2:]) * op.size
            work += copy
            if other_grad:
                saved.append(("new", f"{'ab'[k]} folded", copy))
        elif other_grad:
            saved.append(("in", k))
    return Effect(tuple(saved), work=work)


@rule("normalize")
def _normalize(op):
    # F.normalize: x / ‖x‖₂.clamp_min(eps).expand_as(x). The norm keeps x and its result (one per
    # vector), clamp_min keeps the norm (the same storage), the division keeps x and the clamped
    # norm: x and two tensors of G = numel/n values.
    if not any(op.in_grad):
        return NOTHING
    g = op.n(op.ins[0]) // op.ins[0][op.layer.dim % len(op.ins[0])] * op.size
    return Effect((IN, ("new", "norm", g), ("new", "clamped norm", g)), work=2 * g)
