"""Real-browser test of the explorer: JupyterLab on 127.0.0.1, driven by headless Chromium (Playwright).

What it proves: in a real JupyterLab page, running a notebook that builds `widgets.explore(...)` on a
lite model renders the explorer (sliders, <audio> players, a plotly figure); moving the top-k slider
with the keyboard changes the heatmap player's `src` (new WAV bytes) and the plotted data. A second
notebook builds the same explorer with its recomputation replaced by a no-op (a widget that stopped
updating), and the very same check must then fail, so the test cannot pass vacuously.

Needs Debian's Chromium (`apt-get install -y chromium`, at /usr/bin/chromium or $AXK_CHROMIUM) and the
`playwright` Python package (its own browser downloads are never used). Without them the test skips,
unless AXK_REQUIRE_BROWSER=1 (CI), where that is a failure. Screenshots go to artifacts/browser/.
"""
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import require_or_skip

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM = os.environ.get("AXK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ENV = "AXK_REQUIRE_BROWSER"


def _prerequisites():
    have_pw = importlib.util.find_spec("playwright") is not None
    require_or_skip(have_pw, "the playwright Python package is not installed (pip install playwright)", ENV)
    require_or_skip(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (apt-get install -y chromium)", ENV)
    require_or_skip(importlib.util.find_spec("jupyterlab") is not None, "JupyterLab is not installed", ENV)


def _notebook(data_dir: Path, frozen: bool) -> dict:
    "A notebook that builds the explorer on a random-weight audionet-lite over a tiny synthetic corpus."
    setup = (
        "import os\n"
        "os.environ['AUDIO_XAI_KIT_PROGRESS'] = '0'\n"
        "from audio_xai_kit import data, models, widgets\n"
        f"corpus = data.make_synth_corpus({str(data_dir)!r}, n_speakers=2, n_takes=2, verbose=False)\n"
        "model = models.build_model('audionet-lite', 10, seed=0)\n"
        "ex = widgets.explore(model, corpus)")
    sabotage = ("# a widget that stopped updating: the recomputation behind every gate slider is a no-op\n"
                "ex._gate = lambda *args, **kwargs: None")
    cells = [setup] + ([sabotage] if frozen else []) + ["ex"]
    return {"cells": [{"cell_type": "code", "metadata": {}, "source": c, "execution_count": None, "outputs": []} for c in cells],
            "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "A JupyterLab server on 127.0.0.1 with a token, a temporary root dir and the two test notebooks."
    _prerequisites()
    root = tmp_path_factory.mktemp("lab")
    work, cfg = root / "notebooks", root / "config"
    work.mkdir(); (cfg / "labconfig").mkdir(parents=True)
    # the news toast would only cover the page in screenshots
    (cfg / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    from audio_xai_kit import data   # make the tiny corpus once, here, so the two kernels never race for it
    data.make_synth_corpus(root / "synth", n_speakers=2, n_takes=2, verbose=False)
    for name, frozen in (("explorer.ipynb", False), ("explorer_frozen.ipynb", True)):
        (work / name).write_text(json.dumps(_notebook(root / "synth", frozen)))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(cfg), JUPYTER_RUNTIME_DIR=str(root / "runtime"),
               AUDIO_XAI_KIT_DATA=str(root / "data"), AUDIO_XAI_KIT_PROGRESS="0",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    log = open(root / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         f"--LabServerApp.workspaces_dir={root / 'workspaces'}", "--ServerApp.open_browser=False"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{(root / 'jupyterlab.log').read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read(); break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {base} in 90 s:\n{(root / 'jupyterlab.log').read_text()[-3000:]}")
                time.sleep(0.3)
        yield dict(base=base, token=token, root=root)
    finally:
        proc.terminate()
        try: proc.wait(15)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait(5)
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


# What the page shows: the heatmap player's src and a summary (length, sum of |values|) of every trace's data
# as plotly holds it in the DOM (`gd._fullData`, after plotly decoded the binary arrays).
_STATE_JS = """() => {
  const audio = document.querySelector('audio.axk-audio-heatmap');
  const gd = document.querySelector('.axk-figure .js-plotly-plot');
  const flat = v => (v == null) ? [] : (typeof v === 'object' && v.length !== undefined) ? Array.from(v).flatMap(flat) : [Number(v)];
  const traces = gd ? (gd._fullData || []).map(t => { const a = flat(t.z != null ? t.z : t.y);
      return [a.length, Math.round(a.reduce((s, x) => s + Math.abs(x), 0) * 1e6) / 1e6]; }) : null;
  return {src: audio ? audio.src : null, traces: traces};
}"""

_KERNEL_IDLE_JS = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle'; }"""


def _drive(browser, lab, notebook: str, shots: str, wait_s: float) -> dict:
    "Open `notebook`, run all cells, move the top-k slider with the keyboard; the page state before and after."
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    console = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    try:
        page.goto(f"{lab['base']}/lab/tree/{notebook}?token={lab['token']}&reset", timeout=60_000)
        page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=90_000)
        page.wait_for_function(_KERNEL_IDLE_JS, timeout=90_000)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            page.wait_for_selector(".axk-top-k .noUi-handle", timeout=120_000)
            page.wait_for_function("""() => { const a = document.querySelector('audio.axk-audio-heatmap');
                const gd = document.querySelector('.axk-figure .js-plotly-plot');
                return a && a.src && gd && gd._fullData && gd._fullData.length > 0; }""", timeout=60_000)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"{shots}-failed.png"), full_page=True)
            outputs = page.evaluate("() => Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(e => e.innerText).join('\\n')")
            raise AssertionError(f"the explorer did not render in {notebook}; cell outputs:\n{outputs[-3000:]}\n"
                                 f"console:\n" + "\n".join(console[-20:]))
        page.wait_for_timeout(500)   # let plotly finish its first draw
        before = page.evaluate(_STATE_JS)
        page.locator(".axk-explorer").first.screenshot(path=str(ARTIFACTS / f"{shots}-before.png"))
        handle = page.locator(".axk-top-k .noUi-handle").first
        handle.scroll_into_view_if_needed(); handle.focus()
        # time from the key press to the new src, as the page sees it
        page.evaluate("""() => { const a = document.querySelector('audio.axk-audio-heatmap');
            window.__axk = {t0: null, t1: null};
            new MutationObserver(() => { if (window.__axk.t1 === null) window.__axk.t1 = performance.now(); })
                .observe(a, {attributes: true, attributeFilter: ['src']});
            document.addEventListener('keydown', () => { if (window.__axk.t0 === null) window.__axk.t0 = performance.now(); },
                                      {capture: true, once: true}); }""")
        page.keyboard.press("ArrowRight")   # one step (25 -> 26 %): the latency measured is this one's
        page.keyboard.press("End")          # then to 100 %
        readout = page.locator(".axk-top-k .widget-readout").first.inner_text()
        try:
            page.wait_for_function(f"() => document.querySelector('audio.axk-audio-heatmap').src !== {json.dumps(before['src'])}",
                                   timeout=int(wait_s * 1000))
            page.wait_for_timeout(800)   # the figure's patch follows the audio's in the same batch of messages
        except Exception:
            pass   # no change: reported through `after`, judged by `assert_explorer_updated`
        after = page.evaluate(_STATE_JS)
        t = page.evaluate("() => window.__axk")
        latency_ms = (t["t1"] - t["t0"]) if t and t["t0"] is not None and t["t1"] is not None else None
        page.locator(".axk-explorer").first.screenshot(path=str(ARTIFACTS / f"{shots}-after.png"))
        page.screenshot(path=str(ARTIFACTS / f"{shots}-page.png"), full_page=True)
        return dict(before=before, after=after, readout=readout, console=console, latency_ms=latency_ms)
    finally:
        page.close()


def assert_explorer_updated(r: dict):
    "The slider moved, and both the heatmap audio and the plotted data changed."
    b, a = r["before"], r["after"]
    assert r["readout"].strip() == "100", f"the top-k slider did not move to its end with the keyboard: readout {r['readout']!r}"
    assert b["src"] and a["src"], f"no audio src: before {b['src']!r}, after {a['src']!r}"
    assert a["src"] != b["src"], f"the heatmap <audio> src did not change after moving top-k ({a['src']})"
    assert a["traces"] != b["traces"], f"the figure's data did not change after moving top-k: {a['traces']}"


def test_explorer_updates_in_browser(browser, lab):
    t0 = time.monotonic()
    r = _drive(browser, lab, "explorer.ipynb", "explorer", wait_s=30)
    assert_explorer_updated(r)
    assert len(r["after"]["traces"]) == 4 and all(n == 8000 for n, _ in r["after"]["traces"]), r["after"]["traces"]
    lat = "n/a" if r["latency_ms"] is None else f"{r['latency_ms']:.0f} ms"
    print(f"\nbrowser: notebook opened, run and checked in {time.monotonic() - t0:.1f} s; key press -> new heatmap src {lat}; "
          f"traces {r['before']['traces']} -> {r['after']['traces']}")


def test_frozen_explorer_fails_the_check(browser, lab):
    "The same check on an explorer whose recomputation is a no-op must fail: the test can catch a dead widget."
    r = _drive(browser, lab, "explorer_frozen.ipynb", "explorer-frozen", wait_s=8)
    assert r["readout"].strip() == "100", f"the slider itself must still move: {r['readout']!r}"
    with pytest.raises(AssertionError, match="src did not change"):
        assert_explorer_updated(r)
