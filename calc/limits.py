"""Every limit calc applies to its input, stated once.

Hostile input must end in bounded time and memory with a clear error, so each kind of work has a
limit that is checked *before* the work is done: the length of a text before it is parsed, the
number of values before they are built, the rows of a report before it is written. The modules
that enforce a limit import it from here; ``LIMITS`` describes them for the documentation
(docs/errors-and-limits.md §2 states the same table, and a test checks that the two agree).

Counts themselves are exact Python integers however large they get (a count is never rounded or
capped); only the inputs that make them are bounded.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from functools import wraps

# -- the file and its YAML
MAX_BYTES = 16 * 1024 * 1024      # a spec file (or standard input)
MAX_NODES = 1_000_000             # YAML values after aliases are expanded (a 100,000-layer spec has ~350,000)
MAX_DEPTH = 64                    # mappings and lists nested in each other
MAX_STRING = 100_000              # characters of one YAML value (names, descriptions, expressions)
MAX_INT_DIGITS = 4300             # digits of an integer read from text (Python's own default limit)

# -- values and expressions
MAX_SIZE = 2**40                  # a size: channels, kernel, input dimension, ...
MAX_RANK = 64                     # dimensions of a shape (PyTorch allows 64 as well)
MAX_EXPR_CHARS = 500              # one expression, checked before it is parsed
MAX_ABS_INT = 1 << 256            # integers inside expressions
MAX_POW_EXPONENT = 64             # exponents of ** in expressions
MAX_BATCH = 10**100               # --batch and a sweep's batch sizes

# -- the built model and its analysis
MAX_REPEAT = 10**9                # repeat: times
MAX_BUILT_NODES = 100_000         # items of a built spec (blocks and `index` repeats expanded)
MAX_NESTING = 100                 # structures and blocks nested in each other
MAX_FRESH_ITERATIONS = 100_000    # distinct iterations of a repeat that changes the shape
MAX_ANALYSED = 1_000_000          # layers and structures analysed one by one
MAX_TIED_WALK = 1_000_000         # layers of a model with `tie`, checked one by one in report order

# -- reports
FOLD = 1000                       # a run of more than this many identical iterations is one row
FOLD_ROWS = 20_000                # ... and so is a run whose iterations would list more rows than this
MAX_LISTED = 100_000              # rows of a report after folding
MAX_EXPLAINED = 10_000            # entries of `calc explain` (a part of a larger model with --layer)

# -- sweeps
MAX_GRID = 10_000_000             # variants of a sweep written as a stream (csv, json)
MAX_HELD = 100_000                # variants a sweep holds to sort, mark or lay out as a table
MAX_JOBS = 256                    # --jobs

# -- calc verify (the PyTorch oracle allocates the model)
MAX_ORACLE_LAYERS = 100_000       # layer instances, repeats counted in full
MAX_ORACLE_BYTES = 4 * 1024**3    # parameters and activations
MAX_TOOL_NESTING = 16             # module nesting up to which `calc verify` also runs torchinfo

# -- messages
# -- calc check --property and calc explain --symbolic (issue 18)
MAX_EXAMPLES = 100_000            # examples --property may draw
MAX_SHRINK_TRIES = 2_000          # evaluations while shrinking a counterexample
MAX_SYMBOLIC_LEAVES = 20_000      # layers --symbolic follows (each iteration of a repeat anew)
MAX_SYMBOLIC_STEPS = 1_000_000    # repeat iterations --symbolic follows, even empty ones
MAX_TERMS = 4_096                 # terms of one symbolic formula
MAX_MODULUS = 2**20               # the largest residue-class modulus tried
MAX_VARIED = 2                    # variables --vary takes
VARY_TRIES = 160                  # values tried per varied variable (heads must divide d: 1 in 12)
MAX_DEGREE = 4                    # degree of a varied variable's polynomial

MAX_IMPORT_FILES = 64             # files a spec's imports read, its imports' imports included
MAX_ECHO = 60                     # characters of a user's value repeated in a message

# (what, limit as the documentation states it, the constants it depends on)
LIMITS: tuple[tuple[str, str, tuple], ...] = (
    ("spec file", f"{MAX_BYTES // 2**20} MiB; no NUL bytes; UTF-8 (no lone surrogates)", (MAX_BYTES,)),
    ("YAML values", f"{MAX_NODES:,} after aliases are expanded; one document; plain values only "
                    "(no tags that build objects, no merge keys)", (MAX_NODES,)),
    ("YAML nesting", f"{MAX_DEPTH} levels of mappings and lists", (MAX_DEPTH,)),
    ("`imports:`", f"{MAX_IMPORT_FILES} files in all, each read as a spec is; local files and bundled libraries "
                   "only (no URLs)", (MAX_IMPORT_FILES,)),
    ("one YAML value (a name, a description, an expression)", f"{MAX_STRING:,} characters", (MAX_STRING,)),
    ("an integer read from text (YAML, `--set`, `int()`)", f"{MAX_INT_DIGITS:,} digits", (MAX_INT_DIGITS,)),
    ("a size (channels, kernel, input dimension, …)", "a whole number from 1 to 2**40", (MAX_SIZE,)),
    ("dimensions of a shape", f"{MAX_RANK} (a list argument of a layer: {2 * MAX_RANK} values, two per "
                              "dimension for padding)", (MAX_RANK,)),
    ("an expression", f"{MAX_EXPR_CHARS} characters, checked before it is parsed", (MAX_EXPR_CHARS,)),
    ("integers in expressions", "at most 2**256 in magnitude", (MAX_ABS_INT,)),
    ("exponents in expressions", f"at most {MAX_POW_EXPONENT}", (MAX_POW_EXPONENT,)),
    ("`--batch`", "a whole number from 1 to 10**100", (MAX_BATCH,)),
    ("`repeat: times`", f"0 to {MAX_REPEAT:,}", (MAX_REPEAT,)),
    ("a built spec", f"{MAX_BUILT_NODES:,} items (blocks and repeats with `index` expanded)",
     (MAX_BUILT_NODES,)),
    ("structures and blocks nested in each other", f"{MAX_NESTING} levels", (MAX_NESTING,)),
    ("a repeat whose iterations change the shape", f"{MAX_FRESH_ITERATIONS:,} distinct iterations "
     "(a repeat whose iterations keep the shape is analysed once and multiplied)", (MAX_FRESH_ITERATIONS,)),
    ("the analysis", f"{MAX_ANALYSED:,} layers and structures analysed one by one "
                     "(identical repeat iterations count once)", (MAX_ANALYSED,)),
    ("a model with `tie`", f"{MAX_TIED_WALK:,} layers, repeats expanded (its ties are checked layer by "
     "layer in report order)", (MAX_TIED_WALK,)),
    ("folding in reports", f"a run of more than {FOLD:,} identical repeat iterations, or of iterations "
     f"that would list more than {FOLD_ROWS:,} rows, is its first iteration and one row", (FOLD, FOLD_ROWS)),
    ("a report (analyze)", f"{MAX_LISTED:,} rows after folding", (MAX_LISTED,)),
    ("`calc explain`", f"{MAX_EXPLAINED:,} entries (`--layer` explains a part of a larger model)",
     (MAX_EXPLAINED,)),
    ("a sweep written as a stream (csv, json)", f"{MAX_GRID:,} variants", (MAX_GRID,)),
    ("a sweep as a table, or with `--sort` or `--pareto`", f"{MAX_HELD:,} variants", (MAX_HELD,)),
    ("`--jobs`", f"1 to {MAX_JOBS}", (MAX_JOBS,)),
    ("`calc verify`", f"{MAX_ORACLE_LAYERS:,} layers and {MAX_ORACLE_BYTES // 2**30} GiB of parameters and "
     f"activations; torchinfo (whose time doubles with each level) runs on modules nested at most "
     f"{MAX_TOOL_NESTING} levels deep",
     (MAX_ORACLE_LAYERS, MAX_ORACLE_BYTES, MAX_TOOL_NESTING)),
    ("`calc check --property`", f"1 to {MAX_EXAMPLES:,} examples; {MAX_SHRINK_TRIES:,} evaluations while shrinking",
     (MAX_EXAMPLES, MAX_SHRINK_TRIES)),
    ("`calc explain --symbolic`", f"{MAX_SYMBOLIC_LEAVES:,} layers and {MAX_SYMBOLIC_STEPS:,} repeat iterations "
     f"followed one by one; {MAX_TERMS:,} terms in a formula; a residue-class modulus up to 2**20; `--vary`: "
     f"{MAX_VARIED} variables, {VARY_TRIES} values tried for each, degree {MAX_DEGREE}",
     (MAX_SYMBOLIC_LEAVES, MAX_SYMBOLIC_STEPS, MAX_TERMS, MAX_MODULUS, MAX_VARIED, VARY_TRIES, MAX_DEGREE)),
    ("a value repeated in a message", f"its first {MAX_ECHO} characters", (MAX_ECHO,)),
)


def clip(text, limit: int = MAX_ECHO) -> str:
    """A user's value for a message: its repr, shortened when absurdly long."""
    try:
        shown = repr(text)
    except Exception:  # noqa: BLE001 - a value we cannot show is named by its type
        shown = f"<{type(text).__name__}>"
    return shown if len(shown) <= limit else f"{shown[:limit]}… ({len(shown):,} characters)"


@contextmanager
def exact_digits():
    """Lift Python's limit on the digits of an int written as text (4,300 by default) while a
    report is written: counts are exact however large, and every input that makes them is
    bounded above, so their text is bounded too. Reading integers from text (YAML, --set) keeps
    the default limit, which is what protects it."""
    get = getattr(sys, "get_int_max_str_digits", None)
    if get is None:  # pragma: no cover - Python < 3.11 has no limit
        yield
        return
    old = get()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(old)


def with_exact_digits(fn):
    """Decorator form of :func:`exact_digits` for renderers."""
    @wraps(fn)
    def run(*args, **kwargs):
        with exact_digits():
            return fn(*args, **kwargs)
    return run
