"""Explore's CNN design in a real browser (Playwright over Debian's Chromium, as tests/app/test_app_browser.py): at
1400x900 picking the tt-convnet preset shows the whole network's tiles, the table of its layers and the core diagram
of its first TT convolution (the spatial core and the channel cores)."""

from __future__ import annotations

import os
import re

import pytest

from test_app_browser import Server, browser, single  # noqa: F401  (the Chromium fixture, skipping with a reason without it)

from ttexplore.runs.presets import run_preset

pytestmark = pytest.mark.slow  # a streamlit server and a browser


@pytest.fixture(scope="module")
def cnn_server(tmp_path_factory, browser):  # noqa: F811
    folder = tmp_path_factory.mktemp("cnn-browser")
    app = Server(folder / "home", folder / "streamlit.log").start()
    yield app
    app.stop()


@pytest.fixture
def cnn_page(browser, cnn_server):  # noqa: F811
    """A tab at 1400x900, closed after the test's report (a failure's report shows what it held)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def test_tt_convnet_shows_its_layers_and_the_tt_conv_cores(browser, cnn_server, cnn_page):  # noqa: F811
    page = cnn_page
    page.goto(cnn_server.url)
    page.get_by_text("TT layer weights").first.wait_for()
    picker = page.locator(".st-key-preset")
    picker.click()
    page.get_by_role("option", name="tt-convnet", exact=True).click()
    page.get_by_text("Network parameters").first.wait_for()
    config = run_preset("tt-convnet", dataset="mnist5k")
    tile = page.locator('[data-testid="stMetric"]').filter(has_text="Network parameters").first
    assert tile.locator('[data-testid="stMetricValue"]').inner_text().strip() == f"{config.net_params():,}"
    # one table once the MLP preview's stale elements are gone (a rerun keeps them, faded, until redrawn)
    table = single(page, '.st-key-network-layers [data-testid="stDataFrame"]')
    assert table.is_visible() and page.locator(".st-key-network-layers").get_by_text("Layer by layer").is_visible()
    # the diagram: the spatial core G_0 (1 x 3*3 x 1 x r_0) and the channel cores, drawn by plotly (the TT conv's,
    # not the MLP's diagram the same key held before the preset changed)
    page.wait_for_function("() => { const p = document.querySelector('.st-key-cores-chart .js-plotly-plot');"
                           " return p && p.layout && p.layout.title"
                           " && String(p.layout.title.text).replace(/<[^>]*>/g, '').startsWith('TT conv')"
                           " && p.layout.annotations && p.layout.annotations.length; }")
    notes = page.evaluate("() => document.querySelector('.st-key-cores-chart .js-plotly-plot').layout.annotations"
                          ".map(note => note.text)")
    assert notes[:3] == ["<b>G<sub>0</sub></b>", "1×9×1×4", "(x, y): 3×3"]
    assert sum(note.startswith("<b>G<sub>") for note in notes) == 1 + len(config.layers[2].in_modes)
    title = page.evaluate("() => document.querySelector('.st-key-cores-chart .js-plotly-plot').layout.title.text")
    assert re.sub(r"<[^>]*>", "", title).startswith("TT conv: a spatial core and 3 channel cores")  # the theme bolds it
    page.locator(".st-key-cores-chart").scroll_into_view_if_needed()
    assert page.locator(".st-key-cores-chart .js-plotly-plot").is_visible()
    if os.environ.get("TTEXPLORE_SCREENSHOTS"):  # a look at the page, for people
        page.screenshot(path=os.path.join(os.environ["TTEXPLORE_SCREENSHOTS"], "explore-tt-convnet.png"), full_page=True)
