"""Swin V1/V2 and MaxViT written from primitives (specs/swin_t.yaml, swin_v2_t.yaml, maxvit_t.yaml).

Their full-size figures are checked against torchvision's published ones in tests/test_models.py
(every bundled model) and, where recorded, against torchvision's models measured by every tool
in tests/test_conventions.py (tests/data/torchvision_reference.json). Here small configurations
that reach every branch (a shifted window, a map smaller than a window that is padded and
cropped, an odd map merged with padding, a grid partition) go through ``calc verify``: PyTorch
and each counting tool on the oracle's module against calc, layer by layer, at batch 2.
"""
import pytest

from calc import analyze, load_spec
from conftest import SPECS

torch = pytest.importorskip("torch")
from calc import oracle  # noqa: E402
from calc.verify import verify  # noqa: E402

SMALL = {
    # sizes 14, 7, 4, 2 with windows of 7: stage 1 shifts, stages 3 and 4 pad to one window and
    # do not shift, the merge of the 7 × 7 map pads
    "swin_t": {"image": 56, "embed_dim": 24, "depths": [2, 2, 2, 2]},
    # sizes 16, 8, 4, 2 with windows of 8
    "swin_v2_t": {"image": 64, "embed_dim": 24, "depths": [2, 2, 2, 2]},
    # three blocks on grids 28, 14, 7 (the partitions need multiples of 7), narrow, one layer each
    "maxvit_t": {"image": 112, "stem_channels": 16, "block_channels": [32, 32, 64], "block_layers": [1, 1, 1]},
}


def small(name):
    # the input alone sets the size: the partitions read the map entering them (`in`)
    sets = dict(SMALL[name])
    size = sets.pop("image")
    return load_spec(str(SPECS / f"{name}.yaml")).build(sets, input_shape=(3, size, size))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_configurations_agree_with_pytorch_and_every_tool(name):
    result = verify(small(name), batch=2)
    bad = [c for c in (*result.totals, *result.presets) if c.ok is False]
    assert result.ok and not bad, bad
    # each tool present ran (a preset is None only where its tool is not installed)
    for check in result.presets:
        assert check.ok is True or not oracle.tool_available(check.what[len("preset "):])


def test_matmul_and_scale_hints_agree_with_the_tools():
    # torch.matmul and x * c (the defaults) against @ and torch.mul: ptflops counts torch.matmul
    # (#a × p) and torch.mul (#output), not the operators; every other tool sees no difference.
    from calc import parse_spec
    text = """
        name: hints
        input: [3, 4, 5]
        layers:
          - identity: {name: x}
          - matmul: {with: [x], transpose: true, call: CALL}
          - scale: {by: 0.5, call: SCALE}
        """
    for call, scale in (("functional", "operator"), ("operator", "functional")):
        model = parse_spec(text.replace("CALL", call).replace("SCALE", scale), "hints.yaml").build()
        result = verify(model, batch=2)
        assert result.ok and all(c.ok is not False for c in result.presets), result.presets
        # by hand: 3 products of 4×5 by 5×4 = 3·4·5·4 = 240 MACs (standard)
        assert analyze(model).totals.macs == 240
        # ptflops: torch.matmul counts #a × p = 60 · 4 = 240; torch.mul its 48 outputs
        expected = (240 if call == "functional" else 0) + (48 if scale == "functional" else 0)
        assert analyze(model, convention="ptflops").totals.macs == expected
