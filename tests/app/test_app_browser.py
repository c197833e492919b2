"""The app in a real browser: Playwright drives Debian's Chromium against ``streamlit run app.py``.

The test starts the server itself (a free port, ``TTEXPLORE_HOME`` in a temporary folder) and
checks what a user sees: the numbers show before the charts and the theme follows the browser,
the weight count follows the rank slider and the charts follow per-core ranks, a run's curve
grows live, three runs on one worker are plotted live with their names and tags and stay after
a reload, everything downloads as one zip, a figure as PNG, SVG and HTML, the metrics as CSV
and the weights as a torch file, and finished and interrupted runs are still there after the
server is stopped and started again; three seeds of one experiment are one mean curve with a band (hidden
with its band from the legend), the differences table shows only the setting that differs, and Re-run
with changes fills Explore with a run's configuration and queues the same run again. The timings it measures (a fresh browser to the first
tiles, slider to new count, Train click to the first live point) are printed, and written to
``$TTEXPLORE_TIMINGS_FILE`` when set; never asserted.

Without Playwright or Chromium the tests skip, saying why, unless ``TTEXPLORE_REQUIRE_BROWSER=1``
(CI sets it), where they fail instead.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from app_support import APP, REPO

from ttexplore.tt import ttmath
from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore

pytestmark = pytest.mark.slow  # a streamlit server and a browser per test: seconds each

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

    #: The servers started and not yet stopped (a failing test's report shows their logs).
    running: "list[Server]" = []

    def __init__(self, home: Path, log: Path, env: "dict[str, str] | None" = None) -> None:
        self.home, self.log_path, self.env = home, log, dict(env or {})
        self.process = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> "Server":
        self.port = free_port()
        env = {**os.environ, "TTEXPLORE_HOME": str(self.home), "TTEXPLORE_OFFLINE": "1", **self.env}
        env.pop("TTEXPLORE_DB", None)
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", APP, "--server.port", str(self.port), "--server.headless", "true",
             "--browser.gatherUsageStats", "false"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        Server.running.append(self)
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
        if self in Server.running:
            Server.running.remove(self)


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
        if os.environ.get("TTEXPLORE_TIMINGS_FILE"):
            Path(os.environ["TTEXPLORE_TIMINGS_FILE"]).write_text(json.dumps(TIMINGS, indent=2) + "\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory, browser):
    folder = tmp_path_factory.mktemp("browser")
    app = Server(folder / "home", folder / "streamlit.log").start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def one_worker_server(tmp_path_factory, browser):
    """A server that trains one run at a time, so runs wait in its queue."""
    folder = tmp_path_factory.mktemp("one-worker")
    app = Server(folder / "home", folder / "streamlit.log", {"TTEXPLORE_WORKERS": "1"}).start()
    yield app
    app.stop()


def new_page(browser, **options):
    """A page in a new browser context: its own cache and storage, as a fresh browser has."""
    context = browser.new_context(viewport={"width": 1440, "height": 1200}, accept_downloads=True, **options)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page


@pytest.fixture
def page(browser, server):
    page = new_page(browser)
    yield page
    page.context.close()


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


#: Marks when the first tile and the first chart enter the page, and when the plotting bundle was
#: asked for (performance.now(), ms since navigation), set up before the page loads.
FIRST_PAINT = """
window.__marks = {};
new MutationObserver(() => {
  const now = performance.now();
  if (!window.__marks.tile && document.querySelector('[data-testid=stMetricValue]')) window.__marks.tile = now;
  if (!window.__marks.chart && document.querySelector('.js-plotly-plot')) window.__marks.chart = now;
}).observe(document, {childList: true, subtree: true});
"""


def enter(field, value: str) -> None:
    """Type ``value`` into a text or number field and leave it, so Streamlit takes the value."""
    field.fill(value)
    field.press("Tab")
    field.page.wait_for_timeout(300)


def follow_link(page, name: str, arrived, attempts: int = 3) -> None:
    """Click the link ``name`` until the address satisfies ``arrived(url)`` (at most ``attempts`` clicks).

    Streamlit 1.67 folds requests that wait for a running script into one and keeps the page of the later:
    a page switch followed at once by a rerun the page asks for itself (Train redraws when a run ends) stays
    on the old page. The click is lost and a user clicks again (docs/FAULTS.md, L.3); so does this."""
    for _ in range(attempts):
        page.get_by_role("link", name=name, exact=True).click()
        try:
            page.wait_for_url(arrived, timeout=15_000)
            return
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: the click was folded away, click again
            continue
    pytest.fail(f"the link {name!r} did not open its page after {attempts} clicks (at {page.url})")


def on_path(*paths: str):
    """``arrived`` for :func:`follow_link`: the address's path is one of ``paths``."""
    return lambda url: urllib.parse.urlparse(url).path.rstrip("/") in {path.rstrip("/") for path in paths}


def record_with_the_cli(server) -> None:
    subprocess.run([sys.executable, "-m", "ttexplore", "train", "--dataset", "digits", "--epochs", "1", "--record",
                    "--quiet", "--db", str(server.home / "runs.db")], cwd=REPO, check=True, capture_output=True)


def open_explore(page, server) -> float:
    """Open the app; returns the seconds until the preview's numbers showed."""
    started = time.monotonic()
    page.goto(server.url)
    page.get_by_text("TT layer weights").first.wait_for()
    return time.monotonic() - started


def chart_data(page, key: str) -> list:
    """The traces plotly drew in the chart with this key (``x``, ``y``, ``name``, ``text``, ``marker``)."""
    selector = f".st-key-{key}-chart .js-plotly-plot"
    page.wait_for_function(f"() => {{ const p = document.querySelector('{selector}'); return p && p.data && p.data.length; }}")
    return page.evaluate(f"""() => document.querySelector('{selector}').data.map(trace => ({{
        name: trace.name, x: Array.from(trace.x || []), y: Array.from(trace.y || []), text: trace.text,
        symbol: trace.marker && trace.marker.symbol }}))""")


def first_paint(browser, server) -> dict:
    """Open the app in a fresh browser (nothing cached); when its first tile and first chart entered the page,
    and when the plotting bundle was asked for (seconds since navigation)."""
    page = new_page(browser)
    page.add_init_script(FIRST_PAINT)
    started = time.monotonic()
    page.goto(server.url)
    page.locator('[data-testid="stMetricValue"]').first.wait_for()
    seen = time.monotonic() - started
    page.wait_for_selector(".js-plotly-plot")
    page.wait_for_timeout(200)
    marks = page.evaluate("() => window.__marks")
    bundle = page.evaluate("() => performance.getEntriesByType('resource').filter(e => e.name.includes('PlotlyChart'))"
                           ".map(e => e.startTime)")
    assert page.get_by_role("button", name="Train this layer").is_visible()  # in view without scrolling
    page.context.close()
    return {"tiles_seen_s": round(seen, 3), "tiles_in_page_s": round(marks["tile"] / 1000, 3),
            "first_chart_s": round(marks["chart"] / 1000, 3),
            "plotting_bundle_asked_s": round(bundle[0] / 1000, 3) if bundle else None}


def test_numbers_come_before_the_charts_and_the_theme_follows_the_browser(browser, server):
    cold = first_paint(browser, server)  # the server's first session also imports torch for the job manager
    warm = first_paint(browser, server)  # a fresh browser against a running server: what a new user sees
    TIMINGS["fresh_browser_cold_server"] = cold
    TIMINGS["fresh_browser_to_first_tiles"] = warm
    for marks in (cold, warm):
        assert marks["tiles_in_page_s"] < marks["first_chart_s"]  # the tiles never wait for a chart

    dark = new_page(browser, color_scheme="dark")
    dark.goto(server.url)
    dark.locator('[data-testid="stMetricValue"]').first.wait_for()
    background = dark.evaluate("() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor")
    channels = [int(value) for value in background[background.index("(") + 1:background.index(")")].split(",")[:3]]
    assert sum(channels) < 150, f"a dark browser got a light app: {background}"
    dark.context.close()


@pytest.mark.slow
def test_a_deep_link_as_a_fresh_servers_first_request_gets_the_apps_frame(browser, tmp_path):
    """A bookmark, or a tab reconnecting after a restart: ``/run?id=...`` and ``/runs`` opened before anything
    else on a fresh server, each in a fresh browser, show their page inside app.py's frame (its sidebar, the
    wide layout, the app's menu), not the page file alone under Streamlit's legacy pages/ menu."""
    home = tmp_path / "home"
    store = RunStore(home / "runs.db")
    run_id = store.create_run(RunConfig.for_dataset("digits", epochs=1), name="bookmarked")
    store.finish(run_id, "completed")
    server = Server(home, tmp_path / "streamlit.log").start()
    try:
        for address, heading in ((f"/run?id={run_id}", "bookmarked"), ("/runs", "Runs")):
            page = new_page(browser)
            page.goto(server.url + address)
            page.get_by_role("heading", name=heading, exact=True).wait_for()
            page.locator('[data-testid="stSidebar"]').get_by_text("No training in progress").wait_for()  # app.py's sidebar
            menu = page.locator('[data-testid="stSidebarNav"]').inner_text().split()
            assert "Explore" in menu and "app" not in menu and "explore" not in menu, menu  # titles, not file names
            assert page.locator('[data-testid="stMainBlockContainer"]').bounding_box()["width"] > 1000  # wide (centred: 736)
            assert page.url == server.url + address
            page.context.close()
    finally:
        server.stop()


def test_the_rank_slider_changes_the_weight_count(page, server):
    TIMINGS["open_to_numbers_s"] = round(open_explore(page, server), 3)
    button = page.get_by_role("button", name="Train this layer")
    button.wait_for()  # the page streams in: the tiles may come before the Train card
    box = button.bounding_box()
    assert box and box["y"] + box["height"] <= page.viewport_size["height"]  # in view at 1440x1200 without scrolling
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


def test_the_charts_follow_per_core_ranks(page, server):
    open_explore(page, server)
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Max TT rank").get_by_role("slider")
    thumb.focus()
    page.keyboard.press("Home")  # max rank 1
    wait_for_metric(page, "TT layer weights", f"{ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), 1):,}")
    page.get_by_text("Set each core's rank").click()
    middle = page.locator('[data-testid="stSlider"]').filter(has=page.get_by_text("r2", exact=True)).get_by_role("slider")
    middle.focus()
    page.keyboard.press("End")  # r2 = 1024 (its maximal useful rank: the sliders offer every useful rank), r1 = r3 = 1
    expected = ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), (1, 1024, 1))
    wait_for_metric(page, "TT layer weights", f"{expected:,}")
    max_rank = page.locator('[data-testid="stSlider"]').filter(has_text="Max TT rank")
    deadline = time.monotonic() + 30
    while max_rank.count():  # per-core ranks replace the max-rank slider (once the rerun has dropped it)
        if time.monotonic() > deadline:
            pytest.fail("the max-rank slider stayed beside the per-core ones")
        time.sleep(0.1)
    deadline = time.monotonic() + 30
    while True:  # the charts are redrawn after the tile
        star = next((trace for trace in chart_data(page, "vs-rank") if trace["symbol"] == "star"), None)
        bars = chart_data(page, "factorizations")[0]
        own = [x for x, text in zip(bars["x"], bars["text"]) if "yours" in text]
        if star and star["y"] == [expected] and own == [expected]:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"the charts show {star and star['y']} and {own}, the tile {expected:,}")
        time.sleep(0.2)
    assert star["name"] == "yours (r=1,1024,1)"
    page.get_by_text("Set each core's rank").click()  # back to one max rank for the other tests' sessions


def test_a_run_grows_live_and_its_figure_and_metrics_download(page, server):
    open_explore(page, server)
    # the bundled MNIST-5k for EPOCHS epochs: four points an epoch, over several one-second polls
    epochs = page.get_by_label("Epochs")
    epochs.fill(str(EPOCHS))
    epochs.press("Enter")
    page.wait_for_timeout(500)  # the rerun that takes the new value
    started = time.monotonic()
    page.get_by_role("button", name="Train this layer").click()
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

    follow_link(page, "Export", on_path("/export"))
    with page.expect_download() as caught:
        single(page, ".st-key-metrics-csv button").click()
    rows = list(csv.DictReader(io.StringIO(Path(caught.value.path()).read_text())))
    assert list(rows[0]) == ["run_id", "label", "kind", "epoch", "step", "train_loss", "train_accuracy", "test_loss",
                             "test_accuracy", "elapsed_s", "val_loss", "val_accuracy"]
    assert {row["run_id"] for row in rows} == {run["id"]} and len(rows) == len(events)
    assert float(rows[-1]["epoch"]) == pytest.approx(EPOCHS)

    with page.expect_download() as caught:
        single(page, ".st-key-weights button").click()
    assert Path(caught.value.path()).read_bytes()[:2] == b"PK"  # torch.save's zip container


def test_a_sweep_fills_its_figure_and_table_and_downloads_them(page, server):
    page.goto(f"{server.url}/sweep")
    page.get_by_role("button", name="Run sweep").wait_for()
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset").first.click()
    page.get_by_role("option", name="Digits 8x8 (scikit-learn)", exact=True).click()
    enter(page.get_by_label("Sweep name", exact=True), "browser-sweep")
    enter(page.get_by_label("TT shapes", exact=True), "4x4x4, 8x8")
    enter(page.get_by_label("Max TT ranks", exact=True), "1,2")
    enter(page.get_by_label("Epochs"), "1")
    enter(page.get_by_label("Training images (0 = all)", exact=True), "300")
    page.get_by_text("Dense and matrix-rank baselines").click()
    page.get_by_text("4 runs, ").wait_for()  # the estimate before the button: every value has landed
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
        assert row["status"] == "completed" and 0.0 < float(row["test_accuracy_mean"]) <= 1.0 and row["seeds"] == "1"
    with page.expect_download() as caught:
        single(page, ".st-key-sweep-figure-png button").click()
    assert Path(caught.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_everything_downloads_as_one_zip(page, server):
    store = RunStore(server.home / "runs.db")
    if not store.list_runs(status=["completed"]):  # run alone: record one with the CLI
        record_with_the_cli(server)
    runs = store.list_runs()
    page.goto(f"{server.url}/runs")
    page.get_by_text("Runs saved").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()  # the second drawing (charts) is in: a click now is not lost to it
    with page.expect_download(timeout=120_000) as caught:
        single(page, ".st-key-runs-zip button").click()
    archive = zipfile.ZipFile(caught.value.path())
    names = set(archive.namelist())
    assert {"README.txt", "runs.csv", "runs.json", "metrics.csv", "figures/training-curves.html"} <= names
    assert {f"metrics/{run['id']}.csv" for run in runs} <= names
    table = list(csv.DictReader(io.StringIO(archive.read("runs.csv").decode())))
    assert {row["id"] for row in table} == {run["id"] for run in runs}
    saved = [run for run in runs if store.artifact_path(run.get("weights_path"))]
    assert saved and {f"weights/{run['id']}.pt" for run in saved} <= names
    assert archive.read(f"weights/{saved[0]['id']}.pt")[:2] == b"PK"
    assert archive.read("figures/training-curves.png")[:8] == b"\x89PNG\r\n\x1a\n"  # kaleido renders here


def test_three_runs_on_one_worker_are_plotted_live_named_and_tagged_and_a_reload_keeps_them(browser, one_worker_server):
    server, page = one_worker_server, new_page(browser)
    open_explore(page, server)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset").first.click()
    page.get_by_role("option", name="Digits 8x8 (scikit-learn)", exact=True).click()
    wait_for_metric(page, "Dense weights", "4,096")
    enter(page.get_by_label("Epochs"), "30")  # long enough that the next run is queued while one trains
    page.get_by_text("Name, tags, batch size").click()
    enter(page.get_by_label("Training images (0 = all)", exact=True), "600")  # a few seconds a run, on a busy machine
    names = ("first", "second", "third")
    seen_queued, started, counts = False, None, []
    for index, name in enumerate(names):
        if index:
            follow_link(page, "Explore", on_path("/", "/explore"))
            page.get_by_text("TT layer weights").first.wait_for()
        if not page.get_by_label("Run name", exact=True).is_visible():
            page.get_by_text(re.compile(r"^Name, tags")).click()  # "Name, tags (trio), ..." once tagged
        enter(page.get_by_label("Run name", exact=True), name)
        if index == 0:
            tags = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Tags").locator("input")
            tags.click()
            tags.fill("trio")
            tags.press("Enter")
            page.keyboard.press("Escape")
            page.wait_for_timeout(500)
        page.get_by_role("button", name="Train this layer").click()
        if index == 0:
            started = time.monotonic()
        page.wait_for_url("**/train")
        page.get_by_role("link", name=name, exact=True).wait_for()
        if index == 0:
            page.wait_for_function(f"({LIVE_POINTS})() > 0", timeout=60_000)
            TIMINGS["first_point_on_a_just_started_server_s"] = round(time.monotonic() - started, 3)
        seen_queued = seen_queued or page.get_by_text("queued: waiting for a free core").count() > 0
        counts.append(page.evaluate(LIVE_POINTS))

    store = RunStore(server.home / "runs.db")
    deadline = time.monotonic() + 300
    while not all(run["status"] == "completed" for run in store.list_runs()):
        counts.append(page.evaluate(LIVE_POINTS))
        seen_queued = seen_queued or page.get_by_text("queued: waiting for a free core").count() > 0
        if time.monotonic() > deadline:
            pytest.fail(f"the three runs did not complete: {[run['status'] for run in store.list_runs()]}")
        time.sleep(0.3)
    runs = sorted(store.list_runs(), key=lambda run: run["created_at"])
    for earlier, later in zip(runs, runs[1:]):  # one worker: one run at a time, in the order queued
        assert later["started_at"] >= earlier["finished_at"] - 1e-3, "two runs trained at once on one worker"
    if any(later["created_at"] < earlier["finished_at"] for earlier, later in zip(runs, runs[1:])):
        assert seen_queued, "a run queued while another trained waited in the queue, and its row said so"
    assert len(set(count for count in counts if count)) >= 3, f"the curves never grew while training: {counts}"
    runs = store.list_runs()
    assert sorted(run["name"] for run in runs) == sorted(names) and all(run["tags"] == ["trio"] for run in runs)
    page.wait_for_timeout(1500)  # the last run's end redraws the page once
    events = store.metrics_for([run["id"] for run in runs])
    expected = sum(2 * len(evs) + 2 * sum(1 for event in evs if event["kind"] == "eval") for evs in events.values())

    def legend() -> set:
        return set(page.locator(".st-key-live-curves-chart .legendtext").evaluate_all("texts => texts.map(t => t.textContent)"))

    page.wait_for_function(f"({LIVE_POINTS})() === {expected}")
    assert set(names) <= legend()
    page.reload()  # a reload is a new session: the finished curves are still followed
    counts = []
    deadline = time.monotonic() + 90
    while page.evaluate(LIVE_POINTS) != expected:
        counts.append(page.evaluate(LIVE_POINTS))
        if time.monotonic() > deadline:
            pytest.fail(f"after the reload the chart showed {sorted(set(counts))} points, not {expected}")
        time.sleep(0.3)
    assert set(names) <= legend()

    follow_link(page, "second", on_path("/run"))  # the run's own page: its name and tags
    page.get_by_role("heading", name="second").wait_for()
    tags = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Tags").inner_text()
    assert "trio" in tags
    page.context.close()


def test_finished_and_interrupted_runs_are_there_after_a_server_restart(page, server):
    store = RunStore(server.home / "runs.db")
    if not store.list_runs(status=["completed"]):  # run alone: record one with the CLI
        record_with_the_cli(server)
    finished = store.list_runs(status=["completed"])
    long_run = store.create_run(RunConfig.for_dataset("digits", epochs=500), name="cut short")  # as another tab would
    deadline = time.monotonic() + 60
    while store.get_run(long_run)["status"] != "running" or not store.metrics(long_run):
        if time.monotonic() > deadline:
            pytest.fail(f"the long run did not start: {store.get_run(long_run)['status']}")
        time.sleep(0.2)
    server.stop()
    server.start()
    page.goto(f"{server.url}/runs")  # a deep link, as a reconnecting tab would open it
    page.get_by_text("Runs saved").wait_for()
    assert metric(page, "Completed") == str(len(finished))
    assert page.get_by_role("link", name="Explore").count()  # the app's own navigation, not a file list
    assert store.get_run(long_run)["status"] == "interrupted"
    follow_link(page, "Train", on_path("/train"))
    page.get_by_text("Runs on this dashboard").wait_for()
    assert metric(page, "Interrupted") == "1"
    page.get_by_role("link", name="cut short").wait_for()
    assert page.get_by_text("was interrupted").count()
    single(page, f".st-key-resume-{long_run} button").click()
    deadline = time.monotonic() + 60
    while store.get_run(long_run)["status"] != "running":
        if time.monotonic() > deadline:
            pytest.fail(f"Resume did not restart the run: {store.get_run(long_run)['status']}")
        time.sleep(0.2)
    page.get_by_role("button", name="Stop").first.click()


def record_in(server, config: RunConfig, name: str = "") -> str:
    """Train ``config`` to completion in this process, recorded in the server's run store."""
    from ttexplore.runs.lifecycle import execute

    store = RunStore(server.home / "runs.db")
    run_id = store.create_run(config, status="running", name=name)
    execute(store, run_id)
    return run_id


@pytest.mark.slow
def test_a_seed_group_band_re_run_with_changes_and_the_differences_table(page, server):
    from playwright.sync_api import expect

    base = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "in_modes": "4x4x4", "out_modes": "4x4x4", "ranks": 3,
                                "epochs": 2, "batch_size": 32, "train_limit": 320, "evals_per_epoch": 1})
    other = record_in(server, base.replace(lr=0.01), name="iterate lr")
    seeds = [record_in(server, base.replace(seed=seed), name="iterate") for seed in (0, 1, 2)]

    # Runs: the three seeds compared (the newest scored runs are the default) are one mean curve with a band
    page.goto(f"{server.url}/runs")
    page.get_by_text("What differs").wait_for()
    traces = chart_data(page, "compare")
    bands = [trace for trace in traces if trace["name"].endswith("(test, band)")]
    assert len(bands) == 2 and all("mean of 3 seeds" in trace["name"] for trace in bands)  # loss and accuracy panels
    line = next(trace for trace in traces if trace["name"].endswith("mean of 3 seeds (test)") and max(trace["y"]) <= 1)
    store = RunStore(server.home / "runs.db")
    finals = [store.get_run(run_id)["final_test_accuracy"] for run_id in seeds]
    assert line["y"][-1] == pytest.approx(sum(finals) / 3)  # the mean of the three curves' last points
    # clicking the group in the legend hides its lines and its band together
    entry = page.locator(".st-key-compare-chart g.traces").filter(has_text="mean of 3 seeds").first
    entry.locator("rect.legendtoggle").click()
    page.wait_for_function("""() => document.querySelector('.st-key-compare-chart .js-plotly-plot').data
        .filter(trace => (trace.name || '').includes('mean of 3 seeds')).every(trace => trace.visible === 'legendonly')""")
    # the differences table: only the seed differs among the three; with the lr run, lr and seed
    differ = page.locator(".st-key-runs-differ")
    differ.wait_for()
    headers = [text.strip() for text in differ.locator("th").all_text_contents()]  # the grid's accessible table
    assert "seed" in headers and "lr" not in headers and "final test acc" in headers, headers

    # a run page: Re-run with changes opens Explore with the run's whole configuration
    page.goto(f"{server.url}/run?id={seeds[1]}")
    page.wait_for_selector(".js-plotly-plot")  # the first drawing's own redraw is done (a click before it: FAULTS.md L.3)
    page.get_by_role("link", name="Re-run with changes").click()
    page.get_by_text("Prefilled from run").wait_for()
    expect(page.get_by_label("Input modes", exact=True)).to_have_value("4x4x4")  # waits for the rerun to draw it
    expect(page.get_by_label("Epochs", exact=True)).to_have_value("2")
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Max TT rank").get_by_role("slider")
    expect(thumb).to_have_value("3")
    page.get_by_role("button", name="Train this layer").click()
    page.get_by_text("Runs on this dashboard").wait_for()
    newest = RunStore(server.home / "runs.db").list_runs(limit=1)[0]
    assert newest["id"] not in seeds and newest["config_key"] == store.get_run(seeds[1])["config_key"]
    assert other != newest["id"]
