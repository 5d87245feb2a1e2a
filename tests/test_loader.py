"""The YAML loader against PyYAML's own safe_load (an independent reading of the same text),
plus the checks calc adds: lines, duplicate keys, tags, merge keys, alias bombs."""
import pytest
import yaml

from calc.errors import InputError
from calc.spec.loader import MAX_NODES, parse_yaml
from conftest import SPECS

DOCS = [
    "a: &x [1, 2]\nb: *x\nc: {d: *x}\n",
    "a: 0x10\nb: 1_000\nc: 1e3\nd: 1.5e3\ne: .inf\nf: ~\ng: yes\nh: 'yes'\ni: !!str 5\nj: '1:30'\n",
    "- a\n- b: c\n  d: [1, {e: f}]\n",
    "k: |\n  multi\n  line\nl: >\n  folded\n",
    "? a\n: b\n",
    "x: !!float 3\ny: !!int '7'\nz: \"q\"\n",
    "1: one\n2.5: x\nnull: y\n",
    "---\na: 1\n...\n",
]


@pytest.mark.parametrize("text", DOCS + [p.read_text() for p in sorted(SPECS.glob("*.yaml"))])
def test_same_data_as_pyyaml(text):
    data, _ = parse_yaml(text, "t.yaml")
    expected = yaml.safe_load(text)
    if isinstance(expected, dict):
        # calc turns keys that are not strings or integers into strings (YAML allows any scalar).
        expected = {k if isinstance(k, (str, int)) and not isinstance(k, bool) else str(k): v
                    for k, v in expected.items()}
    assert data == expected


def test_lines_of_keys_and_items():
    text = "name: x\ninput: [3, 8, 8]\nlayers:\n  - relu\n  - conv2d:\n      out: 4\n      kernel: 3\n"
    _, source = parse_yaml(text, "t.yaml")
    assert source.line_of(("name",)) == 1
    assert source.line_of(("layers", 0)) == 4
    assert source.line_of(("layers", 1, "conv2d")) == 5
    assert source.line_of(("layers", 1, "conv2d", "kernel")) == 7
    # a path below a recorded one falls back to its nearest ancestor
    assert source.line_of(("layers", 1, "conv2d", "kernel", 0)) == 7


@pytest.mark.parametrize("text, fragment, line", [
    ("a: 1\na: 2\n", "duplicate key 'a' (first on line 1)", 2),
    ("a: !!python/object x\n", "is not allowed", 1),
    ("a: !foo 1\n", "'!foo' is not allowed", 1),
    ("a: !!set {x}\n", "is not allowed", 1),
    ("<<: {a: 1}\n", "merge keys", 1),
    ("a: 1\n---\nb: 2\n", "single document", 2),
    ("a: *nope\n", "undefined alias", 1),
    ("[a]: 1\n", "keys must be plain scalars", 1),
    ("", "empty document", None),
    ("# only a comment\n", "empty document", None),
    ("a: [1\n", "malformed YAML", 2),
])
def test_refused(text, fragment, line):
    with pytest.raises(InputError) as info:
        parse_yaml(text, "t.yaml")
    assert fragment in str(info.value)
    assert info.value.line == line


def test_alias_bomb_counts_expanded_values():
    # Each level lists the previous one 10 times: 10**9 values after expansion, 9 lines of text.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    with pytest.raises(InputError, match="more than .* values"):
        parse_yaml("\n".join(lines) + "\n", "bomb.yaml")


def test_alias_below_the_limit_is_shared_not_copied():
    # 10**4 values after expansion: accepted, and the aliased list is the anchored object.
    text = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
           "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    data, _ = parse_yaml(text, "t.yaml")
    assert data == yaml.safe_load(text)
    assert data["c"][3] is data["b"] and data["b"][0] is data["a"]
    assert 10**4 < MAX_NODES


def test_lines_are_read_again_only_when_asked():
    # parse_yaml keeps the text, not a line per path (see calc.spec.loader.Source); the lines are
    # read from the text the first time a message (or calc check) asks, the same as above.
    text = "name: x\ninput: [3, 8, 8]\nlayers:\n  - relu\n  - conv2d:\n      out: 4\n      kernel: 3\n"
    _, source = parse_yaml(text, "t.yaml")
    assert source._lines is None
    from calc.spec import parse_spec
    model = parse_spec(text, "t.yaml").build()
    assert model.line_of(("layers", 1, "conv2d", "kernel")) == 7     # line 7: "kernel: 3"
    assert source.line_of(("layers", 1, "conv2d")) == 5 and source._lines is not None
    assert dict(model.lines) == source.lines


def test_a_duplicate_key_found_without_lines_is_reported_with_them():
    # The first read records no lines; a duplicate key's message names the first one's line,
    # so the text is read again with them: 'd' first on line 3, again on line 4.
    text = "a: 1\nb:\n  d: 1\n  d: 2\n"
    with pytest.raises(InputError) as err:
        parse_yaml(text, "t.yaml")
    assert "duplicate key 'd' (first on line 3)" in str(err.value) and err.value.line == 4
