"""What recording the per-core norms costs a training run (issue 20, section 3), on the paper's net.

Two measurements, in one process, interleaved and repeated (the machine is shared: compare ratios):

1. one call of :func:`ttexplore.runs.corestats.core_norms` against one optimizer step and one evaluation
   of the test split (what a metric event already costs);
2. whole runs of the paper's net (MNIST-5k, pad 32, 4x8x8x4 -> 4x8x8x4 at rank 4, batch 64, 4 metric
   events per epoch) with the recorder and with it switched off, alternately.

    python benchmarks/core_norms_overhead.py [--repeats 5] [--epochs 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.getcwd())  # run from the repository root
from ttexplore.runs import fit as fit_module
from ttexplore.runs.config import RunConfig
from ttexplore.runs.corestats import core_norms
from ttexplore.runs.data import load_dataset


def paper(epochs: int) -> RunConfig:
    return RunConfig.from_dict({"dataset": "mnist5k", "pad_to": 32, "in_modes": "4x8x8x4", "out_modes": "4x8x8x4",
                                "ranks": 4, "epochs": epochs, "batch_size": 64, "evals_per_epoch": 4})


def micro(dataset, repeats: int) -> dict[str, float]:
    """Median seconds of one core_norms call, one training step and one evaluation of the test split."""
    config = paper(1)
    events = []
    training = fit_module._Training(config, dataset, events.append, lambda: 0.0, None, torch.device("cpu"))  # noqa: SLF001
    batch = torch.arange(config.batch_size)
    training.step(batch, 0)  # gradients exist from here on
    timings: dict[str, list[float]] = {"core_norms": [], "step": [], "evaluation": []}
    for _ in range(repeats):
        for name, call in (("core_norms", lambda: core_norms(training.tt_layers)),
                           ("step", lambda: training.step(batch, 0)),
                           ("evaluation", lambda: fit_module.evaluate(training.model, training.test_images,
                                                                      training.test_labels, training.eval_rows))):
            started = time.perf_counter()
            for _ in range(20 if name == "core_norms" else 3):
                call()
            timings[name].append((time.perf_counter() - started) / (20 if name == "core_norms" else 3))
    return {name: statistics.median(values) for name, values in timings.items()}


def whole_runs(dataset, repeats: int, epochs: int) -> dict[str, float]:
    """Median wall time of the paper's run with and without the recorder, alternately."""
    config = paper(epochs)
    seconds: dict[str, list[float]] = {"with": [], "without": []}
    original = fit_module.tt_layer_modules
    for _ in range(repeats):
        for mode in ("with", "without"):
            fit_module.tt_layer_modules = original if mode == "with" else (lambda model, config: [])
            started = time.perf_counter()
            result = fit_module.fit(config, dataset)
            seconds[mode].append(time.perf_counter() - started)
            assert result.status == "completed" and (("cores" in result.events[-1]) == (mode == "with"))
    fit_module.tt_layer_modules = original
    return {mode: statistics.median(values) for mode, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("mnist5k")
    small = micro(dataset, args.repeats)
    print(f"one core_norms call {small['core_norms'] * 1e6:.0f} us; one training step {small['step'] * 1e3:.2f} ms; "
          f"one evaluation {small['evaluation'] * 1e3:.1f} ms; per metric event the recorder adds "
          f"{small['core_norms'] / small['evaluation']:.2%} of the evaluation it rides on")
    runs = whole_runs(dataset, args.repeats, args.epochs)
    events = 1 + 4 * args.epochs
    print(f"expected from the call's time: {events} events x {small['core_norms'] * 1e6:.0f} us = "
          f"{events * small['core_norms'] * 1e3:.2f} ms a run ({events * small['core_norms'] / runs['without']:.3%})")
    print(f"paper's net, {args.epochs} epochs, median of {args.repeats}: with the recorder {runs['with']:.2f} s, "
          f"without {runs['without']:.2f} s ({runs['with'] / runs['without'] - 1:+.1%})")


if __name__ == "__main__":
    main()
