"""The Ray executor: each cell a Ray task, on a cluster or on a local Ray started for the sweep.

Tasks return their events and the driver writes them: a cluster's nodes need
not see the driver's disk, and SQLite must not be shared over a network
filesystem. The price: a Ray cell's metrics appear when it ends, not epoch by
epoch. Ray is imported only here, only when asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from ttexplore.experiments.sweep.cell_training import (STOPPED, DoneCallback, default_workers, interrupt_unfinished,
                                                       threads_per_worker, train_cell)
from ttexplore.experiments.sweep.spec import SweepCell
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.store import RunStore

__all__ = ["import_ray", "run_ray"]


def _ray_train(config_values: dict[str, Any], data_dir: Optional[str], threads: int) -> dict[str, Any]:
    """A Ray task: train one cell and return its summary with every metric event (the driver records them)."""
    import torch

    torch.set_num_threads(threads)
    events: list[dict[str, Any]] = []
    summary = train_cell(RunConfig.from_dict(config_values), data_dir, events.append)
    return {**summary, "events": events}


def import_ray() -> Any:
    """``import ray``, or a :class:`ConfigError` (field ``executor``) saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("executor", "the ray executor needs Ray, which is not installed: "
                                      "pip install -r requirements-ray.txt (or pip install 'ray[default]'), "
                                      "or use --executor local") from None
    return ray


def run_ray(store: RunStore, jobs: Sequence[tuple[str, SweepCell]], workers: Optional[int] = None,
            data_dir: Optional[str] = None, on_done: Optional[DoneCallback] = None, address: Optional[str] = None) -> None:
    """Run recorded cells as Ray tasks, one CPU each, and record their results as they return.

    Without ``address`` a local Ray is started with ``workers`` CPUs (default:
    the cores) and no dashboard, and shut down at the end; with it, the cluster
    at ``address`` is joined. The ``ttexplore`` package is shipped to the workers
    as a ``py_modules`` runtime environment, so they run the driver's code (they
    still need torch and the datasets). A run stays ``queued`` in the store
    until its task returns; then its events, status and error are written.
    """
    if not jobs:
        return
    ray = import_ray()
    connected_here = not ray.is_initialized()
    if connected_here:
        try:
            if address:
                ray.init(address=address, **_init_options())
            else:
                ray.init(num_cpus=workers or default_workers(), **_init_options())
        except Exception as error:  # noqa: BLE001 - reported with the flag to fix
            interrupt_unfinished(store, [run_id for run_id, _ in jobs], f"Ray could not start: {error}")
            where = f"join the Ray cluster at {address}" if address else "start a local Ray"
            raise ConfigError("address" if address else "executor",
                              f"could not {where}: {type(error).__name__}: {error}") from None
    threads = 1 if address else threads_per_worker(int(ray.cluster_resources().get("CPU", 1)))
    task = ray.remote(num_cpus=1, max_retries=0)(_ray_train)
    pending = {task.remote(cell.config.to_dict(), data_dir, threads): (run_id, cell) for run_id, cell in jobs}
    try:
        _record_as_they_end(ray, store, pending, on_done)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        interrupt_unfinished(store, [run_id for run_id, _ in jobs], STOPPED)
        if connected_here:
            ray.shutdown()  # stops the local Ray started above; from a cluster it only disconnects


def _init_options() -> dict[str, Any]:
    """``ray.init`` keywords: no dashboard, quiet workers, and the ``ttexplore`` package shipped to them."""
    import ttexplore

    package = Path(ttexplore.__file__).resolve().parent
    return {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING",
            "runtime_env": {"py_modules": [str(package)]}}


def _record_as_they_end(ray: Any, store: RunStore, pending: dict[Any, tuple[str, SweepCell]],
                        on_done: Optional[DoneCallback]) -> None:
    """Wait for the tasks in ``pending`` (``{task ref: (run_id, cell)}``) and write each one's events and status
    to the store as it ends, removing it from ``pending``; a task that raised fails its cell."""
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        run_id, cell = pending.pop(ready[0])
        try:
            summary = ray.get(ready[0])
        except Exception as error:  # noqa: BLE001 - a failed task fails its cell, not the sweep
            summary = {"status": "failed", "error": f"the Ray task failed: {type(error).__name__}: {error}", "events": []}
        store.mark_running(run_id)
        for event in summary.pop("events", []):
            store.add_event(run_id, event)
        store.finish(run_id, summary["status"], error=summary.get("error"))
        if on_done is not None:
            on_done(cell, run_id, summary)
