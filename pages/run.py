"""One run: its name, tags and notes (editable), status, numbers, curves, configuration and files.

Opened as ``/run?id=RUN_ID`` from Train, Runs and Explore's "already trained" notice.
"""

from __future__ import annotations

import streamlit as st

import ui
from ttexplore.presenters import bundle, cores, export, plots, reports, tracking

state = st.session_state
store = ui.store_or_stop()

runs = store.list_runs()
by_id = {run["id"]: run for run in runs}
run_id = st.query_params.get("id") or state.get("run_page_id")
if run_id not in by_id:
    st.title("Run")
    if run_id:
        st.warning(f"There is no run `{run_id}` in `{store.path}`: it was deleted, or the link is from another store.",
                   icon=":material/search_off:")
    if not runs:
        st.info("No runs saved yet: design a layer on **Explore** and press **Train this layer**.", icon=":material/info:")
        st.stop()
    run_id = runs[0]["id"]
labels = tracking.distinct_labels(runs, with_id=True)


def pick_run() -> None:
    st.query_params["id"] = state.run_page_pick


state.run_page_pick = run_id
state.run_page_id = run_id
st.query_params["id"] = run_id
run = by_id[run_id]
events = store.metrics(run_id)
config = run["config"]

st.title(tracking.run_title(run))
st.selectbox("Run", tracking.watch_options(runs), key="run_page_pick", on_change=pick_run,
             format_func=lambda value: ui.run_choice(by_id[value], labels[value]), label_visibility="collapsed")
state_info = tracking.run_state(run, events, tracking.queue_positions(runs).get(run_id))
st.markdown(f"**{ui.status_text(run['status'])}** · {state_info['text']} · `{run_id}`"
            + (f" · sweep **{run['sweep']}**" if run.get("sweep") else ""))
ui.run_error(run)

# ---------------------------------------------------------------- numbers (before any chart)
tiles = st.columns(5)
best, final = run.get("best_test_accuracy"), run.get("final_test_accuracy")
tiles[0].metric("Best test accuracy", f"{best:.4f}" if best is not None else "—", border=True)
tiles[1].metric("Final test accuracy", f"{final:.4f}" if final is not None else "—", border=True)
tiles[2].metric("Layer weights", f"{run['layer_params']:,}", border=True, delta=tracking.compression_text(run["compression"]),
                delta_color="off", delta_arrow="off")
tiles[3].metric("Epochs done", f"{reports.epoch_text(run.get('epochs_done'))} of {config.get('epochs')}", border=True)
elapsed = events[-1].get("elapsed_s") if events else None
tiles[4].metric("Training time", reports.format_duration(elapsed) or "—", border=True)

actions = st.container(horizontal=True, gap="small", key="run-actions")
ui.stop_or_resume(run, actions, "run-stop", "run-resume")
actions.page_link("pages/train.py", label="Watch on Train", icon=":material/monitoring:", query_params={"runs": run_id})
actions.download_button("Everything about this run (zip)", on_click="ignore", icon=":material/folder_zip:",
                        data=lambda: bundle.export_bundle(store, [run_id]).data, file_name=f"ttexplore-{run_id}.zip",
                        mime="application/zip", key="run-zip", help="Metrics CSV, config, figures (HTML and PNG) and weights")

# ---------------------------------------------------------------- identity
with st.form("run-identity", border=True):
    st.markdown("**Name, tags and notes**")
    name_col, tags_col = st.columns([1, 1])
    name = name_col.text_input("Name", value=run.get("name", ""), placeholder=reports.run_label(run, with_id=False),
                               key=f"run-name-{run_id}")
    known = tracking.all_tags(runs)
    tags = tags_col.multiselect("Tags", known, default=[tag for tag in run.get("tags", []) if tag in known],
                                accept_new_options=True, key=f"run-tags-{run_id}", placeholder="Add tags (type a new one)")
    notes = st.text_area("Notes", value=run.get("notes", ""), height=80, key=f"run-notes-{run_id}")
    if st.form_submit_button("Save", icon=":material/save:"):
        store.update_identity(run_id, name=name, tags=tags, notes=notes)
        st.toast("Saved")
        st.rerun()

# ---------------------------------------------------------------- curves
st.subheader("Training curves", divider="gray")
controls = ui.curve_controls("run-curves")
series = tracking.curve_runs([run], {run_id: events}, {run_id: tracking.run_title(run)})
ui.show_figure(plots.training_curves(series, title=f"{tracking.run_title(run)} (train dashed, test solid)", **controls),
               f"training-curves-{run_id}", "run-curves")
st.download_button("Metrics CSV", data=lambda: export.metrics_to_csv({run_id: events}, {run_id: labels[run_id]}),
                   file_name=f"metrics-{run_id}.csv", mime="text/csv", on_click="ignore", icon=":material/table:",
                   key="run-metrics-csv", disabled=not events)

# ---------------------------------------------------------------- inside the TT cores (ttexplore.presenters.cores)
st.subheader("Inside the TT cores", divider="gray", anchor="cores")
sections = cores.layer_sections(run, events, cores.spectra_for(store, run))
if not sections:
    st.caption("This network has no TT layer: there are no cores to look inside.")
for section in sections:
    layer = section["layer"]
    with st.container(border=True, key=f"cores-{layer}"):
        st.markdown(f"**{section['heading']}**")
        if section["norms"]:
            ui.show_figure(cores.norms_figure(events, layer, f"Core norms of hidden layer {layer + 1}", x=controls["x"]),
                           f"core-norms-{layer + 1}-{run_id}", f"core-norms-{layer}")
        else:
            st.caption(section["norms_note"])
        if section["spectra"] is None:
            st.caption(section["spectra_note"])
            continue
        chart, words = st.columns([1.1, 1], gap="medium")  # the table whole at 1400 px
        with chart:
            ui.show_figure(cores.spectra_figure(section["spectra"], f"Singular values per boundary, hidden layer {layer + 1}"),
                           f"core-spectra-{layer + 1}-{run_id}", f"core-spectra-{layer}")
        with words:
            st.markdown("**Effective ranks**: the rank each boundary needs for a relative error of")
            st.dataframe(cores.effective_rank_rows(section["spectra"]), hide_index=True, key=f"core-ranks-{layer}",
                         column_config={name: st.column_config.Column(width=width) for name, width in cores.TABLE_WIDTHS.items()})
            st.markdown(cores.verdict_markdown(section["spectra"]))
            st.caption(section["spectra_note"] + " Saturated: " + cores.VERDICTS["saturated"] + ". Wasted: "
                       + cores.VERDICTS["wasted"] + ".")

# ---------------------------------------------------------------- configuration and weights
left, right = st.columns([1, 1], gap="large")
with left:
    st.subheader("Configuration", divider="gray")
    shown = {"shape": reports.run_shape_text(run), "ranks (as used)": reports.run_ranks_text(run), **config}
    st.dataframe([{"setting": key, "value": "" if value is None else str(value)} for key, value in shown.items()],
                 hide_index=True, width="stretch", height=min(38 + 35 * len(shown), 520))
with right:
    st.subheader("Weights", divider="gray")
    weights = store.artifact_path(run.get("weights_path"))  # never a file outside the artifacts folder
    if weights is None or not weights.is_file():
        st.caption("No weights file: completed, stopped and interrupted runs keep theirs; this one has none yet.")
    else:
        st.download_button("Weights file (.pt)", data=lambda: export.model_file_bytes(weights), type="primary",
                           file_name=f"ttexplore-{run_id}.pt", mime="application/octet-stream", on_click="ignore",
                           icon=":material/download:", key="run-weights")
        st.code(f'from ttexplore.runs.models import load_model\nmodel, config = load_model("ttexplore-{run_id}.pt")',
                language="python")
    st.caption(f"Created {tracking.started_text(run)}"
               + (f" · ran {reports.format_duration(run['finished_at'] - run['started_at'])}"
                  if run.get("finished_at") and run.get("started_at") else ""))
