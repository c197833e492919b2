"""TT-rounding in the app through AppTest: Explore's Train card takes a rank schedule (checked inline in the
page's words), a scheduled run's page marks each rounding and shows the weights in use, and Round and
continue queues a run linked to its parent that starts from the rounded cores."""

from __future__ import annotations

import json

from app_support import app_home, metric, new_app, run_until, shared_data_dir, shown  # noqa: F401

from ttexplore.runs.config import RunConfig
from ttexplore.runs.lifecycle import execute
from ttexplore.runs.store import RunStore
from ttexplore.tt.ttmath import param_count


def test_explore_takes_a_schedule_and_says_what_is_wrong_in_its_words(app_home):
    at = new_app().run()
    at.number_input(key="epochs").set_value(12)
    at.text_input(key="round_to").input("2@5, 4@9").run()
    assert not at.exception
    errors = [shown(item.value) for item in at.error]
    assert any(text.startswith("**Round during training** — rank 4 in 4@9 is not below the TT ranks in use then (at most 2)")
               for text in errors), errors
    at.text_input(key="round_to").input("2@5, 1@12").run()
    assert any("epoch 12 in 1@12 is not before the run's last epoch (Epochs is 12)" in shown(item.value) for item in at.error)
    at.text_input(key="round_to").input("2@5, 1@9").run()
    assert not at.error
    modes = (4, 8, 8, 4)
    expected = (f"Weights of the hidden layers: {param_count(modes, modes, 4):,} weights → {param_count(modes, modes, 2):,} "
                f"after epoch 5 → {param_count(modes, modes, 1):,} after epoch 9")
    assert any(item.value == expected for item in at.caption), [item.value for item in at.caption]
    at.button(key="train_submit").click().run()
    assert not at.exception
    (run,) = RunStore().list_runs()
    assert run["config"]["round_to"] == "2@5,1@9" and run["config"]["epochs"] == 12


def trained_run(round_to=None) -> str:
    store = RunStore()
    config = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "in_modes": "4x4x4", "out_modes": "4x4x4", "ranks": 4,
                                  "epochs": 3, "batch_size": 32, "evals_per_epoch": 1, "train_limit": 320,
                                  "round_to": round_to})
    run_id = store.create_run(config, status="running", name="parent")
    execute(store, run_id, config=config)
    return run_id


def test_a_scheduled_run_page_marks_its_roundings_and_round_and_continue_queues_a_child(app_home):
    run_id = trained_run("2@1")
    at = new_app()
    at.query_params["id"] = run_id
    at.switch_page("pages/run.py").run()
    assert not at.exception, [item.value for item in at.exception]
    two = param_count((4, 4, 4), (4, 4, 4), 2)
    assert metric(at, "Layer weights") == f"{two:,}"  # the weights in use, after the rounding
    at.run()  # the charts come with the second drawing
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    curves = charts[0]  # the training curves come first; the cores' norms and spectra follow
    assert curves["layout"]["title"]["text"].startswith("parent (train dashed")
    assert [shape["x0"] for shape in curves["layout"]["shapes"]] == [1.0, 1.0]
    assert f"→ {two:,} weights" in [note.get("text") for note in curves["layout"]["annotations"]]
    assert any("TT ranks in use now: 2,2." in item.value for item in at.caption)

    at.text_input(key="continue_target").input("4")
    at.button(key="continue_submit").click().run()
    # rank 4 lowers nothing: refused in the page's words
    assert any(shown(item.value).startswith("**Round to** — rank 4 lowers no rank") for item in at.error), [e.value for e in at.error]
    at.text_input(key="continue_target").input("1")
    at.number_input(key="continue_epochs").set_value(1)
    at.button(key="continue_submit").click().run()
    assert not at.exception and not at.error
    store = RunStore()
    child = next(run for run in store.list_runs() if run["id"] != run_id)
    assert child["name"] == "parent rounded to 1" and child["tags"] == ["round-and-continue"]
    start = RunConfig.from_dict(child["config"]).init_from
    assert (start.method, start.run, start.rank) == ("tt-round", run_id, 1)
    assert at.query_params["id"] in (child["id"], [child["id"]])  # the page now shows the child
    run_until(at, lambda now: store.get_run(child["id"])["status"] == "completed", "the child run to finish")
    assert any(link.label.startswith(f"Started from run {run_id} (tt-round)") for link in at.get("page_link"))
    assert store.get_run(child["id"])["layer_params"] == param_count((4, 4, 4), (4, 4, 4), 1)
