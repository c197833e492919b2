"""ttexplore.experiments.sweep.results: one row per cell over its seeds (mean, sample std, min, max, seeds), the
per-seed rows kept, the 2018 reproduction's table and figure with the seeds' spread. Expected numbers by hand."""

from __future__ import annotations

import csv
import math

import pytest

from ttexplore.experiments import sweep


def row(shape, seed, accuracy, status="completed", layer="tt", rank=1, params=128, compression=0.03125):
    return {"dataset": "d", "layer": layer, "shape": shape, "rank": rank, "seed": seed, "params": params,
            "compression": compression, "test_accuracy": accuracy, "best_test_accuracy": accuracy and accuracy + 0.01,
            "epochs": 1, "seconds": 1.0, "status": status, "run_id": f"{shape}-{seed}"}


ROWS = ([row("8x8", seed, accuracy) for seed, accuracy in ((0, 0.5), (1, 0.7), (2, 0.9))]
        + [row("dense", 0, 0.9, layer="dense", rank=None, params=4096, compression=1.0),
           row("dense", 1, 0.8, layer="dense", rank=None, params=4096, compression=1.0)]
        + [row("4x4x4", 0, 0.6, params=48, compression=0.01), row("4x4x4", 1, None, "running", params=48, compression=0.01)]
        + [row("2x2", 0, None, "pending", params=8, compression=0.001)])


def test_one_summary_row_per_cell_against_a_hand_computation():
    summary = {item["shape"]: item for item in sweep.summarize(ROWS)}
    assert list(summary) == ["8x8", "dense", "4x4x4", "2x2"]
    eight = summary["8x8"]
    std = math.sqrt(((0.5 - 0.7) ** 2 + 0 + (0.9 - 0.7) ** 2) / 2)  # 0.2, with n - 1 = 2 in the denominator
    assert (eight["test_accuracy_mean"], eight["test_accuracy_std"]) == (pytest.approx(0.7), pytest.approx(std))
    assert (eight["test_accuracy_min"], eight["test_accuracy_max"], eight["seeds"], eight["runs"]) == (0.5, 0.9, 3, 3)
    assert eight["best_test_accuracy_mean"] == pytest.approx(0.71) and eight["status"] == "completed"
    dense = summary["dense"]
    assert dense["test_accuracy_mean"] == pytest.approx(0.85) and dense["test_accuracy_std"] == pytest.approx(math.sqrt(0.005))
    partial = summary["4x4x4"]  # the running seed is counted, not averaged
    assert (partial["test_accuracy_mean"], partial["test_accuracy_std"], partial["seeds"], partial["runs"]) == (0.6, None, 1, 2)
    assert partial["status"] == "1 of 2 completed, 1 running"
    assert (summary["2x2"]["seeds"], summary["2x2"]["test_accuracy_mean"]) == (0, None)


def test_results_csv_has_a_row_per_cell_and_runs_csv_a_row_per_seed(tmp_path):
    pytest.importorskip("plotly")
    from ttexplore.presenters.export import ExportError

    try:
        paths = sweep.write_outputs(ROWS, tmp_path)
    except ExportError:  # no Chromium for the PNG: the CSVs and the table are written first
        paths = {"csv": tmp_path / "results.csv", "runs": tmp_path / "runs.csv", "table": tmp_path / "table.md"}
    with open(paths["csv"], newline="") as handle:
        cells = list(csv.DictReader(handle))
    assert list(cells[0]) == list(sweep.SUMMARY_COLUMNS)
    assert [cell["shape"] for cell in cells] == ["8x8", "dense", "4x4x4", "2x2"]
    assert float(cells[0]["test_accuracy_mean"]) == pytest.approx(0.7)
    assert float(cells[0]["test_accuracy_std"]) == pytest.approx(0.2) and cells[0]["seeds"] == "3"
    assert cells[2]["test_accuracy_std"] == "" and cells[3]["test_accuracy_mean"] == ""
    with open(paths["runs"], newline="") as handle:
        seeds = list(csv.DictReader(handle))
    assert len(seeds) == len(ROWS) and list(seeds[0]) == list(sweep.RESULT_COLUMNS)
    assert [(item["shape"], item["seed"]) for item in seeds[:3]] == [("8x8", "0"), ("8x8", "1"), ("8x8", "2")]
    table = paths["table"].read_text()
    assert "| shape | max TT rank | layer weights | compression rate | accuracy | seeds |" in table
    assert "| 8x8 | 1 | 128 | 3.1e-2 | 0.7000 ± 0.2000 | 3 |" in table
    assert "| 4x4x4 | 1 | 48 | 1.0e-2 | 0.6000 | 1 |" in table and "2x2" not in table


def test_the_figure_draws_each_cells_mean_and_its_band():
    figure = sweep.sweep_figure(ROWS)
    lines = {trace.name: trace for trace in figure.data if trace.name in ("8x8", "dense", "4x4x4")}
    assert list(lines["8x8"].y) == pytest.approx([0.7]) and list(lines["dense"].y) == pytest.approx([0.85])
    # a lone point of a line: an error bar, ± 1 std from three seeds, the range below
    assert list(lines["8x8"].error_y.array) == pytest.approx([0.2]) and list(lines["8x8"].error_y.arrayminus) == pytest.approx([0.2])
    assert list(lines["dense"].error_y.array) == pytest.approx([0.05]) and list(lines["dense"].error_y.arrayminus) == pytest.approx([0.05])
    assert lines["4x4x4"].error_y.array is None  # one seed: nothing to spread
    assert figure.layout.xaxis.type == "log"
