"""Comparing runs: only the settings that differ beside the results, and each run against a pinned baseline.

Plain data in (run dicts as :meth:`~ttexplore.runs.store.RunStore.list_runs` returns them), plain data out
(dicts and pandas DataFrames); no streamlit, no torch. The Runs page draws these.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ttexplore.presenters.reports import ACCURACY_WORDS, best_accuracy, run_config
from ttexplore.runs.config import RunConfig

__all__ = ["setting_values", "differing_settings", "differences_table", "baseline_deltas", "BASELINE_SETTING",
           "RESULT_COLUMNS", "baseline_reference"]

#: The run store's setting that holds the pinned baseline's run id (:meth:`RunStore.setting`).
BASELINE_SETTING = "baseline"

#: The results :func:`differences_table` puts beside the settings.
RESULT_COLUMNS = ("layer weights", "final test acc", "best acc", "chosen on", "status")


def setting_values(run: Mapping[str, Any]) -> dict[str, str]:
    """Every setting of the run as text, one entry per field of its config (``"hidden layer 2"`` per layer, in
    its text form; ``"starts from"`` for trained weights); the stored JSON as it is when this version cannot
    read the config. The label is left out (it names the run, it does not set it up)."""
    config = run_config(run)
    if config is None:
        return {key: _text(value) for key, value in sorted((run.get("config") or {}).items()) if key != "label"}
    values: dict[str, str] = {}
    for key, value in config.to_dict().items():
        if key in ("label", "legacy_fields"):
            continue
        if key == "layers":
            for index, layer in enumerate(config.layers):
                values[f"hidden layer {index + 1}"] = layer.text()
        elif key == "init_from":
            values["starts from"] = config.init_from.describe()
        else:
            values[key] = _text(value)
    for key in ("val_split", "early_stop"):  # left out of the config's dict at their defaults, but settings all the same
        values.setdefault(key, _text(getattr(config, key, getattr(RunConfig, key))))
    return values


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def differing_settings(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The settings (:func:`setting_values` names) whose values are not the same for every run, in the
    config's order; a setting one run lacks (a second hidden layer) differs."""
    values = [setting_values(run) for run in runs]
    names = list(dict.fromkeys(name for each in values for name in each))
    return [name for name in names if len({each.get(name, "—") for each in values}) > 1]


def differences_table(runs: Sequence[Mapping[str, Any]], labels: Optional[Mapping[str, str]] = None):
    """One row per run: its label (``labels`` or its id), only the settings that differ among ``runs``, then
    its results (:data:`RESULT_COLUMNS`: layer weights, final test accuracy, the best accuracy
    (:func:`~ttexplore.presenters.reports.best_accuracy`) and what chose it, its status). A pandas DataFrame."""
    import pandas as pd

    differing = differing_settings(runs)
    rows = []
    for run in runs:
        values = setting_values(run)
        accuracy, basis = best_accuracy(run)
        rows.append({"run": (labels or {}).get(run["id"], run["id"]), **{name: values.get(name, "—") for name in differing},
                     "layer weights": run.get("layer_params"), "final test acc": run.get("final_test_accuracy"),
                     "best acc": accuracy, "chosen on": "validation" if basis == "validation" else "test (optimistic)",
                     "status": run.get("status", "")})
    return pd.DataFrame(rows, columns=["run", *differing, *RESULT_COLUMNS])


def baseline_deltas(runs: Sequence[Mapping[str, Any]], baseline: Optional[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each run against the pinned ``baseline``: ``{run id: {"Δ acc": accuracy - the baseline's, "weights ×":
    layer weights / the baseline's}}`` (accuracies by :func:`~ttexplore.presenters.reports.best_accuracy`;
    ``None`` where either lacks one); ``{}`` without a baseline. The baseline's own row reads 0 and 1."""
    if baseline is None:
        return {}
    reference, _ = best_accuracy(baseline)
    weights = baseline.get("layer_params")
    deltas = {}
    for run in runs:
        accuracy, _ = best_accuracy(run)
        deltas[run["id"]] = {
            "Δ acc": accuracy - reference if accuracy is not None and reference is not None else None,
            "weights ×": run["layer_params"] / weights if weights and run.get("layer_params") is not None else None,
        }
    return deltas


def baseline_reference(baseline: Optional[Mapping[str, Any]], label: str = "") -> Optional[dict[str, Any]]:
    """The ``reference`` of :func:`ttexplore.presenters.plots.accuracy_vs_params` for a pinned run, or ``None``."""
    if baseline is None:
        return None
    accuracy, basis = best_accuracy(baseline)
    return {"label": label, "accuracy": accuracy, "layer_params": baseline.get("layer_params"),
            "basis": ACCURACY_WORDS[basis]}
