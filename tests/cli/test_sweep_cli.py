"""ttexplore.cli.sweep: python -m ttexplore sweep end to end, its help, and one-line usage errors."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from ttexplore.cli import build_parser, main
from ttexplore.cli.sweep import _spec_from_args
from ttexplore.experiments import sweep
from ttexplore.runs.store import RunStore


def test_module_and_cli_import_without_torch_ray_or_plotly():
    code = ("import sys, ttexplore.experiments.sweep, ttexplore.cli; ttexplore.cli.build_parser(\"sweep\"); "
            "print(sorted(m for m in ('torch', 'ray', 'plotly') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


@pytest.mark.slow
def test_cli_writes_results_csv_png_html(tmp_path, capsys):
    # one worker process (a spawned interpreter importing torch); several workers are in test_sweep_executors
    out = tmp_path / "out"
    code = main(["sweep", "--dataset", "digits", "--shapes", "4x4x4,8x8", "--ranks", "1,2", "--epochs", "1",
                 "--train-limit", "300", "--workers", "1", "--db", str(tmp_path / "runs.db"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    cells = [("4x4x4", "1"), ("4x4x4", "2"), ("8x8", "1"), ("8x8", "2"), ("dense", ""), ("matrix rank", "1"), ("matrix rank", "2")]
    with open(out / "runs.csv", newline="") as handle:  # one row per seed
        rows = list(csv.DictReader(handle))
    for column in ("shape", "rank", "params", "compression", "test_accuracy", "dataset", "layer", "seed",
                   "best_test_accuracy", "seconds", "run_id"):
        assert column in rows[0]
    assert [(row["shape"], row["rank"]) for row in rows] == cells
    assert all(row["status"] == "completed" for row in rows)
    with open(out / "results.csv", newline="") as handle:  # one row per cell, its one seed's accuracy as the mean
        summary = list(csv.DictReader(handle))
    assert [(row["shape"], row["rank"]) for row in summary] == cells
    assert [row["test_accuracy_mean"] for row in summary] == [row["test_accuracy"] for row in rows]
    assert all(row["seeds"] == "1" and row["test_accuracy_std"] == "" for row in summary)
    assert (out / "accuracy_vs_weights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"plotly" in (out / "accuracy_vs_weights.html").read_bytes()[:200_000]
    assert "| 8x8 | 2 | 256 |" in (out / "table.md").read_text()
    assert "7 to run" in err and "[7/7]" in err


def test_cli_help_lists_the_presets_and_their_former_names(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "repro2018-mnist" in help_text and "repro2018-cifar10" in help_text
    assert "seed-mnist for repro2018-mnist" in help_text and "seed-cifar10 for repro2018-cifar10" in help_text


def test_cli_former_preset_name_gives_the_same_spec():
    parse = build_parser("sweep").parse_args
    assert _spec_from_args(parse(["sweep", "--preset", "seed-mnist"])) == \
        _spec_from_args(parse(["sweep", "--preset", "repro2018-mnist"])) == sweep.preset_spec("repro2018-mnist")


@pytest.mark.parametrize(
    "flags, flag",
    [
        (["--shapes", "8x8", "--ranks", "x"], "--ranks"),
        (["--shapes", "5x5"], "--shapes"),
        (["--shapes", "8x8", "--epochs", "many"], "--epochs"),
        (["--shapes", "8x8", "--executor", "spark"], "--executor"),
        (["--shapes", "8x8", "--lr", "-1"], "--lr"),
        ([], "--shapes"),
    ],
)
def test_cli_bad_flag_exits_2_with_one_line(tmp_path, capsys, flags, flag):
    code = main(["sweep", "--dataset", "digits", "--db", str(tmp_path / "runs.db"), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("ttexplore sweep: error:") and flag in err
    assert not (tmp_path / "runs.db").exists() or not RunStore(tmp_path / "runs.db").list_runs()


def test_missing_ray_is_a_clear_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    code = main(["sweep", "--dataset", "digits", "--shapes", "8x8", "--executor", "ray", "--db", str(tmp_path / "runs.db")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--executor" in err and "requirements-ray.txt" in err
