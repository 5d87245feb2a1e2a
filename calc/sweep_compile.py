"""Compiled sweeps: a spec compiled, once per structure, into straight-line arithmetic over the
swept variables (issue #17).

A sweep of distinct networks used to build and analyse every variant: some hundred items built
and as many layers walked per variant, in Python. Here the build and the analysis of one variant
are run once with the swept numbers as :class:`calc.tracing.Traced` values, through calc's own
code (the builder, the expression evaluator, each layer's declared formulas, the convention's
rules, the sums of the analysis), which records every operation on them. What comes out is one
Python function of the swept numbers that returns the totals of the model's root (parameters,
MACs, FLOPs, activations, output shape) and holds *guards*: every decision the traced run took
on a swept value (a comparison, a truth test, a layer's arguments passing validation, an
expression's result staying finite and bounded). Per variant the sweep calls that function; a
failing guard returns None and the variant is evaluated as before — so a variant with an error
gets exactly the error the plain path gives, and a variant whose structure differs (a ``when``
that turns, a different branch of ``a if c else b``) gets a program of its own, traced at it.

What is not traced stays as before: variables whose values are words, booleans or lists, and the
input shape, are part of the key of a program (one program per such combination); a trace that
meets something the program could not repeat (a swept value used as a repeat count, an index, a
``float()`` of a layer's formula …) is abandoned and those variants take the plain path. The
first two variants each program answers are also evaluated the plain way and compared; a
difference (a bug) turns compilation off for the rest of the sweep.
"""
from __future__ import annotations

from .analysis import Analysis, Result, analyze
from .errors import CalcError
from .shapes import Tokens
from .spec import Spec, build
from .spec.build import Builder
from .tracing import Tape, Traced, Untraceable

# By default a sweep compiles only when one program would answer at least this many networks
# (the product of the numbers of values of the traced variables): a trace costs about as much as
# building and analysing a dozen distinct networks.
COMPILE_FROM = 32
MAX_PROGRAMS_PER_KEY = 8  # structures (guard outcomes) per key before a key takes the plain path
MAX_TRACES = 64           # traces per sweep (each costs a few variants' time)
MAX_TRACE_ERRORS = 8      # traces of one key that end in an error before the key takes the plain path
VERIFY = 2                # variants per program evaluated both ways and compared
MAX_VALID = 100_000       # remembered valid argument tuples per layer (then forgotten and re-checked)


class _Tolerant(dict):
    """A cache that skips keys it cannot hash (they hold traced values): no entry is shared
    between traced computations, so each is recorded in full."""

    def get(self, key, default=None):
        try:
            return dict.get(self, key, default)
        except TypeError:
            return default

    def __setitem__(self, key, value):
        try:
            dict.__setitem__(self, key, value)
        except TypeError:
            pass

    def setdefault(self, key, default=None):
        try:
            return dict.setdefault(self, key, default)
        except TypeError:
            return default

    def __contains__(self, key):
        try:
            return dict.__contains__(self, key)
        except TypeError:
            return False

    def trim(self) -> bool:
        return False


def _has_traced(value) -> bool:
    return type(value) is Traced or (isinstance(value, list) and any(type(v) is Traced for v in value))


def _concrete(value):
    if type(value) is Traced:
        return value.v
    if isinstance(value, list):
        return [_concrete(v) for v in value]
    return value


class _Validator:
    """Stands in for a builder when a layer's arguments are validated at a variant."""

    def __init__(self):
        self.cache: dict = {}


def _field_of(cls, key: str) -> str:
    for name, f in cls.model_fields.items():
        if (f.alias or name) == key:
            return name
    raise Untraceable(f"no field for argument {key}")


class TracingBuilder(Builder):
    """The builder, unchanged but for layers whose arguments are traced: the layer is validated
    (pydantic) with the values at the traced variant, then copied with the traced values in the
    fields they became, and the program checks at each variant that the arguments it computes
    validate to the same fields (:class:`_FieldCheck`, or :class:`_Check` for a layer type whose
    fields are validated together)."""

    def _repeat(self, args, ipath, env, trainable, ctx, common):
        # A traced repeat count is pinned: this program is of this many iterations, and a
        # variant with another count gets a program of its own.
        from .spec.document import resolve
        if "times" in args:
            times = resolve(args["times"], env, ipath + ("times",))
            if type(times) is Traced:
                args = {**args, "times": times.pin()}
        return Builder._repeat(self, args, ipath, env, trainable, ctx, common)

    def _layer(self, cls, kind, args, ipath, env, ctx):
        from .spec.document import resolve
        values = {k: resolve(v, env, ipath + (k,)) if isinstance(v, (str, list)) else v for k, v in args.items()}
        if not any(_has_traced(v) for v in values.values()):
            return Builder._layer(self, cls, kind, args, ipath, env, ctx)
        keys = tuple(values)
        concrete = {k: _concrete(v) for k, v in values.items()}
        # validated afresh (not from a cache), so that the copy below starts from nothing but
        # the fields the values at this variant validate to
        layer = Builder._layer(_Validator(), cls, kind, concrete, ipath, {}, ctx)
        updates = {}
        for k, v in values.items():
            if not _has_traced(v):
                continue
            fname = _field_of(cls, k)
            have = getattr(layer, fname)
            updates[fname] = _twin(v, have)
        if _separable(cls):
            # Each field is validated on its own: a value is checked once per sweep, whatever
            # the other arguments, and remembered.
            for k, v in values.items():
                if _has_traced(v):
                    fname = _field_of(cls, k)
                    form = _form(updates[fname], v)
                    # the value's type too: 3 and 3.0 are one member of a set
                    key = (cls, kind, k, form, tuple(map(type, _concrete(v))) if isinstance(v, list) else type(v.v))
                    arg = tuple(v) if isinstance(v, list) else v
                    self.tape.add_member_check(key, _FieldCheck(cls, kind, concrete, k, fname, form, ipath, ctx), arg)
            return layer.model_copy(update=updates)
        expected = {name: getattr(layer, name) for name in cls.model_fields}
        flat, shape = _flatten(values, keys)
        self.tape.add_check(_Check(cls, kind, keys, shape, expected, tuple(updates), ipath, ctx), flat)
        return layer.model_copy(update=updates)


def _separable(cls) -> bool:
    """Whether each field of a layer type validates on its own: no model validator, and no field
    validator that reads the other fields (``info.data``)."""
    found = _SEPARABLE.get(cls)
    if found is None:
        d = cls.__pydantic_decorators__
        found = not d.model_validators and not getattr(d, "root_validators", None) and all(
            "data" not in getattr(dec.func, "__func__", dec.func).__code__.co_names
            for dec in d.field_validators.values())
        _SEPARABLE[cls] = found
    return found


_SEPARABLE: dict = {}


def _form(twin, value):
    """How validation placed a traced argument into its field: as given, once per dimension (n),
    or a list as a tuple."""
    if isinstance(value, list):
        return "list"
    return "same" if type(twin) is Traced else len(twin)


class _FieldCheck:
    """The guard that one traced argument's value validates, in its field, as at the traced
    variant (the other arguments as they were there: the type validates each field on its own)."""

    __slots__ = ("cls", "kind", "base", "key", "field", "form", "ipath", "ctx", "members")

    def __init__(self, cls, kind, base, key, field, form, ipath, ctx):
        self.cls, self.kind, self.base, self.key, self.field = cls, kind, base, key, field
        self.form, self.ipath, self.ctx = form, ipath, ctx
        self.members: set = set()

    def __call__(self, value) -> bool:
        given = list(value) if self.form == "list" else value
        try:
            layer = Builder._layer(_Validator(), self.cls, self.kind, {**self.base, self.key: given}, self.ipath,
                                   {}, self.ctx)
        except CalcError:
            return False
        now = getattr(layer, self.field)
        want = value if self.form in ("same", "list") else (value,) * self.form
        if not _same(now, want):
            return False
        if len(self.members) >= MAX_VALID:
            self.members.clear()
        self.members.add(value)
        return True


def _twin(value, validated):
    """The validated field ``validated`` with the traced values of ``value`` in place of theirs:
    the same number, a number given once for every dimension, or a list that became a tuple."""
    if type(value) is Traced:
        if type(validated) is type(value.v) and validated == value.v:
            return value
        if type(validated) is tuple and validated and all(
                type(x) is type(value.v) and x == value.v for x in validated):
            return (value,) * len(validated)
        raise Untraceable("validation changed a traced argument")
    if type(validated) is tuple and len(validated) == len(value) and all(
            type(x) is type(_concrete(e)) and x == _concrete(e) for x, e in zip(validated, value)):
        return tuple(value)
    raise Untraceable("validation changed a traced list argument")


def _flatten(values: dict, keys: tuple):
    flat, shape = [], []
    for k in keys:
        v = values[k]
        if isinstance(v, list):
            flat += v
            shape.append(len(v))
        else:
            flat.append(v)
            shape.append(None)
    return flat, tuple(shape)


class _Check:
    """The guard that a layer's arguments, computed at a variant, validate as they did at the
    traced variant: the fields that held traced values hold the new values (as
    :func:`_twin` placed them) and every other field is what it was."""

    __slots__ = ("cls", "kind", "keys", "shape", "expected", "traced", "ipath", "ctx", "ok")

    def __init__(self, cls, kind, keys, shape, expected, traced, ipath, ctx):
        self.cls, self.kind, self.keys, self.shape = cls, kind, keys, shape
        self.expected, self.traced, self.ipath, self.ctx = expected, traced, ipath, ctx
        self.ok: set = set()

    def __call__(self, flat: tuple) -> bool:
        if flat in self.ok:
            return True
        values, i = {}, 0
        for k, n in zip(self.keys, self.shape):
            if n is None:
                values[k] = flat[i]
                i += 1
            else:
                values[k] = list(flat[i:i + n])
                i += n
        try:
            layer = Builder._layer(_Validator(), self.cls, self.kind, values, self.ipath, {}, self.ctx)
        except CalcError:
            return False
        for name, before in self.expected.items():
            now = getattr(layer, name)
            if name in self.traced:
                k = self.cls.model_fields[name].alias or name
                given = values[k]
                want = tuple(given) if isinstance(given, list) else given
                if isinstance(now, tuple) and not isinstance(want, tuple):
                    want = (want,) * len(now)
                if not _same(now, want):
                    return False
            elif not _same(now, before):
                return False
        if len(self.ok) >= MAX_VALID:
            self.ok.clear()
        self.ok.add(flat)
        return True


def _same(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


class Program:
    __slots__ = ("fn", "out_type", "in_shape", "unverified", "lines", "guards")

    def __init__(self, fn, out_type, in_shape, lines: int, guards: int):
        self.fn, self.out_type, self.in_shape, self.lines, self.guards = fn, out_type, in_shape, lines, guards
        self.unverified = VERIFY


class Compiled:
    """The programs of one sweep (one per key and structure); see the module docstring."""

    def __init__(self, spec: Spec, names: tuple, convention, dtype: str):
        self.spec, self.names, self.convention, self.dtype = spec, names, convention, dtype
        # Swept numbers the input shape reads stay constants (part of the key): the analysis
        # checks the input's sizes as whole numbers, which a traced number is not.
        shaping = _input_names(spec.doc)
        self.traced = tuple(n not in shaping for n in names)
        self.programs: dict = {}
        self.failed: set = set()
        self.errors: dict = {}
        self.pending = None     # the key of a variant the programs did not answer, until settle
        self.pending_trace = False   # whether its trace failed
        self.waiting: set = set()    # keys whose last trace failed on an invalid variant
        self.traces = 0
        self.answered = 0       # variants answered by a program (for tests and benchmarks)
        self.mismatches = 0     # programs found to differ from the plain path (a bug)

    def networks_per_program(self, grid) -> int:
        """How many of the grid's networks one program may answer: the product of the numbers of
        values of the variables it traces (those that are numbers and do not shape the input)."""
        n = 1
        for (name, values), traced in zip(grid.variables, self.traced):
            if traced and any(type(v) is int or type(v) is float for v in values):
                n *= len(values)
        return n

    def _key(self, values: tuple, shape, batch: int):
        parts = []
        for v, traced in zip(values, self.traced):
            t = type(v)
            parts.append((t,) if traced and (t is int or t is float) else
                         (t, tuple(v) if isinstance(v, list) else v))
        return (tuple(parts), shape, batch)

    def _numbers(self, values: tuple) -> list:
        return [v for v, traced in zip(values, self.traced) if traced and (type(v) is int or type(v) is float)]

    def analysis(self, values: tuple, shape, batch: int):
        """(the Analysis of the variant's root totals, whether to verify it) or (None, False)."""
        key = self._key(values, shape, batch)
        numbers = self._numbers(values)
        programs = self.programs.get(key, ())
        for program in programs:
            found = self._run(program, numbers, shape, batch)
            if found is not None:
                check = program.unverified > 0
                if check:
                    program.unverified -= 1
                self.answered += 1
                return found, check and program
        if key in self.failed or len(programs) >= MAX_PROGRAMS_PER_KEY or self.traces >= MAX_TRACES:
            return None, False
        if key in self.waiting:      # for a valid variant of this key (see settle)
            self.pending, self.pending_trace = key, False
            return None, False
        self.traces += 1
        try:
            program = self._trace(values, shape, batch)
        except Exception:  # noqa: BLE001 - anything the trace could not follow: the plain path
            # An invalid variant fails its trace too (its error is then the plain path's); see
            # settle, which the caller calls with the plain path's outcome.
            self.pending, self.pending_trace = key, True
            return None, False
        found = self._run(program, numbers, shape, batch)
        if found is None:        # its own guards fail at the variant it was traced at: a bug
            self.mismatches += 1
            self.failed.add(key)
            return None, False
        self.programs.setdefault(key, []).append(program)
        program.unverified -= 1
        self.answered += 1
        return found, program

    def settle(self, valid: bool) -> None:
        """The plain path's outcome at a variant the programs did not answer. After a failed
        trace: valid, the trace met something it cannot follow, and the key takes the plain path
        from now on; invalid, the trace failed on the variant's error, and the key waits for a
        valid variant, after which the next is traced (up to MAX_TRACE_ERRORS failures)."""
        key, self.pending = self.pending, None
        if key is None:
            return
        if not self.pending_trace:
            if valid:
                self.waiting.discard(key)
            return
        self.errors[key] = self.errors.get(key, 0) + 1
        if valid or self.errors[key] >= MAX_TRACE_ERRORS:
            self.failed.add(key)
            self.waiting.discard(key)
        else:
            self.waiting.add(key)

    def _run(self, program: Program, numbers, shape, batch):
        try:
            out = program.fn(*numbers)
        except Exception:  # noqa: BLE001 - a division by zero, an overflow …: the plain path says what
            return None
        if out is None:
            return None
        w, b, buf, fr, macs, flops, act, macs_b, flops_b, out_shape = out
        in_shape = program.in_shape
        root = Result("model", in_shape, program.out_type(out_shape), w, b, buf, fr, macs, flops, act, 0,
                      macs_batch=macs_b, flops_batch=flops_b)
        return Analysis(None, in_shape, batch, self.convention.name, self.dtype, root)

    def _trace(self, values: tuple, shape, batch: int) -> Program:
        tape = Tape()
        overrides = {}
        for name, v, traced in zip(self.names, values, self.traced):
            overrides[name] = tape.input(v) if traced and (type(v) is int or type(v) is float) else v

        class _Builder(TracingBuilder):
            pass
        _Builder.tape = tape
        model = build(self.spec.doc, self.spec.source, overrides, None, _Tolerant(), builder=_Builder)
        if model.reads_in:
            # its sizes follow the input only when built for it: the plain path rebuilds per shape
            raise Untraceable("a spec that reads the incoming shape (in)")
        conv = self.convention
        a = analyze(model, batch=batch, convention=conv, dtype=self.dtype, input_shape=shape,
                    cache={(id(conv), batch): (conv, _Tolerant())})
        r = a.root
        in_shape = a.input_shape
        if any(type(d) is Traced for d in in_shape):
            raise Untraceable("a traced input shape")
        out_type = type(r.output_shape)
        if out_type not in (tuple, Tokens):
            raise Untraceable("an output shape of another kind")
        outputs = [r.weights, r.bias, r.buffers, r.frozen, r.macs, r.flops, r.activations, r.macs_batch,
                   r.flops_batch, tuple(r.output_shape)]
        fn, lines, guards = tape.compile(outputs, self.spec.name)
        return Program(fn, out_type, in_shape, lines, guards)


def _input_names(doc) -> set:
    """The variables the input shape reads, directly or through other variables."""
    from .expr import names_in
    dims = list(doc.input or ()) + [d for shape in (doc.inputs or {}).values() for d in shape]
    names: set = set()
    todo = [d for d in dims if isinstance(d, str)]
    while todo:
        text = todo.pop()
        for n in names_in(text) | {text.strip()}:
            if n not in names:
                names.add(n)
                raw = doc.variables.get(n)
                if isinstance(raw, str):
                    todo.append(raw)
    return names


def same_totals(a: Analysis, b: Analysis) -> bool:
    """Whether two analyses give a sweep the same row (totals and shapes, with their types)."""
    from dataclasses import astuple
    return (_same(astuple(a.totals), astuple(b.totals)) and _same(tuple(a.output_shape), tuple(b.output_shape))
            and type(a.output_shape) is type(b.output_shape) and tuple(a.input_shape) == tuple(b.input_shape)
            and _same((a.root.macs_batch, a.root.flops_batch), (b.root.macs_batch, b.root.flops_batch)))
