"""``python -m ttexplore``: end to end in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ttexplore.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ttexplore", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_train_on_digits_prints_one_json_object_and_a_progress_bar(trained_run):
    # the shared run: train --json - --save-model ... --record, without --quiet, in a subprocess
    summary = json.loads(trained_run.process.stdout)  # stdout holds exactly one JSON object
    assert summary["params"] == 128 and summary["dense_params"] == 64 * 64
    assert summary["compression"] == pytest.approx(128 / 4096)
    assert len(summary["history"]) == 3 and [h["epoch"] for h in summary["history"]] == [1.0, 2.0, 3.0]
    assert 0.3 < summary["test_accuracy"] <= 1.0
    assert summary["test_accuracy"] == summary["history"][-1]["test_accuracy"]
    stderr = trained_run.process.stderr
    assert "%" in stderr and "[" in stderr  # the progress bar went to stderr
    assert stderr.strip().splitlines()[-1].startswith("completed: test accuracy")
    from ttexplore import TTLinear

    assert TTLinear.load(trained_run.model_path).ranks == (2, 2)


def test_json_to_a_file_and_record_in_the_store(tmp_path, isolated_home):
    out = tmp_path / "summary.json"
    code = main(["train", "--dataset", "digits", "--epochs", "1", "--train-limit", "200", "--json", str(out), "--record", "--quiet"])
    assert code == 0
    summary = json.loads(out.read_text())
    from ttexplore.runs.store import RunStore

    run = RunStore().get_run(summary["run_id"])
    assert run["status"] == "completed" and run["final_test_accuracy"] == summary["test_accuracy"]


@pytest.mark.parametrize(
    "args, names",
    [
        (["train", "--dataset", "digits", "--in-modes", "4x4x5"], "--in-modes"),
        (["train", "--dataset", "digits", "--ranks", "x"], "--ranks"),
        (["train", "--epochs", "many"], "--epochs"),
        (["train", "--dataset", "imagenet"], "--dataset"),
        (["train", "--dataset", "digits", "--lr", "-1"], "--lr"),
        (["train", "--dataset", "mnist", "--data-dir", "/nonexistent/folder"], "--dataset"),
        (["train", "--no-such-flag"], "--no-such-flag"),
        (["suggest", "787", "10"], "787"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_code_2(args, names, capsys):
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and names in error and "Traceback" not in error


def test_help_documents_every_flag():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    for flag in ("--dataset", "--data-dir", "--in-modes", "--out-modes", "--ranks", "--layer", "--epochs", "--lr",
                 "--batch-size", "--optimizer", "--weight-decay", "--seed", "--json", "--pad-to", "--save-model"):
        assert flag in result.stdout
    top = run_cli("--help")
    assert "train" in top.stdout and "count" in top.stdout


def test_count_matches_param_count(capsys):
    assert main(["count", "--ranks", "3", "--json"]) == 0
    numbers = json.loads(capsys.readouterr().out)
    assert numbers["layer weights"] == 1248 and numbers["dense weights"] == 1024 * 1024


def test_parsing_count_or_top_level_help_does_not_import_torch():
    code = ("import sys; from ttexplore.cli import build_parser; build_parser(); build_parser('count'); "
            "build_parser('sweep'); print('torch' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"


def test_lazily_imported_commands_have_their_flags():
    for command, flag in (("sweep", "--preset"), ("bench", "--cases")):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and flag in result.stdout
