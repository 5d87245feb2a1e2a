"""The network as a tree of drawable parts for the HTML report's graph view.

The analysed :class:`~calc.analysis.Result` tree has lost what the spec said about the flow
(``from:`` and ``with:`` names), and the built :class:`~calc.graph.Model` has no counts; the
graph walks both together (item *i* of a sequence is child *i* of its result) and names every
part as :meth:`calc.analysis.Analysis.rows` names its rows, so that a part points at its row of
the layer table (and through it at its counts). The browser lays the tree out: a sequence is
drawn top to bottom, branches side by side and joined, a repeat or a namespace as a box that
folds into one node. Nothing here counts.

Parts, as compact JSON-ready dicts (the report embeds them):

* ``{"k": "l", "r": row, "n": name, "f": from, "x": [names]}`` — a layer (``f``: the earlier
  output it reads instead of the flow; ``x``: the other earlier outputs it reads);
* ``{"k": "s", "i": [parts]}`` — a sequence;
* ``{"k": "g", "r": row, "n": name, "b": sequence, "f": from}`` — a namespace (a named item or a
  block instance);
* ``{"k": "r", "t": times, "i": [sequences], "m": folded}`` — a repeat: its iterations as listed
  (``m`` > 0: that many more identical iterations, folded into one row as the table does);
* ``{"k": "p", "kind": "residual"|"parallel", "b": [sequences], "j": layer}`` — branches and
  their join.

A part with ``a`` is a named item: later items read its output by that name.
"""
from __future__ import annotations

from ..analysis import FOLD, Result, _positions, name_segment
from ..graph import Branches, Leaf, Repeat, Seq


def graph_tree(a, row_index: dict[str, int]) -> dict:
    """The drawable tree of analysis ``a``; ``row_index`` maps row names (as
    ``a.rows(fold=FOLD)`` gives them) to their position in the report's table."""
    return _Walker(row_index).seq(a.model.root, a.root, "", {})


class _Walker:
    def __init__(self, row_index: dict[str, int]):
        self.rows = row_index

    def seq(self, node: Seq, r: Result, prefix: str, taken: dict) -> dict:
        return {"k": "s", "i": [self.item(item, ch.result, ch.name, prefix, taken)
                                for item, ch in zip(node.items, r.children)]}

    def item(self, node, r: Result, name, prefix: str, taken: dict) -> dict:
        namespace = r.is_leaf or name is not None or r.kind.startswith("block:")
        if not namespace:
            part = self.structure(node, r, prefix, taken)
        else:
            seg = name_segment(name, taken)
            full = f"{prefix}.{seg}" if prefix else seg
            if isinstance(node, Leaf):
                part = {"k": "l", "r": self.rows.get(full, -1), "n": full}
                refs = list(node.layer.refs())
                if refs:
                    part["x"] = refs
            else:
                inner = self.structure(node, r, full, {})
                part = {"k": "g", "r": self.rows.get(full, -1), "n": full, "b": inner}
        if node.source is not None:
            part["f"] = node.source
        if name is not None:
            part["a"] = name      # the name later items use in from:/with:
        return part

    def structure(self, node, r: Result, prefix: str, taken: dict) -> dict:
        """An unnamed sequence, repeat or branches: its items are numbered in the enclosing
        namespace (as in the table)."""
        if isinstance(node, Seq):
            return self.seq(node, r, prefix, taken)
        if isinstance(node, Repeat):
            iters = []
            folded = 0
            i = 0
            for ch in r.children:
                for k in range(ch.count if ch.count <= FOLD else 1):
                    body = node.body if node.bodies is None else node.bodies[i + k]
                    iters.append(self.seq(body, ch.result, prefix, taken))
                if ch.count > FOLD:
                    folded = ch.count - 1
                    # the folded iterations take their positions in the namespace, as in rows()
                    taken[None] = taken.get(None, 0) + _positions(None, ch.result) * folded
                i += ch.count
            return {"k": "r", "t": node.times, "i": iters, "m": folded}
        if isinstance(node, Branches):
            branches = [self.seq(b, ch.result, prefix, taken)
                        for b, ch in zip(node.branches, r.children)]
            join = r.children[-1]
            jpart = self.item(node.join, join.result, join.name, prefix, taken)
            return {"k": "p", "kind": node.kind, "b": branches, "j": jpart}
        if isinstance(node, Leaf):  # pragma: no cover - leaves are always namespaces
            return {"k": "l", "r": -1, "n": ""}
        raise TypeError(node)  # pragma: no cover
