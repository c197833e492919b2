"""Iterating from runs, through AppTest on the whole app: the Runs page's seed groups, pinned baseline and
differences table; a run page's validation summary, both weight files, one more seed and Re-run with changes;
Explore prefilled from ``/?from=RUN_ID`` queueing the very same configuration again."""

from __future__ import annotations

import pytest

from app_support import app_home, new_app, run_until, shared_data_dir, shown  # noqa: F401

from ttexplore.presenters import compare
from ttexplore.runs.config import RunConfig
from ttexplore.runs.lifecycle import execute
from ttexplore.runs.store import RunStore

BASE = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "in_modes": "4x4x4", "out_modes": "4x4x4", "ranks": 2,
                            "epochs": 1, "batch_size": 32, "train_limit": 320, "evals_per_epoch": 1})


def frame_with(at, column: str):
    """The first dataframe on the page with ``column`` (a dataframe without selection carries no key to find it by)."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def known(runs: dict) -> set[str]:
    return {*runs["seeds"], runs["other"], runs["held"]}


def record(config: RunConfig, name: str = "") -> str:
    store = RunStore()
    run_id = store.create_run(config, status="running", name=name)
    execute(store, run_id)
    return run_id


@pytest.fixture
def runs(app_home):
    """Three seeds of one experiment, the same at another lr, and a run with a validation split stopped early."""
    seeds = [record(BASE.replace(seed=seed)) for seed in (0, 1, 2)]
    other = record(BASE.replace(lr=0.01), name="faster")
    held = record(BASE.replace(epochs=12, lr=0.05, val_split=0.2, early_stop=1, optimizer="sgd", momentum=0.5),
                  name="held out")
    return {"seeds": seeds, "other": other, "held": held}


def test_the_runs_page_shows_seed_groups_a_pinned_baseline_and_what_differs(runs):
    store = RunStore()
    at = new_app()
    at.switch_page("pages/runs.py").run()
    assert not at.exception, [item.value for item in at.exception]
    groups = at.dataframe(key="runs_groups").value
    row = groups[groups["seeds"] == "0, 1, 2"].iloc[0]
    accuracies = [store.get_run(run_id)["best_test_accuracy"] for run_id in runs["seeds"]]
    assert row["completed"] == 3 and row["accuracy"] == pytest.approx(sum(accuracies) / 3)
    table = frame_with(at, "seed group")
    assert set(table[table["id"].isin(runs["seeds"])]["seeds"]) == {3}

    at.selectbox(key="runs_baseline").select(runs["other"]).run()
    assert store.setting(compare.BASELINE_SETTING) == runs["other"]
    table = frame_with(at, "seed group").set_index("id")
    reference = store.get_run(runs["other"])["best_test_accuracy"]
    assert table.loc[runs["seeds"][0], "Δ acc vs baseline"] == pytest.approx(accuracies[0] - reference)
    assert table.loc[runs["other"], "weights × baseline"] == 1.0
    again = new_app()  # a reload keeps the pin: it is in the run store
    again.switch_page("pages/runs.py").run()
    assert again.selectbox(key="runs_baseline").value == runs["other"]

    at.multiselect(key="runs_compare").set_value([runs["seeds"][0], runs["other"]]).run()
    assert not at.exception
    differ = frame_with(at, "chosen on")
    assert list(differ.columns) == ["run", "lr", *compare.RESULT_COLUMNS]
    at.multiselect(key="runs_compare").set_value(runs["seeds"]).run()
    assert list(frame_with(at, "chosen on").columns) == ["run", "seed", *compare.RESULT_COLUMNS]
    curves = at.get("plotly_chart")
    assert any("mean of 3 seeds" in chart.proto.spec for chart in curves)


def test_a_run_page_offers_one_more_seed_both_weight_files_and_re_run_with_changes(runs):
    store = RunStore()
    at = new_app()
    at.query_params["id"] = runs["held"]
    at.switch_page("pages/run.py").run()
    assert not at.exception, [item.value for item in at.exception]
    held = store.get_run(runs["held"])
    captions = " ".join(shown(item.value) for item in at.caption)
    assert f"best validation epoch {held['best_val_epoch']:g}" in captions
    assert f"stopped early at epoch {held['epochs_done']:g} of 12" in captions
    assert "Test acc at best val epoch" in [item.label for item in at.metric]
    assert {"run-weights", "run-best-weights"} <= {item.key for item in at.get("download_button")}
    link = next(item for item in at.get("page_link") if item.proto.label == "Re-run with changes")
    assert link.proto.query_string == f"from={runs['held']}" and not link.proto.disabled

    at.query_params["id"] = runs["seeds"][1]
    at.run()
    at.button(key="run-more-seed").click().run()
    assert not at.exception
    queued = [run for run in store.list_runs() if run["id"] not in known(runs)]
    assert len(queued) == 1 and RunConfig.from_dict(queued[0]["config"]) == BASE.replace(seed=3)


def test_explore_opened_from_a_run_queues_the_same_configuration(runs):
    store = RunStore()
    held = store.get_run(runs["held"])
    at = new_app()
    at.query_params["from"] = runs["held"]
    at.run()
    assert not at.exception, [item.value for item in at.exception]
    state = at.session_state
    assert (state["dataset"], state["in_modes"], state["max_rank"], state["lr"], state["epochs"]) == ("digits", "4x4x4", 2, 0.05, 12)
    assert (state["val_split"], state["early_stop"], state["train_limit"]) == (0.2, 1, 320)
    assert "Prefilled from run" in " ".join(item.value for item in at.markdown)
    assert "optimizer sgd · momentum 0.5" in " ".join(shown(item.value) for item in at.caption)
    at.button(key="train_submit").click().run()
    assert not at.exception
    queued = [run for run in store.list_runs() if run["id"] not in known(runs)]
    assert len(queued) == 1 and queued[0]["config_key"] == held["config_key"]
    assert RunConfig.from_dict(queued[0]["config"]) == RunConfig.from_dict(held["config"])


def test_a_dense_run_reruns_with_every_layer_typed(app_home):
    dense = record(BASE.dense_twin())
    at = new_app()
    at.query_params["id"] = dense
    at.switch_page("pages/run.py").run()
    link = next(item for item in at.get("page_link") if item.proto.label == "Re-run with changes")
    assert not link.proto.disabled
    at = new_app()
    at.query_params["from"] = dense
    at.run()
    assert not at.exception and not at.error, [item.value for item in at.error]
    assert at.session_state["typed_net"] and at.session_state["more_layers"] == [
        layer.text() for layer in BASE.dense_twin().layers]


def test_a_run_of_zero_epochs_from_trained_weights_loads_too(app_home):
    start = BASE.replace(epochs=0, init_from={"path": "/nowhere/w.pt", "sha256": "a" * 64, "run": "r1"}, ranks=4)
    run_id = RunStore().create_run(start, status="completed")
    at = new_app()
    at.query_params["from"] = run_id
    at.run()
    assert not at.exception, [item.value for item in at.exception]
    assert at.session_state["epochs"] == 0 and at.number_input(key="epochs").value == 0
    assert "starts from TT-SVD of run r1" in " ".join(shown(item.value) for item in at.caption)
