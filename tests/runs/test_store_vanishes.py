"""A run store whose file is deleted or replaced while in use: a new empty store with its schema
(never a 0-byte file), said once; a replacing file is used; a job manager's poll logs a store
problem once, not at every poll."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time

import pytest

from ttexplore.runs.config import RunConfig
from ttexplore.runs.fit import FitResult
from ttexplore.runs.jobs import JobManager
from ttexplore.runs.store import RunStore, StoreError

QUICK = dict(dataset="digits", pad_to=None, in_modes="4x4x4", out_modes="4x4x4", ranks=2, epochs=1, batch_size=32,
             train_limit=64, evals_per_epoch=1)


def quick(**changes) -> RunConfig:
    return RunConfig.from_dict({**QUICK, **changes})


def tables(path) -> set[str]:
    """The tables of the SQLite file at ``path``, read with SQLite itself."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def store_warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name.startswith("ttexplore") and record.levelno >= logging.WARNING]


def test_a_deleted_store_is_made_again_with_its_schema_and_said_once(tmp_path, caplog):
    store = RunStore(tmp_path / "runs.db")
    store.create_run(quick())
    store.path.unlink()
    with caplog.at_level(logging.WARNING):
        for _ in range(20):
            assert store.list_runs() == []
    assert store.path.stat().st_size > 0 and {"runs", "metrics"} <= tables(store.path)
    assert store.notice == f"the run store {store.path} was deleted while in use: a new, empty store was made there"
    assert store_warnings(caplog) == [store.notice]
    run_id = store.create_run(quick())  # and it works as a store again
    assert [run["id"] for run in store.list_runs()] == [run_id]


def test_a_deleted_store_folder_is_made_again_too(tmp_path):
    store = RunStore(tmp_path / "home" / "runs.db")
    shutil.rmtree(tmp_path / "home")
    assert store.get_run("nothing") is None and {"runs", "metrics"} <= tables(store.path)


def test_a_store_replaced_by_another_is_used(tmp_path, caplog):
    store = RunStore(tmp_path / "runs.db")
    store.create_run(quick())
    other = RunStore(tmp_path / "other.db")
    kept = other.create_run(quick(seed=3), name="from the backup")
    shutil.copy(other.path, tmp_path / "copy.db")
    os.replace(tmp_path / "copy.db", store.path)  # as mv puts a backup back
    with caplog.at_level(logging.WARNING):
        assert [run["id"] for run in store.list_runs()] == [kept]
        store.list_runs()
    assert "was replaced by another file" in store.notice and len(store_warnings(caplog)) == 1


def test_a_store_replaced_by_garbage_is_refused_every_time_and_never_overwritten(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    store.path.unlink()
    store.path.write_bytes(b"not sqlite at all" * 100)
    for _ in range(3):
        with pytest.raises(StoreError) as caught:
            store.list_runs()
        assert caught.value.reason == "not-a-store" and str(store.path) in str(caught.value)
    assert store.path.read_bytes() == b"not sqlite at all" * 100


def test_a_job_manager_survives_its_store_vanishing_and_logs_once(tmp_path, caplog):
    def instant_fit(config, dataset=None, callback=None, **kwargs):
        return FitResult("completed", [], None)

    store = RunStore(tmp_path / "runs.db")
    manager = JobManager(store, max_workers=2, fit_function=instant_fit, poll_s=0.02)
    try:
        with caplog.at_level(logging.WARNING):
            store.path.unlink()
            time.sleep(0.5)  # ~50 polls by two workers
            run_id = manager.submit(quick())
            assert manager.wait(run_id, timeout=30) == "completed"
        assert store_warnings(caplog) == [store.notice] and "was deleted while in use" in store.notice
        assert store.path.stat().st_size > 0
    finally:
        manager.shutdown()


def test_a_job_manager_logs_a_lasting_store_problem_once(tmp_path, caplog):
    store = RunStore(tmp_path / "runs.db")
    manager = JobManager(store, max_workers=2, poll_s=0.02)
    try:
        with caplog.at_level(logging.WARNING):
            garbage = tmp_path / "garbage"
            garbage.write_bytes(b"garbage" * 1000)
            os.replace(garbage, store.path)  # a file that is not a store takes its place
            time.sleep(0.5)
        problems = [line for line in store_warnings(caplog) if "works again" not in line]
        assert len(problems) == 1 and "not a readable SQLite database" in problems[0], problems
        store.path.unlink()  # gone again: the store is made anew and the workers say it works
        with caplog.at_level(logging.WARNING):
            deadline = time.monotonic() + 10
            while not any("works again" in line for line in store_warnings(caplog)) and time.monotonic() < deadline:
                time.sleep(0.05)
        assert any("works again" in line for line in store_warnings(caplog))
    finally:
        manager.shutdown()
