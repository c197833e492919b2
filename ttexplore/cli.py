"""``python -m ttexplore <command>``: train, count, suggest (and sweep, bench).

The CLI holds no logic of its own: it parses flags into a
:class:`~ttexplore.config.RunConfig`, calls the library, and prints. A bad
argument prints one line naming it and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any, Optional, Sequence, TextIO

from . import __version__, ttmath
from .config import LAYER_KINDS, OPTIMIZERS, STRATEGIES, ConfigError, RunConfig
from .data_info import DATASETS, DEFAULT_DATASET

__all__ = ["main", "build_parser", "UsageError"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A user error the CLI reports as one line and exit code 2."""


class _Parser(argparse.ArgumentParser):
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
def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that describe a run; each maps to the :class:`RunConfig` field of the same name."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=DEFAULT_DATASET, choices=list(DATASETS),
                      help=f"dataset to train on (default {DEFAULT_DATASET}, bundled, no download)")
    data.add_argument("--data-dir", default=None,
                      help="folder holding downloaded datasets (default $TTEXPLORE_DATA or ~/.ttexplore/data)")
    data.add_argument("--pad-to", default=None,
                      help="zero-pad images to this side ('none' keeps them; default 32 for 28x28 images, as the paper)")
    data.add_argument("--train-limit", type=int, default=None, help="use only the first N training images (quick runs)")
    net = parser.add_argument_group("network: [pad] -> hidden layer -> ReLU -> Linear(hidden, classes)")
    net.add_argument("--layer", default="tt", choices=LAYER_KINDS, help="hidden layer kind (default tt)")
    net.add_argument("--in-modes", default=None,
                     help="TT input modes multiplying to the input features, e.g. 4x8x8x4 (default: balanced 4 modes)")
    net.add_argument("--out-modes", default=None, help="TT output modes, e.g. 4x8x8x4 (default: same as --in-modes)")
    net.add_argument("--ranks", default="4", help="max TT rank: one int, one per core boundary (2,4,2), or 'max' (default 4)")
    net.add_argument("--hidden", type=int, default=None, help="hidden width of a dense/matrix_rank layer without --out-modes")
    net.add_argument("--matrix-rank", type=int, default=4, help="rank of the matrix_rank baseline (default 4)")
    net.add_argument("--init", default="glorot", choices=("glorot", "he", "lecun"), help="hidden layer init (std of the whole W)")
    net.add_argument("--strategy", default="auto", choices=STRATEGIES, help="TT forward contraction (default auto: cheapest)")
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=5, help="passes over the training set (default 5)")
    opt.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
    opt.add_argument("--lr", type=float, default=3e-3, help="learning rate (default 3e-3)")
    opt.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="adam or sgd (default adam)")
    opt.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    opt.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay (default 0)")
    opt.add_argument("--seed", type=int, default=0, help="seed of init and batch order; same seed, same run (default 0)")
    opt.add_argument("--evals-per-epoch", type=int, default=4, help="metric reports per epoch (default 4)")


_RUN_FIELDS = ("pad_to", "train_limit", "layer", "in_modes", "out_modes", "ranks", "hidden", "matrix_rank", "init",
               "strategy", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "seed", "evals_per_epoch")


def config_from_args(args: argparse.Namespace, **extra: Any) -> RunConfig:
    """The :class:`RunConfig` the run flags describe.

    Raises:
        UsageError: naming the flag (``--in-modes``) and the fix.
    """
    values = {name: getattr(args, name) for name in _RUN_FIELDS if hasattr(args, name)}
    if values.get("pad_to") is None:
        values.pop("pad_to", None)  # not given: the dataset's default
    elif str(values["pad_to"]).lower() == "none":
        values["pad_to"] = ""
    values.update(extra)
    try:
        return RunConfig.for_dataset(args.dataset, **values)
    except ConfigError as error:
        raise UsageError(f"ttexplore {args.command}: error: --{error.field.replace('_', '-')}: {error}") from None


# ---------------------------------------------------------------- commands
def _cmd_train(args: argparse.Namespace) -> int:
    """Train one network; print a JSON summary (``--json``) and a progress bar on stderr."""
    config = config_from_args(args, label=args.label or "")
    from .data import DatasetUnavailable, load_dataset

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        dataset = load_dataset(config.dataset, args.data_dir)
    except DatasetUnavailable as error:
        raise UsageError(f"ttexplore train: error: --dataset {config.dataset}: {error}") from None
    from .train import fit

    train_count = config.train_limit or dataset.train_images.shape[0]
    steps = config.epochs * -(-train_count // config.batch_size)
    bar = None if args.quiet else ProgressBar(steps)
    print(f"{config.describe()}: {config.layer_params()} layer weights, compression {config.compression():.3g}", file=sys.stderr)

    store = run_id = None
    if args.record:
        from .store import RunStore

        store = RunStore(args.db)
        run_id = store.create_run(config)
        store.mark_running(run_id)

    def on_event(event: dict[str, Any]) -> None:
        if store is not None:
            store.add_event(run_id, event)
        if bar is not None:
            bar.update(event["step"], f"epoch {event['epoch']:.2f}  loss {event['train_loss']:.4f}  test acc {event['test_accuracy']:.4f}")

    result = fit(config, dataset, callback=on_event)
    if bar is not None:
        bar.close()
    if args.save_model and result.model is not None:
        from .models import save_model

        save_model(result.model, config, args.save_model)
    if store is not None:
        weights = None
        if result.model is not None and result.status == "completed":
            from .models import save_model

            weights = str(save_model(result.model, config, store.weights_path_for(run_id)))
        store.finish(run_id, result.status, error=result.error, weights_path=weights)

    history = [{key: event[key] for key in ("epoch", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "elapsed_s")}
               for event in result.history]
    epoch_times = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip([result.events[0]] + result.history, result.history)] if result.events else []
    summary = {
        "status": result.status,
        "error": result.error,
        "config": config.to_dict(),
        "params": config.layer_params(),
        "dense_params": ttmath.dense_param_count(config.in_features, config.hidden_features),
        "compression": config.compression(),
        "compression_factor": 1.0 / config.compression(),
        "test_accuracy": result.final_test_accuracy,
        "best_test_accuracy": result.best_test_accuracy,
        "elapsed_s": round(result.elapsed_s, 3),
        "seconds_per_epoch": round(sum(epoch_times) / len(epoch_times), 3) if epoch_times else None,
        "history": history,
        "run_id": run_id,
    }
    if args.json:
        text = json.dumps(summary, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
    if result.status == "failed" or result.status == "diverged":
        print(f"train: {result.status}: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    acc = result.final_test_accuracy
    print(f"{result.status}: test accuracy {acc:.4f} after {result.elapsed_s:.1f} s" if acc is not None else result.status, file=sys.stderr)
    return EXIT_OK


def _cmd_count(args: argparse.Namespace) -> int:
    """Print layer weights, compression, max useful ranks and FLOPs without training."""
    config = config_from_args(args)
    from .shapes import format_modes

    lines = {
        "layer": config.describe(),
        "layer weights": config.layer_params(),
        "dense weights": ttmath.dense_param_count(config.in_features, config.hidden_features),
        "compression rate": f"{config.compression():.4g}",
        "compression factor": f"{1 / config.compression():.4g}x",
    }
    if config.layer == "tt":
        plan = ttmath.plan_ranks(config.in_modes, config.out_modes, config.ranks)
        lines["ranks used"] = ",".join(map(str, plan.ranks))
        lines["max useful ranks"] = ",".join(map(str, plan.max_useful))
        if plan.clipped:
            lines["clipped"] = plan.describe_clipping()
        lines["core shapes"] = "  ".join(format_modes(s) for s in ttmath.core_shapes(config.in_modes, config.out_modes, config.ranks))
        from .costmodel import best_strategy, strategy_costs

        costs = strategy_costs(config.in_modes, config.out_modes, plan.ranks, 1)
        chosen = best_strategy(costs)
        lines["auto strategy (batch 1)"] = f"{chosen}: {costs[chosen].get('plan', '')}"
        lines["forward FLOPs (batch 1)"] = costs[chosen]["flops"]
        lines["peak activations (batch 1)"] = f"{costs[chosen]['peak_bytes']:,} bytes"
    lines["dense FLOPs (batch 1)"] = ttmath.dense_flops(config.in_features, config.hidden_features)
    if args.json:
        print(json.dumps(lines, indent=2))
    else:
        width = max(map(len, lines))
        for key, value in lines.items():
            print(f"{key:<{width}}  {value}")
    return EXIT_OK


def _cmd_suggest(args: argparse.Namespace) -> int:
    """List tensorizations of an N -> M layer, fewest TT weights first."""
    from .shapes import suggest_shapes

    try:
        suggestions = suggest_shapes(args.in_features, args.out_features, d=args.d, rank=args.rank, top=args.top)
    except ValueError as error:
        raise UsageError(f"ttexplore suggest: error: {error}") from None
    for suggestion in suggestions:
        print(f"{suggestion.label:<32} {suggestion.params:>10} weights  compression {suggestion.compression:.3g}")
    return EXIT_OK


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The ``ttexplore`` argument parser.

    Args:
        command: the sub-command about to run; a sub-command living in a room of
            its own (``sweep``, ``bench``) gets its flags only when it is the one,
            so ``count`` or ``--help`` never import torch.
    """
    parser = _Parser(prog="ttexplore", description="Explore Tensor-Train (TT) fully-connected layers.")
    parser.add_argument("--version", action="version", version=f"ttexplore {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    train = commands.add_parser("train", help="train one network and report its accuracy",
                                description="Train [pad] -> TT layer -> ReLU -> Linear on a dataset.")
    _add_run_flags(train)
    out = train.add_argument_group("output")
    out.add_argument("--json", metavar="PATH", default=None,
                     help="write a JSON summary (params, compression, test_accuracy, history) to PATH, '-' for stdout")
    out.add_argument("--save-model", metavar="PATH", default=None, help="save the trained model (TTLinear.load reads its cores)")
    out.add_argument("--record", action="store_true", help="also record the run in the run store (shown by the app)")
    out.add_argument("--db", default=None, help="run store file (default $TTEXPLORE_DB or ~/.ttexplore/runs.db)")
    out.add_argument("--label", default=None, help="a label for the run")
    out.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=_cmd_train)

    count = commands.add_parser("count", help="layer weights, compression, ranks and FLOPs of a shape (no training)")
    _add_run_flags(count)
    count.add_argument("--json", action="store_true", help="print JSON")
    count.set_defaults(handler=_cmd_count)

    suggest = commands.add_parser("suggest", help="tensorizations of an N -> M layer, fewest weights first")
    suggest.add_argument("in_features", type=int, help="N, input features")
    suggest.add_argument("out_features", type=int, help="M, output features")
    suggest.add_argument("--d", type=int, default=None, help="number of cores (default: try all)")
    suggest.add_argument("--rank", type=int, default=2, help="max TT rank to price shapes at (default 2)")
    suggest.add_argument("--top", type=int, default=10, help="how many to list (default 10)")
    suggest.set_defaults(handler=_cmd_suggest)

    for name, (module_name, summary) in _ROOM_COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        if command == name:  # import the room only when its command runs (bench needs torch)
            module = importlib.import_module(module_name)
            sub.description = module.__doc__
            module.configure_parser(sub)
            sub.set_defaults(handler=module.run)
    return parser


#: Sub-commands whose logic lives in a room of its own: ``(module, one-line help)``;
#: the module exposes ``configure_parser(parser)`` and ``run(args) -> int``.
_ROOM_COMMANDS: dict[str, tuple[str, str]] = {
    "sweep": ("ttexplore.sweep", "train a grid of shapes x ranks (+ baselines); write results.csv and the seed's figure"),
    "bench": ("ttexplore.bench", "time every TT forward strategy against nn.Linear; write CSV, summary and a plot"),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 the run failed, 2 a bad argument)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((argument for argument in arguments if not argument.startswith("-")), None)
    parser = build_parser(command)
    try:
        args = parser.parse_args(arguments)
        return int(args.handler(args) or 0)
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
