"""``train --val-split --early-stop``: the flags reach the config, the JSON summary says which epoch was best
and the test accuracy there, ``runs show`` lists both weights files; bad values are one line naming the flag."""

from __future__ import annotations

import json

import pytest

from ttexplore.cli import main
from ttexplore.runs.store import RunStore

QUICK = ["train", "--dataset", "digits", "--pad-to", "none", "--in-modes", "4x4x4", "--out-modes", "4x4x4",
         "--train-limit", "400", "--quiet"]


def test_the_summary_reports_the_best_validation_epoch_and_the_test_accuracy_there(tmp_path, capsys):
    out = tmp_path / "summary.json"
    code = main([*QUICK, "--epochs", "10", "--lr", "0.05", "--val-split", "0.1", "--early-stop", "2", "--record",
                 "--json", str(out)])
    assert code == 0
    summary = json.loads(out.read_text())
    assert summary["config"]["val_split"] == 0.1 and summary["config"]["early_stop"] == 2
    history = summary["history"]
    losses = [event["val_loss"] for event in history]
    best = min(range(len(losses)), key=lambda index: (losses[index], index))
    assert summary["best_val_epoch"] == best + 1
    assert summary["val_accuracy"] == history[best]["val_accuracy"]
    assert summary["test_accuracy_at_best_val"] == history[best]["test_accuracy"]
    assert summary["best_test_accuracy"] == max(event["test_accuracy"] for event in history)
    stopped = summary["stopped_early_at"]
    assert (stopped is None and len(history) == 10) or (stopped == len(history) and len(history) - (best + 1) == 2)
    assert f"best validation epoch {best + 1}" in capsys.readouterr().err
    main(["runs", "show", summary["run_id"], "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert shown["best_val_epoch"] == best + 1 and shown["best_weights_path"].endswith(".best.pt")
    assert RunStore().get_run(summary["run_id"])["test_accuracy_at_best_val"] == summary["test_accuracy_at_best_val"]


def test_without_a_split_the_validation_fields_are_empty(tmp_path):
    out = tmp_path / "summary.json"
    assert main([*QUICK, "--epochs", "1", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["best_val_epoch"] is None and summary["test_accuracy_at_best_val"] is None
    assert "val_split" not in summary["config"] and "val_loss" not in summary["history"][0]


@pytest.mark.parametrize("args, flag", [(["--early-stop", "3"], "--early-stop"), (["--val-split", "0.7"], "--val-split"),
                                        (["--val-split", "0.1", "--early-stop", "0"], "--early-stop")])
def test_bad_validation_flags_are_one_line_naming_the_flag(args, flag, capsys):
    assert main([*QUICK, *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"error: {flag}:" in lines[0]
