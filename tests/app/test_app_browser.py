"""The app in a real browser: Playwright drives Debian's Chromium against ``streamlit run app.py``.

The test starts the server itself (a free port, ``TTEXPLORE_HOME`` in a temporary folder) and
checks what a user sees: the weight count follows the rank slider, a run's curve grows live,
a figure downloads as PNG, SVG and HTML, the metrics as CSV and the weights as a torch file,
and a finished run is still listed after the server is stopped and started again. The timings
it measures (opening, slider to new count, Train click to the first live point) are printed,
never asserted.

Without Playwright or Chromium the tests skip, saying why, unless ``TTEXPLORE_REQUIRE_BROWSER=1``
(CI sets it), where they fail instead.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app_support import APP, REPO

from ttexplore.core import ttmath
from ttexplore.runs.store import RunStore

CHROMIUM = os.environ.get("TTEXPLORE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
REQUIRED = os.environ.get("TTEXPLORE_REQUIRE_BROWSER") == "1"
#: The number of (x, y) points drawn in the live chart on the Train page (its key is "live-curves":
#: Streamlit adds a CSS class), read from plotly's computed data, so it counts the same whether
#: the curves carry markers (short runs) or only lines.
LIVE_POINTS = """() => {
    const plot = document.querySelector('.st-key-live-curves-chart .js-plotly-plot');
    if (!plot || !plot.calcdata) return 0;
    return plot.calcdata.reduce((total, trace) => total + trace.filter(
        point => typeof point.x === 'number' && typeof point.y === 'number').length, 0);
}"""
TIMINGS = {}
EPOCHS = 25  # of the live-curve run: long enough (5 s or more) for several one-second polls to see it grow


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason}, and TTEXPLORE_REQUIRE_BROWSER=1 asks for the browser tests")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``streamlit run app.py`` in a subprocess, on a free port, with its own ttexplore home."""

    def __init__(self, home: Path, log: Path) -> None:
        self.home, self.log_path = home, log
        self.process = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> "Server":
        self.port = free_port()
        env = {**os.environ, "TTEXPLORE_HOME": str(self.home), "TTEXPLORE_OFFLINE": "1"}
        env.pop("TTEXPLORE_DB", None)
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", APP, "--server.port", str(self.port), "--server.headless", "true",
             "--browser.gatherUsageStats", "false"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"streamlit exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as answer:
                    if answer.read().strip() == b"ok":
                        return self
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"streamlit did not answer /_stcore/health within {timeout:.0f} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        self.log.close()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).is_file():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set TTEXPLORE_CHROMIUM)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as error:  # noqa: BLE001 - reported as the reason
            unavailable(f"Chromium at {CHROMIUM} did not start: {error}")
        yield chromium
        chromium.close()
    if TIMINGS:
        print("\nbrowser timings:", json.dumps(TIMINGS))


@pytest.fixture(scope="module")
def server(tmp_path_factory, browser):
    folder = tmp_path_factory.mktemp("browser")
    app = Server(folder / "home", folder / "streamlit.log").start()
    yield app
    app.stop()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1440, "height": 1200}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def metric(page, label: str) -> str:
    tile = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return tile.locator('[data-testid="stMetricValue"]').inner_text().strip()


def wait_for_metric(page, label: str, expected: str, timeout: float = 30.0) -> float:
    """Wait until the tile shows ``expected``; returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    while metric(page, label) != expected:
        if time.monotonic() > deadline:
            pytest.fail(f"{label!r} shows {metric(page, label)!r}, not {expected!r}")
        time.sleep(0.05)
    return time.monotonic() - started


def single(page, selector: str, timeout: float = 60.0):
    """The one visible element matching ``selector``, once Streamlit has dropped any stale copy
    (a rerun keeps the old element, faded, until the new one is drawn; a button with a tooltip
    is drawn twice, one copy hidden)."""
    locator = page.locator(selector).filter(visible=True)
    deadline = time.monotonic() + timeout
    while locator.count() != 1:
        if time.monotonic() > deadline:
            pytest.fail(f"{selector!r} matched {locator.count()} visible elements, not one")
        time.sleep(0.1)
    return locator


def open_explore(page, server) -> float:
    """Open the app; returns the seconds until the preview's numbers showed."""
    started = time.monotonic()
    page.goto(server.url)
    page.get_by_text("TT layer weights").first.wait_for()
    return time.monotonic() - started


def test_the_rank_slider_changes_the_weight_count(page, server):
    TIMINGS["open_to_numbers_s"] = round(open_explore(page, server), 3)
    assert metric(page, "TT layer weights") == f"{ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), 4):,}"
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Max TT rank").get_by_role("slider")
    thumb.focus()
    page.keyboard.press("ArrowRight")
    TIMINGS["slider_to_new_count_s"] = round(
        wait_for_metric(page, "TT layer weights", f"{ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), 5):,}"), 3)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    wait_for_metric(page, "TT layer weights", f"{ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), 3):,}")
    assert metric(page, "Dense weights") == "1,048,576"


def test_a_run_grows_live_and_its_figure_and_metrics_download(page, server):
    open_explore(page, server)
    # the bundled MNIST-5k for EPOCHS epochs: four points an epoch, over several one-second polls
    page.get_by_label("Epochs").fill(str(EPOCHS))
    started = time.monotonic()
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function(f"({LIVE_POINTS})() > 0", timeout=60_000)
    TIMINGS["train_click_to_first_point_s"] = round(time.monotonic() - started, 3)

    counts = []
    deadline = time.monotonic() + 180
    while not page.get_by_text("completed ·").count():
        counts.append(page.evaluate(LIVE_POINTS))
        if time.monotonic() > deadline:
            pytest.fail(f"the run did not complete; point counts seen: {counts}")
        time.sleep(0.25)
    # the run's end reruns the page once; wait for that last drawing (one chart, all points)
    single(page, ".st-key-live-curves-chart")
    page.wait_for_timeout(1000)
    final = page.evaluate(LIVE_POINTS)
    seen = sorted(set(count for count in counts if count))
    assert len(seen) >= 2, f"the curve never grew while training: point counts {counts}"
    store = RunStore(server.home / "runs.db")
    (run,) = store.list_runs()
    events = store.metrics(run["id"])
    assert run["status"] == "completed" and run["config"]["epochs"] == EPOCHS
    # a point per event for test loss and accuracy; train ones too, except the whole-epoch
    # averages that plots.training_curves leaves out between finer points
    assert final == 2 * len(events) + 2 * sum(1 for event in events if event["kind"] == "eval")
    assert seen[0] < final

    with page.expect_download() as caught:
        single(page, ".st-key-live-curves-png button").click()
    png = Path(caught.value.path()).read_bytes()
    assert caught.value.suggested_filename == "training-curves.png"
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    with page.expect_download() as caught:
        single(page, ".st-key-live-curves-svg button").click()
    svg = Path(caught.value.path()).read_text()
    assert svg.lstrip().startswith("<svg") and "Accuracy" in svg
    with page.expect_download() as caught:
        single(page, ".st-key-live-curves-html button").click()
    html = Path(caught.value.path()).read_text()
    assert "<html" in html and "plotly" in html.lower()  # standalone: plotly.js embedded

    page.get_by_role("link", name="Export").click()
    with page.expect_download() as caught:
        single(page, ".st-key-metrics-csv button").click()
    rows = list(csv.DictReader(io.StringIO(Path(caught.value.path()).read_text())))
    assert list(rows[0]) == ["run_id", "label", "kind", "epoch", "step", "train_loss", "train_accuracy", "test_loss",
                             "test_accuracy", "elapsed_s"]
    assert {row["run_id"] for row in rows} == {run["id"]} and len(rows) == len(events)
    assert float(rows[-1]["epoch"]) == pytest.approx(EPOCHS)

    with page.expect_download() as caught:
        single(page, ".st-key-weights button").click()
    assert Path(caught.value.path()).read_bytes()[:2] == b"PK"  # torch.save's zip container


def test_a_sweep_fills_its_figure_and_table_and_downloads_them(page, server):
    page.goto(f"{server.url}/sweep")
    page.get_by_role("button", name="Run sweep").wait_for()
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset").first.click()
    page.get_by_role("option", name="digits", exact=True).click()
    page.get_by_label("Sweep name", exact=True).fill("browser-sweep")
    page.get_by_label("TT shapes", exact=True).fill("4x4x4, 8x8")
    page.get_by_label("Max TT ranks", exact=True).fill("1,2")
    page.get_by_label("Epochs").fill("1")
    page.get_by_label("Training images (0 = all)", exact=True).fill("300")
    page.get_by_text("Dense and matrix-rank baselines").click()
    page.get_by_role("button", name="Run sweep").click()
    page.get_by_text("4 runs queued").wait_for()
    page.get_by_text("4 of 4 runs completed").wait_for(timeout=120_000)  # the page polls the store every 2 s
    page.wait_for_timeout(1000)  # the sweep's end reruns the page once, without the timer: let that drawing land

    # the 2018 reproduction's figure: one line per shape, a marker per (shape, rank) cell
    page.wait_for_function("document.querySelectorAll('.st-key-sweep-figure-chart .scatterlayer .point').length === 4")
    legend = page.locator(".st-key-sweep-figure-chart .legendtext").evaluate_all("texts => texts.map(text => text.textContent)")
    assert sorted(legend) == ["4x4x4", "8x8"]
    with page.expect_download() as caught:
        single(page, ".st-key-sweep-csv button").click()
    assert caught.value.suggested_filename == "browser-sweep-results.csv"
    rows = list(csv.DictReader(io.StringIO(Path(caught.value.path()).read_text())))
    assert sorted((row["shape"], int(row["rank"])) for row in rows) == [("4x4x4", 1), ("4x4x4", 2), ("8x8", 1), ("8x8", 2)]
    for row in rows:
        modes = tuple(int(mode) for mode in row["shape"].split("x"))
        assert int(row["params"]) == ttmath.param_count(modes, modes, int(row["rank"]))
        assert row["status"] == "completed" and 0.0 < float(row["test_accuracy"]) <= 1.0
    with page.expect_download() as caught:
        single(page, ".st-key-sweep-figure-png button").click()
    assert Path(caught.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_finished_run_is_listed_after_a_server_restart(page, server):
    store = RunStore(server.home / "runs.db")
    if not store.list_runs(status=["completed"]):  # run alone: record one with the CLI
        subprocess.run([sys.executable, "-m", "ttexplore", "train", "--dataset", "digits", "--epochs", "1", "--record",
                        "--quiet", "--db", str(server.home / "runs.db")], cwd=REPO, check=True, capture_output=True)
    finished = store.list_runs(status=["completed"])
    server.stop()
    server.start()
    page.goto(f"{server.url}/runs")  # a deep link, as a reconnecting tab would open it
    page.get_by_text("Runs saved").wait_for()
    assert metric(page, "Completed") == str(len(finished))
    chips = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Runs to overlay").inner_text()
    assert all(f"#{run['id'][-6:]}" in chips for run in finished[:3])
    assert page.get_by_role("link", name="Explore").count()  # the app's own navigation, not a file list
