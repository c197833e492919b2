"""ttexplore's app: ``streamlit run app.py``.

The entry point and router only: the page list, the shared sidebar, nothing else.
Pages live in ``pages/`` and arrange widgets around ``ttexplore/``; shared
Streamlit plumbing (the one job manager and run store, figure downloads) is in ``ui.py``.
"""

from pathlib import Path

import streamlit as st

import ui

HERE = Path(__file__).parent

st.set_page_config(page_title="ttexplore", page_icon="🧮", layout="wide")

pages = [
    st.Page(HERE / "pages" / "explore.py", title="Explore", icon=":material/tune:", default=True),
    st.Page(HERE / "pages" / "train.py", title="Train", icon=":material/play_circle:"),
    st.Page(HERE / "pages" / "runs.py", title="Runs", icon=":material/table_chart:"),
    st.Page(HERE / "pages" / "sweep.py", title="Sweep", icon=":material/grid_on:"),
    st.Page(HERE / "pages" / "compress.py", title="Compress", icon=":material/compress:"),
    st.Page(HERE / "pages" / "export.py", title="Export", icon=":material/download:"),
]

page = st.navigation(pages)
ui.sidebar()
try:
    page.run()
except ui.StoreError as error:  # the store broke mid-page (a file replaced or truncated while serving)
    ui.show_store_problem(str(error))
