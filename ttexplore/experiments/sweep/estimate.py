"""How many runs a sweep queues and roughly how long they take, before it starts (the Sweep page says so
next to its button). The estimate learns from the runs that completed here.

A run's time is a setup (loading data, building the model, planning its forward: it does not grow with
the run) plus its training loop, which grows with :func:`~ttexplore.experiments.sweep.spec.estimated_cost`.
:func:`run_times` splits each finished run's time in the two with its metric events (the loop runs from
its first event to its last); :func:`sweep_estimate` takes, per layer kind, the median setup and the loop
seconds per cost unit over all those runs. Timing whole runs instead (the way it was) charged the setup of small runs to the cost
of large ones: a sweep estimated from a few short runs came out about twice too long (BENCHMARKS.md).
"""

from __future__ import annotations

import statistics
from typing import Any, Iterable, Mapping, Optional, Sequence

from ttexplore.experiments.sweep.spec import cell_kind, estimated_cost
from ttexplore.runs.config import ConfigError, RunConfig

__all__ = ["sweep_estimate", "run_times", "DEFAULT_SECONDS_PER_COST", "DEFAULT_SETUP_S", "RECENT_RUNS"]

#: Seconds per unit of :func:`ttexplore.experiments.sweep.estimated_cost` before any run here has finished,
#: measured on a busy 2-core machine (BENCHMARKS.md), for networks with TT cores and for the others (TT
#: layers pay a per-core overhead the FLOPs do not show).
DEFAULT_SECONDS_PER_COST = {"with TT cores": 2e-10, "without": 2e-10}
#: Seconds of a run's setup before a run of its kind has finished here (measured as above: a TT layer's first
#: use of a shape plans and times its forward, 0.2 to 6 s; a warm one, or a dense layer, a tenth of a second).
DEFAULT_SETUP_S = 2.0
#: How many of the newest completed runs the estimate learns from (:func:`run_times` reads their events).
RECENT_RUNS = 100


def _kind(config: RunConfig) -> str:
    """What a config's rate is learned by: the kind of its first hidden layer with TT cores, else of its first
    (:func:`~ttexplore.experiments.sweep.spec.cell_kind`: a TT CNN by its TT convolutions, not its first conv)."""
    return cell_kind(config)


def _default_rate(config: RunConfig) -> float:
    return DEFAULT_SECONDS_PER_COST["with TT cores" if any(layer.has_tt_cores for layer in config.layers) else "without"]


def run_times(store: Any, limit: int = RECENT_RUNS) -> list[dict[str, Any]]:
    """The newest ``limit`` completed runs of ``store``, each with ``train_s`` (its training loop: first to last
    metric event) and ``setup_s`` (the rest of its time, from its start to its end), for :func:`sweep_estimate`.

    Complexity: one read of the runs and one of their events (``limit`` runs at most).
    """
    runs = store.list_runs(status=("completed",), limit=limit)
    events = store.metrics_for([run["id"] for run in runs])
    timed = []
    for run in runs:
        points = [event["elapsed_s"] for event in events.get(run["id"], []) if event.get("elapsed_s") is not None]
        if len(points) < 2 or not run.get("started_at") or not run.get("finished_at"):
            continue
        train = max(points[-1] - points[0], 0.0)
        timed.append({**run, "train_s": train, "setup_s": max(run["finished_at"] - run["started_at"] - train, 0.0)})
    return timed


def _median(values: Sequence[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def _learned(runs: Iterable[Mapping[str, Any]]) -> tuple[dict[str, float], dict[str, float], int]:
    """Seconds per cost unit (the runs' loop seconds over their summed cost, so a large run weighs as much as
    its cost: a tiny run, all per-step overhead, does not set the rate of a sweep's large ones) and median setup
    seconds, each per kind of first hidden layer (a TT layer's setup plans its forward: seconds for ten
    cores; a dense one's is next to nothing), and how many runs they rest on. A run with
    ``train_s``/``setup_s`` (:func:`run_times`) gives both; one without gives its whole time as loop time
    (no setup known)."""
    seconds_by_kind: dict[str, list[float]] = {}
    cost_by_kind: dict[str, list[float]] = {}
    setups: dict[str, list[float]] = {}
    for run in runs:
        if run.get("status") != "completed":
            continue
        try:
            config = RunConfig.from_dict(run["config"])
        except (ConfigError, KeyError, TypeError, ValueError):
            continue
        cost = estimated_cost(config)
        if "train_s" in run:
            seconds = float(run["train_s"])
            setups.setdefault(_kind(config), []).append(float(run.get("setup_s") or 0.0))
        elif run.get("started_at") and run.get("finished_at"):
            seconds = run["finished_at"] - run["started_at"]
        else:
            continue
        if seconds > 0 and cost > 0:  # a run of 0 epochs (a compressed net evaluated as it is) has no loop
            seconds_by_kind.setdefault(_kind(config), []).append(seconds)
            cost_by_kind.setdefault(_kind(config), []).append(cost)
    rates = {layer: sum(seconds_by_kind[layer]) / sum(cost_by_kind[layer]) for layer in seconds_by_kind}
    return (rates, {layer: _median(values) for layer, values in setups.items()},
            sum(len(values) for values in seconds_by_kind.values()))


def _rough_duration(seconds: float) -> str:
    """An estimate's duration, no more precise than it is: ``"under a minute"``, ``"about 16 min"``, ``"about 2 h 10 min"``."""
    if seconds < 60:
        return "under a minute"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


def sweep_estimate(configs: Sequence[Any], finished: Iterable[Mapping[str, Any]], workers: int) -> dict[str, Any]:
    """How many runs a sweep queues and roughly how long they take on ``workers`` cores.

    Args:
        configs: the :class:`~ttexplore.runs.config.RunConfig` of each run to queue.
        finished: saved runs, best as :func:`run_times` gives them; the completed ones calibrate the
            estimate (seconds per unit of :func:`~ttexplore.experiments.sweep.estimated_cost` per layer kind,
            and a run's setup).

    Returns:
        ``{"runs", "seconds", "text", "basis"}``: ``seconds`` is the wall time with the runs spread
        over the workers (never less than the longest run).
    """
    rates, setups, measured = _learned(finished)
    # a kind learnt from whole-run times only (no events) has its setup inside its rate already
    each = [setups.get(_kind(config), 0.0 if _kind(config) in rates else DEFAULT_SETUP_S)
            + estimated_cost(config) * rates.get(_kind(config), _default_rate(config)) for config in configs]
    workers = max(1, int(workers))
    seconds = max(sum(each) / workers, max(each, default=0.0))
    basis = (f"from the times of {measured} finished run{'s' if measured != 1 else ''}" if measured
             else "a rough guess until runs finish here")
    count = len(configs)
    text = (f"{count} run{'s' if count != 1 else ''}, {_rough_duration(seconds)} on {workers} "
            f"worker{'s' if workers != 1 else ''}")
    return {"runs": count, "seconds": seconds, "text": text, "basis": basis}
