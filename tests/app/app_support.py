"""Fixtures and helpers the app tests share (imported by tests/test_app_*.py; not a conftest, so
other test suites in tests/ are left alone): a private ttexplore home, a clean Streamlit resource
cache, polling an AppTest until a condition holds, and one scan of the installed Streamlit
components per session."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]  # `ui` and `ttexplore` live here (pyproject.toml puts it on sys.path)


def scan_installed_components_once() -> None:
    """Keep the answer of Streamlit's scan for installed v2 components for the whole session.

    Every new ``AppTest`` builds a ``BidiComponentManager`` that reads the metadata of every
    installed package (``manifest_scanner.scan_component_manifests``, imported by name at each
    call): 0.5 s on a quiet machine, over 2 s under load, most of a fresh app's first run. The
    installed packages do not change during a test session, so the first answer is kept.
    ``tests/app/test_app_support.py`` fails the day Streamlit stops calling the function this
    wraps (the tests then stay right, only slower).
    """
    from streamlit.components.v2 import manifest_scanner

    if not hasattr(manifest_scanner.scan_component_manifests, "cache_info"):
        manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


scan_installed_components_once()


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory) -> Path:
    """One dataset folder for the whole session, so ttexplore.runs.data's per-folder cache is reused."""
    return tmp_path_factory.mktemp("data")


def release_app_resources() -> None:
    """Stop the cached JobManager's workers and empty ``st.cache_resource`` (a server restart, in-process)."""
    import streamlit as st

    import ui

    ui.get_manager().shutdown(cancel_running=True, timeout=60)
    st.cache_resource.clear()


@pytest.fixture
def app_home(tmp_path, monkeypatch, shared_data_dir) -> Path:
    """``TTEXPLORE_HOME`` in a temporary folder (never ``~/.ttexplore``), offline, fresh store and manager."""
    home = tmp_path / "home"
    monkeypatch.setenv("TTEXPLORE_HOME", str(home))
    monkeypatch.delenv("TTEXPLORE_DB", raising=False)
    monkeypatch.delenv("TTEXPLORE_WORKERS", raising=False)
    monkeypatch.setenv("TTEXPLORE_DATA", str(shared_data_dir))
    monkeypatch.setenv("TTEXPLORE_OFFLINE", "1")
    release_app_resources()
    yield home
    release_app_resources()


APP = str(REPO / "app.py")


def new_app():
    """An AppTest of the whole app (router, sidebar, pages); torch imports can take seconds."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=90)


def run_until(at, condition, what: str, timeout: float = 120.0, pause: float = 0.3):
    """Rerun ``at`` (AppTest does not fire ``run_every``) until ``condition(at)`` holds.

    Fails on an uncaught exception in any rerun, or when ``timeout`` seconds pass (a
    guard against a hang, not a timing assertion).
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, [item.value for item in at.exception]
        if condition(at):
            return at
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(pause)


def shown(markdown: str) -> str:
    """The characters a Markdown text shows: its backslash escapes removed (pages pass library messages and user
    text through ``presenters.usertext.markdown_text``, which escapes every ASCII punctuation character)."""
    import re

    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def metric(at, label: str) -> str:
    """The value of the st.metric tile called ``label``."""
    values = [item.value for item in at.metric if item.label == label]
    assert values, f"no metric {label!r} among {[item.label for item in at.metric]}"
    return values[0]
