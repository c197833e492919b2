"""Seed groups: runs that differ only by their seed are repeats of one experiment, and their spread is
the seed noise any comparison must beat.

A run's group is :meth:`RunConfig.group_key` (its key without the seed, the label and the device).
Here: the spread of a group's values (mean, sample std, min, max, and which band a figure draws: ± one
std from three runs on, min-max below), groups of run dicts, their mean training curves with bands,
and the next unused seed of a group ("one more seed"). Plain data in (run dicts as
:meth:`~ttexplore.runs.store.RunStore.list_runs` returns them, metric events), plain data out; no
streamlit, no torch, no plotly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from ttexplore.presenters.reports import best_accuracy, run_config, run_ranks_text, run_shape_text, training_budget
from ttexplore.runs.config import RunConfig

__all__ = ["Spread", "spread", "BAND_WORDS", "BAND_LEGEND", "spread_text", "group_key", "SeedGroup", "seed_groups",
           "group_of", "first_per_seed", "next_seed", "one_more_seed", "mean_events", "CURVE_KEYS", "MAX_SEED_SEARCH", "accuracy_points",
           "rank_table", "groups_table"]

#: What a band means, for legends and hover text.
BAND_WORDS = {"std": "± 1 std", "min-max": "min–max"}
#: One line for a figure's legend: which band is drawn when.
BAND_LEGEND = "band: ± 1 std over seeds (n ≥ 3), min–max (n < 3)"

#: The event values averaged over a group's runs (the rest of an event is the first run's).
CURVE_KEYS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "val_loss", "val_accuracy", "elapsed_s")

#: :func:`next_seed` looks this far past the seeds in use (a group never holds that many runs).
MAX_SEED_SEARCH = 100_000


@dataclass(frozen=True)
class Spread:
    """Values of one quantity over a group's runs.

    Attributes:
        n: how many values; mean, low (min), high (max).
        std: the sample standard deviation (``n - 1`` in the denominator); ``None`` for one value.
        band: ``"std"`` (``n >= 3``: mean ± std) or ``"min-max"`` (``n < 3``: too few for a std).
        band_low, band_high: the band's edges.
    """

    n: int
    mean: float
    std: Optional[float]
    low: float
    high: float

    @property
    def band(self) -> str:
        return "std" if self.n >= 3 else "min-max"

    @property
    def band_low(self) -> float:
        return self.mean - self.std if self.band == "std" else self.low

    @property
    def band_high(self) -> float:
        return self.mean + self.std if self.band == "std" else self.high


def spread(values: Iterable[Optional[float]]) -> Optional[Spread]:
    """The :class:`Spread` of the values that are numbers (``None`` and NaN left out); ``None`` when none is."""
    numbers = [float(value) for value in values if value is not None and value == value]
    if not numbers:
        return None
    n = len(numbers)
    mean = sum(numbers) / n
    std = math.sqrt(sum((value - mean) ** 2 for value in numbers) / (n - 1)) if n > 1 else None
    return Spread(n, mean, std, min(numbers), max(numbers))


def spread_text(value: Optional[Spread], digits: int = 4) -> str:
    """``"0.9480 ± 0.0030 (n=3)"``; below three values the range: ``"0.9480 (0.9470–0.9490, n=2)"``, ``"0.9480 (n=1)"``."""
    if value is None:
        return ""
    if value.n >= 3:
        return f"{value.mean:.{digits}f} ± {value.std:.{digits}f} (n={value.n})"
    if value.n == 2:
        return f"{value.mean:.{digits}f} ({value.low:.{digits}f}–{value.high:.{digits}f}, n=2)"
    return f"{value.mean:.{digits}f} (n=1)"


def group_key(run: Mapping[str, Any]) -> str:
    """The run's seed group (:meth:`RunConfig.group_key`); a run whose config this version cannot read is a
    group of its own (its stored key)."""
    config = run_config(run)
    return config.group_key() if config is not None else f"run:{run.get('config_key') or run.get('id')}"


@dataclass
class SeedGroup:
    """Runs that differ only by their seed.

    Attributes:
        key: :func:`group_key`.
        runs: its runs, in the order given (a run repeated at the same seed is among them).
        accuracy: the :class:`Spread` of their accuracy (:func:`~ttexplore.presenters.reports.best_accuracy`:
            at the best validation epoch when the runs hold a validation set out, else the best test
            point) over the completed runs, one per seed (a repeat of a seed is the same deterministic run,
            not one more sample of the seed noise); ``None`` before one completes.
    """

    key: str
    runs: list[Mapping[str, Any]] = field(default_factory=list)
    accuracy: Optional[Spread] = None

    @property
    def seeds(self) -> list[int]:
        """The seeds of its runs, sorted."""
        return sorted({int((run.get("config") or {}).get("seed", 0)) for run in self.runs})

    @property
    def first(self) -> Mapping[str, Any]:
        return self.runs[0]

    @property
    def per_seed(self) -> list[Mapping[str, Any]]:
        """One run per seed: the first of each seed in :attr:`runs`' order."""
        return first_per_seed(self.runs)


def first_per_seed(runs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The first run of each seed among ``runs``, in their order."""
    seen: set[int] = set()
    kept = []
    for run in runs:
        seed = int((run.get("config") or {}).get("seed", 0))
        if seed not in seen:
            seen.add(seed)
            kept.append(run)
    return kept


def seed_groups(runs: Iterable[Mapping[str, Any]],
                value: Callable[[Mapping[str, Any]], Optional[float]] = lambda run: best_accuracy(run)[0]) -> list[SeedGroup]:
    """The seed groups of ``runs``, in the order their first run comes; each with the spread of ``value``
    over its completed runs, the first completed one of each seed (``runs`` newest first: the newest)."""
    groups: dict[str, SeedGroup] = {}
    for run in runs:
        key = group_key(run)
        groups.setdefault(key, SeedGroup(key)).runs.append(run)
    for group in groups.values():
        group.accuracy = spread(value(run) for run in first_per_seed(run for run in group.runs
                                                                     if run.get("status") == "completed"))
    return list(groups.values())


def group_of(runs: Iterable[Mapping[str, Any]], run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every run of ``runs`` in ``run``'s seed group (``run`` included when it is among them)."""
    key = group_key(run)
    return [other for other in runs if group_key(other) == key]


def next_seed(seeds: Iterable[int]) -> int:
    """The smallest seed (0, 1, ...) not among ``seeds``: ``{0, 1, 2}`` -> 3, ``{0, 2}`` -> 1 (a group
    filled this way holds the seeds a sweep's ``--seeds 0-N`` gives)."""
    used = set(seeds)
    return next(seed for seed in range(MAX_SEED_SEARCH + len(used) + 1) if seed not in used)


def one_more_seed(runs: Iterable[Mapping[str, Any]], run: Mapping[str, Any]) -> RunConfig:
    """The config of one more run of ``run``'s seed group: the same settings at the group's
    :func:`next_seed` (the seeds of every run of the group in ``runs``, whatever their status).

    Raises:
        ValueError: when this version cannot read the run's config.
    """
    config = run_config(run)
    if config is None:
        raise ValueError(f"run {run.get('id')}'s config cannot be read by this version: it cannot be repeated")
    members = group_of(runs, run)
    return config.replace(seed=next_seed(int((member.get("config") or {}).get("seed", 0)) for member in members + [run]))


def mean_events(events_by_run: Sequence[Sequence[Mapping[str, Any]]]) -> tuple[list[dict[str, Any]], dict[str, tuple]]:
    """The mean training curve of a seed group and its bands.

    Runs of one group report at the same points (the same epochs and steps: only the seed differs), so
    the events are matched by ``(kind, epoch)``; a point some runs have not reached yet (a run still
    training) averages those that have it. Returns ``(events, bands)``: each event the first run's at that
    point with the :data:`CURVE_KEYS` averaged and ``n`` (how many runs it averages), and
    ``bands[key] = (lows, highs, kinds)``, per event the band's edges and ``"std"``/``"min-max"``.

    Complexity: ``O(total events)``.
    """
    points: dict[tuple[str, float], list[Mapping[str, Any]]] = {}
    for events in events_by_run:
        for event in events:
            points.setdefault((str(event.get("kind")), round(float(event.get("epoch") or 0.0), 6)), []).append(event)
    ordered = sorted(points.items(), key=lambda item: (item[0][1], item[0][0] != "eval"))
    merged: list[dict[str, Any]] = []
    bands: dict[str, tuple[list, list, list]] = {key: ([], [], []) for key in CURVE_KEYS}
    for _, members in ordered:
        event = dict(members[0])
        event["n"] = len(members)
        for key in CURVE_KEYS:
            values = spread(member.get(key) for member in members)
            event[key] = values.mean if values is not None else None
            lows, highs, kinds = bands[key]
            lows.append(values.band_low if values is not None else None)
            highs.append(values.band_high if values is not None else None)
            kinds.append(values.band if values is not None else None)
        merged.append(event)
    return merged, {key: value for key, value in bands.items() if any(low is not None for low in value[0])}


# ---------------------------------------------------------------- the 2018 reproduction's summaries, over seeds
def accuracy_points(runs: Iterable[Mapping[str, Any]], statuses: Sequence[str] = ("completed",)) -> list[dict[str, Any]]:
    """Input of :func:`ttexplore.presenters.plots.accuracy_vs_params`: one point per seed group of finished runs.

    Each point: ``layer_params``, ``test_accuracy`` (the mean over the group's runs of
    :func:`~ttexplore.presenters.reports.best_accuracy`), ``n``, ``std``, ``low``, ``high``, ``band`` (see
    :class:`Spread`), ``basis`` (``"validation"`` when every run chose its epoch on a validation set, else
    ``"test"``), ``shape`` (the 2018 reproduction's legends: ``4x8x8x4``, ``dense``, ...), ``rank``,
    ``run_id`` (the group's first), ``budget`` (:func:`~ttexplore.presenters.reports.training_budget`) and
    ``group``, the line it belongs to: the shape, or ``"4x8x8x4 · 5 epochs"`` when the runs had different
    training budgets (a 1-epoch and a 60-epoch run of one shape are not one curve). Groups of other
    settings at one point of one line (another learning rate, say) are not averaged together: the one
    with the highest mean is kept.
    """
    finished = [run for run in runs if run.get("status") in statuses and best_accuracy(run)[0] is not None]
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for group in seed_groups(finished, value=lambda run: best_accuracy(run)[0]):
        run, values = group.first, group.accuracy
        if values is None:
            continue
        point = {"layer_params": run["layer_params"], "test_accuracy": values.mean, "n": values.n, "std": values.std,
                 "low": values.band_low, "high": values.band_high, "band": values.band,
                 "basis": "validation" if all(best_accuracy(member)[1] == "validation" for member in group.runs) else "test",
                 "shape": run_shape_text(run), "rank": run_ranks_text(run), "run_id": run.get("id"),
                 "budget": training_budget(run)}
        key = (f"{point['shape']}|{point['budget']}", f"{point['rank']}|{point['layer_params']}")
        if key not in best or point["test_accuracy"] > best[key]["test_accuracy"]:
            best[key] = point
    several = len({point["budget"] for point in best.values()}) > 1
    for point in best.values():
        point["group"] = f"{point['shape']} · {point['budget']}" if several else str(point["shape"])
    return sorted(best.values(), key=lambda point: (str(point["group"]), point["layer_params"]))


def rank_table(runs: Iterable[Mapping[str, Any]], shape: Optional[str] = None, dataset: Optional[str] = None):
    """The 2018 reproduction's slide-13 table: per max TT rank, the compression rate and the accuracy, now over
    seeds: the mean and std of the best seed group at that rank (:func:`accuracy_points`' rule) and ``runs``,
    how many seeds it averages.

    Only completed TT runs with a single (uniform) rank count; ``shape`` and ``dataset`` filter them.
    Columns: ``max TT core rank``, ``shape``, ``compression rate``, ``accuracy``, ``± std``, ``runs``.
    """
    import pandas as pd

    kept = []
    for run in runs:
        config = run_config(run)
        if run.get("status") != "completed" or config is None or best_accuracy(run)[0] is None:
            continue
        if not config.layers[0].has_tt_cores or not isinstance(config.layers[0].rank_setting, int):
            continue
        if (shape is None or run_shape_text(run) == shape) and (dataset is None or run.get("dataset") == dataset):
            kept.append(run)
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for group in seed_groups(kept):
        run, values = group.first, group.accuracy
        rank = run_config(run).layers[0].rank_setting
        key = (rank, run_shape_text(run))
        if key not in rows or values.mean > rows[key]["accuracy"]:
            rows[key] = {"max TT core rank": rank, "shape": key[1], "compression rate": run.get("compression"),
                         "accuracy": values.mean, "± std": values.std, "runs": values.n}
    return pd.DataFrame([rows[key] for key in sorted(rows)],
                        columns=["max TT core rank", "shape", "compression rate", "accuracy", "± std", "runs"])


def groups_table(found: Sequence[SeedGroup], labels: Mapping[str, str]):
    """One row per seed group, for a table a group is picked from: ``experiment`` (``labels`` of its first run),
    ``seeds`` (``"0, 1, 2"``), ``runs``, ``completed``, ``accuracy`` (mean), ``± std``, ``min``, ``max``,
    ``first run``. A pandas DataFrame, in the order of ``found``."""
    import pandas as pd

    rows = []
    for group in found:
        values = group.accuracy
        rows.append({"experiment": labels.get(group.first["id"], group.first["id"]),
                     "seeds": ", ".join(map(str, group.seeds)), "runs": len(group.runs),
                     "completed": values.n if values else 0, "accuracy": values.mean if values else None,
                     "± std": values.std if values else None, "min": values.low if values else None,
                     "max": values.high if values else None, "first run": group.first["id"]})
    return pd.DataFrame(rows, columns=["experiment", "seeds", "runs", "completed", "accuracy", "± std", "min", "max",
                                       "first run"])
