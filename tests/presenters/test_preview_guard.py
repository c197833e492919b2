"""The Explore preview's memory estimate, and its shape searches under absurd sizes."""

from __future__ import annotations

import pytest

from ttexplore.tt.shapes import MAX_MODES
from ttexplore.presenters.preview import design_config, layer_preview, memory_tile, other_factorizations
from ttexplore.runs.config import RunConfig


def test_the_preview_carries_the_training_memory_estimate(monkeypatch):
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "8G")
    view = layer_preview(design_config("mnist5k", "4x8x8x4", "4x8x8x4", 32, 4, batch_size=128))
    assert view.memory is not None and view.memory.total > 0 and view.memory_budget == 8 << 30
    assert view.memory_warning == ""
    tile = memory_tile(view)
    assert tile["value"].endswith("MiB") and tile["delta"] == "within the 8.0 GiB budget" and "batch 128" in tile["help"]


def test_over_the_budget_the_preview_says_why_and_the_fix(monkeypatch):
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "16M")
    view = layer_preview(RunConfig.from_dict({"dataset": "mnist5k", "in_modes": "32x32", "out_modes": "256x256"}))
    assert "more than the budget of 16.0 MiB" in view.memory_warning and "TTEXPLORE_MEMORY_LIMIT" in view.memory_warning
    assert memory_tile(view)["delta"].startswith("over")


def test_a_bad_limit_is_shown_not_raised(monkeypatch):
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "lots")
    view = layer_preview(RunConfig())
    assert view.memory_budget is None and "TTEXPLORE_MEMORY_LIMIT='lots' is not a size" in view.memory_warning
    assert "budget unknown" in memory_tile(view)["delta"]


def test_other_factorizations_of_huge_and_prime_layers_answer():
    found = other_factorizations((2,) * 12, (1000, 1000, 10, 10) + (2,) * 8, 2)  # 4096 -> 2.56e10, twelve cores
    assert found and all(len(s.in_modes) <= MAX_MODES for s in found)
    assert len(other_factorizations((1021,), (1021,), 2)) == 1  # a prime: only the user's own shape
    with pytest.raises(ValueError, match="13 modes"):
        other_factorizations((2,) * 13, (2,) * 13, 2)
