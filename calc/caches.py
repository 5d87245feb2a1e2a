"""Every cache calc keeps, owned here: each a named map with a stated key, value and bound.

Caches are one of calc's speed measures; docs/performance.md lists them all, each beside the
benchmark that justifies it. The maps subclass ``dict`` so that the hot paths (one look-up per
layer) keep the built-in speed; what they add is a name, a bound and one way to empty them.

* :func:`build_cache` — one per :class:`calc.spec.Spec`, shared by every build of it: what each
  item of the spec says apart from its expressions, validated layers keyed by their arguments,
  built block bodies keyed by their arguments and the variables they read.
* :func:`result_cache` — given to :func:`calc.analyze` (``cache=``) by sweeps: per (convention,
  batch), the results of identical layers and blocks on identical input shapes.
* Convention rules are compiled once per layer type inside each :class:`calc.conventions.Convention`;
  expression and formula texts are parsed once (``functools.lru_cache`` on ``compile_expr`` and
  the formula parser). These are bounded by the code and the spec, not by the data.
"""
from __future__ import annotations

# Bounds that keep a sweep of any length within a fixed amount of memory: past them a cache is
# emptied and refilled (a sweep revisits few earlier keys, so emptying costs little).
MAX_BUILD_ENTRIES = 50_000
MAX_RESULT_ENTRIES = 200_000


class Cache(dict):
    """A named cache: a ``dict`` with a bound and :meth:`trim`."""

    __slots__ = ("name", "limit")

    def __init__(self, name: str, limit: int):
        super().__init__()
        self.name = name
        self.limit = limit

    def size(self) -> int:
        """Entries held, as counted against the bound."""
        return len(self)

    def trim(self) -> bool:
        """Empty the cache when it holds more than its bound; True if it did."""
        if self.size() > self.limit:
            self.clear()
            return True
        return False


class ResultCache(Cache):
    """Analysis results: (id(convention), batch) -> (convention, memo), the memo mapping
    (layer, input shapes, hints …) or (block, input shape) keys to frozen results. Its size is
    the number of results held in all memos."""

    __slots__ = ()

    def size(self) -> int:
        return sum(len(memo) for _, memo in self.values())


def build_cache() -> Cache:
    return Cache("spec builds", MAX_BUILD_ENTRIES)


def result_cache() -> ResultCache:
    return ResultCache("analysis results", MAX_RESULT_ENTRIES)
