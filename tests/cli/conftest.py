"""The CLI tests' shared fixture: one trained run per session (see cli_support)."""

from __future__ import annotations

import pytest

from cli_support import DIGITS, TrainedRun, ttexplore


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> TrainedRun:
    """3 epochs of TT 4x4x4 -> 4x4x4 at rank 2 on digits, recorded as 'one' tagged a, b."""
    home = tmp_path_factory.mktemp("trained-run-home")
    model_path = home / "model.pt"
    process = ttexplore("train", *DIGITS, "--epochs", "3", "--json", "-", "--save-model", str(model_path),
                        "--record", "--name", "one", "--tag", "a", "--tag", "b", "--notes", "first try", home=home)
    assert process.returncode == 0, process.stderr
    return TrainedRun(home, model_path, process)
