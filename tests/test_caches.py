"""Work shared between builds and analyses (sweeps rely on it) must never change a result:
every figure from a shared spec and a shared analysis cache is compared with a fresh parse and
analysis of the same variant."""
import random

import pytest

from calc import analyze, parse_spec
from conftest import SPECS

# Blocks that read spec variables besides their parameters (k, use_bn), a block reading a name
# defined outside it (skipper reads 'stem', which two groups define differently), a block used
# twice with the same arguments on different inputs, residuals inside blocks.
SPEC = """
name: cachetest
input: [8, 16, 16]
variables: {width: 1.0, use_bn: true, k: 3}
blocks:
  unit:
    params: {out: null, stride: 1}
    layers:
      - conv2d: {out: out, kernel: k, stride: stride, padding: "k // 2", bias: false}
      - batchnorm2d: {when: use_bn}
      - relu
  skipper:
    layers:
      - concat: {with: [stem]}
  wrapper:
    params: {out: null}
    layers:
      - unit: {out: out}
      - residual:
          main:
            - unit: {out: out}
layers:
  - conv2d: {out: "int(8 * width)", kernel: 1, name: stem}
  - unit: {out: "int(16 * width)"}
  - group:
      layers:
        - conv2d: {out: 4, kernel: 1, name: stem}
        - conv2d: {out: 6, kernel: 1}
        - skipper
  - group:
      layers:
        - conv2d: {out: 12, kernel: 1, name: stem}
        - conv2d: {out: 6, kernel: 1}
        - skipper
  - wrapper: {out: 8}
  - maxpool2d: {kernel: 2}
  - wrapper: {out: 8}
"""


def table(a):
    return [(row.name, row.result.kind, row.result.input_shape, row.result.output_shape,
             row.result.params, row.result.buffers, row.result.macs, row.result.activations)
            for row in a.rows()]


def check_variants(text, variants):
    shared = parse_spec(text, "t.yaml")
    cache = {}
    for overrides, shape in variants:
        got = analyze(shared.build(overrides), input_shape=shape, cache=cache)
        want = analyze(parse_spec(text, "t.yaml").build(overrides), input_shape=shape)
        assert table(got) == table(want), (overrides, shape)
        assert got.totals == want.totals


def test_blocks_reading_variables_and_outer_names():
    grid = [({"width": w, "use_bn": bn, "k": k}, shape)
            for w in (0.5, 1.0, 1.5) for bn in (True, False) for k in (1, 3, 5)
            for shape in (None, (8, 32, 32))]
    random.Random(0).shuffle(grid)
    check_variants(SPEC, grid)


def test_skipper_sees_the_stem_of_its_own_group():
    # The two skipper instances get the same input (6 channels) but concatenate different stems:
    # 6 + 4 and 6 + 12 channels.
    shared = parse_spec(SPEC, "t.yaml")
    a = analyze(shared.build(), cache={})
    skippers = [row.result.output_shape for row in a.rows() if row.result.kind == "block:skipper"]
    assert skippers == [(10, 16, 16), (18, 16, 16)]


# Variants of the bundled specs that change block arguments, variables read inside blocks,
# repeat counts and inputs.
VARIANTS = {
    "resnet50": [{"width": 0.5}, {"groups": 32, "width_per_group": 4}, {"layers": [1, 2, 3, 1]}],
    "resnet18": [{"width": 0.75}],
    "mobilenet_v2": [{"width_mult": 0.75}, {"width_mult": 1.4}],
    "efficientnet_b0": [{"width_mult": 1.1, "depth_mult": 1.2}],
    "densenet121": [{"growth_rate": 16}],
    "gpt2": [{"depth": 2, "n_ctx": 64}, {"d": 64, "heads": 4}],
    "bert_base": [{"depth": 2, "seq": 32}],
    "vit_b_16": [{"image": 160, "depth": 3}],
    "unet": [{"base": 8}],
}


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_bundled_specs_with_a_shared_cache(path):
    text = path.read_text()
    extra = VARIANTS.get(path.stem, [])
    variants = [({}, None)] + [(v, None) for v in extra] + [({}, None)] + [(v, None) for v in extra]
    check_variants(text, variants)


def test_block_results_are_shared_not_recomputed():
    # wrapper(out=8) appears twice with different inputs; unit(out=8) inside it appears four
    # times; in a second analysis with the same cache nothing is computed again.
    spec = parse_spec(SPEC, "t.yaml")
    cache = {}
    first = analyze(spec.build(), cache=cache)
    second = analyze(spec.build(), cache=cache)
    assert second.root.children[4].result is first.root.children[4].result
    assert table(first) == table(second)


@pytest.mark.parametrize("convention", ["ptflops", "thop", "torchinfo"])
def test_shared_cache_under_tool_conventions_and_batches(convention):
    # Tool conventions count some parts per batch: the shared cache must keep batches apart.
    for name in ("resnet18", "mobilenet_v2", "gpt2"):
        text = (SPECS / f"{name}.yaml").read_text()
        shared = parse_spec(text, "t.yaml")
        cache = {}
        for batch in (1, 3, 1, 8, 3):
            got = analyze(shared.build(), batch=batch, convention=convention, cache=cache)
            want = analyze(parse_spec(text, "t.yaml").build(), batch=batch, convention=convention)
            assert got.totals == want.totals, (name, batch)
            assert [(r.name, got.macs_of(r.result)) for r in got.rows()] == \
                   [(r.name, want.macs_of(r.result)) for r in want.rows()]


def test_cache_bounds_and_trim():
    from calc.caches import Cache, ResultCache
    c = Cache("test", limit=2)
    c.update(a=1, b=2)
    assert not c.trim() and len(c) == 2          # at the bound: kept
    c["c"] = 3
    assert c.trim() and len(c) == 0              # past it: emptied
    r = ResultCache("results", limit=3)
    r[(1, 1)] = (None, {"x": 1, "y": 2})
    r[(1, 2)] = (None, {"z": 3, "w": 4})
    assert r.size() == 4                         # counted in results, not in (convention, batch) entries
    assert r.trim() and r.size() == 0


def test_a_spec_owns_its_build_cache():
    spec = parse_spec("name: t\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3}\n", "t.yaml")
    spec.build()
    assert spec.cache.name == "spec builds" and len(spec.cache) > 0
