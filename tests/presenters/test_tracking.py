"""ttexplore.presenters.tracking: what a dashboard follows, labels that tell runs apart, run states,
the hyper-parameter table, filters, smoothing and the app's own words."""

from __future__ import annotations

from datetime import datetime

import pytest

from ttexplore.presenters import plots, reports, tracking

NOW = 1_800_000_000.0


def make_run(run_id, status="completed", name="", tags=(), epochs=5, lr=0.003, seed=0, ranks=4, created=NOW - 60,
             finished=NOW - 30, best=0.9, sweep=None, shape=(4, 8, 8, 4), params=2176, notes=""):
    config = {"layer": "tt", "dataset": "mnist5k", "in_modes": list(shape), "out_modes": list(shape), "ranks": ranks,
              "epochs": epochs, "lr": lr, "batch_size": 64, "seed": seed, "train_limit": None, "optimizer": "adam",
              "weight_decay": 0.0, "momentum": 0.9, "init": "glorot", "pad_to": 32, "evals_per_epoch": 4,
              "strategy": "auto"}
    return {"id": run_id, "status": status, "name": name, "tags": list(tags), "notes": notes, "config": config,
            "layer": "tt", "dataset": "mnist5k", "shape": "x".join(map(str, shape)), "layer_params": params,
            "compression": params / 1048576, "best_test_accuracy": best, "final_test_accuracy": best,
            "created_at": created, "started_at": created + 1 if status != "queued" else None,
            "finished_at": finished if status not in ("queued", "running") else None, "sweep": sweep, "epochs_done": 0}


def test_labels_carry_what_differs_and_names_win():
    runs = [make_run("r-aaaaaa", epochs=1), make_run("r-bbbbbb", epochs=2, lr=0.01), make_run("r-cccccc", name="long run")]
    labels = tracking.distinct_labels(runs)
    assert labels["r-aaaaaa"] == "TT 4x8x8x4 r=4 · mnist5k · 1 epoch · lr 0.003"
    assert labels["r-bbbbbb"] == "TT 4x8x8x4 r=4 · mnist5k · 2 epochs · lr 0.01"
    assert labels["r-cccccc"] == "long run"
    # runs that differ in nothing shown get their short id
    twins = tracking.distinct_labels([make_run("x-111111"), make_run("x-222222")])
    assert twins == {"x-111111": "TT 4x8x8x4 r=4 · mnist5k · #111111", "x-222222": "TT 4x8x8x4 r=4 · mnist5k · #222222"}
    swept = tracking.distinct_labels([make_run("s-1", sweep="grid-a", seed=1), make_run("s-2", sweep="grid-b", seed=2)])
    assert swept["s-1"].endswith("seed 1 · sweep grid-a")


def test_a_picker_label_that_moved_on_maps_back_to_its_run():
    runs = [make_run("20261205-152814-e885d3", status="queued", name="first"), make_run("20261205-152820-0a0b0c")]
    known = [run["id"] for run in runs]
    labels = tracking.distinct_labels(runs, with_id=True)
    assert labels[known[0]] == "first · #e885d3"
    # ids pass through in order, each once; what names no saved run is dropped
    assert tracking.picked_ids([known[1], known[0], known[1], "gone-123456", None, 7], known) == [known[1], known[0]]
    # Streamlit hands back the browser's label when the run's status or name moved on since: the short id decides
    assert tracking.picked_ids(["queued · first · #e885d3"], known) == [known[0]]
    assert tracking.picked_ids(["queued · renamed since #x · #e885d3 · acc 0.912"], known) == [known[0]]
    assert tracking.picked_ids(["first", "queued · first", "#e885d"], known) == []  # no short id: not a pick
    # a short id two saved runs end with names neither
    twins = ["a-e885d3", "b-e885d3"]
    assert tracking.picked_ids(["x · #e885d3"], twins) == [] and tracking.picked_ids(["b-e885d3"], twins) == ["b-e885d3"]


def test_default_watch_is_running_queued_interrupted_and_recent():
    runs = [make_run("q2", status="queued", created=NOW - 5), make_run("q1", status="queued", created=NOW - 9),
            make_run("run", status="running"), make_run("old", finished=NOW - 10 * 86400),
            make_run("new", finished=NOW - 100), make_run("cut", status="interrupted", finished=NOW - 10 * 86400)]
    assert tracking.default_watch(runs, now=NOW) == ["run", "q1", "q2", "cut", "new"]
    assert tracking.default_watch(runs, now=NOW, limit=2) == ["run", "q1"]
    assert tracking.queue_positions(runs) == {"q1": 1, "q2": 2}
    assert tracking.watch_options(runs)[:3] == ["run", "q2", "q1"]


def test_dashboard_runs_pinned_or_default_with_this_tabs_runs_first():
    runs = [make_run("new", status="running"), make_run("done"), make_run("old", finished=NOW - 10 * 86400)]
    assert tracking.dashboard_runs(runs, None, now=NOW) == ["new", "done"]
    assert tracking.dashboard_runs(runs, "old,gone", now=NOW) == ["old"]  # a deleted run drops out of a pinned view
    assert tracking.dashboard_runs(runs, "old", added=["new", "gone"], now=NOW) == ["new", "old"]
    assert tracking.dashboard_runs(runs, "", now=NOW) == []  # pinned to nothing


def test_run_state_says_what_a_run_waits_for():
    queued = tracking.run_state(make_run("q", status="queued"), [], position=2)
    assert queued["waiting"] and queued["text"] == "queued: waiting for a free core (2nd in line)"
    starting = tracking.run_state(make_run("s", status="running"), [])
    assert starting["waiting"] and "first point" in starting["text"]
    events = [{"epoch": 0.0, "test_accuracy": 0.1, "elapsed_s": 0.5}, {"epoch": 2.5, "test_accuracy": 0.8, "elapsed_s": 12.0}]
    running = tracking.run_state(make_run("r", status="running"), events)
    assert not running["waiting"] and running["fraction"] == pytest.approx(0.5)
    assert running["text"] == "epoch 2.5 of 5 · test accuracy 0.800 · 12.0s"
    cut = tracking.run_state(make_run("i", status="interrupted"), events)
    assert cut["text"].startswith("interrupted after epoch 2.5 of 5")


def test_run_state_fraction_and_caption_follow_the_events():
    events = [{"epoch": 0.0, "test_accuracy": 0.1}, {"epoch": 1.5, "test_accuracy": 0.8}]
    running = tracking.run_state(make_run("r", status="running", epochs=4), events)
    assert running["fraction"] == pytest.approx(1.5 / 4)
    assert "epoch 1.5 of 4" in running["text"] and "test accuracy 0.800" in running["text"]
    assert tracking.run_state(make_run("c", epochs=4), [])["fraction"] == 1.0  # completed, whatever its events
    assert tracking.run_state(make_run("late", status="running", epochs=2), [{"epoch": 3.0}])["fraction"] == 1.0
    queued = tracking.run_state(make_run("q", status="queued"), [])
    assert queued["fraction"] == 0.0 and queued["text"] == "queued: waiting for a free core"


def test_epochs_are_said_to_one_decimal_and_a_zero_epoch_run_says_it_only_evaluates():
    # the click-through saw "epoch 25.5079 of 60" (an interrupted run) and "epoch 1.00 of 1" for a 0-epoch run
    cut = tracking.run_state(make_run("i", status="interrupted", epochs=60), [{"epoch": 25.507937, "elapsed_s": 3.0}])
    assert cut["text"].startswith("interrupted after epoch 25.5 of 60 ·")
    whole = tracking.run_state(make_run("w", status="interrupted", epochs=60), [{"epoch": 3.0}])
    assert whole["text"] == "interrupted after epoch 3 of 60"
    assert tracking.run_state(make_run("r", status="running", epochs=60), [{"epoch": 25.96}])["text"] == "epoch 26.0 of 60"
    compressed = tracking.run_state(make_run("c", epochs=0), [{"epoch": 0.0, "test_accuracy": 0.2}])
    assert compressed["fraction"] == 1.0
    assert compressed["text"].startswith("evaluated only (0 epochs) · test accuracy 0.200")
    assert [reports.epoch_text(value) for value in (None, 0, 1.0, 2.5, 25.5079, 0.04)] == ["0", "0", "1", "2.5", "25.5", "0.0"]


def test_status_counts():
    runs = [make_run("a", status="running"), make_run("b", status="queued"), make_run("c", status="queued"), make_run("d")]
    counts = tracking.status_counts(runs)
    assert (counts["running"], counts["queued"], counts["completed"], counts["interrupted"]) == (1, 2, 1, 0)
    assert dict(counts) == {"running": 1, "queued": 2, "completed": 1}  # only the statuses present
    assert sum(tracking.status_counts([]).values()) == 0


def test_started_text_is_local_time_to_the_minute():
    moment = datetime(2026, 1, 2, 3, 4, 59)
    assert tracking.started_text(make_run("a", created=moment.timestamp())) == "2026-01-02 03:04"
    assert tracking.started_text({"id": "b"}) == ""
    assert "on 2026-01-02 03:04" in tracking.already_trained_text(make_run("a", created=moment.timestamp()))


def test_hparams_table_values_durations_and_an_empty_table():
    runs = [make_run("a", params=2176), make_run("x-2", status="failed", best=None), make_run("r", status="running")]
    table = tracking.hparams_table(runs, now=NOW)
    assert list(table["id"]) == ["a", "x-2", "r"]  # in the order given (list_runs: newest first)
    first = table.iloc[0]
    assert first["layer weights"] == 2176 and first["× smaller"] == pytest.approx(1048576 / 2176)
    assert first["best test acc"] == 0.9 and first["final test acc"] == 0.9
    assert first["duration s"] == pytest.approx(29.0)  # started at NOW - 59, finished at NOW - 30
    assert first["started"] == datetime.fromtimestamp(NOW - 60)
    assert table.iloc[1]["best test acc"] != table.iloc[1]["best test acc"]  # NaN: no accuracy
    assert table.iloc[2]["duration s"] == pytest.approx(59.0)  # still running: up to now
    assert (first["epochs"], first["lr"], first["batch"], first["seed"]) == (5, 0.003, 64, 0)
    empty = tracking.hparams_table([])
    assert empty.empty and list(empty.columns) == tracking.hparam_columns()


def test_hparams_table_filters_and_varying_columns():
    runs = [make_run("a", name="alpha", tags=["baseline", "mnist"], lr=0.001, notes="first try"),
            make_run("b", tags=["mnist"], lr=0.01, ranks=100, shape=(4, 4), params=512, status="failed", best=None)]
    table = tracking.hparams_table(runs, now=NOW)
    assert list(table.columns) == tracking.hparam_columns()
    assert list(table["name"]) == ["alpha", "TT 4x4 r=16 · mnist5k"]
    assert list(table["ranks"]) == ["4", "16"]  # as used: 100 is clipped to the maximal useful 16
    assert list(table["tags"]) == ["baseline, mnist", "mnist"]
    assert list(table["lr"]) == [0.001, 0.01]
    assert tracking.varying_hparams(runs) == ["layer weights", "lr"]
    assert [run["id"] for run in tracking.filter_runs(runs, tags=["mnist"])] == ["a", "b"]
    assert [run["id"] for run in tracking.filter_runs(runs, tags=["baseline"])] == ["a"]
    assert [run["id"] for run in tracking.filter_runs(runs, text="FIRST")] == ["a"]
    assert [run["id"] for run in tracking.filter_runs(runs, statuses=["failed"])] == ["b"]
    assert tracking.all_tags(runs) == ["baseline", "mnist"]
    parallel = plots.hparams_parallel(table, ["lr", "layer weights"])
    assert [dimension.label for dimension in parallel.data[0].dimensions] == ["lr (log)", "layer weights (log)", "best test acc"]
    scatter = plots.hparam_scatter(table, "lr")
    assert scatter.layout.xaxis.type == "log" and len(scatter.data) == 1  # the failed run has no accuracy


def test_smoothing_is_debiased_and_skips_gaps():
    assert tracking.smooth([1.0, None, 3.0], 0.0) == [1.0, None, 3.0]
    smoothed = tracking.smooth([2.0, 2.0, None, 2.0], 0.9)
    assert smoothed[0] == pytest.approx(2.0) and smoothed[1] == pytest.approx(2.0) and smoothed[2] is None
    assert tracking.smooth([0.0, 1.0], 0.5)[1] == pytest.approx(2 / 3)


EVENTS = [{"kind": "eval", "epoch": step / 4, "step": step * 10, "elapsed_s": step * 1.5, "train_loss": 2 / (step + 1),
           "test_loss": 2.2 / (step + 1), "train_accuracy": 0.5, "test_accuracy": 0.6} for step in range(5)]


def test_training_curves_x_axes_smoothing_log_loss_and_waiting():
    by_step = plots.training_curves([{"label": "a", "events": EVENTS}], x="step", log_loss=True)
    test_loss = next(trace for trace in by_step.data if trace.name == "a (test)")
    assert list(test_loss.x) == [0, 10, 20, 30, 40]
    assert by_step.layout.xaxis.title.text == "optimizer step" and by_step.layout.yaxis.type == "log"
    by_time = plots.training_curves([{"label": "a", "events": EVENTS}], x="time", smoothing=0.6)
    assert by_time.layout.xaxis.title.text == "wall time (s)"
    raw = [trace for trace in by_time.data if trace.name == "a (test, raw)"]
    assert raw and list(raw[0].x) == [0.0, 1.5, 3.0, 4.5, 6.0]  # the raw points stay, faint, under the smoothed line
    # nothing to draw yet: sensible axes and the reason, not empty axes from -1 to 4
    waiting = plots.training_curves([{"label": "b", "events": [], "epochs": 3, "waiting": "queued: 2nd in line"}])
    assert list(waiting.layout.xaxis.range) == [0, 3.0] and list(waiting.layout.yaxis2.range) == [0.0, 1.0]
    assert "Waiting for the first point" in waiting.layout.annotations[-1].text
    assert "queued: 2nd in line" in waiting.layout.annotations[-1].text
    failed = plots.training_curves([{"label": "c", "events": [], "pending": False, "waiting": "failed before its first point"}])
    assert "No point to draw" in failed.layout.annotations[-1].text and "failed" in failed.layout.annotations[-1].text


def test_already_trained_and_ui_words():
    run = make_run("done", name="paper net", best=0.9712)
    text = tracking.already_trained_text(run)
    assert "paper net" in text and "0.9712" in text
    message = tracking.ui_words("in_modes 4x8x8 multiply to 256; set the folder with --data-dir or TTEXPLORE_DATA",
                                {"in_modes": "Input modes"})
    assert message == "Input modes 4x8x8 multiply to 256; set the folder with the TTEXPLORE_DATA environment variable"
    assert tracking.compression_text(2176 / 1048576) == "482× smaller"
    assert tracking.compression_text(2.0) == "2× larger"


def test_curve_runs_feed_the_training_curves():
    run = make_run("20260101-000000-abcdef")
    events = [{"kind": "eval", "epoch": 0.0, "step": 0, "train_loss": 2.3, "train_accuracy": 0.1, "test_loss": 2.3,
               "test_accuracy": 0.1},
              {"kind": "eval", "epoch": 0.5, "step": 5, "train_loss": 1.0, "train_accuracy": 0.7, "test_loss": 1.1,
               "test_accuracy": 0.7},
              {"kind": "epoch", "epoch": 1.0, "step": 10, "train_loss": 1.4, "train_accuracy": 0.6, "test_loss": 0.5,
               "test_accuracy": 0.85}]
    series = tracking.curve_runs([run], {run["id"]: events})
    label = "TT 4x8x8x4 r=4 · mnist5k"
    assert series == [{"label": label, "events": events, "epochs": 5, "waiting": None, "pending": False}]
    figure = plots.training_curves(series)
    train_loss = next(trace for trace in figure.data if trace.line.dash == "dash")
    # the whole-epoch average is left out of the train line when the epoch already has finer points
    assert list(train_loss.y) == [2.3, 1.0, None]
    # the legend names the run once, then says which line style is which (an exported image keeps it)
    assert [trace.name for trace in figure.data if trace.showlegend is not False] == [label, "train (dashed)", "test (solid)"]
