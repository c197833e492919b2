"""The Explore page under absurd entries and a small memory budget: one message, never a
traceback, an Arrow error box or a spinning server."""

from __future__ import annotations

import pytest

from app_support import app_home, metric, new_app, shared_data_dir  # noqa: F401


def errors(at) -> str:
    return " ".join(item.value for item in at.error)


def test_the_memory_tile_shows_the_estimate_and_the_budget(app_home, monkeypatch):
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "8G")
    at = new_app().run()
    assert not at.exception
    assert metric(at, "Training memory (est.)").endswith("MiB")
    assert not at.warning


def test_over_the_budget_the_page_warns_with_the_fix(app_home, monkeypatch):
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "1M")
    at = new_app().run()
    assert not at.exception
    warning = " ".join(item.value for item in at.warning)
    assert "more than the budget of 1.0 MiB" in warning and "TTEXPLORE_MEMORY_LIMIT" in warning


@pytest.mark.parametrize(
    "field, text, message",
    [
        ("out_modes", "2^64", "between 1 and 12"),
        ("out_modes", "100000000000000000000000", "24 digits"),
        ("out_modes", "4x8x8x100000000000000000000000", "far more than"),
        ("out_modes", "1000x1000x1000", "125x200x200x200"),
        ("in_modes", "4.5x8x8x4", "not a whole number"),
        ("in_modes", "2^13", "between 1 and 12"),
    ],
)
def test_absurd_shapes_get_one_message(app_home, field, text, message):
    at = new_app().run()
    at.text_input(key=field).input(text).run()
    assert not at.exception, [item.value for item in at.exception]
    assert message in errors(at)
