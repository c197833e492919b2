"""The tracking side of the app through AppTest: Train follows runs from anywhere and keeps a picked view,
interrupted runs offer Resume, a run's page edits its name, tags and notes, Explore's charts follow per-core
ranks and say when a configuration was already trained, and Sweep estimates before it runs."""

from __future__ import annotations

import json
import time

from app_support import app_home, metric, new_app, shared_data_dir, shown  # noqa: F401

from ttexplore.tt import ttmath
from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore


def finished_run(store, config, status="completed", name="", tags=(), ago_s=60.0, accuracy=0.8):
    """A run recorded as another process would (the command line, a sweep), with three metric events."""
    run_id = store.create_run(config, name=name, tags=tags)
    store.mark_running(run_id)
    for step in range(3):
        store.add_event(run_id, {"kind": "eval", "epoch": step / 2, "step": step * 10, "train_loss": 2 / (step + 1),
                                 "train_accuracy": accuracy - 0.1, "test_loss": 2.1 / (step + 1),
                                 "test_accuracy": accuracy - (2 - step) / 10, "elapsed_s": step * 1.0})
    store.finish(run_id, status, error="the process running it stopped" if status == "interrupted" else None)
    with store._connect() as connection:
        connection.execute("UPDATE runs SET finished_at=?, created_at=? WHERE id=?", (time.time() - ago_s, time.time() - ago_s - 30, run_id))
    return run_id


def charts(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_train_follows_runs_from_anywhere_and_keeps_a_picked_view(app_home):
    store = RunStore()
    recent = finished_run(store, RunConfig.for_dataset("digits", epochs=1, ranks=2), name="from the CLI")
    old = finished_run(store, RunConfig.for_dataset("digits", epochs=3, ranks=3), ago_s=3 * 86400)
    cut = finished_run(store, RunConfig.for_dataset("digits", epochs=4, ranks=4), status="interrupted", ago_s=2 * 86400)
    store.checkpoint_path_for(cut).parent.mkdir(parents=True, exist_ok=True)
    store.checkpoint_path_for(cut).write_bytes(b"checkpoint")
    at = new_app()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    # followed by default: the recent run (not this tab's) and the interrupted one; not the one from days ago
    assert at.multiselect(key="train_watch").value == [cut, recent]
    assert metric(at, "Interrupted") == "1"
    assert at.button(key="resume-all") and at.button(key=f"resume-{cut}")
    at.run()  # the first drawing sends the numbers; the second the charts
    curves = charts(at)[0]
    names = {trace.get("name") for trace in curves["data"]}
    assert "from the CLI" in names and "train (dashed)" in names and "test (solid)" in names

    # picking runs pins the view in the address: a reload (a new session with the same address) keeps it
    at.multiselect(key="train_watch").set_value([old]).run()
    assert at.query_params["runs"] in (old, [old])
    reloaded = new_app()
    reloaded.query_params["runs"] = old
    reloaded.switch_page("pages/train.py").run()
    assert reloaded.multiselect(key="train_watch").value == [old]
    reloaded.button(key="train_follow").click().run()
    assert reloaded.multiselect(key="train_watch").value == [cut, recent]


def test_a_runs_page_edits_its_name_tags_and_notes(app_home):
    store = RunStore()
    run_id = finished_run(store, RunConfig.for_dataset("digits", epochs=1, ranks=2))
    at = new_app()
    at.query_params["id"] = run_id
    at.switch_page("pages/run.py").run()
    assert not at.exception
    assert shown(at.title[0].value) == "TT 2x4x4x2 r=2 · digits"
    at.text_input(key=f"run-name-{run_id}").input("small digits")
    at.multiselect(key=f"run-tags-{run_id}").set_value(["quick", "digits"])
    at.text_area(key=f"run-notes-{run_id}").input("rank 2 is enough?")
    at.button[[button.label for button in at.button].index("Save")].click().run()
    assert not at.exception
    saved = store.get_run(run_id)
    assert (saved["name"], saved["tags"], saved["notes"]) == ("small digits", ["digits", "quick"], "rank 2 is enough?")
    assert at.title[0].value == "small digits"
    at.switch_page("pages/runs.py").run()
    table = at.dataframe[0].value
    assert list(table["name"]) == ["small digits"] and list(table["tags"]) == ["digits, quick"]
    at.multiselect(key="runs_tags").set_value(["quick"]).run()
    assert len(at.dataframe[0].value) == 1
    at.text_input(key="runs_search").input("no such run").run()
    assert len(at.dataframe[0].value) == 0


def test_explore_charts_follow_per_core_ranks_and_one_core_has_no_rank(app_home):
    at = new_app().run()
    at.toggle(key="per_core").set_value(True).run()
    at.slider(key="rank_4_1").set_value(1)
    at.slider(key="rank_4_2").set_value(64)
    at.slider(key="rank_4_3").set_value(1).run()
    expected = ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), (1, 64, 1))
    assert metric(at, "TT layer weights") == f"{expected:,}"
    assert not [slider for slider in at.slider if slider.key == "max_rank"], "per-core ranks replace the max-rank slider"
    at.run()  # the charts come with the second drawing
    vs_rank, bars = [chart for chart in charts(at) if chart["layout"]["title"]["text"] in (
        "Layer weights by max TT rank", "Other factorizations of this layer")]
    star = next(trace for trace in vs_rank["data"] if trace.get("marker", {}).get("symbol") == "star")
    assert star["y"] == [expected] and star["name"] == "yours (r=1,64,1)"
    bar = bars["data"][0]
    own = [index for index, text in enumerate(bar["text"]) if "yours" in text]
    assert [bar["x"][index] for index in own] == [expected]
    # a one-core layer is dense: no rank slider, no per-core toggle, "1 core"
    at.toggle(key="per_core").set_value(False).run()
    at.selectbox(key="preset").select("Custom shapes").run()
    at.text_input(key="in_modes").input("1024")
    at.text_input(key="out_modes").input("1024").run()
    assert not at.exception and not at.error
    assert not [slider for slider in at.slider if slider.key == "max_rank"]
    assert [toggle.key for toggle in at.toggle] == ["typed_net"]  # no per-core toggle; the typed-network switch stays
    assert any("One core" in item.value for item in at.caption)
    at.run()
    assert any(chart["layout"]["title"]["text"].startswith("1 core (a dense layer") for chart in charts(at))


def test_explore_names_tags_and_says_a_configuration_was_already_trained(app_home):
    store = RunStore()
    at = new_app().run()
    at.selectbox(key="dataset").select("digits").run()
    at.number_input(key="epochs").set_value(1)
    at.number_input(key="train_limit").set_value(200).run()
    config = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layer": "tt", "in_modes": "2x4x4x2",
                                  "out_modes": "2x4x4x2", "ranks": at.slider(key="max_rank").value, "epochs": 1,
                                  "batch_size": 64, "lr": 3e-3, "seed": 0, "train_limit": 200})
    done = finished_run(store, config, name="earlier try", accuracy=0.7)
    at.run()
    notice = " ".join(item.value for item in at.caption)
    assert "already trained" in notice and "earlier try" in notice
    at.text_input(key="run_name").input("second try")
    at.multiselect(key="run_tags").set_value(["repeat"])
    at.button(key="train_submit").click().run()
    assert not at.exception and at.title[0].value == "Train"
    new = next(run for run in store.list_runs() if run["id"] != done)
    assert (new["name"], new["tags"], new["config_key"]) == ("second try", ["repeat"], store.get_run(done)["config_key"])


def test_sweep_page_estimates_before_it_runs_and_refuses_missing_data(app_home):
    at = new_app()
    at.switch_page("pages/sweep.py").run()
    at.selectbox(key="sweep_dataset_custom").set_value("digits")
    at.text_area(key="sweep_shapes_custom").input("8x8")
    at.text_input(key="sweep_ranks_custom").input("1,100000").run()
    assert not at.exception
    texts = " ".join(item.value for item in at.markdown)
    assert "5 runs, " in texts and "2 TT, 1 dense, 2 matrix rank" in texts
    captions = " ".join(item.value for item in at.caption)
    assert "matrix-rank baseline 64x64: rank 100000 is above the full rank 64" in captions
    assert not at.button(key="sweep_run").disabled
    at.selectbox(key="sweep_dataset_custom").set_value("mnist").run()
    assert at.button(key="sweep_run").disabled
    assert any("not on this machine" in item.value for item in at.warning)
    at.text_area(key="sweep_shapes_custom").input("4x8x8").run()
    assert any(item.value.startswith("**TT shapes**") for item in at.error)


def test_a_picker_label_that_moved_on_is_no_pick_and_keeps_its_run(app_home):
    """The browser sends a picked run back as its label; when the label changed since (the run was interrupted,
    then completed), Streamlit hands the old label to the page: Train maps it back to its run instead of pinning
    the view to a run that is not there (CI saw a run vanish from the dashboard it had just been queued to)."""
    store = RunStore()
    run_id = finished_run(store, RunConfig.for_dataset("digits", epochs=1), status="interrupted", name="first", ago_s=5)
    at = new_app()
    at.switch_page("pages/train.py").run()
    picker = at.multiselect(key="train_watch")
    old_label = f"interrupted · first · #{run_id[-6:]}"
    assert picker.value == [run_id] and picker.format_func(run_id) == old_label
    store.finish(run_id, "completed")
    at.run()
    assert at.multiselect(key="train_watch").format_func(run_id) == f"first · #{run_id[-6:]}"
    at.multiselect(key="train_watch").set_value([old_label]).run()  # the browser's copy, from before
    assert not at.exception
    assert "runs" not in at.query_params  # still following runs automatically: nothing was picked
    assert at.multiselect(key="train_watch").value == [run_id]
    assert not at.warning, [warning.value for warning in at.warning]
    assert any(run_id in str(link.proto) for link in at.get("page_link"))  # its row, linking to its page
    # a real pick of the same run by its old label pins it, by id
    at.multiselect(key="train_watch").set_value([]).run()
    assert at.query_params["runs"] in ("", [""])
    at.multiselect(key="train_watch").set_value([old_label]).run()
    assert at.query_params["runs"] in (run_id, [run_id]) and at.multiselect(key="train_watch").value == [run_id]
