"""Hints (issue 12): which tool reads which hint on which layer type, a note for a hint no tool
reads, `calc verify` naming a likely missing hint, and `call: einsum` on matmul. The readers are
read off the presets' rules (calc/conventions/tools/*.py), quoted beside each expectation; the
einsum counts are derived by hand and checked against the real tools."""
import pytest

from calc import analyze, parse_spec
from calc.check import write_notes
from calc.cli import main
from calc.conventions.hint_readers import read_by, readers, readers_text


def test_which_tools_read_which_hint():
    # ptflops' rule for relu is "x" per sample plus "module * y" for the batch (its module hook
    # and the wrapped F.relu): it reads call; the other presets count relu without it
    assert read_by("call", "relu") == ("ptflops",)
    # thop and torchinfo count module calls only ("module * ..."), ptflops too: conv2d's call
    assert set(read_by("call", "conv2d")) == {"thop", "thop-legacy", "ptflops", "torchinfo"}
    # ptflops-aten: "mac + contiguous * bias_add" for linear; nobody else reads contiguous
    assert readers()["contiguous"] == {"linear": ("ptflops-aten",)}
    # torchinfo counts the parameters of leaf modules only ("leaf * ...")
    assert read_by("owner", "linear") == ("torchinfo",)
    # dropout and flatten count 0 whatever the call
    assert read_by("call", "dropout") == () and read_by("call", "flatten") == ()
    assert readers_text("dropout") == "no tool preset reads call"


HINTED = """\
name: h
input: [4, 6]
layers:
  - dropout: {p: 0.1, call: functional}
  - relu: {call: functional}
  - linear: {out: 3}
"""


def test_a_hint_no_tool_reads_is_a_note(tmp_path, capsys):
    model = parse_spec(HINTED, "h.yaml").build()
    assert [p for p, _ in model.notes] == [("layers", 0, "dropout", "call")]
    assert "no tool preset reads 'call' on dropout, so 'call: functional' changes no count" in model.notes[0][1]
    path = tmp_path / "h.yaml"
    path.write_text(HINTED)
    assert main(["check", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"note: {path}:4: layers[0].dropout.call: no tool preset reads 'call' on dropout" in err
    # the counts are the same with and without the unread hint (ptflops reads relu's)
    plain = parse_spec(HINTED.replace(", call: functional}", "}", 1), "h.yaml").build()
    for conv in ("thop", "ptflops", "fvcore", "torchinfo"):
        assert analyze(plain, convention=conv).totals == analyze(model, convention=conv).totals


def test_calc_layers_says_who_reads_each_hint(capsys):
    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    assert "hints: call (module|functional), owner (leaf|container), contiguous (true|false); read by call: " \
           "thop, thop-legacy, ptflops, torchinfo; owner: torchinfo; contiguous: ptflops-aten" in out
    assert "hints: call (functional|operator|einsum); read by call: ptflops" in out    # matmul


def test_a_stated_note_is_written_with_file_and_line(tmp_path):
    import io
    model = parse_spec(HINTED, str(tmp_path / "x.yaml")).build()
    stream = io.StringIO()
    write_notes(model, stream)
    assert stream.getvalue().startswith(f"note: {tmp_path / 'x.yaml'}:4: layers[0].dropout.call:")


# ---------------------------------------------------------------------------- einsum

EINSUM = """\
name: ein
input: [3, 13, 17]
layers:
  - identity: {name: x}
  - linear: {out: 17, name: k}
  - matmul: {with: [x], transpose: true, call: CALL}
  - matmul: {with: [x], call: CALL}
"""


def test_einsum_counts_by_hand():
    ein = parse_spec(EINSUM.replace("CALL", "einsum"), "e.yaml").build()
    mm = parse_spec(EINSUM.replace("CALL", "functional"), "e.yaml").build()
    # standard: linear 3·13 rows · 17 · 17 = 11,271; k·xᵀ 3 × (13×17 by 17×13) = 3·13·17·13 = 8,619;
    # that (3, 13, 13) by x (3, 13, 17): 3·13·13·17 = 8,619
    assert analyze(ein).totals.macs == analyze(mm).totals.macs == 11_271 + 2 * 8_619
    # ptflops does not wrap torch.einsum: the linear only (11,271 + its bias 3·13·17 = 663)
    assert analyze(ein, convention="ptflops").totals.macs == 11_934
    # fvcore at batch 3: linear 3·11,271 = 33,813 (no bias); each einsum: numpy's optimal cost
    # 2·3·8,619 + 1 = 51,715, printed '5.172e+04' (round half to even), halved: 25,860
    assert analyze(ein, convention="fvcore", batch=3).totals.macs == 33_813 + 2 * 25_860
    # torch.matmul instead: fvcore's matmul_flop_jit, #a × p = exact 3 · 8,619 each
    assert analyze(mm, convention="fvcore", batch=3).totals.macs == 33_813 + 2 * 3 * 8_619


def test_einsum_agrees_with_the_real_tools():
    pytest.importorskip("torch")
    from calc.verify import verify
    from calc import oracle
    for batch in (1, 3):
        result = verify(parse_spec(EINSUM.replace("CALL", "einsum"), "e.yaml").build(), batch=batch)
        assert result.ok, [c for c in (*result.totals, *result.presets) if c.ok is False]
        assert any(c.ok for c in result.presets if c.what == "preset fvcore") or not oracle.tool_available("fvcore")


# ---------------------------------------------------------------------------- a likely missing hint

PLAIN = """\
name: p
input: [3, 8, 8]
layers:
  - conv2d: {out: 4, kernel: 3}
  - relu RELU
  - conv2d: {out: 2, kernel: 1}
"""


def test_verify_points_out_a_likely_missing_hint(monkeypatch):
    pytest.importorskip("torch")
    from calc import oracle
    from calc.hint_search import missing_hints
    from calc.verify import verify
    if not oracle.tool_available("ptflops"):
        pytest.skip("ptflops is not installed")
    plain = parse_spec(PLAIN.replace(" RELU", ""), "p.yaml").build()
    written = parse_spec(PLAIN.replace("relu RELU", "relu: {call: functional}"), "p.yaml").build()
    # the real ptflops on a module that calls F.relu (the oracle's rendering of `written`)
    measured = oracle.measure(written, batch=1)
    target = oracle.run_tool("ptflops", measured.module, measured.input_shape, 1)
    assert target == analyze(written, convention="ptflops").totals.macs
    assert target != analyze(plain, convention="ptflops").totals.macs
    assert missing_hints(plain, "ptflops", 1, "macs", target) == [
        "call: functional on the 1 relu layer that does not state it"]
    # calc verify on the spec without the hint, the tool having run on the F.relu code
    monkeypatch.setattr(oracle, "run_tool", lambda name, *a: target if name == "ptflops" else
                        analyze(plain, convention=name).totals.macs)
    result = verify(plain, batch=1)
    check = next(c for c in result.presets if c.what == "preset ptflops")
    assert check.ok is False
    assert "the tool's figure is calc's with call: functional on the 1 relu layer that does not state it" in check.note
