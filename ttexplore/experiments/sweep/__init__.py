"""Sweep a grid of runs (datasets x shapes x ranks x seeds, with baselines) and plot accuracy against weights.

A :class:`SweepSpec` expands into :class:`SweepCell` s, one validated
:class:`~ttexplore.runs.config.RunConfig` each (:mod:`.spec`; named sweeps in
:mod:`.presets`). The cells are recorded in the ordinary
:class:`~ttexplore.runs.store.RunStore` under the sweep's name, so the app's run
list shows them and a second launch of the same sweep skips every cell already
completed and redoes cells whose process died (:mod:`.plan`). They run in a pool
of local processes, as Ray tasks, or on the app's job manager (:mod:`.executors`),
and come back as rows, a table and the accuracy-vs-weights figure (:mod:`.results`); :mod:`.estimate`
says how many runs and roughly how long before a sweep starts.

The command line is :mod:`ttexplore.cli.sweep`. Nothing here imports torch, Ray or
plotly at module level.
"""

from __future__ import annotations

from ttexplore.experiments.sweep.estimate import run_times, sweep_estimate
from ttexplore.experiments.sweep.executors import (EXECUTORS, cancel_sweep, default_workers, import_ray, run_local,
                                                   run_ray, run_sweep, submit_sweep, threads_per_worker)
from ttexplore.experiments.sweep.plan import SweepPlan, plan_sweep
from ttexplore.experiments.sweep.presets import PRESET_ALIASES, PRESETS, preset_name, preset_spec
from ttexplore.experiments.sweep.results import (RESULT_COLUMNS, SUMMARY_COLUMNS, X_TITLES, accuracy_text, cells_from_store,
                                                 counts_network, results_table, summarize, sweep_figure, sweep_names,
                                                 sweep_results, table_markdown, weights_column, write_outputs)
from ttexplore.experiments.sweep.spec import (DENSE_TWIN, SweepCell, SweepGrid, SweepShape, SweepSpec, cell_kind,
                                              estimated_cost, expand, is_network, network_layers,
                                              make_spec, parse_int_list, parse_shapes)

__all__ = [
    "SweepShape",
    "SweepSpec",
    "SweepCell",
    "SweepGrid",
    "SweepPlan",
    "PRESETS",
    "PRESET_ALIASES",
    "EXECUTORS",
    "RESULT_COLUMNS",
    "SUMMARY_COLUMNS",
    "preset_name",
    "preset_spec",
    "make_spec",
    "parse_shapes",
    "parse_int_list",
    "expand",
    "plan_sweep",
    "run_sweep",
    "run_local",
    "run_ray",
    "import_ray",
    "estimated_cost",
    "sweep_estimate",
    "run_times",
    "default_workers",
    "threads_per_worker",
    "submit_sweep",
    "cancel_sweep",
    "cells_from_store",
    "sweep_names",
    "sweep_results",
    "summarize",
    "accuracy_text",
    "results_table",
    "table_markdown",
    "sweep_figure",
    "write_outputs",
    "X_TITLES",
    "DENSE_TWIN",
    "counts_network",
    "weights_column",
    "cell_kind",
    "is_network",
    "network_layers",
]
