"""`imports:` — blocks and variables from other spec files and from calc's bundled library
(issue 12). Expected numbers are derived by hand beside each test."""
import pytest

from calc import analyze, load_spec, parse_spec
from calc.errors import CalcError, InputError, SpecError
from calc.spec.imports import LIBRARY, MAX_IMPORT_FILES, library_names
from conftest import SPECS

LIB = """\
variables:
  width: 2
  k: 3
blocks:
  one:
    params: {c: null}
    layers:
      - conv2d: {out: "c * width", kernel: k, padding: 1}
  two:
    params: {c: null}
    layers:
      - one: {c: c}
      - relu
  unused:
    layers:
      - relu
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_file_and_the_library(tmp_path):
    write(tmp_path, "lib.yaml", LIB)
    spec = load_spec(write(tmp_path, "a.yaml", """\
name: a
input: [3, 8, 8]
imports:
  - common
  - {from: lib.yaml, blocks: [two]}
layers:
  - conv_bn_act: {out: 4}
  - two: {c: 5}
"""))
    # only `two` and the block it uses come from lib.yaml; `width` and `k` come because `one` reads them
    assert set(spec.doc.blocks) >= {"two", "one", "conv_bn_act", "squeeze_excitation"}
    assert "unused" not in spec.doc.blocks and spec.doc.variables == {"width": 2, "k": 3}
    a = analyze(spec.build())
    # conv_bn_act: 3×3 conv 3 → 4 without bias (108) + batch norm (8): 116 parameters,
    # 108 · 64 positions = 6,912 MACs; two: 3×3 conv 4 → 5·2 = 10 with bias: 4·9·10 + 10 = 370,
    # 360 · 64 = 23,040 MACs
    assert (a.totals.params, a.totals.macs) == (116 + 370, 6_912 + 23_040)
    assert a.output_shape == (10, 8, 8)
    # an imported block reads the importing spec's variables where it defines them, and --set works
    assert analyze(spec.build({"width": 3})).output_shape == (15, 8, 8)


def test_a_spec_variable_of_the_same_name_is_the_one_read(tmp_path):
    write(tmp_path, "lib.yaml", LIB)
    text = "name: a\ninput: [3, 8, 8]\nimports: [{from: lib.yaml, blocks: [one]}]\nvariables: {width: 4}\n" \
           "layers:\n  - one: {c: 2}\n"
    # out = c · width = 2 · 4 (the spec's width, not the file's 2)
    assert analyze(load_spec(write(tmp_path, "a.yaml", text)).build()).output_shape == (8, 8, 8)


def test_explicit_variables_clash_with_the_specs_own(tmp_path):
    write(tmp_path, "lib.yaml", LIB)
    text = "name: a\ninput: [3]\nimports: [{from: lib.yaml, blocks: [], variables: [k]}]\nvariables:\n  k: 1\n" \
           "layers:\n  - relu\n"
    with pytest.raises(SpecError, match=r"variable 'k' is defined here and imported from lib.yaml line 3") as info:
        load_spec(write(tmp_path, "a.yaml", text))
    assert info.value.line == 5


def test_a_block_defined_here_and_imported_is_an_error(tmp_path):
    text = "name: a\ninput: [3, 8, 8]\nimports: [common]\nblocks:\n  conv_bn_act:\n    layers: [relu]\n" \
           "layers:\n  - relu\n"
    with pytest.raises(SpecError, match=r"block 'conv_bn_act' is defined here and imported from "
                                        r"calc/library/common.yaml line \d+") as info:
        load_spec(write(tmp_path, "a.yaml", text))
    assert info.value.line == 5


def test_a_cycle_is_an_error_with_file_and_line(tmp_path):
    write(tmp_path, "b.yaml", "imports: [c.yaml]\nblocks: {}\n")
    write(tmp_path, "c.yaml", "blocks: {}\nimports:\n  - b.yaml\n")
    a = write(tmp_path, "a.yaml", "name: a\ninput: [3]\nimports: [b.yaml]\nlayers: [relu]\n")
    with pytest.raises(SpecError, match=r"imports form a cycle: b.yaml → c.yaml → b.yaml") as info:
        load_spec(a)
    assert (info.value.file, info.value.line) == ("c.yaml", 3)   # c.yaml's line 3 imports b.yaml again
    # a file that imports itself
    with pytest.raises(SpecError, match=r"imports form a cycle: self.yaml → self.yaml"):
        load_spec(write(tmp_path, "self.yaml", "name: s\ninput: [3]\nimports: [self.yaml]\nlayers: [relu]\n"))


@pytest.mark.parametrize("entry, message, line", [
    ("{from: lib.yaml, blocks: [nope]}", r"lib.yaml has no block 'nope' \(blocks: one, two, unused\)", 4),
    ("{from: lib.yaml, variables: [nope]}", r"lib.yaml has no variable 'nope' \(variables: width, k\)", 4),
    ("missing.yaml", r"no such file to import: 'missing.yaml'", 4),
    ("https://example.com/x.yaml", r"imports read files only, not URLs", 4),
    ("nolib", r"no bundled library 'nolib' \(libraries: common", 4),
    ("{from: lib.yaml, what: 1}", r"unknown argument 'what' for an import; arguments: from, blocks, variables", 4),
    ("3", r"an import is a library name, a file name, or a mapping", 4),
])
def test_missing_names_and_bad_entries_say_where(tmp_path, entry, message, line):
    write(tmp_path, "lib.yaml", LIB)
    text = f"name: a\ninput: [3]\nimports:\n  - {entry}\nlayers: [relu]\n"
    with pytest.raises(SpecError, match=message) as info:
        load_spec(write(tmp_path, "a.yaml", text))
    assert info.value.line == line and info.value.file.endswith("a.yaml")


def test_a_text_without_a_file_imports_the_library_but_no_relative_file():
    spec = parse_spec("name: a\ninput: [3, 8, 8]\nimports: [common]\nlayers:\n  - conv_bn_act: {out: 4}\n", "t.yaml")
    assert analyze(spec.build()).totals.params == 116     # as above: 108 + 8
    with pytest.raises(SpecError, match="has no directory for the relative file 'x.yaml'"):
        parse_spec("name: a\ninput: [3]\nimports: [x.yaml]\nlayers: [relu]\n", "t.yaml")


def test_an_error_inside_an_imported_block_points_at_its_file(tmp_path):
    text = "name: a\ninput: [10, 8, 8]\nimports: [common]\nlayers:\n  - conv_bn_act: {out: 4, groups: 3}\n"
    with pytest.raises(CalcError, match="input channels 10 are not divisible by groups=3") as info:
        analyze(load_spec(write(tmp_path, "a.yaml", text)).build())
    err = info.value
    lines = (LIBRARY / "common.yaml").read_text().splitlines()
    assert err.file == "calc/library/common.yaml" and "- conv2d:" in lines[err.line - 1]
    assert "used at layers[0].conv_bn_act (line 5)" in str(err)


def test_imports_are_bounded(tmp_path):
    # a chain longer than the limit: f0 imports f1, ..., each a new file
    n = MAX_IMPORT_FILES + 2
    for i in range(1, n):
        write(tmp_path, f"f{i}.yaml", f"imports: [f{i + 1}.yaml]\nblocks: {{}}\n" if i < n - 1 else "blocks: {}\n")
    with pytest.raises(SpecError, match=f"more than {MAX_IMPORT_FILES} imported files"):
        load_spec(write(tmp_path, "f0.yaml", "name: a\ninput: [3]\nimports: [f1.yaml]\nlayers: [relu]\n"))


def test_a_library_file_with_a_typo_is_an_error_in_that_file(tmp_path):
    write(tmp_path, "lib.yaml", "blocks: {}\nvariabels: {a: 1}\n")
    with pytest.raises(SpecError, match=r"unknown argument 'variabels' for a library of blocks") as info:
        load_spec(write(tmp_path, "a.yaml", "name: a\ninput: [3]\nimports: [lib.yaml]\nlayers: [relu]\n"))
    assert (info.value.file, info.value.line) == ("lib.yaml", 2)


def test_the_bundled_library_and_the_specs_that_use_it():
    assert "common" in library_names()
    # MobileNetV2 and V3 take Conv2dNormActivation (and V3 its InvertedResidual) from the library;
    # their figures are torchvision's published ones (calc/models/published.json, from torchvision's
    # weight tables; tests/test_models.py checks every model):
    # mobilenet_v2 3,504,872 parameters, 0.301 GFLOPS; mobilenet_v3_large 5,483,032 and 0.217;
    # mobilenet_v3_small 2,542,856 and 0.057.
    for name, params, gflops in (("mobilenet_v2", 3_504_872, 0.301), ("mobilenet_v3_large", 5_483_032, 0.217)):
        spec = load_spec(str(SPECS / f"{name}.yaml"))
        assert spec.doc.imports and "conv_bn_act" in spec.doc.blocks
        t = analyze(spec.build()).totals
        assert t.params == params and round(t.macs / 1e9, 3) == gflops
    t = analyze(load_spec(str(SPECS / "mobilenet_v3_large.yaml")).build(variant="mobilenet_v3_small")).totals
    assert t.params == 2_542_856 and round(t.macs / 1e9, 3) == 0.057


def test_the_library_blocks_alone():
    # transformer_mlp on (L, D) = (5, 8): 8 → 32 → 8, parameters 8·32 + 32 + 32·8 + 8 = 552,
    # MACs 5 · (8·32 + 32·8) = 2,560
    spec = parse_spec("name: m\ninput: [5, 8]\nimports: [{from: common, blocks: [transformer_mlp]}]\n"
                      "layers:\n  - transformer_mlp: {hidden: 32}\n", "m.yaml")
    t = analyze(spec.build()).totals
    assert (t.params, t.macs) == (552, 2_560)
    # squeeze_excitation on 16 channels (4×4) to 4: fc1 16·4 + 4 = 68, fc2 4·16 + 16 = 80;
    # MACs 64 + 64 (1×1 maps)
    spec = parse_spec("name: s\ninput: [16, 4, 4]\nimports: [common]\n"
                      "layers:\n  - squeeze_excitation: {channels: 16, squeeze: 4}\n", "s.yaml")
    t = analyze(spec.build()).totals
    assert (t.params, t.macs) == (148, 128)
    # conv_bn_act with act: none has no activation layer (two layers, not three)
    spec = parse_spec("name: c\ninput: [3, 4, 4]\nimports: [common]\n"
                      "layers:\n  - conv_bn_act: {out: 2, act: none}\n", "c.yaml")
    assert [r.result.kind for r in analyze(spec.build()).rows(leaves_only=True)] == ["conv2d", "batchnorm2d"]


def test_an_unreadable_import_is_an_input_error(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises((SpecError, InputError)):
        load_spec(write(tmp_path, "a.yaml", "name: a\ninput: [3]\nimports: [dir.yaml]\nlayers: [relu]\n"))


def test_a_file_two_imports_reach_is_read_once(tmp_path):
    # a imports b and c; both import d: d's block comes once, not as a clash
    write(tmp_path, "d.yaml", "blocks:\n  act:\n    layers: [relu]\n")
    write(tmp_path, "b.yaml", "imports: [d.yaml]\nblocks:\n  bb:\n    layers: [act]\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub, "c.yaml", "imports: [../d.yaml]\nblocks:\n  cc:\n    layers: [act]\n")
    spec = load_spec(write(tmp_path, "a.yaml", "name: a\ninput: [3]\nimports: [b.yaml, sub/c.yaml]\n"
                                                "layers: [bb, cc]\n"))
    assert {"act", "bb", "cc"} <= set(spec.doc.blocks)
    assert analyze(spec.build()).output_shape == (3,)


def test_an_imported_whole_spec_follows_its_own_relative_imports(tmp_path):
    write(tmp_path, "lib.yaml", LIB)
    sub = tmp_path / "sub"
    sub.mkdir()
    # a whole spec (it has layers) that imports lib.yaml relative to itself
    write(sub, "model.yaml", "name: m\ninput: [3, 8, 8]\nimports: [{from: ../lib.yaml, blocks: [two]}]\n"
                             "blocks:\n  three:\n    params: {c: 1}\n    layers: [two: {c: c}]\nlayers: [three]\n")
    spec = load_spec(write(tmp_path, "a.yaml", "name: a\ninput: [3, 8, 8]\n"
                                                "imports: [{from: sub/model.yaml, blocks: [three]}]\n"
                                                "layers:\n  - three: {c: 4}\n"))
    # two → one: 3×3 conv 3 → 4 · width 2 = 8 channels, padding 1
    assert analyze(spec.build()).output_shape == (8, 8, 8)
