"""In a real browser (Playwright + Debian's Chromium against ``streamlit run app.py``, as tests/app/test_app_browser.py):
a run page's "Inside the TT cores" section at 1400x900 in the light and the dark theme, and the server's orderly
end on SIGTERM while a run trains and kaleido's Chromium is up (it aborted: "terminate called without an active
exception", exit code -6)."""

from __future__ import annotations

import os
import time

import pytest

from test_app_browser import Server, browser, unavailable  # noqa: F401 - browser is a fixture

from ttexplore.runs import lifecycle
from ttexplore.runs.config import RunConfig
from ttexplore.runs.data import load_dataset
from ttexplore.runs.store import RunStore

LAYERS = ["tt:4x4x4:2,12", "dense:16", "tt:4x4->2x8:3"]


def traces(page, key: str) -> list[dict]:
    """The traces plotly drew in the chart with this key: name, line colour, number of points."""
    selector = f".st-key-{key}-chart .js-plotly-plot"
    page.wait_for_function(f"() => {{ const p = document.querySelector('{selector}'); return p && p.data && p.data.length; }}",
                           timeout=60_000)
    return page.evaluate(f"""() => document.querySelector('{selector}').data.map(trace => ({{
        name: trace.name, color: trace.line && trace.line.color, points: (trace.y || []).length }}))""")


@pytest.mark.slow
def test_the_run_page_shows_inside_the_cores_in_both_themes(browser, tmp_path):
    home = tmp_path / "home"
    store = RunStore(home / "runs.db")
    config = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": LAYERS, "epochs": 2, "train_limit": 256,
                                  "evals_per_epoch": 2})
    run_id = store.create_run(config, name="inside")
    lifecycle.execute(store, run_id, dataset=load_dataset("digits", str(tmp_path / "data")))
    server = Server(home, tmp_path / "streamlit.log").start()
    try:
        for scheme in ("light", "dark"):
            context = browser.new_context(viewport={"width": 1400, "height": 900}, color_scheme=scheme)
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{server.url}/run?id={run_id}")
            page.get_by_role("heading", name="Inside the TT cores").scroll_into_view_if_needed()
            for layer, cores in ((0, 3), (2, 2)):
                norms = traces(page, f"core-norms-{layer}")
                assert [trace["name"] for trace in norms] == [f"G{k}" for k in range(1, cores + 1) for _ in (0, 1)]
                assert all(trace["points"] == 5 for trace in norms)  # the untrained point and two per epoch
                assert len({trace["color"] for trace in norms}) == cores  # one colour per core, in both panels
                spectra = [trace for trace in traces(page, f"core-spectra-{layer}") if trace["name"]]
                assert [trace["name"].split(" ")[0] for trace in spectra] == [f"r{k}" for k in range(1, cores)]
            section = page.locator(".st-key-cores-0")
            assert "Hidden layer 1: TT 4x4x4 r=2,12" in section.inner_text()
            section.get_by_text("Effective ranks").wait_for()
            assert section.locator('[data-testid="stDataFrame"]').count() == 1  # the table (drawn on a canvas)
            words = section.inner_text()
            assert "is saturated" in words or "is wasted" in words or "No boundary is saturated or wasted" in words
            if os.environ.get("TTEXPLORE_SCREENSHOTS"):  # for a person to look at: never in the repository
                section.screenshot(path=os.path.join(os.environ["TTEXPLORE_SCREENSHOTS"], f"cores-{scheme}.png"))
            context.close()
    finally:
        server.stop()


@pytest.mark.slow
def test_sigterm_while_a_run_trains_beside_kaleido_ends_the_server_in_order(browser, tmp_path):
    home = tmp_path / "home"
    server = Server(home, tmp_path / "streamlit.log").start()
    log = tmp_path / "streamlit.log"
    try:
        page = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True).new_page()
        page.set_default_timeout(90_000)
        page.goto(server.url)  # the first session makes the job manager
        page.get_by_text("TT layer weights").first.wait_for()
        with page.expect_download() as download:  # starts kaleido's Chromium in the server
            page.get_by_role("button", name="PNG").first.click()
        assert download.value.suggested_filename == "tt-cores.png"
        store = RunStore(home / "runs.db")
        run_id = store.create_run(RunConfig.for_dataset("digits", epochs=500, ranks=2))
        deadline = time.monotonic() + 120
        while not (store.get_run(run_id)["status"] == "running" and len(store.metrics(run_id)) > 2):
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not train the queued run:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        page.context.close()
        server.process.terminate()
        code = server.process.wait(60)
    finally:
        server.stop()
    text = log.read_text()
    assert "terminate called" not in text and code == 0, text[-2000:]
    run = RunStore(home / "runs.db").get_run(run_id)
    assert run["status"] == "interrupted", "the run was stopped in order: resumable from its checkpoint"
