"""How many runs a sweep queues and roughly how long they take, before it starts (the Sweep page says so
next to its button). The estimate learns from the runs that completed here: seconds per unit of
:func:`~ttexplore.experiments.sweep.spec.estimated_cost`, per layer kind."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from ttexplore.experiments.sweep.spec import cell_kind, estimated_cost
from ttexplore.runs.config import ConfigError, RunConfig

__all__ = ["sweep_estimate", "DEFAULT_SECONDS_PER_COST"]

#: Seconds per unit of :func:`ttexplore.experiments.sweep.estimated_cost` before any run here has finished,
#: measured on a busy 2-core machine, for networks with TT cores and for the others (TT layers pay a
#: per-core overhead the FLOPs do not show).
DEFAULT_SECONDS_PER_COST = {"with TT cores": 1.5e-9, "without": 2e-10}


def _kind(config: RunConfig) -> str:
    """What a config's rate is learned by: the kind of its first hidden layer with TT cores, else of its first
    (:func:`~ttexplore.experiments.sweep.spec.cell_kind`: a TT CNN by its TT convolutions, not its first conv)."""
    return cell_kind(config)


def _default_rate(config: RunConfig) -> float:
    return DEFAULT_SECONDS_PER_COST["with TT cores" if any(layer.has_tt_cores for layer in config.layers) else "without"]


def _seconds_per_cost(runs: Iterable[Mapping[str, Any]]) -> tuple[dict[str, float], int]:
    """Median seconds per cost unit of the completed runs, per kind of first hidden layer, and how many runs
    it rests on."""
    ratios: dict[str, list[float]] = {}
    for run in runs:
        if run.get("status") != "completed" or not run.get("started_at") or not run.get("finished_at"):
            continue
        try:
            config = RunConfig.from_dict(run["config"])
        except (ConfigError, KeyError, TypeError, ValueError):
            continue
        seconds = run["finished_at"] - run["started_at"]
        if seconds > 0:
            ratios.setdefault(_kind(config), []).append(seconds / estimated_cost(config))
    rates: dict[str, float] = {}
    for layer, values in ratios.items():
        values.sort()
        rates[layer] = values[len(values) // 2]
    return rates, sum(len(values) for values in ratios.values())


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
        finished: saved runs; the completed ones calibrate the estimate (seconds per unit of
            :func:`~ttexplore.experiments.sweep.estimated_cost`, per layer kind).

    Returns:
        ``{"runs", "seconds", "text", "basis"}``: ``seconds`` is the wall time with the runs spread
        over the workers (never less than the longest run).
    """
    rates, measured = _seconds_per_cost(finished)
    each = [estimated_cost(config) * rates.get(_kind(config), _default_rate(config)) for config in configs]
    workers = max(1, int(workers))
    seconds = max(sum(each) / workers, max(each, default=0.0))
    basis = (f"from the times of {measured} finished run{'s' if measured != 1 else ''}" if measured
             else "a rough guess until runs finish here")
    count = len(configs)
    text = (f"{count} run{'s' if count != 1 else ''}, {_rough_duration(seconds)} on {workers} "
            f"worker{'s' if workers != 1 else ''}")
    return {"runs": count, "seconds": seconds, "text": text, "basis": basis}
