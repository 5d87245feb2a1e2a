"""The start-up paths (docs/performance.md): what `calc --version` and the parser load, the
layer declarations compiled on first use, and bundled names found without reading every spec,
each agreeing with the slow path it replaces."""
import os
import subprocess
import sys

from conftest import ROOT

from calc import choices, models
from calc.cli import REPORT_FORMATS
from calc.layers import LAYERS
from calc.layers.base import compile_declarations


def _python(code: str, **env) -> str:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=environ, cwd=ROOT).stdout


def test_parser_and_version_load_no_pydantic_and_no_analysis():
    out = _python("import sys, calc.cli\n"
                  "calc.cli.build_parser()\n"
                  "print(sorted(m for m in sys.modules if m.startswith(('pydantic', 'yaml', 'calc.analysis', "
                  "'calc.layers', 'calc.spec'))))")
    assert out.strip() == "[]"


def test_version_exits_through_the_fast_exit():
    done = subprocess.run([sys.executable, "-m", "calc", "--version"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert done.returncode == 0 and done.stdout == "calc 0.1.0\n" and done.stderr == ""
    done = subprocess.run([sys.executable, "-m", "calc", "analyze"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert done.returncode == 2 and "error: calc analyze: the following arguments are required" in done.stderr


def test_lazy_package_names():
    out = _python("import calc, sys\n"
                  "print('calc.analysis' in sys.modules)\n"
                  "from calc import analyze, load_spec, SpecError\n"
                  "print(analyze.__module__, load_spec.__module__, SpecError.__module__)")
    assert out.split("\n")[:2] == ["False", "calc.analysis calc.spec calc.errors"]


def test_report_formats_are_the_renderer_s():
    from calc.render.report import FORMATS, STREAMS
    assert REPORT_FORMATS == tuple(sorted(FORMATS)) == tuple(sorted(STREAMS))


def test_choice_tables_are_the_ones_the_modules_compute_with():
    from calc import analysis, inference, quant
    assert analysis.DTYPE_BYTES is choices.DTYPE_BYTES
    assert inference.KV_BYTES is choices.KV_BYTES and inference.PHASES is choices.PHASES
    assert quant.FORMATS is choices.WEIGHT_FORMATS and quant.SCALE_BYTES is choices.SCALE_BYTES


def test_every_layer_type_s_declarations_compile():
    # They compile on first use; a template the compiler refuses must still fail a test.
    for cls in LAYERS.values():
        compile_declarations(cls)
        assert cls._compiled and "compile_then_call" not in cls._run.__qualname__


def test_a_layer_compiles_on_first_use_and_gives_the_same_values():
    out = _python("from calc.layers import LAYERS\n"
                  "cls = LAYERS['conv2d']\n"
                  "print(cls._compiled)\n"
                  "layer = cls(out=8, kernel=3, padding=1)\n"
                  "print(layer.evaluate((3, 16, 16))[0], cls._compiled)\n"
                  "print(sorted(LAYERS['linear'](out=4).values((6,)).items()) == "
                  "sorted(LAYERS['linear'](out=4).values((6,)).items()))")
    assert out.split("\n")[:3] == ["False", "(8, 16, 16) True", "True"]


def test_find_reads_only_the_specs_that_mention_the_name_and_agrees_with_the_full_list():
    every = models.entries()
    assert every
    for entry in every:
        # the fast path's premise: a name is written in the file that defines it
        assert entry.path.stem == entry.name or entry.name in entry.path.read_text(encoding="utf-8")
    models.entries.cache_clear()
    try:
        for entry in every:
            assert models.find(entry.name) == entry
            assert models.entries.cache_info().currsize == 0    # the full list was not read
        assert models.find("no_such_model") is None
        spec, variant = models.open_named(every[-1].name)
        assert spec.name and variant == every[-1].variant
    finally:
        models.entries.cache_clear()


# ---------------------------------------------------------------------------- memory paths

def _bundled():
    from conftest import SPECS
    return sorted(SPECS.glob("*.yaml"))


def test_streamed_json_is_json_dumps_of_the_whole_document():
    # The command writes the JSON in pieces (calc.render.report.iter_json); the text must be the
    # one json.dumps(to_dict(a), indent=2) writes, byte for byte, for every bundled spec and depth.
    import json

    from calc import analyze, load_spec
    from calc.limits import exact_digits
    from calc.render.report import iter_json, to_dict
    for path in _bundled():
        a = analyze(load_spec(str(path)).build())
        with exact_digits():
            for depth in (None, 1, 2):
                assert "".join(iter_json(a, depth)) == json.dumps(to_dict(a, depth), indent=2) + "\n", path.name


def test_leaf_facts_made_again_are_the_ones_counted_with():
    # A leaf keeps what makes its facts, not the facts (calc.facts.LeafFacts): made again, they
    # must give the counts the analysis made with them, under every convention that counts it.
    from calc import analyze, load_spec
    from calc.conventions import CONVENTIONS
    from calc.errors import ConventionError
    for path in _bundled():
        model = load_spec(str(path)).build()
        for name in ("standard", "exact", "fvcore", "thop"):
            try:
                a = analyze(model, convention=name)
            except ConventionError:
                continue
            conv = CONVENTIONS[name]
            seen = set()
            for row in a.rows(leaves_only=True):
                r = row.result
                if id(r) in seen or r.activations == 0:   # seen, or idle (inference: false)
                    continue
                seen.add(id(r))
                facts = dict(r.facts)
                assert facts == r.facts and len(facts) == len(r.facts) and bool(r.facts)
                count = conv.count(r.layer, facts, 1, r.inputs or r.input_shape, r.output_shape)
                assert (count.macs, count.flops) == (r.macs, r.flops), (path.name, name, row.name)


def test_memory_and_time_choices_are_the_modules_own():
    # The parser reads its choices from calc.choices (no heavy import); the modules that compute
    # must accept exactly those.
    from calc import choices
    from calc.memory import optimizers, tools, training
    from calc.roofline import ATTENTION
    assert tuple(optimizers.OPTIMIZERS) == choices.OPTIMIZER_NAMES
    assert tools.TOOLS == choices.MEMORY_TOOLS
    assert (training.PRECISIONS, training.MASTERS, training.CHECKPOINTING) == \
        (choices.PRECISIONS, choices.MASTERS, choices.CHECKPOINTING)
    assert set(choices.ROOFLINE_ATTENTION) == {*ATTENTION, "sdpa"}


def test_analyze_loads_none_of_the_modules_it_does_not_need():
    # What a whole `calc analyze` imports beyond calc, yaml and pydantic, found with
    # `python -X importtime` (docs/performance.md): asyncio came in through typing_extensions'
    # `deprecated` before 4.16 (hence the minimum in pyproject.toml); difflib only serves the
    # suggestion of a misspelt name (calc.errors.close_matches). (importlib.metadata stays:
    # pydantic's plugin loader imports it at module level, whatever PYDANTIC_DISABLE_PLUGINS says.)
    out = _python("import io, os, sys, contextlib\n"
                  "os.environ['PYDANTIC_DISABLE_PLUGINS'] = '__all__'\n"
                  "import calc.cli\n"
                  "with contextlib.redirect_stdout(io.StringIO()):\n"
                  "    assert calc.cli.run(['analyze', 'resnet50', '--format', 'json']) == 0\n"
                  "print(sorted(set(sys.modules) & {'asyncio', 'difflib'}))")
    assert out.strip() == "[]"
