"""analyze's JSON is written a record at a time by hand (calc.render.report._record_text); its
text must be what ``json.dumps(..., indent=2)`` writes (the oracle here), for every kind of value
a record holds. (tests/test_startup.py checks whole reports of every bundled spec the same way.)"""
import json

import pytest

from calc import analyze, parse_spec
from calc.render.report import _record_text, _string, iter_json, to_dict


@pytest.mark.parametrize("text", ["", "conv2d", "features.0", "0…999998", 'a"b', "a\\b", "tab\there", "new\nline",
                                  "\x00\x1f", "del\x7f", "café", "→", "\U0001F600", "quote ' single"])
def test_strings_as_json_writes_them(text):
    assert _string(text) == json.dumps(text)


def _indented(rec):
    # a record inside the layers list: json.dumps at indent 2, shifted by the list's 4 spaces
    return json.dumps(rec, indent=2).replace("\n", "\n    ")


def test_records_as_json_writes_them():
    base = {"name": "blocks.0", "type": "conv2d", "input_shape": [3, 8, 8], "output_shape": [4, 8, 8],
            "params": 108, "weights": 108, "bias": 0, "buffers": 0, "macs": 6912, "flops": 13824, "tied_to": None}
    for rec in (base, {**base, "tied_to": "head"}, {**base, "count": 999_999}, {**base, "input_shape": []},
                {**base, "name": "é\"x"}, {**base, "macs": 10**40}):
        assert _record_text(rec) == _indented(rec)
    # a record of other keys takes the general path
    other = {"name": "x", "extra": [1, 2]}
    assert _record_text(other) == _indented(other)


def test_a_folded_repeat_report_as_json_writes_it():
    # a block repeated 1,000,000 times: the report folds it into a first iteration and one record
    # with "count" (see Analysis.rows)
    a = analyze(parse_spec("name: t\ninput: [4]\nlayers: [{repeat: {times: 1000000, layers: [{linear: {out: 4}}, "
                           "relu]}}]\n", "t.yaml").build())
    text = "".join(iter_json(a))
    assert "\"count\": 999999" in text
    assert text == json.dumps(to_dict(a), indent=2) + "\n"
