"""A full disk, writer by writer: the target keeps its old content (or stays absent), no temporary
file is left, and the message is one line naming the file. Also the run store on a full disk, and
a run whose first checkpoint could not be written."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import pytest
import torch

from ttexplore.cli import main
from ttexplore.nn.layers import TTLinear
from ttexplore.runs.config import RunConfig
from ttexplore.runs.fit import TrainingState
from ttexplore.runs.lifecycle import execute, resume_point, save_checkpoint
from ttexplore.runs.models import build_model, save_model
from ttexplore.runs.store import RunStore, StoreError
from ttexplore.runs.storefile import store_problem
from ttexplore.tt.atomic import WriteError

SMALL = dict(dataset="digits", pad_to=None, in_modes="4x4x4", out_modes="4x4x4", ranks=2, epochs=2, batch_size=32,
             train_limit=96, evals_per_epoch=1)
DIGITS = ["--dataset", "digits", "--in-modes", "4x4x4", "--out-modes", "4x4x4", "--ranks", "2", "--epochs", "1",
          "--train-limit", "64", "--quiet"]


def small() -> RunConfig:
    return RunConfig.from_dict(SMALL)


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its content (a temporary file left behind shows up here)."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def assert_one_line_naming(error: Exception, path: Path) -> None:
    message = str(error)
    assert "\n" not in message and str(path) in message and "no space left" in message, message


def test_save_model_keeps_the_old_file(tmp_path, full_disk):
    target = tmp_path / "model.pt"
    target.write_bytes(b"the previous model")
    full_disk(room=64)
    with pytest.raises(WriteError) as caught:
        save_model(build_model(small()), small(), target)
    assert_one_line_naming(caught.value, target)
    assert files_in(tmp_path) == {"model.pt": b"the previous model"}


def test_ttlinear_save_leaves_nothing(tmp_path, full_disk):
    full_disk(room=0)
    with pytest.raises(WriteError) as caught:
        TTLinear((4, 4), (4, 4), ranks=2).save(tmp_path / "layer.pt")
    assert_one_line_naming(caught.value, tmp_path / "layer.pt")
    assert files_in(tmp_path) == {}


def test_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, full_disk):
    path = tmp_path / "checkpoints" / "run.pt"
    model = build_model(small())
    state = TrainingState(1, 3, 0.5, model.state_dict(), {}, torch.get_rng_state())
    save_checkpoint(path, "run", small(), state)
    before = path.read_bytes()
    full_disk(room=1000)
    with pytest.raises(WriteError) as caught:
        save_checkpoint(path, "run", small(), TrainingState(2, 6, 1.0, model.state_dict(), {}, torch.get_rng_state()))
    assert_one_line_naming(caught.value, path)
    assert files_in(tmp_path) == {"checkpoints/run.pt": before}


def test_a_run_whose_first_checkpoint_failed_resumes_from_epoch_0_and_says_so(tmp_path, full_disk):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(small(), status="running")
    full_disk(room=0)
    execute(store, run_id)
    run = store.get_run(run_id)
    checkpoint = store.checkpoint_path_for(run_id)
    assert run["status"] == "failed" and str(checkpoint) in run["error"] and "no space left" in run["error"]
    assert run["epochs_done"] == 0  # the epoch was trained, but nothing to continue it from was saved
    assert resume_point(store, run) == "from epoch 0 of 2: it has no checkpoint"
    assert not any(name.endswith(".tmp") for name in files_in(tmp_path))


def test_a_checkpointed_epoch_is_counted_only_once_its_file_is_there(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(small(), status="running")
    seen = []

    def fit_and_watch(config, dataset=None, on_epoch_end=None, **kwargs):
        from ttexplore.runs.fit import fit

        def watch(state):
            seen.append(store.get_run(run_id)["epochs_done"])  # the epoch event is in; the checkpoint not yet
            on_epoch_end(state)
            seen.append(store.get_run(run_id)["epochs_done"])

        return fit(config, dataset, on_epoch_end=watch, **kwargs)

    execute(store, run_id, fit_function=fit_and_watch)
    assert seen == [0, 1, 1, 2] and store.get_run(run_id)["status"] == "completed"


def test_resume_point_reads_the_checkpoint_itself(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(small(), status="running")
    model = build_model(small())
    save_checkpoint(store.checkpoint_path_for(run_id), run_id, small(),
                    TrainingState(1, 3, 0.5, model.state_dict(), {}, torch.get_rng_state()))
    assert resume_point(store, store.get_run(run_id)) == "from its checkpoint after epoch 1 of 2"


def test_cli_train_json_and_save_model_on_a_full_disk(tmp_path, full_disk, capsys):
    (tmp_path / "summary.json").write_text("old summary")
    full_disk(room=0)
    code = main(["train", *DIGITS, "--json", str(tmp_path / "summary.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("train: error: --json: cannot write " + str(tmp_path / "summary.json"))
    assert files_in(tmp_path) == {"summary.json": b"old summary"}
    code = main(["train", *DIGITS, "--save-model", str(tmp_path / "model.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("train: error: --save-model: cannot write " + str(tmp_path / "model.pt"))
    assert files_in(tmp_path) == {"summary.json": b"old summary"}


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="this system has no /dev/full")
@pytest.mark.parametrize("flag", ["--json", "--save-model"])
def test_cli_train_onto_dev_full_is_one_line(flag, capsys):
    code = main(["train", *DIGITS, flag, "/dev/full"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith(f"train: error: {flag}: cannot write /dev/full: no space left")


def test_runs_export_zip_on_a_full_disk(tmp_path, full_disk, capsys):
    store = RunStore()
    store.create_run(small(), status="queued")
    full_disk(room=100)
    code = main(["runs", "export", "--no-png", "--out", str(tmp_path / "runs.zip")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("ttexplore runs: error: cannot write " + str(tmp_path / "runs.zip")), err
    assert "\n" not in err and not (tmp_path / "runs.zip").exists() and not list(tmp_path.glob(".*tmp"))


def test_sweep_outputs_on_a_full_disk(tmp_path, full_disk):
    from ttexplore.experiments.sweep.results import RESULT_COLUMNS, write_outputs

    full_disk(room=10)
    with pytest.raises(WriteError) as caught:
        write_outputs([{**dict.fromkeys(RESULT_COLUMNS, 1), "dataset": "digits", "layer": "tt", "shape": "4x4x4", "rank": 1,
                        "status": "completed", "test_accuracy": 0.5, "best_test_accuracy": 0.5}], tmp_path / "out")
    assert_one_line_naming(caught.value, tmp_path / "out" / "results.csv")
    assert files_in(tmp_path) == {}


def test_bench_tables_on_a_full_disk(tmp_path, full_disk):
    from ttexplore.experiments.bench.report import write_csv

    (tmp_path / "bench.csv").write_text("old")
    full_disk(room=5)
    with pytest.raises(WriteError) as caught:
        write_csv(tmp_path / "bench.csv", [{"case": "paper", "median_ms": 1.5}] * 10)
    assert_one_line_naming(caught.value, tmp_path / "bench.csv")
    assert files_in(tmp_path) == {"bench.csv": b"old"}


def test_a_figure_on_a_full_disk(tmp_path, full_disk):
    import plotly.graph_objects as go

    from ttexplore.presenters.export import write_figure

    full_disk(room=1000)
    with pytest.raises(WriteError) as caught:
        write_figure(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])), tmp_path / "figure.html")
    assert_one_line_naming(caught.value, tmp_path / "figure.html")
    assert files_in(tmp_path) == {}


# ---------------------------------------------------------------- the run store on a full disk
def test_a_full_disk_is_not_reported_as_a_corrupt_store(tmp_path, monkeypatch):
    path = tmp_path / "runs.db"
    full = store_problem(path, sqlite3.OperationalError("database or disk is full"))
    assert full.reason == "full" and str(path) in str(full) and "disk is full" in str(full)
    assert "not a readable" not in str(full) and "mv " not in str(full)
    import collections
    import shutil

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(100, 100, 0))
    io_on_full = store_problem(path, sqlite3.OperationalError("disk I/O error"))
    assert io_on_full.reason == "full"
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(1 << 40, 1 << 30, 1 << 39))
    io_with_room = store_problem(path, sqlite3.OperationalError("disk I/O error"))
    assert io_with_room.reason == "io" and "not a readable" not in str(io_with_room)
    corrupt = store_problem(path, sqlite3.DatabaseError("file is not a database"))
    assert corrupt.reason == "not-a-store" and f"mv {path} {path}.bad" in str(corrupt)


def test_a_store_write_on_a_full_disk_says_so_and_keeps_the_store(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(small(), status="queued")
    real_connect = sqlite3.connect

    class FullConnection:
        def __init__(self, connection):
            self.connection = connection

        def execute(self, sql, *args):
            if sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
                raise sqlite3.OperationalError("database or disk is full")
            return self.connection.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.connection, name)

        def __setattr__(self, name, value):
            if name == "connection":
                object.__setattr__(self, name, value)
            else:
                setattr(self.connection, name, value)

    monkeypatch.setattr(sqlite3, "connect", lambda *args, **kwargs: FullConnection(real_connect(*args, **kwargs)))
    with pytest.raises(StoreError) as caught:
        store.set_epochs_done(run_id, 1)
    assert caught.value.reason == "full" and str(store.path) in str(caught.value)
    monkeypatch.setattr(sqlite3, "connect", real_connect)
    assert store.get_run(run_id)["epochs_done"] == 0


def test_enospc_number_is_kept_on_the_error(tmp_path, full_disk):
    from ttexplore.tt.atomic import write_atomic

    full_disk(room=0)
    with pytest.raises(OSError) as caught:  # still an OSError for callers that catch those
        write_atomic(tmp_path / "x", b"1")
    assert caught.value.errno == errno.ENOSPC
