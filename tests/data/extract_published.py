"""Extracts torchvision's published figures (parameters, GFLOPS, crop size) from its source into
tests/data/torchvision_published.json.

torchvision publishes, in the metadata of each model's pretrained weights (the ``Weights(...)``
members of the ``*_Weights`` enums in ``torchvision/models/*.py``), the model's parameter count
``num_params`` and ``_ops``, its GFLOPS at the weights' crop size (in fact multiply-adds / 1e9,
rounded to 3 decimals). This script reads those files as text and parses them with :mod:`ast`:
nothing of torchvision is imported, so neither torch nor torchvision's compiled ops are needed.

Usage (from the repository root)::

    pip download --no-deps torchvision==0.28.0 -d /tmp/tv
    python tests/data/extract_published.py /tmp/tv/torchvision-0.28.0-*.whl

The argument is a wheel (read in place) or an unpacked folder holding ``torchvision/``. Only the
image classification models (the modules directly under ``torchvision/models``) are read. Of each
weights' metadata the figures are kept (``num_params``, ``_ops``, ``_file_size``, ``min_size``,
``_metrics``) with the crop and resize size of its transforms; prose (``_docs``), URLs and the
category names are left out.
"""
from __future__ import annotations

import argparse
import ast
import datetime
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "torchvision_published.json"
KEEP_META = ("num_params", "_ops", "_file_size", "min_size", "_metrics")
KEEP_TRANSFORM = ("crop_size", "resize_size")


def sources(path: Path) -> tuple[str, dict[str, str], str]:
    """(torchvision version, {file name: text} of torchvision/models/*.py, sha256 of the input)."""
    pattern = re.compile(r"^torchvision/models/[A-Za-z0-9_]+\.py$")
    if path.is_dir():
        root = path / "torchvision"
        files = {f"torchvision/models/{p.name}": p.read_text(encoding="utf-8")
                 for p in sorted((root / "models").glob("*.py"))}
        version_text = (root / "version.py").read_text(encoding="utf-8")
        for metadata in sorted(path.glob("torchvision-*.dist-info/METADATA"))[:1]:
            version_text = metadata.read_text(encoding="utf-8")
        digest = "(an unpacked folder)"
    else:
        with zipfile.ZipFile(path) as wheel:
            names = sorted(n for n in wheel.namelist() if pattern.match(n))
            files = {n: wheel.read(n).decode("utf-8") for n in names}
            version_text = wheel.read("torchvision/version.py").decode("utf-8")
            metadata = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
            if metadata:   # the version pip knows (version.py may add a build tag, as +cu130)
                version_text = wheel.read(metadata[0]).decode("utf-8")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    match = (re.search(r"^Version:\s*(\S+)", version_text, re.M)
             or re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", version_text, re.M))
    if not match:
        raise SystemExit("no version in the wheel's METADATA or torchvision/version.py")
    return match.group(1), files, digest


def _name(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


class _NotANumber(ast.NodeTransformer):
    """``float("nan")`` (a metric torchvision leaves unmeasured) becomes None: JSON has no NaN."""

    def visit_Call(self, node):
        if _name(node.func) == "float" and len(node.args) == 1 and isinstance(node.args[0], ast.Constant) \
                and str(node.args[0].value).lower() == "nan":
            return ast.copy_location(ast.Constant(None), node)
        return self.generic_visit(node)


def _literal(node):
    return ast.literal_eval(_NotANumber().visit(node))


def _literal_items(node: ast.Dict, keep, scope: dict) -> dict:
    """The kept entries of a dict display, in order, as Python builds it: a ``**NAME`` entry
    spreads the module-level dict display of that name (as ``**_COMMON_META``)."""
    out = {}
    for key, value in zip(node.keys, node.values):
        if key is None:
            spread = scope.get(_name(value))
            if isinstance(spread, ast.Dict):
                out.update(_literal_items(spread, keep, scope))
            continue
        k = ast.literal_eval(key)
        if k in keep:
            out[k] = _literal(value)
    return out


def _transform_sizes(node) -> dict:
    """crop_size / resize_size of ``partial(ImageClassification, crop_size=..., ...)``."""
    if isinstance(node, ast.Call) and _name(node.func) == "partial":
        return {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg in KEEP_TRANSFORM}
    return {}


def weights_of(tree: ast.Module) -> dict[str, dict[str, dict]]:
    """{weights enum: {member: figures}} for every ``class X(WeightsEnum)`` of a module."""
    scope = {stmt.targets[0].id: stmt.value for stmt in tree.body   # module-level NAME = {...}
             if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)}
    enums = {}
    for cls in tree.body:
        if not (isinstance(cls, ast.ClassDef) and any(_name(b) == "WeightsEnum" for b in cls.bases)):
            continue
        members = {}
        for stmt in cls.body:
            if not (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call)
                    and _name(stmt.value.func) == "Weights"):
                continue   # DEFAULT = IMAGENET1K_V2 and the like: an alias, not figures
            kwargs = {kw.arg: kw.value for kw in stmt.value.keywords}
            meta = kwargs.get("meta")
            if not isinstance(meta, ast.Dict):
                raise SystemExit(f"{cls.name}.{stmt.targets[0].id}: meta is not a dict display")
            figures = _literal_items(meta, KEEP_META, scope)
            figures.update(_transform_sizes(kwargs.get("transforms")))
            members[stmt.targets[0].id] = figures
        aliases = {stmt.targets[0].id: _name(stmt.value) for stmt in cls.body
                   if isinstance(stmt, ast.Assign) and isinstance(stmt.value, (ast.Name, ast.Attribute))}
        enums[cls.name] = {"weights": members, "default": aliases.get("DEFAULT")}
    return enums


def builders_of(tree: ast.Module, enums) -> dict[str, str]:
    """{model builder function: its weights enum}, from the annotation of its ``weights`` argument."""
    out = {}
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or fn.name.startswith("_"):
            continue
        for arg in fn.args.kwonlyargs + fn.args.args:
            if arg.arg == "weights" and arg.annotation is not None:
                named = {_name(n) for n in ast.walk(arg.annotation)} & set(enums)
                if len(named) == 1:
                    out[fn.name] = named.pop()
    return out


def extract(path: Path) -> dict:
    version, files, digest = sources(path)
    models = {}
    for name, text in files.items():
        tree = ast.parse(text, filename=name)
        enums = weights_of(tree)
        for builder, enum in sorted(builders_of(tree, enums).items()):
            if not enums[enum]["weights"]:
                continue
            models[builder] = {"source": name, "weights_enum": enum, "default": enums[enum]["default"],
                               "weights": enums[enum]["weights"]}
    if not models:
        raise SystemExit(f"no weights metadata found in {path}")
    return {
        "provenance": {
            "what": "torchvision's published figures of its image classification models, from the weights "
                    "metadata in torchvision/models/*.py: num_params (parameters), _ops (GFLOPS at the "
                    "weights' crop size: multiply-adds / 1e9, rounded to 3 decimals), _file_size (MB), "
                    "min_size, _metrics (null where torchvision gives NaN), and crop_size / resize_size of "
                    "the weights' transforms.",
            "source": f"torchvision {version}, {path.name} (sha256 {digest})",
            "torchvision": version,
            "generated_by": "tests/data/extract_published.py (python tests/data/extract_published.py "
                            "<torchvision wheel from: pip download --no-deps torchvision==" + version + ">)",
            "generated_at_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "left_out": "the _docs prose, recipe URLs and category names of the metadata",
        },
        "models": dict(sorted(models.items())),
    }


def dumps(obj, depth: int = 2, level: int = 0) -> str:
    """JSON spread over lines down to ``depth`` levels, one line per model below that."""
    if level >= depth or not isinstance(obj, dict) or not obj:
        return json.dumps(obj, ensure_ascii=False)
    pad = " " * (level + 1)
    items = [f"{pad}{json.dumps(k)}: {dumps(v, depth, level + 1)}" for k, v in obj.items()]
    return "{\n" + ",\n".join(items) + "\n" + " " * level + "}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="torchvision wheel, or a folder holding torchvision/")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write (default: %(default)s)")
    args = parser.parse_args(argv)
    doc = extract(args.source)
    args.out.write_text(dumps(doc) + "\n", encoding="utf-8")
    print(f"wrote {len(doc['models'])} models to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
