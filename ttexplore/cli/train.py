"""``ttexplore train``: train one network, print a summary, optionally record it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ttexplore.cli.common import EXIT_FAILED, EXIT_OK, ProgressBar, UsageError, add_run_flags, config_from_args
from ttexplore.core import ttmath


def configure_parser(train: argparse.ArgumentParser) -> None:
    """The flags of ``train``: the run flags and where the results go."""
    add_run_flags(train)
    out = train.add_argument_group("output")
    out.add_argument("--json", metavar="PATH", default=None,
                     help="write a JSON summary (params, compression, test_accuracy, history) to PATH, '-' for stdout")
    out.add_argument("--save-model", metavar="PATH", default=None, help="save the trained model (TTLinear.load reads its cores)")
    out.add_argument("--record", action="store_true", help="also record the run in the run store (shown by the app)")
    out.add_argument("--db", default=None, help="run store file (default $TTEXPLORE_DB or ~/.ttexplore/runs.db)")
    out.add_argument("--label", default=None, help="a label for the run")
    out.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    out.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Train one network; print a JSON summary (``--json``) and a progress bar on stderr."""
    config = config_from_args(args, label=args.label or "")
    from ttexplore.runs.data import DatasetUnavailable, load_dataset

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        dataset = load_dataset(config.dataset, args.data_dir)
    except DatasetUnavailable as error:
        raise UsageError(f"ttexplore train: error: --dataset {config.dataset}: {error}") from None
    from ttexplore.runs.fit import fit

    train_count = config.train_limit or dataset.train_images.shape[0]
    steps = config.epochs * -(-train_count // config.batch_size)
    bar = None if args.quiet else ProgressBar(steps)
    print(f"{config.describe()}: {config.layer_params()} layer weights, compression {config.compression():.3g}", file=sys.stderr)

    store = run_id = None
    if args.record:
        from ttexplore.runs.store import RunStore

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
        from ttexplore.runs.models import save_model

        save_model(result.model, config, args.save_model)
    if store is not None:
        weights = None
        if result.model is not None and result.status == "completed":
            from ttexplore.runs.models import save_model

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
