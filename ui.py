"""Shared Streamlit plumbing for app.py and pages/: the one job manager and run store.

Only this file and the pages import streamlit; the logic lives in ``ttexplore/``.
"""

from __future__ import annotations

import os

import streamlit as st

from ttexplore.jobs import JobManager
from ttexplore.store import RunStore


@st.cache_resource(show_spinner=False)
def get_store() -> RunStore:
    """The process-wide run store (``$TTEXPLORE_DB`` or ``~/.ttexplore/runs.db``)."""
    return RunStore()


@st.cache_resource(show_spinner=False)
def get_manager() -> JobManager:
    """The process-wide job manager: training runs survive reruns, page switches and new tabs."""
    workers = int(os.environ.get("TTEXPLORE_WORKERS", "0")) or None
    return JobManager(get_store(), max_workers=workers, data_dir=os.environ.get("TTEXPLORE_DATA"))
