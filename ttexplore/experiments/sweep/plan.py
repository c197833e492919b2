"""Resume: which cells of a sweep the run store already holds, and which still need a run."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any, Sequence

from ttexplore.experiments.sweep.spec import SweepCell
from ttexplore.runs.store import ACTIVE_STATUSES, RunStore, pid_alive

__all__ = ["SweepPlan", "plan_sweep"]


@dataclass
class SweepPlan:
    """Which cells of a sweep still need a run.

    Attributes:
        cells: all cells.
        done: ``{config key: run}`` of cells with a completed run in the sweep.
        active: ``{config key: run}`` of cells queued or running in a live process.
        todo: cells to run now (resume skips ``done``; ``active`` are never doubled).
        interrupted: ids of runs left queued/running by a dead process, now marked ``interrupted``.
        resumable: ``{config key: run id}`` of todo cells whose newest run was interrupted with a
            checkpoint: that run continues (same id, history kept) instead of a new one starting.
    """

    cells: list[SweepCell]
    done: dict[str, dict[str, Any]]
    active: dict[str, dict[str, Any]]
    todo: list[SweepCell]
    interrupted: list[str] = field(default_factory=list)
    resumable: dict[str, str] = field(default_factory=dict)


def _owner_alive(run: dict[str, Any]) -> bool:
    """True unless the run's process is known to be gone (only checkable on this host)."""
    if run.get("host") != socket.gethostname():
        return True
    return run.get("pid") == os.getpid() or pid_alive(run.get("pid") or 0)


def plan_sweep(store: RunStore, cells: Sequence[SweepCell], name: str, resume: bool = True) -> SweepPlan:
    """Match ``cells`` against the runs already recorded under sweep ``name``.

    Runs of the sweep left ``running`` (or queued on the sweep's own queue) by a
    process that no longer exists (a crash, a killed terminal) are marked
    ``interrupted``; a cell whose newest run is interrupted with a checkpoint
    continues from it, other unfinished cells (failed, diverged, cancelled) are
    redone. Runs queued on the app's queue wait for a job manager and count as active.

    Args:
        resume: ``False`` reruns completed cells as well.
    """
    done: dict[str, dict[str, Any]] = {}
    active: dict[str, dict[str, Any]] = {}
    interrupted: list[str] = []
    newest: dict[str, dict[str, Any]] = {}
    for run in store.list_runs(sweep=name):  # newest first
        key = run["config_key"]
        newest.setdefault(key, run)
        if run["status"] == "completed":
            done.setdefault(key, run)
        elif run["status"] in ACTIVE_STATUSES:
            waiting_for_a_manager = run["status"] == "queued" and run.get("queue", "app") == "app"
            if waiting_for_a_manager or _owner_alive(run):
                active.setdefault(key, run)
            else:
                store.finish(run["id"], "interrupted",
                             error=f"the process running it (pid {run.get('pid')}) is gone; the sweep continues the cell")
                interrupted.append(run["id"])
                run["status"] = "interrupted"
    todo = [cell for cell in cells if (not resume or cell.key not in done) and cell.key not in active]
    resumable = {cell.key: newest[cell.key]["id"] for cell in todo
                 if resume and cell.key in newest and newest[cell.key]["status"] == "interrupted"
                 and store.can_resume(newest[cell.key])}
    return SweepPlan(list(cells), done, active, todo, interrupted, resumable)

