"""Test-wide settings: no test touches ~/.ttexplore or the network."""

from __future__ import annotations

import os
import sys

import pytest

# Set before ttexplore is imported anywhere, so every default path points into a temp dir.
os.environ.setdefault("TTEXPLORE_OFFLINE", "1")
# OpenMP threads waiting for work spin by default: on a shared 2-core machine the two torch threads
# then stall each other (8 epochs of digits: 0.6 s at one thread, 6 to 12 s at two under load 5,
# 0.7 to 1.3 s at two with passive waiting; the not-slow runs/ and experiments/ tests 30 s instead of
# 42). Set before torch and its OpenMP runtime load; subprocesses inherit it. No result changes.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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


class _FillingFile:
    """A file that takes ``room`` bytes, then fails every write with ENOSPC (as a full disk does)."""

    def __init__(self, handle, room):
        self.handle, self.room, self.written = handle, room, 0

    def write(self, data):
        if self.written + len(data) > self.room:
            raise OSError(28, "No space left on device")  # errno.ENOSPC
        self.written += len(data)
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)


@pytest.fixture
def full_disk(monkeypatch):
    """``fill(room=0, free=4096)``: from then on every file written through ``ttexplore.tt.atomic``
    gets ``room`` bytes before ENOSPC (the temporary file really exists on disk until the writer
    removes it), and the disk reports ``free`` bytes free."""
    import collections
    import shutil

    from ttexplore.tt import atomic

    def fill(room=0, free=4096):
        real_open = atomic._open_new
        monkeypatch.setattr(atomic, "_open_new", lambda path: _FillingFile(real_open(path), room))
        usage = collections.namedtuple("usage", "total used free")
        real_usage = shutil.disk_usage
        monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: usage(1 << 30, (1 << 30) - free, free)
                            if not str(path).startswith("/dev") else real_usage(path))

    return fill


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """When a browser test fails, say what the browser showed and what the server logged: the page's
    address and visible text for every open tab, a screenshot beside the test's temporary files, and
    the tail of each running server's log. A browser failure on another machine is then read from the
    report instead of guessed at."""
    report = yield
    browser = item.funcargs.get("browser") if hasattr(item, "funcargs") else None
    if report.when != "call" or not report.failed or browser is None:
        return report
    lines = []
    for context_index, context in enumerate(getattr(browser, "contexts", [])):
        for page_index, page in enumerate(context.pages):
            try:
                text = page.inner_text("body", timeout=5_000)
                shot = item.config._tmp_path_factory.mktemp("failure") / f"tab-{context_index}-{page_index}.png"
                page.screenshot(path=str(shot), full_page=True, timeout=10_000)
                lines.append(f"--- tab {context_index}.{page_index}: {page.url} (screenshot {shot})\n{text[-4000:]}")
            except Exception as error:  # noqa: BLE001 - a closed or hung tab is reported, not raised
                lines.append(f"--- tab {context_index}.{page_index}: could not be read: {error}")
    server_class = sys.modules.get("test_app_browser")
    for server in getattr(getattr(server_class, "Server", None), "running", []):
        try:
            lines.append(f"--- streamlit log {server.log_path} (last 4000 characters)\n{server.log_path.read_text()[-4000:]}")
        except OSError as error:
            lines.append(f"--- streamlit log {server.log_path}: {error}")
    if lines:
        report.sections.append(("what the browser showed", "\n".join(lines)))
    return report
