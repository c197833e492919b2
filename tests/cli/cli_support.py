"""Helpers the CLI tests share (imported by tests/cli/test_*.py as tests/app imports app_support).

The end-to-end tests share one trained run (the ``trained_run`` fixture of tests/cli/conftest.py):
``python -m ttexplore train`` in a subprocess, once per session, with every output flag at once
(``--json -``, ``--save-model``, ``--record`` with a name, tags and notes, the progress bar on
stderr). The tests that read it (its summary, ``runs list/show/edit/delete``) pay for one
interpreter start, torch import and training instead of one each. A test that changes the store
works on a copy of the run's home (:func:`copy_home`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: The network of the shared run (and of the other end-to-end runs): 128 TT weights on digits.
DIGITS = ["--dataset", "digits", "--in-modes", "4x4x4", "--out-modes", "4x4x4", "--ranks", "2"]


def ttexplore(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m ttexplore ARGS`` with ``TTEXPLORE_HOME=home``, offline, as a user runs it."""
    env = {**os.environ, "TTEXPLORE_HOME": str(home), "TTEXPLORE_OFFLINE": "1"}
    env.pop("TTEXPLORE_DB", None)
    env.pop("TTEXPLORE_DATA", None)
    return subprocess.run([sys.executable, "-m", "ttexplore", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


@dataclass(frozen=True)
class TrainedRun:
    """The shared run: its home (run store, artefacts, data), the ``--save-model`` file, the
    finished process (stdout: the ``--json -`` summary; stderr: progress bar and last line)."""

    home: Path
    model_path: Path
    process: subprocess.CompletedProcess

    @property
    def summary(self) -> dict:
        return json.loads(self.process.stdout)


def copy_home(run: TrainedRun, destination: Path) -> Path:
    """A copy of the shared run's home to change freely (its store rows still name the original's
    weights file, which ``delete`` leaves alone: it only removes files inside its own artefacts)."""
    return Path(shutil.copytree(run.home, destination / "home"))
