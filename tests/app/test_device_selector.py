"""The Explore page's device selector: what the machine has, and the run it queues."""

from __future__ import annotations

from app_support import app_home, new_app, release_app_resources, shared_data_dir  # noqa: F401

from ttexplore.nn.device import available_devices
from ttexplore.runs.store import RunStore


def test_the_device_selector_lists_this_machine_and_the_run_trains_there(app_home):
    at = new_app().run()
    assert not at.exception
    selector = at.selectbox(key="device")
    names = [choice.name for choice in available_devices()]
    # the box shows a short name (at 1400 px the whole description was cut), the caption under it the whole of it
    assert selector.value == "auto" and selector.options[:2] == [choice.label.split(" — ")[0] for choice in available_devices()[:2]]
    assert len(selector.options) == len(names)
    assert available_devices()[0].label in [caption.value for caption in at.caption]
    selector.select("cpu")
    at.number_input(key="epochs").set_value(1)
    at.number_input(key="train_limit").set_value(500)
    at.checkbox(key="baseline").uncheck()
    at.button(key="train_submit").click()
    at.run()
    assert not at.exception
    runs = RunStore().list_runs()
    assert len(runs) == 1 and runs[0]["config"]["device"] == "cpu"
    release_app_resources()
