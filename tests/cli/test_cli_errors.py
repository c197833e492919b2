"""Every user error on the command line is one line naming the flag, exit code 2, and
comes before any data loads."""

from __future__ import annotations

import pytest

from ttexplore.cli import main


@pytest.fixture
def no_data(monkeypatch):
    """Fail loudly if a command loads a dataset (errors must come first)."""
    import ttexplore.runs.data as data

    def forbidden(*args, **kwargs):
        raise AssertionError("the dataset was loaded before the arguments were checked")

    monkeypatch.setattr(data, "load_dataset", forbidden)


#: Bad run flags; each error must name the last flag of its entry.
RUN_FLAG_ERRORS = """
--weight-decay nan | --weight-decay inf | --weight-decay -0.1 | --lr nan | --lr inf | --momentum nan
--optimizer sgd --momentum -0.5 | --seed -1 | --seed 9223372036854775807 | --seed 99999999999999999999
--pad-to abc | --pad-to 4.5 | --pad-to 1000 | --threads -1 | --threads 0 | --threads 100000
--epochs 0 | --epochs 1000000 | --batch-size 0 | --batch-size 10000000 | --evals-per-epoch 0
--train-limit 0 | --train-limit 99999999 | --in-modes 4.5x8x8x4 | --in-modes 4x8x8x0
--out-modes 100000000000000000000000 | --out-modes 4x8x8x100000000000000000000000 | --out-modes 2^64
--out-modes 1000x1000x1000 | --ranks 4.5 | --ranks 0 | --layer dense --hidden 0 | --layer matrix_rank --matrix-rank 0
"""
CASES = [entry.split() for line in RUN_FLAG_ERRORS.strip().splitlines() for entry in line.split("|")]


@pytest.mark.parametrize(
    "command, args",
    [("train", args) for args in CASES] + [("count", args) for args in CASES if args[0] != "--threads"],  # count has no --threads
)
def test_bad_run_flags_are_one_line_exit_2_before_data_loads(command, args, no_data, capsys):
    flag = [arg for arg in args if arg.startswith("--")][-1]
    code = main([command, "--quiet", *args] if command == "train" else [command, *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"ttexplore {command}: error: {flag}: "), err


@pytest.mark.parametrize(
    "args, text",
    [
        (["suggest", "784", "10", "--top", "-1"], "top -1"),
        (["suggest", "784", "10", "--d", "0"], "d 0"),
        (["suggest", "784", "10", "--d", "40"], "12 modes"),
        (["suggest", "784", "10", "--rank", "0"], "rank 0"),
        (["suggest", "0", "10"], "in_features 0 must be a positive whole number"),
        (["suggest", "784", "10000000000000"], "out_features"),
    ],
)
def test_suggest_refuses_bad_numbers_in_one_line(args, text, capsys):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and text in err, err


HUGE_DENSE = ["--dataset", "digits", "--pad-to", "none", "--layer", "dense", "--in-modes", "8x8", "--out-modes", "100000x100000"]


def test_train_refuses_a_run_over_the_memory_budget_before_data_loads(no_data, monkeypatch, capsys):
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "8G")
    code = main(["train", "--quiet", *HUGE_DENSE])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("ttexplore train: error: memory: this run needs about") and "8.0 GiB (TTEXPLORE_MEMORY_LIMIT)" in err


def test_count_shows_the_estimate_and_never_refuses(monkeypatch, capsys):
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "8G")
    assert main(["count", *HUGE_DENSE]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("peak memory (est.)"))
    assert "TiB" in line and "over the budget of 8.0 GiB" in line and "train would refuse it" in line
    assert main(["count"]) == 0
    assert "within the budget" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["train", "count"])
def test_a_bad_memory_limit_is_one_line(command, no_data, monkeypatch, capsys):
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "plenty")
    assert main([command, "--quiet"] if command == "train" else [command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TTEXPLORE_MEMORY_LIMIT='plenty' is not a size" in err, err
