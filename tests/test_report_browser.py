"""The HTML report in a real browser: Debian's headless Chromium driven by selenium.

Skipped, saying why, when selenium, chromium or chromedriver is missing (install them with
`apt-get install chromium chromium-driver` and `pip install '.[browser]'`); CI installs them
and sets CALC_REQUIRE_BROWSER=1, which turns the skip into a failure. Each page is opened from
file:// and checked: no console message of level warning or worse, the numbers it shows equal
those of `calc analyze --format json`, sorting, folding and the filter work, a screenshot is not
blank, and a 1,000-layer model renders in under 2 seconds."""
import base64
import json
import os
import shutil

import pytest

from calc import parse_spec
from calc import sweep as sw
from calc.cli import main
from conftest import SPECS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
except ImportError:  # pragma: no cover - depends on the machine
    webdriver = None

MISSING = ("selenium is not installed (pip install '.[browser]')" if webdriver is None else
           "chromium is not installed (apt-get install chromium)" if not CHROMIUM else
           "chromedriver is not installed (apt-get install chromium-driver)" if not DRIVER else None)
if MISSING and os.environ.get("CALC_REQUIRE_BROWSER"):
    raise RuntimeError(f"CALC_REQUIRE_BROWSER is set but {MISSING}")
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no browser for the report tests: {MISSING}")

SHOTS = os.environ.get("CALC_REPORT_SCREENSHOTS")   # a folder to keep the screenshots in, if set


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--allow-file-access-from-files"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages")
    lrn = folder / "lrn.yaml"     # a layer type that a tool preset cannot count
    lrn.write_text("name: lrn\ninput: [4, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3}\n"
                   "  - local_response_norm: {size: 2}\n")
    out = {}
    for key, args in {
        "resnet50": ["report", str(SPECS / "resnet50.yaml")],
        "unet": ["report", str(SPECS / "unet.yaml")],
        "gpt2": ["report", str(SPECS / "gpt2.yaml")],
        "sweep": ["sweep", str(SPECS / "resnet50.yaml"), "--set", "width=0.25,0.5,0.75,1.0",
                  "--set", "groups=1,2,4", "--pareto", "macs,params", "--format", "csv", "--report"],
        "compare": ["compare", str(SPECS / "alexnet.yaml"), "--report"],
        "sweep-time": ["sweep", str(SPECS / "resnet18.yaml"), "--set", "width=0.5,1", "--batch", "1,8,64",
                       "--hardware", "t4", "--pareto", "latency,-throughput", "--format", "csv", "--report"],
        "lrn": ["report", str(lrn)],
        "roof": ["report", str(SPECS / "resnet50.yaml"), "--hardware", "t4"],
        "roof-gpt2": ["report", str(SPECS / "gpt2.yaml"), "--hardware", "a100-40gb", "--dtype", "fp16"],
    }.items():
        path = folder / f"{key}.html"
        args = args + ([str(path)] if args[-1] == "--report" else ["-o", str(path)])
        assert main(args) == 0
        out[key] = path
    return out


def open_page(driver, path):
    driver.get(path.as_uri())
    assert driver.execute_script("return window.calcReport && window.calcReport.ready") is True
    return [e for e in driver.get_log("browser") if e["level"] in ("WARNING", "SEVERE")]


def test_a_convention_that_cannot_count_is_listed_disabled(browser, pages):
    open_page(browser, pages["lrn"])
    options = browser.execute_script("return [...document.querySelectorAll('#convention option')]"
                                     ".map(o => [o.value, o.disabled, o.textContent])")
    disabled = [o for o in options if o[1]]
    assert disabled and all("cannot count" in o[2] for o in disabled)
    rows = browser.execute_script("return [...document.querySelectorAll('#conventions tbody tr')]"
                                  ".filter(tr => tr.textContent.includes('cannot count')).length")
    assert rows == len(disabled)


def cli_json(capsys, *args):
    assert main(["analyze", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def visible_rows(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#layers tbody tr[data-i]')].map(tr => "
        "[tr.dataset.name, tr.classList.contains('ns'), [...tr.cells].map(c => c.textContent)])")


@pytest.mark.parametrize("key", ["resnet50", "unet", "gpt2", "sweep", "compare", "lrn", "roof", "roof-gpt2"])
def test_loads_from_file_without_console_errors(browser, pages, key):
    assert open_page(browser, pages[key]) == []
    assert browser.current_url.startswith("file://")


def test_numbers_equal_the_json_output(browser, pages, capsys):
    ref = cli_json(capsys, str(SPECS / "resnet50.yaml"))
    open_page(browser, pages["resnet50"])
    browser.find_element(By.ID, "expand-all").click()
    leaves = [r for r in visible_rows(browser) if not r[1]]
    assert [r[0] for r in leaves] == [x["name"] for x in ref["layers"]]
    for (_, _, cells), layer in zip(leaves, ref["layers"]):
        # name, type, output, params, MACs, readable, share, FLOPs, ...
        assert cells[2] == "×".join(map(str, layer["output_shape"]))
        assert [int(cells[k].replace(",", "")) for k in (3, 4, 7)] == [layer["params"], layer["macs"], layer["flops"]]
    cards = browser.execute_script("return [...document.querySelectorAll('#cards .card')].map(c => "
                                   "[c.children[0].textContent, c.children[1].textContent])")
    cards = {label: value for label, value in cards}
    t = ref["totals"]
    assert int(cards["parameters"].replace(",", "")) == t["params"]
    assert int(cards["MACs"].replace(",", "")) == t["macs"]
    assert int(cards["FLOPs"].replace(",", "")) == t["flops"]
    assert int(cards["parameter memory"].replace(",", "").rstrip(" B")) == t["param_bytes"]
    assert int(cards["activation memory"].replace(",", "").rstrip(" B")) == t["activation_bytes"]
    foot = browser.execute_script("return [...document.querySelectorAll('#layers tfoot td')].map(c => c.textContent)")
    assert int(foot[4].replace(",", "")) == t["macs"]


def test_convention_switch_shows_that_conventions_numbers(browser, pages, capsys):
    ref = cli_json(capsys, str(SPECS / "resnet50.yaml"), "--convention", "thop")
    open_page(browser, pages["resnet50"])
    browser.find_element(By.ID, "expand-all").click()
    browser.execute_script("const s = document.getElementById('convention'); s.value = 'thop';"
                           "s.dispatchEvent(new Event('change'))")
    leaves = [r for r in visible_rows(browser) if not r[1]]
    assert [int(c[4].replace(",", "")) for _, _, c in leaves] == [x["macs"] for x in ref["layers"]]
    foot = browser.execute_script("return [...document.querySelectorAll('#layers tfoot td')].map(c => c.textContent)")
    assert int(foot[4].replace(",", "")) == ref["totals"]["macs"]
    bars = browser.execute_script("return [...document.querySelectorAll('#by-type .bar')].map(b => b.textContent)")
    assert any(b.startswith("conv2d") for b in bars)


def test_collapsing(browser, pages):
    open_page(browser, pages["resnet50"])
    names = [r[0] for r in visible_rows(browser)]
    # ResNet-50 has 199 rows: the page starts with the top level (11 rows: stem, 4 stages, head)
    assert names == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "flatten", "fc"]
    toggle = browser.find_element(By.CSS_SELECTOR, 'tr[data-name="layer1"] button.tog')
    toggle.click()
    names = [r[0] for r in visible_rows(browser)]
    assert names[5:8] == ["layer1.0", "layer1.1", "layer1.2"] and names[8] == "layer2"
    browser.find_element(By.CSS_SELECTOR, 'tr[data-name="layer1"] button.tog').click()
    assert len(visible_rows(browser)) == 11
    browser.find_element(By.ID, "expand-all").click()
    assert len(visible_rows(browser)) == 199


def test_sorting(browser, pages):
    open_page(browser, pages["resnet50"])
    head = browser.find_element(By.CSS_SELECTOR, 'th[data-col="macs"]')
    head.click()                                   # ascending
    macs = [int(r[2][4].replace(",", "")) for r in visible_rows(browser)]
    assert macs == sorted(macs) and len(macs) == 11
    head.click()                                   # descending
    rows = visible_rows(browser)
    macs = [int(r[2][4].replace(",", "")) for r in rows]
    assert macs == sorted(macs, reverse=True) and rows[0][0] == "layer3"   # 1.46 G, the largest stage
    # within an opened namespace, its rows are sorted too
    browser.find_element(By.CSS_SELECTOR, 'tr[data-name="layer3"] button.tog').click()
    names = [r[0] for r in visible_rows(browser)]
    assert names[1] == "layer3.0"                  # the block with the projection costs the most
    browser.find_element(By.CSS_SELECTOR, 'th[data-col="name"]').click()
    names = [r[0] for r in visible_rows(browser) if "." not in r[0]]
    assert names == sorted(names)
    browser.find_element(By.CSS_SELECTOR, 'th[data-col="name"]').click()
    browser.find_element(By.CSS_SELECTOR, 'th[data-col="name"]').click()   # third click: spec order
    assert [r[0] for r in visible_rows(browser)][:2] == ["conv1", "bn1"]


def test_filter(browser, pages, capsys):
    ref = cli_json(capsys, str(SPECS / "resnet50.yaml"))
    open_page(browser, pages["resnet50"])
    box = browser.find_element(By.ID, "filter")
    box.send_keys("downsample")
    rows = visible_rows(browser)
    expected = [x["name"] for x in ref["layers"] if "downsample" in x["name"]]
    assert len(expected) == 8       # a projection (conv + bn) in the first block of each of 4 stages
    assert [r[0] for r in rows if not r[1]] == expected
    # the others are the namespaces around them, shown for context
    assert all(any(e.startswith(r[0] + ".") for e in expected) for r in rows if r[1])
    box.clear()
    box.send_keys("x")
    box.send_keys("\b")
    assert len(visible_rows(browser)) == 11


def test_clicking_a_layer_explains_it(browser, pages, capsys):
    assert main(["explain", str(SPECS / "resnet50.yaml"), "--layer", "layer1.0.conv2"]) == 0
    text = capsys.readouterr().out
    open_page(browser, pages["resnet50"])
    browser.find_element(By.ID, "filter").send_keys("layer1.0.conv2")
    browser.find_element(By.CSS_SELECTOR, 'tr[data-name="layer1.0.conv2"]').click()
    panel = browser.find_element(By.ID, "explain").text
    assert "layer1.0.conv2" in panel
    steps = [s.text for s in browser.find_elements(By.CSS_SELECTOR, "#explain .steps div")]
    assert steps and all(s in text for s in steps)
    assert any(s.endswith("= 115,605,504") for s in steps)
    # the graph marks the layer it explains (layer1 opens when the layer is chosen in the graph)
    assert browser.execute_script("return document.querySelectorAll('#graph rect.node.sel').length") in (0, 1)


def test_graph_draws_branches_skips_and_folds(browser, pages):
    open_page(browser, pages["unet"])
    count = "return document.querySelectorAll('#graph rect.node').length"
    # UNet: 67 layers (calc analyze --format json lists 67); small enough to start fully open: every layer a node, plus the input
    assert browser.execute_script(count) == 1 + 67
    assert browser.execute_script("return document.querySelectorAll('#graph path.skip').length") == 4
    open_page(browser, pages["resnet50"])
    assert browser.execute_script(count) == 1 + 11          # the stages start folded
    browser.find_element(By.ID, "graph-expand").click()
    assert browser.execute_script(count) == 1 + 175         # every layer (175 leaf rows)
    # a residual: its shortcut branch (identity or projection) and the join are drawn
    assert browser.execute_script("return document.querySelectorAll('#graph rect.frame').length") > 16
    browser.find_element(By.ID, "graph-collapse").click()
    assert browser.execute_script(count) == 1 + 11
    # clicking a node explains its layer
    browser.execute_script("document.querySelector('#graph rect[data-row]').parentNode"
                           ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    assert browser.find_element(By.CSS_SELECTOR, "#explain h3").text == "conv1"


def test_sweep_scatter_draws_the_pareto_front(browser, pages, capsys):
    open_page(browser, pages["sweep"])
    front = browser.execute_script("return document.getElementById('scatter').dataset.front")
    spec = parse_spec((SPECS / "resnet50.yaml").read_text(), "resnet50.yaml")
    grid = sw.make_grid(spec, [("width", [0.25, 0.5, 0.75, 1.0]), ("groups", [1, 2, 4])])
    variants = list(sw.sweep((SPECS / "resnet50.yaml").read_text(), "resnet50.yaml", grid))
    flags = sw.pareto_flags(grid, variants, [("macs", False), ("params", False)])
    assert sorted(map(int, front.split(","))) == [v.index for v, f in zip(variants, flags) if f]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#scatter circle")) == 12
    dot = browser.find_element(By.CSS_SELECTOR, "#scatter circle.front")
    ActionChains(browser).move_to_element(dot).perform()
    hover = browser.find_element(By.ID, "hover")
    assert hover.is_displayed() and "width=" in hover.text and "Pareto-optimal" in hover.text
    # another pair of columns: the front follows
    browser.execute_script("const s = document.getElementById('sy'); s.value = 'activation_bytes';"
                           "s.dispatchEvent(new Event('change'))")
    flags = sw.pareto_flags(grid, variants, [("macs", False), ("activation_bytes", False)])
    front = browser.execute_script("return document.getElementById('scatter').dataset.front")
    assert sorted(map(int, front.split(","))) == [v.index for v, f in zip(variants, flags) if f]
    rows = browser.find_elements(By.CSS_SELECTOR, "#variants tbody tr")
    assert len(rows) == 12


def test_sweep_scatter_offers_latency_and_throughput(browser, pages, capsys):
    # sweep --hardware: the scatter starts on the --pareto columns, latency (the JSON's latency_s)
    # against throughput (larger is better), and its front is calc's own Pareto front of them
    open_page(browser, pages["sweep-time"])
    axes = browser.execute_script("return [document.getElementById('sx').value, document.getElementById('sy').value,"
                                  " document.getElementById('sy-dir').value]")
    assert axes == ["latency_s", "throughput", "max"]
    spec = parse_spec((SPECS / "resnet18.yaml").read_text(), "resnet18.yaml")
    grid = sw.make_grid(spec, [("width", [0.5, 1])], batches=[1, 8, 64], hardware="t4")
    variants = list(sw.sweep((SPECS / "resnet18.yaml").read_text(), "resnet18.yaml", grid))
    flags = sw.pareto_flags(grid, variants, [("latency", False), ("throughput", True)])
    front = browser.execute_script("return document.getElementById('scatter').dataset.front")
    assert sorted(map(int, front.split(","))) == [v.index for v, f in zip(variants, flags) if f]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#scatter circle")) == 6


def test_compare_shows_conventions_side_by_side(browser, pages):
    open_page(browser, pages["compare"])
    cells = browser.execute_script("return Object.fromEntries([...document.querySelectorAll('#conventions tbody tr')]"
                                   ".map(tr => [tr.dataset.conv, tr.cells[1].textContent]))")
    # README's table: AlexNet under each convention
    assert cells["standard"] == "714,188,480" and cells["thop"] == "714,206,912"
    assert cells["ptflops"] == "716,441,128" and cells["torchinfo"] == "714,682,664"


def not_blank(driver, png: bytes) -> int:
    """The number of distinct colours in a screenshot, counted by the browser's own decoder."""
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    return driver.execute_async_script("""
        const done = arguments[1], img = new Image();
        img.onload = () => { const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
          const g = c.getContext('2d'); g.drawImage(img, 0, 0); const d = g.getImageData(0, 0, c.width, c.height).data;
          const seen = new Set(); for (let i = 0; i < d.length; i += 16) seen.add((d[i] << 16) | (d[i+1] << 8) | d[i+2]);
          done(seen.size); };
        img.src = arguments[0];""", url)


@pytest.mark.parametrize("width, scheme", [(1280, "light"), (1280, "dark"), (390, "light")])
def test_screenshot_is_not_blank_and_fits(browser, pages, tmp_path, width, scheme):
    browser.set_window_size(width, 1000)
    try:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
        open_page(browser, pages["resnet50"])
        png = browser.get_screenshot_as_png()
        if SHOTS:
            os.makedirs(SHOTS, exist_ok=True)
            with open(os.path.join(SHOTS, f"report-{width}-{scheme}.png"), "wb") as f:
                f.write(png)
        assert not_blank(browser, png) > 20
        bg = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert bg == ("rgb(15, 20, 25)" if scheme == "dark" else "rgb(255, 255, 255)")
        # readable: nothing wider than the window (wide tables scroll inside their own box)
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        browser.set_window_size(1280, 1000)


def test_thousand_layers_render_in_under_two_seconds(browser, tmp_path):
    spec = tmp_path / "deep.yaml"
    # 500 × (3×3 convolution, ReLU): 1,000 layers, each its own row
    spec.write_text("name: deep\ninput: [8, 16, 16]\nlayers:\n  - repeat:\n      times: 500\n      layers:\n"
                    "        - conv2d: {out: 8, kernel: 3, padding: 1}\n        - relu\n")
    out = tmp_path / "deep.html"
    assert main(["report", str(spec), "-o", str(out)]) == 0
    # the browser's own clock: from the start of the navigation to the end of the load event,
    # which comes after the page's script has drawn everything and the browser laid it out. The
    # best of three loads, so that a busy machine (other processes on a shared CI runner)
    # does not decide the figure.
    loads = []
    for _ in range(3):
        assert open_page(browser, out) == []
        loads.append(browser.execute_script(
            "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime"))
    assert 0 < min(loads) < 2000, f"{[round(x) for x in loads]} ms to load and render"
    # the table draws its first 200 rows; the others are a click away
    assert len(visible_rows(browser)) == 200
    browser.find_element(By.ID, "show-all").click()
    assert len(visible_rows(browser)) == 1000
    assert [r[0] for r in visible_rows(browser)][-2:] == ["998", "999"]


# --- the roofline plot and latency cards (calc report --hardware) ------------------------------

def time_json(capsys, *argv):
    assert main(["time", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)["batches"][0]


def plotted(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#roofline circle')].map(c => [c.dataset.name, "
        "c.dataset.flops, c.dataset.bytes, Number(c.dataset.time), c.getAttribute('class'), "
        "Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))])")


@pytest.mark.parametrize("key, argv", [
    ("roof", [str(SPECS / "resnet50.yaml"), "--hardware", "t4"]),
    ("roof-gpt2", [str(SPECS / "gpt2.yaml"), "--hardware", "a100-40gb", "--dtype", "fp16"]),
])
def test_roofline_points_equal_calc_time_json(browser, pages, capsys, key, argv):
    """Every layer `calc time` gives with FLOPs and bytes is a point with its exact numbers and
    bound; the others are listed as not drawn, none lost."""
    ref = time_json(capsys, *argv)
    assert open_page(browser, pages[key]) == []
    assert browser.find_element(By.ID, "roofline-section").is_displayed()
    points = plotted(browser)
    drawn = [x for x in ref["layers"] if x["flops"] and x["bytes"]]
    assert [p[0] for p in points] == [x["name"] for x in drawn]
    for p, x in zip(points, drawn):
        assert (int(p[1]), int(p[2]), p[4]) == (x["flops"], x["bytes"], x["bound"])
        assert p[3] == pytest.approx(x["time_s"], rel=1e-12)
    note = browser.find_element(By.ID, "roofline-note").text
    missing = len(ref["layers"]) - len(drawn)
    assert (f"{missing} layer(s) with no FLOPs or no bytes are not drawn" in note) == (missing > 0)
    # the roof: drawn, bending at the ridge (peak / bandwidth: T4 datasheet, 8.1 TFLOPS fp32 and
    # 320 GB/s; A100 datasheet, 312 TFLOPS fp16 and 1,555 GB/s)
    ridge = float(browser.execute_script("return document.querySelector('#roofline path.roof').dataset.ridge"))
    assert ridge == pytest.approx(8.1e12 / 320e9 if key == "roof" else 312e12 / 1555e9)
    # a point right of the ridge is compute-bound, left of it memory-bound (single-kernel layers)
    ridge_x = browser.execute_script("const r = document.querySelector('#roofline line.ridge'); return Number(r.getAttribute('x1'))")
    for p, x in zip(points, drawn):
        if "kernels" not in x:
            assert (p[5] >= ridge_x - 1e-6) == (x["bound"] == "compute"), p


def test_roofline_latency_cards_equal_calc_time(browser, pages, capsys):
    ref = time_json(capsys, str(SPECS / "resnet50.yaml"), "--hardware", "t4")
    open_page(browser, pages["roof"])
    cards = dict(browser.execute_script("return [...document.querySelectorAll('#latency .card')].map(c => "
                                        "[c.children[0].textContent, c.children[1].textContent])"))
    ms = ref["time_s"] * 1e3
    assert cards["latency"] == f"{ms:,.3f} ms"
    assert cards["throughput"] == f"{ref['samples_per_s']:,.1f} samples/s"
    assert cards["bound"] == f"{ref['compute_bound_share']:.0%} compute-bound"


def test_roofline_hover_shows_the_layer(browser, pages, capsys):
    open_page(browser, pages["roof"])
    circles = browser.find_elements(By.CSS_SELECTOR, "#roofline circle")
    hover = browser.find_element(By.ID, "roofline-hover")
    assert not hover.is_displayed()
    target = circles[len(circles) // 2]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    ActionChains(browser).move_to_element(target).perform()
    assert hover.is_displayed()
    name, flops = target.get_attribute("data-name"), int(target.get_attribute("data-flops"))
    assert hover.text.startswith(name + " (") and f"FLOPs {flops:,}" in hover.text
    ActionChains(browser).move_by_offset(0, 200).perform()
    assert not hover.is_displayed()


def test_no_roofline_without_hardware(browser, pages):
    open_page(browser, pages["resnet50"])
    assert not browser.find_element(By.ID, "roofline-section").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, "#roofline circle") == []


def test_resnet50_report_with_roofline_is_under_a_megabyte(pages):
    assert pages["roof"].stat().st_size < 1_000_000


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_roofline_reads_on_a_phone_and_in_both_themes(browser, pages, scheme):
    browser.set_window_size(390, 1000)
    try:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
        assert open_page(browser, pages["roof"]) == []
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        sec = browser.find_element(By.ID, "roofline-section")
        browser.execute_script("arguments[0].scrollIntoView()", sec)
        assert not_blank(browser, sec.screenshot_as_png) > 5
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        browser.set_window_size(1280, 1000)
