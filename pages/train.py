"""Train: a live dashboard over any runs (this tab's, another tab's, the CLI's, a sweep's): their curves
as they grow, their progress, Stop and Resume. The logic is in ttexplore.presenters.tracking."""

from __future__ import annotations

import streamlit as st

import ui
from ttexplore.presenters import faults, plots, reports
from ttexplore.presenters import tracking
from ttexplore.presenters.usertext import markdown_text
from ttexplore.runs.store import ACTIVE_STATUSES

state = st.session_state
store, manager = ui.store_or_stop(), ui.manager_or_stop()
POLL_S = 1.0  # how often the live view reads the store while a run it shows is active
FIRST_POINT_POLL_S = 0.25  # ... and while a shown run is running without its first point yet
IDLE_POLL_S = 3.0  # ... and, when it follows runs automatically, how often it looks for new ones

st.title("Train")
runs = store.list_runs()
if not runs:
    st.info("No run yet: design a layer on **Explore** and press **Train this layer**, or start one from the command "
            "line (`python -m ttexplore train --record`) or the **Sweep** page; it shows up here live.",
            icon=":material/info:")
    st.page_link("pages/explore.py", label="Go to Explore", icon=":material/tune:")
    st.stop()
by_id = {run["id"]: run for run in runs}

# ---------------------------------------------------------------- which runs the dashboard follows
# Automatic (no ?runs= in the address): every running and queued run, the interrupted ones and those that
# ended in the last hours. Picking runs pins the view in the address, so a reload or a shared link keeps it.
added = state.pop("watch_add", [])
pinned = "runs" in st.query_params
chosen = tracking.dashboard_runs(runs, st.query_params["runs"] if pinned else None, added)
if pinned and added:
    st.query_params["runs"] = ",".join(chosen)
gone = faults.missing_ids(st.query_params["runs"], by_id) if pinned else []  # the address keeps them: a link means what it says
options = tracking.watch_options(runs)
picker_labels = tracking.distinct_labels(runs, with_id=True)  # the short id maps a stale label back


def watch_changed() -> None:
    """Pin the picked runs in the address. A label that only moved on (queued to running) comes back as
    text: mapped back to its run, it is no pick, and the view keeps following runs automatically."""
    picked = tracking.picked_ids(state.train_watch, by_id)
    if picked != chosen:
        st.query_params["runs"] = ",".join(picked)


def follow_automatically() -> None:
    st.query_params.pop("runs", None)


state.train_watch = chosen
pick_col, mode_col = st.columns([4, 1.3], vertical_alignment="bottom")
pick_col.multiselect("Runs on this dashboard", options, key="train_watch", on_change=watch_changed,
                     format_func=lambda run_id: ui.run_choice(by_id[run_id], picker_labels[run_id]),
                     placeholder="Pick runs to watch: running, queued or finished, from anywhere",
                     help="Runs from this tab, other tabs, the command line and sweeps. Picking pins the view "
                          "(the address keeps it across reloads).")
if pinned:
    mode_col.button("Follow running & recent", icon=":material/autorenew:", on_click=follow_automatically,
                    key="train_follow", width="stretch", help="Show every running, queued and recently ended run again")
else:
    mode_col.caption(":material/autorenew: Following running, queued, interrupted and recent runs automatically.")
if gone:
    st.warning(faults.missing_ids_text(gone), icon=":material/search_off:")

watched = [by_id[run_id] for run_id in chosen]
active_at_start = {run["id"] for run in watched if run["status"] in ACTIVE_STATUSES}

# ---------------------------------------------------------------- the numbers, before any chart
counts = tracking.status_counts(runs)
scored = [run for run in watched if reports.best_accuracy(run)[0] is not None]
best = max(scored, key=lambda run: reports.best_accuracy(run)[0], default=None)
tiles = st.columns(4)
tiles[0].metric("Running", counts["running"], border=True, help=f"At most {manager.max_workers} at once (one per core)")
tiles[1].metric("Queued", counts["queued"], border=True, help="Waiting for a free core, oldest first")
tiles[2].metric("Interrupted", counts["interrupted"], border=True,
                help="Stopped by a server restart or a kill; Resume continues from the last checkpoint")
tiles[3].metric("Best accuracy shown", f"{reports.best_accuracy(best)[0]:.4f}" if best else "—", border=True,
                help=markdown_text(f"{tracking.run_title(best)}: {reports.ACCURACY_WORDS[reports.best_accuracy(best)[1]]}") if best
                else "No run on the dashboard has a test accuracy yet")

resumable = [run for run in runs if run["status"] == "interrupted" and store.can_resume(run)]
if resumable:
    def resume_all() -> None:
        for run in resumable:
            ui.resume(run["id"])

    with st.container(border=True, horizontal=True, vertical_alignment="center", key="interrupted-banner"):
        st.markdown(f":material/pause_circle: **{len(resumable)} run{'s were' if len(resumable) != 1 else ' was'} "
                    "interrupted** (the server or the process running it stopped). Resume continues each from its "
                    "last checkpoint; its curve goes on where it stopped.")
        st.button("Resume all", icon=":material/resume:", on_click=resume_all, key="resume-all", type="primary")

controls = ui.curve_controls("train-curves")
merge = st.toggle("Seeds as one: the mean of each seed group, with its band", value=True, key="train_merge_seeds",
                  help="Runs that differ only by their seed drawn as one mean curve with a band (± 1 std from three "
                       "runs, min–max below); each keeps its own row below")


def starting_runs() -> set[str]:
    """Shown runs that are training here but have no point yet: until they have one, the page polls faster."""
    return set(manager.starting()) & set(chosen)


starting_at_start = starting_runs()
poll = (FIRST_POINT_POLL_S if starting_at_start else POLL_S) if active_at_start else None


def run_row(run: dict, events: list, label: str, position) -> None:
    """One run: its name (a link to its page), state and progress, best accuracy, and Stop / Resume."""
    with st.container(border=True, key=f"row-{run['id']}"):
        name, bar, score, action = st.columns([4.2, 3.4, 1.1, 1.7], vertical_alignment="center")  # "Resume" whole at 1400 px
        name.page_link("pages/run.py", label=markdown_text(label), icon=":material/insights:", query_params={"id": run["id"]})
        name.caption(f"{ui.status_text(run['status'])} · {run['layer_params']:,} weights · #{run['id'][-6:]}")
        info = tracking.run_state(run, events, position)
        bar.progress(info["fraction"], text=info["text"])
        best, basis = reports.best_accuracy(run)
        score.metric("acc at best val" if basis == "validation" else "best test acc", f"{best:.3f}" if best is not None else "—",
                     help=reports.ACCURACY_WORDS[basis])
        ui.stop_or_resume(run, action, f"stop-{run['id']}", f"resume-{run['id']}", what=label, width="stretch",
                          primary=run["status"] == "interrupted")
        ui.run_error(run)


@ui.fragment("the live view", run_every=poll)
def live() -> None:
    fresh = store.list_runs()
    now_by_id = {run["id"]: run for run in fresh}
    shown = [now_by_id[run_id] for run_id in chosen if run_id in now_by_id]
    metrics = store.metrics_for([run["id"] for run in shown])
    labels = tracking.distinct_labels(shown)
    if shown:
        figure = plots.training_curves(tracking.curve_runs(shown, metrics, labels, group_seeds=merge),
                                       title="Loss and accuracy (train dashed, test solid)", **controls)
        ui.show_figure(figure, "training-curves", "live-curves")
    else:
        st.info("No run picked: choose runs above, or follow running and recent runs.", icon=":material/info:")
    positions = tracking.queue_positions(fresh)
    for run in shown:
        run_row(run, metrics[run["id"]], labels[run["id"]], positions.get(run["id"]))
    hidden = len(fresh) - len(shown)
    if hidden:
        st.caption(f"{hidden} more run(s) are saved: pick them above, or see them all on **Runs**.")
    active_now = {run["id"] for run in shown if run["status"] in ACTIVE_STATUSES}
    follows_new = not pinned and set(tracking.default_watch(fresh)) - set(chosen)
    if active_now != active_at_start or starting_runs() != starting_at_start or follows_new:
        st.rerun()  # a run ended, started, drew its first point or appeared: redraw the page, which also resets the timer


live()

if not pinned and not active_at_start:
    @ui.fragment("looking for new runs", run_every=IDLE_POLL_S)
    def look_for_new_runs() -> None:
        """While nothing shown trains, look for runs started elsewhere (another tab, the CLI, a sweep) without
        redrawing the chart (a redraw under the pointer could swallow a click on its download buttons)."""
        if set(tracking.default_watch(store.list_runs())) - set(chosen):
            st.rerun()

    look_for_new_runs()
