"""The house: no module in calc/ longer than 600 lines, and no import cycle between them."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "calc"
MAX_LINES = 600


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = modules()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_length(name):
    lines = MODULES[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def _package(name: str) -> str:
    return name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]


def imports_at_load(name: str) -> set[str]:
    """The calc modules that importing ``name`` imports right away: its module-level imports
    (not those inside functions, which run later), and the packages above each of them."""
    tree = ast.parse(MODULES[name].read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package(name).split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    closed = set()
    for mod in found:
        while mod in MODULES:
            closed.add(mod)
            mod = mod.rpartition(".")[0]
    closed.discard(name)
    # a module's own package is being imported already when the module loads
    return {m for m in closed if not name.startswith(m + ".")}


def test_no_import_cycle():
    graph = {name: imports_at_load(name) for name in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
