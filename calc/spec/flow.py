"""The shape entering the item being built, for expressions that read it (``in.H``, ``in[0]``).

The builder expands a spec before the analysis infers shapes; an item whose expressions read
``in`` needs its incoming shape while it is built. The builder keeps a stack of frames, one per
list of items being built (the model, a group, a block body, a branch, an iteration of a
repeat); a frame knows how to find the shape entering its list (from the frame around it, or
from the previous iteration) and steps the shape-only analyser through the items built so far.
Nothing is computed for a spec that never reads ``in``: frames are entered lazily.
"""
from __future__ import annotations

from typing import Callable

import re

from ..expr import IN_NAME, names_in
from ..graph import Model, Seq
from ..shapes import Tokens

_IN_WORD = re.compile(r"\bin\b")


class Frame:
    __slots__ = ("entry", "items", "source", "state")

    def __init__(self, entry: Callable[[], tuple], items: list):
        self.entry = entry          # () -> (shape entering the list, enclosing scopes)
        self.items = items          # the list's items built so far (the builder appends to it)
        self.source = None          # `from:` of the item being built
        self.state = None           # [flow, own scope, scopes seen inside, items analysed, children]


class Flow:
    def __init__(self, model: Model, shape, scope: dict):
        from ..analysis import shape_analyzer   # the analysis imports layers and conventions
        self.analyzer = shape_analyzer(model)
        self.root = (shape, (scope,))
        self.frames: list[Frame] = []
        self.used = False           # an expression read `in`: the model holds its input's sizes

    def enter(self, items: list, entry: Callable[[], tuple] | None = None) -> Frame:
        """A new list being built; ``entry`` gives its incoming shape, by default the shape
        entering the item being built in the enclosing list."""
        if entry is None:
            if self.frames:
                parent = self.frames[-1]
                entry = lambda: (self.incoming(parent), self.inner(parent))   # noqa: E731
            else:
                root = self.root
                entry = lambda: root   # noqa: E731
        frame = Frame(entry, items)
        self.frames.append(frame)
        return frame

    def leave(self) -> None:
        self.frames.pop()

    def _advance(self, frame: Frame) -> list:
        state = frame.state
        if state is None:
            shape, scopes = frame.entry()
            scope: dict = {}
            state = frame.state = [shape, scope, (scope, *scopes), 0, []]
        while state[3] < len(frame.items):
            item = frame.items[state[3]]
            state[0] = self.analyzer.step(item, state[0], state[1], state[2], (), state[4])
            state[3] += 1
        return state

    def inner(self, frame: Frame) -> tuple:
        return self._advance(frame)[2]

    def incoming(self, frame: Frame | None = None):
        """The shape entering the item being built in ``frame`` (the innermost by default)."""
        frame = frame or self.frames[-1]
        self.used = True
        state = self._advance(frame)
        if frame.source is not None:
            return self.analyzer.lookup(frame.source, state[2], (), ())
        return state[0]

    def after(self, body: Seq, entry: Callable[[], tuple]) -> Callable[[], tuple]:
        """The entry of the iteration after ``body`` (a repeat's), whose own entry is ``entry``."""
        def run():
            shape, scopes = entry()
            return self.analyzer.seq(body, shape, scopes, (), "group").output_shape, scopes
        return run

    def here(self) -> Callable[[], tuple]:
        """The entry of a list that starts where the innermost frame's item starts."""
        parent = self.frames[-1]
        return lambda: (self.incoming(parent), self.inner(parent))


def root_flow(model: Model, shape, inputs: tuple, tokens: bool) -> Flow:
    """The flow of a model whose first input has ``shape``; named ``inputs`` readable by name."""
    if tokens:
        shape = Tokens(shape)
    scope = {"input": shape}
    for i, (name, dims) in enumerate(inputs):
        scope[name] = shape if i == 0 else (Tokens(dims) if tokens else dims)
    return Flow(model, shape, scope)


class Iterations:
    """The entries of a repeat's iterations: the first is where the repeat starts; each next
    one is the shape after the body before it (``bodies``, appended as they are built)."""

    def __init__(self, flow: Flow, first: Callable[[], tuple]):
        self.flow = flow
        self.first = first
        self.known: list = []
        self.bodies: list = []

    def entry(self, i: int) -> Callable[[], tuple]:
        return lambda: self._at(i)

    def _at(self, i: int) -> tuple:
        if not self.known:
            self.known.append(self.first())
        while len(self.known) <= i:
            shape, scopes = self.known[-1]
            body = self.bodies[len(self.known) - 1]
            self.known.append((self.flow.analyzer.seq(body, shape, scopes, (), "group").output_shape, scopes))
        return self.known[i]


def mentions_in(value) -> bool:
    """Whether an expression in ``value`` (text, or lists of it) reads the incoming shape."""
    if isinstance(value, str):
        return _IN_WORD.search(value) is not None and IN_NAME in names_in(value)
    if isinstance(value, list):
        return any(mentions_in(v) for v in value)
    if isinstance(value, dict):
        return any(mentions_in(v) for v in value.values())
    return False

