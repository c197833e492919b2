"""``ttexplore sweep``: train a grid of runs, print progress on stderr, write the results.

Flags (:func:`configure_parser`) become a :class:`~ttexplore.experiments.sweep.SweepSpec`,
a bad one is a one-line :class:`~ttexplore.cli.common.UsageError`; the sweep itself
is :mod:`ttexplore.experiments.sweep`. Writes ``results.csv``, ``table.md`` and the
2018 reproduction's accuracy-vs-weights figure (``accuracy_vs_weights.png`` / ``.html``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from ttexplore.cli.common import EXIT_FAILED, EXIT_OK, UsageError, check_output_path, open_store
from ttexplore.experiments.sweep import (EXECUTORS, PRESET_ALIASES, PRESETS, SweepCell, SweepGrid, SweepPlan,
                                         SweepSpec, default_workers, expand, import_ray, make_spec, preset_spec,
                                         run_sweep, summarize, sweep_results, table_markdown, threads_per_worker,
                                         write_outputs)
from ttexplore.runs.config import ConfigError
from ttexplore.runs.data_info import DATASETS
from ttexplore.runs.settings import worker_cap
from ttexplore.tt.text import terminal_lines

__all__ = ["configure_parser", "run"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The flags of ``python -m ttexplore sweep``."""
    parser.description = ("Train a grid of networks (datasets x TT shapes x max TT ranks x seeds, plus the dense and "
                          "matrix-rank baselines of the same sizes), record them in the run store under the sweep's name "
                          "(a second launch skips completed cells), and write results.csv (one row per cell: mean and "
                          "std over its seeds), runs.csv (one row per seed), table.md and the accuracy-vs-weights "
                          "figure (PNG and HTML). Progress goes to stderr.")
    parser.epilog = ("Example: python -m ttexplore sweep --dataset digits --shapes 4x4x4,8x8 --ranks 1,2 --epochs 1 --out out/demo; "
                     "a CNN: python -m ttexplore sweep --dataset digits --network tt-convnet --ranks 2,4,8 --epochs 1. "
                     "Presets: " + "; ".join(f"{name}: {preset['description']}" for name, preset in PRESETS.items())
                     + ". Former names, still accepted: "
                     + ", ".join(f"{alias} for {name}" for alias, name in PRESET_ALIASES.items()) + ".")
    grid = parser.add_argument_group("the grid")
    grid.add_argument("--preset", choices=[*PRESETS, *PRESET_ALIASES], default=None, metavar="PRESET",
                      help=f"a grid of the 2018 reproduction: {' or '.join(PRESETS)} ({' and '.join(PRESET_ALIASES)} "
                           "are their former names); the flags below override its settings")
    grid.add_argument("--dataset", default=None,
                      help=f"dataset(s), comma-separated, from {', '.join(DATASETS)} (default: the preset's, else mnist5k)")
    grid.add_argument("--shapes", default=None,
                      help="TT shapes, comma-separated: IN (output modes = input modes) or IN->OUT, e.g. "
                           "'4x8x8x4,2^10' or '8x8x8x6->10^4' (required without --preset)")
    grid.add_argument("--network", default=None, metavar="PRESET|LAYERS",
                      help="instead of --shapes, a network whose layers with TT cores (ttconv, tt, tt4d) take each of "
                           "--ranks, beside its dense twin (--baselines): a run preset sized for --dataset (tt-convnet) "
                           "or its layers as text, quoted ('conv:32:3; pool:2; ttconv:2x4x4->4x4x4:4:3; pool:2; "
                           "dense:64'); its figure counts every parameter of the network")
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
    if args.network is not None and (args.shapes or args.preset):
        raise ConfigError("network", "give --network or " + ("--preset" if args.preset else "--shapes") + ", not both")
    if args.network is not None and not args.network.strip():
        raise ConfigError("network", "it is empty: choose a preset (tt-convnet) or give layers")
    overrides = {"datasets": args.dataset, "shapes": args.shapes, "ranks": args.ranks, "seeds": args.seeds,
                 "baselines": args.baselines, "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
                 "train_limit": args.train_limit, "name": args.name}
    if args.preset:
        return preset_spec(args.preset, **overrides)
    if not args.shapes and args.network is None:
        raise ConfigError("shapes", "give --shapes (e.g. 4x8x8x4,32x32), a --network (tt-convnet) or a --preset")
    values = {key: value for key, value in overrides.items() if value is not None}
    if args.network is not None:
        values.update(network=args.network, shapes=())
    values.setdefault("name", "sweep")
    values.setdefault("datasets", "mnist5k")
    values.setdefault("ranks", "1-4")
    return make_spec(**values)


#: The flag to name for a :class:`ConfigError` field whose flag is not ``--field-name``.
_FLAGS = {"datasets": "--dataset", "dataset": "--dataset", "in_modes": "--shapes", "out_modes": "--shapes",
          "pad_to": "--dataset", "hidden": "--shapes"}


def _usage(error: ConfigError) -> UsageError:
    """The one-line usage error for ``error``, naming the flag to fix."""
    flag = _FLAGS.get(error.field, "--" + error.field.replace("_", "-"))
    return UsageError(f"ttexplore sweep: error: {flag}: {error}")


class _Progress:
    """Progress of a sweep as lines on stderr: the plan, then one line per finished cell with an ETA."""

    def __init__(self, name: str, executor: str, workers: int, stream: Any = None) -> None:
        self.name, self.executor, self.workers, self.stream = name, executor, workers, stream
        self.started = time.perf_counter()
        self.total = self.finished = 0

    def plan(self, plan: SweepPlan) -> None:
        """One line: the cells, those skipped, running elsewhere or redone, and how many run now and where."""
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
        """One line for a finished cell: its accuracy or error, its seconds, the time spent and the time left."""
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
        """Print ``line`` to the stream (stderr by default) at once."""
        print(terminal_lines(line), file=self.stream or sys.stderr, flush=True)  # names and notes made inert


def _clock(seconds: float) -> str:
    """``75.4`` -> ``"1m15s"``."""
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s"


def run(args: argparse.Namespace) -> int:
    """``ttexplore sweep``: expand, run what is not done, write the results; 0 when every cell completed.

    Raises:
        UsageError: a bad flag, a missing Ray or dataset, or a Ray that does not start.
    """
    spec, grid = _checked_grid(args)
    out = Path(args.out or Path("out") / spec.name)
    check_output_path("sweep", "--out", str(out), folder=True)  # before any training, not after it
    store = open_store("sweep", args.db)
    if not args.address:  # a cluster's nodes fetch their own data
        _fetch_missing_datasets(spec.datasets, args.data_dir)
    workers = args.workers or default_workers()
    progress = _Progress(spec.name, args.executor, min(workers, len(grid.cells)))
    for note in grid.notes:
        progress.write(f"note: {note}")
    started = time.perf_counter()
    try:
        run_sweep(store, grid, spec.name, executor=args.executor, workers=workers, address=args.address,
                  resume=args.resume, data_dir=args.data_dir, on_plan=progress.plan, on_done=progress.done)
    except ConfigError as error:
        raise _usage(error) from None
    rows = sweep_results(store, grid.cells, spec.name)
    progress.write(f"sweep {spec.name!r} took {_clock(time.perf_counter() - started)}\n")
    progress.write(table_markdown(summarize(rows)))
    return _write_results(rows, out, progress)


def _checked_grid(args: argparse.Namespace) -> tuple[SweepSpec, SweepGrid]:
    """The spec the flags describe and its grid, once every flag and the executor are known to be usable.

    Raises:
        UsageError: naming the flag to fix.
    """
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"ttexplore sweep: error: --workers: {args.workers} must be at least 1")
    if args.workers is not None and not args.address and args.workers > worker_cap():
        raise UsageError(f"ttexplore sweep: error: --workers: {args.workers} is more than {worker_cap()} (two per core on "
                         f"this machine): use at most {worker_cap()}, or leave it out for one per core")
    if args.address and args.executor != "ray":
        raise UsageError("ttexplore sweep: error: --address: a Ray cluster address needs --executor ray")
    try:
        spec = _spec_from_args(args)
        grid = expand(spec)
        if args.executor == "ray":
            import_ray()
    except ConfigError as error:
        raise _usage(error) from None
    return spec, grid


def _fetch_missing_datasets(datasets: Sequence[str], data_dir: Optional[str]) -> None:
    """Load each of ``datasets`` not on this machine yet, so it is downloaded once here (when a download
    is possible) rather than in every worker.

    Raises:
        UsageError: ``--dataset``, saying how to get a dataset that can not be loaded.
    """
    from ttexplore.runs.data import DatasetUnavailable, available_datasets, load_dataset

    present = available_datasets(data_dir)
    for dataset in (name for name in datasets if not present.get(name)):
        try:
            load_dataset(dataset, data_dir)
        except DatasetUnavailable as error:
            raise UsageError(f"ttexplore sweep: error: --dataset: {error}") from None


def _write_results(rows: Sequence[dict[str, Any]], out: Path, progress: _Progress) -> int:
    """Write the sweep's files into ``out`` and say what was written; 0 when every cell completed and the PNG
    was written, else 1."""
    from ttexplore.presenters.export import ExportError

    try:
        paths = write_outputs(rows, out)
    except ExportError as error:
        progress.write(f"wrote {out / 'results.csv'}, table.md and accuracy_vs_weights.html; the PNG failed: {error}")
        return EXIT_FAILED
    progress.write("wrote " + ", ".join(str(path) for path in paths.values()))
    unfinished = [row for row in rows if row["status"] != "completed"]
    if unfinished:
        progress.write(f"{len(unfinished)} of {len(rows)} cells did not complete: "
                       + "; ".join(f"{row['shape']} r={row['rank']} ({row['status']})" for row in unfinished[:5]))
        return EXIT_FAILED
    return EXIT_OK
