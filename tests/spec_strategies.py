"""Hypothesis strategies that write random calc specs (as YAML-ready dicts).

The specs are mostly valid: arguments are drawn to suit the shape that reaches each layer, and
calc's shape inference is used only to *steer* the generation (which shape comes next). Now and
then an argument, a rank or a second use of a block is drawn without regard to the shape, so
that some specs are invalid; the tests then require calc and PyTorch to refuse them alike.

Sizes stay small (a few channels, spatial sizes up to 12) so that PyTorch runs each spec in
milliseconds.
"""
from __future__ import annotations

from math import prod

from hypothesis import strategies as st

from calc import analyze, parse_spec
from calc.errors import CalcError
from calc.layers import LAYERS

import yaml

MAX_NUMEL = 3000     # per-sample elements beyond which the generator prefers shrinking layers

ACTIVATIONS = ("relu", "relu6", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "silu", "hardswish",
               "hardsigmoid", "prelu", "softplus")
# The layer types Gen.args can write arguments for. A type registered later must be added here
# (and to Gen.args) before the oracle tests can generate it; until then the per-type test fails
# with a message that says so, and random stacks leave it out.
GENERATED = frozenset(
    [f"{k}{d}d" for k in ("conv", "conv_transpose", "maxpool", "avgpool", "adaptive_avgpool",
                          "adaptive_maxpool", "batchnorm") for d in (1, 2, 3)]
    + ["linear", "global_avgpool", "global_maxpool", "layernorm", "groupnorm", "local_response_norm",
       *ACTIVATIONS, "softmax", "dropout", "stochastic_depth", "identity", "flatten", "reshape", "permute",
       "channel_shuffle", "channel_split", "pad", "roll", "layer_scale", "upsample", "add", "mul", "concat",
       "embedding", "pos_embedding", "type_embedding", "class_token", "to_tokens", "to_image",
       "select_token", "token_mean", "rmsnorm", "attention", "rnn", "lstm", "gru", "matmul", "parameter",
       "buffer", "gather", "scale", "exp", "clamp", "normalize", "moe", "mla"])
# Layer types that read a named earlier output: generated only where a test forces them.
NAMED_INPUT = ("add", "mul", "concat", "matmul", "gather")
# Generated only where a test forces them too (a random stack leaves them out): a mixture of
# experts and latent attention are large modules, and adding them to random stacks would change
# every other type's examples.
FORCED_ONLY = ("moe", "mla")


def valid_ranks(type_name: str) -> tuple[int, ...]:
    """Per-sample ranks (1..4) a layer type takes."""
    t = type_name
    if t[-2:] in ("1d", "2d", "3d") and not t.startswith("batchnorm"):
        return (int(t[-2]) + 1,)
    if t == "batchnorm1d":
        return (1, 2)
    if t.startswith("batchnorm"):
        return (int(t[-2]) + 1,)
    if t in ("global_avgpool", "global_maxpool", "local_response_norm", "channel_shuffle"):
        return (2, 3, 4)
    if t == "upsample":
        return (2, 3, 4)
    if t == "attention":
        return (2, 3, 4)
    if t in ("rnn", "lstm", "gru", "to_image", "mla"):
        return (2,)
    if t == "matmul":
        return (2, 3, 4)
    if t in ("to_tokens", "select_token", "token_mean", "pos_embedding", "type_embedding", "class_token"):
        return (2, 3, 4)
    if t == "embedding":   # reads token ids: only at the start of a spec whose input is tokens
        return ()
    return (1, 2, 3, 4)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _per_dim(draw, dims: int, values, single_p: float = 0.6):
    """One value for every spatial dim, or a list with one per dim."""
    if draw(st.sampled_from(range(100))) < 100 * single_p:
        return draw(values)
    return [draw(values) for _ in range(dims)]


def _as_list(value, dims):
    return [value] * dims if isinstance(value, int) else list(value)


class Gen:
    """One spec being written: its blocks and variables, and the randomness that drives it."""

    def __init__(self, draw, wild: float):
        self.draw = draw
        self.wild = wild             # probability of drawing an argument without regard to shape
        self.blocks: dict = {}
        self.width = draw(st.integers(1, 4))
        self.variables = {"w": self.width}
        self.names = 0
        self.rel_tables: set = set()   # (heads, tokens) of the T5 bias tables drawn so far

    # -- helpers
    def coin(self, p: float) -> bool:
        # sampled_from draws nearly uniformly (plain integers favour small values); the rare
        # outcome sits at the top so that shrinking (towards index 0) leads away from it.
        return self.draw(st.sampled_from(range(100))) >= 100 * (1 - p)

    def is_wild(self) -> bool:
        return self.coin(self.wild)

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def pick(self, seq):
        return self.draw(st.sampled_from(list(seq)))

    def out_value(self, value: int):
        """Write a channel count literally or as an expression over the variable ``w``."""
        if value % self.width == 0 and self.coin(0.25):
            return f"w * {value // self.width}"
        return value

    # -- arguments of one layer for a given per-sample input shape
    def args(self, t: str, shape: tuple) -> dict:
        rank = len(shape)
        c = shape[0] if shape else 1
        spatial = list(shape[1:])
        wild = self.is_wild()
        if t.startswith(("conv", "conv_transpose")):
            dims = int(t[-2])
            groups = self.pick(_divisors(c)) if not wild else self.int(1, 4)
            out = groups * self.int(1, 3) if not self.coin(0.1) else self.int(1, 8)
            a: dict = {"out": self.out_value(out)}
            kmax = max(1, min(spatial)) if spatial and not wild else 5
            a["kernel"] = _per_dim(self.draw, dims, st.integers(1, min(4, kmax + 2)))
            if groups > 1 or self.coin(0.2):
                a["groups"] = groups
            if t.startswith("conv_transpose"):
                stride = _per_dim(self.draw, dims, st.integers(1, 3))
                dil = _per_dim(self.draw, dims, st.integers(1, 2), 0.8)
                a["stride"], a["dilation"] = stride, dil
                a["padding"] = _per_dim(self.draw, dims, st.integers(0, 2), 0.7)
                limit = [max(s, d) - 1 for s, d in zip(_as_list(stride, dims), _as_list(dil, dims))]
                if wild:
                    a["output_padding"] = self.int(0, 2)
                elif any(limit) and self.coin(0.5):
                    a["output_padding"] = [self.int(0, m) for m in limit]
            else:
                pad_kind = self.pick(["int", "int", "same", "valid"])
                if pad_kind == "same":
                    a["padding"] = "same"
                    if wild:
                        a["stride"] = self.int(1, 2)
                else:
                    a["stride"] = _per_dim(self.draw, dims, st.integers(1, 3))
                    if pad_kind == "int":
                        a["padding"] = _per_dim(self.draw, dims, st.integers(0, 2), 0.7)
                    else:
                        a["padding"] = "valid"
                a["dilation"] = _per_dim(self.draw, dims, st.integers(1, 2), 0.8)
            if self.coin(0.3):
                a["bias"] = False
            if self.coin(0.1):
                a["in"] = c if not wild else c + 1
            return a
        if t == "linear":
            a = {"out": self.out_value(self.int(1, 8))}
            if self.coin(0.3):
                a["bias"] = False
            if self.coin(0.1):
                a["in"] = shape[-1] if not wild else shape[-1] + 1
            return a
        if t.startswith(("maxpool", "avgpool")):
            dims = int(t[-2])
            smallest = min(spatial) if spatial else 1
            k = self.int(1, max(1, min(3, smallest)) if not wild else 5)
            a = {"kernel": k if self.coin(0.7) else [self.int(1, max(1, min(3, n))) for n in spatial]
                 if len(spatial) == dims and not wild else k}
            if self.coin(0.6):
                a["stride"] = _per_dim(self.draw, dims, st.integers(1, 3))
            kmin = min(_as_list(a["kernel"], dims))
            dil = 1
            if t.startswith("maxpool") and self.coin(0.3):
                dil = self.int(1, 2)
                a["dilation"] = dil
            span = dil * (kmin - 1) + 1
            if self.coin(0.5):
                a["padding"] = self.int(0, span // 2) if not wild else self.int(0, 3)
            if self.coin(0.4):
                a["ceil_mode"] = True
            if t.startswith("avgpool") and self.coin(0.3):
                a["count_include_pad"] = False
            return a
        if t.startswith("adaptive"):
            dims = int(t[-2])
            if self.coin(0.6):
                return {"size": self.int(1, 6)}
            size = [self.int(1, 6) if self.coin(0.7) else None for _ in range(dims)]
            if all(s is None for s in size) and self.coin(0.5):
                size[0] = 1
            return {"size": size}
        if t in ("global_avgpool", "global_maxpool"):
            return {"keepdim": True} if self.coin(0.4) else {}
        if t.startswith("batchnorm"):
            a = {}
            if self.coin(0.2):
                a["affine"] = False
            # Without running statistics batch norm normalises over the batch even in
            # evaluation, and PyTorch needs more than one value per channel: a fact about the
            # batch (which calc does not model), so the generator keeps it out of reach.
            if prod(shape[1:]) > 1 and self.coin(0.2):
                a["track_running_stats"] = False
            return a
        if t == "layernorm":
            a = {}
            if rank >= 2 and self.coin(0.3):
                a["channels"] = True
            else:
                n = self.int(1, max(1, rank)) if not wild else self.int(1, rank + 1)
                if n != 1:
                    a["normalized"] = n
            if self.coin(0.2):
                a["affine"] = False
            elif self.coin(0.2):
                a["bias"] = False
            return a
        if t == "groupnorm":
            # As for batch norm above: PyTorch refuses a group of one value at batch size 1.
            groups = [g for g in _divisors(c) if c // g * prod(spatial) > 1] or [None]
            g = self.pick(groups) if not wild else self.int(1, 4)
            if g is None or (c % g == 0 and c // g * prod(spatial) == 1):
                g = c + 1  # then a spec both sides refuse
            a = {"groups": g}
            if self.coin(0.2):
                a["affine"] = False
            return a
        if t == "local_response_norm":
            return {"size": self.int(1, 5)}
        if t == "leaky_relu":
            return {"negative_slope": 0.1} if self.coin(0.5) else {}
        if t == "elu":
            return {"alpha": 0.5} if self.coin(0.5) else {}
        if t == "gelu":
            return {"approximate": "tanh"} if self.coin(0.3) else {}
        if t == "prelu":
            if self.coin(0.5):
                return {"num_parameters": c if not wild else c + 1}
            return {}
        if t == "softmax":
            return {"dim": self.int(-rank, rank - 1) if not wild else self.int(-rank - 1, rank)}
        if t == "dropout":
            return {"p": 0.25} if self.coin(0.5) else {}
        if t == "stochastic_depth":
            return {"p": 0.2, "mode": self.pick(["row", "batch"])}
        if t == "flatten":
            if self.coin(0.5):
                return {}
            lo = -rank if not wild else -rank - 1
            start = self.int(lo, rank - 1)
            end = self.int(lo, rank - 1)
            return {"start": start, "end": end}
        if t == "reshape":
            n = prod(shape)
            divs = _divisors(n)
            form = self.pick(["flat", "two", "infer"])
            if form == "flat":
                target = [n]
            elif form == "two":
                d = self.pick(divs)
                target = [d, n // d] if not wild else [d, n // d + 1]
            else:
                d = self.pick(divs)
                target = [d, -1] if self.coin(0.5) else [-1, d]
                if self.coin(0.3):
                    target.append(1)
            return {"shape": target}
        if t == "permute":
            order = list(self.draw(st.permutations(list(range(rank)))))
            order = [d - rank if self.coin(0.2) else d for d in order]
            if wild:
                order = order[:-1] or [0, 0]
            return {"dims": order}
        if t == "channel_shuffle":
            return {"groups": self.pick(_divisors(c)) if not wild else self.int(1, 4)}
        if t == "channel_split":
            d = self.int(-rank, rank - 1)
            size = shape[d]
            if self.coin(0.5):
                parts = self.pick(_divisors(size)) if not wild else self.int(1, 3)
                return {"parts": parts, "index": self.int(0, parts - 1), "dim": d}
            first = self.int(1, size)
            sections = [first] + ([size - first] if size > first else [])
            if wild:
                sections = [first, size]
            return {"sections": sections, "index": self.int(0, len(sections) - 1), "dim": d}
        if t == "pad":
            # constant padding of the last 1..rank dims (a wild draw crops or pads an odd count)
            pairs = self.int(1, min(rank, 3))
            amounts = [self.int(0, 2) for _ in range(2 * pairs)]
            if wild:
                amounts = amounts[:-1] if self.coin(0.5) else [-9] + amounts[1:]
            return {"pad": amounts}
        if t == "roll":
            dims = sorted(set(self.int(-rank, rank - 1) for _ in range(self.int(1, rank))),
                          key=lambda d: d % rank)
            dims = list({d % rank: d for d in dims}.values())
            shifts = [self.int(-5, 5) for _ in dims]
            if wild:
                shifts = shifts + [1]
            return {"shifts": shifts, "dims": dims}
        if t == "layer_scale":
            return {"dim": self.int(-rank, rank - 1)} if self.coin(0.4) else {}
        if t == "upsample":
            d = rank - 1
            modes = ["nearest"] + [m for m, k in (("linear", 1), ("bilinear", 2), ("trilinear", 3)) if k == d]
            mode = self.pick(modes) if not wild else self.pick(["nearest", "linear", "bilinear", "trilinear"])
            a: dict = {"mode": mode} if mode != "nearest" else {}
            if self.coin(0.5):
                a["scale"] = self.pick([2, 3, 0.5, 1.5, 2.5]) if self.coin(0.7) else \
                    [self.pick([1, 2, 0.5, 1.5]) for _ in range(d)]
            else:
                a["size"] = self.int(1, 7) if self.coin(0.6) else [self.int(1, 7) for _ in range(d)]
            if mode != "nearest" and self.coin(0.4):
                a["align_corners"] = True
            elif wild:
                a["align_corners"] = True
            return a
        if t in ("relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "identity",
                 "to_tokens", "token_mean"):
            return {}
        if t == "softplus":
            return {"beta": self.pick([0.5, 1.0, 2.0]), "threshold": self.pick([1.0, 20.0])} if self.coin(0.5) else {}
        if t == "embedding":
            a = {"vocab": self.int(1, 20), "dim": self.int(1, 8)}
            if self.coin(0.2):
                a["padding_idx"] = self.int(-a["vocab"], a["vocab"] - 1)
            return a
        if t == "pos_embedding":
            return {"max_len": max(1, c + (self.int(0, 2) if not wild else -1))}
        if t == "type_embedding":
            return {"types": self.int(1, 3)} if self.coin(0.5) else {}
        if t == "class_token":
            return {"count": self.int(1, 2)} if self.coin(0.5) else {}
        if t == "to_image":
            side = round(c ** 0.5)
            if side * side == c and self.coin(0.5) and not wild:
                return {}
            d = self.pick(_divisors(c))
            return {"size": [d, c // d if not wild else c // d + 1]}
        if t == "select_token":
            return {"index": self.int(-c, c - 1) if not wild else c}
        if t == "rmsnorm":
            a = {}
            n = self.int(1, max(1, rank)) if not wild else self.int(1, rank + 1)
            if n != 1:
                a["normalized"] = n
            if self.coin(0.3):
                a["eps"] = 1e-6
            if self.coin(0.2):
                a["affine"] = False
            return a
        if t == "attention":
            dim = shape[-1]
            if self.coin(0.3) or wild:
                a = {"heads": self.int(1, 3), "head_dim": self.int(1, 4)}
            else:
                a = {"heads": self.pick(_divisors(dim))}
            if self.coin(0.3):
                a["kv_heads"] = self.pick(_divisors(a["heads"])) if not wild else self.int(1, 3)
            if self.coin(0.3):
                a["out"] = self.out_value(self.int(1, 6))
            for key, p in (("bias", 0.3), ("out_bias", 0.2), ("packed", 0.3), ("causal", 0.4 if rank == 2 else 0)):
                if self.coin(p):
                    a[key] = key in ("packed", "causal")
            # the options of other models (T5, GPT-OSS, Mistral, StreamingLLM)
            if self.coin(0.15):
                a["scaled"] = False
            if self.coin(0.15):
                a["rel_bias"] = True
                # A layer without the table adds the bias an earlier layer made (the oracle hands it
                # on, as Hugging Face's T5 stack does, and refuses when none of that shape exists).
                made = (a["heads"], shape[-2]) in self.rel_tables
                if self.coin(0.6) or wild or not made:
                    a["rel_buckets"] = self.int(1, 6)
                    self.rel_tables.add((a["heads"], shape[-2]))
            if self.coin(0.15):
                a["sinks"] = True
            if a.get("causal") and self.coin(0.3):
                a["window"] = self.int(1, 4)
                if self.coin(0.5):
                    a["sink_tokens"] = self.int(1, 2)
            return a
        if t == "moe":
            e = self.int(1, 4)
            a = {"experts": e, "top_k": self.int(1, e) if not wild else e + 1, "hidden": self.int(1, 5)}
            for key, p in (("gated", 0.3), ("bias", 0.3), ("router_bias", 0.3), ("norm_topk", 0.4)):
                if self.coin(p):
                    a[key] = key != "gated"
            if self.coin(0.4):
                a["activation"] = self.pick(["gelu", "relu"])
            if self.coin(0.3):
                a["scoring"] = "sigmoid"
            if self.coin(0.5):
                a["shared_hidden"] = self.int(1, 4)
                if self.coin(0.4):
                    a["shared_gate"] = True
            return a
        if t == "mla":
            a = {"heads": self.int(1, 3), "kv_lora_rank": self.int(1, 4), "qk_nope_head_dim": self.int(1, 3),
                 "qk_rope_head_dim": self.int(1, 3), "v_head_dim": self.int(1, 4)}
            if self.coin(0.6):
                a["q_lora_rank"] = self.int(1, 5)
            for key, p in (("bias", 0.3), ("causal", 0.4), ("absorbed", 0.15)):
                if self.coin(p):
                    a[key] = True
            return a
        if t in ("rnn", "lstm", "gru"):
            a = {"hidden": self.int(1, 5)}
            if self.coin(0.3):
                a["num_layers"] = 2
            if self.coin(0.3):
                a["bidirectional"] = True
            if self.coin(0.2):
                a["bias"] = False
            if t == "rnn" and self.coin(0.3):
                a["nonlinearity"] = "relu"
            if self.coin(0.1):
                # the input size is the last dimension; on a shape of another rank the
                # layer is refused by both sides anyway
                a["in"] = shape[-1] if not wild else shape[-1] + 1
            return a
        if t in ("parameter", "buffer"):
            a = {"shape": [self.int(1, 4) for _ in range(self.int(1, 3))]}
            if t == "buffer" and self.coin(0.3):
                a["persistent"] = False
            return a
        if t == "scale":
            return {"by": self.pick([0.5, 2, -1.25])}
        if t == "exp":
            return {}
        if t == "clamp":
            a = {}
            if self.coin(0.6) or wild:
                a["min"] = self.pick([-1, 0, 0.5])
            if self.coin(0.6) or not a:
                a["max"] = self.pick([1, 4.6])
            return a
        if t == "normalize":
            return {"dim": self.int(-rank, rank - 1) if not wild else rank}
        raise AssertionError(f"the generator has no arguments for layer type {t!r}")

    # -- shape steering (calc's inference; never the thing under test here)
    def infer(self, t: str, args: dict, shape: tuple):
        values = {k: eval_w(v, self.width) for k, v in args.items()
                  if k not in ("name", "from", "when", "trainable")}
        layer = LAYERS[t].model_validate(values)
        try:
            out = tuple(layer.infer(shape))
            return shape if layer.keeps_flow else out   # a parameter: the flow passes around it
        except ValueError:
            return None

    def calc_out(self, items: list, shape: tuple):
        """Output shape of ``items`` applied to ``shape`` (calc), or None if calc refuses."""
        doc = {"name": "part", "input": list(shape), "variables": self.variables, "layers": items}
        if self.blocks:
            doc["blocks"] = self.blocks
        try:
            return tuple(analyze(parse_spec(yaml.safe_dump(doc)).build()).output_shape)
        except CalcError:
            return None

    # -- items
    def leaf_types(self, shape):
        rank = len(shape)
        types = [t for t in LAYERS if t in GENERATED and t not in NAMED_INPUT + FORCED_ONLY
                 and rank in valid_ranks(t)]
        if prod(shape) > MAX_NUMEL:
            types = [t for t in types if t.startswith(("maxpool", "avgpool", "adaptive", "global", "conv"))
                     or t == "linear"] or types
        if prod(shape) > 300:
            types = [t for t in types if t not in ("upsample",) and not t.startswith("conv_transpose")]
        if self.coin(self.wild / 4):
            types = [t for t in LAYERS if t in GENERATED and t not in NAMED_INPUT + FORCED_ONLY]
        return types

    def leaf(self, shape, t=None):
        t = t or self.pick(self.leaf_types(shape))
        args = self.args(t, shape)
        item = {t: args} if args else t
        if isinstance(item, dict) and self.coin(0.05):
            item[t]["trainable"] = False
        return item, self.infer(t, args, shape)

    def item(self, shape, depth, names):
        """One item and its output shape (None when the spec has become invalid)."""
        kinds = ["leaf"] * 6
        if depth < 2:
            kinds += ["repeat", "residual", "parallel", "group", "block"]
        if self.blocks:
            kinds.append("reuse")
            if len(shape) >= 2:
                kinds.append("gate")
        if names:
            kinds += ["from", "join"]
        kind = self.pick(kinds)
        if kind == "leaf":
            return self.leaf(shape)
        if kind == "from":
            name = self.pick(sorted(names))
            item, out = self.leaf(names[name])
            if isinstance(item, str):
                item = {item: {}}
            (t, args), = item.items()
            args["from"] = name
            return item, out
        if kind == "join":
            return self.join(shape, names)
        if kind == "repeat":
            body, _ = self.stack(shape, depth + 1, self.int(1, 2), preserving=self.coin(0.6))
            item = {"repeat": {"times": self.int(0, 3) if self.coin(0.8) else "w", "layers": body}}
            return item, self.calc_out([item], shape)
        if kind == "group":
            body, out = self.stack(shape, depth + 1, self.int(1, 3))
            return {"group": {"layers": body}}, out
        if kind == "residual":
            main, out = self.stack(shape, depth + 1, self.int(1, 3), preserving=self.coin(0.7))
            item = {"residual": {"main": main}}
            if out is not None and out != shape:
                proj = self.projection(shape, out)
                if proj is not None:
                    item["residual"]["shortcut"] = [proj]
            return item, self.calc_out([item], shape)
        if kind == "parallel":
            join = self.pick(["concat", "concat", "add", "mul"])
            branches = []
            for _ in range(self.int(2, 3)):
                body, _ = self.stack(shape, depth + 1, self.int(0, 2),
                                     preserving=join != "concat" or self.coin(0.3), spatial=True)
                branches.append(body or None)
            par = {"branches": branches}
            if join != "concat" or self.coin(0.3):
                par["join"] = join
            if join == "concat" and self.coin(0.2):
                par["dim"] = self.int(-len(shape), len(shape) - 1)
            item = {"parallel": par}
            return item, self.calc_out([item], shape)
        if kind == "gate":   # squeeze-and-excitation: a C×1×… gate broadcast over the map
            c = shape[0]
            dims = len(shape) - 1
            conv = f"conv{dims}d" if dims <= 3 else None
            squeeze = [{"global_avgpool": {"keepdim": True}}]
            if conv:
                squeeze += [{conv: {"out": max(1, c // 2), "kernel": 1}}, "relu", {conv: {"out": c, "kernel": 1}}]
            squeeze.append("sigmoid")
            item = {"parallel": {"branches": [None, squeeze], "join": "mul"}}
            return item, self.calc_out([item], shape)
        if kind == "block":
            return self.block(shape, depth)
        if kind == "reuse":   # a block written for another shape, with another parameter
            item = {self.pick(sorted(self.blocks)): {"c": self.int(1, 6)}}
            return item, self.calc_out([item], shape)
        raise AssertionError(kind)

    def projection(self, shape, out):
        """A layer that maps ``shape`` to ``out`` (1×1 conv with a stride), if one is easy to find."""
        if len(shape) != len(out):
            return None
        if len(shape) == 1:
            return {"linear": {"out": out[0]}}
        dims = len(shape) - 1
        if dims > 3:
            return None
        strides = []
        for n, o in zip(shape[1:], out[1:]):
            s = next((s for s in range(1, n + 1) if (n - 1) // s + 1 == o), None)
            if s is None:
                return None
            strides.append(s)
        return {f"conv{dims}d": {"out": out[0], "kernel": 1, "stride": strides, "bias": False}}

    def join(self, shape, names):
        name = self.pick(sorted(names))
        other = names[name]
        t = "concat" if len(other) == len(shape) and other[1:] == shape[1:] and other != shape else \
            self.pick(["add", "mul", "concat"])
        item = {t: {"with": [name]}}
        try:
            out = tuple(LAYERS[t].model_validate({"with": [name]}).infer_many([shape, other]))
        except ValueError:
            out = None
        return item, out

    def block(self, shape, depth):
        name = f"b{len(self.blocks)}"
        c = self.int(1, 6)
        self.blocks[name] = {"params": {"c": None}, "layers": ["identity"]}   # placeholder
        body = []
        out = shape
        for _ in range(self.int(1, 3)):
            inner = [b for b in self.blocks if b != name]
            if inner and self.coin(0.25):   # a block inside a block
                item = {self.pick(sorted(inner)): {"c": "c" if self.coin(0.5) else self.int(1, 6)}}
                body.append(item)
                concrete = {k: {"c": c if v["c"] == "c" else v["c"]} for k, v in item.items()}
                out = self.calc_out([concrete], out)
                if out is None:
                    break
                continue
            t = self.pick(self.leaf_types(out))
            args = self.args(t, out)
            if "out" in args and self.coin(0.6):
                args["out"] = "c"
            item = {t: args} if args else t
            body.append(item)
            out = self.infer(t, {k: (c if v == "c" else v) for k, v in args.items()}, out)
            if out is None:
                break
        self.blocks[name] = {"params": {"c": None}, "layers": body}
        item = {name: {"c": c}}
        return item, self.calc_out([item], shape)

    def stack(self, shape, depth, n, names=None, preserving=False, spatial=False):
        """``n`` items from ``shape``; ``preserving`` favours shape-preserving layers, ``spatial``
        spatial-size-preserving ones (for branches that are concatenated)."""
        items = []
        out = shape
        for _ in range(n):
            if preserving or spatial:
                item, new = self.keeping(out, keep_channels=preserving)
            else:
                item, new = self.item(out, depth, names or {})
            if names is not None and new is not None and self.coin(0.3):
                self.names += 1
                label = f"n{self.names}"
                if isinstance(item, str):
                    item = {item: {}}
                (key, args), = item.items()
                args["name"] = label
                names[label] = new
            items.append(item)
            if new is None:
                return items, None
            out = new
        return items, out

    def keeping(self, shape, keep_channels):
        """A layer that keeps the spatial size (and, if asked, the channels)."""
        rank = len(shape)
        c = shape[0]
        choices = ["act", "norm", "identity", "dropout"]
        if 2 <= rank <= 4:
            choices += ["conv", "conv", "pool"]
        if rank >= 2:
            choices.append("layer_scale")
        kind = self.pick(choices)
        if kind == "act":
            t = self.pick(ACTIVATIONS)
            args = self.args(t, shape)
        elif kind == "norm":
            opts = [f"batchnorm{rank - 1}d"] if 2 <= rank <= 4 else ["batchnorm1d"]
            opts += ["layernorm", "groupnorm"] + (["local_response_norm"] if rank >= 2 else [])
            t = self.pick(opts)
            args = self.args(t, shape)
        elif kind == "conv":
            dims = rank - 1
            t = f"conv{dims}d"
            k = self.pick([1, 3])
            d = self.int(1, 2) if k == 3 else 1
            g = self.pick(_divisors(c))
            out = c if keep_channels else g * self.int(1, 3)
            if out % g:
                g = 1
            args = {"out": self.out_value(out), "kernel": k}
            if self.coin(0.5):
                args["padding"] = "same"
            else:
                args["padding"] = d * (k - 1) // 2
            if d > 1:
                args["dilation"] = d
            if g > 1:
                args["groups"] = g
            if self.coin(0.3):
                args["bias"] = False
        elif kind == "pool":
            dims = rank - 1
            t = self.pick([f"maxpool{dims}d", f"avgpool{dims}d"])
            args = {"kernel": 3, "stride": 1, "padding": 1}
        elif kind == "layer_scale":
            t, args = "layer_scale", {}
        else:
            t = kind
            args = {}
        item = {t: args} if args else t
        return item, self.infer(t, args, shape)


def eval_w(value, width):
    """Evaluate the generator's own ``w * k`` expressions (for steering only)."""
    if isinstance(value, str) and value.startswith("w * "):
        return width * int(value[4:])
    if value == "w":
        return width
    return value


def input_shape(draw, rank: int) -> tuple:
    c = draw(st.integers(1, 6))
    spatial_max = {1: 0, 2: 16, 3: 10, 4: 5}[rank]
    return (c, *(draw(st.integers(1, spatial_max)) for _ in range(rank - 1)))


@st.composite
def specs(draw, wild: float = 0.04, force: str | None = None):
    """A spec dict. With ``force``, the spec contains that layer type (at a rank it takes)."""
    if force is not None and force not in GENERATED:
        raise AssertionError(f"tests/spec_strategies.py cannot generate layer type {force!r} yet: "
                             "add it to GENERATED and give Gen.args its arguments")
    gen = Gen(draw, wild)
    tokens = force == "embedding"
    rank = draw(st.sampled_from((1, 2) if tokens else valid_ranks(force) if force else (1, 2, 3, 3, 4)))
    shape = input_shape(draw, rank)
    names = {"input": shape}
    if tokens:   # token ids in, then the embedding, then anything
        item, out = gen.leaf(shape, "embedding")
        layers = [item]
        if draw(st.booleans()):
            more, out = gen.stack(out, 1, draw(st.integers(1, 2)))
            layers += more
    elif force:
        layers, out = [], shape
        if draw(st.booleans()):
            layers, out = gen.stack(shape, 1, 1, preserving=True)
        if out is not None and force in ("add", "mul", "concat"):
            layers.append({"identity": {"name": "skip"}})
            item, out = gen.join(out, {"skip": out})
            layers.append(item)
        elif out is not None and force in ("matmul", "gather"):
            # the flow times its own transpose; the flow's rows picked by an index buffer
            if force == "matmul" and len(out) >= 2:
                layers.append({"identity": {"name": "skip"}})
                layers.append({"matmul": {"with": ["skip"], "transpose": True}})
                out = (*out[:-1], out[-2])
            elif force == "gather":
                n = draw(st.integers(1, 4))
                layers.append({"buffer": {"name": "idx", "shape": [n]}})
                layers.append({"gather": {"index": "idx"}})
                out = (n, *out[1:])
            else:
                out = None
        elif out is not None:
            if len(out) not in valid_ranks(force):
                out = None
            else:
                item, out = gen.leaf(out, force)
                layers.append(item)
        if out is not None and draw(st.booleans()):
            more, out = gen.stack(out, 1, 1)
            layers += more
        if not layers:
            layers = [force]
    else:
        layers, out = gen.stack(shape, 0, draw(st.integers(1, 6)), names=names)
    doc = {"name": "generated", "input": list(shape), "variables": gen.variables, "layers": layers}
    if tokens:
        doc["input_kind"] = "tokens"
    if gen.blocks:
        doc["blocks"] = gen.blocks
    return doc
