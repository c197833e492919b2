"""ttexplore.experiments.sweep.results: seeds averaged, the 2018 reproduction's table and figure."""

from __future__ import annotations

from ttexplore.experiments import sweep


def test_results_summary_table_and_figure():
    rows = [
        {"dataset": "d", "layer": "tt", "shape": "8x8", "rank": 1, "seed": seed, "params": 128, "compression": 0.03125,
         "test_accuracy": accuracy, "best_test_accuracy": accuracy, "status": "completed", "run_id": str(seed)}
        for seed, accuracy in ((0, 0.5), (1, 0.7))
    ] + [{"dataset": "d", "layer": "dense", "shape": "dense", "rank": None, "seed": 0, "params": 4096, "compression": 1.0,
          "test_accuracy": 0.9, "best_test_accuracy": 0.9, "status": "completed", "run_id": "x"},
         {"dataset": "d", "layer": "tt", "shape": "4x4x4", "rank": 1, "seed": 0, "params": 48, "compression": 0.01,
          "test_accuracy": None, "best_test_accuracy": None, "status": "running", "run_id": "y"}]
    summary = sweep.summarize(rows)
    assert [(row["shape"], row["seeds"], round(row["test_accuracy"], 3)) for row in summary] == [("8x8", 2, 0.6), ("dense", 1, 0.9)]
    markdown = sweep.table_markdown(summary)
    assert "| shape | max TT rank | layer weights | compression rate | accuracy |" in markdown
    assert "| 8x8 | 1 | 128 | 3.1e-2 | 0.6000 |" in markdown and "| dense | - | 4096 | 1 | 0.9000 |" in markdown
    figure = sweep.sweep_figure(rows)
    assert [trace.name for trace in figure.data] == ["8x8", "dense"]
    assert figure.layout.xaxis.type == "log"
