"""``ttexplore compress``: TT-SVD of a trained layer at several ranks, fine-tuned, beside TT nets
trained from scratch (the slides' "in theory" path against their "in practice" one); a trained TT run's
cores are TT-rounded to each lower rank instead (in their own modes).

Everything a user can get wrong is checked before any run: the source (``--run`` or ``--weights``),
the shapes, the ranks, the output path, the store. Each compressed and fine-tuned network is a
recorded run (tags ``compress``), run through :func:`ttexplore.runs.lifecycle.execute`; a second
launch reuses the runs already completed. Ctrl-C ends the current run ``interrupted`` (exit 130).
``--run`` repeated with the seeds of one experiment compresses each and reports each rank's mean, std
and range over the seeds (:func:`ttexplore.experiments.compress.combine_seeds`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

from ttexplore.cli.common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError, check_output_path, check_threads,
                                  open_store)
from ttexplore.runs.data_info import DATASETS, DEFAULT_DATASET
from ttexplore.tt.text import terminal_lines


def _number_list(kind: type, what: str):
    def parse(text: str) -> list:
        try:
            values = [kind(part) for part in text.replace(" ", ",").split(",") if part]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a list of {what}, e.g. {'1,2,4,8' if kind is int else '0.5,0.2'}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"give at least one {what[:-1]}")
        return values
    return parse


def configure_parser(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("what to compress (one of)")
    which = source.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", metavar="ID", action="append",
                       help="a recorded run: its trained hidden layer (a dense one by TT-SVD; a TT one's cores are "
                            "TT-rounded to each lower rank); repeat it with the runs of the other seeds of the same "
                            "experiment for each rank's mean and std over the seeds")
    which.add_argument("--weights", metavar="FILE",
                       help="a weights file: a ttexplore model file, or a state_dict/.pt holding an nn.Linear weight "
                            "(read weights-only, never code)")
    source.add_argument("--weight-key", default=None, help="with --weights: the state_dict key of the hidden weight "
                                                           "(default: the one 2-D tensor with the input's features)")
    source.add_argument("--dataset", default=None, choices=list(DATASETS),
                        help=f"with a bare --weights file: the data it was trained on (default {DEFAULT_DATASET})")
    source.add_argument("--pad-to", default=None, help="with a bare --weights file: image padding (default as train)")
    source.add_argument("--data-dir", default=None, help="folder holding downloaded datasets")
    shape = parser.add_argument_group("the TT layer (of a network: the TT network)")
    shape.add_argument("--hidden-layer", metavar="SPEC", action="append", default=None,
                       help="with --run of a network (a CNN): one layer of the TT network, repeat for each of its layers "
                            "(e.g. conv:32:3, pool:2, ttconv:2x4x4->4x4x4:4:3, ..., tt:8x4x4x9->4x4x4x4:4; ranks are "
                            "set by --ranks); default: its convolutions after the first as ttconv, its FC layers as tt")
    shape.add_argument("--in-modes", default=None, help="TT input modes of W's inputs, e.g. 4x8x8x4 (default: balanced 4 modes)")
    shape.add_argument("--out-modes", default=None, help="TT output modes of W's outputs (default: balanced, as many as --in-modes)")
    ranks = shape.add_mutually_exclusive_group()
    ranks.add_argument("--ranks", type=_number_list(int, "ranks"), default=None,
                       help="max TT ranks to compress to, e.g. 1,2,4,8 (default 1,2,4,8,16; for a TT run the powers "
                            "of 2 below its ranks)")
    ranks.add_argument("--rel-error", type=_number_list(float, "errors"), default=None,
                       help="or target relative errors ||W - W_TT||_F / ||W||_F, e.g. 0.5,0.2: TT-SVD picks the ranks")
    train = parser.add_argument_group("fine-tuning and the from-scratch comparison")
    train.add_argument("--finetune-epochs", type=int, default=0, help="epochs of training after TT-SVD (default 0: none)")
    train.add_argument("--train-scratch", action="store_true",
                       help="also train the TT net of each rank from a random draw when the store has none")
    train.add_argument("--scratch-epochs", type=int, default=None,
                       help="epochs of those from-scratch runs (default: --finetune-epochs, else the source's)")
    train.add_argument("--lr", type=float, default=None, help="learning rate of fine-tuning and from-scratch runs (default: the source's)")
    train.add_argument("--batch-size", type=int, default=None, help="batch size (default: the source's)")
    train.add_argument("--seed", type=int, default=None, help="seed (default: the source's)")
    train.add_argument("--evals-per-epoch", type=int, default=None, help="metric reports per epoch (default: the source's)")
    out = parser.add_argument_group("output")
    out.add_argument("--json", metavar="PATH", default=None, help="write {rows: [...], ...} as JSON to PATH ('-' for stdout)")
    out.add_argument("--out", metavar="DIR", default=None,
                     help="also write compress.json, table.md and the figures (spectra, against rank, against weights) as PNG")
    out.add_argument("--db", default=None, help="run store file (default $TTEXPLORE_DB or ~/.ttexplore/runs.db)")
    out.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    out.add_argument("--quiet", action="store_true", help="no progress lines")


def _fail(flag: str, error: Exception) -> UsageError:
    return UsageError(f"ttexplore compress: error: {flag}: {error}")


def _sources(args: argparse.Namespace, store: Any) -> list[Any]:
    """The networks to compress: one per ``--run`` (the seeds of one experiment), or the ``--weights`` file."""
    from ttexplore.experiments import compress
    from ttexplore.runs.config import ConfigError
    from ttexplore.runs.warmstart import WarmStartError

    if args.run:
        for flag in ("dataset", "pad_to", "weight_key"):
            if getattr(args, flag) is not None:
                raise UsageError(f"ttexplore compress: error: --{flag.replace('_', '-')}: the run's own network says it; "
                                 "give it only with --weights")
        try:
            sources = [compress.source_from_run(store, run_id) for run_id in args.run]
            compress.check_seed_sources([source.base for source in sources])
            return sources
        except (ConfigError, WarmStartError) as error:
            raise _fail("--run", error) from None
    values = {}
    if args.pad_to is not None:
        values["pad_to"] = "" if str(args.pad_to).lower() == "none" else args.pad_to
    try:
        return [compress.source_from_file(args.weights, args.dataset or DEFAULT_DATASET, args.weight_key, **values)]
    except WarmStartError as error:  # the library names the setting by its field; the command line by its flag
        flag = f"--{error.field.replace('_', '-')}" if error.field else "--weights"
        message = str(error).replace("weight_key", "--weight-key")
        raise UsageError(f"ttexplore compress: error: {flag}: {message}") from None
    except ConfigError as error:
        raise _fail(f"--{error.field.replace('_', '-')}", error) from None


def run(args: argparse.Namespace) -> int:
    """Compress, fine-tune, compare; print the table (and ``--json``)."""
    if args.json and args.json != "-":
        check_output_path("compress", "--json", args.json)
    if args.out:
        check_output_path("compress", "--out", args.out, folder=True)
    for flag, least in (("finetune_epochs", 0), ("scratch_epochs", 1)):
        value = getattr(args, flag)
        if value is not None and not least <= value <= 10_000:
            raise UsageError(f"ttexplore compress: error: --{flag.replace('_', '-')}: {value} must be between {least} "
                             "and 10000")
    for value in args.ranks or ():
        if value < 1:
            raise UsageError(f"ttexplore compress: error: --ranks: {value} is below 1: a TT rank is at least 1, "
                             "e.g. --ranks 1,2,4,8")
    for value in args.rel_error or ():
        if not 0 < value < 1:  # also nan
            raise UsageError(f"ttexplore compress: error: --rel-error: {value} must be between 0 and 1 (exclusive), "
                             "e.g. --rel-error 0.5,0.2")
    check_threads(args)
    store = open_store("compress", args.db)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from ttexplore.experiments import compress
    from ttexplore.runs.config import ConfigError

    if args.run and _is_network_run(store, args.run[0]):
        if len(args.run) > 1:
            raise UsageError("ttexplore compress: error: --run: a network run (a CNN) is compressed one run at a time "
                             "(over seeds not yet): give one --run")
        return run_network(args, store)
    if args.hidden_layer:
        raise UsageError("ttexplore compress: error: --hidden-layer: describes the TT network of a network run (a CNN); "
                         "for one layer give --in-modes and --out-modes")
    sources = _sources(args, store)
    source = sources[0]
    from ttexplore.tt.shapes import default_modes, parse_modes

    own = (source.tt.in_modes, source.tt.out_modes) if source.trained is not None else (None, None)
    try:
        in_modes = parse_modes(args.in_modes, "in_modes") if args.in_modes else own[0] or default_modes(source.in_features)
    except ValueError as error:
        raise _fail("--in-modes", error) from None
    try:
        out_modes = (parse_modes(args.out_modes, "out_modes") if args.out_modes
                     else own[1] or default_modes(source.out_features, len(in_modes)))
    except ValueError as error:
        raise _fail("--out-modes", error) from None
    training = {name: getattr(args, name) for name in ("lr", "batch_size", "seed", "evals_per_epoch")
                if getattr(args, name) is not None}
    if len(sources) > 1 and "seed" in training:
        raise UsageError("ttexplore compress: error: --seed: with several --run, each source's runs take its own seed")
    try:
        plans = [compress.plan_compression(each, in_modes, out_modes,
                                           ranks=args.ranks or ([] if args.rel_error else compress.default_ranks(each)),
                                           rel_errors=args.rel_error or [], finetune_epochs=args.finetune_epochs,
                                           scratch_epochs=args.scratch_epochs, **training) for each in sources]
    except ConfigError as error:
        raise _fail(f"--{error.field.replace('_', '-')}", error) from None
    say = (lambda text: None) if args.quiet else (lambda text: print(terminal_lines(text), file=sys.stderr, flush=True))
    from ttexplore.cli.train import interrupt_on_signals, load_data
    from ttexplore.runs.lifecycle import StopFlags

    dataset = load_data(source.base, args.data_dir, "compress")
    stop = StopFlags.new()
    recorded: list[str] = []
    seeds = []
    for each, targets in zip(sources, plans):
        say(f"compress {each.describe()}")
        for line in compress.targets_summary(targets):
            say("  " + line)
        accuracy = compress.source_accuracy(each, dataset)
        with interrupt_on_signals(stop):
            recorded += compress.run_plan(store, targets, dataset=dataset, scratch=args.train_scratch,
                                          interrupt=stop.interrupt,
                                          on_run=lambda run_id, config, what: say(f"{what}: run {run_id}: "
                                                                                  f"{config.describe()}, {config.epochs} epochs"))
        seeds.append({"source": each.label, "seed": each.base.seed, "dense_test_accuracy": accuracy,
                      "rows": [row.to_dict() for row in compress.compress_rows(store, targets)]})
        if stop.interrupt.is_set():
            break
    targets = plans[0]
    report = {
        "source": {"label": source.label, "run": source.init_from.run, "path": source.init_from.path,
                   "sha256": source.init_from.sha256, "has_head": source.has_head, "notes": source.notes,
                   "config": source.base.to_dict()},
        "dataset": source.base.dataset,
        "method": source.method,
        "in_modes": list(targets[0].compressed.layers[0].in_modes),
        "out_modes": list(targets[0].compressed.layers[0].out_modes),
        "dense_params": source.in_features * source.out_features,
        "dense_test_accuracy": seeds[0]["dense_test_accuracy"],
        "finetune_epochs": args.finetune_epochs,
        "rows": seeds[0]["rows"],
        "recorded_runs": recorded,
    }
    if len(sources) > 1:  # the seeds of one experiment: each rank's mean, std and range over them
        from ttexplore.presenters.groups import spread

        dense = spread(seed["dense_test_accuracy"] for seed in seeds)
        report.update({"rows": compress.combine_seeds([seed["rows"] for seed in seeds]), "seeds": seeds,
                       "dense_test_accuracy": dense.mean if dense else None,
                       "dense_test_accuracy_std": dense.std if dense else None})
    if args.json:
        from ttexplore.cli.train import write_json

        write_json(args.json, report)
    if args.json != "-":
        print(table_text(report))
    if args.out:
        say("wrote " + ", ".join(str(path) for path in write_outputs(report, source, targets, args.out)))
    return _ending(store, recorded)


def write_outputs(report: dict[str, Any], source: Any, targets: list, out: str) -> list[Any]:
    """``compress.json``, ``table.md``, ``spectra.png``, ``compress_vs_rank.png`` and ``compress_vs_weights.png``
    in ``out`` (the PNGs need Chromium; without it they are skipped with a note)."""
    from ttexplore.tt import ttmath
    from ttexplore.experiments import compress
    from ttexplore.presenters import compress as views

    def figures() -> dict[str, Any]:
        in_modes, out_modes = targets[0].compressed.layers[0].in_modes, targets[0].compressed.layers[0].out_modes
        spectra = compress.source_spectra(source, in_modes, out_modes)
        return {
            "spectra.png": views.spectra_figure(spectra, 0.5, ttmath.ranks_for_error(spectra, 0.5)),
            "compress_vs_rank.png": views.compress_figure(report["rows"], "rank", report["dense_params"],
                                                          report["dense_test_accuracy"], method=report["method"]),
            "compress_vs_weights.png": views.compress_figure(report["rows"], "params", report["dense_params"],
                                                             report["dense_test_accuracy"], method=report["method"]),
        }

    return _write_report_files(out, report, views.compress_markdown(report["rows"], report["dense_test_accuracy"],
                                                                    report["method"], report.get("dense_test_accuracy_std")),
                               figures)


def _write_report_files(out: str, report: dict[str, Any], table: str, figures: Any) -> list[Any]:
    """``compress.json`` and ``table.md`` (``table``) in ``out``, then each figure ``figures()`` draws as a PNG
    (skipped with a note when Chromium cannot render them). Returns the paths written."""
    import json
    from pathlib import Path

    from ttexplore.presenters.export import ExportError, write_figure
    from ttexplore.tt.atomic import write_atomic

    folder = Path(out).expanduser()
    written = [write_atomic(folder / "compress.json", json.dumps(report, indent=2) + "\n", make_folder=True),
               write_atomic(folder / "table.md", table)]
    try:
        for name, figure in figures().items():
            written.append(write_figure(figure, folder / name, width=1000, height=440))
    except ExportError as error:
        print(f"compress: the PNG figures were not written: {error}", file=sys.stderr)
    return written


def table_text(report: dict[str, Any]) -> str:
    """The compress table as aligned text."""
    def fmt(value: Optional[float], std: Optional[float] = None) -> str:
        return "-" if value is None else f"{value:.4f}" + (f"±{std:.4f}" if std is not None else "")

    shape = "x".join(map(str, report["in_modes"])) + " -> " + "x".join(map(str, report["out_modes"]))
    rounding = report.get("method") == "tt-round"
    source = "the trained TT net" if rounding else f"dense layer {report['dense_params']:,} weights,"
    lines = [f"{shape} on {report['dataset']}: {source} test accuracy "
             f"{fmt(report['dense_test_accuracy'], report.get('dense_test_accuracy_std'))}"
             + (f" (mean ± std over {len(report['seeds'])} seeds)" if report.get("seeds") else ""),
             f"{'rank':>6} {'ranks':>14} {'weights':>9} {'compr.':>8} {'rel_error':>9} {'rounded' if rounding else 'TT-SVD':>7} "
             f"{'+tuned':>7} {'scratch':>7}"]
    for row in report["rows"]:
        rank = str(row["rank"]) if row["rank"] is not None else f"e{row['rel_error_target']:g}"
        accuracies = " ".join(f"{fmt(row[key], row.get(f'{key}_std')):>7}"
                              for key in ("test_accuracy", "finetuned_test_accuracy", "scratch_test_accuracy"))
        lines.append(f"{rank:>6} {','.join(map(str, row['ranks'])):>14} {row['params']:>9,} {row['compression']:>8.2e} "
                     f"{row['rel_error']:>9.4f} {accuracies}")
    return "\n".join(lines)


# ---------------------------------------------------------------- a network (a dense CNN)
def _is_network_run(store: Any, run_id: str) -> bool:
    """Whether run ``run_id`` holds a network of several layers (compressed layer by layer); ``False`` for an
    unknown or unreadable run (the one-layer path then says what is wrong)."""
    from ttexplore.experiments.netcompress import is_network
    from ttexplore.runs.config import ConfigError, RunConfig

    run = store.get_run(run_id)
    try:
        return run is not None and is_network(RunConfig.from_dict(run["config"]))
    except (ConfigError, ValueError, TypeError, KeyError):
        return False


def run_network(args: argparse.Namespace, store: Any) -> int:
    """``compress --run ID`` of a network: TT-SVD of each layer the TT network puts in TT format, per rank."""
    from ttexplore.cli.train import interrupt_on_signals, load_data, write_json
    from ttexplore.experiments import compress, netcompress
    from ttexplore.runs.config import ConfigError
    from ttexplore.runs.lifecycle import StopFlags
    from ttexplore.runs.warmstart import WarmStartError

    for flag in ("dataset", "pad_to", "weight_key", "in_modes", "out_modes", "rel_error"):
        if getattr(args, flag) is not None:
            raise UsageError(f"ttexplore compress: error: --{flag.replace('_', '-')}: run {args.run[0]} is a network of "
                             f"several layers: its TT network is given by --hidden-layer (or proposed), its ranks by --ranks")
    try:
        source = netcompress.network_source_from_run(store, args.run[0])
    except (ConfigError, WarmStartError) as error:
        raise _fail("--run", error) from None
    try:
        target = netcompress.target_network(source, args.hidden_layer)
    except ConfigError as error:
        raise _fail("--hidden-layer", error) from None
    training = {name: getattr(args, name) for name in ("lr", "batch_size", "seed", "evals_per_epoch")
                if getattr(args, name) is not None}
    try:
        targets = netcompress.plan_network_compression(source, target, args.ranks or [1, 2, 4, 8], args.finetune_epochs,
                                                       args.scratch_epochs, **training)
    except ConfigError as error:
        raise _fail(f"--{error.field.replace('_', '-')}" if error.field != "layers" else "--hidden-layer", error) from None
    say = (lambda text: None) if args.quiet else (lambda text: print(terminal_lines(text), file=sys.stderr, flush=True))
    say(f"compress {source.describe()} into {'; '.join(layer.text() for layer in target)}")
    for item in targets:
        say(f"  r={item.rank}: {item.compressed.net_params():,} parameters, TT-SVD errors "
            f"{', '.join(f'{error:.3g}' for error in item.layer_errors)}")
    dataset = load_data(source.base, args.data_dir, "compress")
    dense_accuracy = compress.source_accuracy(source, dataset)
    stop = StopFlags.new()
    with interrupt_on_signals(stop):
        recorded = compress.run_plan(store, targets, dataset=dataset, scratch=args.train_scratch, interrupt=stop.interrupt,
                                     on_run=lambda run_id, config, what: say(f"{what}: run {run_id}: {config.describe()}, "
                                                                             f"{config.epochs} epochs"))
    rows = compress.compress_rows(store, targets)
    report = {
        "source": {"label": source.label, "run": source.init_from.run, "path": source.init_from.path,
                   "sha256": source.init_from.sha256, "config": source.base.to_dict()},
        "dataset": source.base.dataset, "network": True, "layers": [layer.text() for layer in target],
        "dense_params": source.base.dense_layer_params(), "dense_net_params": source.base.dense_net_params(),
        "dense_test_accuracy": dense_accuracy, "finetune_epochs": args.finetune_epochs,
        "rows": [row.to_dict() for row in rows], "recorded_runs": recorded,
        "spectra": [layer.to_dict() for layer in netcompress.network_spectra(source, target)],
    }
    if args.json:
        write_json(args.json, report)
    if args.json != "-":
        print(network_table_text(report))
    if args.out:
        say("wrote " + ", ".join(str(path) for path in write_network_outputs(report, args.out)))
    return _ending(store, recorded)


def _ending(store: Any, recorded: list[str]) -> int:
    """The exit code once the runs ran: interrupted (130), a failed or diverged run (1), or 0."""
    statuses = [store.get_run(run_id)["status"] for run_id in recorded]
    if "interrupted" in statuses or "cancelled" in statuses:
        print("compress: interrupted; run the same command again to continue (completed runs are reused, "
              f"the interrupted one resumes with 'python -m ttexplore runs resume {recorded[-1]}')", file=sys.stderr)
        return EXIT_INTERRUPTED
    if any(status in ("failed", "diverged") for status in statuses):
        failed = store.get_run(recorded[-1])
        print(terminal_lines(f"compress: run {recorded[-1]} {failed['status']}: {failed.get('error')}"), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def network_table_text(report: dict[str, Any]) -> str:
    """The network compress table as aligned text: whole-network parameters and each path's accuracy per rank."""
    def fmt(value: Optional[float]) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = [f"TT network (at each rank below): {'; '.join(report['layers'])} on {report['dataset']}",
             f"dense network {report['dense_net_params']:,} parameters, test accuracy {fmt(report['dense_test_accuracy'])}",
             f"{'rank':>5} {'parameters':>11} {'smaller':>8} {'max error':>9} {'TT-SVD':>7} {'+tuned':>7} {'scratch':>7}"]
    for row in report["rows"]:
        lines.append(f"{row['rank']:>5} {row['net_params']:>11,} {row['dense_net_params'] / row['net_params']:>7.1f}x "
                     f"{row['rel_error']:>9.4f} {fmt(row['test_accuracy']):>7} {fmt(row['finetuned_test_accuracy']):>7} "
                     f"{fmt(row['scratch_test_accuracy']):>7}")
    return "\n".join(lines)


def write_network_outputs(report: dict[str, Any], out: str) -> list[Any]:
    """``compress.json``, ``table.md``, ``spectra_layer<k>.png`` (one per compressed layer) and
    ``compress_vs_rank.png`` / ``compress_vs_weights.png`` in ``out`` (PNGs skipped with a note without Chromium)."""
    from ttexplore.presenters import compress as views

    def figures() -> dict[str, Any]:
        drawn = {f"spectra_layer{layer['index']}.png": views.spectra_figure(
            layer["spectra"], title=f"Hidden layer {layer['index']}, {layer['source_label']} as {layer['target_label']}: "
                                    "singular values of its TT unfoldings") for layer in report["spectra"]}
        drawn["compress_vs_rank.png"] = views.compress_figure(report["rows"], "rank", report["dense_params"],
                                                              report["dense_test_accuracy"])
        drawn["compress_vs_weights.png"] = views.compress_figure(report["rows"], "params", report["dense_params"],
                                                                 report["dense_test_accuracy"])
        return drawn

    return _write_report_files(out, report, views.compress_markdown(report["rows"], report["dense_test_accuracy"]), figures)
