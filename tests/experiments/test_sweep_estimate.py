"""ttexplore.experiments.sweep.estimate: how many runs a sweep queues and roughly how long they take, learnt
from the runs finished here as a setup plus a training loop that grows with the run's cost."""

from __future__ import annotations

import pytest

from ttexplore.experiments.sweep import estimated_cost, run_times, sweep_estimate
from ttexplore.experiments.sweep.estimate import DEFAULT_SETUP_S
from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore


def test_sweep_estimate_counts_runs_and_learns_from_finished_ones():
    configs = [RunConfig.for_dataset("digits", epochs=1, ranks=rank) for rank in (1, 2, 3, 4)]
    guess = sweep_estimate(configs, [], workers=2)
    assert guess["runs"] == 4 and guess["seconds"] > 4 * DEFAULT_SETUP_S / 2 and "rough guess" in guess["basis"]
    assert guess["text"].startswith("4 runs, ") and guess["text"].endswith("on 2 workers")
    done = {"id": "done", "status": "completed", "config": configs[0].to_dict(),
            "started_at": 1000.0, "finished_at": 1100.0}  # the first config took 100 s (setup unknown)
    measured = sweep_estimate(configs[:1], [done], workers=1)
    assert measured["seconds"] == pytest.approx(100.0) and measured["basis"] == "from the times of 1 finished run"
    assert measured["text"] == "1 run, about 2 min on 1 worker"


def test_a_run_of_zero_epochs_teaches_no_rate_and_divides_nothing(tmp_path):
    """A compressed net (TT-SVD, evaluated as it is) records 0 epochs: its cost is 0 and it trained nothing."""
    config = RunConfig.for_dataset("digits", epochs=1, ranks=2)
    evaluated = RunConfig.for_dataset("digits", epochs=0, ranks=2, init_from={"path": str(tmp_path / "w.pt"), "sha256": "0" * 64})
    finished = [{"id": "eval", "status": "completed", "config": evaluated.to_dict(), "started_at": 10.0, "finished_at": 12.0}]
    estimate = sweep_estimate([config], finished, workers=1)
    assert estimate["basis"] == "a rough guess until runs finish here" and estimate["seconds"] > 0


def test_the_setup_is_not_charged_to_the_cost_of_larger_runs():
    # a short run: 10 s of setup and 10 s of training loop; a run four times its cost then takes 10 + 40 s,
    # not the 80 s that whole-run seconds per cost unit (the estimate before issue 20) would say
    short = RunConfig.for_dataset("digits", epochs=1, ranks=2)
    long = short.replace(epochs=4)
    assert estimated_cost(long) == pytest.approx(4 * estimated_cost(short))
    done = {"id": "short", "status": "completed", "config": short.to_dict(), "started_at": 0.0, "finished_at": 20.0,
            "train_s": 10.0, "setup_s": 10.0}
    assert sweep_estimate([long], [done], workers=1)["seconds"] == pytest.approx(50.0)
    assert sweep_estimate([long, long], [done], workers=2)["seconds"] == pytest.approx(50.0)


def test_a_zero_epoch_run_in_the_store_does_not_break_the_estimate():
    # a compressed net evaluated as it is has no training loop: the Sweep page raised ZeroDivisionError on it
    compressed = RunConfig.for_dataset("digits", ranks=2).replace(
        epochs=0, init_from={"path": "dense.pt", "sha256": "0" * 64, "method": "tt-svd"})
    assert estimated_cost(compressed) == 0
    done = {"id": "c", "status": "completed", "config": compressed.to_dict(), "started_at": 0.0, "finished_at": 3.0}
    timed = dict(done, train_s=0.0, setup_s=3.0)
    for runs in ([done], [timed]):
        estimate = sweep_estimate([RunConfig.for_dataset("digits", epochs=1, ranks=3)], runs, workers=2)
        assert estimate["seconds"] > 0


def test_run_times_split_a_run_into_its_setup_and_its_training_loop(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    config = RunConfig.for_dataset("digits", epochs=1, ranks=2)
    run_id = store.create_run(config)
    store.mark_running(run_id)
    for elapsed in (4.0, 6.0, 9.0):  # the first point after 4 s of setup, the last after 9 s
        store.add_event(run_id, {"kind": "eval", "epoch": elapsed / 10, "step": int(elapsed), "elapsed_s": elapsed})
    store.finish(run_id, "completed")
    with store._connect() as connection:
        connection.execute("UPDATE runs SET started_at=100.0, finished_at=110.0 WHERE id=?", (run_id,))
    unfinished = store.create_run(config)
    (timed,) = run_times(store)
    assert timed["id"] == run_id and timed["id"] != unfinished
    assert timed["train_s"] == pytest.approx(5.0) and timed["setup_s"] == pytest.approx(5.0)
