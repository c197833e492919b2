"""Running a sweep: record its unfinished cells, then train them locally, on Ray, or on the app's job manager.

* ``local`` (:func:`run_local`): a pool of processes, one per core by default,
  each with ``cores // processes`` torch threads; each process loads the
  dataset once and runs its cells through the run lifecycle
  (:func:`ttexplore.runs.lifecycle.execute`: events, checkpoints, weights)
  against the store itself (SQLite in WAL mode takes several writers).
* ``ray`` (:func:`run_ray`): each cell is a Ray task, on a cluster given by its
  address or on a local Ray started for the sweep and stopped after it. Tasks
  return their events and the driver writes them: a cluster's nodes need not
  see the driver's disk, and SQLite must not be shared over a network
  filesystem. The price: a Ray cell's metrics appear when it ends, not epoch by
  epoch, and it has no checkpoints. The driver records each result through
  :func:`ttexplore.runs.lifecycle.record_outcome`, as every other entry point
  does. Ray is imported only here, only when asked for.
* the app's :class:`~ttexplore.runs.jobs.JobManager` (:func:`submit_sweep`), so
  sweep cells share the concurrency limit with ordinary training runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from ttexplore.experiments.sweep.plan import SweepPlan, plan_sweep
from ttexplore.experiments.sweep.spec import SweepCell, SweepGrid, estimated_cost
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.store import ACTIVE_STATUSES, RunStore

__all__ = ["EXECUTORS", "DoneCallback", "run_sweep", "run_local", "run_ray", "import_ray", "submit_sweep",
           "cancel_sweep", "default_workers", "threads_per_worker"]

EXECUTORS = ("local", "ray")

#: ``on_done(cell, run_id, summary)``: called in the driver as each cell ends.
DoneCallback = Callable[[SweepCell, str, dict[str, Any]], None]

#: The error recorded on a cell whose run the sweep stopped (Ctrl-C, a failed executor).
_STOPPED = "the sweep was stopped before this cell ended"


def run_sweep(store: RunStore, grid: "SweepGrid | Sequence[SweepCell]", name: str, executor: str = "local",
              workers: Optional[int] = None, address: Optional[str] = None, resume: bool = True,
              data_dir: Optional[str] = None, on_plan: Optional[Callable[[SweepPlan], None]] = None,
              on_done: Optional[DoneCallback] = None) -> SweepPlan:
    """Run the cells of a sweep that are not done yet, and block until they end.

    Cells are recorded as ``queued`` runs under ``name`` first, in grid order
    (so the app sees the whole grid), then started most expensive first so the
    pool ends evenly.

    Returns:
        The plan that was executed (``plan.todo`` ran).

    Raises:
        ConfigError: field ``"executor"`` for an unknown executor, a missing Ray or a local Ray that
            does not start; field ``"address"`` for a Ray cluster that can not be joined; field
            ``"memory"`` when a cell alone is over the memory budget (nothing is recorded then).
    """
    if executor not in EXECUTORS:
        raise ConfigError("executor", f"executor {executor!r} is unknown: use one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        import_ray()
    cells = list(grid.cells if isinstance(grid, SweepGrid) else grid)
    check_cells_memory(cells)
    plan = plan_sweep(store, cells, name, resume)
    if on_plan is not None:
        on_plan(plan)
    jobs = [(_record_cell(store, plan, cell, name), cell) for cell in plan.todo]  # recorded in grid order
    jobs.sort(key=lambda job: estimated_cost(job[1].config), reverse=True)  # started longest first
    if executor == "ray":
        run_ray(store, jobs, workers, data_dir, on_done, address=address)
    else:
        run_local(store, jobs, workers, data_dir, on_done)
    return plan


def submit_sweep(manager: Any, store: RunStore, grid: "SweepGrid | Sequence[SweepCell]", name: str,
                 resume: bool = True) -> list[str]:
    """Queue the sweep's unfinished cells on a :class:`~ttexplore.runs.jobs.JobManager` (the app's way).

    Cells already completed (with ``resume``) or queued/running in a live
    process are not submitted again, so pressing "run" twice does not double
    the work; two presses at once are caught by the manager (each cell is queued
    once, :meth:`~ttexplore.runs.jobs.JobManager.queue`). Returns the new run ids.
    """
    cells = list(grid.cells if isinstance(grid, SweepGrid) else grid)
    check_cells_memory(cells)
    plan = plan_sweep(store, cells, name, resume)
    new_runs = []
    for cell in plan.todo:
        if cell.key in plan.resumable:
            new_runs.append(manager.resume(plan.resumable[cell.key]))
            continue
        submission = manager.queue(cell.config, sweep=name)
        if not submission.duplicate:
            new_runs.append(submission.run_id)
    return new_runs


def check_cells_memory(cells: Sequence[SweepCell]) -> None:
    """Refuse the whole sweep, before anything is recorded, when one cell alone is over the memory budget.

    Raises:
        ResourceError: (field ``memory``) naming the cell, its estimate and the fix.
    """
    from ttexplore.runs.resources import ResourceError, check_run_memory

    for cell in cells:
        try:
            check_run_memory(cell.config)
        except ResourceError as error:
            raise ResourceError(f"cell {cell.describe()}: {error}") from None


def _record_cell(store: RunStore, plan: SweepPlan, cell: SweepCell, name: str) -> str:
    """The cell's run on the sweep's own queue: its interrupted run again when it has a checkpoint, else a new one."""
    if cell.key in plan.resumable and store.requeue(plan.resumable[cell.key], queue="sweep"):
        return plan.resumable[cell.key]
    return store.create_run(cell.config, sweep=name, queue="sweep")


def cancel_sweep(manager: Any, store: RunStore, name: str) -> int:
    """Cancel the sweep's queued and running runs that ``manager`` owns; returns how many."""
    return sum(bool(manager.cancel(run["id"])) for run in store.list_runs(status=ACTIVE_STATUSES, sweep=name))


# ---------------------------------------------------------------- local processes
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


def _train_recorded(run_id: str) -> dict[str, Any]:
    """Train one recorded cell in a pool process through :func:`ttexplore.runs.lifecycle.execute`
    (events, a checkpoint every epoch, its weights), and return its summary.

    When the driver sets the stop event the run ends before its next batch and
    is recorded as ``interrupted`` (a later launch of the sweep continues it).
    """
    import threading

    from ttexplore.runs.lifecycle import StopFlags, execute

    store: RunStore = _WORKER["store"]
    stop = _WORKER["stop"]
    if stop.is_set():
        return {"status": "interrupted", "error": _STOPPED}
    config = RunConfig.from_dict(store.get_run(run_id)["config"])
    dataset = _load_cell_data(store, run_id, config, _WORKER["data_dir"])
    if dataset is None:
        return _summary(store, run_id)
    execute(store, run_id, stop=StopFlags(threading.Event(), stop, store, run_id), dataset=dataset, config=config)
    return _summary(store, run_id)


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
    futures = {pool.submit(_train_recorded, run_id): (run_id, cell) for run_id, cell in jobs}
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
        _interrupt_unfinished(store, [run_id for run_id, _ in jobs], _STOPPED)


# ---------------------------------------------------------------- Ray
def _ray_train(config_values: dict[str, Any], data_dir: Optional[str], threads: int) -> dict[str, Any]:
    """A Ray task: train one cell; return its status, error, every metric event and the trained
    weights (the driver, which alone sees the store, records them through the same lifecycle)."""
    import torch

    from ttexplore.runs.data import load_dataset
    from ttexplore.runs.fit import fit

    torch.set_num_threads(threads)
    config = RunConfig.from_dict(config_values)
    try:
        dataset = load_dataset(config.dataset, data_dir)
    except Exception as error:  # noqa: BLE001 - reported as the cell's failure
        return {"status": "failed", "error": f"{type(error).__name__}: {error}", "events": [], "state": None}
    result = fit(config, dataset)
    state = result.model.state_dict() if result.model is not None else None
    return {"status": result.status, "error": result.error, "events": result.events, "state": state,
            "elapsed_s": result.elapsed_s}


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
            _interrupt_unfinished(store, [run_id for run_id, _ in jobs], f"Ray could not start: {error}")
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
        _interrupt_unfinished(store, [run_id for run_id, _ in jobs], _STOPPED)
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
    """Wait for the tasks in ``pending`` (``{task ref: (run_id, cell)}``) and record each one as it ends
    (its events, then :func:`ttexplore.runs.lifecycle.record_outcome`: status and weights), removing it
    from ``pending``; a task that raised fails its cell."""
    from ttexplore.runs.fit import FitResult
    from ttexplore.runs.lifecycle import record_outcome
    from ttexplore.runs.models import build_model

    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        run_id, cell = pending.pop(ready[0])
        try:
            outcome = ray.get(ready[0])
        except Exception as error:  # noqa: BLE001 - a failed task fails its cell, not the sweep
            outcome = {"status": "failed", "error": f"the Ray task failed: {type(error).__name__}: {error}",
                       "events": [], "state": None}
        store.mark_running(run_id)
        store.truncate_metrics(run_id, after_epoch=-1)
        for event in outcome["events"]:
            store.add_event(run_id, event)
        model = None
        if outcome.get("state") is not None:
            model = build_model(cell.config)
            model.load_state_dict(outcome["state"])
        record_outcome(store, run_id, cell.config, FitResult(outcome["status"], outcome["events"], model,
                                                             error=outcome.get("error"),
                                                             elapsed_s=outcome.get("elapsed_s", 0.0)))
        if on_done is not None:
            on_done(cell, run_id, _summary(store, run_id))


# ---------------------------------------------------------------- shared by both
def _load_cell_data(store: RunStore, run_id: str, config: RunConfig, data_dir: Optional[str]) -> Any:
    """The cell's dataset (cached per process, so a worker reads it once), or ``None`` after
    recording the run ``failed`` with the reason."""
    from ttexplore.runs.data import load_dataset

    try:
        return load_dataset(config.dataset, data_dir)
    except Exception as error:  # noqa: BLE001 - reported as the cell's failure
        store.finish(run_id, "failed", error=f"{type(error).__name__}: {error}")
        return None


def _summary(store: RunStore, run_id: str) -> dict[str, Any]:
    """A finished cell as the driver reports it: status, error, final and best test accuracy, training seconds."""
    run = store.get_run(run_id) or {}
    events = store.metrics(run_id)
    return {"status": run.get("status"), "error": run.get("error"), "test_accuracy": run.get("final_test_accuracy"),
            "best_test_accuracy": run.get("best_test_accuracy"),
            "seconds": round(events[-1]["elapsed_s"], 3) if events and events[-1].get("elapsed_s") is not None else None}


def default_workers() -> int:
    """Processes of the local executor: one per core."""
    return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """Torch threads in each of ``workers`` processes: the cores shared out, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _interrupt_unfinished(store: RunStore, run_ids: Iterable[str], reason: str) -> None:
    """Mark those of ``run_ids`` still queued or running as ``interrupted``, with ``reason`` as their error."""
    for run_id in run_ids:
        run = store.get_run(run_id)
        if run is not None and run["status"] in ACTIVE_STATUSES:
            store.finish(run_id, "interrupted", error=reason)
