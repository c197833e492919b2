"""Does training at a high TT rank and rounding down beat training at the low rank from the start?

``python benchmarks/rounding_schedule.py --home DIR [--datasets mnist5k,fashion-mnist] [--seeds 0,1,2]``

For the paper's net (32x32 padded input, TT 4x8x8x4 -> 4x8x8x4, ReLU, dense head), per dataset and seed,
every run the same 15 epochs (Adam, lr 3e-3, batch 64, one test evaluation per epoch):

* ``8 -> 4 -> 2``: rank 8, rounded to 4 after epoch 5 and to 2 after epoch 10 (``--round-to 4@5 --round-to 2@10``);
* ``8 -> 2``: rank 8, rounded straight to 2 after epoch 10;
* ``rank 2``: rank 2 from a random draw (the target net, trained from scratch);
* ``rank 8``: rank 8 throughout (what the rounded nets started as; a reference, 15x the weights of rank 2);
* ``dense + TT-SVD``: the dense 1024x1024 layer 10 epochs, TT-SVD of it at rank 2, fine-tuned 5 epochs
  (``compress --run ID --ranks 2 --finetune-epochs 5``).

Every network is a recorded run in ``DIR``'s run store (a second launch reuses the completed ones),
trained by ``--workers`` processes of one torch thread each. Writes ``results/rounding-<dataset>/``:
``runs.json`` (every run's final accuracy, weights and per-epoch curve), ``table.md`` (mean and std over
the seeds) and ``curves.png`` (mean test accuracy against epoch, a band of one std).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EPOCHS = 15
METHODS = ("8 -> 4 -> 2", "8 -> 2", "rank 2", "rank 8", "dense + TT-SVD")
SCHEDULES = {"8 -> 4 -> 2": (8, "4@5,2@10"), "8 -> 2": (8, "2@10"), "rank 2": (2, None), "rank 8": (8, None)}
DENSE_EPOCHS, FINETUNE_EPOCHS = 10, 5
_DATA: dict[str, Any] = {}


def _dataset(name: str, data_dir: str | None) -> Any:
    from ttexplore.runs.data import load_dataset

    if name not in _DATA:
        _DATA[name] = load_dataset(name, data_dir)
    return _DATA[name]


def _setup(home: str) -> Any:
    import torch

    torch.set_num_threads(1)
    os.environ["TTEXPLORE_HOME"] = home
    from ttexplore.runs.store import RunStore

    return RunStore(Path(home) / "runs.db")


def _execute(store: Any, config: Any, name: str, data_dir: str | None) -> str:
    """The completed run of ``config`` in ``store`` (trained now when it has none); returns its id."""
    from ttexplore.runs.lifecycle import execute

    done = store.find_completed(config)
    if done is not None:
        return done["id"]
    run_id = store.create_run(config, status="running", name=name, tags=["rounding-study"])
    execute(store, run_id, dataset=_dataset(config.dataset, data_dir), config=config)
    status = store.get_run(run_id)["status"]
    if status != "completed":
        raise RuntimeError(f"run {run_id} ({name}) ended {status}: {store.get_run(run_id).get('error')}")
    return run_id


def train_one(home: str, dataset: str, method: str, seed: int, train_limit: int | None, data_dir: str | None) -> dict:
    """Worker: one TT run of :data:`SCHEDULES` or the dense run; returns ``{"method", "seed", "run_id", "seconds"}``."""
    from ttexplore.runs.config import RunConfig

    store = _setup(home)
    started = time.perf_counter()
    values: dict[str, Any] = {"seed": seed, "evals_per_epoch": 1, "train_limit": train_limit}
    if method == "dense":
        config = RunConfig.for_dataset(dataset, layer="dense", epochs=DENSE_EPOCHS, **values)
    else:
        ranks, schedule = SCHEDULES[method]
        config = RunConfig.for_dataset(dataset, in_modes="4x8x8x4", ranks=ranks, epochs=EPOCHS, round_to=schedule, **values)
    run_id = _execute(store, config, f"{method} seed {seed}", data_dir)
    return {"method": method, "seed": seed, "run_id": run_id, "seconds": time.perf_counter() - started}


def compress_one(home: str, dense_run: str, seed: int, data_dir: str | None) -> dict:
    """Worker: TT-SVD of the dense run's layer at rank 2, evaluated as it is and fine-tuned 5 epochs."""
    from ttexplore.experiments import compress

    store = _setup(home)
    started = time.perf_counter()
    source = compress.source_from_run(store, dense_run)
    targets = compress.plan_compression(source, (4, 8, 8, 4), (4, 8, 8, 4), ranks=[2], finetune_epochs=FINETUNE_EPOCHS)
    for what, config, name in compress.missing_runs(store, targets):
        _execute(store, config, f"{name} seed {seed}", data_dir)
    row = compress.compress_rows(store, targets)[0]
    return {"method": "dense + TT-SVD", "seed": seed, "run_id": row.finetuned_run_id, "compressed_run": row.compressed_run_id,
            "dense_run": dense_run, "rel_error": row.rel_error, "seconds": time.perf_counter() - started}


# ---------------------------------------------------------------- reading the runs back
def curve(store: Any, run_id: str, offset: float = 0.0) -> list[dict[str, Any]]:
    """``[{"epoch", "test_accuracy", "kind"}]`` of a run's end-of-epoch and rounding events (``offset`` added to epochs)."""
    return [{"epoch": event["epoch"] + offset, "test_accuracy": event["test_accuracy"], "kind": event["kind"]}
            for event in store.metrics(run_id) if event["kind"] in ("epoch", "round")]


def record(store: Any, entry: dict[str, Any]) -> dict[str, Any]:
    """One run's numbers: final test accuracy, weights at the end, the curve, and for roundings the accuracy
    right after each rounding and the rounding's error."""
    from ttexplore.runs.schedule import rounding_changes

    run = store.get_run(entry["run_id"])
    events = store.metrics(entry["run_id"])
    result = {**entry, "final_test_accuracy": run["final_test_accuracy"], "params": run["layer_params"]}
    if entry["method"] == "dense + TT-SVD":
        dense = curve(store, entry["dense_run"])
        as_compressed = store.get_run(entry["compressed_run"])["final_test_accuracy"]
        tuned = [point for point in curve(store, entry["run_id"], offset=DENSE_EPOCHS) if point["kind"] == "epoch"]
        result["curve"] = dense + [{"epoch": float(DENSE_EPOCHS), "test_accuracy": as_compressed, "kind": "round"}] + tuned
        result["after_rounding"] = [as_compressed]
        result["dense_accuracy"] = store.get_run(entry["dense_run"])["final_test_accuracy"]
    else:
        result["curve"] = curve(store, entry["run_id"])
        changes = rounding_changes(events)
        result["after_rounding"] = [change["test_accuracy"] for change in changes]
        result["rounding_errors"] = [change["rel_error"] for change in changes]
        result["before_rounding"] = [next(event["test_accuracy"] for event in events
                                          if event["kind"] == "epoch" and event["epoch"] == change["epoch"])
                                     for change in changes]
    return result


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def table(records: list[dict[str, Any]], dataset: str) -> str:
    """Mean ± std over the seeds of each method's final test accuracy, and what each rounding cost."""
    lines = [f"| method ({dataset}, {EPOCHS} epochs) | weights at the end | final test accuracy, mean ± std (n) | "
             "min - max | right after each rounding (mean) | rounding error (mean) |",
             "|---|---|---|---|---|---|"]
    for method in METHODS:
        rows = [row for row in records if row["method"] == method]
        if not rows:
            continue
        mean, std = _mean_std([row["final_test_accuracy"] for row in rows])
        finals = [row["final_test_accuracy"] for row in rows]
        drops = []
        for index in range(len(rows[0].get("after_rounding", []))):
            before = [row["before_rounding"][index] for row in rows if "before_rounding" in row]
            after = statistics.fmean(row["after_rounding"][index] for row in rows)
            drops.append(f"{statistics.fmean(before):.3f} → {after:.3f}" if before else
                         f"{statistics.fmean(row['dense_accuracy'] for row in rows):.3f} (dense) → {after:.3f}")
        errors = [statistics.fmean(row["rounding_errors"][index] for row in rows)
                  for index in range(len(rows[0].get("rounding_errors", [])))]
        if method == "dense + TT-SVD":
            errors = [statistics.fmean(row["rel_error"] for row in rows)]
        lines.append(f"| {method} | {rows[0]['params']:,} | {mean:.4f} ± {std:.4f} ({len(rows)}) | "
                     f"{min(finals):.4f} - {max(finals):.4f} | {'; '.join(drops) or '-'} | "
                     f"{', '.join(f'{error:.3f}' for error in errors) or '-'} |")
    return "\n".join(lines) + "\n"


def figure(records: list[dict[str, Any]], title: str) -> Any:
    """Mean test accuracy against epoch per method, a band of one std; roundings at epochs 5 and 10 dashed."""
    import plotly.graph_objects as go

    from ttexplore.presenters.plots import PALETTE

    fig = go.Figure()
    for index, method in enumerate(METHODS):
        rows = [row for row in records if row["method"] == method]
        if not rows:
            continue
        points = min(len(row["curve"]) for row in rows)
        xs = [rows[0]["curve"][k]["epoch"] for k in range(points)]
        values = [[row["curve"][k]["test_accuracy"] for row in rows] for k in range(points)]
        means = [statistics.fmean(column) for column in values]
        stds = [statistics.stdev(column) if len(column) > 1 else 0.0 for column in values]
        color = PALETTE[index]
        red, green, blue = (int(color[i:i + 2], 16) for i in (1, 3, 5))
        fig.add_trace(go.Scatter(x=xs + xs[::-1], y=[m + s for m, s in zip(means, stds)] + [m - s for m, s in zip(means, stds)][::-1],
                                 fill="toself", fillcolor=f"rgba({red},{green},{blue},0.18)", line={"width": 0},
                                 hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=xs, y=means, mode="lines+markers", name=f"{method} ({rows[0]['params']:,} weights at the end)",
                                 line={"color": color, "width": 2, "dash": "dot" if method == "rank 8" else "solid"},
                                 marker={"size": 5}))
    for epoch in (5, 10):
        fig.add_vline(x=epoch, line={"dash": "dash", "color": "#7F7F7F", "width": 1})
    low = min((min(point["test_accuracy"] for point in row["curve"][1:]) for row in records), default=0.0)
    fig.update_yaxes(title_text="test accuracy", range=[max(0.0, min(low, 0.8) - 0.02), 1.0])
    fig.update_xaxes(title_text="epoch (a rounding's point sits at its epoch, after the epoch's own)")
    fig.update_layout(template="plotly_white", title=title, height=520, legend={"orientation": "h", "y": -0.2})
    return fig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="TTEXPLORE_HOME of the study's run store")
    parser.add_argument("--datasets", default="mnist5k,fashion-mnist")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=None, help="first N training images only (a quick check)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="results", help="folder of the rounding-<dataset> folders")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    datasets = args.datasets.split(",")
    started = time.perf_counter()
    finished: dict[str, list[dict]] = {dataset: [] for dataset in datasets}
    with ProcessPoolExecutor(args.workers) as pool:
        pending = {}
        for dataset in datasets:  # the dense runs first: their compressions wait for them
            for seed in seeds:
                pending[pool.submit(train_one, args.home, dataset, "dense", seed, args.train_limit, args.data_dir)] = dataset
        for dataset in datasets:
            for method in SCHEDULES:
                for seed in seeds:
                    pending[pool.submit(train_one, args.home, dataset, method, seed, args.train_limit, args.data_dir)] = dataset
        while pending:
            future = next(as_completed(pending))
            dataset = pending.pop(future)
            entry = future.result()
            print(f"{time.perf_counter() - started:7.0f} s  {dataset} {entry['method']} seed {entry['seed']}: run "
                  f"{entry['run_id']} ({entry['seconds']:.0f} s)", flush=True)
            if entry["method"] == "dense":
                pending[pool.submit(compress_one, args.home, entry["run_id"], entry["seed"], args.data_dir)] = dataset
            else:
                finished[dataset].append(entry)
    store = _setup(args.home)
    from ttexplore.presenters.export import write_figure

    for dataset in datasets:
        records = [record(store, entry) for entry in finished[dataset]]
        folder = Path(args.out) / f"rounding-{dataset}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "runs.json").write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
        (folder / "table.md").write_text(table(records, dataset), encoding="utf-8")
        write_figure(figure(records, f"TT 4x8x8x4 on {dataset}: test accuracy, mean ± std over {len(seeds)} seeds"),
                     folder / "curves.png", width=1100, height=560)
        print(table(records, dataset))
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
