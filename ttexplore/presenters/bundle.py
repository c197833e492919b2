"""Everything about some runs in one zip: the runs table, each run's metrics, figures and weights.

The app's "Download everything" button and ``python -m ttexplore runs export --out FILE.zip
[ID...]`` both call :func:`export_bundle`. The archive holds::

    README.txt               what is where, when it was made, what was left out and why
    runs.csv                 one row per run: name, tags, status, layer, hyper-parameters, results
    runs.json                the same runs with their full configs and notes
    metrics.csv              every metric event of every run (run_id and label columns)
    metrics/<id>.csv         one run's metric events
    figures/*.html           training curves, accuracy against weights (per dataset), hyper-parameters
                             against accuracy; interactive, offline (figures/plotly.min.js beside them)
    figures/*.png            the same figures as images, when kaleido can render here
    weights/<id>.pt          each run's trained weights (only files inside the store's artifacts folder)
    weights/<id>.best.pt     with a validation split, its best epoch's weights

No streamlit; plotly and pandas are imported when a bundle is made.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ttexplore.presenters import export, groups, plots, tracking
from ttexplore.tt.atomic import write_atomic

__all__ = ["Bundle", "export_bundle", "write_bundle", "CURVES_PER_FIGURE"]

#: Runs drawn in one training-curves figure (more make an unreadable legend; the next go to another figure).
CURVES_PER_FIGURE = 8


@dataclass
class Bundle:
    """A finished zip: its bytes, the files in it, and notes on what was left out."""

    data: bytes
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: int = 0


def _figures(runs: Sequence[dict[str, Any]], metrics: dict[str, list], labels: dict[str, str]) -> list[tuple[str, Any]]:
    """``[(file stem, figure)]`` for the runs: their curves, accuracy against weights, hyper-parameters."""
    figures = []
    with_points = [run for run in runs if metrics.get(run["id"])]
    for start in range(0, len(with_points), CURVES_PER_FIGURE):
        chunk = with_points[start:start + CURVES_PER_FIGURE]
        series = [{"label": labels[run["id"]], "events": metrics[run["id"]]} for run in chunk]
        stem = "training-curves" if len(with_points) <= CURVES_PER_FIGURE else f"training-curves-{start // CURVES_PER_FIGURE + 1}"
        figures.append((stem, plots.training_curves(series, title="Training curves (train dashed, test solid)")))
    for dataset in sorted({run["dataset"] for run in runs if run["status"] == "completed"}):
        points = groups.accuracy_points([run for run in runs if run["dataset"] == dataset])
        if points:
            figures.append((f"accuracy-vs-weights-{dataset}",
                            plots.accuracy_vs_params(points, title=f"{dataset}: accuracy against first-layer weights")))
    scored = [run for run in runs if run.get("best_test_accuracy") is not None]
    columns = tracking.varying_hparams(scored)
    if len(scored) >= 2 and columns:
        table = tracking.hparams_table(scored)
        figures.append(("hyperparameters", plots.hparams_parallel(table, columns)))
    return figures


def export_bundle(store: Any, run_ids: Optional[Sequence[str]] = None, images: bool = True,
                  progress: Optional[Callable[[str], None]] = None) -> Bundle:
    """The zip of ``run_ids`` (every run when ``None``) from ``store`` (a
    :class:`~ttexplore.runs.store.RunStore`); see the module docstring for its contents.

    Args:
        images: also render each figure as PNG (kaleido and Chromium; skipped with a note
            in README.txt when they cannot run here).
        progress: called with a short line before each slow step.

    Raises:
        ValueError: naming a run id the store does not hold.
    """
    say = progress or (lambda _line: None)
    if run_ids is None:
        runs = store.list_runs()
    else:
        runs = []
        for run_id in dict.fromkeys(run_ids):
            run = store.get_run(run_id)
            if run is None:
                raise ValueError(f"no run {run_id!r} in {store.path}")
            runs.append(run)
    metrics = store.metrics_for([run["id"] for run in runs])
    labels = tracking.distinct_labels(runs)
    notes: list[str] = []
    buffer = io.BytesIO()
    files: list[str] = []

    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        def add(name: str, data: "bytes | str", compress: bool = True) -> None:
            archive.writestr(name, data if isinstance(data, bytes) else data.encode("utf-8"),
                             compress_type=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
            files.append(name)

        add("runs.csv", export.table_to_csv(tracking.hparams_table(runs)))
        add("runs.json", json.dumps([_run_record(store, run, labels[run["id"]]) for run in runs], indent=2, default=str))
        add("metrics.csv", export.metrics_to_csv({run["id"]: metrics[run["id"]] for run in runs}, labels))
        for run in runs:
            add(f"metrics/{run['id']}.csv", export.metrics_to_csv({run["id"]: metrics[run["id"]]}, labels))

        figures = _figures(runs, metrics, labels)
        if figures:
            import plotly.offline

            add("figures/plotly.min.js", plotly.offline.get_plotlyjs())
        problem = export.image_export_problem() if images and figures else None
        if problem:
            notes.append(f"PNG figures left out: {problem}")
        for stem, figure in figures:
            say(f"figure {stem}")
            add(f"figures/{stem}.html", figure.to_html(full_html=True, include_plotlyjs="directory"))
            if images and not problem:
                try:
                    add(f"figures/{stem}.png", export.figure_to_image(figure, "png", width=1100,
                                                                      height=int(figure.layout.height or 550), scale=1.5))
                except export.ExportError as error:
                    problem = str(error)
                    notes.append(f"PNG figures left out: {error}")

        for run in runs:
            path = store.artifact_path(run.get("weights_path"))  # never a file outside the artifacts folder
            if path is not None and path.is_file():
                say(f"weights {run['id']}")
                add(f"weights/{run['id']}.pt", path.read_bytes(), compress=False)
            elif run["status"] in ("completed", "cancelled", "interrupted"):
                notes.append(f"run {run['id']} has no weights file")
            best = store.best_weights_path_for(run["id"])  # a run with a validation split: its best epoch's too
            if best.is_file():
                add(f"weights/{run['id']}.best.pt", best.read_bytes(), compress=False)
        add("README.txt", _readme(runs, files, notes))
    return Bundle(buffer.getvalue(), files, notes, len(runs))


def write_bundle(store: Any, path: "str | Path", run_ids: Optional[Sequence[str]] = None, images: bool = True,
                 progress: Optional[Callable[[str], None]] = None) -> Bundle:
    """:func:`export_bundle` written to ``path`` (its folder created), whole or not at all; returns the bundle.

    Raises:
        WriteError: (an ``OSError``) one line naming the file and the fix (the old file kept, no temporary left).
    """
    bundle = export_bundle(store, run_ids, images=images, progress=progress)
    write_atomic(path, bundle.data, make_folder=True)
    return bundle


def _run_record(store: Any, run: dict[str, Any], label: str) -> dict[str, Any]:
    keys = ("id", "name", "tags", "notes", "status", "dataset", "layer", "shape", "layer_params", "compression",
            "best_test_accuracy", "final_test_accuracy", "epochs_done", "best_val_epoch", "best_val_accuracy",
            "test_accuracy_at_best_val", "sweep", "error", "created_at", "started_at", "finished_at")
    record = {key: run.get(key) for key in keys}
    record["label"] = label
    record["config"] = run.get("config")
    path = store.artifact_path(run.get("weights_path"))
    record["weights_file"] = f"weights/{run['id']}.pt" if path is not None and path.is_file() else None
    return record


def _readme(runs: Sequence[dict[str, Any]], files: Sequence[str], notes: Sequence[str]) -> str:
    lines = [
        "ttexplore export",
        f"made {time.strftime('%Y-%m-%d %H:%M:%S')}, {len(runs)} run(s)",
        "",
        "runs.csv          one row per run: name, tags, status, layer, hyper-parameters, results",
        "runs.json         the same runs with their full configs, notes and label",
        "metrics.csv       every metric event (kind eval|epoch, epoch, step, train/test loss and accuracy, elapsed_s)",
        "metrics/ID.csv    one run's metric events",
        "figures/*.html    interactive figures (open in a browser; plotly.min.js sits beside them)",
        "figures/*.png     the same figures as images, when they could be rendered",
        "weights/ID.pt     trained weights: from ttexplore.runs.models import load_model; model, config = load_model(path)",
        "weights/ID.best.pt  a run with a validation split: the weights of its best epoch (lowest validation loss)",
        "",
        "In the training curves, train lines are dashed and test lines solid.",
        "",
        "files:",
        *(f"  {name}" for name in files),
    ]
    if notes:
        lines += ["", "notes:", *(f"  {note}" for note in notes)]
    return "\n".join(lines) + "\n"
