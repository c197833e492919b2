"""Export: everything as one zip; the 2018 reproduction's figures and table from saved runs, metrics as CSV/JSON,
trained weights."""

from __future__ import annotations

from collections import Counter

import streamlit as st

import ui
from ttexplore.presenters import bundle, export, groups, plots, reports, tracking
from ttexplore.tt import ttmath

state = st.session_state
store = ui.store_or_stop()

st.title("Export")
st.caption("Figures (PNG, SVG, standalone HTML), metrics (CSV, JSON) and trained weights. Every chart elsewhere in "
           "the app has the same download buttons under it.")

runs = store.list_runs()
if not runs:
    st.info("Nothing to export yet: train a run first.", icon=":material/info:")
    st.page_link("pages/explore.py", label="Go to Explore", icon=":material/tune:")
    st.stop()

by_id = {run["id"]: run for run in runs}
labels = tracking.distinct_labels(runs, with_id=True)
label = labels.get
with_metrics = [run["id"] for run in runs if run.get("best_test_accuracy") is not None]
state["export_runs"] = tracking.picked_ids(state.get("export_runs", with_metrics[:3]), by_id)
picked = tracking.picked_ids(st.multiselect("Runs to export", list(by_id), key="export_runs", format_func=label,
                        placeholder="Pick one or more runs"), by_id)  # a label that moved on maps back to its run

# ---------------------------------------------------------------- everything
with st.container(border=True, horizontal=True, vertical_alignment="center", key="everything"):
    st.markdown("**Everything in one zip**: the runs table, each run's metrics as CSV, the figures (HTML, and PNG "
                "where kaleido renders) and the trained weights. `python -m ttexplore runs export --out FILE.zip` "
                "makes the same file.")
    st.download_button(f"Picked runs ({len(picked)})", data=lambda: bundle.export_bundle(store, picked).data,
                       file_name="ttexplore-runs.zip", mime="application/zip", on_click="ignore", disabled=not picked,
                       icon=":material/folder_zip:", key="zip-picked")
    st.download_button(f"All runs ({len(runs)})", data=lambda: bundle.export_bundle(store).data, type="primary",
                       file_name="ttexplore-all-runs.zip", mime="application/zip", on_click="ignore",
                       icon=":material/folder_zip:", key="zip-all")

# ---------------------------------------------------------------- metrics
st.subheader("Metrics", divider="gray")
metrics = store.metrics_for(picked)
picked_labels = {run_id: label(run_id) for run_id in picked}
configs = {run_id: by_id[run_id]["config"] for run_id in picked}
columns = st.columns(3)
columns[0].download_button("Metrics CSV", data=lambda: export.metrics_to_csv(metrics, picked_labels), file_name="metrics.csv",
                           mime="text/csv", on_click="ignore", disabled=not picked, icon=":material/table:",
                           width="stretch", key="metrics-csv", help="One row per metric event, a run_id column")
columns[1].download_button("Metrics JSON", data=lambda: export.metrics_to_json(metrics, configs, picked_labels),
                           file_name="metrics.json", mime="application/json", on_click="ignore", disabled=not picked,
                           icon=":material/data_object:", width="stretch", key="metrics-json",
                           help="Each run's config and its metric events")
columns[2].download_button("Runs table CSV (all runs)", data=lambda: export.table_to_csv(tracking.hparams_table(runs)),
                           file_name="runs.csv", mime="text/csv", on_click="ignore", icon=":material/table_chart:",
                           width="stretch", key="runs-csv")
st.caption(f"{sum(len(events) for events in metrics.values())} metric events from {len(picked)} run(s).")

# ---------------------------------------------------------------- figures
st.subheader("Figures", divider="gray")
if picked:
    chosen = [by_id[run_id] for run_id in picked]
    curves = tracking.curve_runs(chosen, metrics, tracking.distinct_labels(chosen))
    ui.show_figure(plots.training_curves(curves, title="Training curves (train dashed, test solid)"), "training-curves",
                   "export-curves")

completed = [run for run in runs if run["status"] == "completed"]
if completed:
    datasets = sorted({run["dataset"] for run in completed})
    dataset = st.selectbox("Dataset for the 2018 reproduction's figure and table", datasets, key="export_dataset")
    on_set = [run for run in completed if run["dataset"] == dataset]
    ui.show_figure(plots.accuracy_vs_params(groups.accuracy_points(on_set), title=f"{dataset}: accuracy against "
                   "the number of weights in the first layer"), f"accuracy-vs-weights-{dataset}", "export-accuracy")
    counts = Counter(reports.run_shape_text(run) for run in on_set if reports.has_tt_cores(run))
    shapes = sorted(counts, key=lambda name: (-counts[name], name != "4x8x8x4", name))  # most runs first
    if shapes:
        shape = st.selectbox("Shape for the rank table (slide 13)", shapes, key="export_shape")
        table = groups.rank_table(on_set, shape=shape)
        st.dataframe(table, hide_index=True, column_config={
            "compression rate": st.column_config.NumberColumn(format="%.1e"),
            "accuracy": st.column_config.NumberColumn(format="%.3f")})
        st.download_button("Rank table CSV", data=export.table_to_csv(table), file_name=f"rank-table-{dataset}.csv",
                           mime="text/csv", on_click="ignore", icon=":material/download:", key="rank-csv")

# ---------------------------------------------------------------- weights
st.subheader("Trained weights", divider="gray")
saved = [run["id"] for run in runs if store.artifact_path(run.get("weights_path"))]  # never a file outside artifacts
if not saved:
    st.caption("Completed (or stopped) runs keep their weights; none yet.")
else:
    run_id = tracking.picked_id(st.selectbox("Run", saved, format_func=label, key="export_weights_run"), saved, saved[0])
    run = by_id[run_id]
    left, right = st.columns([1, 2])
    left.download_button("Weights file (.pt)", data=lambda: export.model_file_bytes(store.artifact_path(run["weights_path"])),
                         file_name=f"ttexplore-{run_id}.pt", mime="application/octet-stream", on_click="ignore",
                         type="primary", icon=":material/download:", key="weights", width="stretch")
    config = reports.run_config(run)
    if config is not None and config.layers[0].has_tt_cores:
        cores = ttmath.core_shapes(config.layers[0].in_modes, config.layers[0].out_modes, config.layers[0].ranks)
        left.caption("TT cores: " + ", ".join("×".join(map(str, shape)) for shape in cores))
        right.code(f'from ttexplore import TTLinear\nlayer = TTLinear.load("ttexplore-{run_id}.pt")  # the trained TT '
                   'cores\n\nfrom ttexplore.runs.models import load_model\nmodel, config = load_model("ttexplore-'
                   f'{run_id}.pt")  # the whole network', language="python")
    else:
        right.code(f'from ttexplore.runs.models import load_model\nmodel, config = load_model("ttexplore-{run_id}.pt")',
                   language="python")
