"""`tie` by dotted path, and a bare name that several earlier layers carry (issue 12).
Expected numbers are derived by hand beside each test."""
import pytest

from calc.errors import CalcError, SpecError
from helpers import run_text

TWO = """\
name: t
input: [6]
input_kind: tokens
layers:
  - group:
      name: encoder
      layers:
        - embedding: {vocab: 100, dim: 8, name: embed}
  - group:
      name: decoder
      layers:
        - embedding: {vocab: 100, dim: 8, name: embed, from: input}
  - linear: {out: 100, bias: false, tie: TIE, name: head}
"""


def test_a_dotted_path_names_one_layer():
    a = run_text(TWO.replace("TIE", "decoder.embed"))
    # two embeddings of 100 × 8 = 800 each; the head's 8 × 100 weight is decoder.embed's: 0 more
    assert a.totals.params == 800 + 800
    rows = {r.name: r.result for r in a.rows(leaves_only=True)}
    assert rows["head"].tied_to == "decoder.embed" and rows["head"].params == 0
    # the head reads the decoder's (6, 8): 6 · 8 · 100 = 4,800 MACs
    assert rows["head"].macs == 4_800


def test_a_bare_name_used_twice_lists_the_paths():
    with pytest.raises(CalcError, match=r"tie: 2 earlier layers are named 'embed', so the name does not say which "
                                        r"weight to share: encoder.embed, decoder.embed; write the path of one") as info:
        run_text(TWO.replace("TIE", "embed"))
    assert info.value.path == ("layers", 2, "linear", "tie") and info.value.line == 13


def test_a_path_that_names_nothing():
    with pytest.raises(CalcError, match=r"tie: no earlier layer has the path 'coder.embed'"):
        run_text(TWO.replace("TIE", "coder.embed"))
    # a path is written from the top: inside a group named `model`, encoder.embed is model.encoder.embed
    nested = """\
name: t
input: [6]
input_kind: tokens
layers:
  - group:
      name: model
      layers:
        - group: {name: encoder, layers: [embedding: {vocab: 100, dim: 8, name: embed}]}
  - linear: {out: 100, bias: false, tie: encoder.embed}
"""
    with pytest.raises(CalcError, match=r"did you mean model.encoder.embed\?"):
        run_text(nested)
    # a target that comes later is not an earlier layer
    text = TWO.replace("TIE", "late.w") + "  - group: {name: late, layers: [linear: {out: 3, name: w}]}\n"
    with pytest.raises(CalcError, match=r"no earlier layer has the path 'late.w'"):
        run_text(text)


@pytest.mark.parametrize("tie", ["a..b", "a b", ".a", "a.", "3"])
def test_a_tie_must_be_a_name_or_a_path(tie):
    with pytest.raises(SpecError, match="tie must be the name of an earlier layer or its dotted path"):
        run_text(TWO.replace("TIE", f"'{tie}'"))


def test_a_path_through_positions_and_blocks():
    text = """\
name: t
input: [4]
input_kind: tokens
blocks:
  emb:
    layers:
      - embedding: {vocab: 50, dim: 6, name: table}
layers:
  - emb
  - emb: {from: input}
  - linear: {out: 50, bias: false, tie: 1.table}
"""
    # the blocks are namespaces 0 and 1 (unnamed: their positions); 50 · 6 = 300 each, the head shares 1.table's
    a = run_text(text)
    assert a.totals.params == 600
    with pytest.raises(CalcError, match=r"2 earlier layers are named 'table'.*: 0.table, 1.table"):
        run_text(text.replace("1.table", "table"))


def test_pytorch_shares_the_weight_a_dotted_path_names():
    pytest.importorskip("torch")
    from calc import parse_spec
    from calc.verify import verify
    model = parse_spec(TWO.replace("TIE", "decoder.embed"), "t.yaml").build()
    # the oracle's module ties head.weight to decoder.embed's: PyTorch counts 1,600 parameters
    result = verify(model, batch=2)
    assert all(c.ok for c in result.totals), [c for c in result.totals if not c.ok]
    assert [c.torch for c in result.totals if c.what == "parameters"] == [1_600]
    # (ptflops fails on this token-input model with or without a dotted tie — a bare-name tie
    # gives the same "int() argument ... 'NoneType'" — so only the other presets are checked)
    others = [c for c in result.presets if "ptflops" not in c.what]
    assert others and all(c.ok is not False for c in others), others


def test_a_model_with_ties_too_long_to_walk_is_refused_at_once():
    # The tie check walks the layers in report order; a repeat of a million iterations makes
    # 2,000,002 layers (the embedding, 2 per iteration, the head), past MAX_TIED_WALK (1,000,000): refused
    # without the walk (found by the fuzzer of mutated bundled specs, which hung on it).
    import time
    from calc.limits import MAX_TIED_WALK
    text = """\
name: long
input: [6]
input_kind: tokens
layers:
  - embedding: {vocab: 100, dim: 8, name: embed}
  - repeat:
      times: 1000000
      layers:
        - linear: {out: 8}
        - relu
  - linear: {out: 100, bias: false, tie: embed}
"""
    start = time.process_time()
    with pytest.raises(SpecError, match=r"the model has 2,000,002 layers and uses tie; calc checks ties layer by "
                                        rf"layer in models of at most {MAX_TIED_WALK:,} layers"):
        run_text(text)
    assert time.process_time() - start < 5     # not a walk of two million rows (minutes)
