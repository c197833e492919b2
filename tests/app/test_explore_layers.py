"""Explore with more hidden layers: the wide preset, add and remove layers, the memory of the net and its dense twin."""

from __future__ import annotations

from app_support import app_home, new_app, shared_data_dir, shown  # noqa: F401

from ttexplore.runs.store import RunStore

WIDE = "Wide and shallow: 4^5 -> 2^18 -> 4^5"


def metric(at, label):
    return next(item for item in at.metric if item.label == label)


def test_the_wide_preset_shows_every_layer_and_the_guard_on_both_nets(app_home, monkeypatch):
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "4G")
    at = new_app().run()
    at.selectbox(key="preset").select(WIDE).run()
    assert not at.exception and not at.error
    assert at.text_input(key="more_layer_0").value == "tt:8x16x16x16x8->4^5:4"
    table = at.dataframe[0].value
    assert list(table["weights"]) == [3328, 3328, 6656] and table["dense weights"].iloc[-1] == 536_870_912
    assert metric(at, "This net: training memory").delta == "allowed"
    assert metric(at, "Its dense twin: training memory").delta == "refused"
    assert metric(at, "Its dense twin: training memory").value.endswith("GiB")
    # the dense baseline of the wide net is refused before anything is queued
    at.checkbox(key="baseline").check()
    at.number_input(key="epochs").set_value(1)
    at.button(key="train_submit").click().run()
    assert not at.exception
    assert any("memory" in item.value and "4.0 GiB" in shown(item.value) for item in at.error)
    assert RunStore().list_runs() == []


def test_add_and_remove_layers(app_home):
    at = new_app().run()
    at.button(key="add_layer").click().run()
    assert at.session_state["more_layers"] == ["tt:4x8x8x4:4"] and at.selectbox(key="preset").value == "Custom shapes"
    at.text_input(key="more_layer_0").input("dense:64").run()
    assert not at.exception and not at.error
    assert list(at.dataframe[0].value["weights"]) == [2176, 1024 * 64, 2176 + 1024 * 64]
    at.text_input(key="more_layer_0").input("dense").run()
    assert shown(at.error[0].value).startswith("Hidden layer 2: width is missing")  # the layer as the page counts them
    at.button(key="remove_layer_0").click().run()
    assert at.session_state["more_layers"] == [] and not at.error
    assert at.selectbox(key="preset").value.startswith("Paper")
