"""Models by name: the bundled specs, their named variants, and torchvision's published figures.

``calc analyze resnext50_32x4d`` finds the bundled spec or variant of that name; ``calc models``
lists every one with torchvision's published parameter count and GFLOPS beside calc's numbers.

The bundled specs are the files of ``specs/`` (installed as ``calc/zoo``, a link to it in a
source checkout); torchvision's figures are ``published.json`` here, with their provenance.
"""

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import SpecError, close_matches

ZOO = Path(__file__).resolve().parent.parent / "zoo"
PUBLISHED = Path(__file__).resolve().parent / "published.json"


@dataclass(frozen=True)
class Entry:
    """A model reachable by name: a bundled spec (``variant`` None) or one of its variants."""

    name: str
    path: Path
    variant: str | None
    description: str | None


@lru_cache(maxsize=1)
def published() -> dict:
    """torchvision's published figures: {"provenance": {...}, "models": {name: {num_params,
    gflops, crop_size, weights}}}."""
    with open(PUBLISHED, encoding="utf-8") as fh:
        return json.load(fh)


def spec_files() -> list[Path]:
    return sorted(ZOO.glob("*.yaml")) if ZOO.is_dir() else []


_JUST_READ: dict = {}


def _entries_of(path: Path) -> list[Entry]:
    """The names one bundled spec answers to: its own and its variants'."""
    from ..spec import load_spec
    spec = load_spec(str(path))
    _JUST_READ.clear()
    _JUST_READ[path] = spec       # open_named takes it rather than reading the file again
    return [Entry(path.stem, path, None, spec.doc.description),
            *(Entry(name, path, name, variant.description) for name, variant in spec.variants.items())]


def _unique(found: list[Entry]) -> list[Entry]:
    seen: dict[str, Entry] = {}
    for entry in found:
        if entry.name in seen:
            raise SpecError(f"the bundled model name '{entry.name}' is given twice: in {seen[entry.name].path.name} "
                            f"and in {entry.path.name}")
        seen[entry.name] = entry
    return found


@lru_cache(maxsize=1)
def entries() -> tuple[Entry, ...]:
    """Every bundled spec and every variant, sorted by name. A name given twice is an error
    (it would make ``calc analyze NAME`` ambiguous)."""
    found = _unique([e for path in spec_files() for e in _entries_of(path)])
    _JUST_READ.clear()
    return tuple(sorted(found, key=lambda e: e.name))


def find(name: str) -> Entry | None:
    """The bundled spec or variant called ``name``. Only the specs whose file is called so or
    whose text mentions the name are read (another cannot define it; tests/test_startup.py
    checks that every variant's name is written in its file): parsing all of them was most of
    the time of ``calc analyze NAME``. The same names and the same error for a name given twice
    as :func:`entries`."""
    if entries.cache_info().currsize:
        return next((e for e in entries() if e.name == name), None)
    found = []
    for path in spec_files():
        if path.stem == name or name in path.read_text(encoding="utf-8"):
            found += [e for e in _entries_of(path) if e.name == name]
    return _unique(found)[0] if found else None


def looks_like_name(text: str) -> bool:
    """A bundled model's name rather than a file: no directory, no extension."""
    return bool(text) and text != "-" and "/" not in text and "\\" not in text and "." not in text


def open_named(name: str):
    """(Spec, variant or None) of a bundled model; an error lists the nearest names."""
    from ..spec import load_spec
    entry = find(name)
    if entry is None:
        near = close_matches(name, [e.name for e in entries()], n=3)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise SpecError(f"no file '{name}' and no bundled model of that name{hint} "
                        f"(`calc models` lists them)")
    spec = _JUST_READ.pop(entry.path, None)
    return (spec if spec is not None else load_spec(str(entry.path))), entry.variant


@dataclass(frozen=True)
class ModelRow:
    """One line of ``calc models``: calc's numbers at the model's own input, and torchvision's
    published figures where it publishes them."""

    name: str
    spec: str                  # the spec file's name
    variant: str | None
    input_shape: tuple
    params: int
    macs: int
    published_params: int | None
    published_gflops: float | None
    published_crop: int | None

    @property
    def matches(self) -> bool | None:
        """Whether calc agrees with the published figures (parameters exactly; MACs / 1e9
        rounded to the 3 decimals published) at the published crop size; None: nothing published."""
        if self.published_params is None:
            return None
        return (self.params == self.published_params and round(self.macs / 1e9, 3) == self.published_gflops
                and self.input_shape[-2:] == (self.published_crop, self.published_crop))


def catalog() -> list[ModelRow]:
    """Every bundled model and variant, analysed at its own input under the standard convention."""
    from ..analysis import analyze
    from ..spec import load_spec
    figures = published()["models"]
    rows = []
    specs: dict = {}
    for entry in entries():
        spec = specs.get(entry.path)
        if spec is None:
            spec = specs[entry.path] = load_spec(str(entry.path))
        model = spec.build(variant=entry.variant)
        totals = analyze(model).totals
        pub = figures.get(entry.name)
        rows.append(ModelRow(entry.name, entry.path.name, entry.variant, model.input_shape, totals.params,
                             totals.macs, pub and pub["num_params"], pub and pub["gflops"], pub and pub["crop_size"]))
    return rows


def not_bundled() -> list[str]:
    """torchvision's published models that no bundled spec or variant reaches yet."""
    names = {e.name for e in entries()}
    return sorted(n for n in published()["models"] if n not in names)
