"""A sweep's results: its cells read back from the run store, one row per seed (``runs.csv``) and one row
per cell over its seeds (``results.csv``: mean, std, min, max, how many seeds), and the 2018
reproduction's table and figure with the seeds' spread.

Nothing here imports plotly at module level: :func:`sweep_figure` and
:func:`write_outputs` import it when called.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Sequence

from ttexplore.experiments.sweep.spec import SweepCell, cell_kind, is_network
from ttexplore.presenters.groups import Spread, spread
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.kinds import kind_named, kind_names
from ttexplore.runs.store import RunStore

__all__ = ["RESULT_COLUMNS", "SUMMARY_COLUMNS", "X_TITLES", "cells_from_store", "sweep_names", "sweep_results", "summarize",
           "accuracy_text", "results_table", "table_markdown", "counts_network", "weights_column", "sweep_figure",
           "write_outputs"]

RESULT_COLUMNS = ("dataset", "layer", "shape", "rank", "seed", "params", "compression", "test_accuracy",
                  "best_test_accuracy", "epochs", "seconds", "status", "run_id")


def cells_from_store(store: RunStore, name: str) -> list[SweepCell]:
    """The cells of sweep ``name`` as recorded in the store, in the order they were queued.

    For a sweep launched elsewhere (the app, another shell) whose spec is not
    at hand; labels and ranks are those :func:`~ttexplore.experiments.sweep.spec.expand`
    gives (baselines get a ``->M`` suffix when the dataset's runs have several
    hidden sizes; a network's cells are named by their config's label, its
    ranks the largest any of its TT layers uses).
    """
    configs: dict[str, RunConfig] = {}
    for run in reversed(store.list_runs(sweep=name)):  # oldest first
        configs.setdefault(run["config_key"], RunConfig.from_dict(run["config"]))
    hidden_sizes: dict[str, set[int]] = {}
    for config in configs.values():
        hidden_sizes.setdefault(config.dataset, set()).add(config.hidden_features)
    cells = []
    for config in configs.values():
        if is_network(config):
            shapes = config.layer_shapes
            used = [max(layer.ranks_used(shape), default=0) for layer, shape in zip(config.layers, shapes)
                    if layer.has_tt_cores]
            cells.append(SweepCell(config, config.label or "network", max(used) if used else None))
            continue
        layer = config.layers[0]
        ranks = layer.ranks_used(config.input_shape)
        label = layer.shape_label()
        if not layer.has_tt_cores and len(hidden_sizes[config.dataset]) > 1:  # a baseline, of one hidden size
            label += f" ->{config.hidden_features}"
        cells.append(SweepCell(config, label, max(ranks) if ranks else None))
    return cells


def sweep_names(store: RunStore) -> list[str]:
    """Names of the sweeps in the store, newest first."""
    return list(dict.fromkeys(run["sweep"] for run in store.list_runs() if run.get("sweep")))


def sweep_results(store: RunStore, cells: Sequence[SweepCell], name: str) -> list[dict[str, Any]]:
    """One row per cell (columns :data:`RESULT_COLUMNS`), from the runs recorded under ``name``.

    A cell's row comes from its newest completed run, else its newest run of
    any status (``test_accuracy`` is then the latest measured), else it is
    ``"pending"``. ``seconds`` is the training loop's own time, the same for
    every executor; ``epochs`` the epochs done. ``params`` is the hidden layers' weights,
    for a network's cells (a CNN) every parameter of it (biases and head included);
    ``layer`` the kind it is counted by (:func:`~ttexplore.experiments.sweep.spec.cell_kind`); ``network`` whether
    the cell is a network's (not in :data:`RESULT_COLUMNS`: the CSV keeps its columns).
    """
    chosen: dict[str, dict[str, Any]] = {}
    for run in store.list_runs(sweep=name):  # newest first
        key = run["config_key"]
        if key not in chosen or (run["status"] == "completed" and chosen[key]["status"] != "completed"):
            chosen[key] = run
    events = store.metrics_for(run["id"] for run in chosen.values())
    rows = []
    for cell in cells:
        config = cell.config
        run = chosen.get(cell.key)
        last = events[run["id"]][-1] if run and events.get(run["id"]) else None
        rows.append({
            "dataset": config.dataset,
            "layer": cell_kind(config),
            "shape": cell.shape,
            "rank": cell.rank,
            "seed": config.seed,
            "params": config.net_params() if is_network(config) else config.layer_params(),
            "compression": config.net_params() / config.dense_net_params() if is_network(config) else config.compression(),
            "test_accuracy": run["final_test_accuracy"] if run else None,
            "best_test_accuracy": run["best_test_accuracy"] if run else None,
            "epochs": round(last["epoch"], 3) if last else 0,
            "seconds": round(last["elapsed_s"], 2) if last else None,
            "status": run["status"] if run else "pending",
            "run_id": run["id"] if run else None,
            "network": is_network(config),
        })
    return rows


#: Columns of :func:`summarize`'s rows: one per cell over its seeds (``results.csv``).
SUMMARY_COLUMNS = ("dataset", "layer", "shape", "rank", "params", "compression", "test_accuracy_mean",
                   "test_accuracy_std", "test_accuracy_min", "test_accuracy_max", "seeds", "best_test_accuracy_mean",
                   "runs", "status")


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of :func:`sweep_results` (one per seed) as one row per cell, its seeds together (columns
    :data:`SUMMARY_COLUMNS`), in the order the cells first come.

    Over a cell's completed seeds: ``test_accuracy_mean``, ``test_accuracy_std`` (the sample std, ``n - 1`` in
    the denominator; ``None`` for one seed), ``test_accuracy_min``/``_max`` and ``best_test_accuracy_mean``;
    ``seeds`` counts them, ``runs`` counts every row of the cell, and ``status`` is ``"completed"`` when every
    seed completed, else e.g. ``"1 of 3 completed, 2 running"``.
    """
    cells: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["dataset"], row["layer"], row["shape"], row["rank"], row["params"]), []).append(row)
    summary = []
    for members in cells.values():
        done = [member for member in members if member["status"] == "completed" and member["test_accuracy"] is not None]
        accuracy = spread(member["test_accuracy"] for member in done)
        best = spread(member["best_test_accuracy"] for member in done)
        counts = Counter(member["status"] for member in members)
        status = ("completed" if counts["completed"] == len(members) else
                  ", ".join([f"{counts['completed']} of {len(members)} completed"]
                            + [f"{count} {name}" for name, count in sorted(counts.items()) if name != "completed"]))
        first = members[0]
        summary.append({
            **{column: first[column] for column in ("dataset", "layer", "shape", "rank", "params", "compression")},
            "test_accuracy_mean": accuracy.mean if accuracy else None,
            "test_accuracy_std": accuracy.std if accuracy else None,
            "test_accuracy_min": accuracy.low if accuracy else None,
            "test_accuracy_max": accuracy.high if accuracy else None,
            "seeds": len(done),
            "best_test_accuracy_mean": best.mean if best else None,
            "runs": len(members),
            "status": status,
            "network": bool(first.get("network")),  # a network's cell (a CNN): params count the whole network
        })
    return summary


def accuracy_text(row: dict[str, Any]) -> str:
    """A summary row's accuracy for a table: ``"0.9480"`` (one seed), ``"0.9480 ± 0.0030"`` (the sample std of
    two or more), ``"-"`` before a seed completes."""
    if row["test_accuracy_mean"] is None:
        return "-"
    if row["test_accuracy_std"] is None:
        return f"{row['test_accuracy_mean']:.4f}"
    return f"{row['test_accuracy_mean']:.4f} ± {row['test_accuracy_std']:.4f}"


def weights_column(rows: Sequence[dict[str, Any]]) -> str:
    """What a results table calls ``params``: ``"layer weights"``, or for a network's sweep ``"network parameters"``."""
    return "network parameters" if counts_network(rows) else "layer weights"


def results_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The 2018 reproduction's table from :func:`summarize`'d rows: dataset, shape, max TT rank, layer weights (a
    network's parameters, :func:`weights_column`), compression rate, accuracy (mean ± std over the seeds), seeds;
    cells with a completed seed, TT cells in grid order, then the baselines."""
    weights = weights_column(rows)
    rows = [row for row in rows if row["seeds"]]
    datasets = list(dict.fromkeys(row["dataset"] for row in rows))
    kinds = {name: index for index, name in enumerate(kind_names())}  # the registry's order: TT first
    table = []
    for row in sorted(rows, key=lambda row: (datasets.index(row["dataset"]), not _has_tt_cores(row["layer"]),
                                             kinds.get(row["layer"], len(kinds)))):
        table.append({"dataset": row["dataset"], "shape": row["shape"],
                      "max TT rank": row["rank"] if row["rank"] is not None else "-",
                      weights: row["params"], "compression rate": _rate(row["compression"]),
                      "accuracy": accuracy_text(row), "seeds": row["seeds"]})
    return table


def _rate(value: float) -> str:
    """A compression rate as the 2018 reproduction's table writes it: ``6.6e-5``; ``1`` for the dense layer."""
    if value >= 0.1:
        return f"{value:.2g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def table_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """:func:`results_table` as Markdown, one table per dataset."""
    table = results_table(rows)
    columns = ("shape", "max TT rank", weights_column(rows), "compression rate", "accuracy", "seeds")
    parts = []
    for dataset in dict.fromkeys(row["dataset"] for row in table):
        lines = [f"### {dataset}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(str(row[column]) for column in columns) + " |" for row in table if row["dataset"] == dataset]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n" if parts else "(no completed cells yet)\n"


def _has_tt_cores(name: str) -> bool:
    """Whether the layer kind ``name`` stores TT cores (its rows are a sweep's lines, the others baselines)."""
    try:
        return kind_named(name).has_tt_cores
    except ConfigError:
        return False


#: The x axis of a sweep's figure: of one hidden layer, and of a network (a CNN's every parameter).
X_TITLES = {False: "weights in the first layer (log scale)",
            True: "parameters of the whole network, biases and head included (log scale)"}



def counts_network(rows: Sequence[dict[str, Any]]) -> bool:
    """Whether a sweep's figure counts whole networks: its rows are a network's (``network``, set by
    :func:`sweep_results` for the cells of a network sweep, a CNN)."""
    return any(row.get("network") for row in rows)


def sweep_figure(rows: Sequence[dict[str, Any]], title: Optional[str] = None) -> Any:
    """The 2018 reproduction's figure from result rows: accuracy against first-layer weights (log x), one line per
    shape; for a network's sweep (a CNN) against the whole network's parameters, as its x axis says.

    Completed rows are averaged over seeds, with a band (± 1 std from three seeds on, min-max below: see
    :class:`~ttexplore.presenters.groups.Spread`); dense and matrix-rank rows (a network's dense twin) are the
    baseline traces. With several datasets each line is labelled ``shape · dataset``.
    """
    from ttexplore.presenters.plots import accuracy_vs_params

    summary = [row for row in summarize(rows) if row["seeds"]]
    datasets = list(dict.fromkeys(row["dataset"] for row in rows))
    several = len(datasets) > 1
    points = []
    for row in summary:
        values = Spread(row["seeds"], row["test_accuracy_mean"], row["test_accuracy_std"], row["test_accuracy_min"],
                        row["test_accuracy_max"])
        points.append({"shape": f"{row['shape']} · {row['dataset']}" if several else row["shape"],
                       "layer_params": row["params"], "test_accuracy": values.mean, "rank": row["rank"],
                       "n": values.n, "low": values.band_low, "high": values.band_high, "band": values.band})
    baselines = sorted({point["shape"] for point, row in zip(points, summary) if not _has_tt_cores(row["layer"])})
    network = counts_network(rows)
    if title is None:
        title = f"{', '.join(datasets)}: test accuracy against the " + ("network's parameters" if network else
                                                                          "weights of the first layer")
    return accuracy_vs_params(points, title=title, baselines=baselines, x_title=X_TITLES[network])


def write_outputs(rows: Sequence[dict[str, Any]], out_dir: "str | os.PathLike", image_width: int = 900,
                  image_height: int = 550, image_scale: float = 1.5) -> dict[str, Path]:
    """Write ``results.csv`` (one row per cell, its seeds together: :data:`SUMMARY_COLUMNS`), ``runs.csv`` (one row per
    seed: :data:`RESULT_COLUMNS`), ``table.md`` and ``accuracy_vs_weights.html`` / ``.png``.

    The PNG is written last: without a working Chromium it raises
    :class:`~ttexplore.presenters.export.ExportError` and the other files are already there.
    """
    from ttexplore.presenters.export import figure_to_html, figure_to_image, table_to_csv
    from ttexplore.tt.atomic import write_atomic

    out = Path(out_dir)
    paths = {"csv": out / "results.csv", "runs": out / "runs.csv", "table": out / "table.md",
             "html": out / "accuracy_vs_weights.html", "png": out / "accuracy_vs_weights.png"}
    summary = summarize(rows)
    # each file whole or not at all (a full disk raises WriteError naming the file, leaving no partial file)
    write_atomic(paths["csv"], table_to_csv([{column: row.get(column) for column in SUMMARY_COLUMNS} for row in summary]),
                 make_folder=True)
    write_atomic(paths["runs"], table_to_csv([{column: row.get(column) for column in RESULT_COLUMNS} for row in rows]))
    write_atomic(paths["table"], table_markdown(summary))
    figure = sweep_figure(rows)
    write_atomic(paths["html"], figure_to_html(figure))
    write_atomic(paths["png"], figure_to_image(figure, "png", width=image_width, height=image_height, scale=image_scale))
    return paths
