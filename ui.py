"""Shared Streamlit plumbing for app.py and pages/: the page list (and the routing of deep links
through app.py), the one job manager and run store, the sidebar, a run's Stop/Resume button and
error banner, a figure block with its downloads, and the error boundary every page, fragment and
dialog runs in (a failure is told in the page's words with an error id, its traceback goes to the
server log; no server path is shown).

Only this file, the pages and their blocks (``page_blocks/``: parts of a page too long for one file) import
streamlit; the logic lives in ``ttexplore/``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import re
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import streamlit as st

from ttexplore.runs.config import ConfigError
from ttexplore.runs.data_info import DEFAULT_DATASET
from ttexplore.presenters import faults
from ttexplore.presenters.reports import epoch_text
from ttexplore.presenters.tracking import error_labels, status_counts, ui_words
from ttexplore.runs.kinds import layer_title
from ttexplore.presenters.usertext import markdown_text
from ttexplore.runs.jobs import JobManager
from ttexplore.runs.settings import job_settings
from ttexplore.runs.store import ACTIVE_STATUSES, RunStore, StoreError


#: The app's log: a page's failure is written here with its traceback and the error id the page shows (on the
#: server's standard error, with the time, unless the server set up logging itself).
log = logging.getLogger("ttexplore.app")
if not log.handlers and not logging.getLogger().handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(_handler)

# ---------------------------------------------------------------- routing
PAGES = Path(__file__).parent / "pages"
#: Session-state flag: this session has switched the server to app.py's router (see :func:`_route_through_app`).
ROUTER_ON = "_tt_router_on"


def app_pages() -> list:
    """The app's pages in menu order, for ``st.navigation``: app.py's router and :func:`_route_through_app`.
    Each page's URL path is its file name (``/runs``), as Streamlit's legacy ``pages/`` mode names it too."""
    return [
        st.Page(PAGES / "explore.py", title="Explore", icon=":material/tune:", default=True),
        st.Page(PAGES / "train.py", title="Train", icon=":material/play_circle:"),
        st.Page(PAGES / "runs.py", title="Runs", icon=":material/table_chart:"),
        st.Page(PAGES / "sweep.py", title="Sweep", icon=":material/grid_on:"),
        st.Page(PAGES / "compress.py", title="Compress", icon=":material/compress:"),
        st.Page(PAGES / "export.py", title="Export", icon=":material/download:"),
        # one run's page, opened from Train, Runs and Explore as /run?id=RUN_ID
        st.Page(PAGES / "run.py", title="Run", icon=":material/insights:", url_path="run", visibility="hidden"),
    ]


def _route_through_app() -> None:
    """Make every request go through app.py's router, even a deep link (``/runs``, ``/run?id=...``) that is
    the first request a fresh server gets. Public Streamlit API only.

    ``pages/`` (the layout asked for) is also the folder of Streamlit's legacy multipage mode: a server
    starts in that mode and leaves it when a session first runs ``st.navigation`` ("as soon as any
    session of your app executes the st.navigation command, your app will ignore the pages/ directory
    (across all sessions)": st.navigation's documentation). Until then a deep link runs its page file
    alone: no shared sidebar, no wide layout, a menu of file names. Every page imports this module, so
    its first import in a server runs that command with the app's own pages (the page the address
    names is among them, under the same path) and reruns: the rerun goes through app.py. The rerun cuts
    this import short, so Python imports the module again in the rerun; the session flag ends there.
    """
    if not st.runtime.exists() or st.session_state.get(ROUTER_ON):
        return
    st.session_state[ROUTER_ON] = True
    st.navigation(app_pages())
    st.rerun()


_route_through_app()


@st.cache_resource(show_spinner=False)
def get_store() -> RunStore:
    """The process-wide run store (``$TTEXPLORE_DB`` or ``~/.ttexplore/runs.db``). Opening it at the server's start
    removes the uploaded weights files no run names (:func:`ttexplore.runs.uploads.clean_uploads`)."""
    from ttexplore.runs.uploads import clean_uploads

    store = RunStore()
    try:
        clean_uploads(store)
    except (OSError, StoreError) as error:  # a store that cannot be read is said by the pages that need it
        log.warning("uploads not cleaned: %s", error)
    return store


@st.cache_resource(show_spinner=False)
def get_manager() -> JobManager:
    """The process-wide job manager: training runs survive reruns, page switches and new tabs.

    It warms up on the default dataset at once, so the first Train click shows a live point
    within a second or two. ``$TTEXPLORE_WORKERS`` / ``$TTEXPLORE_TORCH_THREADS`` override
    the concurrency (default: one run per core, one torch thread each).
    """
    # Import numpy and pandas here, before any worker thread does: plotly peeks at sys.modules and
    # breaks on a module another thread has half imported ("partially initialized module 'numpy'").
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    settings = job_settings()  # never raises: a bad variable falls back to its default, listed in settings.problems
    manager = JobManager(get_store(), max_workers=settings.workers, data_dir=settings.data_dir,
                         torch_threads=settings.torch_threads)
    manager.notes[:0] = [*settings.problems, *settings.notes]  # for the page to show (the log has them too)
    manager.warm_up(DEFAULT_DATASET)
    atexit.register(_stop_at_exit, weakref.ref(manager))
    return manager


def _stop_at_exit(manager: "weakref.ref[JobManager]") -> None:
    """The server's orderly end (``atexit``, so also after SIGTERM): interrupt the runs training here (they stay
    resumable from their checkpoints) and join the worker threads, so no thread is inside torch while the
    interpreter tears down its thread pools. A run left training in a daemon thread there, beside kaleido's
    server, aborted the process: "terminate called without an active exception" and exit code -6."""
    running = manager()
    if running is not None:
        running.shutdown(cancel_running=True, timeout=30.0)


#: A Material icon per run status, for markdown (``st.markdown(f"{STATUS_ICONS[s]} {s}")``).
STATUS_ICONS = {
    "queued": ":material/hourglass_top:",
    "running": ":material/directions_run:",
    "completed": ":material/check_circle:",
    "cancelled": ":material/stop_circle:",
    "diverged": ":material/warning:",
    "failed": ":material/error:",
    "interrupted": ":material/pause_circle:",
}


def store_problem() -> Optional[str]:
    """What is wrong with the run store (its file and the fix), or ``None`` when it opens and reads."""
    try:
        get_store().list_runs(limit=1)
    except StoreError as error:
        return str(error)
    except OSError as error:  # the store's folder cannot be made (TTEXPLORE_HOME a file, no permission)
        return f"the run store {getattr(error, 'filename', None) or ''} cannot be opened: {error.strerror or error}"
    return None


def show_store_problem(message: str) -> None:
    """The store's problem where a page needed it: the file, the fix, and that Explore still works."""
    st.error(f"**The run store cannot be used.** {said(message)}", icon=":material/database:")
    st.caption("Explore still works without it; this page needs it. Nothing was changed or overwritten.")
    st.page_link("pages/explore.py", label="Go to Explore", icon=":material/tune:")


def store_or_stop() -> RunStore:
    """The run store, or the page stops here after saying what is wrong with it."""
    problem = store_problem()
    if problem:
        show_store_problem(problem)
        st.stop()
    return get_store()


def manager_or_stop() -> JobManager:
    """The job manager (over a working store), or the page stops here after saying why not."""
    store_or_stop()
    try:
        return get_manager()
    except StoreError as error:
        show_store_problem(str(error))
        st.stop()


# ---------------------------------------------------------------- messages
def places() -> faults.Places:
    """The server's folders (home, store, artifacts, data) as a page names them (:mod:`ttexplore.presenters.faults`)."""
    return faults.server_places()


def scrubbed(message: Any) -> str:
    """``message`` with every server path in it named for the user (``$TTEXPLORE_HOME/runs.db``, ``the uploaded
    file``), never the server's own path (plain text: for a toast's or a widget's text, pass it to :func:`said`)."""
    return faults.scrub_paths(message, places())


def said(message: Any, labels: Optional[dict[str, str]] = None) -> str:
    """``message`` (a library's error text) as Markdown that shows it as written: server paths named for the user
    (:func:`scrubbed`), command-line flags and the field names in ``labels`` as the page calls them
    (:func:`~ttexplore.presenters.tracking.ui_words`), and no Markdown in it read as markup (a ``$`` is no LaTeX,
    a quoted name no link)."""
    return markdown_text(ui_words(scrubbed(message), labels))


@contextlib.contextmanager
def error_boundary(what: str):
    """Run the ``with`` body; an exception escaping it never reaches the page as a traceback. A run store that
    cannot be used is said as such (:func:`show_store_problem`); any other failure is logged with its traceback
    under a short random error id, and the page shows what failed (``what``: ``"the Sweep page"``), ttexplore's
    own message when it has one, what to do, and the id. Streamlit's ``st.stop``/``st.rerun`` pass through (they
    are not ``Exception``s)."""
    try:
        yield
    except StoreError as error:
        log.warning("%s: the run store failed: %s", what, error)
        show_store_problem(str(error))
    except Exception as error:  # noqa: BLE001 - the boundary: every failure is answered, the trace goes to the log
        error_id = faults.new_error_id()
        log.error("%s failed (error id %s)", what, error_id, exc_info=error)
        st.error(faults.failure_text(error, what, error_id, places()), icon=":material/error:")


def guarded(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator running a function inside :func:`error_boundary` (for fragments, dialogs and callbacks, which
    Streamlit may run outside app.py's boundary around the page)."""
    def wrap(body: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(body)
        def run(*args: Any, **kwargs: Any) -> Any:
            with error_boundary(what):
                return body(*args, **kwargs)
        return run
    return wrap


def fragment(what: str, run_every: Optional[float] = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``st.fragment(run_every=...)`` whose body runs inside :func:`error_boundary`: a fragment's own reruns
    happen outside app.py's boundary around the page, so a failure there is answered here (``what`` names it)."""
    return lambda body: st.fragment(guarded(what)(body), run_every=run_every)


def show_config_error(error: Exception, labels: Optional[dict[str, str]] = None) -> None:
    """An inline message for a bad entry: the field's label in bold, then the message with its fix, in the
    page's words (``labels`` maps field names such as ``in_modes`` to the labels the page shows)."""
    field, message = getattr(error, "field", None), str(error).strip("'\"")
    label = (labels or {}).get(field) or layer_title(field) or field  # a layer's field: the layer as counted
    message = ui_words(scrubbed(message), error_labels(field, labels))  # an extra layer's parts as its text names them
    prefix = f"**{markdown_text(label)}** — " if label and not message.startswith(label) else ""
    st.error(f"{prefix}{markdown_text(message)}", icon=":material/error:")


def config_or_error(build: Callable[[], Any], labels: Optional[dict[str, str]] = None) -> Optional[Any]:
    """``build()``, or ``None`` after showing its ``ConfigError``/``ValueError`` inline (never a traceback)."""
    try:
        return build()
    except (ConfigError, ValueError, KeyError) as error:
        show_config_error(error, labels)
        return None


# ---------------------------------------------------------------- figures
#: Session-state flag: the session's first drawing is on, charts wait (see :func:`show_figure` and app.py).
DEFER_PLOTS = "_tt_defer_plots"
_CHARTS_TIMER = "_tt_charts_timer"


def draw_the_charts_soon() -> None:
    """The second drawing of a session, asked for by the browser itself a moment after it has shown the
    first (a rerun sent at once from the server arrived with the first drawing and held the numbers back
    again): a timer fragment that, on its second firing, ends the first drawing and redraws the page with
    its charts. Drawn before the page (app.py puts it in the sidebar), so it runs whatever the page does."""
    state = st.session_state
    state.pop(_CHARTS_TIMER, None)

    @fragment("the charts", run_every=0.3)
    def charts_timer() -> None:
        if not state.get(_CHARTS_TIMER):  # the first firing: the browser has the numbers
            state[_CHARTS_TIMER] = True
            return
        state[DEFER_PLOTS] = False  # also for the fragments' own reruns, which do not pass app.py
        st.rerun(scope="app")  # the charts; and a full run without this fragment stops its timer

    charts_timer()


def for_screen(figure: Any) -> Any:
    """A copy of ``figure`` in Streamlit's chart theme, so it follows the app's light or dark theme.
    The figure itself keeps its white template for the PNG/SVG/HTML downloads."""
    import plotly.graph_objects as go

    shown = go.Figure(figure)
    shown.update_layout(template="streamlit")
    return shown


def _title(figure: Any) -> str:
    """A figure's title as the text it shows (its tags dropped, its entities read: ``&lt;`` is ``<``)."""
    import html

    text = getattr(getattr(figure.layout, "title", None), "text", None)
    return html.unescape(re.sub(r"<[^>]+>", "", text or ""))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "figure"


def _image_bytes(figure: Any, fmt: str) -> Callable[[], bytes]:
    """A deferred PNG/SVG render: Streamlit calls it only when the user clicks the button."""

    def render() -> bytes:
        from ttexplore.presenters import export

        height = int(figure.layout.height or 600)
        width = int(figure.layout.width or 1000)
        return export.figure_to_image(figure, fmt, width=width, height=height)

    return render


def _html_bytes(figure: Any) -> Callable[[], bytes]:
    def render() -> bytes:
        from ttexplore.presenters import export

        return export.figure_to_html(figure)

    return render


def _image_buttons(figure: Any, stem: str, key: str) -> None:
    """PNG and SVG download buttons, each rendered by kaleido only when clicked."""
    st.download_button("PNG", data=_image_bytes(figure, "png"), file_name=f"{stem}.png", mime="image/png",
                       on_click="ignore", key=f"{key}-png", type="tertiary", icon=":material/download:",
                       help="Download this figure as a PNG image (2× resolution)")
    st.download_button("SVG", data=_image_bytes(figure, "svg"), file_name=f"{stem}.svg", mime="image/svg+xml",
                       on_click="ignore", key=f"{key}-svg", type="tertiary", icon=":material/download:",
                       help="Download this figure as an SVG vector image")


def show_figure(figure: Any, name: str, key: str, downloads: bool = True) -> None:
    """Draw a plotly figure with PNG, SVG and standalone-HTML download buttons under it.

    The files are rendered only when a button is clicked (``data=callable``), by
    the one persistent kaleido server of :mod:`ttexplore.presenters.export`, so reruns stay fast.

    Args:
        name: the file name stem of every download (``"training-curves"``): the PNG, SVG and HTML buttons and the
            chart's camera button (plotly would name that one after the figure's title) all use it.
        key: unique among the page's widgets.
    """
    if st.session_state.get(DEFER_PLOTS):
        # The first drawing of a session: numbers first. Streamlit's browser side loads its 4.7 MB
        # plotting bundle when the first chart arrives and holds back everything sent with it
        # until then (6-8 s in a fresh browser); draw_the_charts_soon redraws the page with the charts.
        height = int(figure.layout.height or 450)
        with st.container(height=height, border=True, key=f"{key}-pending"):
            st.caption(f":material/hourglass_top: Drawing “{markdown_text(_title(figure) or name, width=120)}”…")
        return
    stem = _slug(name)  # one name for every download of the figure, the chart's own camera button's included
    st.plotly_chart(for_screen(figure), key=f"{key}-chart", theme="streamlit",
                    config={"displaylogo": False, "toImageButtonOptions": {"filename": stem, "format": "png", "scale": 2}})
    if not downloads:
        return
    from ttexplore.presenters.export import image_export_problem

    problem = image_export_problem()  # checked up front: a deferred download can not show an error
    with st.container(horizontal=True, horizontal_alignment="right", gap="small", key=f"{key}-downloads"):
        if problem:
            st.caption(problem)
        else:
            _image_buttons(figure, stem, key)
        st.download_button("HTML", data=_html_bytes(figure), file_name=f"{stem}.html", mime="text/html",
                           on_click="ignore", key=f"{key}-html", type="tertiary", icon=":material/download:",
                           help="Download this figure as a standalone interactive HTML page (works offline)")


# ---------------------------------------------------------------- curves
X_LABELS = {"epoch": "Epoch", "step": "Step", "time": "Wall time"}


def curve_controls(key: str) -> dict[str, Any]:
    """The curve controls every page with training curves shares: x axis, smoothing, log-scale loss.
    The choices carry over between pages and page switches. Returns the keywords of
    :func:`ttexplore.presenters.plots.training_curves`."""
    for name, default in (("curve_x", "epoch"), ("curve_smoothing", 0.0), ("curve_log_loss", False)):
        st.session_state.setdefault(name, default)
    with st.container(horizontal=True, vertical_alignment="center", gap="medium", key=f"{key}-controls"):
        st.segmented_control("x axis", list(X_LABELS), key="curve_x", format_func=X_LABELS.get, required=True,
                             persist_state="session", help="Epochs, optimizer steps, or seconds of training")
        st.slider("Smoothing", 0.0, 0.95, step=0.05, key="curve_smoothing", persist_state="session", width=220,
                  help="Exponential moving average, as TensorBoard's; the raw points stay faint behind")
        st.toggle("Log-scale loss", key="curve_log_loss", persist_state="session")
    return {"x": st.session_state.curve_x, "smoothing": st.session_state.curve_smoothing,
            "log_loss": st.session_state.curve_log_loss}


# ---------------------------------------------------------------- one click, one submission
def queue_once(jobs: Iterable[tuple[Any, dict[str, Any]]], anyway: bool = False) -> tuple[list[str], list[str]]:
    """Queue each ``(config, keywords of JobManager.queue)`` once: an identical run queued moments ago (a double
    click, another tab) is not queued again unless ``anyway``. Returns ``(new run ids, ids of the identical runs
    found queued)``."""
    manager = get_manager()
    new, repeats = [], []
    for config, keywords in jobs:
        submission = manager.queue(config, allow_duplicate=anyway, **keywords)
        (repeats if submission.duplicate else new).append(submission.run_id)
    return new, repeats


def repeat_notice(repeats: list[str], key: str, again: Callable[[], None]) -> None:
    """What a button that found its runs already queued says: which (a link to each), and a "Queue another anyway"
    button whose ``again`` callback queues them a second time."""
    with st.container(border=True, key=f"{key}-repeat"):
        st.markdown(":material/content_copy: **Already queued**: the same run was queued moments ago "
                    "(a double click, or another tab), so it was not queued twice.")
        for run_id in repeats[:4]:
            st.page_link("pages/run.py", label=f"Run {run_id}", icon=":material/insights:", query_params={"id": run_id})
        st.button("Queue another anyway", key=f"{key}-again", icon=":material/add:", on_click=again)


def resume(run_id: str) -> bool:
    """Queue an interrupted, stopped or failed run again (it continues from its checkpoint); when it can no
    longer be resumed (another tab resumed or deleted it meanwhile) say why in a toast instead. True when queued."""
    from ttexplore.runs.lifecycle import ResumeError

    try:
        get_manager().resume(run_id)
    except (ResumeError, StoreError) as error:
        st.toast(f"Not resumed: {said(error)}", icon=":material/error:")
        return False
    return True


def stop_or_resume(run: dict, where: Any, stop_key: str, resume_key: str, what: str = "the run", primary: bool = True,
                   width: str = "content") -> None:
    """A run's one action, drawn in ``where`` (a column or container): Stop while it is queued or running,
    Resume when it stopped and can continue from its checkpoint (:meth:`RunStore.can_resume`), else nothing.
    ``what`` names the run in the toast; Resume is a primary button when ``primary``."""
    if run["status"] in ACTIVE_STATUSES:
        if where.button("Stop", key=stop_key, icon=":material/stop:", width=width):
            get_manager().cancel(run["id"])
            st.toast(f"Stopping {markdown_text(what)} (it ends before its next batch)")
    elif get_store().can_resume(run):
        if where.button("Resume", key=resume_key, icon=":material/resume:", width=width,
                        type="primary" if primary else "secondary",
                        help="Continue from its last checkpoint (epoch "
                             f"{epoch_text(run.get('epochs_done'))} of {run['config'].get('epochs')})"):
            if resume(run["id"]):
                st.rerun()


def one_more_seed(run: dict, where: Any, key: str) -> None:
    """A "One more seed" button in ``where``: queues ``run``'s configuration again at the next seed its seed group has
    not used (:func:`ttexplore.presenters.groups.one_more_seed`), with its name, tags and sweep; says which in a toast."""
    from ttexplore.presenters.groups import one_more_seed as next_run

    if where.button("One more seed", key=key, icon=":material/add_circle:",
                    help="Train the same configuration again at the next unused seed: its seed group's spread "
                         "(mean ± std over seeds) shows whether a difference is more than seed noise"):
        try:
            config = next_run(get_store().list_runs(), run)
            get_manager().submit(config, sweep=run.get("sweep"), name=run.get("name", ""), tags=run.get("tags", []))
        except (ConfigError, ValueError) as error:
            st.toast(f"Not queued: {ui_words(str(error))}", icon=":material/error:")
            return
        st.toast(f"Queued seed {config.seed} of this configuration", icon=":material/queue:")


def run_error(run: dict) -> None:
    """Why a run stopped, in the app's words: a warning when it was interrupted (it can resume), an error
    when it failed or diverged; nothing for a run without an error."""
    if run["status"] in ("failed", "diverged", "interrupted") and run.get("error"):
        show = st.warning if run["status"] == "interrupted" else st.error
        show(said(run["error"]), icon=":material/error:")


def run_choice(run: dict, label: str) -> str:
    """A run as a picker lists it: its label, after its status unless it completed (``"running · TT 4x8x8x4 r=4"``)."""
    return label if run["status"] == "completed" else f"{run['status']} · {label}"


def status_text(status: str) -> str:
    """``":material/directions_run: running"``: a status with its icon, for markdown."""
    return f"{STATUS_ICONS.get(status, '')} {status}".strip()


# ---------------------------------------------------------------- sidebar
def sidebar() -> None:
    """The sidebar every page shares: what the app is, the job count, where runs are kept (named relative to the
    home), the job manager's notes (a bad ``TTEXPLORE_*`` variable, a capped worker count), and, once per session,
    a toast when the run store was made anew or replaced while in use."""
    with st.sidebar:
        st.markdown("### :material/view_in_ar: ttexplore")
        st.caption("Tensor-Train fully-connected layers (Novikov et al. 2015): design a layer, "
                   "see its cost, train it, compare it with the dense one.")
        problem = store_problem()
        if problem:
            st.error(f"The run store cannot be used: {said(problem)}", icon=":material/database:")
            return
        manager, store = get_manager(), get_store()
        # Drawn with each page run, not in a polling fragment: a fragment here, started by the run
        # that presses Train and then switches page, made Streamlit 1.67's frontend fail ("Bad delta
        # path index") in about one try in three. The Train page polls on its own.
        counts = status_counts(store.list_runs(status=ACTIVE_STATUSES))
        running, queued = counts["running"], counts["queued"]
        with st.container(border=True):
            if running or queued:
                st.markdown(f"**:material/directions_run: {running} running · :material/hourglass_top: {queued} queued**")
            else:
                st.markdown("No training in progress")
            st.caption(f"At most {manager.max_workers} run(s) at once (one per core).")
        st.caption(f"Runs are saved in `{faults.path_text(store.path, places())}` and survive restarts.")
        for note in manager.notes:  # a bad TTEXPLORE_* variable (its default used), a capped worker count
            st.warning(faults.setting_note_text(note, places()), icon=":material/settings:")
    notice = get_store().notice  # the store was deleted or replaced while in use: said once per session
    if notice and st.session_state.get("_tt_store_notice") != notice:
        st.session_state["_tt_store_notice"] = notice
        st.toast(faults.store_notice_text(notice, places()), icon=":material/database:")


#: The paper the explainer cites.
PAPER = "https://arxiv.org/abs/1509.06569"


def what_is_a_tt_layer() -> None:
    """A folded panel for newcomers: the TT-matrix formula, the count of weights, a drawing and the paper."""
    from ttexplore.presenters import design, plots

    with st.expander("What is a TT layer?", icon=":material/school:"):
        words, drawing = st.columns([3, 2], vertical_alignment="center")
        words.markdown(design.TT_INTRO)
        words.latex(design.TT_FORMULA)
        words.markdown(design.TT_RANKS)
        drawing.image(plots.tt_schematic_svg(3), caption="Three cores: input legs n below, output legs m above, ranks r between")


def rank_schedule_box(config: Callable[[], Any], labels: dict[str, str], key: str = "round_to") -> None:
    """The Train card's rank schedule (``4@5, 2@10``: after epoch 5 TT-round every TT layer to max rank 4, ...),
    checked as it is typed against the run ``config()`` would queue: the error beside the box, or what the
    schedule leads to (:func:`ttexplore.presenters.rounding.schedule_check`)."""
    from ttexplore.presenters import rounding

    st.text_input("Round during training", key=key, persist_state="session", placeholder="e.g. 4@5, 2@10", help="R@E: after "
                  "epoch E, TT-round every TT layer to max rank R, train on (rel:0.1@E: to a relative error)")
    problem, caption = rounding.schedule_check(config)
    if problem is not None:
        show_config_error(problem, labels)
    elif caption:
        st.caption(caption)


def loaded_from_banner(design: Any) -> None:
    """Explore's banner for a run loaded by Re-run with changes (``?from=RUN_ID``): what was filled in, the
    notes on what could not be carried exactly, the settings carried without a widget, and a way to drop them
    (``design``: the page's :class:`~ttexplore.presenters.design.DesignState`)."""
    values = design.values
    if not values.get("loaded_from"):
        return
    with st.container(border=True, key="loaded-from"):
        st.markdown(f":material/replay: **Prefilled from run `{markdown_text(values['loaded_from'])}`**: every layer, the "
                    "data and the training settings; change anything, then train.")
        for note in values.get("load_notes") or []:
            st.caption(f":material/info: {markdown_text(note)}")
        if design.carried_text():
            st.caption(f"Also carried over (no widget here): {markdown_text(design.carried_text())}")
        st.button("Drop the carried settings", key="forget_loaded", type="tertiary", on_click=design.forget_run)


def known_tags() -> list[str]:
    """Tags of the saved runs, offered in the tag pickers (none when the store cannot be read)."""
    from ttexplore.presenters.tracking import all_tags

    return [] if store_problem() else all_tags(get_store().list_runs(limit=500))


def already_trained(build: Callable[[], Any]) -> Optional[dict]:
    """The newest completed run of exactly the run ``build()`` describes (what a Train button would queue), or
    ``None`` (also when the store cannot be read or the configuration is wrong: the page says that elsewhere)."""
    with contextlib.suppress(ConfigError, ValueError):
        return None if store_problem() else get_store().find_completed(build())
    return None
