"""ttexplore.experiments.sweep.plan: resume skips what is done, redoes what a dead process left, never doubles live runs."""

from __future__ import annotations

import subprocess
import sys

from ttexplore.experiments import sweep
from ttexplore.runs.store import RunStore

# a 2-cell sweep that trains in well under a second per cell
TINY = dict(name="tiny", datasets="digits", shapes="4x4x4,8x8", ranks="1", epochs=1, train_limit=300, baselines=False)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_cells_left_by_a_dead_process_are_redone_and_live_ones_not_doubled(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    first, second = sweep.expand(sweep.make_spec(**TINY)).cells
    orphan = store.create_run(first.config, sweep="tiny")
    store.mark_running(orphan)
    with store._connect() as connection:
        connection.execute("UPDATE runs SET pid=? WHERE id=?", (_dead_pid(), orphan))
    live = store.create_run(second.config, sweep="tiny")  # queued by this (live) process
    plan = sweep.plan_sweep(store, [first, second], "tiny")
    assert plan.interrupted == [orphan] and store.get_run(orphan)["status"] == "interrupted"
    assert [cell.key for cell in plan.todo] == [first.key]
    assert list(plan.active) == [second.key] and plan.active[second.key]["id"] == live
