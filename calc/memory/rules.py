"""The base of the saved-tensor rules (see :mod:`calc.memory.saved`): what a rule sees (:class:`Op`),
what it says (:class:`Effect`), and the one registry of rules by layer type."""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from ..errors import CalcError

INDEX_BYTES = 8    # int64: max-pool indices, token ids, position ids
BOOL_BYTES = 1     # a boolean mask
STAT_BYTES = 4     # fp32 softmax log-sum-exp of fused attention


class MemoryError_(CalcError):
    """calc cannot say what a layer saves (a type without a rule)."""


@dataclass(frozen=True)
class Op:
    """One execution of a layer, as a rule sees it. Shapes are per sample; bytes are for the
    whole batch (``batch`` samples of ``size`` bytes per element)."""

    layer: object
    ins: tuple            # per-sample input shapes
    out: tuple            # per-sample output shape
    batch: int
    size: int             # bytes per element of the working dtype
    in_grad: tuple        # per input: does it require a gradient
    own_grad: bool        # does the layer hold a trainable parameter
    contiguous: tuple     # per input: is it contiguous
    hints: dict = field(default_factory=dict)
    device: str = "cuda"
    attention: str = "eager"
    held: tuple = ()      # per input: is it a parameter or buffer (a view of the model's tensor)
    permuted: tuple = ()  # per input: are its dimensions laid out in another order (a transposed view)

    @property
    def grad(self) -> bool:
        return any(self.in_grad) or self.own_grad

    def n(self, shape) -> int:
        """Elements of a per-sample shape over the whole batch."""
        return self.batch * prod(shape)

    def b(self, shape) -> int:
        """Bytes of a per-sample shape over the whole batch in the working dtype."""
        return self.n(shape) * self.size


@dataclass(frozen=True)
class Effect:
    saved: tuple = ()
    output: str = "new"
    contiguous: bool = True
    work: int = 0
    drop: frozenset = frozenset()
    # At inference, the order in which the layer's operations make and free its tensors, when
    # that order matters to its peak (else: ``work`` beside all its inputs and its output):
    # ("make", label, bytes), ("free", label), ("last", k) (input k is read for the last time
    # here: its storage is freed if no later layer reads it) and ("out",) (the output is made).
    # calc.memory.activations.inference_peak plays them; the oracle measures the same order.
    steps: tuple = ()
    # kept instead, under selective recomputation only (what the recomputed part holds)
    selective: tuple = ()


def make(label: str, nbytes: int) -> tuple:
    return ("make", label, nbytes)


def free(label: str) -> tuple:
    return ("free", label)


def last(k: int) -> tuple:
    return ("last", k)


MADE = ("out",)


NOTHING = Effect()
IN = ("in", 0)
OUT = ("out",)
RULES: dict = {}


def rule(*types):
    def deco(fn):
        for t in types:
            assert t not in RULES, t
            RULES[t] = fn
        return fn
    return deco


def effect(op: Op) -> Effect:
    fn = RULES.get(op.layer.type_name)
    if fn is None:
        raise MemoryError_(f"calc has no rule for what PyTorch saves for backward in a "
                           f"{op.layer.type_name} layer, so it cannot count its activation memory")
    e = fn(op)
    if not op.grad and e.saved:
        e = Effect((), e.output, e.contiguous, e.work, e.drop, e.steps)   # keeps nothing, recomputes nothing
    return e
