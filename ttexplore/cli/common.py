"""What every command shares: one-line usage errors, the progress bar, the run flags.

A bad argument is one line naming the flag and the fix, and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

from ttexplore.tt.devicenames import DEFAULT_DEVICE
from ttexplore.runs.config import INITS, ONE_LAYER_FIELDS, OPTIMIZERS, STRATEGIES, ConfigError, RunConfig, one_layer_kinds
from ttexplore.runs.data_info import DATASETS, DEFAULT_DATASET

__all__ = ["UsageError", "Parser", "ProgressBar", "add_run_flags", "config_from_args", "flag_name", "check_threads",
           "check_device", "check_output_path", "open_store", "preset_or_usage", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A user error the CLI reports as one line and exit code 2."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage dump) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: error: {message} (see --help)")


# ---------------------------------------------------------------- progress
class ProgressBar:
    """A one-line progress bar on a stream (redrawn in place on a terminal,
    one line per update otherwise, so logs stay readable)."""

    def __init__(self, total_steps: int, stream: TextIO = sys.stderr, width: int = 28) -> None:
        self.total = max(1, total_steps)
        self.stream = stream
        self.width = width
        self.interactive = stream.isatty()

    def update(self, step: int, text: str) -> None:
        filled = int(self.width * min(step, self.total) / self.total)
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {100 * step / self.total:5.1f}% {text}"
        if self.interactive:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------- flags
class _Given(argparse.Action):
    """Store a flag's value and remember that it was given (``args.given_flags``), so a preset or
    ``--hidden-layer`` can tell a flag typed from one left at its default."""

    def __call__(self, parser, namespace, values, option_string=None):
        if self.dest in ("hidden_layer", "round_to"):  # repeatable: each one adds to the list
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, values)
        namespace.given_flags = set(getattr(namespace, "given_flags", ())) | {self.dest}


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that describe a run; each maps to the :class:`RunConfig` field of the same name."""
    for name in (None, "store"):  # every flag below (argparse's default action) records that it was given
        parser.register("action", name, _Given)
    parser.set_defaults(check_memory=True)  # a command that only reports (count) turns it off
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=DEFAULT_DATASET, choices=list(DATASETS),
                      help=f"dataset to train on (default {DEFAULT_DATASET}, bundled, no download)")
    data.add_argument("--data-dir", default=None,
                      help="folder holding downloaded datasets (default $TTEXPLORE_DATA or ~/.ttexplore/data)")
    data.add_argument("--pad-to", default=None,
                      help="zero-pad images to this side ('none' keeps them; default 32 for 28x28 images, as the paper)")
    data.add_argument("--train-limit", type=int, default=None, help="use only the first N training images (quick runs)")
    net = parser.add_argument_group("network: [pad] -> hidden layer -> ReLU -> Linear(hidden, classes)")
    net.add_argument("--layer", default="tt", choices=one_layer_kinds(), help="hidden layer kind (default tt)")
    net.add_argument("--in-modes", default=None,
                     help="TT input modes multiplying to the input features, e.g. 4x8x8x4 (default: balanced 4 modes)")
    net.add_argument("--out-modes", default=None, help="TT output modes, e.g. 4x8x8x4 (default: same as --in-modes)")
    net.add_argument("--ranks", default="4", help="max TT rank: one int, one per core boundary (2,4,2), or 'max' (default 4)")
    net.add_argument("--hidden", type=int, default=None, help="hidden width of a dense/matrix_rank layer without --out-modes")
    net.add_argument("--matrix-rank", type=int, default=4, help="rank of the matrix_rank baseline (default 4)")
    net.add_argument("--init", default="glorot", choices=INITS, help="hidden layer init (std of the whole W)")
    net.add_argument("--strategy", default="auto", choices=STRATEGIES, help="TT forward contraction (default auto: cheapest)")
    net.add_argument("--hidden-layer", metavar="SPEC", default=None,
                     help="one hidden layer, repeat for several (each then a ReLU), instead of --layer/--in-modes/"
                          "--out-modes/--ranks/--hidden/--matrix-rank: tt:IN[->OUT][:RANKS] (tt:4^5->8x16x16x16x8:4), "
                          "dense:WIDTH, matrix_rank:WIDTH:RANK, or for images (before the fully-connected layers; a pool "
                          "has no ReLU) conv:OUT[:K][:sS], ttconv:IN->OUT[:RANKS][:K] (quote it: '>' is a shell redirection), "
                          "tt4d:OUT[:RANKS][:K], pool:SIZE")
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=5, help="passes over the training set (default 5)")
    opt.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
    opt.add_argument("--lr", type=float, default=3e-3, help="learning rate (default 3e-3)")
    opt.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="adam or sgd (default adam)")
    opt.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    opt.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay (default 0)")
    opt.add_argument("--seed", type=int, default=0, help="seed of init and batch order; same seed, same run (default 0)")
    opt.add_argument("--evals-per-epoch", type=int, default=4, help="metric reports per epoch (default 4)")
    opt.add_argument("--round-to", metavar="RANK@EPOCH", default=None,
                     help="after epoch EPOCH, TT-round every TT layer to max rank RANK (or to a relative error: "
                          "rel:0.1@EPOCH) and train on; repeat for a schedule, e.g. --ranks 8 --round-to 4@5 --round-to 2@10")
    opt.add_argument("--val-split", type=float, default=0.0, metavar="SHARE",
                     help="hold out this share of the training images (0 to 0.5; stratified, drawn from the seed) as a "
                          "validation set; the epoch with the lowest validation loss is the run's best, its weights kept "
                          "(default 0: none held out)")
    opt.add_argument("--early-stop", type=int, default=None, metavar="PATIENCE",
                     help="stop after PATIENCE epochs in a row without a lower validation loss (needs --val-split)")
    opt.add_argument("--device", default=DEFAULT_DEVICE,
                     help="where to train: auto (the first CUDA GPU when there is one, else the CPU), cpu, cuda, "
                          "cuda:N or mps (default auto)")


_RUN_FIELDS = ("pad_to", "train_limit", "layer", "in_modes", "out_modes", "ranks", "hidden", "matrix_rank", "init",
               "strategy", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "seed", "evals_per_epoch",
               "device", "round_to", "val_split", "early_stop")


def flag_name(field: str) -> str:
    """How the user typed ``field`` on the command line: ``"in_modes"`` -> ``"--in-modes"``,
    ``"layers[1].ranks"`` (or ``"hidden_layers[1].ranks"``) -> ``"--hidden-layer"``; a field no flag sets
    (``"memory"``) stays as it is."""
    if field.startswith(("hidden_layers", "layers")):
        return "--hidden-layer"
    return f"--{field.replace('_', '-')}" if field in _FLAG_FIELDS else field


_FLAG_FIELDS = set(_RUN_FIELDS) | {"dataset", "data_dir", "label", "threads"}


def check_threads(args: argparse.Namespace) -> None:
    """Refuse ``--threads`` below 1 (torch raises on it) or far above the machine's CPUs.

    Raises:
        UsageError: naming ``--threads`` and the fix.
    """
    threads = getattr(args, "threads", None)
    if threads is None:
        return
    cpus = os.cpu_count() or 1
    most = max(64, 4 * cpus)
    if not 1 <= threads <= most:
        raise UsageError(f"ttexplore {args.command}: error: --threads: {threads} must be between 1 and {most} "
                         f"(this machine has {cpus} CPUs): leave it out for torch's choice")


def config_from_args(args: argparse.Namespace, preset: "dict[str, Any] | None" = None, **extra: Any) -> RunConfig:
    """The :class:`RunConfig` the run flags describe, checked before any data loads; with ``preset``
    (a preset's values), the flags given override it and those left at their defaults do not.

    Also checks ``--threads`` when the command has it, and, when the command sets
    ``check_memory`` (``train`` does; ``count`` only shows the estimate), that the
    run fits the memory budget (:func:`ttexplore.runs.resources.check_run_memory`).

    Raises:
        UsageError: naming the flag (``--in-modes``, ``--hidden-layer``) and the fix.
    """
    given = getattr(args, "given_flags", set())
    values = {name: getattr(args, name) for name in _RUN_FIELDS if hasattr(args, name)}
    layers = getattr(args, "hidden_layer", None)
    if preset is not None:  # flags left at their defaults keep the preset's values
        values = {name: value for name, value in values.items() if name in given}
    if layers:  # the layers replace the one-layer flags, which must not be given
        values = {name: value for name, value in values.items() if name in given or name not in ONE_LAYER_FIELDS}
        one_layer = sorted(set(values) & set(ONE_LAYER_FIELDS))
        if one_layer:
            flag = "--" + one_layer[0].replace("_", "-")
            raise UsageError(f"ttexplore {args.command}: error: {flag}: with --hidden-layer, describe every layer there "
                             f"(e.g. --hidden-layer tt:4x8x8x4:4 --hidden-layer dense:256), not with {flag}")
        values["hidden_layers"] = list(layers)
    if values.get("pad_to") is None:
        values.pop("pad_to", None)  # not given: the dataset's default
    elif str(values["pad_to"]).strip().lower() == "none":
        values["pad_to"] = ""
    values.update(extra)
    if preset is not None:
        if layers:  # new layers replace the preset's whole network
            preset = {key: value for key, value in preset.items() if key not in ONE_LAYER_FIELDS + ("hidden_layers", "layers")}
        values = {**preset, **values}
    dataset = args.dataset if "dataset" in given or preset is None else values.pop("dataset", args.dataset)
    values.pop("dataset", None)
    check_threads(args)
    try:
        config = RunConfig.for_dataset(dataset, **values)
        if getattr(args, "check_memory", False):
            from ttexplore.runs.resources import check_run_memory

            check_run_memory(config)
        return config
    except ConfigError as error:  # also ResourceError, whose field is "memory"
        flag = flag_name(error.field)
        if layers and error.field in ONE_LAYER_FIELDS:  # a one-layer net keeps its --hidden-layer in these fields
            flag = f"--hidden-layer {layers[0]}"
        raise UsageError(f"ttexplore {args.command}: error: {flag}: {error}") from None


def preset_or_usage(command: str, name: "str | None", args: "argparse.Namespace | None" = None) -> "dict[str, Any] | None":
    """The values of preset ``name`` (a CNN sized for the ``--dataset`` and ``--pad-to`` given), ``None`` without
    ``--preset``, or a one-line :class:`UsageError` listing the presets or saying why the images do not fit."""
    if name is None:
        return None
    from ttexplore.runs.presets import preset_values

    given = getattr(args, "given_flags", set()) if args is not None else set()
    dataset = args.dataset if "dataset" in given else None
    pad_to = args.pad_to if "pad_to" in given else "preset"
    try:
        return preset_values(name, dataset, pad_to)
    except ConfigError as error:
        flag = "--preset" if error.field == "preset" else flag_name(error.field)
        raise UsageError(f"ttexplore {command}: error: {flag}: {error}" +
                         (" (see train --list-presets)" if error.field == "preset" else "")) from None


def check_device(command: str, config: RunConfig) -> None:
    """Refuse a ``--device`` this machine does not have, before any data loads (imports torch for
    any device but ``auto`` and ``cpu``).

    Raises:
        UsageError: e.g. ``--device cuda: no CUDA device on this machine: use --device cpu or auto``.
    """
    if config.device in ("auto", "cpu"):
        return
    from ttexplore.nn.device import device_problem

    problem = device_problem(config.device, option="--device ")
    if problem is not None:
        raise UsageError(f"ttexplore {command}: error: --device {config.device}: {problem}")


# ---------------------------------------------------------------- checked before any work
def check_output_path(command: str, flag: str, path: str, folder: bool = False) -> None:
    """Refuse an output path that cannot be written, before any training (one line naming the flag).

    A file path needs an existing folder in which a file can really be created (tried, then
    removed: permission bits say nothing to root or on a read-only mount) and must not be a
    folder; with ``folder`` the path is a folder, created now if missing.
    """
    import tempfile
    from pathlib import Path

    target = Path(path).expanduser()
    if folder:
        if target.exists() and not target.is_dir():
            raise UsageError(f"ttexplore {command}: error: {flag} {path}: is a file, not a folder: give a folder")
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"ttexplore {command}: error: {flag} {path}: cannot create it ({error.strerror}): "
                             "give a writable folder") from None
        parent = target
    else:
        if target.is_dir():
            raise UsageError(f"ttexplore {command}: error: {flag} {path}: is a folder: give a file name inside it")
        parent = target.parent
        if not parent.is_dir():
            raise UsageError(f"ttexplore {command}: error: {flag} {path}: the folder {parent} does not exist: create it first")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".ttexplore-write-test-"):
            pass
    except OSError as error:
        raise UsageError(f"ttexplore {command}: error: {flag} {path}: cannot write in {parent} ({error.strerror}): "
                         "choose a writable place") from None


def open_store(command: str, db: "str | None"):
    """The run store at ``db`` (default ``$TTEXPLORE_DB`` or ``~/.ttexplore/runs.db``), or a one-line
    :class:`UsageError` saying what is wrong with it and how to fix it."""
    from ttexplore.runs.store import RunStore, StoreError

    try:
        return RunStore(db)
    except StoreError as error:
        raise UsageError(f"ttexplore {command}: error: --db: {error}") from None
