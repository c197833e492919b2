"""A submission happens once: a double click, ten quick clicks or two threads at once queue one run;
a deliberate "queue another anyway" queues two; a different name, tags or config is another run."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from ttexplore.runs.config import RunConfig
from ttexplore.runs.fit import FitResult
from ttexplore.runs.jobs import JobManager
from ttexplore.runs.store import DUPLICATE_WINDOW_S, RunStore

QUICK = dict(dataset="digits", pad_to=None, in_modes="4x4x4", out_modes="4x4x4", ranks=2, epochs=1, batch_size=32,
             train_limit=64, evals_per_epoch=1)


def quick(**changes) -> RunConfig:
    return RunConfig.from_dict({**QUICK, **changes})


@pytest.fixture
def held_manager(tmp_path):
    """A job manager whose runs wait (running) until the test ends, so submissions stay 'queued or running'."""
    release = threading.Event()

    def waiting_fit(config, dataset=None, callback=None, cancel=None, **kwargs):
        while not release.wait(0.02):
            if cancel is not None and cancel.is_set():
                return FitResult("cancelled", [], None)
        return FitResult("completed", [], None)

    manager = JobManager(RunStore(tmp_path / "runs.db"), max_workers=1, fit_function=waiting_fit, poll_s=0.02)
    yield manager
    release.set()
    manager.shutdown()


def test_two_threads_submitting_at_once_queue_one_run(held_manager):
    barrier = threading.Barrier(2)
    results = []

    def click():
        barrier.wait()
        results.append(held_manager.queue(quick(), name="mine", tags=["a"]))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len({result.run_id for result in results}) == 1
    assert sorted(result.duplicate for result in results) == [False, True]
    assert len(held_manager.store.list_runs()) == 1


def test_ten_quick_clicks_queue_one_run(held_manager):
    ids = [held_manager.submit(quick(), name="clicked", tags=["x", "y"]) for _ in range(10)]
    assert len(set(ids)) == 1 and len(held_manager.store.list_runs()) == 1


def test_another_one_anyway_queues_two(held_manager):
    first = held_manager.queue(quick())
    again = held_manager.queue(quick())
    anyway = held_manager.queue(quick(), allow_duplicate=True)
    assert again.duplicate and again.run_id == first.run_id
    assert not anyway.duplicate and anyway.run_id != first.run_id
    assert len(held_manager.store.list_runs()) == 2


@pytest.mark.parametrize("change", [dict(name="other"), dict(tags=["other"]), dict(config=quick(seed=1)),
                                    dict(sweep="a sweep")])
def test_a_different_submission_is_another_run(held_manager, change):
    base = dict(config=quick(), name="", tags=(), sweep=None)
    first = held_manager.queue(**base)
    second = held_manager.queue(**{**base, **change})
    assert not second.duplicate and second.run_id != first.run_id


def test_a_finished_run_or_an_old_one_does_not_block_a_new_submission(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    first = store.queue_run(quick(), once_within_s=DUPLICATE_WINDOW_S)
    store.finish(first.run_id, "completed")
    second = store.queue_run(quick(), once_within_s=DUPLICATE_WINDOW_S)
    assert not second.duplicate  # training it again is a choice (the app points out it was trained)
    time.sleep(0.15)
    third = store.queue_run(quick(), once_within_s=0.1)  # second is still queued, but older than the window
    assert not third.duplicate and len(store.list_runs()) == 3


def _submit_in_a_process(path, barrier, results):
    barrier.wait()
    submission = RunStore(path).queue_run(quick(), once_within_s=DUPLICATE_WINDOW_S)
    results.put(submission.run_id)


def test_two_processes_submitting_at_once_queue_one_run(tmp_path):
    RunStore(tmp_path / "runs.db")
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(3), context.Queue()
    processes = [context.Process(target=_submit_in_a_process, args=(tmp_path / "runs.db", barrier, results))
                 for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert len({results.get(timeout=10) for _ in processes}) == 1
    assert len(RunStore(tmp_path / "runs.db").list_runs()) == 1


def test_a_sweep_submitted_twice_at_once_queues_each_cell_once(held_manager):
    from ttexplore.experiments.sweep import expand, make_spec
    from ttexplore.experiments.sweep.executors import submit_sweep

    grid = expand(make_spec(datasets="digits", shapes="4x4x4,8x8", ranks="1,2", epochs=1, baselines=False,
                            name="twice"))
    barrier = threading.Barrier(2)
    new_runs = []

    def press():
        barrier.wait()
        new_runs.append(submit_sweep(held_manager, held_manager.store, grid, "twice"))

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    runs = held_manager.store.list_runs(sweep="twice")
    assert len(runs) == len(grid.cells) == 4 and len({run["config_key"] for run in runs}) == 4
    assert sum(len(ids) for ids in new_runs) == 4  # each cell reported new by exactly one press
