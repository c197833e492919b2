"""Running a sweep: record its unfinished cells, then train them locally, on Ray, or on the app's job manager.

* ``local`` (:func:`~ttexplore.experiments.sweep.local_executor.run_local`): a
  pool of processes, one per core by default, each with ``cores // processes``
  torch threads; each process loads the dataset once and writes its runs'
  events to the store itself (SQLite in WAL mode takes several writers).
* ``ray`` (:func:`~ttexplore.experiments.sweep.ray_executor.run_ray`): each cell
  a Ray task, on a cluster given by its address or on a local Ray started for
  the sweep and stopped after it; the driver records what the tasks return.
* the app's :class:`~ttexplore.runs.jobs.JobManager` (:func:`submit_sweep`), so
  sweep cells share the concurrency limit with ordinary training runs.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from ttexplore.experiments.sweep.cell_training import DoneCallback
from ttexplore.experiments.sweep.local_executor import run_local
from ttexplore.experiments.sweep.plan import SweepPlan, plan_sweep
from ttexplore.experiments.sweep.ray_executor import import_ray, run_ray
from ttexplore.experiments.sweep.spec import SweepCell, SweepGrid, estimated_cost
from ttexplore.runs.config import ConfigError
from ttexplore.runs.store import ACTIVE_STATUSES, RunStore

__all__ = ["EXECUTORS", "run_sweep", "submit_sweep", "cancel_sweep"]

EXECUTORS = ("local", "ray")


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
            does not start; field ``"address"`` for a Ray cluster that can not be joined.
    """
    if executor not in EXECUTORS:
        raise ConfigError("executor", f"executor {executor!r} is unknown: use one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        import_ray()
    cells = list(grid.cells if isinstance(grid, SweepGrid) else grid)
    plan = plan_sweep(store, cells, name, resume)
    if on_plan is not None:
        on_plan(plan)
    jobs = [(store.create_run(cell.config, sweep=name), cell) for cell in plan.todo]  # recorded in grid order
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
    the work. Returns the new run ids.
    """
    cells = list(grid.cells if isinstance(grid, SweepGrid) else grid)
    plan = plan_sweep(store, cells, name, resume)
    return [manager.submit(cell.config, sweep=name) for cell in plan.todo]


def cancel_sweep(manager: Any, store: RunStore, name: str) -> int:
    """Cancel the sweep's queued and running runs that ``manager`` owns; returns how many."""
    return sum(bool(manager.cancel(run["id"])) for run in store.list_runs(status=ACTIVE_STATUSES, sweep=name))

