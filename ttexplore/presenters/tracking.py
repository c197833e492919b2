"""Experiment tracking over the run store: which runs a dashboard follows, what each run is called,
what state it is in, its hyper-parameters as a table, and curves smoothed or against another x.

Plain data in (run dicts as :meth:`~ttexplore.runs.store.RunStore.list_runs` returns them, metric
events as :meth:`~ttexplore.runs.store.RunStore.metrics` returns them), plain data out. No streamlit,
no torch: the Train, Runs and Run pages call these and only arrange the results.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import datetime
from typing import Any, Iterable, Mapping, Optional, Sequence

from ttexplore.presenters.compare import baseline_deltas
from ttexplore.presenters.groups import mean_events, seed_groups, spread_text
from ttexplore.presenters.reports import (ACCURACY_WORDS, best_accuracy, epoch_text, format_duration, ranks_list_text,
                                          run_config, run_kinds_text, run_label, run_net_params, run_ranks_text,
                                          run_ranks_used, run_shape_text, stopped_early_at)
from ttexplore.presenters.usertext import markdown_text

__all__ = [
    "ACTIVE",
    "HPARAMS",
    "X_AXES",
    "run_title",
    "distinct_labels",
    "default_watch",
    "dashboard_runs",
    "watch_options",
    "queue_positions",
    "status_counts",
    "run_state",
    "hparams_table",
    "hparam_columns",
    "varying_hparams",
    "filter_runs",
    "all_tags",
    "smooth",
    "curve_xy",
    "curve_runs",
    "already_trained_text",
    "ui_words",
    "error_labels",
    "LAYER_TEXT_WORDS",
    "compression_text",
    "weights_tile",
    "started_text",
    "TIME_FORMAT",
]

ACTIVE = ("queued", "running")

#: Config fields a practitioner compares runs by, with the column name and how a label writes a value.
HPARAMS: dict[str, tuple[str, Any]] = {
    "epochs": ("epochs", lambda v: f"{v} epoch{'s' if v != 1 else ''}"),
    "lr": ("lr", lambda v: f"lr {v:g}"),
    "batch_size": ("batch", lambda v: f"batch {v}"),
    "seed": ("seed", lambda v: f"seed {v}"),
    "train_limit": ("train images", lambda v: f"{v:,} images" if v else "all images"),
    "optimizer": ("optimizer", lambda v: str(v)),
    "weight_decay": ("weight decay", lambda v: f"wd {v:g}"),
    "momentum": ("momentum", lambda v: f"momentum {v:g}"),
    "init": ("init", lambda v: f"{v} init"),
    "pad_to": ("pad to", lambda v: f"pad {v}" if v else "no padding"),
    "evals_per_epoch": ("evals / epoch", lambda v: f"{v} evals/epoch"),
    "strategy": ("strategy", lambda v: f"{v} forward"),
    "round_to": ("rounded", lambda v: f"rounded {v}" if v else "ranks kept"),
}

#: x axes of the training curves: event key, axis title.
X_AXES = {"epoch": ("epoch", "epoch"), "step": ("step", "optimizer step"), "time": ("elapsed_s", "wall time (s)")}

#: How the app writes a moment (local time): ``2026-01-01 12:00``.
TIME_FORMAT = "%Y-%m-%d %H:%M"

#: How long a finished run stays among the runs a dashboard follows by default.
RECENT_S = 6 * 3600


def run_title(run: Mapping[str, Any]) -> str:
    """The run's name when it has one, else its automatic label (``"TT 4x8x8x4 r=4 · mnist5k"``)."""
    name = str(run.get("name") or "").strip()
    return name or run_label(run, with_id=False)


def _value(run: Mapping[str, Any], field: str) -> Any:
    return (run.get("config") or {}).get(field)


def distinct_labels(runs: Sequence[Mapping[str, Any]], with_id: bool = False) -> dict[str, str]:
    """A label per run (by id) that carries what tells it apart from the other ``runs``.

    The run's name, or its shape, ranks and dataset; runs that would read alike get
    the hyper-parameters that differ among them (``"· 5 epochs · lr 0.003"``) and
    their sweep when they come from several; runs that still read alike get their
    short id (every run does with ``with_id``).
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        groups.setdefault(run_title(run), []).append(run)
    labels: dict[str, str] = {}
    for title, members in groups.items():
        varying = [field for field in HPARAMS if len({repr(_value(run, field)) for run in members}) > 1]
        sweeps = len({run.get("sweep") or "" for run in members}) > 1
        for run in members:
            parts = [title] + [HPARAMS[field][1](_value(run, field)) for field in varying
                               if _value(run, field) is not None or field == "train_limit"]
            if sweeps and run.get("sweep"):
                parts.append(f"sweep {run['sweep']}")
            labels[run["id"]] = " · ".join(parts)
    counts: dict[str, int] = {}
    for text in labels.values():
        counts[text] = counts.get(text, 0) + 1
    for run in runs:
        if with_id or counts[labels[run["id"]]] > 1:
            labels[run["id"]] += f" · #{str(run['id'])[-6:]}"
    return labels


#: The short id a picker label ends with (``"running · first · #e885d3"``): the last six characters of the id.
_SHORT_ID = re.compile(r"#([0-9A-Za-z]{6})(?![0-9A-Za-z])")


def picked_ids(values: Iterable[Any], known_ids: Iterable[str]) -> list[str]:
    """The run ids a run picker holds, in its order, each once; values that name no saved run are dropped.

    Streamlit hands a picked option back as its *label* instead of its id when the label changed between
    the browser's copy and this rerun (a run went from queued to running, a new run made two names read
    alike, a run was renamed): such a label is mapped back by the last short id it carries (``#e885d3``,
    which :func:`distinct_labels` adds with ``with_id``) when exactly one saved run ends with it.
    Complexity: O(len(values) + len(known_ids)).
    """
    known = list(dict.fromkeys(str(run_id) for run_id in known_ids))
    exact, by_suffix = set(known), {}
    for run_id in known:
        by_suffix.setdefault(run_id[-6:], []).append(run_id)
    picked: list[str] = []
    for value in values or ():
        run_id = value if isinstance(value, str) and value in exact else None
        if run_id is None and isinstance(value, str):
            tokens = _SHORT_ID.findall(value)
            matches = by_suffix.get(tokens[-1], []) if tokens else []
            run_id = matches[0] if len(matches) == 1 else None
        if run_id is not None and run_id not in picked:
            picked.append(run_id)
    return picked


def picked_id(value: Any, known_ids: Iterable[str], default: Optional[str] = None) -> Optional[str]:
    """:func:`picked_ids` for a one-run picker (a selectbox): the saved run ``value`` names, else ``default``."""
    picked = picked_ids([value], known_ids)
    return picked[0] if picked else default


def default_watch(runs: Sequence[Mapping[str, Any]], now: Optional[float] = None, recent_s: float = RECENT_S,
                  limit: int = 8) -> list[str]:
    """The runs a dashboard follows until the user picks others: every running run, then queued runs
    (next in line first), interrupted ones (they can resume), and those that ended in the last
    ``recent_s`` seconds, newest first, up to ``limit`` in all (running runs always count)."""
    now = time.time() if now is None else now
    running = [run["id"] for run in runs if run["status"] == "running"]
    queued = [run["id"] for run in sorted((run for run in runs if run["status"] == "queued"),
                                          key=lambda run: (run.get("created_at") or 0, run["id"]))]
    interrupted = [run["id"] for run in runs if run["status"] == "interrupted"]
    ended = interrupted + [run["id"] for run in runs if run["status"] not in ACTIVE + ("interrupted",)
                           and now - (run.get("finished_at") or run.get("created_at") or 0) <= recent_s]
    chosen = list(running)
    for run_id in queued + ended:
        if len(chosen) >= max(limit, len(running)):
            break
        chosen.append(run_id)
    return chosen


def dashboard_runs(runs: Sequence[Mapping[str, Any]], pinned: Optional[str] = None, added: Sequence[str] = (),
                   now: Optional[float] = None) -> list[str]:
    """The ids a dashboard shows: ``added`` first (runs this tab just started), then the ``pinned`` ones (a
    comma-separated list, as the address keeps it; ids no longer saved are dropped) or, when nothing is
    pinned (``None``), :func:`default_watch`."""
    saved = {run["id"] for run in runs}
    added = [run_id for run_id in added if run_id in saved]
    if pinned is not None:
        rest = [run_id for run_id in pinned.split(",") if run_id in saved]
    else:
        rest = default_watch(runs, now)
    return added + [run_id for run_id in rest if run_id not in added]


STATUS_ORDER = {"running": 0, "queued": 1, "interrupted": 2, "failed": 3, "diverged": 3, "cancelled": 4, "completed": 5}


def watch_options(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Ids of every run in the order a picker lists them: running, queued, interrupted, failed, then the rest,
    newest first within each."""
    order = {run["id"]: index for index, run in enumerate(runs)}  # runs come newest first
    return [run["id"] for run in sorted(runs, key=lambda run: (STATUS_ORDER.get(run["status"], 6), order[run["id"]]))]


def queue_positions(runs: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``{run_id: 1, 2, ...}``: each queued run's place in line (workers take the oldest first)."""
    queued = sorted((run for run in runs if run.get("status") == "queued"), key=lambda run: (run.get("created_at") or 0, run["id"]))
    return {run["id"]: index for index, run in enumerate(queued, start=1)}


def status_counts(runs: Iterable[Mapping[str, Any]]) -> Counter:
    """How many of ``runs`` are in each status (``counts["running"]``); 0 for a status none of them has.
    Only the statuses present are among its items, in the order they first appear."""
    return Counter(run.get("status", "") for run in runs)


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def run_state(run: Mapping[str, Any], events: Sequence[Mapping[str, Any]], position: Optional[int] = None) -> dict[str, Any]:
    """What a run row says about a run: ``{"fraction", "text", "waiting", "resumable_hint"}``.

    ``waiting`` is True while the run has no point to draw yet (queued, or running
    before its first evaluation); ``text`` says so in words.
    """
    epochs = int((run.get("config") or {}).get("epochs") or 0)  # 0: a run that only evaluates its start (compress)
    status = run.get("status", "")
    done = max((float(event.get("epoch") or 0.0) for event in events), default=0.0)
    fraction = 1.0 if status == "completed" else min(1.0, done / epochs) if epochs else 0.0
    elapsed = events[-1].get("elapsed_s") if events else None
    if status == "queued":
        place = f" ({_ordinal(position)} in line)" if position else ""
        return {"fraction": 0.0, "text": f"queued: waiting for a free core{place}", "waiting": True}
    if status == "running" and not events:
        return {"fraction": 0.0, "text": "starting: loading data, waiting for its first point", "waiting": True}
    text = f"epoch {epoch_text(fraction * epochs)} of {epochs}" if epochs else "evaluated only (0 epochs)"
    if stopped_early_at(run) is not None:  # completed before its planned epochs: the validation loss stopped improving
        text = f"stopped early at epoch {done:g} of {epochs}"
    scored = [event for event in events if event.get("test_accuracy") is not None]
    if scored:
        text += f" · test accuracy {scored[-1]['test_accuracy']:.3f}"
    if elapsed:
        text += f" · {format_duration(elapsed)}"
    if status == "interrupted":
        text = f"interrupted after epoch {epoch_text(done)} of {epochs}" + (f" · {format_duration(elapsed)}" if elapsed else "")
    elif status == "failed" and not events:
        text = "failed before its first point"
    return {"fraction": fraction, "text": text, "waiting": not events}


# ---------------------------------------------------------------- the hyper-parameter table
def compression_text(compression: Optional[float]) -> str:
    """``2176 / 1048576`` -> ``"482× smaller"``; a layer bigger than the dense one -> ``"2.0× larger"``."""
    if not compression:
        return ""
    factor = 1.0 / compression
    if factor >= 10:
        return f"{factor:,.0f}× smaller"
    if factor >= 1:
        return f"{factor:.2g}× smaller" if factor < 1.005 or factor >= 1.05 else "same size"
    return f"{1 / factor:.2g}× larger"


def weights_tile(run: Mapping[str, Any]) -> dict[str, Any]:
    """The Run page's weights tile (keyword arguments of ``st.metric``): a network that reads images (a CNN) by its
    every parameter against its dense twin's, any other by its hidden layers' weights (the 2018 figures' count)."""
    config = run_config(run)
    quiet = {"delta_color": "off", "delta_arrow": "off"}
    if config is not None and any(not layer.flattens for layer in config.layers):
        net, dense = config.net_params(), config.dense_net_params()
        return {"label": "Network parameters", "value": f"{net:,}", **quiet, "delta": compression_text(net / dense),
                "help": f"Every parameter, biases and head included; its dense twin has {dense:,}"}
    return {"label": "Layer weights", "value": f"{run['layer_params']:,}", "delta": compression_text(run["compression"]),
            **quiet}


def _started(run: Mapping[str, Any]) -> Optional[datetime]:
    return datetime.fromtimestamp(run["created_at"]) if run.get("created_at") else None


def started_text(run: Mapping[str, Any]) -> str:
    """When the run was created, in :data:`TIME_FORMAT` and local time (``"2026-01-01 12:00"``); '' when unknown."""
    when = _started(run)
    return f"{when:{TIME_FORMAT}}" if when is not None else ""


def _duration(run: Mapping[str, Any], now: Optional[float]) -> Optional[float]:
    started = run.get("started_at")
    if started is None:
        return None
    return (run.get("finished_at") or (now if now is not None else time.time())) - started


def hparams_table(runs: Iterable[Mapping[str, Any]], now: Optional[float] = None,
                  labels: Optional[Mapping[str, str]] = None, baseline: Optional[Mapping[str, Any]] = None):
    """One row per run: identity, status, layer, hyper-parameters and results (a pandas DataFrame).

    ``name`` is the run's entry in ``labels`` when given (:func:`distinct_labels`), else :func:`run_title`.

    Columns: ``id``, ``name``, ``tags``, ``status``, ``dataset``, ``layer`` (the kinds of its layers), ``shape``,
    ``ranks`` (as used, of its first layer with ranks), ``layer weights``, ``net weights`` (every parameter,
    biases and head included: a CNN's size), ``× smaller``, then one column per
    :data:`HPARAMS` field, ``sweep``, ``best test acc`` (the best test point: chosen on the test set,
    optimistic), ``final test acc``, ``test acc at best val`` (runs with a validation split), ``acc``
    (:func:`~ttexplore.presenters.reports.best_accuracy`: the latter when there, else the former),
    ``seed group`` (the ``acc`` of the run's seed group among ``runs``, ``"mean ± std (n=3)"``), ``seeds``
    (how many of the group completed), ``Δ acc vs baseline`` and ``weights × baseline`` (against the
    pinned ``baseline`` run, :func:`~ttexplore.presenters.compare.baseline_deltas`), ``epochs done``,
    ``duration s``, ``started``, ``notes``, ``error``.
    """
    import pandas as pd

    runs = list(runs)
    group_by_run = {run["id"]: group for group in seed_groups(runs) for run in group.runs}
    deltas = baseline_deltas(runs, baseline)
    rows = []
    for run in runs:
        compression = run.get("compression")
        row = {
            "id": run.get("id"),
            "name": (labels or {}).get(run.get("id")) or run_title(run),
            "tags": ", ".join(run.get("tags") or []),
            "status": run.get("status", ""),
            "dataset": run.get("dataset"),
            "layer": run_kinds_text(run),
            "shape": run_shape_text(run),
            "ranks": _used_ranks_text(run),
            "layer weights": run.get("layer_params"),
            "net weights": run_net_params(run),
            "× smaller": (1.0 / compression) if compression else None,
        }
        for field, (column, _) in HPARAMS.items():
            row[column] = _value(run, field)
        row.update({
            "sweep": run.get("sweep") or "",
            "best test acc": run.get("best_test_accuracy"),
            "final test acc": run.get("final_test_accuracy"),
            "test acc at best val": run.get("test_accuracy_at_best_val"),
            "acc": best_accuracy(run)[0],
            "seed group": spread_text(group_by_run[run["id"]].accuracy),
            "seeds": group_by_run[run["id"]].accuracy.n if group_by_run[run["id"]].accuracy else 0,
            "Δ acc vs baseline": deltas.get(run["id"], {}).get("Δ acc"),
            "weights × baseline": deltas.get(run["id"], {}).get("weights ×"),
            "epochs done": run.get("epochs_done"),
            "duration s": _duration(run, now),
            "started": _started(run),
            "notes": run.get("notes") or "",
            "error": run.get("error") or "",
        })
        rows.append(row)
    return pd.DataFrame(rows, columns=hparam_columns())


def hparam_columns() -> list[str]:
    """The columns of :func:`hparams_table`, in order."""
    return (["id", "name", "tags", "status", "dataset", "layer", "shape", "ranks", "layer weights", "net weights", "× smaller"]
            + [column for column, _ in HPARAMS.values()]
            + ["sweep", "best test acc", "final test acc", "test acc at best val", "acc", "seed group", "seeds",
               "Δ acc vs baseline", "weights × baseline", "epochs done", "duration s", "started", "notes", "error"])


def _used_ranks_text(run: Mapping[str, Any]) -> str:
    """The ranks the (first) hidden layer really has (clipped), ``"4"`` or ``"2,4,2"``; '' for dense."""
    used = run_ranks_used(run)
    return run_ranks_text(run) if used is None else ranks_list_text(used)


def varying_hparams(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The :func:`hparams_table` columns of hyper-parameters (and the layer's weights) that differ among ``runs``."""
    columns = [column for field, (column, _) in HPARAMS.items() if len({repr(_value(run, field)) for run in runs}) > 1]
    if len({run.get("layer_params") for run in runs}) > 1:
        columns.insert(0, "layer weights")
    return columns


def all_tags(runs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every tag used by ``runs``, sorted."""
    return sorted({tag for run in runs for tag in (run.get("tags") or [])})


def filter_runs(runs: Iterable[Mapping[str, Any]], text: str = "", tags: Sequence[str] = (),
                statuses: Optional[Sequence[str]] = None, datasets: Optional[Sequence[str]] = None) -> list[Mapping[str, Any]]:
    """The runs that match: ``text`` anywhere in the name, label, id, tags, notes or sweep (case-insensitive,
    every word), carrying every tag in ``tags``, and with a status / dataset among those given."""
    words = [word for word in text.lower().split() if word]
    kept = []
    for run in runs:
        if statuses is not None and run.get("status") not in statuses:
            continue
        if datasets is not None and run.get("dataset") not in datasets:
            continue
        if any(tag not in (run.get("tags") or []) for tag in tags):
            continue
        haystack = " ".join([run_title(run), run_label(run), str(run.get("id")), " ".join(run.get("tags") or []),
                             str(run.get("notes") or ""), str(run.get("sweep") or "")]).lower()
        if all(word in haystack for word in words):
            kept.append(run)
    return kept


# ---------------------------------------------------------------- curves
def smooth(values: Sequence[Optional[float]], weight: float) -> list[Optional[float]]:
    """TensorBoard's smoothing: an exponential moving average, debiased so the first points are not pulled
    towards zero; ``None`` values stay ``None`` and do not move the average. ``weight`` in ``[0, 1)``."""
    weight = min(max(float(weight), 0.0), 0.999)
    if weight == 0:
        return list(values)
    smoothed: list[Optional[float]] = []
    average, seen = 0.0, 0
    for value in values:
        if value is None or value != value:
            smoothed.append(None)
            continue
        average = average * weight + (1 - weight) * float(value)
        seen += 1
        smoothed.append(average / (1 - weight**seen))
    return smoothed


def curve_xy(events: Sequence[Mapping[str, Any]], x: str = "epoch") -> list[Optional[float]]:
    """The x value of each event for the axis ``x`` (a key of :data:`X_AXES`)."""
    key = X_AXES.get(x, X_AXES["epoch"])[0]
    return [event.get(key) for event in events]


def curve_runs(runs: Sequence[Mapping[str, Any]], metrics: Mapping[str, Sequence[Mapping[str, Any]]],
               labels: Optional[Mapping[str, str]] = None, group_seeds: bool = False) -> list[dict[str, Any]]:
    """Input of :func:`ttexplore.presenters.plots.training_curves` for ``runs`` in their order: each run's
    label (``labels`` or :func:`distinct_labels`), events, planned epochs, whether it is still queued or
    running (``pending``), and, while it has no point, what it waits for (its place in the queue, its start)
    or why it has none (it failed first).

    With ``group_seeds``, the runs of a seed group (:mod:`ttexplore.presenters.groups`: the same settings)
    among ``runs`` that holds two seeds or more are one series instead, where its first run would be: the
    mean curve of one run per seed with its bands (:func:`~ttexplore.presenters.groups.mean_events`),
    labelled ``"... · mean of 3 seeds"``. Repeats of one seed alone stay apart (a repeat is the same run,
    not a sample of the seed noise)."""
    labels = labels or distinct_labels(runs)
    positions = queue_positions(runs)
    series = []
    if group_seeds:
        seed_sets = [group for group in seed_groups(runs) if len(group.per_seed) > 1]
        grouped = {run["id"]: group for group in seed_sets for run in group.runs}
        firsts = [run for run in runs if run["id"] not in grouped or grouped[run["id"]].first["id"] == run["id"]]
        group_labels = distinct_labels(firsts)
    for run in runs:
        if group_seeds and run["id"] in grouped:
            group = grouped[run["id"]]
            if group.first["id"] == run["id"]:
                events, bands = mean_events([metrics.get(member["id"], []) for member in group.per_seed])
                series.append({"label": f"{group_labels[run['id']]} · mean of {len(group.per_seed)} seeds", "events": events,
                               "bands": bands, "epochs": (run.get("config") or {}).get("epochs"),
                               "waiting": None if events else "its seeds wait for their first point",
                               "pending": any(member.get("status") in ACTIVE for member in group.runs)})
            continue
        events = list(metrics.get(run["id"], []))
        state = run_state(run, events, positions.get(run["id"]))
        series.append({"label": labels[run["id"]], "events": events, "epochs": (run.get("config") or {}).get("epochs"),
                       "waiting": state["text"] if not events else None, "pending": run.get("status") in ACTIVE})
    return series


# ---------------------------------------------------------------- words
def already_trained_text(run: Mapping[str, Any]) -> str:
    """The notice for a configuration already trained: which run, when, and its accuracy."""
    when = started_text(run)
    accuracy, basis = best_accuracy(run)
    parts = [f"This exact configuration was already trained: **{markdown_text(run_title(run))}**"]
    if when:
        parts.append(f"on {when}")
    if accuracy is not None:
        parts.append(f"({ACCURACY_WORDS[basis]} {accuracy:.4f})")
    return " ".join(parts) + ". Training it again gives a second run with the same settings."


#: The app's words for the command-line flags and setting names a library message may mention.
UI_WORDS = {
    "--data-dir / TTEXPLORE_DATA": "the TTEXPLORE_DATA environment variable",
    "--data-dir or TTEXPLORE_DATA": "the TTEXPLORE_DATA environment variable",
    "--data-dir": "the TTEXPLORE_DATA environment variable",
    "--dataset": "the Dataset choice",
}


#: How a message names the parts of a hidden layer typed as text (``tt:IN->OUT:RANK`` in its "Hidden layer N"
#: box): by what the text holds, never by the labels of the widgets that design the first layer.
LAYER_TEXT_WORDS = {"in_modes": "input modes", "out_modes": "output modes", "ranks": "ranks", "matrix_rank": "rank",
                    "width": "width"}


def error_labels(field: Optional[str], labels: Optional[Mapping[str, str]] = None) -> Mapping[str, str]:
    """The labels :func:`ui_words` should use for a message about ``field``: ``labels`` (the page's widgets),
    except for a field of a hidden layer after the first (``layers[1].in_modes``), typed as text in its own
    box, whose parts are named as the text's (:data:`LAYER_TEXT_WORDS`)."""
    match = re.match(r"(?:hidden_)?layers\[(\d+)\]", field or "")
    return LAYER_TEXT_WORDS if match and int(match.group(1)) >= 1 else dict(labels or {})


def ui_words(message: str, labels: Optional[Mapping[str, str]] = None) -> str:
    """``message`` as the app says it: command-line flags become the app's settings, and each field
    name in ``labels`` (``{"in_modes": "Input modes"}``) becomes its label."""
    for flag, words in UI_WORDS.items():
        message = message.replace(flag, words)
    for field, label in (labels or {}).items():
        message = re.sub(rf"(?<![\w-]){re.escape(field)}(?![\w-])", label, message)
    return message
