"""Small helpers shared by the tests."""
from __future__ import annotations

import textwrap

from calc import analyze, load_spec, parse_spec
from conftest import SPECS


def run_spec(name: str, **kwargs):
    """Analyse a bundled spec by name (``alexnet``) with analyze() keyword arguments."""
    overrides = kwargs.pop("set", None)
    shape = kwargs.pop("input_shape", None)
    model = load_spec(str(SPECS / f"{name}.yaml")).build(overrides, input_shape=shape)
    return analyze(model, **kwargs)


def run_text(text: str, **kwargs):
    overrides = kwargs.pop("set", None)
    model = parse_spec(textwrap.dedent(text), "test.yaml").build(overrides)
    return analyze(model, **kwargs)


def leaves(analysis):
    return [row.result for row in analysis.rows(leaves_only=True)]


def evaluate_layer(type_name, shape, **args):
    """(output shape, Params, operations) of a new layer of ``type_name`` on ``shape`` (see
    :func:`run_layer`)."""
    from calc.layers import LAYERS
    return run_layer(LAYERS[type_name](**args), shape)


def run_layer(layer, shape):
    """(output shape, Params, operations) of ``layer`` on ``shape`` as the analysis gets them,
    checking on the way that the slow path (the full symbol table, used by explain) agrees."""
    out, params, ops = layer.evaluate(shape)
    assert (layer.infer(shape), layer.params(shape), layer.ops(shape, out)) == (out, params, ops)
    return out, params, ops


def tree_paths(node, path=()):
    """Every path into a tree of dicts and lists (the root's is ``()``), depth first."""
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from tree_paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from tree_paths(v, path + (i,))
