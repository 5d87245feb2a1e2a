"""The documentation says what the code does: the layer page lists exactly the registered types,
the README keeps its two set-up commands (which .ci/run mirrors) and its size, and every relative
link in the README and docs/ leads to a file and heading that exist."""
import re
from pathlib import Path

import pytest

from calc.layers import LAYERS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

INSTALL = ("python3 -m venv .venv && . .venv/bin/activate && pip install . && "
           "calc analyze specs/alexnet.yaml")
TEST = ". .venv/bin/activate && pip install '.[test]' && python -m pytest -q"

FENCE = re.compile(r"^(```|~~~)")
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str):
    """The lines outside fenced code blocks (a `#` comment in a shell example is no heading)."""
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: the text without markup, lower case, punctuation
    dropped (letters, digits, spaces, '-' and '_' kept), spaces turned into '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link keeps its text
    text = text.replace("`", "").replace("*", "").lower()
    return "".join(c for c in text if c.isalnum() or c in " -_").replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


# ---------------------------------------------------------------------------- (a) layer types

def test_layer_page_lists_exactly_the_registered_types():
    # docs/layers.md gives each type (or each group of 1-d/2-d/3-d variants) a level-3 heading
    # made of the type names in code spans, e.g. "### `conv1d`, `conv2d`, `conv3d`".
    listed = []
    for line in prose_lines((DOCS / "layers.md").read_text(encoding="utf-8")):
        if line.startswith("### "):
            listed += re.findall(r"`([a-z0-9_]+)`", line)
    assert len(listed) == len(set(listed)), "a layer type has two sections"
    assert set(listed) == set(LAYERS), (
        f"missing from docs/layers.md: {sorted(set(LAYERS) - set(listed))}; "
        f"not registered: {sorted(set(listed) - set(LAYERS))} (run docs/gen_layers.py)")


# ---------------------------------------------------------------------------- (b) README and CI

def test_readme_is_short_and_keeps_the_set_up_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text) <= 12_000, f"README.md has {len(text):,} characters; move detail to docs/"
    assert INSTALL in text
    assert TEST in text


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    pytest_call = TEST.rsplit("&& ", 1)[1]
    assert pytest_call == "python -m pytest -q"
    assert any(line.strip() == pytest_call for line in ci.splitlines())


# ---------------------------------------------------------------------------- (c) links

def links(page: Path):
    for line in prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):   # http:, https:, mailto: …
                yield target


LINKS = [(page, target) for page in PAGES for target in links(page)]


def test_pages_have_links():
    assert len(PAGES) >= 12 and len(LINKS) > 50


@pytest.mark.parametrize("page, target", LINKS,
                         ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in LINKS])
def test_relative_link_leads_somewhere(page, target):
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    assert dest.exists(), f"{page.relative_to(ROOT)}: {target}: no such file"
    assert ROOT in dest.parents or dest == ROOT, f"{target} leaves the repository"
    if anchor and dest.suffix == ".md":
        assert anchor in anchors(dest), f"{page.relative_to(ROOT)}: {target}: no such heading"


def test_slug_follows_github():
    assert slug("4. Against torchvision and the tools: reference data") == \
        "4-against-torchvision-and-the-tools-reference-data"
    assert slug("2. calc's own conventions") == "2-calcs-own-conventions"
    assert slug("### `conv1d`, `conv2d`".lstrip("# ")) == "conv1d-conv2d"
    assert slug("10.1 AlexNet") == "101-alexnet"


# ---------------------------------------------------------------------------- figures

def convention_figures(page: Path) -> dict[str, tuple[str, str]]:
    """convention -> (AlexNet, ViT-B/16) from a page's table of conventions."""
    text = page.read_text(encoding="utf-8")
    table = text[text.index("| convention | counts | AlexNet | ViT-B/16 |"):]
    rows = table[:table.index("\n\n")].splitlines()[2:]
    out = {}
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0].split("`")[1]] = (cells[2], cells[3])
    return out


def test_conventions_page_states_the_readme_figures():
    # tests/test_compare.py checks the README's table against calc; the page repeats it.
    assert convention_figures(DOCS / "conventions.md") == convention_figures(README)
