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
    """

    cells: list[SweepCell]
    done: dict[str, dict[str, Any]]
    active: dict[str, dict[str, Any]]
    todo: list[SweepCell]
    interrupted: list[str] = field(default_factory=list)


def _owner_alive(run: dict[str, Any]) -> bool:
    """True unless the run's process is known to be gone (only checkable on this host)."""
    if run.get("host") != socket.gethostname():
        return True
    return run.get("pid") == os.getpid() or pid_alive(run.get("pid") or 0)


def plan_sweep(store: RunStore, cells: Sequence[SweepCell], name: str, resume: bool = True) -> SweepPlan:
    """Match ``cells`` against the runs already recorded under sweep ``name``.

    Runs of the sweep left ``queued``/``running`` by a process that no longer
    exists (a crash, a killed terminal) are marked ``interrupted`` and their
    cells redone; failed, diverged and cancelled cells are redone too.

    Args:
        resume: ``False`` reruns completed cells as well.
    """
    done: dict[str, dict[str, Any]] = {}
    active: dict[str, dict[str, Any]] = {}
    interrupted: list[str] = []
    for run in store.list_runs(sweep=name):  # newest first
        key = run["config_key"]
        if run["status"] == "completed":
            done.setdefault(key, run)
        elif run["status"] in ACTIVE_STATUSES:
            if _owner_alive(run):
                active.setdefault(key, run)
            else:
                store.finish(run["id"], "interrupted",
                             error=f"the process running it (pid {run.get('pid')}) is gone; the sweep redoes the cell")
                interrupted.append(run["id"])
    todo = [cell for cell in cells if (not resume or cell.key not in done) and cell.key not in active]
    return SweepPlan(list(cells), done, active, todo, interrupted)

