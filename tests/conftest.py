"""Test-wide settings: no test touches ~/.ttexplore or the network."""

from __future__ import annotations

import os
import sys

import pytest

# Set before ttexplore is imported anywhere, so every default path points into a temp dir.
os.environ.setdefault("TTEXPLORE_OFFLINE", "1")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Each test gets its own TTEXPLORE_HOME (run store, artefacts, data dir)."""
    home = tmp_path / "ttexplore-home"
    monkeypatch.setenv("TTEXPLORE_HOME", str(home))
    monkeypatch.delenv("TTEXPLORE_DB", raising=False)
    monkeypatch.delenv("TTEXPLORE_DATA", raising=False)
    monkeypatch.setenv("TTEXPLORE_OFFLINE", "1")
    return home


@pytest.fixture(autouse=True)
def keep_main_module():
    """Put ``sys.modules["__main__"]`` back after each test: AppTest runs app.py as ``__main__``
    and leaves it there, and a process pool spawned later (the sweep's local executor) would
    re-run app.py in every child."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


def pytest_configure(config):
    try:
        import torch

        torch.set_num_threads(min(2, os.cpu_count() or 1))
    except ImportError:  # the pure-Python tests still run
        pass
