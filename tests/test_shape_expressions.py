"""`in` in an item's expressions: the shape of the tensor entering the item (issue 12).

Every expected number is derived by hand beside it; Swin-T at 256 × 256 against torchvision's
own arithmetic (its ShiftedWindowAttention pads the map to whole windows; FlopCounterMode counts
the padded linear layers and both attention matmuls), written out in ``swin_t_macs``.
"""
import pytest

from calc import analyze, load_spec, parse_spec
from calc.cli import main
from calc.errors import SpecError
from conftest import SPECS
from helpers import run_text

IN = """\
name: t
input: [3, 32, 32]
blocks:
  pm:
    params: {H: "in.H", c: "in.C"}
    layers:
      - conv2d: {out: "c * 2", kernel: 1}
      - linear: {out: "in.W + H"}
layers:
  - conv2d: {out: 8, kernel: 3, padding: 1, name: a}
  - conv2d: {out: "in.C * 2", kernel: "in.H // 16", stride: 2}
  - pm
  - repeat:
      times: 3
      layers:
        - conv2d: {out: "in.C + 1", kernel: 1}
  - conv2d: {out: "in[0]", kernel: 1, from: a, when: "in.C == 8 and len(in) == 3"}
"""


def test_in_reads_the_shape_entering_each_item():
    a = run_text(IN)
    shapes = [r.result.output_shape for r in a.rows(leaves_only=True)]
    # a: 8×32×32; then out = 2·8 = 16, kernel 32 // 16 = 2, stride 2: 16×16×16;
    # pm: H = in.H = 16, c = in.C = 16: a 1×1 conv to 32 (32×16×16), then a linear on the last
    # dimension to in.W + H = 16 + 16 = 32: 32×16×32;
    # the repeat without index reads `in`, so each iteration sees its own: 33, 34, 35 channels;
    # the last item reads `a` (8×32×32): in[0] = 8, and its `when` (in.C == 8, rank 3) holds.
    assert shapes == [(8, 32, 32), (16, 16, 16), (32, 16, 16), (32, 16, 32), (33, 16, 32), (34, 16, 32),
                      (35, 16, 32), (8, 32, 32)]


@pytest.mark.parametrize("text, message", [
    ("in.L", r"in.L: the tensor entering this item is \(3, 4, 5\) \(rank 3: C, H, W\); L is a dimension of \(C, L\)"),
    ("in.D", r"D is a dimension of \(C, D, H, W\)"),
    ("in.Q", r"in.Q: the incoming shape's dimensions are named C, L \(rank 2\)"),
    ("in[3]", r"index 3 is out of range for a list of 3"),
])
def test_a_dimension_the_rank_does_not_have_is_an_error_that_says_where(text, message):
    spec = f"name: t\ninput: [3, 4, 5]\nlayers:\n  - conv2d: {{out: \"{text}\", kernel: 1}}\n"
    with pytest.raises(SpecError, match=message) as info:
        run_text(spec)
    assert info.value.path == ("layers", 0, "conv2d", "out") and info.value.line == 4


def test_channels_first_letters_by_rank():
    # (C, L): a Conv1d's input; (C, D, H, W): a Conv3d's. Each linear maps the last dimension.
    a = run_text("name: t\ninput: [6, 10]\nlayers:\n  - linear: {out: \"in.C + in.L\"}\n")
    assert a.output_shape == (6, 16)          # 6 + 10
    a = run_text("name: t\ninput: [2, 3, 4, 5]\nlayers:\n  - linear: {out: \"in.C * 1000 + in.D * 100 + in.H * 10 + in.W\"}\n")
    assert a.output_shape == (2, 3, 4, 2345)
    with pytest.raises(SpecError, match=r"rank 1, which has no named dimensions"):
        run_text("name: t\ninput: [7]\nlayers:\n  - linear: {out: in.C}\n")
    assert run_text("name: t\ninput: [7]\nlayers:\n  - linear: {out: \"in[0] * 2\"}\n").output_shape == (14,)


def test_a_variable_cannot_read_in():
    with pytest.raises(SpecError, match="names the tensor entering an item: only an item's arguments") as info:
        run_text("name: t\ninput: [3, 4]\nvariables: {w: in.C}\nlayers:\n  - relu\n")
    assert info.value.path == ("variables", "w")


def test_membership_is_still_refused():
    # `x in [..]` (after an operand) is Python's membership test, not the incoming shape
    with pytest.raises(SpecError, match="'in' is not allowed"):
        run_text("name: t\ninput: [3, 4]\nvariables: {a: 1}\nlayers:\n  - linear: {out: \"a in [1, 2]\"}\n")


def test_a_block_body_that_reads_in_is_not_shared_between_different_inputs():
    # the same block with the same parameters on 4 and 6 features: out = 2 · in[-1]
    text = """\
name: t
input: [4]
blocks:
  double:
    layers:
      - linear: {out: "2 * in[-1]"}
layers:
  - double
  - linear: {out: 6}
  - double
"""
    # 4 → 8, 8 → 6, 6 → 12; parameters 4·8 + 8 = 40, 8·6 + 6 = 54, 6·12 + 12 = 84
    a = run_text(text)
    assert a.output_shape == (12,) and a.totals.params == 40 + 54 + 84


def swin_t_macs(image, embed=96, depths=(2, 2, 6, 2), window=7, mlp=4, classes=1000):
    """torchvision's Swin-T MACs (torchvision/models/swin_transformer.py): a 4×4 stride-4 patch
    conv; per block, on the map padded to whole windows (T tokens, windows of L = 7·7), the qkv
    linear T·C·3C, q·kᵀ and attn·v T·L·C each, the projection T·C·C; the MLP on the unpadded
    H·W tokens, 2 · H·W·C·4C; a patch merge of ⌈H/2⌉·⌈W/2⌉·4C·2C; the head 8·96 · 1000."""
    H = W = (image - 4) // 4 + 1
    macs = embed * H * W * 3 * 4 * 4
    for s, depth in enumerate(depths):
        C = embed * 2 ** s
        pH, pW = -(-H // window) * window, -(-W // window) * window
        T, L = pH * pW, window * window
        macs += depth * (T * C * 3 * C + 2 * T * L * C + T * C * C + 2 * H * W * C * mlp * C)
        if s < len(depths) - 1:
            H, W = -(-H // 2), -(-W // 2)
            macs += H * W * 4 * C * 2 * C
    return macs + embed * 2 ** (len(depths) - 1) * classes


def test_swin_t_at_another_size_needs_only_the_input(capsys):
    # the derivation reproduces torchvision's published 4.491 GFLOPS at 224 (4,490,566,656)
    assert swin_t_macs(224) == 4_490_566_656
    spec = load_spec(str(SPECS / "swin_t.yaml"))
    for size in (256, 250):
        a = analyze(spec.build(input_shape=(3, size, size)))
        # maps 64, 32, 16, 8 (padded to 70, 35, 21, 14) at 256; 62, 31, 16, 8 at 250
        assert a.totals.macs == swin_t_macs(size)
        assert a.totals.params == 28_288_354    # torchvision's num_params: no size-dependent weight
    assert swin_t_macs(256) == 7_345_441_536
    assert main(["analyze", "swin_t", "--input", "3x256x256"]) == 0
    assert "7,345,441,536" in capsys.readouterr().out
    # `image` stays a variable (the default input size): --set image=256 gives the same
    assert analyze(spec.build({"image": 256})).totals.macs == 7_345_441_536


def test_maxvit_at_another_size_needs_only_the_input():
    spec = load_spec(str(SPECS / "maxvit_t.yaml"))
    # 448: the stem's 224 map halves to 112, 56, 28, 14, multiples of the 7×7 partition.
    # MaxViT's parameters do not depend on the size (its bias tables depend on the partition).
    # Every operation on the map scales with its 4× area (partitions of a fixed 7·7 tokens), except
    # those on pooled vectors: the classifier's linears 512·512 + 512·1000 = 774,144 MACs and each
    # MBConv's squeeze-excitation, 4·out → out/4 → 4·out, 2·out² MACs, over 2, 2, 5, 2 layers of
    # 64, 128, 256, 512 channels: 2·(2·64² + 2·128² + 5·256² + 2·512²) = 1,785,856.
    a = analyze(spec.build(input_shape=(3, 448, 448)))
    assert a.totals.params == 30_919_624
    assert a.totals.macs == 4 * 5_558_046_720 - 3 * (774_144 + 1_785_856)


def test_tokens_can_be_read_too():
    text = "name: t\ninput: [12]\ninput_kind: tokens\nlayers:\n  - embedding: {vocab: 100, dim: \"in[0] * 2\"}\n"
    # 12 token ids → (12, 24)
    assert run_text(text).output_shape == (12, 24)


def test_a_spec_that_never_reads_in_builds_as_before():
    spec = parse_spec("name: t\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3}\n", "t.yaml")
    assert analyze(spec.build()).output_shape == (4, 6, 6)


SW = "name: sw\ninput: [3, 32, 32]\nlayers:\n  - conv2d: {out: 8, kernel: 3}\n  - linear: {out: \"in.W * 2\"}\n"


def test_a_model_that_read_in_is_analysed_at_its_own_input_only():
    model = parse_spec(SW, "sw.yaml").build()
    assert model.reads_in
    # built for 3×32×32: the conv gives 8×30×30, the linear's out is in.W · 2 = 60; at 64×64
    # the build must be redone
    with pytest.raises(SpecError, match=r"reads the shape entering its items \(`in`\), which is fixed when the "
                                        r"spec is built: this model was built for input 3×32×32; build it again"):
        analyze(model, input_shape=(3, 64, 64))
    assert analyze(model, input_shape=(3, 32, 32)).output_shape == (8, 30, 60)
    plain = parse_spec("name: p\ninput: [3, 8]\nlayers:\n  - linear: {out: 4}\n", "p.yaml").build()
    assert not plain.reads_in


def test_sweep_and_symbolic_follow_in(tmp_path, capsys):
    path = tmp_path / "sw.yaml"
    path.write_text(SW)
    # a sweep over inputs builds the spec for each: at 64×64 the conv gives 8×62×62 and the
    # linear 62 · 2 = 124 features; parameters 3·9·8 + 8 = 224 and 62·124 + 124 = 7,812: 8,036
    assert main(["sweep", str(path), "--input", "3x32x32,3x64x64", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "3x64x64,1,8036," in out and "8x62x124" in out
    # at 32×32: 224 + 30·60 + 60 = 2,084 parameters
    assert "3x32x32,1,2084," in out and "8x30x60" in out
    from calc.check.symbolic import symbolic
    with pytest.raises(SpecError, match=r"--symbolic: sw reads the shape entering its items"):
        symbolic(parse_spec(SW, "sw.yaml").build())


def test_the_internal_name_of_in_is_not_a_variable_or_parameter():
    with pytest.raises(SpecError, match="variable names must be identifiers"):
        run_text("name: t\ninput: [3]\nvariables: {__in__: 1}\nlayers: [relu]\n")
    with pytest.raises(SpecError, match="parameter '__in__' is how `in`"):
        run_text("name: t\ninput: [3]\nblocks: {b: {params: {__in__: 1}, layers: [relu]}}\nlayers: [b]\n")


def test_a_shared_block_body_is_rebuilt_for_each_incoming_shape_inside_a_structure_that_reads_in():
    # the repeat reads in[0] (4) for its count; inside, `grow` (out = in[0] + 2) sees 4, 6, 8, 10:
    # its body must not be reused from the first iteration
    text = """\
name: t
input: [4]
blocks:
  grow:
    layers:
      - linear: {out: "in[0] + 2"}
layers:
  - repeat:
      times: in[0]
      layers: [grow]
"""
    assert run_text(text).output_shape == (12,)     # 4 → 6 → 8 → 10 → 12
