"""Explore after issue 20's click-through, through AppTest: an added layer always fits, an extra layer's error is
in the page's words beside its box while hidden layer 1's numbers stay, clipped ranks of any layer are said,
the padding that fits is suggested first, every useful rank is offered, the memory box shows its parts, a
figure's downloads share one name, and a Train clears the name and notes but shows the tags it keeps."""

from __future__ import annotations

import json

from app_support import app_home, metric, new_app, shared_data_dir, shown  # noqa: F401

from ttexplore.runs.store import RunStore
from ttexplore.tt import ttmath


def errors(at) -> list[str]:
    return [shown(item.value) for item in at.error]


def test_add_a_layer_after_a_ten_core_layer_keeps_the_numbers(app_home):
    at = new_app().run()
    at.button(key="add_layer").click().run()
    at.text_input(key="more_layer_0").input("tt:2^10->2^10:2").run()
    at.button(key="add_layer").click().run()  # it offered tt:2^10->4x8x8x4:4, and the numbers disappeared
    assert not at.exception and errors(at) == []
    assert at.session_state["more_layers"] == ["tt:2^10->2^10:2", "tt:2^10:4"]
    assert metric(at, "TT layer weights") == "2,176" and not at.warning
    weights = list(at.dataframe[0].value["weights"])
    ten = (2,) * 10
    assert weights == [2176, ttmath.param_count(ten, ten, 2), ttmath.param_count(ten, ten, 4), sum(weights[:-1])]


def test_an_extra_layers_error_is_in_the_pages_words_and_the_first_layers_numbers_stay(app_home):
    at = new_app().run()
    at.button(key="add_layer").click().run()
    at.text_input(key="more_layer_0").input("tt:4x8->4x4").run()
    (message,) = errors(at)
    assert message.startswith("Hidden layer 2: input modes 4x8 multiply to 32, but hidden layer 1 gives 1024 features")
    assert "layers[" not in message and "in_modes" not in message and "Input modes" not in message
    assert metric(at, "TT layer weights") == "2,176", "hidden layer 1's numbers stay"
    assert any("hidden layer 1 alone" in item.value for item in at.warning)
    assert at.button(key="train_submit").disabled
    at.text_input(key="more_layer_0").input("dense:abc").run()
    (message,) = errors(at)
    assert message.startswith("Hidden layer 2: width 'abc' is neither a whole number nor modes")


def test_a_matrix_rank_above_the_full_rank_is_clipped_and_said(app_home):
    at = new_app().run()
    at.button(key="add_layer").click().run()
    at.text_input(key="more_layer_0").input("matrix_rank:64:100").run()
    assert errors(at) == []
    table = at.dataframe[0].value
    assert list(table["layer"])[1] == "2: matrix rank 64 r=64" and list(table["weights"])[1] == 64 * (1024 + 64)
    assert any("Hidden layer 2: rank 100 clipped to 64" in item.value for item in at.markdown)


def test_modes_that_fit_the_unpadded_image_suggest_the_padding_first(app_home):
    at = new_app().run()
    at.text_input(key="in_modes").input("4x7x4x7").run()
    (message,) = errors(at)
    assert "set the padding (Pad images to) to none (no padding)" in message
    assert message.index("set the padding") < message.index("try 4x8x8x4")


def test_every_useful_rank_is_offered_and_the_memory_box_shows_its_parts(app_home):
    at = new_app().run()
    assert at.slider(key="max_rank").max == 1024  # r2 of 4x8x8x4 can use 1,024; the slider stopped at 64
    at.slider(key="max_rank").set_value(300).run()
    paper = (4, 8, 8, 4)
    assert metric(at, "TT layer weights") == f"{ttmath.param_count(paper, paper, (16, 300, 16)):,}" == "614,912"
    parts = next(frame.value for frame in at.dataframe if "part" in frame.value.columns)
    assert list(parts["part"])[-1] == "peak (estimate)" and "an evaluation batch" in list(parts["part"])
    assert any("largest phase" in item.value for item in at.markdown)


def test_a_figures_downloads_share_one_name(app_home):
    at = new_app().run()
    at.run()  # the charts come with the second drawing
    configs = {chart.proto.id: json.loads(chart.proto.config) for chart in at.get("plotly_chart")}
    names = sorted(config["toImageButtonOptions"]["filename"] for config in configs.values())
    assert names == ["other-factorizations", "tt-cores", "weights-vs-rank"]


def test_a_train_clears_the_name_and_notes_and_names_the_tags_it_keeps(app_home):
    at = new_app().run()
    at.number_input(key="epochs").set_value(1)
    at.text_input(key="run_name").input("first try")
    at.multiselect(key="run_tags").set_value(["paper", "quick"])
    at.text_area(key="run_notes").input("rank 4, one epoch").run()
    at.button(key="train_submit").click().run()
    assert not at.exception
    run = RunStore().list_runs()[0]
    assert (run["name"], run["tags"], run["notes"]) == ("first try", ["paper", "quick"], "rank 4, one epoch")
    at.switch_page("pages/explore.py").run()
    assert at.session_state["run_name"] == "" and at.session_state["run_notes"] == ""
    assert at.session_state["run_tags"] == ["paper", "quick"]
    assert any(expander.label == "Name, tags (paper, quick), batch size, seed, validation, device, rounding, baseline" for expander in at.expander)
