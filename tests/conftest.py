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
