"""``python -m ttexplore runs export``: one zip of the runs, from the command line."""

from __future__ import annotations

import zipfile

from ttexplore.cli import main
from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore


def test_runs_export_writes_a_zip_of_every_run_or_the_chosen_ones(tmp_path, capsys):
    store = RunStore(tmp_path / "runs.db")
    ids = []
    for ranks, tags in ((1, ["keep"]), (2, [])):
        run_id = store.create_run(RunConfig.for_dataset("digits", epochs=1, ranks=ranks), tags=tags)
        store.add_event(run_id, {"kind": "epoch", "epoch": 1.0, "step": 5, "train_loss": 1.0, "train_accuracy": 0.5,
                                 "test_loss": 1.1, "test_accuracy": 0.6, "elapsed_s": 1.0})
        store.finish(run_id, "completed")
        ids.append(run_id)
    db = str(tmp_path / "runs.db")
    assert main(["runs", "--db", db, "export", "--out", str(tmp_path / "all.zip"), "--no-png"]) == 0
    assert "2 runs" in capsys.readouterr().out
    names = zipfile.ZipFile(tmp_path / "all.zip").namelist()
    assert {f"metrics/{run_id}.csv" for run_id in ids} <= set(names) and "runs.csv" in names
    assert main(["runs", "--db", db, "export", "--out", str(tmp_path / "one.zip"), "--no-png", ids[1]]) == 0
    assert f"metrics/{ids[0]}.csv" not in zipfile.ZipFile(tmp_path / "one.zip").namelist()
    assert main(["runs", "--db", db, "export", "--out", str(tmp_path / "tag.zip"), "--no-png", "--tag", "keep"]) == 0
    assert [name for name in zipfile.ZipFile(tmp_path / "tag.zip").namelist() if name.startswith("metrics/")] == [
        f"metrics/{ids[0]}.csv"]


def test_runs_export_errors_are_one_line_and_exit_2(tmp_path, capsys):
    db = str(tmp_path / "runs.db")
    assert main(["runs", "--db", db, "export", "--out", str(tmp_path / "x.zip")]) == 2
    assert "no runs to export" in capsys.readouterr().err
    assert main(["runs", "--db", db, "export", "--out", str(tmp_path / "x.txt")]) == 2
    assert "must name a .zip file" in capsys.readouterr().err
    assert main(["runs", "--db", db, "export", "--out", str(tmp_path / "x.zip"), "nope"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
