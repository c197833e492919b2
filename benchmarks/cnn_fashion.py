"""The dense CNN against TT CNNs on full Fashion-MNIST: whole-network weights against test accuracy.

Nets (all ``conv 32 -> pool -> conv 64 -> pool -> conv 128 -> pool -> FC 256 -> 10``, 3x3 kernels,
images unpadded, the first convolution and the head dense; ``ttexplore.runs.presets``):

* ``dense``: the ``convnet`` preset;
* ``TT conv r=R``: the ``tt-convnet`` preset at rank ``R`` (Garipov's reshaping, ``ttconv`` layers, and the
  FC layer as a TT layer of the same rank);
* ``TT 4-D r~R``: the same net with the two TT convolutions replaced by the naive TT of the 4-D kernel
  (``tt4d``), each at the one rank ``t`` (ranks ``(t, t, min(t, 3))``) whose weights come closest to the
  ``ttconv`` layer's at rank ``R`` (so the whole nets nearly match in weights), the FC layer as in ``TT conv r=R``.

Usage (from the repository root; one thread per worker)::

    python benchmarks/cnn_fashion.py measure --out results/cnn-fashion-mnist           # one epoch of each net, timed
    python benchmarks/cnn_fashion.py run --epochs 3 --seeds 0,1,2 --workers 2 --out results/cnn-fashion-mnist
    python benchmarks/cnn_fashion.py report --out results/cnn-fashion-mnist

``run`` appends one row per finished run to ``runs.csv`` (a second launch skips the runs there);
``report`` writes ``summary.csv`` (mean and std over seeds), ``table.md`` and
``accuracy_vs_weights.png``/``.html``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ttexplore.runs.config import RunConfig  # noqa: E402
from ttexplore.tt.atomic import write_atomic  # noqa: E402
from ttexplore.runs.kinds import TT4dLayerSpec  # noqa: E402
from ttexplore.runs.presets import convnet_layers, tt_convnet_layers  # noqa: E402

DATASET = "fashion-mnist"
RANKS = (2, 4, 8)
TRAINING = {"lr": 1e-3, "batch_size": 128, "evals_per_epoch": 1, "pad_to": None}
RUN_COLUMNS = ["net", "group", "rank", "seed", "epochs", "net_params", "dense_net_params", "params", "test_accuracy",
               "best_test_accuracy", "final_train_loss", "elapsed_s", "seconds_per_epoch", "status", "layers"]


# ---------------------------------------------------------------- the nets
def matched_tt4d(layer: Any, in_shape: tuple[int, int, int]) -> TT4dLayerSpec:
    """The ``tt4d`` layer of ``layer``'s output channels (``layer`` a ``ttconv``) at the one rank ``t`` (ranks
    ``(t, t, min(t, 3))``, the naive TT at rank ``t``) whose weights come closest to ``layer``'s; the fewer
    weights on a tie."""
    target = layer.params(in_shape)
    candidates = [TT4dLayerSpec(layer.out_channels, rank, layer.kernel_size) for rank in range(1, 33)]
    return min(candidates, key=lambda candidate: (abs(candidate.params(in_shape) - target), candidate.params(in_shape)))


def nets() -> list[dict[str, Any]]:
    """``{"net", "group", "rank", "layers"}`` of every net of the comparison (28x28 images)."""
    found = [{"net": "dense", "group": "dense CNN", "rank": None, "layers": convnet_layers(28)}]
    for rank in RANKS:
        found.append({"net": f"ttconv-r{rank}", "group": "TT conv (Garipov)", "rank": rank,
                      "layers": tt_convnet_layers(28, rank)})
    for rank in RANKS:
        layers = tt_convnet_layers(28, rank)
        config = RunConfig.for_dataset(DATASET, layers=layers, **TRAINING)
        shapes = config.layer_shapes
        naive = [matched_tt4d(layer, shapes[index]).text() if layer.name == "ttconv" else layer.text()
                 for index, layer in enumerate(config.layers)]
        found.append({"net": f"tt4d-r{rank}", "group": "TT 4-D kernel (naive)", "rank": rank, "layers": naive})
    return found


def config_of(net: dict[str, Any], seed: int, epochs: int) -> RunConfig:
    return RunConfig.for_dataset(DATASET, layers=net["layers"], epochs=epochs, seed=seed, **TRAINING)


# ---------------------------------------------------------------- one run, in a worker process
def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def train_one(job: tuple[dict[str, Any], int, int]) -> dict[str, Any]:
    """Train ``net`` with ``seed`` for ``epochs`` on full Fashion-MNIST; its row of ``runs.csv``."""
    from ttexplore.runs.fit import fit

    net, seed, epochs = job
    config = config_of(net, seed, epochs)
    started = time.perf_counter()
    result = fit(config)
    history = result.history
    times = [later["elapsed_s"] - earlier["elapsed_s"] for earlier, later in zip([result.events[0]] + history, history)]
    return {
        "net": net["net"], "group": net["group"], "rank": net["rank"] or "", "seed": seed, "epochs": epochs,
        "net_params": config.net_params(), "dense_net_params": config.dense_net_params(), "params": config.layer_params(),
        "test_accuracy": result.final_test_accuracy, "best_test_accuracy": result.best_test_accuracy,
        "final_train_loss": history[-1]["train_loss"] if history else "",
        "elapsed_s": round(time.perf_counter() - started, 1),
        "seconds_per_epoch": round(sum(times) / len(times), 1) if times else "",
        "status": result.status if result.status == "completed" else f"{result.status}: {result.error}",
        "layers": "; ".join(net["layers"]),
    }


def _csv_text(rows: list[dict[str, Any]]) -> str:
    """``rows`` as CSV text (the header from the first row's keys), for :func:`write_atomic`."""
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runs.csv"
    done = {(row["net"], int(row["seed"]), int(row["epochs"])) for row in read_rows(path) if row["status"] == "completed"}
    seeds = [int(seed) for seed in args.seeds.split(",")]
    chosen = [net for net in nets() if not args.nets or net["net"] in args.nets.split(",")]
    jobs = [(net, seed, args.epochs) for seed in seeds for net in chosen if (net["net"], seed, args.epochs) not in done]
    print(f"{len(jobs)} runs to go ({len(done)} done), {args.workers} workers of {args.threads} thread(s)", flush=True)
    fresh = not path.is_file() or path.stat().st_size == 0
    context = multiprocessing.get_context("spawn")
    with open(path, "a", newline="") as handle, context.Pool(args.workers, _worker_init, (args.threads,),
                                                               maxtasksperchild=1) as pool:
        writer = csv.DictWriter(handle, RUN_COLUMNS)
        if fresh:
            writer.writeheader()
            handle.flush()
        for row in pool.imap_unordered(train_one, jobs):
            writer.writerow(row)
            handle.flush()
            os.fsync(handle.fileno())
            print(f"{time.strftime('%H:%M:%S')} {row['net']} seed {row['seed']}: {row['test_accuracy']} "
                  f"({row['elapsed_s']} s, {row['seconds_per_epoch']} s/epoch) {row['status'][:80]}", flush=True)


# ---------------------------------------------------------------- timing one epoch of each net
def measure(args: argparse.Namespace) -> None:
    """Time ``--steps`` training steps of each net (after two warm-up steps) and one evaluation of the test
    set, on one thread; an epoch is ``469`` steps (60 000 / 128) and one evaluation."""
    import torch
    import torch.nn.functional as F

    from ttexplore.runs.data import load_dataset
    from ttexplore.runs.fit import evaluate
    from ttexplore.runs.models import build_model

    torch.set_num_threads(args.threads)
    data = load_dataset(DATASET)
    rows = []
    for net in nets():
        config = config_of(net, 0, 1)
        model = build_model(config, torch.Generator().manual_seed(0))
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        batches = torch.randperm(60_000, generator=torch.Generator().manual_seed(1)).split(config.batch_size)
        timings = []
        for step, indices in enumerate(batches[: args.steps + 2]):
            began = (time.perf_counter(), time.process_time())
            loss = F.cross_entropy(model(data.train_images[indices]), data.train_labels[indices])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step >= 2:
                timings.append((time.perf_counter() - began[0], time.process_time() - began[1]))
        began = (time.perf_counter(), time.process_time())
        evaluate(model, data.test_images, data.test_labels, 1000)
        evaluation = (time.perf_counter() - began[0], time.process_time() - began[1])
        steps = len(batches)
        wall = statistics.mean(t[0] for t in timings) * steps + evaluation[0]
        cpu = statistics.mean(t[1] for t in timings) * steps + evaluation[1]
        rows.append({"net": net["net"], "net_params": config.net_params(), "step_ms_wall": round(1000 * wall / steps, 1),
                     "epoch_s_wall": round(wall, 1), "epoch_s_cpu": round(cpu, 1), "eval_s_wall": round(evaluation[0], 1)})
        print(rows[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "epoch_times.csv", _csv_text(rows))
    print(f"the grid of {len(rows)} nets x 3 seeds: {3 * sum(row['epoch_s_wall'] for row in rows):.0f} s a "
          f"training epoch, wall, on one worker at this load")


# ---------------------------------------------------------------- the report
def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std (over seeds) of the test accuracy of each net at each training budget (epochs), with its
    weights; ``points_below_dense`` against the dense CNN of the same budget."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "completed":
            groups.setdefault((row["net"], int(row["epochs"])), []).append(row)
    summary = []
    for net, epochs in itertools.product(nets(), sorted({key[1] for key in groups})):
        members = groups.get((net["net"], epochs), [])
        if not members:
            continue
        accuracies = [float(row["test_accuracy"]) for row in members]
        summary.append({
            "net": net["net"], "group": net["group"], "rank": net["rank"] or "", "layers": "; ".join(net["layers"]),
            "net_params": int(members[0]["net_params"]), "dense_net_params": int(members[0]["dense_net_params"]),
            "compression_factor": round(int(members[0]["dense_net_params"]) / int(members[0]["net_params"]), 2),
            "seeds": len(members), "epochs": int(members[0]["epochs"]),
            "mean_test_accuracy": round(statistics.mean(accuracies), 4),
            "std_test_accuracy": round(statistics.stdev(accuracies), 4) if len(accuracies) > 1 else 0.0,
            "seconds_per_epoch": round(statistics.mean(float(row["seconds_per_epoch"]) for row in members), 1),
        })
    for row in summary:
        dense = next((other for other in summary if other["net"] == "dense" and other["epochs"] == row["epochs"]), None)
        row["points_below_dense"] = round(100 * (dense["mean_test_accuracy"] - row["mean_test_accuracy"]), 2) if dense else ""
    return sorted(summary, key=lambda row: row["epochs"])


def report(args: argparse.Namespace) -> None:
    from ttexplore.presenters.export import figure_to_html, figure_to_image
    from ttexplore.presenters.plots import accuracy_vs_params

    out = Path(args.out)
    summary = summarize(read_rows(out / "runs.csv"))
    write_atomic(out / "summary.csv", _csv_text(summary))
    lines = ["| epochs | net | rank | whole-net weights | smaller than dense | test accuracy (mean ± std, seeds) | "
             "below dense (points) |", "|---|---|---|---|---|---|---|"]
    for row in summary:
        lines.append(f"| {row['epochs']} | {row['group']} | {row['rank'] or '-'} | {row['net_params']:,} | "
                     f"{row['compression_factor']:.1f}x | {row['mean_test_accuracy']:.4f} ± {row['std_test_accuracy']:.4f} "
                     f"({row['seeds']}) | {row['points_below_dense']} |")
    write_atomic(out / "table.md", "\n".join(lines) + "\n")
    budgets = sorted({row["epochs"] for row in summary})

    def group(row: dict[str, Any]) -> str:
        return row["group"] if len(budgets) == 1 else f"{row['group']}, {row['epochs']} epoch{'s' if row['epochs'] > 1 else ''}"

    points = [{"group": group(row), "shape": group(row), "layer_params": row["net_params"],
               "test_accuracy": row["mean_test_accuracy"], "std": row["std_test_accuracy"], "rank": row["rank"],
               "budget": f"{row['seeds']} seeds, {row['epochs']} epochs"} for row in summary]
    dense = sorted({group(row) for row in summary if row["net"] == "dense"})
    figure = accuracy_vs_params(points, title="Fashion-MNIST CNNs: test accuracy (mean ± std over seeds) against the "
                                              "whole network's weights", baselines=tuple(dense), error_key="std",
                                x_title="weights of the whole network (log scale)")
    figure.update_layout(legend={"title": {"text": "network"}})
    write_atomic(out / "accuracy_vs_weights.html", figure_to_html(figure))
    write_atomic(out / "accuracy_vs_weights.png", figure_to_image(figure, "png", width=1000, height=560, scale=1.5))
    print("\n".join(lines))
    print(json.dumps({"wrote": [str(out / name) for name in ("summary.csv", "table.md", "accuracy_vs_weights.png",
                                                                 "accuracy_vs_weights.html")]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["measure", "run", "report", "nets"])
    parser.add_argument("--out", default="results/cnn-fashion-mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30, help="measure: timed training steps per net")
    parser.add_argument("--nets", default="", help="run: only these nets (e.g. dense,ttconv-r4); default all")
    args = parser.parse_args()
    if args.command == "nets":
        for net in nets():
            config = config_of(net, 0, 1)
            print(f"{net['net']:>10}: {config.net_params():>7,} weights ({config.dense_net_params() / config.net_params():5.1f}x) "
                  f"{'; '.join(net['layers'])}")
    else:
        {"measure": measure, "run": run, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
