"""Runs shaped for people: labels, durations, and the 2018 reproduction's summaries.

Plain data in (run dicts as :meth:`~ttexplore.runs.store.RunStore.list_runs` returns
them, metric events as :meth:`~ttexplore.runs.store.RunStore.metrics` returns them),
plain data out (strings, dicts, pandas DataFrames). No streamlit, no torch: the
pages call these and only arrange the results.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

from ttexplore.tt.ttmath import prod
from ttexplore.tt.ttshape import TTShape, layer_text
from ttexplore.runs.layerspec import LayerSpec

__all__ = [
    "run_shape_text",
    "run_label",
    "run_ranks_text",
    "format_duration",
    "accuracy_points",
    "training_budget",
    "rank_table",
]

def run_ranks_text(run: Mapping[str, Any]) -> str:
    """The run's TT ranks as the layer uses them, clipped to the maximal useful ones (``"4"``, ``"2,4,2"``),
    ``"max"`` when none were given, the matrix rank of a matrix-rank baseline, '' for a dense one."""
    config = run.get("config") or {}
    layer = config.get("layer", run.get("layer"))
    if layer == "matrix_rank":
        return str(config.get("matrix_rank", ""))
    if layer != "tt":
        return ""
    ranks = config.get("ranks", run.get("ranks"))
    if ranks is None:
        return "max"
    if config.get("in_modes") and config.get("out_modes"):
        try:  # the ranks the layer really has: a rank above the maximal useful one is clipped
            used = TTShape.of(config["in_modes"], config["out_modes"], ranks).ranks
        except ValueError:
            used = None
        if used:
            return str(used[0]) if len(set(used)) == 1 else ",".join(map(str, used))
    if isinstance(ranks, (list, tuple)):
        return ",".join(str(r) for r in ranks)
    return str(ranks)


def run_shape_text(run: Mapping[str, Any]) -> str:
    """The run's shape in the house text form (``"4x8x8x4"``, ``"2^10"``, ``"4x7x4x7->5x5x8x4"``),
    derived from its config (also for runs stored before that form), else ``"dense"`` / ``"matrix rank"``."""
    config = run.get("config") or {}
    if config.get("hidden_layers"):  # several hidden layers: the store's label names each
        return str(run.get("shape") or "")
    if config.get("layer", run.get("layer")) == "tt" and config.get("in_modes") and config.get("out_modes"):
        return layer_text(config["in_modes"], config["out_modes"])
    return str(run.get("shape") or run.get("layer") or "")


def run_label(run: Mapping[str, Any], with_id: bool = True) -> str:
    """A short name for legends and pickers, e.g. ``"TT 4x8x8x4 r=4 · mnist5k · #1a2b3c"``."""
    config = run.get("config") or {}
    layer = config.get("layer", run.get("layer"))
    if config.get("hidden_layers"):
        body = " -> ".join(_layer_label(layer) for layer in config["hidden_layers"])
    elif layer == "tt":
        body = f"TT {run_shape_text(run)} r={run_ranks_text(run)}"
    elif layer == "matrix_rank":
        body = f"matrix rank r={run_ranks_text(run)}"
    else:
        sizes = [config.get("in_modes"), config.get("out_modes")]
        body = "dense " + "->".join(str(prod(modes)) for modes in sizes) if all(sizes) else "dense"
    text = f"{body} · {run.get('dataset', config.get('dataset', ''))}"
    if run.get("label"):
        text += f" · {run['label']}"
    if with_id and run.get("id"):
        text += f" · #{str(run['id'])[-6:]}"
    return text


def _layer_label(layer: Any) -> str:
    try:
        return LayerSpec.of(layer).label()
    except ValueError:  # a stored layer this version cannot read: show it as stored
        return str(layer)


def format_duration(seconds: Optional[float]) -> str:
    """``75.2`` -> ``"1m 15s"``; ``None`` -> ``""``."""
    if seconds is None or seconds != seconds:  # None or NaN
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def training_budget(run: Mapping[str, Any]) -> str:
    """How much training a run was given: ``"5 epochs"``, ``"1 epoch, 1,000 images"``."""
    config = run.get("config") or {}
    epochs = config.get("epochs")
    text = f"{epochs} epoch{'s' if epochs != 1 else ''}" if epochs is not None else "? epochs"
    if config.get("train_limit"):
        text += f", {int(config['train_limit']):,} images"
    return text


def accuracy_points(runs: Iterable[Mapping[str, Any]], statuses: Sequence[str] = ("completed",)) -> list[dict[str, Any]]:
    """Input of :func:`ttexplore.presenters.plots.accuracy_vs_params`: one point per finished run with a test accuracy.

    Each point: ``layer_params``, ``test_accuracy`` (the run's best), ``shape``
    (the 2018 reproduction's legends: ``4x8x8x4``, ``dense``, ...), ``rank``, ``run_id``,
    ``budget`` (:func:`training_budget`) and ``group``, the line it belongs to: the shape, or
    ``"4x8x8x4 · 5 epochs"`` when the runs had different training budgets (a 1-epoch and a
    60-epoch run of one shape are not one curve). When several runs share a group, rank
    and size (seeds, repeats), the best one is kept, as the 2018 reproduction's figures did.
    """
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        if run.get("status") not in statuses or run.get("best_test_accuracy") is None:
            continue
        point = {
            "layer_params": run["layer_params"],
            "test_accuracy": run["best_test_accuracy"],
            "shape": run_shape_text(run),
            "rank": run_ranks_text(run),
            "run_id": run.get("id"),
            "budget": training_budget(run),
        }
        key = (f"{point['shape']}|{point['budget']}", f"{point['rank']}|{point['layer_params']}")
        if key not in best or point["test_accuracy"] > best[key]["test_accuracy"]:
            best[key] = point
    several = len({point["budget"] for point in best.values()}) > 1
    for point in best.values():
        point["group"] = f"{point['shape']} · {point['budget']}" if several else str(point["shape"])
    return sorted(best.values(), key=lambda point: (str(point["group"]), point["layer_params"]))


def rank_table(runs: Iterable[Mapping[str, Any]], shape: Optional[str] = None, dataset: Optional[str] = None):
    """The 2018 reproduction's slide-13 table: per max TT rank, the compression rate and the best test accuracy.

    Only completed TT runs with a single (uniform) rank count; ``shape`` and
    ``dataset`` filter them. Columns: ``max TT core rank``, ``shape``,
    ``compression rate``, ``accuracy``, ``runs``.
    """
    import pandas as pd

    groups: dict[tuple[int, str], dict[str, Any]] = {}
    for run in runs:
        config = run.get("config") or {}
        if run.get("status") != "completed" or config.get("layer") != "tt" or run.get("best_test_accuracy") is None:
            continue
        if shape is not None and run_shape_text(run) != shape:
            continue
        if dataset is not None and run.get("dataset") != dataset:
            continue
        ranks = config.get("ranks")
        if not isinstance(ranks, int):
            continue
        key = (ranks, run_shape_text(run))
        entry = groups.setdefault(key, {"max TT core rank": ranks, "shape": key[1],
                                        "compression rate": run.get("compression"), "accuracy": 0.0, "runs": 0})
        entry["accuracy"] = max(entry["accuracy"], run["best_test_accuracy"])
        entry["runs"] += 1
    rows = [groups[key] for key in sorted(groups)]
    return pd.DataFrame(rows, columns=["max TT core rank", "shape", "compression rate", "accuracy", "runs"])
