"""The built model: a tree of nodes produced from a spec once its variables are known.

Nodes are immutable. Leaves hold a validated layer; containers hold nodes. ``origin`` is the
path of the node in the spec file (for messages); ``refs`` are the names a node reads from
outside itself (``from:``, ``with:``, an attention's ``kv:``), which the analysis resolves in
enclosing scopes; a leaf's ``tie`` names an earlier leaf whose weights it shares.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .layers import Layer
from .errors import nearest_line


@dataclass(frozen=True, eq=False, slots=True)
class Node:
    name: str | None
    origin: tuple          # path in the spec file
    source: str | None = field(default=None, kw_only=True)   # `from:` name, else the flow
    trainable: bool = field(default=True, kw_only=True)
    # False: the item holds parameters but does not run at inference (an auxiliary classifier):
    # counted in parameters, not in operations; the flow passes around it.
    runs: bool = field(default=True, kw_only=True)
    # False: the item ran in an earlier pass (an encoder at a decode step, see calc.inference):
    # counted in parameters, not in operations; unlike runs=False the flow goes on from its output.
    counted: bool = field(default=True, kw_only=True)
    # Hints the spec states for a leaf (see calc.layers.HINTS), as sorted (key, value) pairs.
    hints: tuple = field(default=(), kw_only=True)
    # `expect:` of the item (see calc.check): (((mapping as written, its path), …), the names its
    # expressions may read: variables, block parameters, the repeat index). Counting never reads it.
    expect: tuple | None = field(default=None, kw_only=True)


@dataclass(frozen=True, eq=False, slots=True)
class Leaf(Node):
    layer: Layer = field(kw_only=True)
    tie: str | None = field(default=None, kw_only=True)   # name of the leaf whose weights it shares


@dataclass(frozen=True, eq=False, slots=True)
class Seq(Node):
    """Items applied in order. ``kind`` is 'model', 'group' or 'block:<name>'."""

    items: tuple = field(kw_only=True)
    kind: str = field(default="group", kw_only=True)


@dataclass(frozen=True, eq=False, slots=True)
class Repeat(Node):
    """``times`` iterations of ``body``; with an ``index`` variable, iteration i is ``bodies[i]``."""

    times: int = field(kw_only=True)
    body: Seq = field(kw_only=True)
    bodies: tuple | None = field(default=None, kw_only=True)


@dataclass(frozen=True, eq=False, slots=True)
class Branches(Node):
    """Branches applied to the same input and joined (residual: main + shortcut)."""

    branches: tuple = field(kw_only=True)   # of Seq; an empty Seq is the identity
    join: Leaf = field(kw_only=True)
    kind: str = field(default="parallel", kw_only=True)


@dataclass(frozen=True)
class Model:
    """A built spec: its name, per-sample input shape and root sequence."""

    name: str
    description: str | None
    input_shape: tuple
    root: Seq
    variables: dict
    source_name: str | None = None
    lines: dict | None = None
    input_kind: str = "values"   # 'tokens': the input holds token ids (see shapes.Tokens)
    expect: tuple | None = None  # the spec's own `expect:` (((mapping, path), …), variables); see calc.check
    # Several named inputs (`inputs:` in the spec) as (name, shape) pairs, the first being
    # ``input_shape``; empty for a spec with one `input`.
    inputs: tuple = ()

    # Blocks and variables imported from other files (calc.spec.imports): name -> (the Source of
    # the file that wrote it, its path there), so that a message inside one points at that file.
    origins: dict = field(default_factory=dict, compare=False)
    # (path, message) of what the spec says that changes nothing, e.g. a hint no tool reads
    # (printed by `calc check`; see calc.spec.build)
    notes: tuple = field(default=(), compare=False)
    # True when an expression read the shape entering an item (`in`, calc.spec.flow): sizes that
    # follow the input are fixed at build, so the model is analysed at its own input only
    reads_in: bool = field(default=False, compare=False)

    def line_of(self, path: tuple) -> int | None:
        return nearest_line(self.lines, path)

    def locate(self, path: tuple) -> tuple:
        """(file, line) of ``path``: in the spec, or in the file an imported block came from."""
        path = tuple(path or ())
        if len(path) >= 2 and path[0] == "blocks" and path[1] in self.origins:
            src, there = self.origins[path[1]]
            return src.name, src.line_of(there + path[2:])
        return self.source_name, self.line_of(path)
