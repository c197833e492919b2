"""One run: its name, tags and notes (editable), status, numbers, curves, configuration and files.

Opened as ``/run?id=RUN_ID`` from Train, Runs and Explore's "already trained" notice.
"""

from __future__ import annotations

import streamlit as st

import ui
from ttexplore.presenters import bundle, export, plots, reports, tracking
from ttexplore.presenters import rounding as rounding_views

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
parent = (config.get("init_from") or {}).get("run")
if parent:
    st.page_link("pages/run.py", label=f"Started from run {parent} ({config['init_from'].get('method', 'tt-svd')})",
                 icon=":material/call_split:", query_params={"id": parent})

# ---------------------------------------------------------------- numbers (before any chart)
tiles = st.columns(5)
best, final = run.get("best_test_accuracy"), run.get("final_test_accuracy")
tiles[0].metric("Best test accuracy", f"{best:.4f}" if best is not None else "—", border=True)
tiles[1].metric("Final test accuracy", f"{final:.4f}" if final is not None else "—", border=True)
tiles[2].metric(**tracking.weights_tile(run), border=True)  # a CNN: every parameter of the net
tiles[3].metric("Epochs done", f"{run.get('epochs_done') or 0:g} of {config.get('epochs')}", border=True)
elapsed = events[-1].get("elapsed_s") if events else None
tiles[4].metric("Training time", reports.format_duration(elapsed) or "—", border=True)

actions = st.container(horizontal=True, gap="small", key="run-actions")
ui.stop_or_resume(run, actions, "run-stop", "run-resume")
actions.page_link("pages/train.py", label="Watch on Train", icon=":material/monitoring:", query_params={"runs": run_id})
actions.download_button("Everything about this run (zip)", on_click="ignore", icon=":material/folder_zip:",
                        data=lambda: bundle.export_bundle(store, [run_id]).data, file_name=f"ttexplore-{run_id}.zip",
                        mime="application/zip", key="run-zip", help="Metrics CSV, config, figures (HTML and PNG) and weights")

# ---------------------------------------------------------------- Round and continue
def round_and_continue() -> None:
    """The form's button: queue a run from this run's TT cores rounded, then show it here."""
    from ttexplore.runs.config import ConfigError
    from ttexplore.runs.warmstart import continue_config

    try:
        rank, rel_error = rounding_views.parse_target(state.continue_target)
        child = continue_config(store, run_id, rank, rel_error, int(state.continue_epochs))
        name = f"{tracking.run_title(run)} rounded to {state.continue_target.strip()}"
        state.run_page_id = ui.get_manager().submit(child, name=name, tags=["round-and-continue"])
        st.query_params["id"] = state.run_page_id
    except ConfigError as error:  # a rank or error that cannot round: named as the box the user typed in
        state.continue_error = ConfigError("round_target", str(error)) if error.field in ("rank", "rel_error") else error
    except ValueError as error:
        state.continue_error = error


weights = store.artifact_path(run.get("weights_path"))  # never a file outside the artifacts folder
offered, offer_text = rounding_views.continue_offer(run, events, weights is not None and weights.is_file())
if offered:
    with st.expander("Round and continue", icon=":material/compress:", expanded="continue_error" in state):
        st.caption(offer_text)
        target_col, epochs_col, button_col = st.columns([1.2, 1, 1], vertical_alignment="bottom")
        target_col.text_input("Round to", value="2", key="continue_target", help="A max rank (2) or rel: and a relative "
                              "error (rel:0.1), as a rank schedule writes them")
        epochs_col.number_input("Then train epochs", 0, 500, value=int(config.get("epochs") or 5), key="continue_epochs")
        button_col.button("Round and continue", type="primary", icon=":material/play_arrow:", key="continue_submit",
                          on_click=round_and_continue)
        if "continue_error" in state:
            ui.show_config_error(state.pop("continue_error"), {"round_target": "Round to", "epochs": "Then train epochs"})

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

# ---------------------------------------------------------------- configuration and weights
left, right = st.columns([1, 1], gap="large")
with left:
    st.subheader("Configuration", divider="gray")
    shown = reports.config_rows(run)  # every hidden layer on a row of its own
    st.dataframe(shown, hide_index=True, width="stretch", height=min(38 + 35 * len(shown), 520))
with right:
    st.subheader("Weights", divider="gray")
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
