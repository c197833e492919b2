"""Runs: every saved run as a sortable, filterable hyper-parameter table (each against a pinned baseline); seed
groups and one more seed; hyper-parameters against accuracy; chosen runs side by side (curves, the settings that
differ); accuracy against layer weights; everything as one zip; deletion after a confirmation."""

from __future__ import annotations

import streamlit as st

import ui
from ttexplore.presenters import bundle, compare, faults, groups, plots, reports, tracking
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
# The pickers' labels end with the short id: Streamlit hands back a label that moved on (a status, a new run that
# reads alike) as text, and tracking.picked_ids maps it back to its run by that id.
pick_labels = tracking.distinct_labels(runs, with_id=True)

# ---------------------------------------------------------------- overview
counts = tracking.status_counts(runs)
scored = [run for run in runs if reports.best_accuracy(run)[0] is not None]
best = max(scored, key=lambda run: reports.best_accuracy(run)[0], default=None)
tiles = st.columns(4)
tiles[0].metric("Runs saved", len(runs), border=True)
tiles[1].metric("Completed", counts["completed"], border=True)
tiles[2].metric("Running or queued", counts["running"] + counts["queued"], border=True)
tiles[3].metric("Best accuracy", f"{reports.best_accuracy(best)[0]:.4f}" if best else "—", border=True,
                help=markdown_text(f"{tracking.run_title(best)}: {reports.ACCURACY_WORDS[reports.best_accuracy(best)[1]]}") if best else None)


def pin() -> None:
    store.set_setting(compare.BASELINE_SETTING, tracking.picked_id(state.runs_baseline, by_id))


state.runs_baseline = store.setting(compare.BASELINE_SETTING) if store.setting(compare.BASELINE_SETTING) in by_id else ""
st.selectbox("Pinned baseline", ["", *by_id], key="runs_baseline", on_change=pin, width=520,
             format_func=lambda run_id: pick_labels[run_id] if run_id else "none: pin a run to compare every run against it",
             help="Kept in the run store (it survives reloads): the table gives each run's accuracy difference and "
                  "weight ratio against it, the accuracy figure a line at its accuracy")
baseline = by_id.get(tracking.picked_id(state.runs_baseline, by_id))

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

table = tracking.hparams_table(shown, labels=labels, baseline=baseline)
table.insert(1, "open", [f"run?id={run_id}" for run_id in table["id"]])
st.dataframe(
    table,
    hide_index=True,
    key="runs_table",
    column_order=["open", "name", "tags", "status", "shape", "ranks", "layer weights", "net weights", "× smaller", "acc", "seed group",
                  *(["Δ acc vs baseline", "weights × baseline"] if baseline else []), "final test acc", "best test acc",
                  "test acc at best val", "epochs", "lr", "batch", "seed", "train images", "dataset", "sweep",
                  "epochs done", "duration s", "started", "notes", "error", "id"],
    column_config={
        "open": st.column_config.LinkColumn("", display_text=":material/open_in_new:", width="small",
                                            help="Open the run's page"),
        "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
        "layer weights": st.column_config.NumberColumn(format="localized"),
        "net weights": st.column_config.NumberColumn(format="localized", help="Every parameter of the network, "
                                                     "biases and head included (a CNN's size)"),
        "× smaller": st.column_config.NumberColumn(format="%.3g×", help="Dense weights / layer weights"),
        "acc": st.column_config.ProgressColumn("accuracy", min_value=0.0, max_value=1.0, format="%.4f",
                                               help=" or ".join(reports.ACCURACY_WORDS.values()).capitalize()),
        "best test acc": st.column_config.NumberColumn(format="%.4f", help=reports.ACCURACY_WORDS["test"]),
        "test acc at best val": st.column_config.NumberColumn(format="%.4f", help=reports.ACCURACY_WORDS["validation"]),
        "seed group": st.column_config.TextColumn(help="The accuracy of the runs that differ from this one only by "
                                                       "their seed: mean ± std (range below 3 runs) and how many"),
        "Δ acc vs baseline": st.column_config.NumberColumn(format="%+.4f"),
        "weights × baseline": st.column_config.NumberColumn(format="%.3g×"),
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

# ---------------------------------------------------------------- seed groups
st.subheader("Seed groups", divider="gray")
found = groups.seed_groups(shown)
group_rows = groups.groups_table(found, tracking.distinct_labels([group.first for group in found]))
st.caption("Runs that differ only by their seed repeat one experiment: their spread is the seed noise a difference "
           "must beat. Pick a group for one more seed.")
picked_group = st.dataframe(group_rows, hide_index=True, key="runs_groups", on_select="rerun", selection_mode="single-row",
                            column_order=["experiment", "seeds", "completed", "accuracy", "± std", "min", "max"],
                            column_config={name: st.column_config.NumberColumn(format="%.4f")
                                           for name in ("accuracy", "± std", "min", "max")})
if picked_group.selection.rows:
    ui.one_more_seed(found[picked_group.selection.rows[0]].first, st, "runs-more-seed")

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
state["runs_compare"] = tracking.picked_ids(state.get("runs_compare", [run["id"] for run in shown if run.get(
    "best_test_accuracy") is not None][:3]), options)
chosen = tracking.picked_ids(st.multiselect("Runs to compare", options, key="runs_compare", format_func=pick_labels.get,
                                            placeholder="Pick runs to draw their curves together and see what differs"),
                             options)
if chosen:
    picked = [by_id[run_id] for run_id in chosen]
    with st.container(key="runs-differ"):
        st.markdown("**What differs** — only the settings that are not the same for every run, beside the results")
        st.dataframe(compare.differences_table(picked, tracking.distinct_labels(picked)), hide_index=True,
                     column_config={name: st.column_config.NumberColumn(format="%.4f") for name in ("final test acc", "best acc")})
    controls = ui.curve_controls("compare-curves")
    merge = st.toggle("Seeds as one: the mean of each seed group, with its band", value=True, key="runs_merge_seeds")
    curves = tracking.curve_runs(picked, store.metrics_for(chosen), tracking.distinct_labels(picked), group_seeds=merge)
    ui.show_figure(plots.training_curves(curves, title="Training curves (train dashed, test solid)", **controls),
                   "training-curves", "compare")

st.subheader("Accuracy against layer weights", divider="gray")
with_completed = sorted({run["dataset"] for run in shown if run["status"] == "completed"})
if with_completed:
    dataset = st.segmented_control("Dataset", with_completed, default=with_completed[0], key="runs_acc_dataset",
                                   required=True)
    points = groups.accuracy_points([run for run in shown if run["dataset"] == dataset])
    st.caption("The 2018 reproduction's figure: each shape's accuracy (its seeds' mean, with their band) against the "
               "weights of the first layer (log scale), one line per shape and training budget; train several ranks "
               "per shape (or a sweep) to draw lines.")
    reference = compare.baseline_reference(baseline, labels.get(baseline["id"], "")) \
        if baseline and baseline["dataset"] == dataset else None
    ui.show_figure(plots.accuracy_vs_params(points, title=f"{dataset}: accuracy against first-layer weights",
                                            reference=reference), f"accuracy-vs-weights-{dataset}", "accuracy")
else:
    st.caption("Completed runs will appear here.")


# ---------------------------------------------------------------- delete, after a confirmation
def ask_to_delete() -> None:
    state.runs_confirm = tracking.picked_ids(state.get("runs_delete", []), by_id)


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
    doomed = tracking.picked_ids(st.multiselect("Runs to delete (with their metrics and weights files)", finished,
                                                format_func=pick_labels.get, key="runs_delete",
                                                help="Running or queued runs must be stopped on Train first."), by_id)
    st.button(f"Delete {len(doomed)} run(s)…", disabled=not doomed, icon=":material/delete:", key="runs_delete_button",
              on_click=ask_to_delete)
if state.get("runs_confirm"):
    confirm_delete(state.runs_confirm)
