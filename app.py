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
# with them: the tiles are on screen while the browser still loads its plotting code. The first drawing
# is decided and its timer drawn before the page: a page that stops early (st.stop), or a click that
# interrupts this run, skips every line after page.run(), `finally` blocks included (there, every
# session-state access raises the stop again).
state = st.session_state
first_drawing = not state.get("_tt_drawn")
state["_tt_drawn"] = True
state[ui.DEFER_PLOTS] = first_drawing
with st.sidebar, ui.error_boundary("the sidebar"):
    ui.sidebar()
    if first_drawing:
        ui.draw_the_charts_soon()
# One boundary around every page, deep links included (they come through this router): a failure is told
# in the page's words with an error id, its traceback goes to the server log (ui.error_boundary).
with ui.error_boundary(f"the {page.title} page"):
    page.run()
state[ui.DEFER_PLOTS] = False  # the page returned: its fragments' own reruns draw charts (else the timer says so)
