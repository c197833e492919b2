"""Runs: every saved run as a sortable, filterable hyper-parameter table; hyper-parameters against accuracy;
curves side by side; accuracy against layer weights; everything as one zip; deletion after a confirmation."""

from __future__ import annotations

import streamlit as st

import ui
from ttexplore.presenters import bundle, faults, plots, reports, tracking
from ttexplore.presenters.usertext import markdown_text
from ttexplore.runs.store import ACTIVE_STATUSES

state = st.session_state
store = ui.store_or_stop()

st.title("Runs")
st.caption(f"Every run started from this app, the command line or a sweep, kept in `{faults.path_text(store.path, ui.places())}` "
           "across restarts. "
           "Click a column to sort; open a run for its page.")

runs = store.list_runs()
if not runs:
    st.info("No runs saved yet: design a layer on **Explore** and press **Train this layer**.", icon=":material/info:")
    st.page_link("pages/explore.py", label="Go to Explore", icon=":material/tune:")
    st.stop()

by_id = {run["id"]: run for run in runs}
labels = tracking.distinct_labels(runs)

# ---------------------------------------------------------------- overview
counts = tracking.status_counts(runs)
scored = [run for run in runs if run.get("best_test_accuracy") is not None]
best = max(scored, key=lambda run: run["best_test_accuracy"], default=None)
tiles = st.columns(4)
tiles[0].metric("Runs saved", len(runs), border=True)
tiles[1].metric("Completed", counts["completed"], border=True)
tiles[2].metric("Running or queued", counts["running"] + counts["queued"], border=True)
tiles[3].metric("Best test accuracy", f"{best['best_test_accuracy']:.4f}" if best else "—", border=True,
                help=markdown_text(tracking.run_title(best)) if best else None)

# ---------------------------------------------------------------- filters and the table
datasets = sorted({run["dataset"] for run in runs})
statuses = sorted({run["status"] for run in runs})
search_col, tags_col, status_col, data_col = st.columns([2, 1.5, 1.5, 1.2])
text = search_col.text_input("Search", key="runs_search", placeholder="name, shape, tag, note, sweep, id",
                             help="Every word must appear somewhere in the run's name, label, tags, notes, sweep or id")
chosen_tags = tags_col.multiselect("Tags", tracking.all_tags(runs), key="runs_tags", placeholder="any tag")
chosen_status = status_col.multiselect("Statuses", statuses, key="runs_statuses", placeholder="every status")
chosen_sets = data_col.multiselect("Datasets", datasets, key="runs_datasets", placeholder="every dataset")
shown = tracking.filter_runs(runs, text, chosen_tags, chosen_status or None, chosen_sets or None)

table = tracking.hparams_table(shown, labels=labels)
table.insert(1, "open", [f"run?id={run_id}" for run_id in table["id"]])
st.dataframe(
    table,
    hide_index=True,
    key="runs_table",
    column_order=["open", "name", "tags", "status", "shape", "ranks", "layer weights", "net weights", "× smaller", "best test acc",
                  "final test acc", "epochs", "lr", "batch", "seed", "train images", "dataset", "sweep", "epochs done",
                  "duration s", "started", "notes", "error", "id"],
    column_config={
        "open": st.column_config.LinkColumn("", display_text=":material/open_in_new:", width="small",
                                            help="Open the run's page"),
        "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
        "layer weights": st.column_config.NumberColumn(format="localized"),
        "net weights": st.column_config.NumberColumn(format="localized", help="Every parameter of the network, "
                                                     "biases and head included (a CNN's size)"),
        "× smaller": st.column_config.NumberColumn(format="%.3g×", help="Dense weights / layer weights"),
        "best test acc": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.4f"),
        "final test acc": st.column_config.NumberColumn(format="%.4f"),
        "duration s": st.column_config.NumberColumn("duration", format="%.1f s"),
        "lr": st.column_config.NumberColumn(format="%g"),
        "train images": st.column_config.NumberColumn(format="localized", help="Empty: every training image"),
    },
)
st.caption(f"{len(shown)} of {len(runs)} runs shown.")

zip_col, _ = st.columns([1, 2])
zip_col.download_button(f"Everything about these {len(shown)} runs (zip)", icon=":material/folder_zip:",
                        data=lambda: bundle.export_bundle(store, [run["id"] for run in shown]).data,
                        file_name="ttexplore-runs.zip", mime="application/zip", on_click="ignore", key="runs-zip",
                        disabled=not shown, width="stretch",
                        help="runs.csv, each run's metrics as CSV, figures (HTML, and PNG where kaleido renders), weights")

# ---------------------------------------------------------------- hyper-parameters against accuracy
st.subheader("Hyper-parameters against accuracy", divider="gray")
with_scores = [run for run in shown if run.get("best_test_accuracy") is not None]
varying = tracking.varying_hparams(with_scores)
if len(with_scores) < 2 or not varying:
    st.caption("Runs that differ in a hyper-parameter (epochs, learning rate, batch, seed, images, ranks) and have a test "
               "accuracy appear here.")
else:
    scored_table = tracking.hparams_table(with_scores)
    view = st.segmented_control("View", ["Parallel coordinates", "Scatter"], default="Parallel coordinates",
                                key="runs_hp_view", required=True, label_visibility="collapsed")
    if view == "Scatter":
        x = st.selectbox("x axis", varying, key="runs_hp_x")
        ui.show_figure(plots.hparam_scatter(scored_table, x), f"accuracy-vs-{x}", "hp-scatter")
    else:
        ui.show_figure(plots.hparams_parallel(scored_table, varying), "hyperparameters", "hp-parallel")
        st.caption("One line per run, coloured by its best test accuracy; drag along an axis to keep a range.")

# ---------------------------------------------------------------- compare
st.subheader("Compare runs", divider="gray")
options = [run["id"] for run in shown]
state["runs_compare"] = [run_id for run_id in state.get("runs_compare", [run["id"] for run in shown if run.get(
    "best_test_accuracy") is not None][:3]) if run_id in options]
compare = st.multiselect("Runs to overlay", options, key="runs_compare", format_func=labels.get,
                         placeholder="Pick runs to draw their curves together")
if compare:
    picked = [by_id[run_id] for run_id in compare]
    controls = ui.curve_controls("compare-curves")
    curves = tracking.curve_runs(picked, store.metrics_for(compare), tracking.distinct_labels(picked))
    ui.show_figure(plots.training_curves(curves, title="Training curves (train dashed, test solid)", **controls),
                   "training-curves", "compare")

st.subheader("Accuracy against layer weights", divider="gray")
with_completed = sorted({run["dataset"] for run in shown if run["status"] == "completed"})
if with_completed:
    dataset = st.segmented_control("Dataset", with_completed, default=with_completed[0], key="runs_acc_dataset",
                                   required=True)
    points = reports.accuracy_points([run for run in shown if run["dataset"] == dataset])
    st.caption("The 2018 reproduction's figure: each shape's best test accuracy against the weights of the first layer "
               "(log scale), one line per shape and training budget; train several ranks per shape (or a sweep) to "
               "draw lines.")
    ui.show_figure(plots.accuracy_vs_params(points, title=f"{dataset}: accuracy against first-layer weights"),
                   f"accuracy-vs-weights-{dataset}", "accuracy")
else:
    st.caption("Completed runs will appear here.")


# ---------------------------------------------------------------- delete, after a confirmation
def ask_to_delete() -> None:
    state.runs_confirm = list(state.get("runs_delete", []))


def forget_delete() -> None:
    state.pop("runs_confirm", None)


@st.dialog("Delete runs?", icon=":material/delete:", on_dismiss=forget_delete)
@ui.guarded("deleting runs")
def confirm_delete(run_ids: list[str]) -> None:
    st.markdown(f"Delete **{len(run_ids)} run(s)** with their metrics, weights and checkpoints? This cannot be undone.")
    for run_id in run_ids[:8]:
        st.markdown(f"- {markdown_text(labels.get(run_id, run_id))}")
    if len(run_ids) > 8:
        st.caption(f"and {len(run_ids) - 8} more")
    yes, no = st.columns(2)
    if yes.button("Delete", type="primary", icon=":material/delete:", key="runs_delete_confirm", width="stretch"):
        count = store.delete_runs(run_ids)
        forget_delete()
        state.runs_clear_delete = True  # the picker is emptied before it is drawn again
        st.toast(f"Deleted {count} run(s)")
        st.rerun()
    if no.button("Cancel", key="runs_delete_cancel", width="stretch"):
        forget_delete()
        st.rerun()


if state.pop("runs_clear_delete", False):
    state.runs_delete = []
with st.expander("Delete runs", icon=":material/delete:"):
    finished = [run["id"] for run in shown if run["status"] not in ACTIVE_STATUSES]
    doomed = st.multiselect("Runs to delete (with their metrics and weights files)", finished, format_func=labels.get,
                            key="runs_delete", help="Running or queued runs must be stopped on Train first.")
    st.button(f"Delete {len(doomed)} run(s)…", disabled=not doomed, icon=":material/delete:", key="runs_delete_button",
              on_click=ask_to_delete)
if state.get("runs_confirm"):
    confirm_delete(state.runs_confirm)
