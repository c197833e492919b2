"""How close the Sweep page's time estimate is to a sweep's real wall time (issue 20, section 4).

Runs small sweeps the app's way (a JobManager with one run per core, one torch thread each) in a fresh run
store, and prints for each the estimate the page shows before it starts (:func:`sweep_estimate`) and the
wall time from the submission to the last run's end:

1. a first one on an empty store (the built-in guess): the paper's net, its dense and matrix-rank twins;
2. then sweeps of other shapes and sizes, each estimated from the runs finished so far (what a user sees once
   runs have finished here); beside each estimate, the one the page gave before issue 20.

    python benchmarks/sweep_estimate.py [--workers 2] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.getcwd())  # run from the repository root
from ttexplore.experiments import sweep
from ttexplore.runs.jobs import JobManager
from ttexplore.runs.store import RunStore


def timed_sweep(manager, store, name, shapes, ranks, epochs, train_limit):
    spec = sweep.make_spec(name, "mnist5k", shapes, ranks, "0", epochs=epochs, train_limit=train_limit, baselines=True,
                           pad_to=32)
    grid = sweep.expand(spec)
    plan = sweep.plan_sweep(store, grid.cells, name)
    configs = [cell.config for cell in plan.todo]
    estimate = sweep.sweep_estimate(configs, sweep.run_times(store), manager.max_workers)
    # the estimate as it was before issue 20: whole run times per cost unit of the old cost (no evaluations)
    old = _old_estimate(configs, store.list_runs(status=("completed",)), manager.max_workers)
    started = time.perf_counter()
    runs = sweep.submit_sweep(manager, store, grid, name)
    while any(store.get_run(run_id)["status"] in ("queued", "running") for run_id in runs):
        time.sleep(0.2)
    real = time.perf_counter() - started
    print(f"{name}: {len(runs)} runs; real {real:.1f} s; estimate {estimate['seconds']:.1f} s (/ real "
          f"{estimate['seconds'] / real:.2f}; {estimate['basis']}); before issue 20 {old:.1f} s (/ real {old / real:.2f})",
          flush=True)
    return estimate["seconds"], real


def _old_cost(config) -> float:
    from ttexplore.experiments.sweep.spec import CALL_OVERHEAD_FLOPS
    from ttexplore.runs.data_info import dataset_info

    images = config.train_limit or dataset_info(config.dataset).train_size
    shapes = config.layer_shapes
    flops = sum(layer.flops(shapes[index]) + CALL_OVERHEAD_FLOPS * layer.forward_calls()
                for index, layer in enumerate(config.layers))
    return config.epochs * images * (flops + 2 * config.hidden_features * config.num_classes)


def _old_estimate(configs, finished, workers) -> float:
    """The estimate before issue 20 (median whole-run seconds per old cost unit, per kind; its old defaults)."""
    from ttexplore.runs.config import RunConfig

    ratios: dict = {}
    for run in finished:
        config = RunConfig.from_dict(run["config"])
        seconds = run["finished_at"] - run["started_at"]
        if seconds > 0 and _old_cost(config) > 0:
            ratios.setdefault(config.layers[0].name, []).append(seconds / _old_cost(config))
    rates = {kind: sorted(values)[len(values) // 2] for kind, values in ratios.items()}
    default = {True: 1.5e-9, False: 2e-10}
    each = [_old_cost(config) * rates.get(config.layers[0].name, default[any(layer.has_tt_cores for layer in config.layers)])
            for config in configs]
    return max(sum(each) / workers, max(each, default=0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        store = RunStore(os.path.join(home, "runs.db"))
        manager = JobManager(store, max_workers=args.workers, torch_threads=1)
        try:
            manager.warm_up("mnist5k")  # as the app does when it starts
            # a user's first runs, from Explore: the paper's net and its dense twin at 2 epochs
            timed_sweep(manager, store, "explore", "4x8x8x4", "4", args.epochs, None)
            timed_sweep(manager, store, "first", "4x8x8x4, 2^10", "1,2,4", args.epochs, 2000)
            timed_sweep(manager, store, "bigger", "4x8x8x4, 32x32, 2^10", "2,8", args.epochs + 1, None)
            timed_sweep(manager, store, "again", "4x8x8x4, 2^10", "1,2,4", args.epochs, 2000)
            from ttexplore.experiments.sweep import estimate

            rates = estimate._learned(sweep.run_times(store))  # noqa: SLF001
            print("learned (seconds per cost unit per kind, setup seconds, runs):", rates)
        finally:
            manager.shutdown(cancel_running=True, timeout=60)


if __name__ == "__main__":
    main()
