"""Every page of the app through Streamlit's AppTest: preview numbers, bad entries, a run
trained to completion, the queue, Stop, a failed run, the Runs table, Export, a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from app_support import APP, app_home, metric, new_app, release_app_resources, run_until, shared_data_dir, shown  # noqa: F401

import ui
from ttexplore.tt import ttmath
from ttexplore.runs.config import RunConfig
from ttexplore.presenters.preview import PRESETS
from ttexplore.runs.store import RunStore


def weights(in_modes, out_modes, ranks) -> str:
    return f"{ttmath.param_count(in_modes, out_modes, ranks):,}"


def submit(at, epochs: int = 1, baseline: bool = False):
    """Fill the Train form and press Train (form values count only with the submit click).

    Pressing Train opens the Train page; the AppTest is then pinned to it, since a page chosen
    with ``at.switch_page`` would otherwise come back on the next ``at.run()``.
    """
    at.number_input(key="epochs").set_value(epochs)
    at.checkbox(key="baseline").check() if baseline else at.checkbox(key="baseline").uncheck()
    at.button(key="train_submit").click()
    at.run()
    assert not at.exception
    assert at.title[0].value == "Train", "pressing Train opens the Train page"
    return at.switch_page("pages/train.py")


def test_opens_on_explore_with_the_papers_layer(app_home):
    at = new_app().run()
    assert not at.exception
    assert at.title[0].value == "Explore a Tensor-Train layer"
    assert at.selectbox(key="dataset").value == "mnist5k"
    assert at.text_input(key="in_modes").value == "4x8x8x4" and at.text_input(key="out_modes").value == "4x8x8x4"
    assert metric(at, "TT layer weights") == weights((4, 8, 8, 4), (4, 8, 8, 4), 4) == "2,176"
    assert metric(at, "Dense weights") == "1,048,576"
    assert metric(at, "Compression") == "482×"
    assert any("No training in progress" in item.value for item in at.sidebar.markdown)


@pytest.mark.slow  # 15 reruns of the whole app, the 10-core preset's cost model among them
def test_preview_follows_every_widget(app_home):
    at = new_app().run()
    for rank in (1, 2, 3, 7):
        at.slider(key="max_rank").set_value(rank).run()
        assert metric(at, "TT layer weights") == weights((4, 8, 8, 4), (4, 8, 8, 4), rank)
    for preset in PRESETS:
        at.selectbox(key="preset").select(preset.name).run()
        assert at.text_input(key="in_modes").value == preset.in_text
        assert at.session_state["pad_to"] == (preset.pad_to or 0)
        assert metric(at, "TT layer weights") == weights(preset.in_modes, preset.out_modes, 7)
        dense = ttmath.prod(preset.in_modes) * ttmath.prod(preset.out_modes)
        assert metric(at, "Dense weights") == (f"{dense:,}" if dense < 10**7 else f"{dense / 1e6:.3g}M")  # short: not cut
    # typed shapes: the preset becomes "Custom shapes"
    at.selectbox(key="preset").select(PRESETS[0].name).run()
    at.text_input(key="in_modes").input("8x4x4x8").run()
    at.text_input(key="out_modes").input("2x8x8x8").run()
    assert at.selectbox(key="preset").value == "Custom shapes"
    assert metric(at, "TT layer weights") == weights((8, 4, 4, 8), (2, 8, 8, 8), 7)
    # per-core ranks
    at.toggle(key="per_core").set_value(True).run()
    at.slider(key="rank_4_2").set_value(12).run()
    assert metric(at, "TT layer weights") == weights((8, 4, 4, 8), (2, 8, 8, 8), (7, 12, 7))
    # a rank above the maximal useful one is clipped, and the page says so
    at.toggle(key="per_core").set_value(False).run()
    at.slider(key="max_rank").set_value(20).run()
    assert metric(at, "TT layer weights") == weights((8, 4, 4, 8), (2, 8, 8, 8), 20)
    plan = ttmath.plan_ranks((8, 4, 4, 8), (2, 8, 8, 8), 20)
    assert plan.clipped
    captions = " ".join(item.value for item in at.caption)
    for k, asked, used in plan.clipped:
        assert f"r{k} {asked} → {used}" in captions
    # another dataset switches to a preset that fits it
    at.selectbox(key="dataset").select("digits").run()
    assert at.text_input(key="in_modes").value == "2x4x4x2"
    assert metric(at, "TT layer weights") == weights((2, 4, 4, 2), (2, 4, 4, 2), at.slider(key="max_rank").value)
    assert not at.exception


@pytest.mark.parametrize(
    "in_modes, out_modes, words",
    [
        ("4x8x8", "4x8x8x4", ["Input modes", "1024", "try"]),
        ("4x8x8x4", "4x8x8", ["Output modes", "same number"]),
        ("4 x eight", "4x8x8x4", ["Input modes", "not a whole number"]),
        ("", "4x8x8x4", ["Input modes", "empty"]),
        ("4x8x8x4", "0x8", ["Output modes", "at least 1"]),
    ],
)
def test_a_bad_shape_shows_an_inline_message_not_a_traceback(app_home, in_modes, out_modes, words):
    at = new_app().run()
    at.text_input(key="in_modes").input(in_modes)
    at.text_input(key="out_modes").input(out_modes)
    at.run()
    assert not at.exception
    messages = " ".join(item.value for item in at.error)
    assert messages, "no st.error shown"
    for word in words:
        assert word in messages
    assert "in_modes" not in messages and "out_modes" not in messages  # the page's labels, not the config's fields
    # fixing the entry brings the numbers back
    at.text_input(key="in_modes").input("4x8x8x4")
    at.text_input(key="out_modes").input("4x8x8x4").run()
    assert not at.error and metric(at, "TT layer weights") == "2,176"


def test_a_run_trains_to_completion_then_shows_on_runs_and_export_and_survives_a_restart(app_home):
    at = new_app().run()
    at.selectbox(key="dataset").select("digits").run()
    at.slider(key="max_rank").set_value(3).run()
    submit(at, epochs=1, baseline=True)
    store = RunStore()
    runs = store.list_runs()
    assert len(runs) == 2 and {run["layer"] for run in runs} == {"tt", "dense"}
    tt_run = next(run for run in runs if run["layer"] == "tt")
    assert tt_run["config"]["epochs"] == 1 and tt_run["config"]["layers"][0]["ranks"] == 3 and tt_run["dataset"] == "digits"

    def finished(at) -> bool:
        return all(run["status"] == "completed" for run in store.list_runs())

    run_until(at, finished, "both runs to complete")
    at.run()
    bars = [item.proto.text for item in at.get("progress")]
    assert len(bars) == 2 and all("epoch 1 of 1" in text for text in bars)
    best = store.get_run(tt_run["id"])["best_test_accuracy"]
    assert best is not None and f"{best:.3f}" in [item.value for item in at.metric]
    assert len(store.metrics(tt_run["id"])) >= 2  # the step-0 point and at least the epoch end

    at.switch_page("pages/runs.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["id"]) == {run["id"] for run in runs}
    assert set(table["status"]) == {"completed"}
    assert metric(at, "Runs saved") == "2"
    assert set(at.multiselect(key="runs_compare").value) == {run["id"] for run in runs}

    at.switch_page("pages/export.py").run()
    assert not at.exception
    keys = {item.key for item in at.get("download_button")}
    assert {"metrics-csv", "metrics-json", "runs-csv", "weights", "export-curves-png", "export-curves-svg",
            "export-curves-html"} <= keys

    from ttexplore import TTLinear

    layer = TTLinear.load(store.get_run(tt_run["id"])["weights_path"])
    assert layer.param_count() == ttmath.param_count((2, 4, 4, 2), (2, 4, 4, 2), 3)

    release_app_resources()  # the server restarts: a new store and job manager
    again = new_app()
    again.switch_page("pages/runs.py").run()
    assert not again.exception
    assert set(again.dataframe[0].value["id"]) == {run["id"] for run in runs}


def test_queue_stop_and_a_failed_run(app_home, monkeypatch):
    monkeypatch.setenv("TTEXPLORE_WORKERS", "1")
    at = new_app().run()
    submit(at, epochs=200)  # long enough to be stopped
    at.switch_page("pages/explore.py").run()
    at.selectbox(key="dataset").select("mnist").run()  # not on this machine, offline: it cannot be trained here
    assert at.button(key="train_submit").disabled
    assert any("not on this machine" in item.value and "TTEXPLORE_DATA" in item.value for item in at.caption)
    # a run queued elsewhere (the command line, another server) on data this machine lacks runs and fails
    doomed_id = ui.get_manager().submit(RunConfig.for_dataset("mnist", epochs=1))
    at.switch_page("pages/train.py").run()
    store = RunStore()
    long_run = next(run for run in store.list_runs() if run["id"] != doomed_id)
    assert store.get_run(doomed_id)["status"] == "queued"
    assert any(item.proto.text.startswith("queued: waiting for a free core (1st in line)") for item in at.get("progress"))

    run_until(at, lambda at: store.get_run(long_run["id"])["status"] == "running", "the first run to start")
    at.button(key=f"stop-{long_run['id']}").click().run()
    run_until(at, lambda at: store.get_run(doomed_id)["status"] == "failed", "the queued run to run and fail")
    at.run()  # the run may have failed after the page was drawn: draw it again
    assert store.get_run(long_run["id"])["status"] == "cancelled"
    errors = shown(" ".join(item.value for item in at.error))
    assert "mnist is not in" in errors  # the failed run's own message, on the page, in the app's words
    assert "--data-dir" not in errors and "TTEXPLORE_DATA" in errors
    assert not at.exception
    at.switch_page("pages/explore.py").run()  # the server is still fine
    assert not at.exception and metric(at, "TT layer weights")


def test_runs_page_deletes_runs(app_home):
    store = RunStore()
    config = RunConfig.for_dataset("digits", epochs=1)
    keep, drop = store.create_run(config), store.create_run(config.replace(ranks=2))
    for run_id in (keep, drop):
        store.mark_running(run_id)
        store.add_event(run_id, {"kind": "epoch", "epoch": 1.0, "step": 23, "train_loss": 0.5, "train_accuracy": 0.8,
                                 "test_loss": 0.6, "test_accuracy": 0.75, "elapsed_s": 1.0})
        store.finish(run_id, "completed")
    at = new_app()
    at.switch_page("pages/runs.py").run()
    assert set(at.dataframe[0].value["id"]) == {keep, drop}
    at.multiselect(key="runs_delete").select(drop).run()
    at.button(key="runs_delete_button").click().run()
    assert not at.exception
    assert len(store.list_runs()) == 2, "nothing is deleted before the confirmation"
    at.button(key="runs_delete_cancel").click().run()
    assert len(store.list_runs()) == 2
    at.button(key="runs_delete_button").click().run()
    at.button(key="runs_delete_confirm").click().run()
    assert not at.exception
    assert [run["id"] for run in store.list_runs()] == [keep]
    assert set(at.dataframe[0].value["id"]) == {keep}


def test_every_page_renders_on_an_empty_store(app_home):
    at = new_app().run()
    for page, words in (("pages/train.py", "No run yet"), ("pages/runs.py", "No runs saved"),
                        ("pages/export.py", "Nothing to export"), ("pages/run.py", "No runs saved")):
        at.switch_page(page).run()
        assert not at.exception
        assert any(words in item.value for item in at.info), page


@pytest.mark.skipif(not (Path(APP).parent / "pages" / "sweep.py").exists(), reason="pages/sweep.py is on the sweep branch")
def test_the_sweep_page_is_routed(app_home):
    at = new_app().run()
    at.switch_page("pages/sweep.py").run()
    assert not at.exception
    assert at.title[0].value == "Sweep"


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_bad_store_never_takes_the_app_down(app_home, damage):
    release_app_resources()
    path = app_home / "runs.db"
    app_home.mkdir(parents=True, exist_ok=True)
    if damage == "garbage":
        path.write_bytes(b"these are not runs" * 500)
    else:
        from ttexplore.runs.config import RunConfig
        from ttexplore.runs.store import RunStore

        RunStore(path).create_run(RunConfig.for_dataset("digits", epochs=1))
        path.write_bytes(path.read_bytes()[:100])
    before = path.read_bytes()
    try:
        at = new_app().run()
        assert not at.exception, [item.value for item in at.exception]
        assert metric(at, "TT layer weights")  # Explore works without the store
        assert any("cannot be used" in item.value and "runs.db.bad" in shown(item.value) for item in at.error)
        for page in ("pages/train.py", "pages/runs.py", "pages/export.py", "pages/sweep.py", "pages/run.py"):
            at.switch_page(page).run()
            assert not at.exception, (page, [item.value for item in at.exception])
            errors = shown(" ".join(item.value for item in at.error))
            assert "$TTEXPLORE_HOME/runs.db" in errors and str(path) not in errors, page  # no server path
        assert path.read_bytes() == before  # kept as it was
    finally:
        import streamlit as st

        st.cache_resource.clear()
        path.unlink()


def test_an_interrupted_run_is_resumed_from_the_train_page(app_home):
    from ttexplore.runs.config import RunConfig
    from ttexplore.runs.lifecycle import StopFlags, execute
    from ttexplore.runs.fit import fit
    from ttexplore.runs.store import RunStore

    store = RunStore(app_home / "runs.db")
    config = RunConfig.for_dataset("digits", pad_to=None, epochs=3, train_limit=320, ranks=2)
    run_id = store.create_run(config, status="running", name="to resume")
    stop = StopFlags.new()

    def stop_after_one_epoch(config, dataset=None, on_epoch_end=None, **kwargs):
        def checkpoint(state):
            on_epoch_end(state)
            stop.interrupt.set()
        return fit(config, dataset, on_epoch_end=checkpoint, **kwargs)

    execute(store, run_id, stop=stop, fit_function=stop_after_one_epoch)
    assert store.get_run(run_id)["status"] == "interrupted"
    at = new_app().run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    at.button(key=f"resume-{run_id}").click().run()
    run_until(at, lambda _: store.get_run(run_id)["status"] == "completed", "the resumed run to complete")
    epochs = [event["epoch"] for event in store.metrics(run_id) if event["kind"] == "epoch"]
    assert epochs == [1.0, 2.0, 3.0]
