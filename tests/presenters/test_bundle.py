"""ttexplore.presenters.bundle: one zip with the runs table, each run's metrics, figures and weights."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest

from ttexplore.presenters import bundle, export
from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore


def record(store, ranks, name="", tags=(), epochs=1, weights=True):
    run_id = store.create_run(RunConfig.for_dataset("digits", epochs=epochs, ranks=ranks), name=name, tags=tags)
    store.mark_running(run_id)
    for step in range(3):
        store.add_event(run_id, {"kind": "eval", "epoch": step / 2, "step": step * 5, "train_loss": 2 / (step + 1),
                                 "train_accuracy": 0.3 + step / 10, "test_loss": 2.1 / (step + 1),
                                 "test_accuracy": 0.3 + step / 10 + ranks / 100, "elapsed_s": step * 0.5})
    path = None
    if weights:
        path = store.weights_path_for(run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PK weights of " + run_id.encode())
    store.finish(run_id, "completed", weights_path=str(path) if path else None)
    return run_id


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs.db")


def test_the_zip_holds_table_metrics_figures_and_weights(store, tmp_path):
    first, second = record(store, 1, name="small", tags=["demo"]), record(store, 2, epochs=2)
    outside = tmp_path / "secret.txt"
    outside.write_text("not for export")
    third = record(store, 3, weights=False)
    store.best_weights_path_for(second).write_bytes(b"PK best epoch of " + second.encode())  # a validation split's
    with store._connect() as connection:  # a row naming a file outside the artifacts folder
        connection.execute("UPDATE runs SET weights_path=? WHERE id=?", (str(outside), third))
    made = bundle.export_bundle(store, images=False)
    archive = zipfile.ZipFile(io.BytesIO(made.data))
    names = set(archive.namelist())
    assert {"README.txt", "runs.csv", "runs.json", "metrics.csv", "figures/plotly.min.js", "figures/training-curves.html",
            "figures/accuracy-vs-weights-digits.html", "figures/hyperparameters.html"} <= names
    assert {f"metrics/{run_id}.csv" for run_id in (first, second, third)} <= names
    assert {f"weights/{first}.pt", f"weights/{second}.pt"} <= names and f"weights/{third}.pt" not in names
    assert archive.read(f"weights/{first}.pt") == f"PK weights of {first}".encode()
    assert archive.read(f"weights/{second}.best.pt") == f"PK best epoch of {second}".encode()
    assert f"weights/{first}.best.pt" not in names
    assert not any(name.endswith(".png") for name in names)  # images=False
    table = list(csv.DictReader(io.StringIO(archive.read("runs.csv").decode())))
    assert {row["id"]: row["name"] for row in table}[first] == "small"
    assert {row["id"]: row["tags"] for row in table}[first] == "demo"
    events = list(csv.DictReader(io.StringIO(archive.read(f"metrics/{second}.csv").decode())))
    assert [float(row["epoch"]) for row in events] == [0.0, 0.5, 1.0] and {row["run_id"] for row in events} == {second}
    records = {item["id"]: item for item in json.loads(archive.read("runs.json"))}
    assert records[second]["config"]["epochs"] == 2 and records[first]["weights_file"] == f"weights/{first}.pt"
    html = archive.read("figures/training-curves.html").decode()
    assert 'src="plotly.min.js"' in html and "train (dashed)" in html  # offline, and says which line is which
    assert f"run {third} has no weights file" in archive.read("README.txt").decode()


def test_chosen_runs_only_and_an_unknown_id(store):
    first, second = record(store, 1), record(store, 2)
    archive = zipfile.ZipFile(io.BytesIO(bundle.export_bundle(store, [second], images=False).data))
    assert f"metrics/{second}.csv" in archive.namelist() and f"metrics/{first}.csv" not in archive.namelist()
    with pytest.raises(ValueError, match="no run 'nope'"):
        bundle.export_bundle(store, ["nope"], images=False)


@pytest.mark.skipif(export.image_export_problem() is not None, reason="PNG export needs kaleido and Chromium")
def test_figures_also_as_png_when_kaleido_renders(store, tmp_path):
    record(store, 1)
    made = bundle.write_bundle(store, tmp_path / "out" / "all.zip")
    archive = zipfile.ZipFile(tmp_path / "out" / "all.zip")
    assert archive.read("figures/training-curves.png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert made.notes == []
