"""`calc import hf`: every published config in tests/data/hf_configs round-trips to a spec with the
bundled spec's counts (each bundled count is derived by hand in tests/test_llm.py and checked against
transformers in tests/test_hf_oracle.py); bad configs are clear errors."""
import json
from pathlib import Path

import pytest

from calc import analyze, parse_spec
from calc.cli import main
from calc.importer import hf_spec
from conftest import SPECS
from helpers import run_spec

CONFIGS = Path(__file__).parent / "data" / "hf_configs"


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.json")))
def test_import_round_trips_the_bundled_specs(name, tmp_path, capsys):
    out = tmp_path / f"{name}.yaml"
    assert main(["import", "hf", str(CONFIGS / f"{name}.json"), "--name", name, "-o", str(out)]) == 0
    imported = analyze(parse_spec(out.read_text(), str(out)).build(), input_shape=(8,))
    bundled = run_spec(name, input_shape=(8,))
    assert (imported.totals.params, imported.totals.buffers) == (bundled.totals.params, bundled.totals.buffers)
    assert imported.totals.macs == bundled.totals.macs


def test_imported_spec_is_readable_and_editable():
    cfg = json.loads((CONFIGS / "llama3_8b.json").read_text())
    text = hf_spec(cfg)
    assert "variables: {seq: 4096, vocab: 128256, d: 4096, depth: 32, heads: 32, kv_heads: 8, ffn: 14336}" in text
    assert "blocks:\n  layer:" in text
    small = parse_spec(text, "x.yaml").build({"depth": 2})
    assert analyze(small, input_shape=(4,)).totals.params < 8_030_261_248


@pytest.mark.parametrize("cfg, message", [
    ({"model_type": "bart"}, "model_type 'bart' is not a family calc imports"),
    ({"model_type": "t5", "feed_forward_proj": "gated-mish"}, "feed_forward_proj 'gated-mish' is not one calc imports"),
    ({"model_type": "llama", "hidden_size": 64}, "has no 'num_attention_heads'"),
    ({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
      "vocab_size": 10, "intermediate_size": 8, "layer_types": ["full_attention", "sliding_attention"]},
     "layer_types mixes"),
    ({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
      "vocab_size": 10, "intermediate_size": 8, "hidden_act": "mish"}, "'mish' is not an activation"),
    ([1, 2], "must hold a JSON object"),
])
def test_bad_configs_are_clear_errors(cfg, message, tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    assert main(["import", "hf", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unreadable_config(tmp_path, capsys):
    assert main(["import", "hf", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main(["import", "hf", str(bad)]) == 2
    assert "not JSON" in capsys.readouterr().err


T5_CONFIGS = Path(__file__).parent / "data" / "hf_t5_configs"


@pytest.mark.parametrize("name", sorted(p.stem for p in T5_CONFIGS.glob("*.json")))
def test_import_round_trips_the_bundled_t5_specs(name, tmp_path):
    # T5: two inputs (src encoder tokens, tgt decoder tokens); both lengths set through variables
    out = tmp_path / f"{name}.yaml"
    assert main(["import", "hf", str(T5_CONFIGS / f"{name}.json"), "--name", name, "-o", str(out)]) == 0
    sizes = {"src": 9, "tgt": 4}
    imported = analyze(parse_spec(out.read_text(), str(out)).build(sizes))
    bundled = analyze(parse_spec((SPECS / f"{name}.yaml").read_text(), name).build(sizes))
    assert (imported.totals.params, imported.totals.macs) == (bundled.totals.params, bundled.totals.macs)
