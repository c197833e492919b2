"""Train: follow runs live, stop them, see the queue. Runs are started from Explore."""

from __future__ import annotations

import streamlit as st

import ui
from ttexplore.presenters import plots
from ttexplore.presenters import reports
from ttexplore.runs.store import ACTIVE_STATUSES, RESUMABLE_STATUSES

state = st.session_state
store, manager = ui.store_or_stop(), ui.manager_or_stop()
SHOWN = 8  # rows in the run list; the Runs page has them all
POLL_S = 1.0  # how often the live view reads the store while a run is active
FIRST_POINT_POLL_S = 0.25  # ... and while a shown run is running without its first point yet

st.title("Train")
st.caption("Runs started from **Explore** appear here and update every second. They keep going when you switch "
           "pages, move sliders or close the tab; at most one per core runs at once, the others wait in the queue.")


def tracked_ids() -> list[str]:
    """This session's runs, newest first, then every other run queued or running (any tab, the CLI, a sweep),
    then interrupted runs that can resume."""
    ids = list(state.get("session_runs", []))
    others = store.list_runs(status=ACTIVE_STATUSES) + store.list_runs(status=("interrupted",), limit=SHOWN)
    return ids + [run["id"] for run in others if run["id"] not in ids]


ids = tracked_ids()
if not ids:
    st.info("No run started from this tab yet, and none is training: design a layer on **Explore** and press "
            "**Train**. Finished runs are kept on **Runs**.", icon=":material/info:")
    st.page_link("pages/explore.py", label="Go to Explore", icon=":material/tune:")
    st.page_link("pages/runs.py", label="See saved runs", icon=":material/table_chart:")
    st.stop()

active_at_start = {run_id for run_id in ids[:SHOWN] if (store.get_run(run_id) or {}).get("status") in ACTIVE_STATUSES}


def starting_runs() -> set[str]:
    """Shown runs that are training but have no point yet: until they have one, the page polls faster."""
    return set(manager.starting()) & set(ids[:SHOWN])


starting_at_start = starting_runs()


def run_row(run: dict, events: list, watched: bool) -> None:
    """One run: name and status, progress, accuracy, and its Stop / Show button."""
    with st.container(border=True):
        name, bar, score, action = st.columns([3, 4, 1.4, 1.1], vertical_alignment="center")
        icon = ui.STATUS_ICONS.get(run["status"], "")
        name.markdown(f"{':material/show_chart: ' if watched else ''}**{reports.run_label(run, with_id=False)}**")
        name.caption(f"{icon} {run['status']} · {run['layer_params']:,} weights · #{run['id'][-6:]}")
        fraction, text = reports.progress(run, events)
        elapsed = events[-1]["elapsed_s"] if events else None
        bar.progress(fraction, text=text + (f" · {reports.format_duration(elapsed)}" if elapsed else ""))
        best = run.get("best_test_accuracy")
        score.metric("best test acc", f"{best:.3f}" if best is not None else "—")
        if run["status"] in ACTIVE_STATUSES:
            if action.button("Stop", key=f"stop-{run['id']}", icon=":material/stop:", width="stretch"):
                manager.cancel(run["id"])
                st.toast(f"Stopping {reports.run_label(run)} (it ends before its next batch)")
        elif run["status"] in RESUMABLE_STATUSES and store.checkpoint_path_for(run["id"]).is_file():
            if action.button("Resume", key=f"resume-{run['id']}", icon=":material/resume:", width="stretch",
                             help="Continue from its last checkpoint (epoch "
                                  f"{run.get('epochs_done', 0):g} of {run['config'].get('epochs')})"):
                manager.resume(run["id"])
                st.rerun()
        elif not watched and action.button("Show", key=f"show-{run['id']}", icon=":material/show_chart:", width="stretch"):
            state.watch = [run["id"]]
            st.rerun(scope="fragment")
        if run["status"] in ("failed", "diverged", "interrupted") and run.get("error"):
            st.error(run["error"], icon=":material/error:")


@st.fragment(run_every=(FIRST_POINT_POLL_S if starting_at_start else POLL_S) if active_at_start else None)
def live() -> None:
    runs = [run for run in (store.get_run(run_id) for run_id in ids[:SHOWN]) if run is not None]
    metrics = store.metrics_for([run["id"] for run in runs])
    watched = [run for run in runs if run["id"] in state.get("watch", [])] or runs[:1]
    watched_ids = {run["id"] for run in watched}
    figure = plots.training_curves(reports.curve_series(watched, metrics),
                                   title="Loss and accuracy (test solid, train dashed)")
    ui.show_figure(figure, "training-curves", "live-curves")
    for run in runs:
        run_row(run, metrics[run["id"]], run["id"] in watched_ids)
    if len(ids) > SHOWN:
        st.caption(f"{len(ids) - SHOWN} older run(s) are on the Runs page.")
    active_now = {run["id"] for run in runs if run["status"] in ACTIVE_STATUSES}
    if active_now != active_at_start or starting_runs() != starting_at_start:
        st.rerun()  # a run ended, started or drew its first point: redraw the page, which also resets the timer


live()
