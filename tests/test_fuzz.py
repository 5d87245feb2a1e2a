"""Fuzzing the library entry point: whatever the document, the outcome is a result or a CalcError.

Documents come from three sources: random text and bytes, random YAML trees built from calc's
own vocabulary (layer types, argument names, structure keywords), and the bundled specs mutated
(keys dropped, duplicated or renamed, values replaced, text truncated or spliced with random
bytes). Each goes through ``parse_spec(...).build(...)``, ``analyze(...)`` and the renderers;
any exception that is not a :class:`calc.errors.CalcError` fails the test.
"""
from __future__ import annotations

import copy

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calc import analyze, parse_spec
from calc.errors import CalcError
from calc.layers import LAYERS
from calc.render.report import FORMATS
from conftest import SPECS
from helpers import tree_paths as _paths

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))

BUNDLED = {p.stem: p.read_text() for p in sorted(SPECS.glob("*.yaml"))}

ARG_NAMES = sorted({(f.alias or n) for cls in LAYERS.values() for n, f in cls.model_fields.items()})
KEYS = (sorted(LAYERS) + ARG_NAMES + ["name", "input", "layers", "blocks", "variables", "params",
        "description", "repeat", "times", "residual", "main", "shortcut", "parallel", "branches",
        "join", "group", "from", "when", "trainable", "with", "b", "w", "x"])
WORDS = st.sampled_from(KEYS + ["same", "valid", "w * 2", "w // 0", "2 ** 70", "x if w else 3",
                                "make_divisible(w, 8)", "nearest", "bilinear", "-1", "1e400", "nan",
                                "__import__('os')", "(" * 60 + "1" + ")" * 60, "row", "concat", "add"])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 12), st.integers(), st.floats(allow_nan=True),
    WORDS, st.text(max_size=12))


def _trees():
    return st.recursive(
        SCALARS,
        lambda children: st.one_of(st.lists(children, max_size=5),
                                   st.dictionaries(st.sampled_from(KEYS), children, max_size=4)),
        max_leaves=30)


def outcome(text: str, overrides=None, input_shape=None, batch=1, convention="standard", dtype="fp32"):
    """Run the whole library path; return the analysis, or the CalcError raised."""
    try:
        model = parse_spec(text, "fuzz.yaml").build(overrides, input_shape=input_shape)
        analysis = analyze(model, batch=batch, convention=convention, dtype=dtype)
        for render in FORMATS.values():
            assert isinstance(render(analysis), str)
        return analysis
    except CalcError as err:
        assert str(err)  # a message, with its location when known
        return err


# ---------------------------------------------------------------------------- random text

@FUZZ
@given(st.text(max_size=300))
def test_random_text(text):
    outcome(text)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_as_text(data):
    outcome(data.decode("utf-8", errors="replace"))
    outcome(data.decode("latin-1"))


# ---------------------------------------------------------------------------- random trees

@FUZZ
@given(layers=st.lists(_trees(), min_size=1, max_size=6),
       shape=st.lists(st.one_of(st.integers(-1, 9), WORDS), min_size=1, max_size=4),
       variables=st.dictionaries(st.sampled_from(["w", "x", "b"]), SCALARS, max_size=2),
       blocks=st.dictionaries(st.sampled_from(["b", "blk", "relu"]),
                              st.fixed_dictionaries({"layers": st.lists(_trees(), max_size=3)},
                                                    optional={"params": st.dictionaries(
                                                        st.sampled_from(["w", "c"]), SCALARS, max_size=2)}),
                              max_size=2))
def test_random_trees(layers, shape, variables, blocks):
    doc = {"name": "fuzz", "input": shape, "layers": layers}
    if variables:
        doc["variables"] = variables
    if blocks:
        doc["blocks"] = blocks
    outcome(yaml.safe_dump(doc))


@FUZZ
@given(tree=_trees())
def test_random_documents(tree):
    outcome(yaml.safe_dump(tree))


# ---------------------------------------------------------------------------- mutated specs


def _get(node, path):
    for p in path:
        node = node[p]
    return node


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(BUNDLED)))
    doc = yaml.safe_load(BUNDLED[name])
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _get(doc, path[:-1])
        key = path[-1]
        action = draw(st.sampled_from(["drop", "replace", "rename", "duplicate", "swap"]))
        if action == "drop":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(_trees())
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = parent.pop(key)
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif action == "swap" and isinstance(parent, list) and len(parent) > 1:
            other = draw(st.integers(0, len(parent) - 1))
            parent[key], parent[other] = parent[other], parent[key]
    return yaml.safe_dump(doc, sort_keys=False)


@FUZZ
@given(text=mutated(), batch=st.integers(1, 4),
       shape=st.one_of(st.none(), st.lists(st.integers(1, 300), min_size=1, max_size=4)))
def test_mutated_bundled_specs(text, batch, shape):
    outcome(text, input_shape=shape, batch=batch)


@FUZZ
@given(name=st.sampled_from(sorted(BUNDLED)), data=st.data())
def test_mutated_bundled_text(name, data):
    text = BUNDLED[name]
    action = data.draw(st.sampled_from(["truncate", "splice", "delete", "duplicate_line"]))
    i = data.draw(st.integers(0, len(text)))
    if action == "truncate":
        text = text[:i]
    elif action == "splice":
        text = text[:i] + data.draw(st.binary(max_size=20)).decode("latin-1") + text[i:]
    elif action == "delete":
        text = text[:i] + text[i + data.draw(st.integers(1, 40)):]
    else:
        lines = text.splitlines(keepends=True)
        j = data.draw(st.integers(0, len(lines) - 1))
        lines.insert(j, lines[j])
        text = "".join(lines)
    outcome(text)


@FUZZ
@given(name=st.sampled_from(sorted(BUNDLED)),
       overrides=st.dictionaries(st.sampled_from(["bn", "num_classes", "w", "width"]), SCALARS, max_size=2),
       shape=st.one_of(st.none(), st.lists(st.one_of(st.integers(), st.floats(), st.booleans(), WORDS),
                                           max_size=4)),
       batch=st.one_of(st.integers(), st.booleans(), st.floats()),
       convention=st.sampled_from(["standard", "nope", ""]),
       dtype=st.sampled_from(["fp32", "int8", "fp7"]))
def test_entry_point_arguments(name, overrides, shape, batch, convention, dtype):
    outcome(BUNDLED[name], overrides=overrides, input_shape=shape, batch=batch,
            convention=convention, dtype=dtype)
