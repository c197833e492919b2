"""``ttexplore runs``: the recorded runs: list, show, resume, edit, delete, export.

``list --json`` prints an array of objects with ``id``, ``name``, ``status``,
``tags``, ``notes``, ``epochs_done``, ``test_accuracy`` (the latest),
``best_test_accuracy``, ``params`` (hidden-layer weights in use: after a rank
schedule's roundings, those of the rounded network), ``config`` and a few
more; ``show ID --json`` adds ``history``, the metric events (each with
``epoch``), ``ranks`` (in use, per hidden layer) and ``roundings``. ``resume ID`` continues an interrupted run in this terminal from its
last checkpoint (Ctrl-C interrupts it again, exit 130). ``export --out FILE.zip [ID...]``
writes one zip with the runs table, each run's metrics, figures and weights (every run
when no id is given; see :mod:`ttexplore.presenters.bundle`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ttexplore.cli.common import EXIT_OK, UsageError, check_output_path, open_store
from ttexplore.cli.train import (add_identity_flags, ending_line, interrupt_on_signals, load_data, progress_bar,
                                 show_event, write_json)
from ttexplore.runs.store import ACTIVE_STATUSES, FINAL_STATUSES
from ttexplore.tt.atomic import WriteError
from ttexplore.tt.text import terminal_lines, terminal_text

#: Characters of a run's name (or label) and of its tags in ``runs list``; longer ones end in an ellipsis.
TITLE_WIDTH = 60

STATUSES = ACTIVE_STATUSES + FINAL_STATUSES

_EVENT_KEYS = ("kind", "epoch", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "elapsed_s",
               "val_loss", "val_accuracy")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, help="run store file (default $TTEXPLORE_DB or ~/.ttexplore/runs.db)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    listing = actions.add_parser("list", help="every recorded run, newest first")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.add_argument("--status", action="append", default=None, choices=STATUSES, metavar="STATUS",
                         help=f"only runs with this status (repeatable): {', '.join(STATUSES)}")
    listing.add_argument("--tag", default=None, help="only runs with this tag")
    show = actions.add_parser("show", help="one run: its config, results and history")
    show.add_argument("id", help="the run id (as 'runs list' prints it)")
    show.add_argument("--json", action="store_true", help="print JSON (with the metric history)")
    resume = actions.add_parser("resume", help="continue an interrupted run from its last checkpoint, here")
    resume.add_argument("id", help="the run id")
    resume.add_argument("--data-dir", default=None, help="folder holding downloaded datasets")
    resume.add_argument("--quiet", action="store_true", help="no progress bar")
    edit = actions.add_parser("edit", help="change a run's name, tags or notes")
    edit.add_argument("id", help="the run id")
    add_identity_flags(edit)
    edit.set_defaults(name=None, notes=None)  # not given: kept; given empty (--name ''): cleared
    edit.add_argument("--clear-tags", action="store_true", help="remove every tag first (then --tag adds the ones to keep)")
    delete = actions.add_parser("delete", help="delete runs with their metrics, weights and checkpoints")
    delete.add_argument("ids", nargs="+", help="run ids")
    export = actions.add_parser("export", help="one zip: runs table, each run's metrics as CSV, figures, weights")
    export.add_argument("ids", nargs="*", metavar="ID", help="run ids (default: every run)")
    export.add_argument("--out", required=True, metavar="FILE.zip", help="the zip file to write")
    export.add_argument("--tag", default=None, help="only runs with this tag")
    export.add_argument("--no-png", action="store_true", help="figures as HTML only (no kaleido/Chromium)")
    for action in (listing, show, resume, edit, delete, export):  # --db also after the action: 'runs list --db FILE'
        action.add_argument("--db", default=argparse.SUPPRESS, help="run store file (as before the action)")


def run_row(run: dict[str, Any]) -> dict[str, Any]:
    """The ``list --json`` object of one run."""
    return {
        "id": run["id"],
        "name": run.get("name", ""),
        "status": run["status"],
        "tags": run.get("tags", []),
        "notes": run.get("notes", ""),
        "epochs_done": run.get("epochs_done", 0),
        "test_accuracy": run.get("final_test_accuracy"),
        "best_test_accuracy": run.get("best_test_accuracy"),  # selected on the test set: optimistic
        "val_accuracy": run.get("best_val_accuracy"),  # with a validation split: at its best epoch (lowest val loss)
        "best_val_epoch": run.get("best_val_epoch"),
        "test_accuracy_at_best_val": run.get("test_accuracy_at_best_val"),
        "params": run.get("layer_params"),
        "compression": run.get("compression"),
        "dataset": run.get("dataset"),
        "layer": run.get("layer"),
        "shape": run.get("shape"),
        "sweep": run.get("sweep"),
        "label": run.get("label", ""),
        "error": run.get("error"),
        "created_at": run.get("created_at"),
        "config": run["config"],
    }


def _find(store: Any, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise UsageError(f"ttexplore runs: error: no run {run_id!r} in {store.path}: see 'python -m ttexplore runs list'")
    return run


def _list(store: Any, args: argparse.Namespace) -> int:
    runs = store.list_runs(status=args.status)
    if args.tag:
        runs = [run for run in runs if args.tag in run.get("tags", [])]
    rows = [run_row(run) for run in runs]
    if args.json:
        write_json("-", rows)
        return EXIT_OK
    if not rows:
        print(f"no runs in {terminal_text(store.path, None)}")
        return EXIT_OK
    print(f"{'id':<22} {'status':<11} {'epochs':>6} {'test acc':>8} {'params':>9}  name / run")
    for run, row in zip(runs, rows):
        accuracy = f"{row['test_accuracy']:.4f}" if row["test_accuracy"] is not None else "-"
        from ttexplore.presenters.reports import run_label

        title = terminal_text(row["name"] or run_label(run, with_id=False), TITLE_WIDTH)  # user text, made inert
        tags = f"  [{terminal_text(', '.join(row['tags']), TITLE_WIDTH)}]" if row["tags"] else ""
        print(f"{row['id']:<22} {row['status']:<11} {row['epochs_done']:>6g} {accuracy:>8} {row['params']:>9}  {title}{tags}")
    return EXIT_OK


def _show(store: Any, args: argparse.Namespace) -> int:
    from ttexplore.presenters.reports import run_network
    from ttexplore.runs.schedule import network_at_end, rounding_changes

    run = _find(store, args.id)
    details = run_row(run)
    events = store.metrics(run["id"])
    details["history"] = [{key: event[key] for key in _EVENT_KEYS} for event in events]
    layers, in_shape = run_network(run)
    if layers is not None and in_shape is not None:  # the network in use now (after any rounding)
        final = network_at_end(layers, in_shape, events)
        details["params"], details["ranks"] = final["params"], final["ranks"]
    details["roundings"] = rounding_changes(events)
    details["weights_path"] = str(store.artifact_path(run.get("weights_path")) or "") or None
    best = store.best_weights_path_for(run["id"])
    details["best_weights_path"] = str(best) if best.is_file() else None
    details["checkpoint"] = str(store.checkpoint_path_for(run["id"])) if store.checkpoint_path_for(run["id"]).is_file() else None
    if args.json:
        write_json("-", details)
        return EXIT_OK
    for key in ("id", "name", "status", "tags", "notes", "dataset", "layer", "shape", "params", "epochs_done",
                "test_accuracy", "best_test_accuracy", "best_val_epoch", "val_accuracy", "test_accuracy_at_best_val",
                "sweep", "error", "weights_path", "best_weights_path", "checkpoint"):
        if details.get(key) not in (None, "", []):
            value = ", ".join(details[key]) if key == "tags" else details[key]
            print(f"{key:<19} {terminal_text(value, None)}")  # names, notes, paths: user text, made inert
    print(f"{'config':<19} {details['config']}")
    for event in details["history"]:
        if event["kind"] == "epoch":
            print(f"  epoch {event['epoch']:>6.2f}  train loss {event['train_loss']:.4f}  test acc {event['test_accuracy']:.4f}")
    for change in details["roundings"]:
        print(f"  rounded after epoch {change['epoch']:g}: {change['layer']} ranks {change['ranks_before']} -> "
              f"{change['ranks_after']}, {change['params_before']:,} -> {change['params_after']:,} weights, "
              f"error {change['rel_error']:.3g}, test acc {change['test_accuracy']:.4f}")
    return EXIT_OK


def _resume(store: Any, args: argparse.Namespace) -> int:
    from ttexplore.runs.config import RunConfig
    from ttexplore.runs.lifecycle import ResumeError, StopFlags, check_resumable, execute, resume_point

    try:
        run = check_resumable(store, args.id)
    except ResumeError as error:
        raise UsageError(f"ttexplore runs resume: error: {error}") from None
    config = RunConfig.from_dict(run["config"])
    dataset = load_data(config, args.data_dir, "runs resume")
    if not store.take_for_resume(run["id"]):
        raise UsageError(f"ttexplore runs resume: error: run {run['id']} was taken by another process meanwhile")
    bar = progress_bar(config, dataset, args.quiet)
    stop = StopFlags.new(store, run["id"])
    print(terminal_text(f"resuming {run['id']} ({config.describe()}) {resume_point(store, run)}", None), file=sys.stderr)
    with interrupt_on_signals(stop):
        try:
            result = execute(store, run["id"], stop=stop, dataset=dataset, claimed=True, config=config,
                             on_event=lambda event: show_event(bar, event))
        except KeyboardInterrupt:
            result = None
    if bar is not None:
        bar.close()
    status = store.get_run(run["id"])["status"]
    code, line = ending_line("runs resume", status, run["id"], result)
    print(terminal_lines(line), file=sys.stderr)
    return code


def _edit(store: Any, args: argparse.Namespace) -> int:
    """``--name ''`` and ``--notes ''`` clear the name and the notes; tags are added by ``--tag`` and all
    removed by ``--clear-tags`` (an empty ``--tag ''`` is refused: it names no tag)."""
    from ttexplore.runs.config import ConfigError

    run = _find(store, args.id)
    if any(not tag.strip() for tag in args.tag):
        raise UsageError("ttexplore runs edit: error: --tag '': a tag cannot be empty; to remove tags use --clear-tags "
                         "(with --tag for the ones to keep)")
    tags = None
    if args.tag or args.clear_tags:
        tags = ([] if args.clear_tags else list(run.get("tags", []))) + list(args.tag)
    try:
        store.update_identity(run["id"], name=args.name, tags=tags, notes=args.notes)
    except ConfigError as error:
        raise UsageError(f"ttexplore runs edit: error: --{'tag' if error.field == 'tags' else error.field}: {error}") from None
    write_json("-", run_row(store.get_run(run["id"])))
    return EXIT_OK


def _delete(store: Any, args: argparse.Namespace) -> int:
    runs = [_find(store, run_id) for run_id in args.ids]
    active = [run["id"] for run in runs if run["status"] in ("queued", "running")]
    if active:
        raise UsageError(f"ttexplore runs delete: error: {', '.join(active)} still queued or running: stop it first "
                         "(the app's Stop button)")
    deleted = store.delete_runs([run["id"] for run in runs])
    print(f"deleted {deleted} run{'s' if deleted != 1 else ''}")
    return EXIT_OK


def _export(store: Any, args: argparse.Namespace) -> int:
    from ttexplore.presenters.bundle import write_bundle

    if not args.out.lower().endswith(".zip"):
        raise UsageError(f"ttexplore runs export: error: --out {args.out!r} must name a .zip file, e.g. --out runs.zip")
    check_output_path("runs export", "--out", args.out)  # an unwritable place is refused before any work
    ids = [_find(store, run_id)["id"] for run_id in args.ids] or None
    if args.tag:
        ids = [run["id"] for run in (store.list_runs() if ids is None else map(store.get_run, ids))
               if args.tag in run.get("tags", [])]
    if ids == [] or (ids is None and not store.list_runs(limit=1)):
        raise UsageError(f"ttexplore runs export: error: no runs to export in {store.path}"
                         + (f" with tag {args.tag!r}" if args.tag else ""))
    try:
        bundle = write_bundle(store, args.out, ids, images=not args.no_png)
    except WriteError:
        raise  # a full disk: one line naming the zip, exit 1 (ttexplore.cli.main)
    except OSError as error:  # a weights file that cannot be read
        raise UsageError(f"ttexplore runs export: error: cannot export: {error}") from None
    for note in bundle.notes:
        print(terminal_text(f"note: {note}", None), file=sys.stderr)
    print(f"wrote {terminal_text(args.out, None)}: {bundle.runs} run{'s' if bundle.runs != 1 else ''}, {len(bundle.files)} files, "
          f"{len(bundle.data) / 1e6:.1f} MB")
    return EXIT_OK


_ACTIONS = {"list": _list, "show": _show, "resume": _resume, "edit": _edit, "delete": _delete, "export": _export}


def run(args: argparse.Namespace) -> int:
    """Dispatch ``runs ACTION``."""
    store = open_store(f"runs {args.action}", args.db)
    store.recover()  # a run whose process died (kill -9, a crash) shows as interrupted, resumable
    return _ACTIONS[args.action](store, args)
