"""One run: its name, tags and notes (editable), status, numbers, curves, configuration and files.

Opened as ``/run?id=RUN_ID`` from Train, Runs and Explore's "already trained" notice.
"""

from __future__ import annotations

import streamlit as st

import ui
from ttexplore.presenters import bundle, cores, export, faults, groups, plots, reports, tracking
from ttexplore.presenters import rounding as rounding_views
from ttexplore.presenters.design import rerun_problem
from ttexplore.presenters.usertext import markdown_text
from ttexplore.runs.config import ConfigError

state = st.session_state
store = ui.store_or_stop()

runs = store.list_runs()
by_id = {run["id"]: run for run in runs}
linked = st.query_params.get("id")
if linked and linked not in by_id:  # a link names this run: it stays the one asked for, never another
    st.title("Run")
    st.warning(faults.missing_run_text(linked), icon=":material/search_off:")
    st.page_link("pages/runs.py", label="See every saved run on Runs", icon=":material/table_chart:")
    st.stop()
if not runs:
    st.title("Run")
    st.info("No runs saved yet: design a layer on **Explore** and press **Train this layer**.", icon=":material/info:")
    st.stop()
# /run without an id: the run last opened in this tab, else the newest (the address changes only on a pick)
run_id = linked or (state.get("run_page_id") if state.get("run_page_id") in by_id else runs[0]["id"])
labels = tracking.distinct_labels(runs, with_id=True)


def pick_run() -> None:
    picked = tracking.picked_id(state.run_page_pick, by_id, run_id)  # a label that moved on maps back to its run
    if picked != run_id:
        st.query_params["id"] = picked


state.run_page_pick = run_id
state.run_page_id = run_id
run = by_id[run_id]
events = store.metrics(run_id)
config = run["config"]

st.title(markdown_text(tracking.run_title(run), width=200))
st.selectbox("Run", tracking.watch_options(runs), key="run_page_pick", on_change=pick_run,
             format_func=lambda value: ui.run_choice(by_id[value], labels[value]), label_visibility="collapsed")
state_info = tracking.run_state(run, events, tracking.queue_positions(runs).get(run_id))
st.markdown(f"**{ui.status_text(run['status'])}** · {markdown_text(state_info['text'])} · `{run_id}`"
            + (f" · sweep **{markdown_text(run['sweep'], width=120)}**" if run.get("sweep") else ""))
if run.get("damaged"):
    st.warning(f"This run's {' and '.join(run['damaged'])} cannot be read from the run store (the row was changed "
               "outside ttexplore): the page shows what it can.", icon=":material/warning:")
ui.run_error(run)
parent = (config.get("init_from") or {}).get("run")
if parent:
    st.page_link("pages/run.py", label=f"Started from run {parent} ({config['init_from'].get('method', 'tt-svd')})",
                 icon=":material/call_split:", query_params={"id": parent})

# ---------------------------------------------------------------- numbers (before any chart)
tiles = st.columns(5)
(best, basis), final = reports.best_accuracy(run), run.get("final_test_accuracy")
tiles[0].metric("Test acc at best val epoch" if basis == "validation" else "Best test acc (on test)",
                f"{best:.4f}" if best is not None else "—", border=True, help=reports.ACCURACY_WORDS[basis].capitalize()
                + (f"; the best test point, selected on test (optimistic): {run['best_test_accuracy']:.4f}"
                   if basis == "validation" and run.get("best_test_accuracy") is not None else ""))
tiles[1].metric("Final test accuracy", f"{final:.4f}" if final is not None else "—", border=True)
tiles[2].metric(**tracking.weights_tile(run), border=True)  # a CNN: every parameter of the net
tiles[3].metric("Epochs done", f"{reports.epoch_text(run.get('epochs_done'))} of {config.get('epochs')}", border=True)
elapsed = events[-1].get("elapsed_s") if events else None
tiles[4].metric("Training time", reports.format_duration(elapsed) or "—", border=True)

seeds = groups.seed_groups(groups.group_of(runs, run))[0]
notes = [reports.validation_text(run), f"seed group: {groups.spread_text(seeds.accuracy)}, seeds "
         f"{', '.join(map(str, seeds.seeds))}" if seeds.accuracy and len(seeds.per_seed) > 1 else ""]
if any(notes):
    st.caption(" · ".join(note for note in notes if note))

actions = st.container(horizontal=True, gap="small", key="run-actions")
ui.stop_or_resume(run, actions, "run-stop", "run-resume")
problem = rerun_problem(run)
actions.page_link("pages/explore.py", label="Re-run with changes", icon=":material/edit:", query_params={"from": run_id},
                  disabled=problem is not None, help=problem or "Open Explore with this run's whole configuration")
ui.one_more_seed(run, actions, "run-more-seed")
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
        try:
            store.update_identity(run_id, name=name, tags=tags, notes=notes)
        except ConfigError as error:  # an over-long name, tag or notes: said under the form, nothing saved
            ui.show_config_error(error, {error.field: error.field.capitalize()})  # Name, Tags, Notes
        else:
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
    shown = reports.config_rows(run)  # every hidden layer on a row of its own
    st.dataframe(shown, hide_index=True, width="stretch", height=min(38 + 35 * len(shown), 520))
with right:
    st.subheader("Weights", divider="gray")
    weights = store.artifact_path(run.get("weights_path"))  # never a file outside the artifacts folder
    best_weights = store.best_weights_path_for(run_id)
    if weights is None or not weights.is_file():
        st.caption("No weights file: completed, stopped and interrupted runs keep theirs; this one has none yet.")
    else:
        st.download_button("Last epoch's weights (.pt)", data=lambda: export.model_file_bytes(weights), type="primary",
                           file_name=f"ttexplore-{run_id}.pt", mime="application/octet-stream", on_click="ignore",
                           icon=":material/download:", key="run-weights")
    if best_weights.is_file():
        st.download_button(f"Best validation epoch's weights (epoch {run['best_val_epoch']:g}, .pt)",
                           data=lambda: export.model_file_bytes(best_weights), file_name=f"ttexplore-{run_id}-best.pt",
                           mime="application/octet-stream", on_click="ignore", icon=":material/download:",
                           key="run-best-weights", help="The weights of the epoch with the lowest validation loss")
        st.code(f'from ttexplore.runs.models import load_model\nmodel, config = load_model("ttexplore-{run_id}.pt")',
                language="python")
    st.caption(f"Created {tracking.started_text(run)}"
               + (f" · ran {reports.format_duration(run['finished_at'] - run['started_at'])}"
                  if run.get("finished_at") and run.get("started_at") else ""))
