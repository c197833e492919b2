"""ttexplore's app: ``streamlit run app.py``.

The entry point and router only: the pages (``ui.app_pages``), the shared sidebar, nothing else.
Pages live in ``pages/`` and arrange widgets around ``ttexplore/``; shared
Streamlit plumbing (the page list, the one job manager and run store, figure downloads) is in ``ui.py``.
"""

import streamlit as st

import ui

st.set_page_config(page_title="ttexplore", page_icon="🧮", layout="wide")

page = st.navigation(ui.app_pages())
# A session's first drawing sends the numbers without the charts (see ui.show_figure), then draws again
# with them: the tiles are on screen while the browser still loads its plotting code.
state = st.session_state
first_drawing = not state.get("_tt_drawn")
state[ui.DEFER_PLOTS] = first_drawing
with st.sidebar, ui.error_boundary("the sidebar"):
    ui.sidebar()
try:
    # One boundary around every page, deep links included (they come through this router): a failure is told
    # in the page's words with an error id, its traceback goes to the server log (ui.error_boundary).
    with ui.error_boundary(f"the {page.title} page"):
        page.run()
finally:  # also when the page stopped early (st.stop) or switched pages
    state["_tt_drawn"] = True
    state[ui.DEFER_PLOTS] = False
if first_drawing and state.get(ui.PLOTS_DEFERRED):
    # The browser asks for the second drawing itself, a moment after it has shown the first one (a rerun
    # sent at once from here arrived with the first drawing, and held the numbers back again).
    @ui.fragment("the charts", run_every=0.3)
    def draw_the_charts() -> None:
        if state.get("_tt_charts_timer"):  # the browser's timer fired: the numbers are on screen
            state.pop(ui.PLOTS_DEFERRED, None)
            st.rerun(scope="app")
        state["_tt_charts_timer"] = True

    draw_the_charts()
