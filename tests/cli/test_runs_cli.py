"""``train --record`` and ``runs``: checked before work, interrupted by signals, resumed, listed, edited, deleted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ttexplore.runs.store import RunStore

DIGITS = ["--dataset", "digits", "--in-modes", "4x4x4", "--out-modes", "4x4x4", "--ranks", "2", "--quiet"]


def ttexplore(*args: str, home, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TTEXPLORE_HOME": str(home), "TTEXPLORE_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "ttexplore", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


@pytest.mark.parametrize("flag, path, words", [
    ("--json", "{tmp}/no/such/folder/out.json", "does not exist"),
    ("--save-model", "{tmp}", "is a folder"),
    ("--json", "{tmp}", "is a folder"),
])
def test_output_paths_are_refused_before_any_training(tmp_path, isolated_home, flag, path, words):
    result = ttexplore("train", *DIGITS, "--epochs", "1", "--record", flag, path.format(tmp=tmp_path), home=isolated_home)
    assert result.returncode == 2 and words in result.stderr and flag in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert RunStore(isolated_home / "runs.db").list_runs() == []  # nothing started


def test_a_bad_store_is_one_line_and_kept(isolated_home):
    isolated_home.mkdir(parents=True)
    (isolated_home / "runs.db").write_bytes(b"garbage" * 1000)
    for command in (["train", *DIGITS, "--epochs", "1", "--record"], ["runs", "list"]):
        result = ttexplore(*command, home=isolated_home)
        assert result.returncode == 2, result.stderr
        assert "runs.db.bad" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (isolated_home / "runs.db").read_bytes() == b"garbage" * 1000


def test_sigint_interrupts_a_recorded_run_which_resumes_to_the_same_result(isolated_home):
    config = [*DIGITS, "--epochs", "60", "--train-limit", "320", "--seed", "3", "--threads", "1"]
    env = {**os.environ, "TTEXPLORE_HOME": str(isolated_home), "TTEXPLORE_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "ttexplore", "train", *config, "--record", "--name", "stop me"],
                               stderr=subprocess.PIPE, text=True, env=env)
    store_path = isolated_home / "runs.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = RunStore(store_path).list_runs() if store_path.exists() else []
        if runs and runs[0]["epochs_done"] >= 2:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    run = RunStore(store_path).list_runs()[0]
    assert run["status"] == "interrupted" and "runs resume " + run["id"] in stderr
    assert RunStore(store_path).checkpoint_path_for(run["id"]).is_file()

    resumed = ttexplore("runs", "resume", run["id"], "--quiet", home=isolated_home)
    assert resumed.returncode == 0, resumed.stderr
    shown = json.loads(ttexplore("runs", "show", run["id"], "--json", home=isolated_home).stdout)
    assert shown["status"] == "completed" and shown["epochs_done"] == 60
    epochs = [event["epoch"] for event in shown["history"] if event["kind"] == "epoch"]
    assert epochs == [float(epoch) for epoch in range(1, 61)]  # one history, continued
    straight = ttexplore("train", *config, "--json", "-", home=isolated_home)
    assert json.loads(straight.stdout)["test_accuracy"] == shown["test_accuracy"]


def test_runs_list_show_edit_delete(isolated_home):
    first = ttexplore("train", *DIGITS, "--epochs", "1", "--record", "--name", "one", "--tag", "a", "--tag", "b",
                      "--notes", "first try", home=isolated_home)
    assert first.returncode == 0, first.stderr
    rows = json.loads(ttexplore("runs", "list", "--json", home=isolated_home).stdout)
    assert len(rows) == 1
    row = rows[0]
    for key in ("id", "name", "status", "tags", "epochs_done", "test_accuracy", "best_test_accuracy", "params", "config"):
        assert key in row, key
    assert (row["name"], row["tags"], row["notes"], row["status"], row["epochs_done"], row["params"]) == \
        ("one", ["a", "b"], "first try", "completed", 1.0, 128)
    shown = json.loads(ttexplore("runs", "show", row["id"], "--json", home=isolated_home).stdout)
    assert all("epoch" in event for event in shown["history"]) and shown["weights_path"]
    edited = json.loads(ttexplore("runs", "edit", row["id"], "--name", "renamed", "--tag", "c", home=isolated_home).stdout)
    assert edited["name"] == "renamed" and edited["tags"] == ["a", "b", "c"]
    listed = ttexplore("runs", "list", home=isolated_home).stdout
    assert "renamed" in listed and "[a, b, c]" in listed
    missing = ttexplore("runs", "show", "nope", home=isolated_home)
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr
    not_resumable = ttexplore("runs", "resume", row["id"], home=isolated_home)
    assert not_resumable.returncode == 2 and "completed" in not_resumable.stderr
    deleted = ttexplore("runs", "delete", row["id"], home=isolated_home)
    assert deleted.returncode == 0 and json.loads(ttexplore("runs", "list", "--json", home=isolated_home).stdout) == []
