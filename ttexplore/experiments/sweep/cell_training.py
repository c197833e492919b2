"""What every executor shares: training one cell, sharing the cores out, and closing unfinished runs."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Optional

from ttexplore.experiments.sweep.spec import SweepCell
from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import ACTIVE_STATUSES, RunStore

__all__ = ["DoneCallback", "STOPPED", "train_cell", "default_workers", "threads_per_worker", "interrupt_unfinished"]

#: ``on_done(cell, run_id, summary)``: called in the driver as each cell ends.
DoneCallback = Callable[[SweepCell, str, dict[str, Any]], None]

#: The error recorded on a cell whose run the sweep stopped (Ctrl-C, a failed executor).
STOPPED = "the sweep was stopped before this cell ended"


def train_cell(config: RunConfig, data_dir: Optional[str], callback: Callable[[dict[str, Any]], None],
               cancel: Any = None) -> dict[str, Any]:
    """Train one cell; returns its status, error, final and best test accuracy and training seconds.

    The dataset is loaded before the clock starts and cached by the process
    (:func:`ttexplore.runs.data.load_dataset`), so a worker reads it on its first
    cell only and ``seconds`` is training alone.
    """
    from ttexplore.runs.data import load_dataset
    from ttexplore.runs.fit import fit

    try:
        dataset = load_dataset(config.dataset, data_dir)
    except Exception as error:  # noqa: BLE001 - reported as the cell's failure
        return {"status": "failed", "error": f"{type(error).__name__}: {error}", "test_accuracy": None,
                "best_test_accuracy": None, "seconds": None}
    result = fit(config, dataset, callback=callback, cancel=cancel)
    return {"status": result.status, "error": result.error, "test_accuracy": result.final_test_accuracy,
            "best_test_accuracy": result.best_test_accuracy, "seconds": round(result.elapsed_s, 3)}


def default_workers() -> int:
    """Processes of the local executor: one per core."""
    return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """Torch threads in each of ``workers`` processes: the cores shared out, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def interrupt_unfinished(store: RunStore, run_ids: Iterable[str], reason: str) -> None:
    """Mark those of ``run_ids`` still queued or running as ``interrupted``, with ``reason`` as their error."""
    for run_id in run_ids:
        run = store.get_run(run_id)
        if run is not None and run["status"] in ACTIVE_STATUSES:
            store.finish(run_id, "interrupted", error=reason)
