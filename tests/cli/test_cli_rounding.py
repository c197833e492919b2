"""``train --round-to``: bad schedules are one line and exit 2 before any data loads; the JSON and
``runs show --json`` give the ranks and weights in use at the end; ``compress --run`` on a TT run rounds it."""

from __future__ import annotations

import json

import pytest

from ttexplore.cli import main
from ttexplore.tt.ttmath import param_count

TINY = ["--dataset", "digits", "--in-modes", "4x4x4", "--ranks", "8", "--train-limit", "320", "--evals-per-epoch", "1",
        "--quiet", "--threads", "1"]


@pytest.fixture
def no_data(monkeypatch):
    """Fail loudly if a command loads a dataset (errors must come first)."""
    import ttexplore.runs.data as data

    def forbidden(*args, **kwargs):
        raise AssertionError("the dataset was loaded before the arguments were checked")

    monkeypatch.setattr(data, "load_dataset", forbidden)


@pytest.mark.parametrize("schedule, words", [
    (["0@3"], "rank 0 in 0@3 must be at least 1"),
    (["4@0"], "epoch 0 in 4@0 must be at least 1"),
    (["4@99"], "epoch 99 in 4@99 is not before the run's last epoch (epochs is 5)"),
    (["16@2"], "rank 16 in 16@2 is not below the ranks in use then (at most 8)"),
    (["4@2", "8@3"], "rank 8 in 8@3 is not below the ranks in use then (at most 4)"),
    (["rel:2@3"], "relative error 2 in rel:2@3 must be between 0 and 1"),
    (["4@2", "2@2"], "two roundings after epoch 2"),
    (["four@2"], "the rank in four@2 must be a whole number"),
])
def test_a_bad_schedule_is_one_line_exit_2_before_data_loads(schedule, words, no_data, capsys):
    args = [part for step in schedule for part in ("--round-to", step)]
    code = main(["train", "--dataset", "digits", "--in-modes", "4x4x4", "--ranks", "8", "--epochs", "5", "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("ttexplore train: error: --round-to: ") and words in err, err


def test_a_schedule_on_a_net_without_tt_layers_is_refused(no_data, capsys):
    assert main(["train", "--dataset", "digits", "--layer", "dense", "--epochs", "5", "--round-to", "2@2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--round-to: the network has no TT layer" in err


def test_the_json_gives_the_network_at_its_final_ranks(tmp_path, capsys):
    out = tmp_path / "run.json"
    code = main(["train", *TINY, "--epochs", "3", "--round-to", "4@1", "--round-to", "2@2", "--json", str(out), "--record"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(out.read_text())
    modes = (4, 4, 4)
    assert summary["params"] == param_count(modes, modes, 2) and summary["ranks"] == [[2, 2]]
    assert summary["start_params"] == param_count(modes, modes, 8)
    assert summary["compression"] == pytest.approx(summary["params"] / summary["dense_params"])
    assert [(change["epoch"], change["ranks_before"], change["ranks_after"]) for change in summary["roundings"]] == \
        [(1.0, [8, 8], [4, 4]), (2.0, [4, 4], [2, 2])]
    assert [change["params_after"] for change in summary["roundings"]] == [param_count(modes, modes, 4), summary["params"]]
    assert all(0 < change["rel_error"] < 1 for change in summary["roundings"])
    assert [event["epoch"] for event in summary["history"]] == [1.0, 2.0, 3.0]
    capsys.readouterr()
    assert main(["runs", "show", summary["run_id"], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["params"] == summary["params"] and shown["ranks"] == [[2, 2]]
    assert shown["roundings"] == summary["roundings"]
    assert [event["kind"] for event in shown["history"]].count("round") == 2
    assert main(["runs", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["params"] == summary["params"]
    assert main(["runs", "show", summary["run_id"]]) == 0
    assert "rounded after epoch 2: hidden ranks [4, 4] -> [2, 2]" in capsys.readouterr().out


def test_compress_of_a_tt_run_rounds_its_cores(tmp_path, capsys):
    assert main(["train", *TINY, "--epochs", "2", "--record", "--json", str(tmp_path / "tt.json")]) == 0
    run_id = json.loads((tmp_path / "tt.json").read_text())["run_id"]
    capsys.readouterr()
    assert main(["compress", "--run", run_id, "--finetune-epochs", "1", "--json", "-", "--quiet", "--threads", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "tt-round" and report["in_modes"] == [4, 4, 4]
    assert [row["rank"] for row in report["rows"]] == [1, 2, 4]  # the powers of 2 below its rank 8
    assert all(row["test_accuracy"] is not None and row["finetuned_test_accuracy"] is not None for row in report["rows"])
    errors = [row["rel_error"] for row in report["rows"]]
    assert errors == sorted(errors, reverse=True) and 0 < errors[-1] < 1
    assert main(["compress", "--run", run_id, "--ranks", "8"]) == 2
    assert "--ranks: rank 8 is not below the run's ranks in use (at most 8)" in capsys.readouterr().err
