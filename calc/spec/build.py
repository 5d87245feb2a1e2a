"""Building a validated spec into the model tree: blocks, repeats, expressions and names."""

import re
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Mapping

from pydantic import ValidationError

from ..errors import SpecError, close_matches, format_path
from ..expr import IN_NAME, names_in
from ..graph import Branches, Leaf, Repeat, Seq
from ..layers import HINTS, LAYERS, Join
from ..limits import MAX_RANK
from .loader import Source
from .flow import Iterations, mentions_in
from ..conventions.hint_readers import read_by, readers_text
from .document import check_rank, check_size, _finite  # noqa: F401 - check_rank, check_size imported from here
from .document import _block_names, _names  # noqa: F401 - _names is imported from here too
from .document import (_IDENT, MAX_BUILT_NODES, MAX_NESTING, MAX_REPEAT, RESERVED, STRUCTURES, SpecDoc, _as_names,
                       _fields_of, _raise_validation, resolve)


# ---------------------------------------------------------------------------- builder

# tie: a name, or a dotted path of names and positions (a name used again in a namespace: x#2)
_TIE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(#[0-9]+)?\Z|([A-Za-z_][A-Za-z0-9_]*|[0-9]+)(#[0-9]+)?"
                  r"(\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+)(#[0-9]+)?)+\Z")
_ABSENT = object()   # an item without `trainable` (null is a value, and refused)
# The keys every item takes besides its type's arguments (see Builder._parse_item).
_ITEM_KEYS = frozenset(("name", "when", "from", "trainable", "tie", "inference", "expect", *HINTS))
_NO_HINTS = MappingProxyType({})   # shared by every item without hints (read only)

class Builder:
    def __init__(self, doc: SpecDoc, source: Source, overrides: Mapping[str, Any] | None = None,
                 cache: dict | None = None):
        self.doc = doc
        self.source = source
        # Validated layers (a layer depends only on its type and resolved arguments) and built
        # block bodies (keyed by everything they read), shareable by every build of one spec:
        # sweeps build it once per variant.
        self.cache: dict = {} if cache is None else cache
        self.stack: list[str] = []
        self.count = 0
        self.depth = 0      # lists being built, one inside the other
        self.deepest = 0    # the largest depth reached so far
        self.variables = self._variables(overrides or {})
        self.flow = None    # a calc.spec.flow.Flow once the input is known: `in` in expressions
        # path -> note: hints no tool preset reads (kept with the cache: cached bodies are not re-read)
        self.notes: dict = self.cache.setdefault(("notes",), {})

    # -- variables
    def _variables(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        unknown = [k for k in overrides if k not in self.doc.variables]
        if unknown:
            known = ", ".join(self.doc.variables) or "none"
            raise SpecError(f"--set {unknown[0]}: the spec has no such variable (variables: {known})")
        env: dict[str, Any] = {}
        for key, raw in self.doc.variables.items():
            if not _IDENT.match(key) or key == IN_NAME:
                raise SpecError("variable names must be identifiers" + (f" ({IN_NAME} is how `in`, the incoming "
                                "shape, is read)" if key == IN_NAME else ""), path=("variables", key))
            raw = overrides.get(key, raw)
            where = (f"--set {key}",) if key in overrides else ("variables", key)
            try:
                env[key] = _finite(resolve(raw, env, where), where)
            except SpecError as err:
                given = sorted(n for n in names_in(raw) if n in overrides) if isinstance(raw, str) else []
                if given and key not in overrides:
                    err.context += tuple(f"{n} is given on the command line: --set {n}={overrides[n]!r}"
                                         for n in given)
                raise
        return env

    def input_shape(self) -> tuple[int, ...]:
        """The shape of the first input (the flow starts from it)."""
        return self.named_inputs()[0][1]

    def named_inputs(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """Every input as (name, shape): `input: [...]` is one input named 'input'; `inputs:
        {a: [...], b: [...]}` are several, the first also readable as 'input'."""
        doc = self.doc
        if (doc.input is None) == (not doc.inputs):
            raise SpecError("a spec gives its input shape as 'input: [...]' or several named inputs as "
                            "'inputs: {name: [...], ...}', not both" if doc.inputs else
                            "missing argument 'input' for a spec (or 'inputs' for several named inputs)",
                            path=("inputs",) if doc.inputs else ())
        given = {"input": doc.input} if doc.input is not None else doc.inputs
        out = []
        for name, dims_raw in given.items():
            where = ("input",) if doc.input is not None else ("inputs", name)
            if doc.input is None and (not _IDENT.match(name) or name == "input"):
                raise SpecError("an input's name must be an identifier other than 'input' (the first input "
                                "is also read as 'input')", path=where)
            if not dims_raw:
                raise SpecError("an input shape needs at least one size", path=where)
            check_rank(dims_raw, where)
            dims = []
            for i, raw in enumerate(dims_raw):
                value = resolve(raw, self.variables, where + (i,))
                dims.append(check_size(value, where + (i,)))
            out.append((name, tuple(dims)))
        return tuple(out)

    # -- items
    def build_list(self, items: list, path: tuple, env, trainable: bool, ctx: tuple, entry=None) -> tuple:
        """``entry``: how the flow finds the shape entering the list (see calc.spec.flow); by
        default, the shape entering the item being built around it."""
        if not isinstance(items, list):
            raise SpecError("must be a list of items", path=path, context=ctx)
        self._descend(1, path, ctx)
        built: list = []
        if self.flow is not None:
            self.flow.enter(built, entry)
        try:
            for i, item in enumerate(items):
                node = self.build_item(item, path + (i,), env, trainable, ctx)
                if node is not None:
                    built.append(node)
            return tuple(built)
        finally:
            self.depth -= 1
            if self.flow is not None:
                self.flow.leave()

    def _descend(self, levels: int, path, ctx):
        """Enter ``levels`` more levels of nesting (a list, or a memoised block body)."""
        self.depth += 1
        reach = self.depth + levels - 1
        if reach > MAX_NESTING:
            self.depth -= 1
            raise SpecError(f"structures and blocks nest more than {MAX_NESTING} levels deep",
                            path=path, context=ctx[-3:])
        self.deepest = max(self.deepest, reach)

    def build_item(self, item, path: tuple, env, trainable: bool, ctx: tuple):
        self.count += 1
        if self.count > MAX_BUILT_NODES:
            raise SpecError(f"the spec expands to more than {MAX_BUILT_NODES:,} items", path=path)
        # What an item says apart from its expressions is read once per item of the spec:
        # builds of a block body, repeat iterations and the variants of a sweep reuse it.
        key = id(item)      # an int: no other key of the cache is one
        parsed = self.cache.get(key)
        if parsed is None or parsed[0] is not item:
            parsed = self.cache[key] = (item, *self._parse_item(item, path, ctx))
        _, kind, args, name, when, source, flag, tie, hints, runs, expect, reads_in = parsed
        ipath = path + (kind,)
        unnamed = None
        if kind in env and kind not in LAYERS and kind not in STRUCTURES and kind not in self.doc.blocks:
            value = env[kind]   # e.g. norm_layer: batchnorm2d; checked once `when` keeps the item
            if isinstance(value, str) and (value in LAYERS or value in self.doc.blocks):
                kind = value
            else:
                unnamed = kind
        frame = self.flow.frames[-1] if self.flow is not None else None
        if frame is not None:
            frame.source = None
        resolved = False
        if reads_in or (kind in self.doc.blocks and self._defaults_read_in(kind)):
            # `in.H`, `in[0]`: the shape entering this item (after its `from`), one sample's.
            if source is not None:
                source = _as_names(resolve(source, env, ipath + ("from",)), ipath + ("from",))
                if len(source) != 1:
                    raise SpecError("from takes one name", path=ipath + ("from",), context=ctx)
                source = frame.source = source[0]
                resolved = True
            env = {**env, IN_NAME: self.flow.incoming(frame)}
        if when is not None:
            cond = resolve(when, env, ipath + ("when",)) if isinstance(when, str) else when
            if not isinstance(cond, (bool, int)):
                raise SpecError(f"when must be true or false, got {cond!r}", path=ipath + ("when",), context=ctx)
            if not cond:
                return None
        if unnamed is not None:
            self._layer_argument(unnamed, env, ipath, ctx)
        if source is not None and not resolved:
            source = _as_names(resolve(source, env, ipath + ("from",)), ipath + ("from",))
            if len(source) != 1:
                raise SpecError("from takes one name", path=ipath + ("from",), context=ctx)
            source = source[0]
            if frame is not None:
                frame.source = source
        if flag is not _ABSENT:
            flag = resolve(flag, env, ipath + ("trainable",))
            if not isinstance(flag, bool):
                raise SpecError("trainable must be true or false", path=ipath + ("trainable",), context=ctx)
            trainable = trainable and flag
        if runs is not _ABSENT:
            runs = resolve(runs, env, ipath + ("inference",))
            if not isinstance(runs, bool):
                raise SpecError("inference must be true or false (false: the item holds parameters but does not "
                                "run at inference, like an auxiliary classifier)", path=ipath + ("inference",), context=ctx)
        if tie is not None:
            if not isinstance(tie, str) or not _TIE.match(tie):
                raise SpecError(f"tie must be the name of an earlier layer or its dotted path as the report "
                                f"prints it (encoder.embed, features.3.conv), got {tie!r}",
                                path=ipath + ("tie",), context=ctx)
            if tie == name:
                raise SpecError(f"tie: '{tie}' is this layer's own name; a layer shares the weights of "
                                "an earlier layer", path=ipath + ("tie",), context=ctx)
            if kind in STRUCTURES or kind in self.doc.blocks:
                raise SpecError(f"tie applies to a single layer, not to '{kind}'", path=ipath + ("tie",), context=ctx)
        node = self._build_parsed(kind, args, name, source, trainable, tie, hints, path, ipath, env, ctx)
        if runs is False:
            node = replace(node, runs=False)
        if expect is not None:
            node = replace(node, expect=(expect_sites(expect, ipath + ("expect",), ctx), env))
        return node

    def _layer_argument(self, name: str, env, ipath: tuple, ctx: tuple) -> str:
        """The layer type or block that a block parameter (or variable) used as an item's type
        names, as torchvision passes norm_layer or activation_layer."""
        value = env[name]
        if isinstance(value, str) and (value in LAYERS or value in self.doc.blocks):
            return value
        raise SpecError(f"'{name}' is used as an item's type, so its value must name a layer type or a block; "
                        f"it is {value!r}", path=ipath, context=ctx)

    def _parse_item(self, item, path: tuple, ctx: tuple) -> tuple:
        """(kind, other arguments, name, when, from, trainable, tie, hints) of an item, checked
        as far as they do not depend on the variables."""
        if isinstance(item, str):
            kind, args = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            (kind, args), = item.items()
            if args is None:
                args = {}
            if not isinstance(args, dict):
                raise SpecError(f"the arguments of '{kind}' must be a mapping such as "
                                f"{{{kind}: {{...}}}}, got {type(args).__name__} {args!r}",
                                path=path + (kind,), context=ctx)
        elif isinstance(item, dict):
            raise SpecError("an item must have exactly one key, its type, e.g. "
                            "'- conv2d: {out: 64, kernel: 3}'; got keys " + ", ".join(map(str, item)),
                            path=path, context=ctx)
        else:
            raise SpecError(f"an item must be a layer type or a one-key mapping, got {item!r}",
                            path=path, context=ctx)
        if not isinstance(kind, str):
            raise SpecError(f"item type must be a name, got {kind!r}", path=path, context=ctx)
        ipath = path + (kind,)
        if not _ITEM_KEYS.isdisjoint(args):
            args = dict(args)       # the keys every item takes are taken out; else args as written
        name = args.pop("name", None)
        if name is not None and (not isinstance(name, str) or not _IDENT.match(name)):
            raise SpecError(f"name must be an identifier (letters, digits, _), got {name!r}",
                            path=ipath + ("name",), context=ctx)
        if name == "input" or name in self.doc.inputs:
            # `from: input` and `with: [input]` mean the model's input; an output of that name
            # would silently stand in for it inside its scope.
            raise SpecError(f"'{name}' is the name of the model's input (from: {name}); name this item otherwise",
                            path=ipath + ("name",), context=ctx)
        when = args.pop("when", None)
        source = args.pop("from", None)
        flag = args.pop("trainable", _ABSENT)
        tie = args.pop("tie", None)
        hints = {k: args.pop(k) for k in HINTS if k in args} or _NO_HINTS
        runs = args.pop("inference", _ABSENT)
        expect = args.pop("expect", None)
        own = args if kind not in STRUCTURES else {k: v for k, v in args.items()
                                                   if k not in ("layers", "main", "shortcut", "branches")}
        reads_in = mentions_in([own, when, source, flag, runs, hints, expect])
        return kind, args, name, when, source, flag, tie, hints, runs, expect, reads_in

    def _build_parsed(self, kind, args, name, source, trainable, tie, hints, path, ipath, env, ctx):
        common = dict(name=name, origin=ipath, source=source, trainable=trainable)

        if hints:
            if kind in ("residual", "parallel"):
                node = getattr(self, "_" + kind)(args, ipath, env, trainable, ctx, common)
                if not isinstance(node, Branches):
                    # a residual with enabled: false has no join; the hint is still checked
                    self._hints(hints, LAYERS["add"], f"the {kind}'s join (add)", ipath, env, ctx)
                    return node
                join = node.join.layer
                return self._with_join_hints(node, self._hints(
                    hints, type(join), f"the {kind}'s join ({join.type_name})", ipath, env, ctx))
            if kind in STRUCTURES or kind in self.doc.blocks:
                raise SpecError(f"{', '.join(hints)} describes how a layer is called; it applies to layer "
                                f"items (and, for call, to residual and parallel), not to {kind}",
                                path=ipath + (next(iter(hints)),), context=ctx)
        if kind in STRUCTURES:
            return getattr(self, "_" + kind)(args, ipath, env, trainable, ctx, common)
        if kind in self.doc.blocks:
            return self._block(kind, args, ipath, env, trainable, ctx, common)
        cls = LAYERS.get(kind)
        if cls is None:
            known = sorted(LAYERS) + sorted(self.doc.blocks) + list(STRUCTURES)
            near = close_matches(kind, known, n=3)
            hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
            raise SpecError(f"unknown layer type '{kind}'{hint} (see `calc layers` for the list)",
                            path=path, context=ctx)
        leaf_hints = self._hints(hints, cls, kind, ipath, env, ctx) if hints else ()
        return Leaf(layer=self._layer(cls, kind, args, ipath, env, ctx), hints=leaf_hints, tie=tie, **common)

    def _hints(self, hints: dict, cls, what: str, ipath, env, ctx) -> tuple:
        """Check hints against what the layer class allows; sorted (key, value) pairs."""
        out = []
        for key, raw in hints.items():
            value = resolve(raw, env, ipath + (key,))
            allowed = cls.hints.get(key) if cls is not None else None
            if allowed is None:
                takes = ", ".join(cls.hints) if cls is not None and cls.hints else "no hints"
                read = f"; {readers_text(cls.type_name)}" if cls is not None and cls.hints else ""
                raise SpecError(f"hint '{key}' does not apply to {what} (it takes {takes}{read})",
                                path=ipath + (key,), context=ctx)
            if value not in allowed or type(value) is not type(allowed[0]):
                raise SpecError(f"{key} must be one of {', '.join(map(_show, allowed))} for {what}, got {value!r}",
                                path=ipath + (key,), context=ctx)
            out.append((key, value))
            if cls is not None and not read_by(key, cls.type_name):
                self.notes.setdefault(ipath + (key,), (
                    f"no tool preset reads '{key}' on {cls.type_name}, so '{key}: {_show(value)}' changes no count; "
                    "it only says how calc verify's PyTorch module calls the layer (`calc layers` lists "
                    "the hints each tool reads, per type)"))
        return tuple(sorted(out))

    @staticmethod
    def _with_join_hints(node: Branches, hints: tuple) -> Branches:
        join = node.join
        return replace(node, join=Leaf(name=join.name, origin=join.origin, layer=join.layer, hints=hints))

    def _layer(self, cls, kind, args, ipath, env, ctx):
        values = {k: resolve(v, env, ipath + (k,)) if isinstance(v, (str, list)) else v
                  for k, v in args.items()}
        if issubclass(cls, Join) and "with" in values:
            values["with"] = _as_names(values["with"], ipath + ("with",))
        for k, v in values.items():
            # A list argument gives one value per dimension (or two, for padding): a longer one
            # is refused before the layer computes with it.
            if k != "with" and isinstance(v, list) and len(v) > 2 * MAX_RANK:
                raise SpecError(f"{len(v):,} values; a shape has at most {MAX_RANK} dimensions",
                                path=ipath + (k,), context=ctx)
        try:
            # Fast key for flat arguments; the types keep 1, 1.0 and True apart. One flat tuple
            # (name, value, type, name, …): a spec of distinct layers keeps one key per layer.
            flat: list = []
            for k, v in values.items():
                flat += (k, v, type(v))
            key = (kind, tuple(flat))
            layer = self.cache.get(key)
        except TypeError:   # a list or mapping argument
            key = (kind, _freeze(values))
            layer = self.cache.get(key)
        if layer is None:
            try:
                layer = cls.model_validate(values)
            except ValidationError as exc:
                _raise_validation(exc, ipath, _fields_of(cls), kind, ctx)
            self.cache[key] = layer
        return layer

    def _struct_args(self, args, allowed: dict, ipath, env, ctx):
        unknown = [k for k in args if k not in allowed]
        if unknown:
            near = close_matches(str(unknown[0]), list(allowed), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise SpecError(f"unknown argument '{unknown[0]}'{hint}; arguments: "
                            + ", ".join(list(allowed) + list(RESERVED)), path=ipath + (unknown[0],), context=ctx)
        for key, required in allowed.items():
            if required and key not in args:
                raise SpecError(f"missing argument '{key}'", path=ipath, context=ctx)

    def _body(self, args, key, ipath, env, trainable, ctx, kind="group", required=True, entry=None):
        items = args.get(key)
        if items is None:
            if required:
                raise SpecError(f"missing argument '{key}' (a list of items)", path=ipath, context=ctx)
            items = []
        return Seq(name=None, origin=ipath + (key,), trainable=trainable, kind=kind,
                   items=self.build_list(items, ipath + (key,), env, trainable, ctx, entry))

    def _group(self, args, ipath, env, trainable, ctx, common):
        self._struct_args(args, {"layers": True}, ipath, env, ctx)
        body = self._body(args, "layers", ipath, env, trainable, ctx)
        return Seq(items=body.items, kind="group", **common)

    def _repeat(self, args, ipath, env, trainable, ctx, common):
        self._struct_args(args, {"times": True, "layers": True, "index": False}, ipath, env, ctx)
        times = resolve(args["times"], env, ipath + ("times",))
        if isinstance(times, float) and times.is_integer():
            times = int(times)
        if not isinstance(times, int) or isinstance(times, bool) or not 0 <= times <= MAX_REPEAT:
            raise SpecError(f"times must be a whole number from 0 to {MAX_REPEAT:,}, got {times!r}",
                            path=ipath + ("times",), context=ctx)
        index = args.get("index")
        if index is None and not self._reads_in(args.get("layers")):
            body = self._body(args, "layers", ipath, env, trainable, ctx)
            return Repeat(times=times, body=body, **common)
        # A body that reads `in` may differ from one iteration to the next, as the shape does.
        if index is not None and (not isinstance(index, str) or not _IDENT.match(index)):
            raise SpecError(f"index must be a name for the iteration number, got {index!r}",
                            path=ipath + ("index",), context=ctx)
        if index is not None and index in env:
            # It would hide the variable (or block parameter) of that name inside the repeat.
            raise SpecError(f"index '{index}' is already the name of a variable or block parameter; "
                            "choose another name for the iteration number", path=ipath + ("index",), context=ctx)
        # The body may differ from one iteration to the next (first block strided, ...), so
        # each iteration is built with its own number.
        bodies: list = []
        steps = Iterations(self.flow, self.flow.here()) if self.flow is not None else None
        if steps is not None:
            steps.bodies = bodies
        for i in range(times):
            self.count += 1
            if self.count > MAX_BUILT_NODES:
                raise SpecError(f"the spec expands to more than {MAX_BUILT_NODES:,} items", path=ipath)
            bodies.append(self._body(args, "layers", ipath, env if index is None else {**env, index: i}, trainable,
                                     ctx + (f"in iteration {index or 'number'}={i}",), entry=steps and steps.entry(i)))
        empty = Seq(name=None, origin=ipath + ("layers",), trainable=trainable, items=())
        return Repeat(times=times, body=bodies[0] if bodies else empty, bodies=tuple(bodies), **common)

    def _residual(self, args, ipath, env, trainable, ctx, common):
        self._struct_args(args, {"main": True, "shortcut": False, "enabled": False}, ipath, env, ctx)
        main = self._body(args, "main", ipath, env, trainable, ctx)
        if "enabled" in args:
            # MobileNet-style blocks add the shortcut only when shapes allow (use_res_connect).
            enabled = resolve(args["enabled"], env, ipath + ("enabled",))
            if not isinstance(enabled, bool):
                raise SpecError(f"enabled must be true or false, got {enabled!r}",
                                path=ipath + ("enabled",), context=ctx)
            if not enabled:
                return Seq(items=main.items, kind="group", **common)
        shortcut = self._body(args, "shortcut", ipath, env, trainable, ctx, required=False)
        join = Leaf(name="add", origin=ipath, layer=self._layer(LAYERS["add"], "add", {}, ipath, env, ctx))
        return Branches(branches=(main, shortcut), join=join, kind="residual", **common)

    def _parallel(self, args, ipath, env, trainable, ctx, common):
        self._struct_args(args, {"branches": True, "join": False, "dim": False}, ipath, env, ctx)
        branches = args["branches"]
        if not isinstance(branches, list) or not branches:
            raise SpecError("branches must be a non-empty list of item lists", path=ipath + ("branches",), context=ctx)
        seqs = []
        for i, items in enumerate(branches):
            bpath = ipath + ("branches", i)
            if items is None:
                items = []
            built = self.build_list(items, bpath, env, trainable, ctx)
            if items and not built:
                # Only an empty list ([]) is the identity: a branch whose every item is left out
                # by `when` is more likely a mistake than a wish for the input itself.
                raise SpecError("every item of this branch is left out by its 'when', which would make the "
                                "branch the identity; write [] (or an identity item) for the input itself, or "
                                "put the 'when' on the parallel", path=bpath, context=ctx)
            seqs.append(Seq(name=None, origin=bpath, trainable=trainable, kind="branch", items=built))
        join_kind = resolve(args.get("join", "concat"), env, ipath + ("join",))
        if join_kind not in ("concat", "add", "mul"):
            raise SpecError(f"join must be concat, add or mul, got {join_kind!r}", path=ipath + ("join",), context=ctx)
        join_args = {}
        if "dim" in args:
            if join_kind != "concat":
                raise SpecError("dim applies to join: concat only", path=ipath + ("dim",), context=ctx)
            join_args["dim"] = resolve(args["dim"], env, ipath + ("dim",))
        join = Leaf(name=join_kind, origin=ipath,
                    layer=self._layer(LAYERS[join_kind], join_kind, join_args, ipath, env, ctx))
        return Branches(branches=tuple(seqs), join=join, kind="parallel", **common)

    def _block(self, kind, args, ipath, env, trainable, ctx, common):
        block = self.doc.blocks[kind]
        bpath = ("blocks", kind)
        unknown = [k for k in args if k not in block.params]
        if unknown:
            near = close_matches(str(unknown[0]), list(block.params), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise SpecError(f"block '{kind}' has no parameter '{unknown[0]}'{hint}; parameters: "
                            + (", ".join(block.params) or "none"), path=ipath + (unknown[0],), context=ctx)
        values = dict(self.variables)
        if IN_NAME in env:   # the block's parameter defaults may read the shape entering it
            values[IN_NAME] = env[IN_NAME]
        for pname, default in block.params.items():
            if pname in args:
                values[pname] = resolve(args[pname], env, ipath + (pname,))
            elif default is None:
                raise SpecError(f"block '{kind}' needs parameter '{pname}'", path=ipath, context=ctx)
            else:
                values[pname] = resolve(default, values, bpath + ("params", pname))
        if kind in self.stack:
            chain = " → ".join(self.stack[self.stack.index(kind):] + [kind])
            raise SpecError(f"block '{kind}' instantiates itself ({chain})", path=ipath, context=ctx)
        values.pop(IN_NAME, None)
        # Everything the body depends on: its parameters, the variables it may read and, if it
        # reads `in`, the shape entering it.
        read = (*(values[p] for p in block.params), *(self.variables[n] for n in self._free_names(kind)))
        if IN_NAME in self._free_names(kind, True):
            shape = self.flow.incoming()   # (an `in` in env may be an enclosing item's)
            read += (shape, type(shape).__name__)
        try:
            key = ("block", kind, trainable, read, tuple(map(type, read)))
            body = self.cache.get(key)
        except TypeError:   # a list value
            key = ("block", kind, trainable, _freeze(read))
            body = self.cache.get(key)
        if body is None:
            self.stack.append(kind)
            inner_ctx = ctx + (lambda: self._block_context(kind, ipath),)
            start, deepest = self.depth, self.deepest
            self.deepest = start
            try:
                body = self.build_list(block.layers, bpath + ("layers",), values, trainable, inner_ctx)
            finally:
                self.stack.pop()
                height = self.deepest - start
                self.deepest = max(deepest, self.deepest)
            self.cache[key] = body
            self.cache[("height", key)] = height
        else:
            # A body built before is used again here: its nesting adds to this depth too.
            self._descend(self.cache.get(("height", key), 1), ipath, ctx)
            self.depth -= 1
        return Seq(items=body, kind=f"block:{kind}", **common)

    def _free_names(self, kind: str, every: bool = False) -> tuple[str, ...]:
        """The spec variables a block's body may read besides its parameters (a superset:
        every name in its expressions and in the blocks it uses); ``every``: all those names."""
        key = ("free", kind, every)
        names = self.cache.get(key)
        if names is None:
            direct = self.cache.setdefault(("direct",), {})
            names = tuple(sorted(n for n in _block_names(self.doc, kind, set(), direct)
                                 if every or n in self.doc.variables))
            self.cache[key] = names
        return names

    def _defaults_read_in(self, kind: str) -> bool:
        key = ("defaults in", kind)
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = mentions_in(list(self.doc.blocks[kind].params.values()))
        return hit

    def _reads_in(self, items) -> bool:
        """Whether a list of items (or a block it uses) reads the incoming shape anywhere."""
        key = ("reads in", id(items))
        hit = self.cache.get(key)
        if hit is None or hit[0] is not items:
            found: set = set()
            keys: set = set()
            _names(items, found, keys)
            reads = IN_NAME in found or any(IN_NAME in self._free_names(b, True)
                                             for b in (found | keys) & set(self.doc.blocks))
            hit = self.cache[key] = (items, reads)
        return hit[1]

    def _block_context(self, kind, ipath) -> str:
        line = self.source.line_of(ipath)
        return f"in block '{kind}' used at {format_path(ipath)}" + (f" (line {line})" if line else "")


def expect_sites(expect, path: tuple, ctx: tuple = ()) -> tuple:
    """``expect:`` as ((mapping, path), …): one mapping, or a list of them (one per convention)."""
    many = isinstance(expect, list)
    mappings = expect if many else [expect]
    if not mappings or not all(isinstance(m, dict) for m in mappings):
        raise SpecError("expect must be a mapping such as {params: 23296, macs: \"C_out * H_out * W_out * C_in * "
                        "K * K\"}, or a list of them (one per convention)", path=path, context=ctx)
    return tuple((m, path + (i,) if many else path) for i, m in enumerate(mappings))


def _show(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _freeze(value):
    # The type is part of the key so that 1, 1.0 and True stay distinct.
    kind = type(value)
    if kind is dict:
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if kind is list or kind is tuple:
        return tuple(map(_freeze, value))
    return (kind, value)
