"""The hand-derived AlexNet facts of the foundation issue, and the reference data."""
from helpers import leaves, run_spec
from reference_data import REFERENCE


def test_torchvision_alexnet_params_per_layer():
    a = run_spec("alexnet")
    # (K·K·C_in + 1)·C_out for convs and (F_in + 1)·F_out for linears:
    # (11·11·3+1)·64, (5·5·64+1)·192, (3·3·192+1)·384, (3·3·384+1)·256, (3·3·256+1)·256,
    # (9216+1)·4096, (4096+1)·4096, (4096+1)·1000
    expected = [23_296, 307_392, 663_936, 884_992, 590_080, 37_752_832, 16_781_312, 4_097_000]
    assert [r.params for r in leaves(a) if r.params] == expected
    assert a.totals.params == sum(expected) == 61_100_840
    assert a.totals.params == REFERENCE["alexnet"]["params_total"]
    assert a.totals.trainable_params == 61_100_840
    assert a.totals.buffers == 0


def test_torchvision_alexnet_shapes():
    a = run_spec("alexnet")
    shapes = [r.output_shape for r in leaves(a) if r.kind in ("conv2d", "maxpool2d", "flatten", "linear")]
    assert shapes == [(64, 55, 55), (64, 27, 27), (192, 27, 27), (192, 13, 13), (384, 13, 13),
                      (256, 13, 13), (256, 13, 13), (256, 6, 6), (9216,), (4096,), (4096,), (1000,)]
    assert [1, *a.output_shape] == REFERENCE["alexnet"]["output_shape"]


def test_torchvision_alexnet_macs_and_flops():
    a = run_spec("alexnet")
    # conv MACs = C_out·H·W·C_in·K² : 64·55²·3·121 + 192·27²·64·25 + 384·13²·192·9
    #   + 256·13²·384·9 + 256·13²·256·9 = 655,566,528; linear 9216·4096 + 4096² + 4096·1000 = 58,621,952
    conv = 64 * 55 * 55 * 3 * 121 + 192 * 27 * 27 * 64 * 25 + 384 * 13 * 13 * 192 * 9 \
        + 256 * 13 * 13 * 384 * 9 + 256 * 13 * 13 * 256 * 9
    linear = 9216 * 4096 + 4096 * 4096 + 4096 * 1000
    assert conv == 655_566_528 and linear == 58_621_952
    assert a.totals.macs == conv + linear == 714_188_480
    assert a.totals.flops == 1_428_376_960 == REFERENCE["alexnet"]["torch_flops"]


def test_alexnet_512_and_batch_8():
    big = run_spec("alexnet", input_shape=(3, 512, 512))
    assert big.totals.macs == 3_707_333_312
    assert 2 * big.totals.macs == REFERENCE["alexnet@1x3x512x512"]["torch_flops"]
    assert [1, *big.output_shape] == REFERENCE["alexnet@1x3x512x512"]["output_shape"]
    one = run_spec("alexnet")
    eight = run_spec("alexnet", batch=8)
    assert eight.totals.macs == 8 * one.totals.macs
    assert eight.totals.params == one.totals.params
    assert eight.totals.flops == REFERENCE["alexnet@8x3x224x224"]["torch_flops"]
    assert eight.totals.activation_bytes == 8 * one.totals.activation_bytes_per_sample


def test_alexnet_parameter_memory():
    a = run_spec("alexnet")
    assert a.totals.param_bytes == 4 * 61_100_840 == 244_403_360
    # 244,403,360 / 1024² = 233.0812… MiB
    assert f"{a.totals.param_bytes / 1024**2:.2f}" == "233.08"
    assert run_spec("alexnet", dtype="fp16").totals.param_bytes == 2 * 61_100_840
    assert run_spec("alexnet", dtype="int8").totals.param_bytes == 61_100_840


def test_alexnet_activation_memory_is_sum_of_outputs():
    a = run_spec("alexnet")
    assert a.totals.activation_bytes_per_sample == 4 * sum(r.facts["out"] for r in leaves(a))


def test_alexnet_2012():
    a = run_spec("alexnet_2012")
    # (11·11·3+1)·96 + (5·5·96+1)·256 + (3·3·256+1)·384 + (3·3·384+1)·384 + (3·3·384+1)·256
    # + (9216+1)·4096 + (4096+1)·4096 + (4096+1)·1000
    assert a.totals.params == 62_378_344
    first = leaves(a)[0]
    assert first.output_shape == (96, 55, 55)
    # one operation per weight and per bias, at every output position: [(11·11·3)·96 + 96]·55·55
    assert (first.params) * first.facts["spatial_out"] == 105_705_600
