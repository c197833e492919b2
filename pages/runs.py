"""Runs: every saved run, their curves side by side, accuracy against layer weights, deletion."""

from __future__ import annotations

import streamlit as st

import ui
from ttexplore.presenters import plots
from ttexplore.presenters import reports
from ttexplore.runs.store import ACTIVE_STATUSES

state = st.session_state
store = ui.store_or_stop()

st.title("Runs")
st.caption(f"Every run started from this app, the CLI or a sweep, kept in `{store.path}` across restarts.")

runs = store.list_runs()
if not runs:
    st.info("No runs saved yet: design a layer on **Explore** and press **Train**.", icon=":material/info:")
    st.page_link("pages/explore.py", label="Go to Explore", icon=":material/tune:")
    st.stop()

by_id = {run["id"]: run for run in runs}
label = lambda run_id: reports.run_label(by_id[run_id])  # noqa: E731

# ---------------------------------------------------------------- overview
completed = [run for run in runs if run["status"] == "completed"]
scored = [run for run in runs if run.get("best_test_accuracy") is not None]
best = max(scored, key=lambda run: run["best_test_accuracy"], default=None)
tiles = st.columns(4)
tiles[0].metric("Runs saved", len(runs), border=True)
tiles[1].metric("Completed", len(completed), border=True)
tiles[2].metric("Running or queued", sum(run["status"] in ACTIVE_STATUSES for run in runs), border=True)
tiles[3].metric("Best test accuracy", f"{best['best_test_accuracy']:.4f}" if best else "—", border=True,
                help=reports.run_label(best) if best else None)

datasets = sorted({run["dataset"] for run in runs})
statuses = sorted({run["status"] for run in runs})
left, right = st.columns(2)
chosen_sets = left.multiselect("Datasets", datasets, default=datasets, key="runs_datasets")
chosen_status = right.multiselect("Statuses", statuses, default=statuses, key="runs_statuses")
shown = [run for run in runs if run["dataset"] in chosen_sets and run["status"] in chosen_status]

st.dataframe(
    reports.runs_table(shown),
    hide_index=True,
    column_order=["started", "status", "run", "layer weights", "compression", "× smaller", "best test acc",
                  "final test acc", "epochs", "lr", "batch", "seed", "duration s", "error", "id"],
    column_config={
        "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
        "layer weights": st.column_config.NumberColumn(format="localized"),
        "compression": st.column_config.NumberColumn("compression rate", format="%.2e", help="TT / dense weights"),
        "× smaller": st.column_config.NumberColumn(format="%.0f×"),
        "best test acc": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.4f"),
        "final test acc": st.column_config.NumberColumn(format="%.4f"),
        "duration s": st.column_config.NumberColumn("duration", format="%.1f s"),
        "lr": st.column_config.NumberColumn(format="%g"),
    },
)

# ---------------------------------------------------------------- compare
st.subheader("Compare runs", divider="gray")
options = [run["id"] for run in shown]
state["runs_compare"] = [run_id for run_id in state.get("runs_compare", [run["id"] for run in shown if run.get(
    "best_test_accuracy") is not None][:3]) if run_id in options]
compare = st.multiselect("Runs to overlay", options, key="runs_compare", format_func=label,
                         placeholder="Pick runs to draw their curves together")
if compare:
    picked = [by_id[run_id] for run_id in compare]
    curves = reports.curve_series(picked, store.metrics_for(compare))
    ui.show_figure(plots.training_curves(curves, title="Training curves (test solid, train dashed)"), "training-curves", "compare")

st.subheader("Accuracy against layer weights", divider="gray")
with_scores = sorted({run["dataset"] for run in shown if run["status"] == "completed"})
if with_scores:
    dataset = st.segmented_control("Dataset", with_scores, default=with_scores[0], key="runs_acc_dataset", required=True)
    points = reports.accuracy_points([run for run in shown if run["dataset"] == dataset])
    st.caption("The 2018 reproduction's figure: the best test accuracy of each shape and rank against the weights of the first "
               "layer (log scale), one line per shape; train several ranks per shape (or a sweep) to draw lines.")
    ui.show_figure(plots.accuracy_vs_params(points, title=f"{dataset}: accuracy against first-layer weights"),
                   f"accuracy-vs-weights-{dataset}", "accuracy")
else:
    st.caption("Completed runs will appear here.")

# ---------------------------------------------------------------- delete
def delete_selected() -> None:
    count = store.delete_runs(state.get("runs_delete", []))
    state.runs_delete = []
    st.toast(f"Deleted {count} run(s)")


with st.expander("Delete runs", icon=":material/delete:"):
    finished = [run["id"] for run in shown if run["status"] not in ACTIVE_STATUSES]
    doomed = st.multiselect("Runs to delete (with their metrics and weights files)", finished, format_func=label,
                            key="runs_delete", help="Running or queued runs must be stopped on Train first.")
    st.button(f"Delete {len(doomed)} run(s)", disabled=not doomed, type="primary", icon=":material/delete:",
              on_click=delete_selected, key="runs_delete_button")
