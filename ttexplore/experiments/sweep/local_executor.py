"""The local executor: a pool of processes on this machine, each writing its runs to the store itself."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ttexplore.experiments.sweep.cell_training import (STOPPED, DoneCallback, default_workers, interrupt_unfinished,
                                                       threads_per_worker, train_cell)
from ttexplore.experiments.sweep.spec import SweepCell
from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore

__all__ = ["run_local"]

#: Per-process state of a pool worker, set by :func:`_init_local_worker`.
_WORKER: dict[str, Any] = {}


def _init_local_worker(db_path: str, data_dir: Optional[str], threads: int, stop: Any) -> None:
    """Process-pool initializer: fix torch's threads, open the store once per process, and leave
    Ctrl-C to the driver, which stops the workers through the shared ``stop`` event."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    _WORKER.update(store=RunStore(db_path), data_dir=data_dir, stop=stop)


def _train_recorded(run_id: str, config_values: dict[str, Any]) -> dict[str, Any]:
    """Train one cell in a pool process, writing its status and events to the store as it goes.

    When the driver sets the stop event the run ends before its next batch and
    is recorded as ``interrupted`` (a later launch of the sweep redoes it).
    """
    store: RunStore = _WORKER["store"]
    stop = _WORKER["stop"]
    summary: dict[str, Any] = {"status": "cancelled", "error": None}
    if not stop.is_set():
        store.mark_running(run_id)
        summary = train_cell(RunConfig.from_dict(config_values), _WORKER["data_dir"],
                             lambda event: store.add_event(run_id, event), cancel=stop)
    if summary["status"] == "cancelled":
        summary.update(status="interrupted", error=STOPPED)
    store.finish(run_id, summary["status"], error=summary["error"])
    return summary



def run_local(store: RunStore, jobs: Sequence[tuple[str, SweepCell]], workers: Optional[int] = None,
              data_dir: Optional[str] = None, on_done: Optional[DoneCallback] = None) -> None:
    """Run recorded cells in a pool of ``workers`` processes (default: one per core).

    Processes are spawned (not forked: a forked torch can hang in its thread
    pool) with ``cores // workers`` torch threads each; each writes its runs to
    the store. A process that dies fails its cell; Ctrl-C stops the running
    cells before their next batch and marks every unfinished cell
    ``interrupted`` (a later launch redoes them).

    Args:
        jobs: ``(run_id, cell)`` pairs, already recorded in ``store`` as queued.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if not jobs:
        return
    workers = min(workers or default_workers(), len(jobs))
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_local_worker,
                               initargs=(str(store.path), data_dir, threads_per_worker(workers), stop))
    futures = {pool.submit(_train_recorded, run_id, cell.config.to_dict()): (run_id, cell) for run_id, cell in jobs}
    try:
        for future in as_completed(futures):
            run_id, cell = futures[future]
            try:
                summary = future.result()
            except Exception as error:  # noqa: BLE001 - a dead worker fails its cell, not the sweep
                summary = {"status": "failed", "error": f"the worker process failed: {type(error).__name__}: {error}"}
                store.finish(run_id, "failed", error=summary["error"])
            if on_done is not None:
                on_done(cell, run_id, summary)
    except BaseException:  # Ctrl-C: running cells stop before their next batch, queued ones never start
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        interrupt_unfinished(store, [run_id for run_id, _ in jobs], STOPPED)
