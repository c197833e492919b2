"""``train --record`` and ``runs``: checked before work, interrupted by signals, resumed, listed, edited, deleted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cli_support import DIGITS, copy_home, ttexplore
from ttexplore.cli import main
from ttexplore.runs.store import RunStore

QUIET_DIGITS = [*DIGITS, "--quiet"]


@pytest.mark.parametrize("flag, path, words", [
    ("--json", "{tmp}/no/such/folder/out.json", "does not exist"),
    ("--save-model", "{tmp}", "is a folder"),
    ("--json", "{tmp}", "is a folder"),
])
def test_output_paths_are_refused_before_any_training(tmp_path, isolated_home, flag, path, words):
    result = ttexplore("train", *QUIET_DIGITS, "--epochs", "1", "--record", flag, path.format(tmp=tmp_path), home=isolated_home)
    assert result.returncode == 2 and words in result.stderr and flag in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert RunStore(isolated_home / "runs.db").list_runs() == []  # nothing started


def test_a_bad_store_is_one_line_and_kept(isolated_home):
    isolated_home.mkdir(parents=True)
    (isolated_home / "runs.db").write_bytes(b"garbage" * 1000)
    for command in (["train", *QUIET_DIGITS, "--epochs", "1", "--record"], ["runs", "list"]):
        result = ttexplore(*command, home=isolated_home)
        assert result.returncode == 2, result.stderr
        assert "runs.db.bad" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (isolated_home / "runs.db").read_bytes() == b"garbage" * 1000


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """``ttexplore ARGS`` in this process: exit code, stdout, stderr."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_sigint_interrupts_a_recorded_run_which_resumes_to_the_same_result(isolated_home, tmp_path, capsys):
    # 30 epochs of 320 images with one metric report each (every report and every epoch's checkpoint is a
    # durable write to the store): about 1.5 s here, yet the signal, sent once the store shows 2 epochs done,
    # lands with 28 epochs to go
    config = [*QUIET_DIGITS, "--epochs", "30", "--train-limit", "320", "--evals-per-epoch", "1", "--seed", "3",
              "--threads", "1"]
    env = {**os.environ, "TTEXPLORE_HOME": str(isolated_home), "TTEXPLORE_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "ttexplore", "train", *config, "--record", "--name", "stop me"],
                               stderr=subprocess.PIPE, text=True, env=env)
    store_path = isolated_home / "runs.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = RunStore(store_path).list_runs() if store_path.exists() else []
        if runs and runs[0]["epochs_done"] >= 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    run = RunStore(store_path).list_runs()[0]
    assert run["status"] == "interrupted" and "runs resume " + run["id"] in stderr
    assert 2 <= run["epochs_done"] < 30  # stopped mid-run
    assert RunStore(store_path).checkpoint_path_for(run["id"]).is_file()

    # the resume and the straight run need no signal: they run here, without an interpreter and torch to start
    threads = torch.get_num_threads()
    try:
        code, _, err = run_main(capsys, "runs", "resume", run["id"], "--quiet")
        assert code == 0, err
        code, out, _ = run_main(capsys, "runs", "show", run["id"], "--json")
        shown = json.loads(out)
        assert shown["status"] == "completed" and shown["epochs_done"] == 30
        epochs = [event["epoch"] for event in shown["history"] if event["kind"] == "epoch"]
        assert epochs == [float(epoch) for epoch in range(1, 31)]  # one history, continued
        straight = tmp_path / "straight.json"
        code, _, err = run_main(capsys, "train", *config, "--json", str(straight))
        assert code == 0, err
    finally:
        torch.set_num_threads(threads)  # --threads 1 set it for this whole process
    assert json.loads(straight.read_text())["test_accuracy"] == shown["test_accuracy"]


@pytest.mark.slow
def test_runs_list_and_show_read_a_recorded_run(trained_run, capsys):
    rows = json.loads(ttexplore("runs", "list", "--json", home=trained_run.home).stdout)  # as a user runs it
    assert len(rows) == 1
    row = rows[0]
    for key in ("id", "name", "status", "tags", "epochs_done", "test_accuracy", "best_test_accuracy", "params", "config"):
        assert key in row, key
    assert (row["id"], row["name"], row["tags"], row["notes"], row["status"], row["epochs_done"], row["params"]) == \
        (trained_run.summary["run_id"], "one", ["a", "b"], "first try", "completed", 3.0, 128)
    assert row["test_accuracy"] == trained_run.summary["test_accuracy"]  # the store and the --json summary agree
    db = str(trained_run.home / "runs.db")  # the other reads run in this process: the same code, no interpreter start
    code, out, _ = run_main(capsys, "runs", "--db", db, "show", row["id"], "--json")
    shown = json.loads(out)
    assert code == 0 and [event["epoch"] for event in shown["history"] if event["kind"] == "epoch"] == [1.0, 2.0, 3.0]
    assert all("epoch" in event for event in shown["history"]) and shown["weights_path"]
    code, listed, _ = run_main(capsys, "runs", "--db", db, "list")
    assert code == 0 and "one" in listed and "[a, b]" in listed
    code, _, err = run_main(capsys, "runs", "--db", db, "show", "nope")
    assert code == 2 and "no run 'nope'" in err
    code, _, err = run_main(capsys, "runs", "--db", db, "resume", row["id"])
    assert code == 2 and "completed" in err


@pytest.mark.slow
def test_runs_edit_and_delete_a_recorded_run(trained_run, tmp_path):
    home = copy_home(trained_run, tmp_path)
    run_id = trained_run.summary["run_id"]
    edited = json.loads(ttexplore("runs", "edit", run_id, "--name", "renamed", "--tag", "c", home=home).stdout)
    assert edited["name"] == "renamed" and edited["tags"] == ["a", "b", "c"]
    listed = ttexplore("runs", "list", home=home).stdout
    assert "renamed" in listed and "[a, b, c]" in listed
    deleted = ttexplore("runs", "delete", run_id, home=home)
    assert deleted.returncode == 0 and json.loads(ttexplore("runs", "list", "--json", home=home).stdout) == []
    original = RunStore(trained_run.home / "runs.db").get_run(run_id)  # the shared run is untouched
    assert original["name"] == "one" and Path(original["weights_path"]).is_file()
