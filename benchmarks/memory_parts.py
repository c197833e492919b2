"""The Explore page's training-memory estimate against what torch really allocates (issue 20, section 4).

For each network, the estimate's parts (:func:`ttexplore.runs.resources.estimate_run_memory`) beside the
peak of the bytes the CPU allocator holds above what was live before, measured with torch's profiler
(``profile_memory=True``: every allocation and free, summed in time order) over

* one training step at the run's batch (forward, backward, Adam's step; after two steps, so Adam's
  moments and the gradients already exist, as in every later step), against the larger of the estimate's
  ``step`` and ``optimizer_scratch``;
* one evaluation of the test split in batches of the run's evaluation rows (:func:`ttexplore.runs.fit.evaluate`)
  right after a step, as a metric event runs it, against the estimate's ``evaluation``.

The static parts (weights, gradients, Adam's moments,
the dataset) are sizes of tensors, exact by construction.

    python benchmarks/memory_parts.py            # the paper's 1024 net at ranks 1-8 and its dense twin, the 784 net
"""

from __future__ import annotations

import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.getcwd())  # run from the repository root
from ttexplore.runs import fit as fit_module
from ttexplore.runs.config import RunConfig
from ttexplore.runs.data import load_dataset
from ttexplore.runs.resources import estimate_run_memory

MIB = 1 << 20


def allocated_peak(prepare, work) -> int:
    """Peak bytes allocated above the level when ``work()`` started, after ``prepare()`` (torch's CPU
    allocator, profiler events summed in time order). ``prepare()`` runs inside the profile too, so every
    block ``work()`` frees was allocated where the profiler saw it (it does not see frees of older blocks)."""
    import time

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        prepare()
        second = time.time_ns()
        work()
    events = sorted((event.start_ns(), event.nbytes()) for event in prof.profiler.kineto_results.events()
                    if event.name() == "[memory]")
    level, start, peak = 0, None, 0
    for when, size in events:
        if when >= second and start is None:
            start = peak = level
        level += size
        if start is not None:
            peak = max(peak, level)
    return peak - (start if start is not None else 0)


def measure(config: RunConfig, dataset) -> dict:
    training = fit_module._Training(config, dataset, lambda event: None, lambda: 0.0, None, torch.device("cpu"))  # noqa: SLF001
    batch = torch.arange(config.batch_size)
    training.step(batch, 0)  # Adam's moments exist from here on
    step = allocated_peak(lambda: training.step(batch, 0), lambda: training.step(batch, 0))
    # as in training: the evaluation of a metric event follows a step (the cores changed, so no stored W yet)
    evaluation = allocated_peak(lambda: training.step(batch, 0), lambda: fit_module.evaluate(
        training.model, training.test_images, training.test_labels, training.eval_rows))
    estimate = estimate_run_memory(config)
    return {"step": step, "evaluation": evaluation, "estimate": estimate}


def main() -> None:
    torch.set_num_threads(1)
    dataset = load_dataset("mnist5k")
    configs = []
    for in_modes, out_modes, pad in (("4x8x8x4", "4x8x8x4", 32), ("4x7x4x7", "5x5x8x4", None)):
        for rank in (1, 2, 4, 8):
            configs.append((f"TT {in_modes}->{out_modes} r={rank}", RunConfig.from_dict(
                {"dataset": "mnist5k", "pad_to": pad, "in_modes": in_modes, "out_modes": out_modes, "ranks": rank})))
        configs.append((f"dense twin of {in_modes}", configs[-1][1].dense_twin()))
    print("| network | estimate total | est. step (+Adam scratch) | measured step | est. evaluation | measured evaluation |")
    print("|---|---|---|---|---|---|")
    for label, config in configs:
        result = measure(config, dataset)
        estimate = result["estimate"]
        print(f"| {label} | {estimate.total / MIB:.1f} MiB | {estimate.step / MIB:.1f} (+{estimate.optimizer_scratch / MIB:.1f}) MiB"
              f" | {result['step'] / MIB:.1f} MiB | {estimate.evaluation / MIB:.1f} MiB | {result['evaluation'] / MIB:.1f} MiB |",
              flush=True)


if __name__ == "__main__":
    main()
