"""Run store (SQLite) and job manager: persistence, two writers, cancel, queueing, orphans."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest

from ttexplore.runs.config import RunConfig
from ttexplore.runs.jobs import JobManager
from ttexplore.runs.store import RunStore, default_db_path

QUICK = dict(dataset="digits", pad_to=None, in_modes="4x4x4", out_modes="4x4x4", ranks=2, epochs=1, batch_size=32,
             train_limit=160, evals_per_epoch=1)


def quick(**changes) -> RunConfig:
    return RunConfig.from_dict({**QUICK, **changes})


def event(step, accuracy):
    return {"kind": "eval", "epoch": step / 10, "step": step, "train_loss": 1.0, "train_accuracy": accuracy,
            "test_loss": 1.0, "test_accuracy": accuracy, "elapsed_s": step * 0.1}


def test_default_path_follows_the_environment(isolated_home, monkeypatch):
    assert default_db_path() == isolated_home / "runs.db"
    monkeypatch.setenv("TTEXPLORE_DB", str(isolated_home / "elsewhere.db"))
    assert default_db_path() == isolated_home / "elsewhere.db"


def test_run_life_cycle_survives_reopening(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(quick(label="first"))
    store.mark_running(run_id)
    for step, accuracy in [(0, 0.1), (5, 0.7), (10, 0.6)]:
        store.add_event(run_id, event(step, accuracy))
    store.finish(run_id, "completed", weights_path="/nowhere.pt")
    reopened = RunStore(tmp_path / "runs.db")
    run = reopened.get_run(run_id)
    assert run["status"] == "completed" and run["label"] == "first"
    assert run["best_test_accuracy"] == 0.7 and run["final_test_accuracy"] == 0.6  # step 0 is not a result
    assert run["layer_params"] == 128 and run["config"]["layers"][0]["in_modes"] == [4, 4, 4]
    assert [m["step"] for m in reopened.metrics(run_id)] == [0, 5, 10]
    assert [m["step"] for m in reopened.metrics(run_id, since_seq=0)] == [5, 10]
    assert [run["id"] for run in reopened.list_runs()] == [run_id]
    assert reopened.find_completed(quick()) is not None and reopened.find_completed(quick(seed=9)) is None


def test_delete_removes_metrics_and_weights(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    keep, drop = store.create_run(quick()), store.create_run(quick())
    weights, checkpoint = store.weights_path_for(drop), store.checkpoint_path_for(drop)
    checkpoint.parent.mkdir(parents=True)
    weights.write_bytes(b"x")
    checkpoint.write_bytes(b"x")
    store.add_event(drop, event(1, 0.5))
    store.finish(drop, "completed", weights_path=str(weights))
    assert store.delete_runs([drop]) == 1
    assert store.get_run(drop) is None and store.metrics(drop) == []
    assert not weights.exists() and not checkpoint.exists()
    assert store.get_run(keep) is not None


def test_the_store_never_deletes_or_serves_a_file_outside_its_artifacts(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    precious = tmp_path / "precious.txt"
    precious.write_text("not a model")
    run_id = store.create_run(quick())
    store.finish(run_id, "completed", weights_path=str(precious))  # a row naming any path
    assert store.artifact_path(precious) is None
    assert store.artifact_path(store.artifacts_dir / ".." / "precious.txt") is None
    assert store.artifact_path(store.weights_path_for(run_id)) == store.weights_path_for(run_id).resolve()
    store.delete_runs([run_id])
    assert precious.read_text() == "not a model"


def test_a_run_can_resume_when_it_stopped_and_has_its_checkpoint(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    ids = {status: store.create_run(quick(seed=index)) for index, status in
           enumerate(("interrupted", "cancelled", "failed", "completed", "queued"))}
    for status, run_id in ids.items():
        if status != "queued":
            store.finish(run_id, status)
    assert not any(store.can_resume(store.get_run(run_id)) for run_id in ids.values())  # no checkpoint yet
    for run_id in ids.values():
        store.checkpoint_path_for(run_id).parent.mkdir(parents=True, exist_ok=True)
        store.checkpoint_path_for(run_id).write_bytes(b"x")
    assert {status for status, run_id in ids.items() if store.can_resume(store.get_run(run_id))} == {
        "interrupted", "cancelled", "failed"}


def test_an_upload_is_kept_once_under_its_hash(tmp_path):
    import hashlib

    store = RunStore(tmp_path / "runs.db")
    data = b"weights, as bytes"
    path = store.keep_upload(data)
    assert path == store.artifacts_dir / "uploads" / f"{hashlib.sha256(data).hexdigest()}.pt"
    assert path.read_bytes() == data and store.artifact_path(path) == path.resolve()
    inode = path.stat().st_ino
    assert store.keep_upload(data) == path and path.stat().st_ino == inode  # not written again (touched: in use)
    assert store.keep_upload(b"other bytes") != path


def _write_many(path, worker, count):
    store = RunStore(path)
    config = RunConfig.from_dict({**QUICK, "seed": worker})
    for _ in range(count):
        run_id = store.create_run(config)
        for step in range(5):
            store.add_event(run_id, event(step, 0.5))
        store.finish(run_id, "completed")


def test_two_writer_processes_and_threads_do_not_corrupt_the_store(tmp_path):
    path = tmp_path / "runs.db"
    RunStore(path)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_many, args=(path, worker, 15)) for worker in range(2)]
    threads = [threading.Thread(target=_write_many, args=(path, 10 + worker, 15)) for worker in range(2)]
    for worker in processes + threads:
        worker.start()
    for worker in processes + threads:
        worker.join(120)
    assert all(process.exitcode == 0 for process in processes)
    store = RunStore(path)
    runs = store.list_runs()
    assert len(runs) == 60 and all(run["status"] == "completed" for run in runs)
    metrics = store.metrics_for([run["id"] for run in runs])
    assert all([m["seq"] for m in events] == list(range(5)) for events in metrics.values())


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    path = tmp_path / "fresh.db"  # nobody has created it yet: all of them switch it to WAL at once
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_many, args=(path, worker, 2)) for worker in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    assert len(RunStore(path).list_runs()) == 8


def test_orphaned_runs_are_marked_interrupted(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(quick())
    store.mark_running(run_id)
    store.add_event(run_id, event(3, 0.4))
    with store._connect() as connection:  # pretend a dead process owned it
        connection.execute("UPDATE runs SET pid=? WHERE id=?", (2**22 + 12345, run_id))
    assert store.recover() == [run_id]
    run = store.get_run(run_id)
    assert run["status"] == "interrupted" and "resume" in run["error"]
    assert len(store.metrics(run_id)) == 1


def test_job_manager_runs_saves_and_records(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    manager = JobManager(store, max_workers=2)
    try:
        run_id = manager.submit(quick())
        assert manager.wait(run_id, 120) == "completed"
        run = store.get_run(run_id)
        assert run["status"] == "completed" and run["best_test_accuracy"] is not None
        assert os.path.isfile(run["weights_path"])
        assert [m["step"] for m in store.metrics(run_id)] == [0, 5]
        assert manager.snapshot()[run_id]["last_event"]["step"] == 5
    finally:
        manager.shutdown()


def test_job_manager_limits_concurrency_queues_and_cancels(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    running_now, most = [0], [0]
    lock = threading.Lock()
    release = threading.Event()

    def slow_fit(config, dataset=None, callback=None, cancel=None, data_dir=None, **_):
        from ttexplore.runs.fit import FitResult

        with lock:
            running_now[0] += 1
            most[0] = max(most[0], running_now[0])
        while not release.is_set() and not cancel.is_set():
            time.sleep(0.01)
        with lock:
            running_now[0] -= 1
        return FitResult("cancelled" if cancel.is_set() else "completed", [], None)

    manager = JobManager(store, max_workers=2, fit_function=slow_fit)
    try:
        ids = [manager.submit(quick(seed=seed)) for seed in range(4)]
        deadline = time.monotonic() + 30
        while running_now[0] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # a third worker, if there were one, would start now
        assert [manager.status(i) for i in ids] == ["running", "running", "queued", "queued"]
        assert manager.cancel(ids[3]) and manager.status(ids[3]) == "cancelled"  # never starts
        assert manager.cancel(ids[0])
        assert manager.wait(ids[0], 30) == "cancelled"
        release.set()
        assert manager.wait(ids[1], 30) == "completed" and manager.wait(ids[2], 30) == "completed"
        assert most[0] == 2  # never more than max_workers at once
        assert store.get_run(ids[3])["status"] == "cancelled"
        assert not manager.cancel(ids[1])  # already over
    finally:
        manager.shutdown()


def test_a_run_is_starting_from_its_worker_start_until_its_first_metric(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    first_point, finish = threading.Event(), threading.Event()

    def fit_on_cue(config, dataset=None, callback=None, cancel=None, data_dir=None, **_):
        from ttexplore.runs.fit import FitResult

        first_point.wait(30)
        callback(event(0, 0.1))
        finish.wait(30)
        return FitResult("completed", [], None)

    manager = JobManager(store, max_workers=1, fit_function=fit_on_cue)
    try:
        first, second = manager.submit(quick(seed=0)), manager.submit(quick(seed=1))
        deadline = time.monotonic() + 30
        # the store says running as soon as the worker claims the run; the manager holds it a moment later
        while first not in manager.active() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert manager.status(first) == "running"
        assert manager.starting() == [first]  # the queued one is not starting yet
        time.sleep(0.2)
        assert manager.starting() == [first]  # still no metric: still starting
        first_point.set()
        while manager.starting() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert manager.starting() == [] and len(store.metrics(first)) == 1 and manager.active() == [first]
        assert manager.status(second) == "queued"
        finish.set()
        assert manager.wait(first, 30) == "completed" and manager.wait(second, 30) == "completed"
        assert manager.starting() == []
    finally:
        manager.shutdown()


def test_a_failing_run_reports_its_error_and_the_manager_lives_on(tmp_path):
    store = RunStore(tmp_path / "runs.db")

    def exploding_fit(config, dataset=None, callback=None, cancel=None, data_dir=None, **_):
        raise MemoryError("out of memory in a worker")

    manager = JobManager(store, max_workers=1, fit_function=exploding_fit)
    try:
        bad = manager.submit(quick())
        assert manager.wait(bad, 30) == "failed"
        assert "out of memory" in store.get_run(bad)["error"]
        manager._fit = None  # the real loop again: the same worker still takes work
        good = manager.submit(quick())
        assert manager.wait(good, 120) == "completed"
    finally:
        manager.shutdown()


def test_submit_validates_first(tmp_path):
    manager = JobManager(RunStore(tmp_path / "runs.db"), max_workers=1)
    try:
        with pytest.raises(ValueError):
            manager.submit(RunConfig(lr=-1.0))
        assert manager.store.list_runs() == []
    finally:
        manager.shutdown()


def test_warm_ups_in_one_process_take_turns_and_end_with_their_manager(tmp_path, monkeypatch):
    """Two managers warming up at once (as the app's tests make them) take one optimizer step at a time:
    two first steps at once in threads of one process crashed it. Shutting a manager down waits for its own."""
    from ttexplore.runs import models

    inside, most, lock = [0], [0], threading.Lock()
    real_build = models.build_model

    def slow_build(config):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.3)
        with lock:
            inside[0] -= 1
        return real_build(config)

    monkeypatch.setattr(models, "build_model", slow_build)
    managers = [JobManager(RunStore(tmp_path / f"runs-{index}.db"), max_workers=1, torch_threads=1) for index in range(3)]
    try:
        threads = [manager.warm_up("digits") for manager in managers]
        managers[0].shutdown()  # waits for its own warm-up, whatever order the lock gives
        assert not threads[0].is_alive()
        for thread in threads:
            thread.join(60)
        assert most[0] == 1 and all(manager._warm.is_set() for manager in managers)
    finally:
        for manager in managers:
            manager.shutdown()


def test_warm_up_loads_the_data_and_holds_the_first_run_until_done(tmp_path):
    from ttexplore.runs import data

    data._CACHE.clear()
    manager = JobManager(RunStore(tmp_path / "runs.db"), max_workers=1, torch_threads=1)
    try:
        warming = manager.warm_up("digits")
        run_id = manager.submit(quick())
        warming.join(60)
        assert any(name == "digits" for name, _folder in data._CACHE)
        assert manager.wait(run_id, 120) == "completed"
        manager.warm_up("mnist").join(60)  # absent here: no exception escapes the thread
        assert manager._warm.is_set()
    finally:
        manager.shutdown()
