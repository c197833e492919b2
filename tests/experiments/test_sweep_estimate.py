"""ttexplore.experiments.sweep.estimate: how many runs a sweep queues and roughly how long they take."""

from __future__ import annotations

import pytest

from ttexplore.experiments.sweep import sweep_estimate
from ttexplore.runs.config import RunConfig


def test_sweep_estimate_counts_runs_and_learns_from_finished_ones():
    configs = [RunConfig.for_dataset("digits", epochs=1, ranks=rank) for rank in (1, 2, 3, 4)]
    guess = sweep_estimate(configs, [], workers=2)
    assert guess["runs"] == 4 and guess["seconds"] > 0 and "rough guess" in guess["basis"]
    assert guess["text"].startswith("4 runs, ") and guess["text"].endswith("on 2 workers")
    done = {"id": "done", "status": "completed", "config": configs[0].to_dict(),
            "started_at": 1000.0, "finished_at": 1100.0}  # the first config took 100 s
    measured = sweep_estimate(configs[:1], [done], workers=1)
    assert measured["seconds"] == pytest.approx(100.0) and measured["basis"] == "from the times of 1 finished run"
    assert measured["text"] == "1 run, about 2 min on 1 worker"


def test_a_run_of_zero_epochs_teaches_no_rate_and_divides_nothing(tmp_path):
    """A compressed net (TT-SVD, evaluated as it is) records 0 epochs: its cost is 0 and it trained nothing."""
    config = RunConfig.for_dataset("digits", epochs=1, ranks=2)
    evaluated = RunConfig.for_dataset("digits", epochs=0, ranks=2, init_from={"path": str(tmp_path / "w.pt"), "sha256": "0" * 64})
    finished = [{"id": "eval", "status": "completed", "config": evaluated.to_dict(), "started_at": 10.0, "finished_at": 12.0}]
    estimate = sweep_estimate([config], finished, workers=1)
    assert estimate["basis"] == "a rough guess until runs finish here" and estimate["seconds"] > 0
