"""``ttexplore train``: train one network, print a summary, optionally record it.

Everything a user can get wrong is checked before any data loads (each a
one-line error and exit 2): the run flags, the output paths (``--json``,
``--save-model``), the thread count, the run store. A recorded run (``--record``)
goes through :func:`ttexplore.runs.lifecycle.execute`: checkpoints after every
epoch, its weights saved, and Ctrl-C or SIGTERM end it ``interrupted`` (exit
130) so ``python -m ttexplore runs resume ID`` continues it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from typing import Any, Iterator, Optional

from ttexplore.cli.common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ProgressBar, UsageError, add_run_flags,
                                  check_device, check_output_path, config_from_args, open_store, preset_or_usage)
from ttexplore.tt.atomic import write_atomic
from ttexplore.tt.text import terminal_lines, terminal_text
from ttexplore.runs.config import RunConfig

_SUMMARY_KEYS = ("epoch", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "elapsed_s")
_VALIDATION_KEYS = ("val_loss", "val_accuracy")


def add_identity_flags(parser: argparse.ArgumentParser) -> None:
    """``--name``, ``--tag`` (repeatable), ``--notes``: how a recorded run is found again."""
    parser.add_argument("--name", default="", help="a name for the recorded run (shown by the app and 'runs list')")
    parser.add_argument("--tag", action="append", default=[], help="a tag for the recorded run; repeat for several")
    parser.add_argument("--notes", default="", help="free notes for the recorded run")


def check_identity_flags(command: str, args: argparse.Namespace) -> None:
    """Refuse an empty ``--tag`` and a name, tag or notes over their bounds, before any work.

    Raises:
        UsageError: naming the flag and the fix.
    """
    from ttexplore.runs.config import ConfigError
    from ttexplore.runs.fields import check_identity

    if any(not tag.strip() for tag in args.tag):
        raise UsageError(f"ttexplore {command}: error: --tag '': a tag cannot be empty: leave the flag out")
    try:
        check_identity(args.name, args.tag, args.notes)
    except ConfigError as error:
        raise UsageError(f"ttexplore {command}: error: --{'tag' if error.field == 'tags' else error.field}: {error}") from None


def configure_parser(train: argparse.ArgumentParser) -> None:
    """The flags of ``train``: the run flags and where the results go."""
    add_run_flags(train)
    presets = train.add_argument_group("presets")
    presets.add_argument("--preset", default=None, help="a named network (see --list-presets); the flags given change it")
    presets.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    out = train.add_argument_group("output")
    out.add_argument("--json", metavar="PATH", default=None,
                     help="write a JSON summary (params, compression, test_accuracy, history) to PATH, '-' for stdout")
    out.add_argument("--save-model", metavar="PATH", default=None, help="save the trained model (TTLinear.load reads its cores)")
    out.add_argument("--record", action="store_true",
                     help="record the run in the run store (shown by the app; checkpointed, resumable)")
    out.add_argument("--db", default=None, help="run store file (default $TTEXPLORE_DB or ~/.ttexplore/runs.db)")
    out.add_argument("--label", default=None, help="a label for the run")
    add_identity_flags(out)
    out.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    out.add_argument("--quiet", action="store_true", help="no progress bar")


@contextlib.contextmanager
def interrupt_on_signals(stop: Any) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set ``stop.interrupt`` (the run ends before its next batch,
    ``interrupted``); a second signal raises :class:`KeyboardInterrupt` at once."""

    def handle(signum: int, _frame: Any) -> None:
        if stop.interrupt.is_set():
            raise KeyboardInterrupt
        stop.interrupt.set()
        print(f"\n{signal.Signals(signum).name}: stopping after this batch (again to stop at once)", file=sys.stderr)

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def load_data(config: RunConfig, data_dir: Optional[str], command: str) -> Any:
    """The run's dataset, or a one-line :class:`UsageError` naming ``--dataset`` and how to get it."""
    from ttexplore.runs.data import DatasetUnavailable, load_dataset

    try:
        return load_dataset(config.dataset, data_dir)
    except DatasetUnavailable as error:
        raise UsageError(f"ttexplore {command}: error: --dataset {config.dataset}: {error}") from None


def progress_bar(config: RunConfig, dataset: Any, quiet: bool) -> Optional[ProgressBar]:
    if quiet:
        return None
    train_count = min(config.train_limit or dataset.train_images.shape[0], dataset.train_images.shape[0])
    return ProgressBar(config.epochs * -(-train_count // config.batch_size))


def show_event(bar: Optional[ProgressBar], event: dict[str, Any]) -> None:
    if bar is not None:
        bar.update(event["step"], f"epoch {event['epoch']:.2f}  loss {event['train_loss']:.4f}  test acc {event['test_accuracy']:.4f}")


def ending_line(command: str, status: str, run_id: Optional[str], result: Any) -> tuple[int, str]:
    """The exit code and the last line printed for a run that ended ``status``."""
    if status in ("failed", "diverged"):
        return EXIT_FAILED, f"{command}: {status}: {result.error}"
    if status == "interrupted":
        where = f"; run {run_id} kept its last checkpoint: python -m ttexplore runs resume {run_id}" if run_id else ""
        return EXIT_INTERRUPTED, f"{command}: interrupted{where}"
    accuracy = result.final_test_accuracy
    text = f"{status}: test accuracy {accuracy:.4f} after {result.elapsed_s:.1f} s" if accuracy is not None else status
    validation = getattr(result, "validation", None)
    if validation:
        stopped = validation["stopped_early_at"]
        text += (f"{f'; stopped early at epoch {stopped}' if stopped else ''}; best validation epoch "
                 f"{validation['best_val_epoch']}: test accuracy {validation['test_accuracy_at_best_val']:.4f}")
    return EXIT_OK, text


def run(args: argparse.Namespace) -> int:
    """Train one network; print a JSON summary (``--json``) and a progress bar on stderr."""
    if args.list_presets:
        return list_presets()
    config = config_from_args(args, preset=preset_or_usage("train", args.preset, args), label=args.label or "")
    check_identity_flags("train", args)
    check_device("train", config)
    for flag, path in (("--json", args.json), ("--save-model", args.save_model)):
        if path and path != "-":
            check_output_path("train", flag, path)
    store = open_store("train", args.db) if args.record else None
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    dataset = load_data(config, args.data_dir, "train")
    from ttexplore.runs.fit import fit
    from ttexplore.runs.lifecycle import StopFlags, execute

    bar = progress_bar(config, dataset, args.quiet)
    print(terminal_text(f"{config.describe()}: {config.layer_params()} layer weights, compression "
                        f"{config.compression():.3g}", None), file=sys.stderr)
    run_id = None
    if store is not None:
        run_id = store.create_run(config, status="running", name=args.name, tags=args.tag, notes=args.notes)
    stop = StopFlags.new(store, run_id)
    with interrupt_on_signals(stop):
        try:
            if store is not None:
                result = execute(store, run_id, stop=stop, dataset=dataset, config=config,
                                 on_event=lambda event: show_event(bar, event))
                status = store.get_run(run_id)["status"]
            else:
                result = fit(config, dataset, callback=lambda event: show_event(bar, event), cancel=stop)
                status = "interrupted" if stop.interrupt.is_set() and result.status == "cancelled" else result.status
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            code, line = ending_line("train", "interrupted", run_id, None)
            print(line, file=sys.stderr)
            return code
    if bar is not None:
        bar.close()
    if args.save_model and result.model is not None:
        from ttexplore.runs.models import save_model

        try:
            save_model(result.model, config, args.save_model)
        except OSError as error:
            print(terminal_lines(f"train: error: --save-model: {error}" +
                                 (f" (the run is recorded as {run_id}, its weights kept)" if run_id else "")),
                  file=sys.stderr)
            return EXIT_FAILED
    if args.json:
        try:
            write_json(args.json, summary(config, result, status, run_id))
        except OSError as error:
            print(terminal_lines(f"train: error: --json: {error}" + (f" (the run is recorded as {run_id})" if run_id else "")),
                  file=sys.stderr)
            return EXIT_FAILED
    code, line = ending_line("train", status, run_id, result)
    print(terminal_lines(line), file=sys.stderr)
    return code


def list_presets() -> int:
    """Print each preset's name, description and network."""
    from ttexplore.runs.presets import RUN_PRESETS, run_preset

    for name, preset in RUN_PRESETS.items():
        config = run_preset(name)
        print(f"{name}: {preset['description']}\n    {config.describe()}; widths "
              f"{' -> '.join(f'{width:,}' for width in config.layer_widths)}; {config.layer_params():,} layer weights "
              f"(dense: {config.dense_layer_params():,}); the whole network {config.net_params():,} parameters "
              f"(dense: {config.dense_net_params():,}, {config.dense_net_params() / config.net_params():.3g}x)")
    return EXIT_OK


def final_network(config: RunConfig, ranks: list) -> RunConfig:
    """``config``'s network at the ranks a rank schedule left (``ranks``: per hidden layer, empty for a layer
    without TT cores), its schedule done; ``config`` itself when nothing was rounded."""
    layers = [layer.with_ranks(tuple(used)) if layer.has_tt_cores and used and tuple(used) != tuple(
        layer.ranks_used(shape)) else layer for layer, used, shape in zip(config.layers, ranks, config.layer_shapes)]
    if layers == list(config.layers):
        return config
    return config.replace(layers=layers, round_to=None)


def summary(config: RunConfig, result: Any, status: str, run_id: Optional[str]) -> dict[str, Any]:
    """The ``--json`` summary of a run: ``params`` and ``dense_params`` are the hidden layers' weights without
    biases (the 2018 figures' x axis, as always), ``net_params`` and ``dense_net_params`` every parameter of
    the network and of its dense twin, ``layers`` one row per layer and the head
    (:func:`~ttexplore.runs.network.network_summary`), all of the network in use at the end: after the
    roundings of a rank schedule (listed in ``roundings``; ``ranks`` per hidden layer, ``start_params``); with a
    validation split, the best validation epoch and the test accuracy there."""
    from ttexplore.runs.network import network_summary
    from ttexplore.runs.schedule import network_at_end, rounding_changes

    history = [{key: event[key] for key in _SUMMARY_KEYS + _VALIDATION_KEYS if key in event} for event in result.history]
    final = network_at_end(config.layers, config.input_shape, result.events)
    validation = getattr(result, "validation", None) or {}
    starts = ([result.events[0]] + result.history) if result.events else []
    epoch_times = [later["elapsed_s"] - earlier["elapsed_s"] for earlier, later in zip(starts, result.history)]
    return {
        "status": status,
        "error": result.error,
        "config": config.to_dict(),
        **network_summary(final_network(config, final["ranks"])),  # params, dense_params, net_params, ..., layers
        "ranks": final["ranks"],
        "layer_widths": config.layer_widths,
        "compression": final["params"] / config.dense_layer_params(),
        "compression_factor": config.dense_layer_params() / final["params"],
        "start_params": config.layer_params(),
        "roundings": rounding_changes(result.events),
        "test_accuracy": result.final_test_accuracy,
        "best_test_accuracy": result.best_test_accuracy,  # the best point on the test set: selected on test, optimistic
        # with --val-split: the epoch of the lowest validation loss, its validation and test accuracy
        "val_accuracy": validation.get("val_accuracy"),
        "best_val_epoch": validation.get("best_val_epoch"),
        "test_accuracy_at_best_val": validation.get("test_accuracy_at_best_val"),
        "stopped_early_at": validation.get("stopped_early_at"),
        "elapsed_s": round(result.elapsed_s, 3),
        "seconds_per_epoch": round(sum(epoch_times) / len(epoch_times), 3) if epoch_times else None,
        "device": getattr(result, "extra", {}).get("device"),
        "history": history,
        "run_id": run_id,
    }


def write_json(path: str, values: Any) -> None:
    """``values`` as indented JSON to ``path`` (``-``: stdout), written whole or not at all.

    Raises:
        WriteError: one line naming the file and the fix (the old file kept, no temporary left).
    """
    text = json.dumps(values, indent=2)
    if path == "-":
        print(text)
    else:
        write_atomic(path, text + "\n")
