"""Sweep: train a grid of TT shapes x max ranks (+ dense and matrix-rank baselines), or a network's TT layers (a CNN)
at each rank beside its dense twin, in the background and watch the 2018 reproduction's accuracy-against-weights
figure and table fill in. The logic lives in ttexplore.experiments.sweep."""

from __future__ import annotations

import streamlit as st

import ui
from ttexplore.experiments import sweep
from ttexplore.runs.config import ConfigError
from ttexplore.runs.data import available_datasets
from ttexplore.runs.data_info import DATASETS
from ttexplore.presenters import tracking
from ttexplore.presenters.export import table_to_csv
from ttexplore.presenters.usertext import plot_text
from ttexplore.runs.store import ACTIVE_STATUSES

CUSTOM = "custom"
CUSTOM_DEFAULTS = {"datasets": ("mnist5k",), "shapes": "4x8x8x4, 32x32, 2^10", "ranks": (1, 2, 3, 4), "pad_to": None, "epochs": 5}
TABLE_COLUMNS = {"dataset": "dataset", "shape": "shape", "rank": "max TT rank", "params": "layer weights",
                 "compression": "compression rate", "test_accuracy_mean": "accuracy", "test_accuracy_std": "± std",
                 "seeds": "seeds", "status": "status"}
SEED_COLUMNS = {"shape": "shape", "rank": "max TT rank", "seed": "seed", "test_accuracy": "accuracy", "status": "status",
                "epochs": "epochs", "seconds": "seconds"}

#: The labels this page shows for a sweep's fields: messages name the widget, not the field.
LABELS = {"shapes": "TT shapes", "ranks": "Max TT ranks", "seeds": "Seeds", "name": "Sweep name", "dataset": "Dataset",
          "network": "Network",
          "in_modes": "input modes", "out_modes": "output modes",
          "epochs": "Epochs", "train_limit": "Training images"}

store, manager = ui.store_or_stop(), ui.manager_or_stop()

st.title("Sweep")
st.caption("Every shape at every max TT rank, trained alike; the runs go to the same background queue as single "
           "runs (and the same run store), so the table and the figure fill in as they end. Launching a sweep "
           "again under the same name skips what it already completed.")

preset = st.selectbox("Preset", [CUSTOM, *sweep.PRESETS], key="sweep_preset",
                      help="; ".join(f"{name}: {tracking.ui_words(values['description'])}" for name, values in sweep.PRESETS.items()))
defaults = sweep.PRESETS.get(preset, CUSTOM_DEFAULTS)
if preset != CUSTOM:
    st.caption(tracking.ui_words(defaults["description"]))

available = available_datasets()
with st.container(border=True, key="sweep-form"):
    left, right = st.columns(2)
    dataset = left.selectbox("Dataset", list(DATASETS), index=list(DATASETS).index(defaults["datasets"][0]),
                             key=f"sweep_dataset_{preset}",
                             format_func=lambda key: DATASETS[key].title + ("" if available[key] else " — not on this machine"))
    name = right.text_input("Sweep name", value=preset if preset != CUSTOM else "my-sweep", key=f"sweep_name_{preset}",
                            help="runs are grouped, shown and resumed by this name")
    what = st.segmented_control("Sweep", ["TT shapes", "A network's TT layers"], key=f"sweep_what_{preset}",
                                required=True, default="TT shapes",
                                help="A network (a CNN): every layer with TT cores at each rank, beside its dense twin")
    network = ""
    if what == "TT shapes":
        shapes = st.text_area("TT shapes", value=defaults["shapes"], key=f"sweep_shapes_{preset}", height=80,
                              help="comma-separated; IN (output modes = input modes) or IN->OUT, e.g. 8x8x8x6->10^4; "
                                   "2^10 is ten 2s")
    else:
        shapes = ""
        network = st.text_input("Network", value="tt-convnet", key=f"sweep_network_{preset}",
                                help="A preset sized for the dataset (tt-convnet), or layers as text: conv:32:3; pool:2; "
                                     "ttconv:2x4x4->4x4x4:4:3; dense:64. Its TT convolutions and TT layers take each rank")
    ranks_col, seeds_col, epochs_col, limit_col = st.columns(4)
    ranks = ranks_col.text_input("Max TT ranks", value=",".join(map(str, defaults["ranks"])), key=f"sweep_ranks_{preset}",
                                 help="e.g. 1,2,4 or 1-4; the matrix-rank baseline uses the same ranks (both are clipped "
                                      "to what the layer can use)")
    seeds = seeds_col.text_input("Seeds", value="0", key=f"sweep_seeds_{preset}", help="e.g. 0,1,2: one run per seed")
    epochs = epochs_col.number_input("Epochs", min_value=1, max_value=1000, value=defaults["epochs"],
                                     key=f"sweep_epochs_{preset}")
    train_limit = limit_col.number_input("Training images (0 = all)", min_value=0, value=0, step=500,
                                         key=f"sweep_limit_{preset}")
    baselines = st.checkbox("Its dense twin" if network else "Dense and matrix-rank baselines of the same sizes", value=True,
                            key=f"sweep_baselines_{preset}")

    # what pressing the button would do, before it is pressed: the grid, how many runs, how long
    grid = None
    try:
        spec = sweep.make_spec(name, dataset, shapes, ranks, seeds, epochs=int(epochs), train_limit=int(train_limit) or None,
                               baselines=baselines, pad_to=defaults.get("pad_to"), network=network)
        grid = sweep.expand(spec)
    except ConfigError as error:
        ui.show_config_error(error, LABELS)
    on_machine = available.get(dataset, False)
    if not on_machine:
        st.warning(f"**{DATASETS[dataset].title} is not on this machine**, so this sweep cannot run here: "
                   f"{DATASETS[dataset].source}. Set TTEXPLORE_DATA to the folder that holds it and restart the app.",
                   icon=":material/cloud_off:")
    if grid is not None:
        plan = sweep.plan_sweep(store, grid.cells, spec.name)
        estimate = sweep.sweep_estimate([cell.config for cell in plan.todo], sweep.run_times(store), manager.max_workers)
        skipped = len(grid.cells) - len(plan.todo)
        st.markdown(f":material/schedule: **{estimate['text']}** ({grid.counts_text()}"
                    + (f"; {skipped} already done or running" if skipped else "") + f"), {estimate['basis']}.")
        for note in grid.notes:
            st.caption(f":material/info: {note}")
    submitted = st.button("Run sweep", type="primary", key="sweep_run", disabled=grid is None or not on_machine)

if submitted and grid is not None and on_machine:
    try:
        new_runs = sweep.submit_sweep(manager, store, grid, spec.name)
    except ConfigError as error:  # a cell over the memory budget: nothing was queued
        ui.show_config_error(error, LABELS)
        st.stop()
    st.session_state["sweep_pick"] = spec.name  # show the sweep just launched
    if new_runs:
        st.success(f"{len(new_runs)} runs queued; {len(grid.cells) - len(new_runs)} of the {len(grid.cells)} cells "
                   "were completed, queued or running already.")
    else:  # pressed twice (or in two tabs): each cell is queued once
        st.info("Nothing new queued: every cell of this sweep is already completed, queued or running. To train the "
                "grid again, give the sweep another name.", icon=":material/content_copy:")

names = sweep.sweep_names(store)
if not names:
    st.info("No sweep yet: choose shapes and ranks above and press **Run sweep**.")
    st.stop()
sweep_name = st.selectbox("Show sweep", names, key="sweep_pick")
polling = bool(store.list_runs(status=ACTIVE_STATUSES, sweep=sweep_name, limit=1))


def show_sweep(sweep_name: str, polling: bool) -> None:
    """Progress, figure, table and exports of one sweep, read from the run store."""
    cells = sweep.cells_from_store(store, sweep_name)
    rows = sweep.sweep_results(store, cells, sweep_name)
    counts = tracking.status_counts(rows)
    active = counts["running"] + counts["queued"]
    if polling and not active:
        st.rerun()  # the sweep just ended: redraw once without the timer
    done = counts["completed"]
    others = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()) if status != "completed")
    st.progress(done / max(len(rows), 1), text=f"{done} of {len(rows)} runs completed" + (f" · {others}" if others else ""))
    if active and st.button("Cancel the unfinished runs", key="sweep_cancel"):
        st.toast(f"cancelled {sweep.cancel_sweep(manager, store, sweep_name)} runs")

    counted = "the network's parameters" if sweep.counts_network(rows) else "the weights of the first layer"
    figure = sweep.sweep_figure(rows, title=f"{plot_text(sweep_name)}: test accuracy against {counted}")
    ui.show_figure(figure, f"{sweep_name}-accuracy-vs-weights", "sweep-figure")
    summary = sweep.summarize(rows)
    names = {**TABLE_COLUMNS, "params": sweep.weights_column(summary)}  # a network's: every parameter of it
    table = [{names[column]: row[column] for column in TABLE_COLUMNS} for row in summary]
    for entry in table:  # a dense baseline has no rank: an empty cell, not "None"
        entry["max TT rank"] = "" if entry["max TT rank"] is None else str(entry["max TT rank"])
        entry["dataset"] = DATASETS[entry["dataset"]].title if entry["dataset"] in DATASETS else entry["dataset"]
    st.caption("One row per cell: the mean final test accuracy over its seeds, the sample std (two or more seeds), "
               "how many seeds completed. A difference smaller than the spread is seed noise.")
    number = {"compression rate": st.column_config.NumberColumn(format="%.2e"),
              names["params"]: st.column_config.NumberColumn(format="localized"),
              "seconds": st.column_config.NumberColumn(format="%.1f"),
              "accuracy": st.column_config.NumberColumn(format="%.4f"), "± std": st.column_config.NumberColumn(format="%.4f")}
    st.dataframe(table, hide_index=True, width="stretch", column_config=number, key="sweep-cells")
    with st.expander(f"Every run ({len(rows)}: one per cell and seed)"):
        st.dataframe([{SEED_COLUMNS[column]: row[column] for column in SEED_COLUMNS} for row in rows], hide_index=True,
                     width="stretch", column_config=number)
    with st.container(horizontal=True, gap="small"):
        st.download_button("results.csv", table_to_csv([{column: row[column] for column in sweep.SUMMARY_COLUMNS}
                                                        for row in summary]),
                           f"{sweep_name}-results.csv", "text/csv", on_click="ignore", key="sweep-csv",
                           icon=":material/download:", help="One row per cell: mean, std, min, max over its seeds")
        st.download_button("runs.csv", table_to_csv([{column: row[column] for column in sweep.RESULT_COLUMNS} for row in rows]),
                           f"{sweep_name}-runs.csv", "text/csv", on_click="ignore", key="sweep-runs-csv",
                           icon=":material/download:", help="One row per run (cell and seed)")


ui.fragment("the sweep's results", run_every=2 if polling else None)(show_sweep)(sweep_name, polling)
