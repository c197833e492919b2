"""ttexplore.experiments.sweep.executors: the local process pool and Ray end to end, resume after a run, a missing Ray."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from ttexplore.experiments import sweep
from ttexplore.runs.config import ConfigError
from ttexplore.runs.store import RunStore

# a 2-cell sweep that trains in well under a second per cell
TINY = dict(name="tiny", datasets="digits", shapes="4x4x4,8x8", ranks="1", epochs=1, train_limit=300, baselines=False)
_HAVE_RAY = importlib.util.find_spec("ray") is not None


@pytest.mark.slow
def test_local_executor_end_to_end_then_resume_runs_nothing(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    grid = sweep.expand(sweep.make_spec(**TINY))
    finished = []
    plan = sweep.run_sweep(store, grid, "tiny", executor="local", workers=2,
                           on_done=lambda cell, run_id, summary: finished.append(summary["status"]))
    assert len(plan.todo) == 2 and finished == ["completed", "completed"]
    rows = sweep.sweep_results(store, grid.cells, "tiny")
    assert [row["status"] for row in rows] == ["completed", "completed"]
    read_back = sweep.cells_from_store(store, "tiny")  # what the app shows for a sweep launched elsewhere
    assert [(cell.key, cell.shape, cell.rank) for cell in read_back] == \
        [(cell.key, cell.shape, cell.rank) for cell in grid.cells]
    assert all(0 <= row["test_accuracy"] <= 1 and row["epochs"] == 1 for row in rows)
    for row in rows:  # each worker process wrote its own events: the step-0 probe and the epoch
        assert [event["kind"] for event in store.metrics(row["run_id"])] == ["eval", "epoch"]
    runs_before = len(store.list_runs(sweep="tiny"))

    again = sweep.run_sweep(store, grid, "tiny", executor="local", workers=2)
    assert again.todo == [] and len(again.done) == 2
    assert len(store.list_runs(sweep="tiny")) == runs_before
    rerun = sweep.plan_sweep(store, grid.cells, "tiny", resume=False)
    assert len(rerun.todo) == 2


def test_an_unknown_executor_is_a_config_error_before_anything_is_recorded(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    with pytest.raises(ConfigError) as error:
        sweep.run_sweep(store, sweep.expand(sweep.make_spec(**TINY)), "tiny", executor="spark")
    assert error.value.field == "executor" and store.list_runs() == []


def test_missing_ray_is_a_config_error_saying_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ConfigError, match="pip install") as error:
        sweep.import_ray()
    assert error.value.field == "executor"


@pytest.mark.slow
@pytest.mark.skipif(not _HAVE_RAY and os.environ.get("TTEXPLORE_REQUIRE_RAY") != "1",
                    reason="ray is not installed (pip install -r requirements-ray.txt; TTEXPLORE_REQUIRE_RAY=1 makes this fail)")
def test_ray_executor_end_to_end_on_a_local_ray(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    grid = sweep.expand(sweep.make_spec(**TINY))
    finished = []
    sweep.run_sweep(store, grid, "tiny", executor="ray", workers=2,
                    on_done=lambda cell, run_id, summary: finished.append(summary["status"]))
    import ray

    assert not ray.is_initialized()  # the local Ray started for the sweep is shut down after it
    assert finished == ["completed", "completed"]
    rows = sweep.sweep_results(store, grid.cells, "tiny")
    assert all(row["status"] == "completed" and row["test_accuracy"] is not None for row in rows)
    for row in rows:  # the driver recorded the events the tasks returned
        assert [event["kind"] for event in store.metrics(row["run_id"])] == ["eval", "epoch"]


def test_ray_workers_get_the_whole_ttexplore_package():
    import ttexplore
    from ttexplore.experiments.sweep.executors import _init_options

    package = str(Path(ttexplore.__file__).resolve().parent)
    assert _init_options()["runtime_env"]["py_modules"] == [package]
