"""The run lifecycle: checkpoints, resume equal to an uninterrupted run, the queue in the store,
kill -9 of a serving process, two managers on one store, a bad store file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch

from ttexplore.runs.config import RunConfig
from ttexplore.runs.fit import fit
from ttexplore.runs.jobs import JobManager
from ttexplore.runs.lifecycle import ResumeError, StopFlags, check_resumable, execute, load_checkpoint
from ttexplore.runs.models import load_model
from ttexplore.runs.store import RunStore, StoreError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = dict(dataset="digits", pad_to=None, in_modes="4x4x4", out_modes="4x4x4", ranks=2, epochs=4, batch_size=32,
             train_limit=320, evals_per_epoch=2)


def small(**changes) -> RunConfig:
    return RunConfig.from_dict({**SMALL, **changes})


class StopAfterEpoch:
    """A fit wrapper that interrupts the run once ``epochs`` epochs are checkpointed."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.stop = StopFlags.new()

    def __call__(self, config, dataset=None, on_epoch_end=None, **kwargs):
        def checkpoint_then_maybe_stop(state):
            on_epoch_end(state)
            if state.epochs_done >= self.epochs:
                self.stop.interrupt.set()

        return fit(config, dataset, on_epoch_end=checkpoint_then_maybe_stop, **kwargs)


@pytest.fixture
def one_torch_thread():
    """One intra-op thread for the test, then the session's count back (it used to stay at 1 for every later test)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, one_torch_thread):
    config = small()
    uninterrupted = fit(config)
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(config, status="running")
    stopper = StopAfterEpoch(2)
    execute(store, run_id, stop=stopper.stop, fit_function=stopper)
    run = store.get_run(run_id)
    assert run["status"] == "interrupted" and run["epochs_done"] == 2
    state = load_checkpoint(store.checkpoint_path_for(run_id), config)
    assert state.epochs_done == 2 and state.global_step == 2 * 10
    # an epoch-3 event or two may have been written before the stop: resume drops and redoes them
    check_resumable(store, run_id)
    assert store.requeue(run_id)
    execute(store, run_id)
    run = store.get_run(run_id)
    assert run["status"] == "completed" and run["epochs_done"] == 4
    history = [event for event in store.metrics(run_id) if event["kind"] == "epoch"]
    assert [event["epoch"] for event in history] == [1.0, 2.0, 3.0, 4.0]  # one history, no restart at 0
    assert [event["test_accuracy"] for event in history] == [event["test_accuracy"] for event in uninterrupted.history]
    assert [event["train_loss"] for event in history] == [event["train_loss"] for event in uninterrupted.history]
    assert not store.checkpoint_path_for(run_id).exists()  # a completed run keeps its weights, not a checkpoint
    model, _ = load_model(run["weights_path"])
    for name, tensor in uninterrupted.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_only_finished_runs_with_epochs_left_resume(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    queued = store.create_run(small())
    with pytest.raises(ResumeError, match="queued"):
        check_resumable(store, queued)
    with pytest.raises(ResumeError, match="no run"):
        check_resumable(store, "nope")


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(small(), status="running")
    stopper = StopAfterEpoch(1)
    execute(store, run_id, stop=stopper.stop, fit_function=stopper)
    with pytest.raises(ResumeError, match="another configuration"):
        load_checkpoint(store.checkpoint_path_for(run_id), small(seed=5))
    store.checkpoint_path_for(run_id).write_bytes(b"not a checkpoint")
    with pytest.raises(ResumeError, match="cannot be read"):
        load_checkpoint(store.checkpoint_path_for(run_id), small())


def test_a_cancel_from_another_process_reaches_the_run(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(small(epochs=200), status="running")
    stop = StopFlags.new(store, run_id)
    stop.poll_s = 0.05
    worker = threading.Thread(target=execute, args=(store, run_id), kwargs={"stop": stop})
    worker.start()
    deadline = time.monotonic() + 60
    while not store.metrics(run_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert RunStore(tmp_path / "runs.db").request_cancel(run_id)  # another handle, as another process would
    worker.join(60)
    assert store.get_run(run_id)["status"] == "cancelled"


def test_two_managers_never_take_the_same_run(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    ids = [store.create_run(small(seed=seed)) for seed in range(12)]
    taken: list[str] = []
    lock = threading.Lock()

    def claim_all(handle: RunStore) -> None:
        while (run_id := handle.claim_next()) is not None:
            with lock:
                taken.append(run_id)

    threads = [threading.Thread(target=claim_all, args=(RunStore(tmp_path / "runs.db"),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(taken) == sorted(ids)  # each once


_SERVER = textwrap.dedent("""
    import sys, time
    from ttexplore.runs.config import RunConfig
    from ttexplore.runs.jobs import JobManager
    from ttexplore.runs.store import RunStore
    store = RunStore(sys.argv[1])
    manager = JobManager(store, max_workers=1, torch_threads=1)
    base = dict(dataset="digits", pad_to=None, in_modes="4x4x4", out_modes="4x4x4", ranks=2, batch_size=32,
                train_limit=320, evals_per_epoch=1)
    long_run = manager.submit(RunConfig.from_dict({**base, "epochs": 400}), name="long")
    for seed in (1, 2):
        manager.submit(RunConfig.from_dict({**base, "epochs": 2, "seed": seed}), name=f"waiting {seed}")
    print(long_run, flush=True)
    time.sleep(600)
""")


@pytest.mark.slow
def test_kill_9_of_a_serving_process_loses_nothing(tmp_path):
    db = tmp_path / "runs.db"
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(db)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": REPO})
    try:
        long_run = server.stdout.readline().strip()
        store = RunStore(db)
        deadline = time.monotonic() + 120
        while store.get_run(long_run)["epochs_done"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.get_run(long_run)["epochs_done"] >= 2
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(30)
    statuses = {run["name"]: run["status"] for run in store.list_runs()}
    assert statuses == {"long": "running", "waiting 1": "queued", "waiting 2": "queued"}  # as the kill left them
    manager = JobManager(store, max_workers=1, torch_threads=1)
    try:
        assert manager.recovered == [long_run]
        assert store.get_run(long_run)["status"] == "interrupted"
        waiting = [run["id"] for run in store.list_runs() if run["name"].startswith("waiting")]
        assert all(manager.wait(run_id, 120) == "completed" for run_id in waiting)  # the queue survived the kill
        done_before = store.get_run(long_run)["epochs_done"]
        checkpoint = load_checkpoint(store.checkpoint_path_for(long_run), RunConfig.from_dict(store.get_run(long_run)["config"]))
        # an epoch counts in the store only once its checkpoint is written, so the kill may fall between the two:
        # the checkpoint is then one epoch ahead of the store, never behind it; resume starts from the checkpoint
        assert done_before <= checkpoint.epochs_done <= done_before + 1 and checkpoint.epochs_done >= 1
        manager.resume(long_run)
        deadline = time.monotonic() + 120
        while store.get_run(long_run)["epochs_done"] < done_before + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        manager.cancel(long_run)
        assert manager.wait(long_run, 60) == "cancelled"
        epochs = [event["epoch"] for event in store.metrics(long_run) if event["kind"] == "epoch"]
        assert epochs == [float(epoch) for epoch in range(1, len(epochs) + 1)] and len(epochs) > done_before
    finally:
        manager.shutdown()


def test_a_shutdown_interrupts_running_runs_and_keeps_queued_ones(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    manager = JobManager(store, max_workers=1, torch_threads=1)
    running = manager.submit(small(epochs=400))
    queued = manager.submit(small(seed=3))
    deadline = time.monotonic() + 60
    while store.get_run(running)["epochs_done"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    manager.shutdown()
    assert store.get_run(running)["status"] == "interrupted" and store.get_run(queued)["status"] == "queued"
    successor = JobManager(store, max_workers=1, torch_threads=1)
    try:
        assert successor.wait(queued, 120) == "completed"
    finally:
        successor.shutdown()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_bad_store_file_is_reported_and_kept(tmp_path, damage):
    path = tmp_path / "runs.db"
    if damage == "garbage":
        path.write_bytes(b"this is not a database, but someone's notes" * 100)
    else:
        RunStore(path).create_run(small())
        path.write_bytes(path.read_bytes()[:100])
    before = path.read_bytes()
    with pytest.raises(StoreError, match="mv .*runs.db .*runs.db.bad"):
        RunStore(path).list_runs()
    assert path.read_bytes() == before  # never overwritten


def test_a_read_only_store_says_so(tmp_path, monkeypatch):
    path = tmp_path / "runs.db"
    store = RunStore(path)
    real_connect = sqlite3.connect

    def read_only(*args, **kwargs):  # root writes files whatever their mode, so open the file read-only
        return real_connect(f"file:{path}?mode=ro", uri=True, timeout=kwargs.get("timeout", 5.0),
                            isolation_level=kwargs.get("isolation_level"))

    monkeypatch.setattr(sqlite3, "connect", read_only)
    with pytest.raises(StoreError, match="read-only: make it and its folder writable"):
        store.create_run(small())
    assert store.list_runs() == []  # reading still works


def test_an_old_store_gains_the_new_columns_and_its_runs_load(tmp_path):
    path = tmp_path / "runs.db"
    connection = sqlite3.connect(path)
    connection.executescript("""
        CREATE TABLE runs (id TEXT PRIMARY KEY, created_at REAL NOT NULL, started_at REAL, finished_at REAL,
            status TEXT NOT NULL, config TEXT NOT NULL, config_key TEXT NOT NULL, label TEXT NOT NULL DEFAULT '',
            dataset TEXT NOT NULL, layer TEXT NOT NULL, shape TEXT NOT NULL, ranks TEXT, layer_params INTEGER NOT NULL,
            compression REAL NOT NULL, best_test_accuracy REAL, final_test_accuracy REAL, error TEXT, sweep TEXT,
            weights_path TEXT, host TEXT, pid INTEGER);
    """)
    connection.execute("INSERT INTO runs (id, created_at, status, config, config_key, dataset, layer, shape, layer_params,"
                       " compression) VALUES ('old', 1, 'completed', ?, 'k', 'digits', 'tt', '4x4x4', 96, 0.02)",
                       (small().to_json(),))
    connection.commit()
    connection.close()
    run = RunStore(path).get_run("old")
    assert run["status"] == "completed" and run["tags"] == [] and run["name"] == "" and run["queue"] == "app"


def test_runs_over_the_memory_budget_are_refused_before_they_are_queued(tmp_path, monkeypatch):
    from ttexplore.experiments import sweep
    from ttexplore.runs.resources import ResourceError

    store = RunStore(tmp_path / "runs.db")
    manager = JobManager(store, max_workers=1, torch_threads=1)
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "100000")  # 100 kB: less than any run needs
    try:
        with pytest.raises(ResourceError, match="TTEXPLORE_MEMORY_LIMIT"):
            manager.submit(small())
        grid = sweep.expand(sweep.make_spec("tiny", "digits", "4x4x4", [1]))
        with pytest.raises(ResourceError, match="cell"):
            sweep.submit_sweep(manager, store, grid, "tiny")
        with pytest.raises(ResourceError, match="cell"):
            sweep.run_sweep(store, grid, "tiny")
        assert store.list_runs() == []  # nothing queued or recorded
    finally:
        manager.shutdown()
