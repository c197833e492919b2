"""Exports: figures to PNG / SVG / standalone HTML, metrics to CSV / JSON, weights to a file.

PNG and SVG go through kaleido 1.x, which drives a headless Chromium (the
system's ``/usr/bin/chromium`` when present). One kaleido server is started on
first use and kept for the life of the process (starting Chromium per image
costs seconds); calls are serialised by a lock, so threads may share it.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import os
import shutil
import threading
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

from ttexplore.tt.atomic import write_atomic

__all__ = [
    "ExportError",
    "figure_to_image",
    "figure_to_html",
    "write_figure",
    "metrics_to_csv",
    "metrics_to_json",
    "model_file_bytes",
    "table_to_csv",
    "shutdown_image_server",
    "IMAGE_FORMATS",
    "image_export_problem",
]

IMAGE_FORMATS = ("png", "svg")
_SERVER_LOCK = threading.Lock()
_SERVER_STARTED = False


class ExportError(RuntimeError):
    """An export could not be made; the message says what to install or change."""


_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def image_export_problem() -> Optional[str]:
    """``None`` when PNG/SVG export can run here, else what is missing and how to fix it.

    A cheap check (no browser is started): kaleido importable, and a Chrome/Chromium
    binary at ``$BROWSER_PATH`` or on the ``PATH``.
    """
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return "PNG/SVG export needs kaleido: pip install 'kaleido>=1'"
    configured = os.environ.get("BROWSER_PATH")
    if configured and Path(configured).exists():
        return None
    if any(shutil.which(name) for name in _BROWSER_NAMES):
        return None
    return "PNG/SVG export needs Chromium: sudo apt-get install chromium (or set BROWSER_PATH to a Chrome binary)"


def _ensure_server() -> None:
    """Start the one kaleido server of this process (once)."""
    global _SERVER_STARTED
    if _SERVER_STARTED:
        return
    try:
        import kaleido
    except ImportError:
        raise ExportError("PNG/SVG export needs kaleido: pip install 'kaleido>=1'") from None
    if not os.environ.get("BROWSER_PATH"):
        found = next((shutil.which(name) for name in _BROWSER_NAMES if shutil.which(name)), None)
        if found:
            os.environ["BROWSER_PATH"] = found
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kaleido.start_sync_server(mathjax=False, silence_warnings=True)
    except Exception as error:  # noqa: BLE001 - reported with the fix
        raise ExportError(
            f"could not start kaleido's Chromium ({type(error).__name__}: {error}); install Chromium "
            "(apt-get install chromium) or set BROWSER_PATH to a Chrome/Chromium binary"
        ) from None
    _SERVER_STARTED = True
    atexit.register(shutdown_image_server)


def shutdown_image_server() -> None:
    """Stop the kaleido server if one was started (registered with ``atexit``)."""
    global _SERVER_STARTED
    with _SERVER_LOCK:
        if not _SERVER_STARTED:
            return
        import kaleido

        try:
            kaleido.stop_sync_server(silence_warnings=True)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
        _SERVER_STARTED = False


def figure_to_image(figure: Any, fmt: str = "png", width: int = 1000, height: int = 600, scale: float = 2.0) -> bytes:
    """Render a plotly figure to PNG or SVG bytes through the persistent kaleido server.

    Raises:
        ExportError: for an unknown format, or when no Chromium can be started.
    """
    if fmt not in IMAGE_FORMATS:
        raise ExportError(f"format {fmt!r} is not an image format: use one of {', '.join(IMAGE_FORMATS)} (or html)")
    with _SERVER_LOCK:
        _ensure_server()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # plotly warns that per-call options are ignored by a server
            try:
                return figure.to_image(format=fmt, width=width, height=height, scale=scale if fmt == "png" else 1)
            except Exception as error:  # noqa: BLE001 - reported with the fix
                raise ExportError(f"kaleido could not render the figure as {fmt}: {type(error).__name__}: {error}") from None


def figure_to_html(figure: Any, include_plotlyjs: "bool | str" = True) -> bytes:
    """A standalone HTML page of the figure (plotly.js embedded, so it opens offline)."""
    return figure.to_html(full_html=True, include_plotlyjs=include_plotlyjs).encode("utf-8")


def write_figure(figure: Any, path: "str | os.PathLike", width: int = 1000, height: int = 600) -> Path:
    """Write a figure to ``path``; the suffix (``.png``, ``.svg``, ``.html``) picks the format."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    data = figure_to_html(figure) if fmt == "html" else figure_to_image(figure, fmt, width=width, height=height)
    return write_atomic(path, data, make_folder=True)  # whole or not at all; WriteError names the file


#: The columns of a metrics CSV; ``val_loss``/``val_accuracy`` are empty but at a run's epoch ends with a validation split.
_METRIC_FIELDS = ("run_id", "label", "kind", "epoch", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                  "elapsed_s", "val_loss", "val_accuracy")


def _flatten(runs: Mapping[str, Sequence[Mapping[str, Any]]], labels: Optional[Mapping[str, str]]) -> list[dict[str, Any]]:
    rows = []
    for run_id, events in runs.items():
        for event in events:
            row = {name: event.get(name) for name in _METRIC_FIELDS}
            row["run_id"] = run_id
            row["label"] = (labels or {}).get(run_id, "")
            rows.append(row)
    return rows


def metrics_to_csv(runs: Mapping[str, Sequence[Mapping[str, Any]]], labels: Optional[Mapping[str, str]] = None) -> bytes:
    """Metric events of several runs as one CSV (one row per event, a ``run_id`` column)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(_METRIC_FIELDS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(_flatten(runs, labels))
    return buffer.getvalue().encode("utf-8")


def metrics_to_json(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    configs: Optional[Mapping[str, Mapping[str, Any]]] = None,
    labels: Optional[Mapping[str, str]] = None,
) -> bytes:
    """Metric events of several runs as JSON: ``{"runs": [{"run_id", "label", "config", "events"}]}``."""
    payload = {
        "runs": [
            {
                "run_id": run_id,
                "label": (labels or {}).get(run_id, ""),
                "config": (configs or {}).get(run_id),
                "events": [{name: event.get(name) for name in _METRIC_FIELDS[2:]} for event in events],
            }
            for run_id, events in runs.items()
        ]
    }
    return json.dumps(payload, indent=2).encode("utf-8")


def table_to_csv(rows: "Iterable[Mapping[str, Any]] | Any") -> bytes:
    """A table (list of dicts or a DataFrame) as CSV bytes."""
    if hasattr(rows, "to_csv"):
        return rows.to_csv(index=False).encode("utf-8")
    records = [dict(row) for row in rows]
    fields = list(dict.fromkeys(key for record in records for key in record))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue().encode("utf-8")


def model_file_bytes(path: "str | os.PathLike") -> bytes:
    """The bytes of a saved model file (``TTLinear.load`` reads its TT cores back).

    Raises:
        ExportError: when the run kept no weights file.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no weights file at {path}: the run kept none (it failed before training, or was deleted)")
    return path.read_bytes()
