"""VGG specs against the reference file and torchvision's published parameter counts."""
import pytest

from helpers import leaves, run_spec
from reference_data import REFERENCE

# torchvision's model documentation lists these parameter counts ("num_params") for the
# variants not in the reference file.
PUBLISHED_PARAMS = {"vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg13": 133_047_848,
                    "vgg13_bn": 133_053_736, "vgg16": 138_357_544, "vgg16_bn": 138_365_992,
                    "vgg19": 143_667_240, "vgg19_bn": 143_678_248}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_vgg_params(name):
    a = run_spec(name)
    assert a.totals.params == PUBLISHED_PARAMS[name]
    if name in REFERENCE:
        assert a.totals.params == REFERENCE[name]["params_total"]
        assert a.totals.flops == REFERENCE[name]["torch_flops"]
        assert [1, *a.output_shape] == REFERENCE[name]["output_shape"]


def test_vgg16_facts():
    a = run_spec("vgg16")
    assert a.totals.params == 138_357_544
    fc1 = next(r for r in leaves(a) if r.kind == "linear")
    assert fc1.weights == 7 * 7 * 512 * 4096 == 102_760_448
    assert a.totals.flops == 30_940_528_640


@pytest.mark.parametrize("name", ["vgg11", "vgg13", "vgg16", "vgg19"])
def test_bn_adds_two_params_and_buffers_per_channel(name):
    plain, bn = run_spec(name), run_spec(name + "_bn")
    channels = sum(r.output_shape[0] for r in leaves(plain) if r.kind == "conv2d")
    assert bn.totals.params - plain.totals.params == 2 * channels
    n_bn = sum(1 for r in leaves(bn) if r.kind == "batchnorm2d")
    # running mean + running var per channel, one batch counter per layer
    assert bn.totals.buffers == 2 * channels + n_bn
    assert bn.totals.macs == plain.totals.macs
