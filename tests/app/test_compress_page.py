"""The Compress page: a trained dense run, its unfolding spectra, and the three paths filled in by queued runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import app_support  # noqa: F401  (one scan of the installed Streamlit components per session)

from ttexplore.runs.config import RunConfig
from ttexplore.runs.data_info import DATASETS
from ttexplore.runs.lifecycle import execute
from ttexplore.runs.store import RunStore

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "compress.py")


@pytest.fixture
def page():
    st.cache_resource.clear()
    st.cache_data.clear()
    app = AppTest.from_file(PAGE, default_timeout=90)
    yield app
    from ui import get_manager

    get_manager().shutdown()
    st.cache_resource.clear()
    st.cache_data.clear()


def dense_run(seed: int = 0) -> tuple[str, float]:
    store = RunStore()
    config = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layer": "dense", "in_modes": None, "out_modes": None,
                                  "epochs": 2, "batch_size": 32, "evals_per_epoch": 1, "seed": seed})
    run_id = store.create_run(config, status="running")
    execute(store, run_id)
    return run_id, store.get_run(run_id)["final_test_accuracy"]


def test_without_a_trained_run_the_page_says_how_to_get_one(page):
    page.run()
    assert not page.exception
    assert "No trained run to compress yet" in page.info[0].value


@pytest.mark.slow  # trains a dense run and six TT runs
def test_compress_a_dense_run_and_fill_the_three_paths(page):
    run_id, accuracy = dense_run()
    page.run()
    assert not page.exception, [item.value for item in page.exception]
    assert page.selectbox(key="compress_run").value == run_id
    assert page.text_input(key="compress_in").value == "2x4x4x2"
    page.text_input(key="compress_in").input("4x4x4").run()
    page.text_input(key="compress_out").input("4x4x4").run()
    assert not page.error
    # the spectra figure and the ranks TT-SVD needs for the target error
    assert "TT-SVD reaches" in page.markdown[0].value or any("TT-SVD reaches" in item.value for item in page.markdown)
    page.multiselect(key="compress_ranks").set_value([1, 16])
    page.number_input(key="compress_epochs").set_value(1)
    page.number_input(key="compress_scratch_epochs").set_value(1)
    page.button(key="compress_submit").click()
    page.run()
    assert not page.exception
    deadline = time.monotonic() + 180
    while True:
        table = page.dataframe[-1].value
        if table[["TT-SVD", "+ fine-tuning", "from scratch"]].notna().all().all() or time.monotonic() > deadline:
            break
        time.sleep(1)
        page.run()
    assert list(table["rank"]) == [1, 16] and list(table["ranks"]) == ["1,1", "16,16"]
    assert table["rel_error"].iloc[1] < 1e-6 and table["TT-SVD"].iloc[1] == accuracy  # full rank: the dense net
    assert table[["TT-SVD", "+ fine-tuning", "from scratch"]].notna().all().all()
    charts = page.get("plotly_chart")
    assert len(charts) == 3 and "boundary 2" in charts[0].proto.spec
    runs = RunStore().list_runs()
    assert sum("compress" in run["tags"] for run in runs) == 6  # 2 ranks x (compressed, fine-tuned, from scratch)
    # pressing again queues nothing: every run is done
    page.button(key="compress_submit").click()
    page.run()
    assert len(RunStore().list_runs()) == len(runs)


def test_shapes_that_do_not_fit_w_say_what_would(page):
    dense_run()
    page.run()
    page.text_input(key="compress_in").input("4x4x8").run()
    assert not page.exception
    assert "W is 64 → 64" in page.error[0].value and "try" in page.error[0].value


def test_compress_a_tt_run_by_rounding_its_cores(page):
    store = RunStore()
    config = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "in_modes": "4x4x4", "out_modes": "4x4x4", "ranks": 4,
                                  "epochs": 1, "batch_size": 32, "evals_per_epoch": 1, "train_limit": 320})
    run_id = store.create_run(config, status="running")
    execute(store, run_id, config=config)
    page.run()
    assert not page.exception, [item.value for item in page.exception]
    assert page.selectbox(key="compress_run").value == run_id
    assert page.text_input(key="compress_in").value == "4x4x4" and page.text_input(key="compress_in").disabled
    assert any("ranks 4, 4" in item.value and "rounded in its own modes" in item.value for item in page.caption)
    assert any(item.value.startswith("Rounding reaches") for item in page.markdown)
    ranks = page.multiselect(key="compress_ranks_below_4")
    assert ranks.options == ["1", "2", "3"] and ranks.value == [1, 2]
    charts = page.get("plotly_chart")
    assert "trained cores' unfoldings" in charts[0].proto.spec and "boundary 2 (4 values)" in charts[0].proto.spec
    page.number_input(key="compress_epochs").set_value(1)
    page.checkbox(key="compress_scratch").uncheck()
    page.button(key="compress_submit").click()
    page.run()
    deadline = time.monotonic() + 180
    while True:
        table = page.dataframe[-1].value
        if table[["rounded", "+ fine-tuning"]].notna().all().all() or time.monotonic() > deadline:
            break
        time.sleep(1)
        page.run()
    assert not page.exception
    assert list(table["rank"]) == [1, 2] and list(table["ranks"]) == ["1,1", "2,2"]
    assert table[["rounded", "+ fine-tuning"]].notna().all().all() and (table["rel_error"] > 0).all()
    starts = [RunConfig.from_dict(run["config"]).init_from for run in RunStore().list_runs() if "compress" in run["tags"]]
    assert len(starts) == 4 and all(start.method == "tt-round" and start.run == run_id for start in starts)


def test_the_picker_names_runs_and_the_upload_names_datasets(page):
    run_id, accuracy = dense_run()
    RunStore().update_identity(run_id, name="my dense digits")
    page.run()
    picker = page.selectbox(key="compress_run")
    assert picker.value == run_id and picker.format_func(run_id) == f"my dense digits · #{run_id[-6:]} · acc {accuracy:.3f}"
    page.segmented_control(key="compress_kind").set_value("A weights file").run()
    trained_on = page.selectbox(key="compress_dataset")
    assert trained_on.format_func("digits") == DATASETS["digits"].title == "Digits 8x8 (scikit-learn)"  # not "digits"


@pytest.mark.slow
def test_every_seed_of_an_experiment_is_compressed_alike_and_averaged(page):
    runs = [dense_run(seed) for seed in (0, 1)]
    page.run()
    page.text_input(key="compress_in").input("4x4x4").run()
    page.text_input(key="compress_out").input("4x4x4").run()
    page.toggle(key="compress_seeds").set_value(True).run()
    assert not page.exception, [item.value for item in page.exception]
    page.multiselect(key="compress_ranks").set_value([16])
    page.number_input(key="compress_epochs").set_value(0)
    page.checkbox(key="compress_scratch").set_value(False)
    page.button(key="compress_submit").click()
    page.run()
    deadline = time.monotonic() + 180
    while True:
        table = page.dataframe[-1].value
        if table["TT-SVD"].notna().all() and table["seeds"].eq(2).all() or time.monotonic() > deadline:
            break
        time.sleep(1)
        page.run()
    # rank 16 is exact: each seed's TT-SVD net is its dense net, so the mean is the dense nets' mean
    assert table["TT-SVD"].iloc[0] == pytest.approx(sum(accuracy for _, accuracy in runs) / 2)
    assert list(table["seeds"]) == [2] and "TT-SVD ±" in table.columns
    assert sum("compress" in run["tags"] for run in RunStore().list_runs()) == 2  # one TT-SVD net per seed
