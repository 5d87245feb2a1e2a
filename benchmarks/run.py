"""calc's benchmarks: how long calc takes, on the machine at hand, against its targets.

    python benchmarks/run.py [--json FILE] [--markdown] [--quick] [--torch-python PATH] [--only SECTIONS]

Prints a table (and with --json writes every figure). Measures:

* whole processes, run in turns so that the machine's load falls on all alike: ``calc analyze
  resnet50 --format json`` and ``calc --version`` next to Python's own start-up, ``import yaml``
  (the yardstick of the start-up target) and the import of pydantic; wall and CPU time (medians)
  and each process's peak memory (``os.wait4``, that process alone);
* in process: analysing an already-loaded ResNet-50, ViT-B/16 and GPT-2, and loading,
  validating and analysing them from YAML (a missing spec is skipped with a note); the memory
  section of ``analyze --format json`` for ResNet-50 and Llama 2 7B beside their analysis;
* scaling: synthetic specs of 1,000, 10,000 and 100,000 layers that are all different from
  each other (so no cache answers for another layer), the CPU time per layer of each step for
  the largest (reading the YAML, validating, building, analysing, writing the JSON), the JSON of the largest written by the
  command (time and peak memory), 100,000 layers of three kinds, and a shape-preserving block
  repeated 10, 1,000 and 1,000,000 times;
* sweeps of ResNet-50 variants: variants per second on one core (distinct networks, and grids
  whose variants share networks; compiled, the default, and the plain path, in turns), and on every core as whole commands streaming CSV (a
  100,000-variant grid, 4,000 distinct networks, one network over 10,000 inputs × batches):
  time, speed-up over ``--jobs 1``, and the peak memory of the largest process;
* the torch-based tools (FlopCounterMode, thop, fvcore, ptflops with both backends, torchinfo) on
  the ResNet-50 built by calc's PyTorch oracle, in process and as whole processes, as ratios to
  calc, when an interpreter with PyTorch is available (this one, or --torch-python); otherwise
  the reference timings of those tools on this machine type are quoted, labelled as such.

Whole-process runs use this interpreter (``python -m calc``, what the ``calc`` script runs)
with bytecode caching allowed, as in an installed package.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPECS = ROOT / "specs"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import reference_timings as ref  # noqa: E402
import synthetic  # noqa: E402
from calc import analyze, load_spec, parse_spec  # noqa: E402
from calc import sweep as sw  # noqa: E402

RESULTS: list[dict] = []
NOTES: list[str] = []


def record(section, name, value, unit, target=None, holds=None, **extra):
    RESULTS.append({"section": section, "name": name, "value": value, "unit": unit,
                    "target": target, "holds": holds, **extra})


def per_call(fn, repeats=7, min_time=0.05):
    """Median seconds per call: each of ``repeats`` samples runs fn enough times to last min_time."""
    number, start = 1, time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if first < min_time:
        number = max(1, int(min_time / max(first, 1e-7)))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def measure(cmd, env=None):
    """(wall seconds, CPU seconds, peak resident memory in MiB) of one run of ``cmd``, started by
    the small launcher ``peak.py`` (see there: Linux would otherwise count this benchmark's own
    size as the command's peak) and read with ``os.wait4`` for that process alone: its peak is
    the largest of its own and of the workers it waited for (never a sum)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "peak.json"
        subprocess.run([sys.executable, str(HERE / "peak.py"), str(result), *map(str, cmd)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        found = json.loads(result.read_text())
    if found["code"] != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited with {found['code']}")
    return found["seconds"], found["cpu"], found["peak_kib"] / 1024


def wall(cmd, runs, env=None):
    return statistics.median(measure(cmd, env)[0] for _ in range(runs))


def interleaved(cmds: dict, runs: int, env=None) -> dict:
    """Median wall seconds, median CPU seconds and peak MiB of each command, run in turns (one
    of each per round), so that a change in the machine's load falls on all of them alike."""
    samples = {k: [] for k in cmds}
    for _ in range(runs):
        for key, cmd in cmds.items():
            samples[key].append(measure(cmd, env))
    return {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v), max(x[2] for x in v))
            for k, v in samples.items()}


def process_env():
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)   # as installed: modules load from bytecode
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ---------------------------------------------------------------------------- whole process

def bench_process(runs):
    env = process_env()
    py = sys.executable
    calc = [py, "-m", "calc"]
    subprocess.run(calc + ["analyze", "resnet50"], env=env, stdout=subprocess.DEVNULL, check=True)  # bytecode
    found = interleaved({
        "pass": [py, "-c", "pass"],
        "yaml": [py, "-c", "import yaml"],
        "pydantic": [py, "-c", "import yaml, pydantic; from pydantic import BaseModel"],
        "version": calc + ["--version"],
        "analyze": calc + ["analyze", "resnet50", "--format", "json"],
    }, runs, env)
    yaml_t = found["yaml"][0]
    labels = {"pass": "python -c pass (interpreter start-up)", "yaml": "python -c 'import yaml'",
              "pydantic": "python -c 'import yaml, pydantic; from pydantic import BaseModel'",
              "version": "calc --version", "analyze": "calc analyze resnet50 --format json"}
    for key, (t, cpu, peak) in found.items():
        target = holds = None
        if key == "analyze":
            target, holds = "≤ 100 ms and ≤ 3× import yaml", t <= 0.1 and t <= 3 * yaml_t
        record("process", labels[key], t, "s", target, holds, cpu_s=cpu, peak_rss_mib=peak,
               ratio_to_yaml=t / yaml_t)
    return found["analyze"][0]


# ---------------------------------------------------------------------------- in process

def bench_models():
    figures = {}
    for name in ("resnet50", "vit_b_16", "gpt2"):
        path = SPECS / f"{name}.yaml"
        if not path.exists():
            NOTES.append(f"specs/{name}.yaml is missing: its in-process figures are skipped")
            continue
        model = load_spec(str(path)).build()
        loaded = per_call(lambda: analyze(model))
        full = per_call(lambda: analyze(load_spec(str(path)).build()))
        target = "≤ 2 ms" if name == "resnet50" else None
        record("in process", f"analyse loaded {name}", loaded, "s", target,
               loaded <= 0.002 if target else None)
        record("in process", f"load + validate + analyse {name} from YAML", full, "s")
        figures[name] = (loaded, full)
    bench_memory_section()
    return figures


def bench_memory_section():
    """The `memory` section `analyze --format json` adds (one activation walk for the training
    step's saved activations and the inference peak), beside the analysis it describes."""
    from calc.render.memory import analysis_memory
    for name in ("resnet50", "llama2_7b"):
        path = SPECS / f"{name}.yaml"
        if not path.exists():
            continue
        model = load_spec(str(path)).build()
        # on a fresh analysis each time (the section must not find a leaf's facts made already):
        # the analysis and its section, less the analysis alone
        alone = per_call(lambda: analyze(model))
        both = per_call(lambda: analysis_memory(analyze(model)))
        record("in process", f"analyze --format json's memory section, {name}", both - alone, "s",
               ratio_to_analysis=(both - alone) / alone)


def _cpu(fn):
    """(result, CPU seconds) of one call."""
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def bench_phases(path: Path, n: int):
    """CPU time per layer of each step from the spec's text to the JSON report (in process, as
    `calc analyze --format json` runs them: the collector paused throughout)."""
    import gc

    from calc.limits import exact_digits
    from calc.render.report import iter_json
    from calc.spec import Spec, parse_yaml, validate_doc
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        text = path.read_text()
        (data, source), t_yaml = _cpu(lambda: parse_yaml(text, str(path)))
        doc, t_valid = _cpu(lambda: validate_doc(data, source))
        model, t_build = _cpu(lambda: Spec(doc, source).build())
        del data, doc
        a, t_analyse = _cpu(lambda: analyze(model))
        with exact_digits():
            _, t_json = _cpu(lambda: sum(len(piece) for piece in iter_json(a)))
    finally:
        if was:
            gc.enable()
    phases = {"read YAML": t_yaml, "validate": t_valid, "build": t_build, "analyse": t_analyse,
              "write JSON": t_json}
    record("scaling", f"{n:,} distinct layers, CPU per layer: "
           + ", ".join(f"{k} {1e6 * v / n:.1f} µs" for k, v in phases.items()),
           sum(phases.values()), "s", per_layer_us=1e6 * sum(phases.values()) / n,
           phases_us={k: 1e6 * v / n for k, v in phases.items()})


def bench_scaling(quick):
    with tempfile.TemporaryDirectory() as tmp:
        # All-distinct layers: no cache answers for another layer, so this is the cost per layer.
        per_layer = {}
        for n in (1_000, 10_000, 100_000):
            path = Path(tmp) / f"distinct_{n}.yaml"
            path.write_text(synthetic.distinct(n))
            runs = 1 if quick or n == 100_000 else 3
            total = statistics.median(_timed(lambda: analyze(load_spec(str(path)).build())) for _ in range(runs))
            model = load_spec(str(path)).build()
            only = statistics.median(_timed(lambda: analyze(model)) for _ in range(runs))
            per_layer[n] = total / n
            target = "≤ 1 s" if n == 100_000 else None
            record("scaling", f"{n:,} distinct layers: load + validate + analyse", total, "s", target,
                   total <= 1.0 if target else None, per_layer_us=1e6 * total / n)
            record("scaling", f"{n:,} distinct layers: analyse (loaded)", only, "s", per_layer_us=1e6 * only / n)
        growth = per_layer[100_000] / per_layer[1_000]
        record("scaling", "time per distinct layer, 100,000 vs 1,000 layers", growth, "×", "≈ 1 (linear)",
               growth <= 2.0)
        # The whole command writing the JSON of 100,000 distinct layers (streamed).
        path = Path(tmp) / "distinct_100000.yaml"
        bench_phases(path, 100_000)
        t, cpu, peak = measure([sys.executable, "-m", "calc", "analyze", str(path), "--format", "json"],
                               process_env())
        record("scaling", "calc analyze (100,000 distinct layers) --format json, whole process: peak memory",
               peak, "MiB", "≤ 150 MiB", peak <= 150, wall_s=t)
        # Layers that repeat (3 distinct convolutions, as most real networks): the caches answer.
        n = 100_000
        path = Path(tmp) / f"flat_{n}.yaml"
        path.write_text(synthetic.flat(n))
        total = _timed(lambda: analyze(load_spec(str(path)).build()))
        record("scaling", f"{n:,} layers of 3 distinct kinds: load + validate + analyse", total, "s",
               per_layer_us=1e6 * total / n)
        rep = {}
        for n in (10, 1_000, 1_000_000):
            model = parse_spec(synthetic.repeated(n), f"repeat_{n}.yaml").build()
            rep[n] = per_call(lambda: analyze(model))
            record("scaling", f"block repeated {n:,} times: analyse", rep[n], "s")
        flatness = rep[1_000_000] / rep[10]
        record("scaling", "repeat cost, 1,000,000 vs 10 times", flatness, "×", "≈ 1 (constant)",
               flatness <= 2.0)


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- sweeps

def bench_sweeps(quick):
    path = SPECS / "resnet50.yaml"
    text = path.read_text()
    spec = parse_spec(text, str(path))
    widths = [k / 64 for k in range(16, 80)]
    grids = {
        "distinct networks (64 widths × 16 widths per group)":
            sw.make_grid(spec, [("width", widths), ("width_per_group", list(range(16, 80, 4)))]),
        "16 widths × 4 depths × 4 inputs":
            sw.make_grid(spec, [("width", widths[16:48:2]),
                                ("layers", [[2, 2, 2, 2], [3, 4, 6, 3], [3, 4, 23, 3], [3, 8, 36, 3]])],
                         [(3, r, r) for r in (160, 192, 224, 256)]),
        "32 widths × 4 inputs × 8 batch sizes":
            sw.make_grid(spec, [("width", widths[16:48])], [(3, r, r) for r in (160, 192, 224, 256)],
                         [1, 2, 4, 8, 16, 32, 64, 128]),
    }
    for label, grid in grids.items():
        # A/B in turns: compiled (the default, calc/sweep_compile.py) and the plain path, which
        # builds and analyses every variant; the best of each.
        # Wall time, and CPU time, which another process's load on the machine changes less.
        times = {True: [], False: []}
        cpu = {True: [], False: []}
        for _ in range(1 if quick else 3):
            for compiled in (True, False):
                c0 = time.process_time()
                times[compiled].append(_timed(lambda: sum(1 for _ in sw.sweep(
                    text, str(path), grid, jobs=1, compile=None if compiled else False))))
                cpu[compiled].append(time.process_time() - c0)
        rate, plain = len(grid) / min(times[True]), len(grid) / min(times[False])
        distinct = label.startswith("distinct")
        target = "≥ 10,000 /s per core" if distinct else "≥ 1,000 /s per core"
        record("sweep", f"ResNet-50 sweep, 1 core, {label}", rate, "variants/s", target,
               rate >= (10_000 if distinct else 1_000), variants=len(grid), plain=plain,
               cpu_rate=len(grid) / min(cpu[True]), cpu_plain=len(grid) / min(cpu[False]))
    if quick:
        NOTES.append("--quick: the sweeps on every core are skipped")
        return
    cores = os.cpu_count() or 1
    env = process_env()
    base = [sys.executable, "-m", "calc", "sweep", str(path), "--format", "csv"]
    grids = {
        f"100,000-variant sweep to CSV (125 networks × 10 inputs × 80 batches), {cores} cores":
            ["--set", "width=" + ",".join(str(k / 64) for k in range(32, 57)),
             "--set", "width_per_group=32,48,64,80,96",
             "--input", ",".join(f"3x{r}x{r}" for r in range(128, 288, 16)),
             "--batch", ",".join(str(b) for b in range(1, 81))],
        f"sweep of 4,000 distinct networks to CSV (80 widths × 50 widths per group), {cores} cores":
            ["--set", "width=" + ",".join(str(k / 64) for k in range(16, 96)),
             "--set", "width_per_group=" + ",".join(str(k) for k in range(16, 116, 2))],
        f"sweep of one network to CSV (40 inputs × 250 batches), {cores} cores":
            ["--input", ",".join(f"3x{r}x{r}" for r in range(64, 384, 8)),
             "--batch", ",".join(str(b) for b in range(1, 251))],
    }
    for label, args in grids.items():
        n = 1
        for flag, values in zip(args[::2], args[1::2]):
            n *= len(values.split(","))
        t, cpu, peak = measure(base + args, env)
        t1, _, _ = measure(base + args + ["--jobs", "1"], env)
        record("sweep", label, n / t, "variants/s", wall_s=t, per_core=n / t / cores, peak_rss_mib=peak,
               speedup=t1 / t, cpu_s=cpu)


# ---------------------------------------------------------------------------- torch-based tools

def torch_python(option):
    candidates = [option] if option else [sys.executable]
    for py in candidates:
        ok = subprocess.run([py, "-c", "import torch"], capture_output=True).returncode == 0
        if ok:
            return py
    return None


def bench_tools(py, calc_loaded, calc_full, calc_whole, quick):
    resnet = SPECS / "resnet50.yaml"
    if py is None:
        NOTES.append("PyTorch is not importable here (give --torch-python PATH): the tools are "
                     "not measured; their reference timings on this machine type are quoted instead")
        _quote_reference(calc_loaded, calc_whole)
        return
    env = process_env()
    script = str(HERE / "torch_tools.py")
    out = subprocess.run([py, script, "inprocess", str(resnet), "--repeats", "3" if quick else "5"],
                         capture_output=True, text=True, env=env)
    try:
        found = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        found = {"skipped": (out.stderr.strip().splitlines() or ["no output"])[-1]}
    if "skipped" in found:
        NOTES.append(f"the PyTorch oracle could not build specs/resnet50.yaml ({found['skipped']}): "
                     "the tools are not measured; their reference timings are quoted instead")
        _quote_reference(calc_loaded, calc_whole)
        return
    measured = {}
    for tool, res in found["tools"].items():
        if "skipped" in res:
            NOTES.append(f"{tool}: {res['skipped']}; skipped")
            continue
        t_whole = wall([py, script, "whole", str(resnet), tool], 1 if quick else 3, env)
        measured[tool] = (res["seconds"], t_whole)
        record("tools", f"{tool}: count a built ResNet-50 (in process)", res["seconds"], "s",
               ratio_to_calc_loaded=res["seconds"] / calc_loaded, ratio_to_calc_from_yaml=res["seconds"] / calc_full)
        record("tools", f"{tool}: whole process (import, build, count)", t_whole, "s",
               ratio_to_calc=t_whole / calc_whole)
    if measured:
        _ratios(measured, calc_loaded, calc_whole, "measured in this run")


def _quote_reference(calc_loaded, calc_whole):
    quoted = {tool: (ref.CALL[tool], ref.whole_process(tool)) for tool in ref.CALL}
    for tool, (call, whole) in quoted.items():
        record("tools (reference)", f"{tool}: count a built ResNet-50 (reference)", call, "s",
               ratio_to_calc_loaded=call / calc_loaded)
        record("tools (reference)", f"{tool}: whole process (reference: start-up + import + build + count)",
               whole, "s", ratio_to_calc=whole / calc_whole)
    _ratios(quoted, calc_loaded, calc_whole, "reference timings")


def _ratios(figures, calc_loaded, calc_whole, source):
    fastest_in = min(figures, key=lambda t: figures[t][0])
    fastest_whole = min(figures, key=lambda t: figures[t][1])
    r_in = figures[fastest_in][0] / calc_loaded
    r_whole = figures[fastest_whole][1] / calc_whole
    record("ratios", f"fastest tool in process ({fastest_in}, {source}) / calc on a loaded ResNet-50",
           r_in, "×", "≥ 30×", r_in >= 30)
    record("ratios", f"fastest tool whole process ({fastest_whole}, {source}) / calc analyze",
           r_whole, "×", "≥ 5×", r_whole >= 5)


# ---------------------------------------------------------------------------- report

def fmt_value(r):
    v, unit = r["value"], r["unit"]
    if unit == "s":
        return f"{v * 1e3:,.2f} ms" if v < 1 else f"{v:,.2f} s"
    if unit == "×":
        return f"{v:,.2f}×"
    return f"{v:,.0f} {unit}"


def table(markdown: bool = False) -> str:
    rows = [("measurement", "value", "target", "holds")]
    for r in RESULTS:
        extra = []
        if "per_layer_us" in r:
            extra.append(f"{r['per_layer_us']:.2f} µs/layer")
        if "ratio_to_calc_loaded" in r:
            extra.append(f"{r['ratio_to_calc_loaded']:,.0f}× calc")
        if "ratio_to_analysis" in r:
            extra.append(f"{r['ratio_to_analysis']:,.1f}× the analysis")
        if "ratio_to_calc" in r:
            extra.append(f"{r['ratio_to_calc']:,.1f}× calc")
        if "ratio_to_yaml" in r:
            extra.append(f"{r['ratio_to_yaml']:.2f}× import yaml; CPU {r['cpu_s'] * 1e3:,.0f} ms; "
                         f"peak {r['peak_rss_mib']:,.0f} MiB")
        if "plain" in r:
            extra.append(f"plain path {r['plain']:,.0f}/s: {r['value'] / r['plain']:.1f}×; per CPU second "
                         f"{r['cpu_rate']:,.0f}/s, plain {r['cpu_plain']:,.0f}/s")
        if "per_core" in r:
            extra.append(f"{r['wall_s']:.1f} s, {r['per_core']:,.0f}/s per core, {r['speedup']:.2f}× --jobs 1, "
                         f"peak {r['peak_rss_mib']:,.0f} MiB per process")
        if r["unit"] == "MiB" and "wall_s" in r:
            extra.append(f"{r['wall_s']:.1f} s")
        value = fmt_value(r) + (f" ({'; '.join(extra)})" if extra else "")
        holds = "" if r["holds"] is None else ("yes" if r["holds"] else "NO")
        rows.append((f"[{r['section']}] {r['name']}", value, r["target"] or "", holds))
    if markdown:
        lines = ["| " + " | ".join(row) + " |" for row in rows]
        lines.insert(1, "|---|---:|---|---|")
        return "\n".join(lines) + "\n"
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "─" * len(lines[0]))
    return "\n".join(lines) + "\n"


def machine():
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cores": os.cpu_count(), "load_average": os.getloadavg(), "executable": sys.executable}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    p.add_argument("--quick", action="store_true", help="fewer runs; skip the 100,000-variant sweep")
    p.add_argument("--torch-python", metavar="PATH", help="an interpreter with PyTorch for the tools")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--only", metavar="SECTIONS", help="comma-separated sections to run: process, models, "
                   "scaling, sweeps, tools (tools needs process and models)")
    args = p.parse_args(argv)
    only = set(args.only.split(",")) if args.only else {"process", "models", "scaling", "sweeps", "tools"}
    unknown = only - {"process", "models", "scaling", "sweeps", "tools"}
    if unknown:
        p.error(f"unknown section {', '.join(sorted(unknown))}")
    if "tools" in only:
        only |= {"process", "models"}
    info = machine()
    start = time.perf_counter()
    have_resnet = (SPECS / "resnet50.yaml").exists()
    calc_whole = bench_process(5 if args.quick else 15) if have_resnet and "process" in only else None
    models = bench_models() if "models" in only else {}
    if "scaling" in only:
        bench_scaling(args.quick)
    if have_resnet:
        if "sweeps" in only:
            bench_sweeps(args.quick)
        if "tools" in only:
            loaded, full = models["resnet50"]
            bench_tools(torch_python(args.torch_python), loaded, full, calc_whole, args.quick)
    else:
        NOTES.append("the whole-process, sweep and tool figures need specs/resnet50.yaml: skipped")
    info["load_average_after"] = os.getloadavg()
    info["seconds"] = time.perf_counter() - start
    sys.stdout.write(f"calc benchmarks · Python {info['python']} · {info['cores']} cores · load average "
                     f"{info['load_average'][0]:.2f} before, {info['load_average_after'][0]:.2f} after · "
                     f"{info['seconds']:.0f} s\n\n")
    sys.stdout.write(table(args.markdown))
    for note in NOTES:
        sys.stdout.write(f"note: {note}\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "results": RESULTS, "notes": NOTES}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
