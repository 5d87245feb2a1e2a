"""Inference phases of a sequence model: prefill, one cached decode step, a whole generation, and
the KV cache. Computes; never prints.

* prefill: the spec analysed on the whole prompt (its input's first dimension is the prompt
  length P); every self-attention layer writes the keys and values of the P tokens to its cache.
* decode at context S: one new token per sequence (the input's first dimension becomes 1); every
  self-attention layer projects the new token's query, key and value and attends over S keys,
  the cache of S − 1 tokens plus its own (a sliding window W keeps the last W: min(S, W) keys).
* generation of N new tokens after a prompt of P: the prefill yields the first new token, then
  N − 1 decode steps at contexts P + 1 … P + N − 1 (as Hugging Face's ``generate`` runs them).
  Their sum is computed in closed form: the cost of a decode step is affine in S between the
  windows' edges, so each stretch is an arithmetic series (checked at its middle).

KV-cache sizes come from each attention layer's ``kv_cache`` quantity (elements per sequence:
2·g·d per cached token, g key/value heads of d features), in the KV dtype.

An encoder–decoder (a spec with several ``inputs``, T5) decodes its last input. The top-level
items before the first one that reads it are the encoder: they run once, in the prefill (which
also runs the decoder on the P prompt tokens of the last input); at a decode step they do not run
(their parameters count, their operations do not), and every cross attention reads the keys and
values it cached at the prefill (``cached_kv``: only Q and the output are projected). The cache
holds the decoder's self-attention keys and values and the cross attentions' (src tokens each);
the encoder's self attention caches nothing.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

from .analysis import FOLD, Analysis, analyze
from .errors import SpecError
from .graph import Branches, Leaf, Model, Repeat, Seq
from .layers.attention import MLA, Attention

from .choices import KV_BYTES, PHASES  # noqa: E402,F401 - the tables, also imported from here


def _rewrite(node, context: int, memo: dict, cross: bool = False):
    """``node`` with every self-attention layer continuing a cache of ``context`` keys (and, with
    ``cross``, every cross attention reading its cached keys and values). Shared subtrees stay
    shared (memo by id), so the analysis still memoises identical blocks."""
    hit = memo.get(id(node))
    if hit is not None:
        return hit[1]
    if isinstance(node, Leaf):
        layer = node.layer
        if layer.type_name == "pos_embedding" and context > layer.max_len:
            raise SpecError(f"decode at context {context:,}: the new token is at position {context - 1:,}, but the "
                            f"learned position table has max_len={layer.max_len:,} rows", path=node.origin)
        if isinstance(layer, (Attention, MLA)) and getattr(layer, "kv", None) is None:
            node = dataclasses.replace(node, layer=layer.model_copy(update={"context": context}))
        elif cross and isinstance(layer, Attention):
            node = dataclasses.replace(node, layer=layer.model_copy(update={"cached_kv": True}))
    elif isinstance(node, Seq):
        node = dataclasses.replace(node, items=_items(node.items, context, memo, cross))
    elif isinstance(node, Repeat):
        node = dataclasses.replace(node, body=_rewrite(node.body, context, memo, cross),
                                   bodies=None if node.bodies is None else
                                   tuple(_rewrite(b, context, memo, cross) for b in node.bodies))
    elif isinstance(node, Branches):
        node = dataclasses.replace(node, branches=tuple(_rewrite(b, context, memo, cross) for b in node.branches),
                                   join=_rewrite(node.join, context, memo, cross))
    return node


def _items(items: tuple, context: int, memo: dict, cross: bool = False) -> tuple:
    hit = memo.get(id(items))
    if hit is not None and hit[0] is items:
        return hit[1]
    out = tuple(_rewrite_kept(i, context, memo, cross) for i in items)
    memo[id(items)] = (items, out)
    return out


def _rewrite_kept(node, context, memo, cross=False):
    out = _rewrite(node, context, memo, cross)
    memo[id(node)] = (node, out)
    return out


def _reads(node, name: str) -> bool:
    """Whether ``node`` (or anything inside it) reads the input ``name``."""
    if node.source == name:
        return True
    if isinstance(node, Leaf):
        return name in node.layer.refs()
    if isinstance(node, Seq):
        return any(_reads(i, name) for i in node.items)
    if isinstance(node, Repeat):
        return any(_reads(b, name) for b in (node.bodies or (node.body,)))
    if isinstance(node, Branches):
        return any(_reads(b, name) for b in node.branches)
    return False


def encoder_items(model: Model) -> int:
    """How many top-level items form the encoder of a model with several inputs: those before
    the first that reads the last input (the decoded one); 0 for a model with one input."""
    if len(model.inputs) < 2:
        return 0
    name = model.inputs[-1][0]
    for i, item in enumerate(model.root.items):
        if _reads(item, name):
            return i
    raise SpecError(f"--phase decodes the last input, '{name}', but no item reads it (from: {name})",
                    file=model.source_name)


def _with_decoded(model: Model, first: int) -> Model:
    """``model`` with the decoded input's first dimension (the sequence) set to ``first``."""
    if model.reads_in:
        # sizes read from `in` were fixed at build for the spec's own lengths
        raise SpecError(f"{model.name} reads the shape entering its items (`in`), fixed when the spec is built; "
                        "--phase changes the decoded length after the build, which such a spec does not follow",
                        file=model.source_name)
    if len(model.inputs) < 2:
        shape = (first, *tuple(model.input_shape)[1:])
        inputs = ((model.inputs[0][0], shape),) if model.inputs else ()
        return dataclasses.replace(model, input_shape=shape, inputs=inputs)
    name, dims = model.inputs[-1]
    return dataclasses.replace(model, inputs=(*model.inputs[:-1], (name, (first, *dims[1:]))))


def decode_model(model: Model, context: int) -> Model:
    """The model of one decode step at ``context`` keys: one new token per sequence (the input's
    first dimension set to 1), every self attention continuing its cache."""
    if not model.input_shape:
        raise SpecError("decode needs an input whose first dimension is the sequence")
    memo: dict = {}
    enc = encoder_items(model)
    try:
        items = tuple(dataclasses.replace(item, counted=False) if i < enc else
                      _rewrite_kept(item, context, memo, cross=enc > 0)
                      for i, item in enumerate(model.root.items))
    except SpecError as err:
        err.file, err.line = model.source_name, model.line_of(err.path)
        raise
    if not any(isinstance(v[1], Leaf) and v[1] is not v[0] and getattr(v[1].layer, "context", None)
               for v in memo.values()):
        raise SpecError(f"--phase decode needs a model with self attention (attention or mla without kv); "
                        f"'{model.name}' has none" + (" after its encoder" if enc else "")
                        + ", so there is no KV cache to continue")
    return _with_decoded(dataclasses.replace(model, root=dataclasses.replace(model.root, items=items)), 1)


def prefill_model(model: Model, prompt: int) -> Model:
    """The model on a prompt of ``prompt`` tokens (the first dimension of the decoded input:
    the only one, or an encoder–decoder's last)."""
    return _with_decoded(model, prompt)


@dataclass(frozen=True)
class KVLayer:
    name: str
    tokens: int          # tokens cached per sequence after the pass
    elements: int        # cached elements per sequence
    count: int = 1       # a folded run of identical layers (see Analysis.rows)
    grows: bool = True   # False: cross attention, whose cache holds the source and does not grow


@dataclass(frozen=True)
class KVCache:
    dtype: str
    layers: tuple[KVLayer, ...]
    batch: int

    @property
    def elements_per_sequence(self) -> int:
        return sum(x.count * x.elements for x in self.layers)

    @property
    def bytes_per_sequence(self) -> int:
        return self.elements_per_sequence * KV_BYTES[self.dtype]

    @property
    def bytes(self) -> int:
        return self.bytes_per_sequence * self.batch

    @property
    def bytes_per_token(self) -> int:
        """Bytes one more cached token adds (per sequence) while no window is full: 2·g·d per
        attention layer, in the KV dtype."""
        return sum(x.count * (x.elements // x.tokens) for x in self.layers if x.tokens and x.grows) * KV_BYTES[self.dtype]


def leaf_rows(a: Analysis):
    """(name, leaf result, count) of every leaf, a folded run of more than FOLD identical
    iterations (see Analysis.rows) given once with its count: bounded for any model."""
    def leaves(r, k):
        if r.is_leaf:
            yield r, k
            return
        for ch in r.children:
            yield from leaves(ch.result, k * ch.count)

    for row in a.rows(leaves_only=True, fold=FOLD):
        if row.result.is_leaf:
            yield row.name, row.result, row.count
        else:   # a folded run: the leaves of one iteration, `count` times
            for leaf, k in leaves(row.result, row.count):
                yield row.name, leaf, k


def leaf_counts(a: Analysis):
    """(leaf result, count) pairs whose sums over the layers are those of :func:`leaf_rows`
    (each leaf with how many times it runs), without naming rows, for sums and maxima that need
    no names (several times faster). A run of identical iterations is one pair per leaf of one
    iteration, its count multiplied by the run's; the order is not the model's."""
    if a.root.layer is not None:
        yield a.root, 1
        return
    stack = [(iter(a.root.children), 1)]     # memory bounded by the depth, not the width
    while stack:
        children, k = stack[-1]
        for ch in children:
            if not ch.count:
                continue
            r = ch.result
            if r.layer is not None:
                yield r, k * ch.count
            else:
                stack.append((iter(r.children), k * ch.count))
                break
        else:
            stack.pop()


def _leaf_ids(results, out: set) -> set:
    for r in results:
        if id(r) in out:
            continue
        out.add(id(r))
        _leaf_ids([c.result for c in r.children], out)
    return out


def kv_cache(a: Analysis, dtype: str) -> KVCache:
    if dtype not in KV_BYTES:
        raise SpecError(f"unknown KV-cache dtype '{dtype}'; known: {', '.join(KV_BYTES)}")
    layers = []
    if not any(r.kind in ("attention", "mla") for r, _ in leaf_counts(a)):
        return KVCache(dtype, (), a.batch)       # nothing to cache, and no row to name
    # an encoder's self attention caches nothing (see the module docstring)
    enc = encoder_items(a.model)
    children = a.root.children
    skip = (_leaf_ids([c.result for c in children[:enc]], set())
            - _leaf_ids([c.result for c in children[enc:]], set()))
    # folded rows (see Analysis.rows): a run of more than FOLD identical layers is one row with a count
    for name, r, count in leaf_rows(a):
        f = r.facts or {}
        if r.kind in ("attention", "mla") and "kv_cache" in f and id(r) not in skip:
            layers.append(KVLayer(name, f["kv_cached"], f["kv_cache"], count, not f.get("cross")))
    return KVCache(dtype, tuple(layers), a.batch)


@dataclass(frozen=True)
class Phase:
    """One inference phase analysed: ``analysis`` of the pass (batch included), the tokens it
    processes per sequence, and the KV cache after it."""

    phase: str
    context: int
    tokens: int
    analysis: Analysis
    kv: KVCache

    @property
    def per_token(self) -> tuple[Fraction, Fraction]:
        """(MACs, FLOPs) per processed token: the pass's totals over batch × tokens (exact)."""
        n = self.analysis.batch * self.tokens
        t = self.analysis.totals
        return Fraction(t.macs, n), Fraction(t.flops, n)


def run_phase(model: Model, phase: str, context: int, *, batch: int = 1, convention: str = "standard",
              dtype: str = "fp32", kv_dtype: str | None = None) -> Phase:
    """Analyse ``phase`` ('prefill' of ``context`` prompt tokens, or 'decode' at ``context`` keys)."""
    if phase == "prefill":
        m, tokens = prefill_model(model, context), context
    elif phase == "decode":
        m, tokens = decode_model(model, context), 1
    else:
        raise SpecError(f"unknown phase '{phase}'; known: prefill, decode")
    a = analyze(m, batch=batch, convention=convention, dtype=dtype)
    return Phase(phase, context, tokens, a, kv_cache(a, kv_dtype or dtype))


def _windows(model: Model) -> set[int]:
    out: set[int] = set()

    def walk(node):
        if isinstance(node, Leaf):
            w = getattr(node.layer, "window", None)
            if w:   # the keys stop growing at the window plus its sink tokens (StreamingLLM)
                out.add(w + (getattr(node.layer, "sink_tokens", None) or 0))
        elif isinstance(node, Seq):
            for i in node.items:
                walk(i)
        elif isinstance(node, Repeat):
            for b in (node.bodies or (node.body,)):
                walk(b)
        elif isinstance(node, Branches):
            for b in node.branches:
                walk(b)
    walk(model.root)
    return out


@dataclass(frozen=True)
class Generation:
    prompt: int
    new: int
    prefill: Phase
    decode_macs: int     # the N − 1 decode steps together (whole batch)
    decode_flops: int
    last: Phase | None   # the last decode step (its KV cache is the final one)

    @property
    def macs(self) -> int:
        return self.prefill.analysis.totals.macs + self.decode_macs

    @property
    def flops(self) -> int:
        return self.prefill.analysis.totals.flops + self.decode_flops


def generate(model: Model, prompt: int, new: int, *, batch: int = 1, convention: str = "standard",
             dtype: str = "fp32", kv_dtype: str | None = None) -> Generation:
    """Prefill of ``prompt`` tokens and ``new`` − 1 decode steps (see the module docstring)."""
    if new < 1:
        raise SpecError("--new must be at least 1 (the prefill yields the first new token)")
    pre = run_phase(model, "prefill", prompt, batch=batch, convention=convention, dtype=dtype, kv_dtype=kv_dtype)
    lo, hi = prompt + 1, prompt + new - 1
    if hi < lo:
        return Generation(prompt, new, pre, 0, 0, None)
    cache: dict[int, tuple[int, int]] = {}

    def cost(s: int) -> tuple[int, int]:
        if s not in cache:
            t = run_phase(model, "decode", s, batch=batch, convention=convention, dtype=dtype).analysis.totals
            cache[s] = (t.macs, t.flops)
        return cache[s]

    # the cost is affine in S on each stretch between window edges (S ≤ W and S > W)
    edges = sorted({lo, hi + 1, *(w + 1 for w in _windows(model) if lo < w + 1 <= hi)})
    macs = flops = 0
    for a, b in zip(edges, edges[1:]):
        b -= 1
        ca, cb, n = cost(a), cost(b), b - a + 1
        if n > 2:
            mid = (a + b) // 2
            cm = cost(mid)
            for i in range(2):
                if cm[i] * (b - a) != ca[i] * (b - mid) + cb[i] * (mid - a):
                    raise SpecError(f"the decode cost is not affine in the context between {a} and {b}; "
                                    "calc cannot sum it in closed form")
        macs += (ca[0] + cb[0]) * n // 2
        flops += (ca[1] + cb[1]) * n // 2
    last = run_phase(model, "decode", hi, batch=batch, convention=convention, dtype=dtype, kv_dtype=kv_dtype)
    return Generation(prompt, new, pre, macs, flops, last)


def phase_dict(p: Phase) -> dict:
    """The JSON record of a phase (exact integers; per-token figures as exact fractions where
    they are not whole, written "a/b")."""
    macs, flops = p.per_token
    kv = p.kv
    return {
        "phase": p.phase, "context": p.context, "tokens_per_sequence": p.tokens, "batch": p.analysis.batch,
        "macs": p.analysis.totals.macs, "flops": p.analysis.totals.flops,
        "macs_per_token": _exact(macs), "flops_per_token": _exact(flops),
        "kv_cache": {"dtype": kv.dtype, "bytes_per_element": KV_BYTES[kv.dtype],
                     "bytes_per_token": kv.bytes_per_token, "bytes_per_sequence": kv.bytes_per_sequence,
                     "bytes": kv.bytes, "units": "bytes; GB = 10^9 bytes, GiB = 2^30 bytes",
                     "layers": [{"name": x.name, "tokens": x.tokens, "elements": x.elements,
                                 "bytes_per_sequence": x.elements * KV_BYTES[kv.dtype],
                                 **({"count": x.count} if x.count > 1 else {}),
                                 **({} if x.grows else {"cross": True})} for x in kv.layers]},
    }


def generation_dict(g: Generation) -> dict:
    return {"prompt": g.prompt, "new_tokens": g.new, "prefill_macs": g.prefill.analysis.totals.macs,
            "prefill_flops": g.prefill.analysis.totals.flops, "decode_steps": g.new - 1,
            "decode_macs": g.decode_macs, "decode_flops": g.decode_flops, "macs": g.macs, "flops": g.flops,
            "kv_cache_bytes": (g.last or g.prefill).kv.bytes}


def _exact(x: Fraction):
    return x.numerator if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


@dataclass(frozen=True)
class Active:
    """Parameters of a mixture of experts, by the common definitions:

    ``total``: every parameter; ``active``: what one token uses — every layer's parameters, but of
    each mixture-of-experts layer only its router, its top_k experts and its shared experts; the
    embedding tables and the head count whole (Mixtral-8x7B's "12.9 B active"); ``active_non_embedding``:
    the same without the embedding tables (token, position, type) — a token reads one row of each."""

    total: int
    active: int
    active_non_embedding: int
    embedding: int


def active_parameters(a: Analysis) -> Active | None:
    """The active parameters (see :class:`Active`); None for a model without mixture-of-experts
    layers. Walks the result tree with its repetition counts (results are shared: memoised by
    id), so that a repeat of a million identical layers costs one visit."""
    memo: dict = {}

    def walk(r) -> tuple[int, int, bool]:
        if r.is_leaf:     # not memoised: as quick as a look-up, and a memo of every leaf is large
            moe = r.kind == "moe" and "active" in (r.facts or {})   # other leaves' facts are not read
            emb = r.params if r.layer.kind in ("embedding", "added_embedding") else 0
            return (r.facts["active"] if moe else r.params, emb, moe)
        hit = memo.get(id(r))
        if hit is not None:
            return hit
        act = emb = 0
        moe = False
        for ch in r.children:
            x, e, m = walk(ch.result)
            act, emb, moe = act + ch.count * x, emb + ch.count * e, moe or m
        out = (act, emb, moe)
        memo[id(r)] = out
        return out

    active, emb, moe = walk(a.root)
    if not moe:
        return None
    return Active(a.root.params, active, active - emb, emb)
