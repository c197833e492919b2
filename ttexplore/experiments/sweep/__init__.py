"""Sweep a grid of runs (datasets x shapes x ranks x seeds, with baselines) and plot accuracy against weights.

A :class:`SweepSpec` expands into :class:`SweepCell` s, one validated
:class:`~ttexplore.runs.config.RunConfig` each: every TT shape at every max rank
and seed, plus the two baselines of the same sizes (the dense layer, and the
matrix-rank layer ``N x r, r x M`` at the same ranks). The cells are recorded in
the ordinary :class:`~ttexplore.runs.store.RunStore` under the sweep's name, so the
app's run list shows them and a second launch of the same sweep skips every
cell already completed (and redoes cells whose process died).

Three ways to execute the cells:

* ``local`` (:func:`run_local`): a pool of processes, one per core by default,
  each with ``cores // processes`` torch threads; each process loads the
  dataset once and writes its runs' events to the store itself (SQLite in WAL
  mode takes several writers).
* ``ray`` (:func:`run_ray`): each cell is a Ray task, on a cluster given by its
  address or on a local Ray started for the sweep and stopped after it. Tasks
  return their events and the driver writes them: a cluster's nodes need not
  see the driver's disk, and SQLite must not be shared over a network
  filesystem. The price: a Ray cell's metrics appear when it ends, not epoch by
  epoch. Ray is imported only here, only when asked for.
* the app's :class:`~ttexplore.runs.jobs.JobManager` (:func:`submit_sweep`), so sweep
  cells share the concurrency limit with ordinary training runs.

``python -m ttexplore sweep`` (:func:`configure_parser`, :func:`run`) writes
``results.csv``, ``table.md`` and the seed's accuracy-vs-weights figure
(``accuracy_vs_weights.png`` / ``.html``). Nothing here imports torch, Ray or
plotly at module level.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from ttexplore.core import ttmath
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.data_info import DATASETS, dataset_info
from ttexplore.core.shapes import parse_modes
from ttexplore.core.ttshape import modes_text as format_modes
from ttexplore.runs.store import ACTIVE_STATUSES, RunStore, pid_alive

__all__ = [
    "SweepShape",
    "SweepSpec",
    "SweepCell",
    "SweepGrid",
    "SweepPlan",
    "PRESETS",
    "EXECUTORS",
    "RESULT_COLUMNS",
    "preset_spec",
    "make_spec",
    "parse_shapes",
    "parse_int_list",
    "shape_label",
    "expand",
    "plan_sweep",
    "run_sweep",
    "run_local",
    "run_ray",
    "import_ray",
    "estimated_cost",
    "submit_sweep",
    "cancel_sweep",
    "cells_from_store",
    "sweep_names",
    "sweep_results",
    "summarize",
    "results_table",
    "table_markdown",
    "sweep_figure",
    "write_outputs",
    "configure_parser",
    "run",
]

EXECUTORS = ("local", "ray")
RESULT_COLUMNS = ("dataset", "layer", "shape", "rank", "seed", "params", "compression", "test_accuracy",
                  "best_test_accuracy", "epochs", "seconds", "status", "run_id")


# ---------------------------------------------------------------- shapes and lists
def _compact(modes: Sequence[int], min_repeat: int) -> str:
    """``(2,)*10`` -> ``"2^10"`` when all modes are equal and there are at least ``min_repeat``; else ``"4x8x8x4"``."""
    if len(modes) >= min_repeat and len(set(modes)) == 1:
        return f"{modes[0]}^{len(modes)}"
    return format_modes(modes)


def shape_label(in_modes: Sequence[int], out_modes: Sequence[int]) -> str:
    """The seed's legend for a TT shape.

    ``"4x8x8x4"`` when input and output modes agree (``"2^10"`` for ten 2s; a
    power is used from six equal modes on, so ``4x4x4x4x4`` stays as the seed
    wrote it), else ``"in->out"`` with the output as a power from four equal
    modes (``"8x8x8x6->10^4"``, the seed's "in 8x8x8x6, out 10^4").
    """
    in_modes, out_modes = tuple(in_modes), tuple(out_modes)
    if in_modes == out_modes:
        return _compact(in_modes, 6)
    return f"{_compact(in_modes, 6)}->{_compact(out_modes, 4)}"


@dataclass(frozen=True)
class SweepShape:
    """One TT shape of a sweep: input modes and output modes (equal for the seed's MNIST layer)."""

    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]

    @property
    def label(self) -> str:
        return shape_label(self.in_modes, self.out_modes)

    @property
    def hidden(self) -> int:
        """Width of the layer's output, ``prod(out_modes)``."""
        return ttmath.prod(self.out_modes)


def parse_shapes(text: "str | Iterable[str]") -> list[SweepShape]:
    """Parse ``"4x4x4,8x8"`` or ``"8x8x8x6->10^4, 32x16x6:100x10x10"`` into shapes.

    Shapes are separated by commas, semicolons or new lines; each is ``IN`` (the
    output modes equal the input modes) or ``IN->OUT`` / ``IN:OUT``, each side
    as :func:`ttexplore.core.shapes.parse_modes` reads it (``2^10`` is ten 2s).
    Duplicates are dropped, the order kept.

    Raises:
        ConfigError: field ``"shapes"``, naming the bad shape.
    """
    if isinstance(text, str):
        tokens = text.replace(";", ",").replace("\n", ",").split(",")
    else:
        tokens = list(text)
    shapes: list[SweepShape] = []
    for token in (token.strip() for token in tokens):
        if not token:
            continue
        sides = token.replace("->", ":").replace("→", ":").split(":")
        if len(sides) > 2:
            raise ConfigError("shapes", f"shape {token!r} has more than one '->': write IN or IN->OUT, e.g. 8x8x8x6->10^4")
        try:
            in_modes = parse_modes(sides[0], "input modes")
            out_modes = parse_modes(sides[1], "output modes") if len(sides) == 2 else in_modes
        except ValueError as error:
            raise ConfigError("shapes", f"shape {token!r}: {error}") from None
        if len(in_modes) != len(out_modes):
            raise ConfigError("shapes", f"shape {token!r}: {len(in_modes)} input modes but {len(out_modes)} output modes; "
                                        "give both sides the same number of modes")
        shape = SweepShape(in_modes, out_modes)
        if shape not in shapes:
            shapes.append(shape)
    if not shapes:
        raise ConfigError("shapes", "no shapes given: list them separated by commas, e.g. 4x8x8x4,32x32")
    return shapes


def parse_int_list(text: "str | int | Iterable[int]", field_name: str, minimum: int = 0) -> tuple[int, ...]:
    """Parse ``"1,2,4"`` or ``"1-4"`` (or a list) into distinct ints, order kept.

    Raises:
        ConfigError: naming ``field_name`` when a value is not a whole number or is below ``minimum``.
    """
    if isinstance(text, int):
        items: list[int] = [text]
    elif isinstance(text, str):
        items = []
        for token in (token.strip() for token in text.replace(";", ",").split(",")):
            if not token:
                continue
            low, dash, high = token.partition("-")
            try:
                if dash:
                    start, stop = int(low), int(high)
                    if stop < start:
                        raise ValueError
                    items.extend(range(start, stop + 1))
                else:
                    items.append(int(token))
            except ValueError:
                raise ConfigError(field_name, f"{field_name} {text!r} is not understood: write whole numbers like 1,2,4 or a range 1-4") from None
    else:
        items = [int(value) for value in text]
    values = tuple(dict.fromkeys(items))
    if not values:
        raise ConfigError(field_name, f"{field_name} is empty: give at least one number, e.g. 1-4")
    if min(values) < minimum:
        raise ConfigError(field_name, f"{field_name} {min(values)} is below {minimum}")
    return values


# ---------------------------------------------------------------- the grid
@dataclass(frozen=True)
class SweepCell:
    """One run of a sweep.

    Attributes:
        config: the validated run.
        shape: the legend entry it belongs to (:func:`shape_label`, ``"dense"``, ``"matrix rank"``).
        rank: the max TT rank actually used (after clipping), the matrix rank, or ``None`` (dense).
    """

    config: RunConfig
    shape: str
    rank: Optional[int]

    @property
    def key(self) -> str:
        """:meth:`RunConfig.key`: what resume matches on."""
        return self.config.key()

    def describe(self) -> str:
        """``"4x8x8x4 r=2 (mnist5k, seed 0)"``."""
        rank = f" r={self.rank}" if self.rank is not None else ""
        return f"{self.shape}{rank} ({self.config.dataset}, seed {self.config.seed})"


@dataclass(frozen=True)
class SweepGrid:
    """The cells of a sweep and what expanding it had to say (clipped ranks, skipped baselines)."""

    cells: tuple[SweepCell, ...]
    notes: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """Cells per layer kind, e.g. ``{"tt": 24, "dense": 1, "matrix_rank": 4}``."""
        counts: dict[str, int] = {}
        for cell in self.cells:
            counts[cell.config.layer] = counts.get(cell.config.layer, 0) + 1
        return counts


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: datasets x shapes x ranks x seeds (+ baselines), trained alike.

    Attributes:
        name: the sweep's name in the run store (resume matches cells within it).
        datasets: dataset names; every shape must fit every dataset.
        shapes: the TT shapes.
        ranks: max TT ranks (also the matrix ranks of the matrix-rank baseline).
        seeds: one run per seed for every cell.
        baselines: add, for each hidden size, the dense layer and the matrix-rank layers.
        epochs, lr, batch_size, train_limit, evals_per_epoch: as in :class:`RunConfig`
            (one evaluation per epoch keeps sweeps fast).
        pad_to: image side after padding; ``None`` uses the dataset's default
            (28-pixel images padded to 32, as the seed did).
        max_dense_weights: skip a dense baseline larger than this (3072 x 10^5 does
            not train on a CPU); the skip is reported in :attr:`SweepGrid.notes`.
    """

    name: str
    datasets: tuple[str, ...]
    shapes: tuple[SweepShape, ...]
    ranks: tuple[int, ...]
    seeds: tuple[int, ...] = (0,)
    baselines: bool = True
    epochs: int = 10
    lr: float = 3e-3
    batch_size: int = 64
    train_limit: Optional[int] = None
    evals_per_epoch: int = 1
    pad_to: Optional[int] = None
    max_dense_weights: int = 50_000_000

    def training_values(self) -> dict[str, Any]:
        """The :class:`RunConfig` fields every cell shares."""
        values: dict[str, Any] = {"epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
                                  "train_limit": self.train_limit, "evals_per_epoch": self.evals_per_epoch}
        if self.pad_to is not None:
            values["pad_to"] = self.pad_to
        return values


def expand(spec: SweepSpec) -> SweepGrid:
    """The cells of ``spec``: TT cells (dataset, shape, rank, seed order), then the baselines.

    A rank above a shape's maximal useful ranks is clipped (the cell records
    the max rank it really uses), so two ranks that build the same network
    give one cell; cells with equal :meth:`RunConfig.key` appear once.
    Baselines: for every dataset and distinct hidden size, one dense layer and
    one matrix-rank layer per rank.

    Raises:
        ConfigError: ``"datasets"``, ``"shapes"``, ``"ranks"``, ... naming what does not fit.

    Complexity: ``O(datasets * (shapes + hidden sizes) * ranks * seeds)`` configs.
    """
    if not spec.datasets:
        raise ConfigError("dataset", "no dataset given: choose one of " + ", ".join(DATASETS))
    for dataset in spec.datasets:
        if dataset not in DATASETS:
            raise ConfigError("dataset", f"dataset {dataset!r} is unknown: choose one of {', '.join(DATASETS)}")
    if not spec.shapes:
        raise ConfigError("shapes", "no shapes given: list them separated by commas, e.g. 4x8x8x4,32x32")
    cells: dict[str, SweepCell] = {}
    notes: list[str] = []
    shared = spec.training_values()

    def add(cell: SweepCell) -> None:
        cells.setdefault(cell.key, cell)

    for dataset in spec.datasets:
        for shape in spec.shapes:
            for rank in spec.ranks:
                plan = _rank_plan(shape, rank)
                used = max(plan.ranks) if plan.ranks else 1
                if used != rank:
                    notes.append(f"{shape.label}: rank {rank} is above the maximal useful ranks "
                                 f"{','.join(map(str, plan.max_useful))}; it trains as rank {used}")
                for seed in spec.seeds:
                    try:
                        config = RunConfig.for_dataset(dataset, layer="tt", in_modes=shape.in_modes, out_modes=shape.out_modes,
                                                       ranks=used, seed=seed, **shared)
                    except ConfigError as error:
                        if error.field in ("in_modes", "out_modes"):
                            raise ConfigError("shapes", f"shape {shape.label} does not fit {dataset}: {error}") from None
                        raise
                    add(SweepCell(config, shape.label, used))
        if not spec.baselines:
            continue
        hidden_sizes = list(dict.fromkeys(shape.hidden for shape in spec.shapes))
        for hidden in hidden_sizes:
            suffix = "" if len(hidden_sizes) == 1 else f" ->{hidden}"
            base = RunConfig.for_dataset(dataset, layer="dense", hidden=hidden, ranks=None, **shared)
            if base.in_features * hidden > spec.max_dense_weights:
                notes.append(f"dense baseline {base.in_features}x{hidden} skipped: {base.in_features * hidden:,} weights "
                             f"is more than {spec.max_dense_weights:,}")
            else:
                for seed in spec.seeds:
                    add(SweepCell(base.replace(seed=seed), "dense" + suffix, None))
            for rank in spec.ranks:
                for seed in spec.seeds:
                    add(SweepCell(base.replace(layer="matrix_rank", matrix_rank=rank, seed=seed), "matrix rank" + suffix, rank))
    return SweepGrid(tuple(cells.values()), tuple(dict.fromkeys(notes)))


def _rank_plan(shape: SweepShape, rank: int) -> ttmath.RankPlan:
    try:
        return ttmath.plan_ranks(shape.in_modes, shape.out_modes, rank)
    except ValueError as error:
        raise ConfigError("ranks", f"{shape.label}: {error}") from None


def estimated_cost(config: RunConfig) -> float:
    """A rough relative training cost, used to start the longest cells first.

    ``epochs * n_train * (forward FLOPs per image + 2e5 per core)``: the
    constant stands for the per-GEMM overhead that makes a 10-core TT layer
    slower than its FLOPs say.
    """
    images = config.train_limit or dataset_info(config.dataset).train_size
    if config.layer == "tt":
        flops = min(ttmath.tt_sweep_flops(config.in_modes, config.out_modes, config.ranks, 1, direction)
                    for direction in ("ltr", "rtl")) + 2e5 * len(config.in_modes)
    elif config.layer == "matrix_rank":
        flops = 2 * config.matrix_rank * (config.in_features + config.hidden_features) + 4e5
    else:
        flops = ttmath.dense_flops(config.in_features, config.hidden_features) + 2e5
    return config.epochs * images * (flops + 2 * config.hidden_features * config.num_classes)


# ---------------------------------------------------------------- presets
#: The seed's experiments. ``seed-cifar10``'s shapes were read off slides 15 and 16:
#: the x position of each point (weights, log scale) matches these shapes at ranks 1-4.
PRESETS: dict[str, dict[str, Any]] = {
    "seed-mnist": {
        "description": "MNIST padded to 32x32, TT 1024 -> 1024 in six shapes, max TT rank 1-4, + dense and matrix-rank "
                       "baselines (slides 13-14); on the bundled MNIST-5k unless --dataset says otherwise",
        "datasets": ("mnist5k",),
        "shapes": "32x32, 4x8x8x4, 4x4x4x4x4, 2x2x8x8x2x2, 2x4x4x4x4x2, 2^10",
        "ranks": (1, 2, 3, 4),
        "pad_to": 32,
        "epochs": 20,
    },
    "seed-cifar10": {
        "description": "CIFAR-10 raw pixels (3072 inputs), one TT layer, max TT rank 1-4: hidden layers of other sizes "
                       "(slide 15) and of the input's size (slide 16), + baselines",
        "datasets": ("cifar10",),
        "shapes": ("8x8x8x3x2->10^5, 2x4x8x8x6->10^5, 4x4x4x8x6->10^5, 8x8x8x6->10^4, 32x16x6->100x10x10, "
                   "8x8x8x6, 8x8x8x3x2, 2x4x8x8x6, 4x4x4x8x6, 64x8x6"),
        "ranks": (1, 2, 3, 4),
        "pad_to": None,
        "epochs": 5,  # ~70 core-minutes per epoch of the whole grid: a job for a Ray cluster (see RESULTS.md)
    },
}


def preset_spec(preset: str, **overrides: Any) -> SweepSpec:
    """The :class:`SweepSpec` of a preset, with fields overridden (``None`` values are ignored).

    Raises:
        ConfigError: field ``"preset"`` for an unknown name.
    """
    if preset not in PRESETS:
        raise ConfigError("preset", f"preset {preset!r} is unknown: choose one of {', '.join(PRESETS)}")
    values = {key: value for key, value in PRESETS[preset].items() if key != "description"}
    values["name"] = preset
    values.update({key: value for key, value in overrides.items() if value is not None})
    return make_spec(**values)


def make_spec(name: str, datasets: "str | Sequence[str]", shapes: Any, ranks: Any = (1, 2, 3, 4), seeds: Any = (0,),
              **values: Any) -> SweepSpec:
    """A :class:`SweepSpec` from plain values: ``datasets`` and ``shapes`` as text or lists, ``ranks``/``seeds`` as
    ``"1-4"``-style text or lists; other keywords as the spec's fields.

    Raises:
        ConfigError: naming the field that does not parse.
    """
    if isinstance(datasets, str):
        datasets = tuple(part.strip() for part in datasets.split(",") if part.strip())
    shape_list = shapes if shapes and isinstance(shapes, (list, tuple)) and isinstance(shapes[0], SweepShape) else parse_shapes(shapes)
    name = (name or "").strip()
    if not name:
        raise ConfigError("name", "the sweep needs a name (runs are grouped and resumed by it)")
    return SweepSpec(name=name, datasets=tuple(datasets), shapes=tuple(shape_list),
                     ranks=parse_int_list(ranks, "ranks", minimum=1), seeds=parse_int_list(seeds, "seeds", minimum=0), **values)


# ---------------------------------------------------------------- resume
@dataclass
class SweepPlan:
    """Which cells of a sweep still need a run.

    Attributes:
        cells: all cells.
        done: ``{config key: run}`` of cells with a completed run in the sweep.
        active: ``{config key: run}`` of cells queued or running in a live process.
        todo: cells to run now (resume skips ``done``; ``active`` are never doubled).
        interrupted: ids of runs left queued/running by a dead process, now marked ``interrupted``.
    """

    cells: list[SweepCell]
    done: dict[str, dict[str, Any]]
    active: dict[str, dict[str, Any]]
    todo: list[SweepCell]
    interrupted: list[str] = field(default_factory=list)


def _owner_alive(run: dict[str, Any]) -> bool:
    """True unless the run's process is known to be gone (only checkable on this host)."""
    if run.get("host") != socket.gethostname():
        return True
    return run.get("pid") == os.getpid() or pid_alive(run.get("pid") or 0)


def plan_sweep(store: RunStore, cells: Sequence[SweepCell], name: str, resume: bool = True) -> SweepPlan:
    """Match ``cells`` against the runs already recorded under sweep ``name``.

    Runs of the sweep left ``queued``/``running`` by a process that no longer
    exists (a crash, a killed terminal) are marked ``interrupted`` and their
    cells redone; failed, diverged and cancelled cells are redone too.

    Args:
        resume: ``False`` reruns completed cells as well.
    """
    done: dict[str, dict[str, Any]] = {}
    active: dict[str, dict[str, Any]] = {}
    interrupted: list[str] = []
    for run in store.list_runs(sweep=name):  # newest first
        key = run["config_key"]
        if run["status"] == "completed":
            done.setdefault(key, run)
        elif run["status"] in ACTIVE_STATUSES:
            if _owner_alive(run):
                active.setdefault(key, run)
            else:
                store.finish(run["id"], "interrupted",
                             error=f"the process running it (pid {run.get('pid')}) is gone; the sweep redoes the cell")
                interrupted.append(run["id"])
    todo = [cell for cell in cells if (not resume or cell.key not in done) and cell.key not in active]
    return SweepPlan(list(cells), done, active, todo, interrupted)


# ---------------------------------------------------------------- executors
#: ``on_done(cell, run_id, summary)``: called in the driver as each cell ends.
DoneCallback = Callable[[SweepCell, str, dict[str, Any]], None]


def _fit_cell(config: RunConfig, data_dir: Optional[str], callback: Callable[[dict[str, Any]], None],
              cancel: Any = None) -> dict[str, Any]:
    """Train one cell; returns its status, error, final and best test accuracy and training seconds.

    The dataset is loaded before the clock starts and cached by the process
    (:func:`ttexplore.runs.data.load_dataset`), so a worker reads it on its first
    cell only and ``seconds`` is training alone.
    """
    from ttexplore.runs.data import load_dataset
    from ttexplore.runs.fit import fit

    try:
        dataset = load_dataset(config.dataset, data_dir)
    except Exception as error:  # noqa: BLE001 - reported as the cell's failure
        return {"status": "failed", "error": f"{type(error).__name__}: {error}", "test_accuracy": None,
                "best_test_accuracy": None, "seconds": None}
    result = fit(config, dataset, callback=callback, cancel=cancel)
    return {"status": result.status, "error": result.error, "test_accuracy": result.final_test_accuracy,
            "best_test_accuracy": result.best_test_accuracy, "seconds": round(result.elapsed_s, 3)}


def default_workers() -> int:
    """Processes of the local executor: one per core."""
    return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """Torch threads in each of ``workers`` processes: the cores shared out, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


_WORKER: dict[str, Any] = {}


_STOPPED = "the sweep was stopped before this cell ended"


def _init_local_worker(db_path: str, data_dir: Optional[str], threads: int, stop: Any) -> None:
    """Process-pool initializer: fix torch's threads, open the store once per process, and leave
    Ctrl-C to the driver, which stops the workers through the shared ``stop`` event."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    _WORKER.update(store=RunStore(db_path), data_dir=data_dir, stop=stop)


def _train_recorded(run_id: str, config_values: dict[str, Any]) -> dict[str, Any]:
    """Train one cell in a pool process, writing its status and events to the store as it goes.

    When the driver sets the stop event the run ends before its next batch and
    is recorded as ``interrupted`` (a later launch of the sweep redoes it).
    """
    store: RunStore = _WORKER["store"]
    stop = _WORKER["stop"]
    summary: dict[str, Any] = {"status": "cancelled", "error": None}
    if not stop.is_set():
        store.mark_running(run_id)
        summary = _fit_cell(RunConfig.from_dict(config_values), _WORKER["data_dir"],
                            lambda event: store.add_event(run_id, event), cancel=stop)
    if summary["status"] == "cancelled":
        summary.update(status="interrupted", error=_STOPPED)
    store.finish(run_id, summary["status"], error=summary["error"])
    return summary


def _interrupt_unfinished(store: RunStore, run_ids: Iterable[str], reason: str) -> None:
    for run_id in run_ids:
        run = store.get_run(run_id)
        if run is not None and run["status"] in ACTIVE_STATUSES:
            store.finish(run_id, "interrupted", error=reason)


def run_local(store: RunStore, jobs: Sequence[tuple[str, SweepCell]], workers: Optional[int] = None,
              data_dir: Optional[str] = None, on_done: Optional[DoneCallback] = None) -> None:
    """Run recorded cells in a pool of ``workers`` processes (default: one per core).

    Processes are spawned (not forked: a forked torch can hang in its thread
    pool) with ``cores // workers`` torch threads each; each writes its runs to
    the store. A process that dies fails its cell; Ctrl-C stops the running
    cells before their next batch and marks every unfinished cell
    ``interrupted`` (a later launch redoes them).

    Args:
        jobs: ``(run_id, cell)`` pairs, already recorded in ``store`` as queued.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if not jobs:
        return
    workers = min(workers or default_workers(), len(jobs))
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_local_worker,
                               initargs=(str(store.path), data_dir, threads_per_worker(workers), stop))
    futures = {pool.submit(_train_recorded, run_id, cell.config.to_dict()): (run_id, cell) for run_id, cell in jobs}
    try:
        for future in as_completed(futures):
            run_id, cell = futures[future]
            try:
                summary = future.result()
            except Exception as error:  # noqa: BLE001 - a dead worker fails its cell, not the sweep
                summary = {"status": "failed", "error": f"the worker process failed: {type(error).__name__}: {error}"}
                store.finish(run_id, "failed", error=summary["error"])
            if on_done is not None:
                on_done(cell, run_id, summary)
    except BaseException:  # Ctrl-C: running cells stop before their next batch, queued ones never start
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        _interrupt_unfinished(store, [run_id for run_id, _ in jobs], _STOPPED)


def _ray_train(config_values: dict[str, Any], data_dir: Optional[str], threads: int) -> dict[str, Any]:
    """A Ray task: train one cell and return its summary with every metric event (the driver records them)."""
    import torch

    torch.set_num_threads(threads)
    events: list[dict[str, Any]] = []
    summary = _fit_cell(RunConfig.from_dict(config_values), data_dir, events.append)
    return {**summary, "events": events}


def import_ray() -> Any:
    """``import ray``, or a :class:`ConfigError` (field ``executor``) saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("executor", "the ray executor needs Ray, which is not installed: "
                                      "pip install -r requirements-ray.txt (or pip install 'ray[default]'), "
                                      "or use --executor local") from None
    return ray


def run_ray(store: RunStore, jobs: Sequence[tuple[str, SweepCell]], workers: Optional[int] = None,
            data_dir: Optional[str] = None, on_done: Optional[DoneCallback] = None, address: Optional[str] = None) -> None:
    """Run recorded cells as Ray tasks, one CPU each, and record their results as they return.

    Without ``address`` a local Ray is started with ``workers`` CPUs (default:
    the cores) and no dashboard, and shut down at the end; with it, the cluster
    at ``address`` is joined. This package is shipped to the workers as a
    ``py_modules`` runtime environment, so they run the driver's code (they
    still need torch and the datasets). A run stays ``queued`` in the store
    until its task returns; then its events, status and error are written.
    """
    if not jobs:
        return
    ray = import_ray()
    connected_here = not ray.is_initialized()
    if connected_here:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING",
                                   "runtime_env": {"py_modules": [str(Path(__file__).resolve().parent)]}}
        try:
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=workers or default_workers(), **options)
        except Exception as error:  # noqa: BLE001 - reported with the flag to fix
            _interrupt_unfinished(store, [run_id for run_id, _ in jobs], f"Ray could not start: {error}")
            where = f"join the Ray cluster at {address}" if address else "start a local Ray"
            raise ConfigError("address" if address else "executor",
                              f"could not {where}: {type(error).__name__}: {error}") from None
    threads = 1 if address else threads_per_worker(int(ray.cluster_resources().get("CPU", 1)))
    task = ray.remote(num_cpus=1, max_retries=0)(_ray_train)
    pending = {task.remote(cell.config.to_dict(), data_dir, threads): (run_id, cell) for run_id, cell in jobs}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            run_id, cell = pending.pop(ready[0])
            try:
                summary = ray.get(ready[0])
            except Exception as error:  # noqa: BLE001 - a failed task fails its cell, not the sweep
                summary = {"status": "failed", "error": f"the Ray task failed: {type(error).__name__}: {error}", "events": []}
            store.mark_running(run_id)
            for event in summary.pop("events", []):
                store.add_event(run_id, event)
            store.finish(run_id, summary["status"], error=summary.get("error"))
            if on_done is not None:
                on_done(cell, run_id, summary)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        _interrupt_unfinished(store, [run_id for run_id, _ in jobs], _STOPPED)
        if connected_here:
            ray.shutdown()  # stops the local Ray started above; from a cluster it only disconnects


def run_sweep(store: RunStore, grid: "SweepGrid | Sequence[SweepCell]", name: str, executor: str = "local",
              workers: Optional[int] = None, address: Optional[str] = None, resume: bool = True,
              data_dir: Optional[str] = None, on_plan: Optional[Callable[[SweepPlan], None]] = None,
              on_done: Optional[DoneCallback] = None) -> SweepPlan:
    """Run the cells of a sweep that are not done yet, and block until they end.

    Cells are recorded as ``queued`` runs under ``name`` first, in grid order
    (so the app sees the whole grid), then started most expensive first so the
    pool ends evenly.

    Returns:
        The plan that was executed (``plan.todo`` ran).

    Raises:
        ConfigError: field ``"executor"`` for an unknown executor, a missing Ray or a local Ray that
            does not start; field ``"address"`` for a Ray cluster that can not be joined.
    """
    if executor not in EXECUTORS:
        raise ConfigError("executor", f"executor {executor!r} is unknown: use one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        import_ray()
    cells = list(grid.cells if isinstance(grid, SweepGrid) else grid)
    plan = plan_sweep(store, cells, name, resume)
    if on_plan is not None:
        on_plan(plan)
    jobs = [(store.create_run(cell.config, sweep=name), cell) for cell in plan.todo]  # recorded in grid order
    jobs.sort(key=lambda job: estimated_cost(job[1].config), reverse=True)  # started longest first
    if executor == "ray":
        run_ray(store, jobs, workers, data_dir, on_done, address=address)
    else:
        run_local(store, jobs, workers, data_dir, on_done)
    return plan


def submit_sweep(manager: Any, store: RunStore, grid: "SweepGrid | Sequence[SweepCell]", name: str,
                 resume: bool = True) -> list[str]:
    """Queue the sweep's unfinished cells on a :class:`~ttexplore.runs.jobs.JobManager` (the app's way).

    Cells already completed (with ``resume``) or queued/running in a live
    process are not submitted again, so pressing "run" twice does not double
    the work. Returns the new run ids.
    """
    cells = list(grid.cells if isinstance(grid, SweepGrid) else grid)
    plan = plan_sweep(store, cells, name, resume)
    return [manager.submit(cell.config, sweep=name) for cell in plan.todo]


def cancel_sweep(manager: Any, store: RunStore, name: str) -> int:
    """Cancel the sweep's queued and running runs that ``manager`` owns; returns how many."""
    return sum(bool(manager.cancel(run["id"])) for run in store.list_runs(status=ACTIVE_STATUSES, sweep=name))


def cells_from_store(store: RunStore, name: str) -> list[SweepCell]:
    """The cells of sweep ``name`` as recorded in the store, in the order they were queued.

    For a sweep launched elsewhere (the app, another shell) whose spec is not
    at hand; labels and ranks are those :func:`expand` gives (baselines get a
    ``->M`` suffix when the dataset's runs have several hidden sizes).
    """
    configs: dict[str, RunConfig] = {}
    for run in reversed(store.list_runs(sweep=name)):  # oldest first
        configs.setdefault(run["config_key"], RunConfig.from_dict(run["config"]))
    hidden_sizes: dict[str, set[int]] = {}
    for config in configs.values():
        hidden_sizes.setdefault(config.dataset, set()).add(config.hidden_features)
    cells = []
    for config in configs.values():
        if config.layer == "tt":
            shape = SweepShape(config.in_modes, config.out_modes)
            cells.append(SweepCell(config, shape.label, max(_rank_plan(shape, config.ranks).ranks, default=1)))
        else:
            label = "dense" if config.layer == "dense" else "matrix rank"
            suffix = f" ->{config.hidden_features}" if len(hidden_sizes[config.dataset]) > 1 else ""
            cells.append(SweepCell(config, label + suffix, config.matrix_rank if config.layer == "matrix_rank" else None))
    return cells


def sweep_names(store: RunStore) -> list[str]:
    """Names of the sweeps in the store, newest first."""
    return list(dict.fromkeys(run["sweep"] for run in store.list_runs() if run.get("sweep")))


# ---------------------------------------------------------------- results
def sweep_results(store: RunStore, cells: Sequence[SweepCell], name: str) -> list[dict[str, Any]]:
    """One row per cell (columns :data:`RESULT_COLUMNS`), from the runs recorded under ``name``.

    A cell's row comes from its newest completed run, else its newest run of
    any status (``test_accuracy`` is then the latest measured), else it is
    ``"pending"``. ``seconds`` is the training loop's own time, the same for
    every executor; ``epochs`` the epochs done.
    """
    chosen: dict[str, dict[str, Any]] = {}
    for run in store.list_runs(sweep=name):  # newest first
        key = run["config_key"]
        if key not in chosen or (run["status"] == "completed" and chosen[key]["status"] != "completed"):
            chosen[key] = run
    events = store.metrics_for(run["id"] for run in chosen.values())
    rows = []
    for cell in cells:
        config = cell.config
        run = chosen.get(cell.key)
        last = events[run["id"]][-1] if run and events.get(run["id"]) else None
        rows.append({
            "dataset": config.dataset,
            "layer": config.layer,
            "shape": cell.shape,
            "rank": cell.rank,
            "seed": config.seed,
            "params": config.layer_params(),
            "compression": config.compression(),
            "test_accuracy": run["final_test_accuracy"] if run else None,
            "best_test_accuracy": run["best_test_accuracy"] if run else None,
            "epochs": round(last["epoch"], 3) if last else 0,
            "seconds": round(last["elapsed_s"], 2) if last else None,
            "status": run["status"] if run else "pending",
            "run_id": run["id"] if run else None,
        })
    return rows


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed rows averaged over seeds: one row per (dataset, layer, shape, rank), with ``seeds`` counted.

    ``test_accuracy`` and ``best_test_accuracy`` are the means over the seeds.
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "completed" and row["test_accuracy"] is not None:
            groups.setdefault((row["dataset"], row["layer"], row["shape"], row["rank"]), []).append(row)
    summary = []
    for members in groups.values():
        first = dict(members[0])
        for column in ("test_accuracy", "best_test_accuracy"):
            first[column] = sum(member[column] for member in members) / len(members)
        first["seeds"] = len(members)
        first.pop("seed", None)
        first.pop("run_id", None)
        summary.append(first)
    return summary


def results_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seed's table from :func:`summarize`'d rows: dataset, shape, max TT rank, layer weights,
    compression rate, accuracy; TT cells in grid order, then the baselines."""
    datasets = list(dict.fromkeys(row["dataset"] for row in rows))
    kinds = {"tt": 0, "dense": 1, "matrix_rank": 2}
    table = []
    for row in sorted(rows, key=lambda row: (datasets.index(row["dataset"]), kinds[row["layer"]])):
        table.append({"dataset": row["dataset"], "shape": row["shape"],
                      "max TT rank": row["rank"] if row["rank"] is not None else "-",
                      "layer weights": row["params"], "compression rate": _rate(row["compression"]),
                      "accuracy": f"{row['test_accuracy']:.4f}"})
    return table


def _rate(value: float) -> str:
    """A compression rate as the seed's table writes it: ``6.6e-5``; ``1`` for the dense layer."""
    if value >= 0.1:
        return f"{value:.2g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def table_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """:func:`results_table` as Markdown, one table per dataset."""
    table = results_table(rows)
    columns = ("shape", "max TT rank", "layer weights", "compression rate", "accuracy")
    parts = []
    for dataset in dict.fromkeys(row["dataset"] for row in table):
        lines = [f"### {dataset}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(str(row[column]) for column in columns) + " |" for row in table if row["dataset"] == dataset]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n" if parts else "(no completed cells yet)\n"


def sweep_figure(rows: Sequence[dict[str, Any]], title: Optional[str] = None) -> Any:
    """The seed's figure from result rows: accuracy against first-layer weights (log x), one line per shape.

    Completed rows are averaged over seeds; dense and matrix-rank rows are the
    baseline traces. With several datasets each line is labelled ``shape · dataset``.
    """
    from ttexplore.presenters.plots import accuracy_vs_params

    summary = summarize(rows)
    datasets = list(dict.fromkeys(row["dataset"] for row in rows))
    several = len(datasets) > 1
    points = [{"shape": f"{row['shape']} · {row['dataset']}" if several else row["shape"],
               "layer_params": row["params"], "test_accuracy": row["test_accuracy"], "rank": row["rank"]}
              for row in summary]
    baselines = sorted({point["shape"] for point, row in zip(points, summary) if row["layer"] != "tt"})
    if title is None:
        title = f"{', '.join(datasets)}: test accuracy against the weights of the first layer"
    return accuracy_vs_params(points, title=title, baselines=baselines)


def write_outputs(rows: Sequence[dict[str, Any]], out_dir: "str | os.PathLike", image_width: int = 900,
                  image_height: int = 550, image_scale: float = 1.5) -> dict[str, Path]:
    """Write ``results.csv`` (every cell), ``table.md`` and ``accuracy_vs_weights.html`` / ``.png``.

    The PNG is written last: without a working Chromium it raises
    :class:`~ttexplore.presenters.export.ExportError` and the other files are already there.
    """
    from ttexplore.presenters.export import figure_to_html, figure_to_image, table_to_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "results.csv", "table": out / "table.md", "html": out / "accuracy_vs_weights.html",
             "png": out / "accuracy_vs_weights.png"}
    paths["csv"].write_bytes(table_to_csv([{column: row.get(column) for column in RESULT_COLUMNS} for row in rows]))
    paths["table"].write_text(table_markdown(summarize(rows)), encoding="utf-8")
    figure = sweep_figure(rows)
    paths["html"].write_bytes(figure_to_html(figure))
    paths["png"].write_bytes(figure_to_image(figure, "png", width=image_width, height=image_height, scale=image_scale))
    return paths


# ---------------------------------------------------------------- CLI
def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The flags of ``python -m ttexplore sweep``."""
    parser.description = ("Train a grid of networks (datasets x TT shapes x max TT ranks x seeds, plus the dense and "
                          "matrix-rank baselines of the same sizes), record them in the run store under the sweep's name "
                          "(a second launch skips completed cells), and write results.csv, table.md and the "
                          "accuracy-vs-weights figure (PNG and HTML). Progress goes to stderr.")
    parser.epilog = ("Example: python -m ttexplore sweep --dataset digits --shapes 4x4x4,8x8 --ranks 1,2 --epochs 1 --out out/demo. "
                     "Presets: " + "; ".join(f"{name}: {preset['description']}" for name, preset in PRESETS.items()))
    grid = parser.add_argument_group("the grid")
    grid.add_argument("--preset", choices=list(PRESETS), default=None,
                      help="a seed experiment; the flags below override its settings")
    grid.add_argument("--dataset", default=None,
                      help=f"dataset(s), comma-separated, from {', '.join(DATASETS)} (default: the preset's, else mnist5k)")
    grid.add_argument("--shapes", default=None,
                      help="TT shapes, comma-separated: IN (output modes = input modes) or IN->OUT, e.g. "
                           "'4x8x8x4,2^10' or '8x8x8x6->10^4' (required without --preset)")
    grid.add_argument("--ranks", default=None, help="max TT ranks, e.g. 1,2,4 or 1-4 (default: the preset's, else 1-4)")
    grid.add_argument("--seeds", default="0", help="seeds, e.g. 0,1,2 or 0-2: one run per seed for every cell (default 0)")
    grid.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True,
                      help="add the dense layer and the matrix-rank layers (ranks as --ranks) of each hidden size (default: on)")
    train = parser.add_argument_group("training (the same for every cell)")
    train.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the preset's, else 10)")
    train.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    train.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
    train.add_argument("--train-limit", type=int, default=None, help="use only the first N training images (quick sweeps)")
    run_group = parser.add_argument_group("execution")
    run_group.add_argument("--executor", choices=EXECUTORS, default="local",
                           help="local: a pool of processes on this machine; ray: Ray tasks (pip install -r requirements-ray.txt)")
    run_group.add_argument("--workers", type=int, default=None,
                           help="processes (local) or CPUs of the local Ray (default: one per core)")
    run_group.add_argument("--address", default=None,
                           help="Ray cluster address, e.g. ray://head:10001 or auto (default: start a local Ray for the sweep)")
    run_group.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                           help="skip cells this sweep already completed (default: on); --no-resume reruns them")
    run_group.add_argument("--name", default=None, help="the sweep's name in the run store (default: the preset's name, else 'sweep')")
    run_group.add_argument("--db", default=None, help="run store file (default $TTEXPLORE_DB or ~/.ttexplore/runs.db)")
    run_group.add_argument("--data-dir", default=None,
                           help="folder holding downloaded datasets (default $TTEXPLORE_DATA or ~/.ttexplore/data)")
    run_group.add_argument("--out", default=None,
                           help="folder for results.csv, table.md, accuracy_vs_weights.png/.html (default out/<name>)")


def _spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """The :class:`SweepSpec` the flags describe (preset first, flags over it)."""
    overrides = {"datasets": args.dataset, "shapes": args.shapes, "ranks": args.ranks, "seeds": args.seeds,
                 "baselines": args.baselines, "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
                 "train_limit": args.train_limit, "name": args.name}
    if args.preset:
        return preset_spec(args.preset, **overrides)
    if not args.shapes:
        raise ConfigError("shapes", "give --shapes (e.g. 4x8x8x4,32x32) or a --preset")
    values = {key: value for key, value in overrides.items() if value is not None}
    values.setdefault("name", "sweep")
    values.setdefault("datasets", "mnist5k")
    values.setdefault("ranks", "1-4")
    return make_spec(**values)


_FLAGS = {"datasets": "--dataset", "dataset": "--dataset", "in_modes": "--shapes", "out_modes": "--shapes",
          "pad_to": "--dataset", "hidden": "--shapes"}


class _Progress:
    """Progress of a sweep as lines on stderr: the plan, then one line per finished cell with an ETA."""

    def __init__(self, name: str, executor: str, workers: int, stream: Any = None) -> None:
        self.name, self.executor, self.workers, self.stream = name, executor, workers, stream
        self.started = time.perf_counter()
        self.total = self.finished = 0

    def plan(self, plan: SweepPlan) -> None:
        self.total = len(plan.todo)
        parts = [f"sweep {self.name!r}: {len(plan.cells)} cells"]
        skipped = len(plan.cells) - len(plan.todo) - sum(cell.key in plan.active for cell in plan.cells)
        if skipped:
            parts.append(f"{skipped} completed earlier (skipped)")
        if plan.active:
            parts.append(f"{len(plan.active)} running in another live process (not doubled)")
        if plan.interrupted:
            parts.append(f"{len(plan.interrupted)} left by a dead process, redone")
        where = f"{self.workers} processes x {threads_per_worker(self.workers)} threads" if self.executor == "local" else "Ray"
        parts.append(f"{self.total} to run ({where})" if self.total else "nothing to run (--no-resume reruns them)")
        self.write(", ".join(parts))
        self.started = time.perf_counter()

    def done(self, cell: SweepCell, run_id: str, summary: dict[str, Any]) -> None:
        self.finished += 1
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.finished * (self.total - self.finished)
        accuracy = summary.get("test_accuracy")
        outcome = f"test acc {accuracy:.4f}" if summary["status"] == "completed" and accuracy is not None else \
            f"{summary['status']}: {summary.get('error')}"
        seconds = f", {summary['seconds']:.1f} s" if summary.get("seconds") is not None else ""
        self.write(f"[{self.finished:>{len(str(self.total))}}/{self.total}] {cell.describe()}: {outcome}{seconds}"
                   f"  | {_clock(elapsed)} elapsed, ~{_clock(left)} left")

    def write(self, line: str) -> None:
        print(line, file=self.stream or sys.stderr, flush=True)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s"


def run(args: argparse.Namespace) -> int:
    """``ttexplore sweep``: expand, run what is not done, write the results; 0 when every cell completed."""
    from ttexplore.cli import UsageError
    from ttexplore.runs.data import DatasetUnavailable, available_datasets, load_dataset

    def usage(error: ConfigError) -> UsageError:
        flag = _FLAGS.get(error.field, "--" + error.field.replace("_", "-"))
        return UsageError(f"ttexplore sweep: error: {flag}: {error}")

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"ttexplore sweep: error: --workers: {args.workers} must be at least 1")
    if args.address and args.executor != "ray":
        raise UsageError("ttexplore sweep: error: --address: a Ray cluster address needs --executor ray")
    try:
        spec = _spec_from_args(args)
        grid = expand(spec)
        if args.executor == "ray":
            import_ray()
    except ConfigError as error:
        raise usage(error) from None
    if not args.address:
        present = available_datasets(args.data_dir)
        for dataset in (name for name in spec.datasets if not present.get(name)):
            try:  # downloads it once here, when a download is possible, rather than in every worker
                load_dataset(dataset, args.data_dir)
            except DatasetUnavailable as error:
                raise UsageError(f"ttexplore sweep: error: --dataset: {error}") from None
    store = RunStore(args.db)
    workers = args.workers or default_workers()
    progress = _Progress(spec.name, args.executor, min(workers, len(grid.cells)))
    for note in grid.notes:
        progress.write(f"note: {note}")
    started = time.perf_counter()
    try:
        run_sweep(store, grid, spec.name, executor=args.executor, workers=workers, address=args.address,
                  resume=args.resume, data_dir=args.data_dir, on_plan=progress.plan, on_done=progress.done)
    except ConfigError as error:
        raise usage(error) from None
    rows = sweep_results(store, grid.cells, spec.name)
    out = Path(args.out or Path("out") / spec.name)
    progress.write(f"sweep {spec.name!r} took {_clock(time.perf_counter() - started)}\n")
    progress.write(table_markdown(summarize(rows)))
    from ttexplore.presenters.export import ExportError

    try:
        paths = write_outputs(rows, out)
    except ExportError as error:
        progress.write(f"wrote {out / 'results.csv'}, table.md and accuracy_vs_weights.html; the PNG failed: {error}")
        return 1
    progress.write("wrote " + ", ".join(str(path) for path in paths.values()))
    unfinished = [row for row in rows if row["status"] != "completed"]
    if unfinished:
        progress.write(f"{len(unfinished)} of {len(rows)} cells did not complete: "
                       + "; ".join(f"{row['shape']} r={row['rank']} ({row['status']})" for row in unfinished[:5]))
        return 1
    return 0
