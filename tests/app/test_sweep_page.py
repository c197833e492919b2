"""The Sweep page: a small sweep submitted from the form runs in the background and fills the table and figure."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import app_support  # noqa: F401  (one scan of the installed Streamlit components per session)

from ttexplore.presenters import export

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "sweep.py")


@pytest.fixture
def page():
    """The page with a fresh run store and job manager (``TTEXPLORE_HOME`` is the test's, see conftest)."""
    st.cache_resource.clear()
    app = AppTest.from_file(PAGE, default_timeout=60)
    yield app
    from ui import get_manager

    get_manager().shutdown()
    st.cache_resource.clear()


def _fill_tiny_sweep(app: AppTest) -> None:
    app.selectbox(key="sweep_dataset_custom").set_value("digits")
    app.text_input(key="sweep_name_custom").input("page-test")
    app.text_area(key="sweep_shapes_custom").input("4x4x4, 8x8")
    app.text_input(key="sweep_ranks_custom").input("1")
    app.number_input(key="sweep_epochs_custom").set_value(1)
    app.number_input(key="sweep_limit_custom").set_value(300)
    app.checkbox(key="sweep_baselines_custom").uncheck()


def _run_until_done(app: AppTest, timeout_s: float = 60.0) -> str:
    """Rerun the page (AppTest does not fire ``run_every``) until every run of the sweep ended; returns the progress text."""
    deadline = time.monotonic() + timeout_s
    while True:
        app.run()
        assert not app.exception
        text = app.get("progress")[0].proto.text if app.get("progress") else ""
        if text.startswith("2 of 2 runs completed") or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def test_sweep_page_runs_a_small_sweep_and_fills_table_and_figure(page):
    page.run()
    assert not page.exception
    assert page.selectbox(key="sweep_preset").value == "custom"
    assert any("No sweep yet" in info.value for info in page.info)

    _fill_tiny_sweep(page)
    page.button[0].click()  # the form's "Run sweep"
    page.run()
    assert not page.exception and not page.error
    assert "2 runs queued" in page.success[0].value

    assert _run_until_done(page) == "2 of 2 runs completed"
    table = page.dataframe[0].value
    assert list(table["shape"]) == ["4x4x4", "8x8"]
    assert list(table["status"]) == ["completed", "completed"]
    assert table["accuracy"].between(0, 1).all() and list(table["seeds"]) == [1, 1]  # one row per cell, over its seeds
    assert table["± std"].isna().all()  # one seed: no spread yet
    assert len(page.dataframe[1].value) == 2  # every run, one per cell and seed
    figure = page.get("plotly_chart")[0].proto.spec
    assert '"8x8"' in figure and '"type":"log"' in figure.replace(" ", "")
    images = ["PNG", "SVG"] if export.image_export_problem() is None else []  # PNG/SVG need Chromium
    assert [button.proto.label for button in page.get("download_button")] == images + ["HTML", "results.csv", "runs.csv"]

    # launching the same sweep again queues nothing: both cells are completed
    page.button[0].click()
    page.run()
    assert not page.success and "Nothing new queued" in page.info[0].value


def test_sweep_page_rejects_a_shape_that_does_not_fit(page):
    page.run()
    _fill_tiny_sweep(page)
    page.text_area(key="sweep_shapes_custom").input("4x8x8x4")
    page.button[0].click()
    page.run()
    assert not page.exception
    assert "shapes" in page.error[0].value and "digits" in page.error[0].value


def test_presets_fill_the_form(page):
    page.run()
    page.selectbox(key="sweep_preset").set_value("repro2018-mnist")
    page.run()
    assert not page.exception
    assert "2^10" in page.text_area(key="sweep_shapes_repro2018-mnist").value
    assert page.text_input(key="sweep_ranks_repro2018-mnist").value == "1,2,3,4"
