"""The shape and no-cost layers (calc/layers/shape.py): hand-derived output shapes; none of them
has parameters or counts an operation."""
import pytest

from calc.render.explain import format_step
from calc.layers import LAYERS, NO_PARAMS
from helpers import run_layer as run


def make(type_name, **args):
    return LAYERS[type_name].model_validate(args)


def explained(layer, shape):
    out = layer.infer(shape)
    return [format_step(s) for s in layer.explain(shape, out)]


@pytest.mark.parametrize("type_name, args", [("dropout", {}), ("dropout", {"p": 0.1}),
                                             ("stochastic_depth", {"p": 0.2}), ("identity", {})])
def test_inference_no_ops_pass_the_input_through(type_name, args):
    layer = make(type_name, **args)
    # at inference dropout and drop path are the identity: same shape, nothing counted
    assert run(layer, (3, 4, 5)) == ((3, 4, 5), NO_PARAMS, {})
    assert explained(layer, (3, 4, 5)) == ["output = input (unchanged) = 3×4×5"]


def test_flatten():
    # AlexNet's classifier input: 256·6·6 = 9,216 features
    assert run(make("flatten"), (256, 6, 6)) == ((9216,), NO_PARAMS, {})
    # start 1: the channels stay, 4·5 = 20 positions merge
    assert run(make("flatten", start=1), (3, 4, 5)) == ((3, 20), NO_PARAMS, {})
    # dims 0..1 of 2×3×4×5: 2·3 = 6, the rest stays
    assert run(make("flatten", end=1), (2, 3, 4, 5)) == ((6, 4, 5), NO_PARAMS, {})
    # a scalar becomes one element (the empty product is 1)
    assert run(make("flatten"), ())[0] == (1,)
    assert explained(make("flatten", start=1), (3, 4, 5)) == [
        "output = dims 1..−1 merged into one, the product of their sizes = 3×20"]
    with pytest.raises(ValueError, match="start 2 comes after end 1"):
        make("flatten", start=2, end=1).infer((3, 4, 5))


def test_reshape():
    # 3·4·5 = 60 elements; −1 takes 60 / 10 = 6
    assert run(make("reshape", shape=[-1, 10]), (3, 4, 5)) == ((6, 10), NO_PARAMS, {})
    assert run(make("reshape", shape=[5, 12]), (3, 4, 5))[0] == (5, 12)   # 5·12 = 60
    assert explained(make("reshape", shape=[-1, 10]), (3, 4, 5)) == [
        "output = the same elements viewed as [-1, 10] (−1: the size that keeps every element) = 6×10"]
    with pytest.raises(ValueError, match="at most one −1"):
        make("reshape", shape=[-1, -1]).infer((3, 4, 5))
    with pytest.raises(ValueError, match=r"cannot reshape 3×4×5 \(60 elements\) to 7×9 \(63 elements\)"):
        make("reshape", shape=[7, 9]).infer((3, 4, 5))
    with pytest.raises(ValueError, match="cannot reshape"):   # 60 is not a multiple of 7
        make("reshape", shape=[-1, 7]).infer((3, 4, 5))


def test_permute():
    # dims [1, 2, 0]: output dim i is input dim dims[i]: (4, 5, 3)
    assert run(make("permute", dims=[1, 2, 0]), (3, 4, 5)) == ((4, 5, 3), NO_PARAMS, {})
    assert run(make("permute", dims=[-1, 0, 1]), (3, 4, 5))[0] == (5, 3, 4)
    assert explained(make("permute", dims=[1, 2, 0]), (3, 4, 5)) == [
        "output = input dims reordered as [1, 2, 0] = 4×5×3"]
    with pytest.raises(ValueError, match="not a permutation of a rank-3 shape"):
        make("permute", dims=[0, 0, 1]).infer((3, 4, 5))


def test_channel_shuffle():
    # 6 channels in 3 groups of 2, interleaved: the shape stays, nothing counted
    assert run(make("channel_shuffle", groups=3), (6, 4, 5)) == ((6, 4, 5), NO_PARAMS, {})
    assert explained(make("channel_shuffle", groups=3), (6, 4, 5)) == ["output = input (unchanged) = 6×4×5"]
    with pytest.raises(ValueError, match="channels 7 are not divisible by groups=3"):
        make("channel_shuffle", groups=3).infer((7, 4, 5))
    with pytest.raises(ValueError, match="needs"):
        make("channel_shuffle", groups=1).infer((6,))


def test_channel_split():
    # sections [2, 4] of 6 channels, part 1: 4 channels
    layer = make("channel_split", sections=[2, 4], index=1)
    assert run(layer, (6, 4, 5)) == ((4, 4, 5), NO_PARAMS, {})
    assert explained(layer, (6, 4, 5)) == ["output = part 1 of dim 0, split into sections [2, 4] = 4×4×5"]
    # ShuffleNet v2's split: 2 equal parts of 116 channels, 58 each
    assert run(make("channel_split", parts=2), (116, 28, 28))[0] == (58, 28, 28)
    # the last dim in 5 parts: 5 / 5 = 1
    assert run(make("channel_split", parts=5, dim=-1, index=4), (6, 4, 5))[0] == (6, 4, 1)
    with pytest.raises(ValueError, match="exactly one of parts and sections"):
        make("channel_split").infer((6, 4, 5))
    # torch.chunk(x, 4) of 6 channels: chunks of ceil(6 / 4) = 2, so 2, 2, 2 (three chunks)
    assert run(make("channel_split", parts=4, index=2), (6, 4, 5))[0] == (2, 4, 5)
    with pytest.raises(ValueError, match=r"index 3 but only 3 parts \(torch.chunk makes 3 of 6 into 4\)"):
        make("channel_split", parts=4, index=3).infer((6, 4, 5))
    # torch.chunk(x, 3) of 7 channels: 3, 3, 1
    assert [run(make("channel_split", parts=3, index=i), (7, 2))[0][0] for i in range(3)] == [3, 3, 1]
    with pytest.raises(ValueError, match=r"sections \[2, 3\] sum to 5, not 6"):
        make("channel_split", sections=[2, 3]).infer((6, 4, 5))
    with pytest.raises(ValueError, match="index 2 but only 2 parts"):
        make("channel_split", parts=2, index=2).infer((6, 4, 5))


@pytest.mark.parametrize("type_name", ["dropout", "stochastic_depth", "identity", "flatten", "reshape",
                                       "permute", "channel_shuffle", "channel_split"])
def test_nothing_is_declared_so_nothing_is_listed(type_name):
    # a view or an inference no-op has no quantity: `calc layers` lists no formula for it
    assert LAYERS[type_name].describe() == []


def test_pad():
    # F.pad's pairs run from the last dim backwards: [1, 2, 0, 3] pads width by 1 + 2 and
    # height by 0 + 3: 3×5×6 → 3×8×9.
    assert run(make("pad", pad=[1, 2, 0, 3]), (3, 5, 6)) == ((3, 8, 9), NO_PARAMS, {})
    # Swin's padding to a multiple of the window (7): 56 → 56, 6 → 7 on the last dims of (H, W, C)
    assert run(make("pad", pad=[0, 0, 0, 1, 0, 0]), (6, 6, 96))[0] == (6, 7, 96)
    # a negative amount crops: 5 − 1 − 1 = 3
    assert run(make("pad", pad=[-1, -1]), (3, 5))[0] == (3, 3)
    assert run(make("pad", pad=[2, 2], mode="reflect"), (3, 5))[0] == (3, 9)
    with pytest.raises(ValueError, match="reflect padding 5 must be smaller than the size 5"):
        make("pad", pad=[5, 0], mode="reflect").infer((3, 5))
    with pytest.raises(ValueError, match="pairs"):
        make("pad", pad=[1, 2, 3]).infer((3, 5))
    with pytest.raises(ValueError, match="3 pairs of padding for a rank-2 shape"):
        make("pad", pad=[1, 1, 1, 1, 1, 1]).infer((3, 5))
    with pytest.raises(ValueError, match="empty"):
        make("pad", pad=[-3, -2]).infer((3, 5))


def test_roll():
    # torch.roll keeps the shape (Swin's cyclic shift by −3 along H and W)
    assert run(make("roll", shifts=[-3, -3], dims=[0, 1]), (56, 56, 96)) == ((56, 56, 96), NO_PARAMS, {})
    with pytest.raises(ValueError, match="must be as long"):
        make("roll", shifts=[1], dims=[0, 1]).infer((4, 4))
    with pytest.raises(ValueError):
        make("roll", shifts=[1], dims=[3]).infer((4, 4))
