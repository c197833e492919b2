"""ttexplore.presenters.design: the Explore page's widget values and their transitions (driven with a dict,
as the page drives them with st.session_state), the runs the Train button queues, and the preview's words."""

from __future__ import annotations

import pytest

from ttexplore.presenters import design as views
from ttexplore.presenters.design import DesignState, planned_runs
from ttexplore.presenters.preview import CUSTOM, design_config, layer_preview
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.tt import ttmath

PAPER, WIDE = "Paper: pad to 32x32, 4x8x8x4", "Wide and shallow: 4^5 -> 2^18 -> 4^5"
LABELS = {"in_modes": "Input modes"}


def started() -> DesignState:
    design = DesignState({}, LABELS)
    design.start()
    return design


def test_a_first_visit_is_the_papers_net_and_a_later_one_keeps_the_values():
    design = started()
    values = design.values
    assert (values["dataset"], values["preset"], values["in_modes"], values["out_modes"], values["pad_to"],
            values["max_rank"], values["more_layers"]) == ("mnist5k", PAPER, "4x8x8x4", "4x8x8x4", 32, 4, [])
    values.update(in_modes="32x32", out_modes="16x64")
    design.start()
    assert values["in_modes"] == "32x32"
    config = design.config()
    layer = config.layers[0]
    assert (layer.in_modes, layer.out_modes, layer.ranks, config.pad_to) == ((32, 32), (16, 64), 4, 32)


def test_a_preset_fills_the_boxes_and_typing_finds_the_preset_again():
    design = started()
    values = design.values
    values["preset"] = WIDE
    design.apply_preset()
    assert (values["in_modes"], values["out_modes"]) == ("4^5", "8x16x16x16x8")
    assert values["more_layers"] == ["tt:8x16x16x16x8->4^5:4"] and values["more_layer_0"] == "tt:8x16x16x16x8->4^5:4"
    values["in_modes"] = "4x4x4x4x4"  # the same shape, typed another way: no longer the preset's text
    design.shapes_typed()
    assert values["preset"] == CUSTOM
    values.update(in_modes="4x8x8x4", out_modes="4x8x8x4", pad_to=32)
    design.set_more_layers([])
    design.shapes_typed()
    assert values["preset"] == PAPER
    values.update(pad_to=0)
    design.shapes_typed()
    assert values["preset"] == CUSTOM  # the paper padded to 32


def test_another_dataset_keeps_the_preset_and_padding_valid():
    design = started()
    values = design.values
    values["dataset"] = "digits"  # 8x8 images: no paper preset, no padding
    design.dataset_changed()
    assert values["preset"] == "Balanced 4 modes: 2x4x4x2" and values["in_modes"] == "2x4x4x2"
    assert design.pad_sides() == [0] and values["pad_to"] == 0  # 8 is a power of two already
    assert design.config().in_features == 64
    values["dataset"] = "mnist5k"
    design.dataset_changed()
    assert values["preset"] == PAPER and values["pad_to"] == 32 and design.pad_sides() == [0, 32]
    values.update(dataset="digits", pad_to=32)
    design.dataset_changed()
    assert values["pad_to"] == 0  # 32 is no choice for 8x8 images


def test_layers_are_added_typed_and_removed_with_their_boxes():
    design = started()
    values = design.values
    design.add_layer()  # after a TT net: a TT layer from its width back to the input's modes
    assert values["more_layers"] == ["tt:4x8x8x4:4"] and values["more_layer_0"] == "tt:4x8x8x4:4"
    assert values["preset"] == CUSTOM
    values["more_layer_0"] = "dense:256"
    design.layer_typed(0)
    design.add_layer()  # after a dense layer: a dense layer as wide as the (padded) input
    assert values["more_layers"] == ["dense:256", "dense:1024"]
    assert list(design.config().layer_widths) == [1024, 1024, 256, 1024, 10]  # and the 10 classes
    design.remove_layer(0)
    assert values["more_layers"] == ["dense:1024"] and values["more_layer_0"] == "dense:1024"
    values["in_modes"] = "4x8x8"  # the design does not stand: the next layer is one that always does
    design.add_layer()
    assert values["more_layers"][-1] == "dense:784"


def test_each_cores_rank_when_asked_and_errors_name_the_box():
    design = started()
    values = design.values
    values.update(per_core=True, rank_4_1=2, rank_4_2=6, rank_4_3=3)
    assert design.config().layers[0].ranks == (2, 6, 3)
    values["per_core"] = False
    assert design.config().layers[0].ranks == 4
    values["in_modes"] = "4xeight"
    with pytest.raises(ValueError, match="Input modes"):
        design.config()


def test_the_train_button_queues_the_design_and_its_dense_twin_or_nothing(monkeypatch):
    config = design_config("digits", "4x4x4", "4x4x4", None, 2, epochs=1)
    runs = planned_runs(config, "mine", baseline=True, available={"digits": True})
    assert [name for _, name in runs] == ["mine", "mine (dense)"]
    assert runs[0][0] is config and runs[1][0].layers == config.dense_twin().layers and runs[1][0].layer_params() == 64 * 64
    assert [name for _, name in planned_runs(config, "", baseline=True, available={"digits": True})] == ["", ""]
    with pytest.raises(ConfigError, match="not on this machine") as missing:
        planned_runs(config, available={"digits": False})
    assert missing.value.field == "dataset"
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "1M")
    with pytest.raises(ConfigError, match="budget"):
        planned_runs(config, baseline=True, available={"digits": True})


def test_the_tiles_say_the_previews_numbers():
    view = layer_preview(design_config("mnist5k", "4x8x8x4", "4x8x8x4", 32, 4))
    tiles = views.layer_tiles(view)
    assert tiles["weights"]["value"] == f"{ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), 4):,}" == "2,176"
    assert tiles["dense"]["value"] == "1,048,576" and tiles["dense"]["help"] == "1,024 inputs × 1,024 hidden units = 1,048,576"
    assert tiles["compression"]["value"] == "482×" and tiles["compression"]["delta"] == "smaller · rate 2.08e-03"
    assert tiles["flops"]["delta"].endswith(f"vs dense {2 * 1024 * 1024 / 1e6:.3g}M")
    assert {tile["label"] for tile in tiles.values()} == {"TT layer weights", "Dense weights", "Compression",
                                                         "Forward FLOPs / image", "Training memory (est.)"}
    small = views.layer_tiles(layer_preview(design_config("digits", "8x8", "8x8", None, 8)))
    assert small["compression"]["value"] == f"{64 * 64 / (2 * 8 * 8 * 8):.2f}×"  # under 10: two decimals


def test_the_ranks_box_and_its_caption():
    paper = layer_preview(design_config("mnist5k", "4x8x8x4", "4x8x8x4", 32, 20))
    assert views.ranks_markdown(paper).splitlines() == ["| | r1 | r2 | r3 |", "|---|---|---|---|",
                                                        "| **max useful** | 16 | 1024 | 16 |", "| **in use** | 16 | 20 | 16 |"]
    assert views.ranks_caption(paper).endswith("r1 20 → 16, r3 20 → 16.")
    ten = layer_preview(design_config("mnist5k", "2^10", "2^10", 32, 2))
    assert views.ranks_markdown(ten).startswith("**max useful** 4 · 16 · ") and "**in use** 2 · 2" in views.ranks_markdown(ten)
    assert views.ranks_caption(ten).endswith("None clipped.")
    one = layer_preview(design_config("digits", "64", "64", None, 2))
    assert views.ranks_markdown(one) == "One core: the layer is dense, it has no TT ranks."


def test_the_memory_box_refuses_with_the_reason(monkeypatch):
    config = RunConfig.from_dict({"dataset": "mnist5k", "in_modes": "32x32", "out_modes": "256x256"})
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "8G")
    tiles, caption = views.memory_tiles(config)
    assert [tile["delta"] for tile in tiles] == ["allowed", "allowed"] and "Refused" not in caption
    assert f"{1024 * 65536:,} weights against {config.layer_params():,}" in caption
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "600M")  # the dense twin (67 M weights) is over, the TT net is not
    tiles, caption = views.memory_tiles(config)
    assert [tile["delta"] for tile in tiles] == ["allowed", "refused"] and tiles[1]["delta_color"] == "inverse"
    assert "Refused: " in caption and "TTEXPLORE_MEMORY_LIMIT" in caption
    two = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "hidden_layers": ["dense:32", "dense:16"]})
    assert views.network_caption(two) == ("**The whole network** — the tiles above describe hidden layer 1 of 2; "
                                          "widths 64 → 32 → 16 → 10")


#: First layers as the design widgets give them (in modes, out modes, padding): the paper's, the 784 net
#: (800 wide), ten cores; and the widths a typed layer goes to: odd, prime, powers of two and three.
FIRSTS = [("4x8x8x4", "4x8x8x4", 32), ("4x7x4x7", "5x5x8x4", None), ("2^10", "2^10", 32)]
WIDTHS = [1, 2, 3, 7, 97, 127, 194, 210, 1001, 1009, 1024, 4096, 59049, 65537, 262144]


def typed_layers(width: int) -> list[str]:
    """Layers of every kind that fit after a layer ``width`` wide."""
    from ttexplore.tt.shapes import balanced_factorization, has_factorization
    from ttexplore.tt.ttshape import modes_text

    layers = [f"dense:{out}" for out in WIDTHS] + [f"matrix_rank:{out}:{rank}" for out, rank in ((131, 3), (1, 1), (1024, 100))]
    for out in WIDTHS:
        for depth in (2, 3, 5, 10):
            if has_factorization(width, depth) and has_factorization(out, depth):
                layers.append(f"tt:{modes_text(balanced_factorization(width, depth))}->"
                              f"{modes_text(balanced_factorization(out, depth))}:2")
    return layers


CASES = [(first, typed) for first in FIRSTS
         for typed in typed_layers(design_config("mnist5k", *first, 4).layer_widths[1])]


@pytest.mark.parametrize(("first", "typed"), CASES, ids=[f"{first[0]}-{typed}" for first, typed in CASES])
def test_add_a_layer_always_offers_a_layer_that_keeps_the_network_valid(first, typed):
    from ttexplore.presenters.preview import next_layer_text, network_config
    from ttexplore.runs.kinds import MAX_HIDDEN_LAYERS, parse_layer

    layers = [typed]
    config = network_config(design_config("mnist5k", *first, 4), layers)
    while True:  # add until the network is full: every suggestion keeps it valid and goes back to the input width
        text = next_layer_text(config)
        if len(config.layers) == MAX_HIDDEN_LAYERS:
            assert text is None
            break
        assert text is not None, f"nothing offered after {layers}"
        layers.append(text)
        config = network_config(design_config("mnist5k", *first, 4), layers)  # raises if the network is invalid
        assert config.layer_widths[-2] == config.in_features
        assert config.layers[-1] == parse_layer(text)


def test_add_a_layer_follows_the_last_layers_kind_and_modes():
    from ttexplore.presenters.preview import next_layer_text, network_config

    paper = design_config("mnist5k", "4x8x8x4", "4x8x8x4", 32, 4)
    # the click-through's case: after tt:2^10->2^10:2 it offered tt:2^10->4x8x8x4:4 (10 modes against 4)
    assert next_layer_text(network_config(paper, ["tt:2^10->2^10:2"])) == "tt:2^10:4"
    assert next_layer_text(network_config(paper, ["tt:4^5->8x16x16x16x8:4"])) == "tt:8x16x16x16x8->4^5:4"
    assert next_layer_text(network_config(paper, ["dense:97"])) == "dense:1024"  # 97 is prime: no TT shape
    assert next_layer_text(network_config(paper, ["matrix_rank:131:3"])) == "matrix_rank:1024:3"
    design = started()
    design.values["more_layers"] = ["tt:2^10->2^10:2"]
    design.values["more_layer_0"] = "tt:2^10->2^10:2"
    design.add_layer()
    assert design.config().layers[-1].in_modes == (2,) * 10


# ---------------------------------------------------------------- re-run with changes: a run's config in the widgets
ROUND_TRIPS = [
    RunConfig(),
    RunConfig.for_dataset("mnist5k", in_modes="4x7x4x7", out_modes="5x5x8x4", ranks=(2, 5, 3), pad_to=None, epochs=7,
                          lr=1e-2, seed=11, batch_size=100, train_limit=1500, device="cpu"),
    RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": ["tt:4x4x4:2", "dense:32", "matrix_rank:16:3"],
                         "optimizer": "sgd", "momentum": 0.5, "weight_decay": 1e-4, "init": "he", "strategy": "ltr",
                         "evals_per_epoch": 2, "val_split": 0.2, "early_stop": 3, "label": "a label"}),
    RunConfig.from_dict({"layers": ["tt:4^5->8x16x16x16x8:4", "tt:8x16x16x16x8->4^5:4"], "epochs": 3}),  # the wide preset
    RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": ["tt:4x4x4:8"], "epochs": 6, "round_to": "4@2, 2@4"}),
    RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": ["tt:4x4x4:4,4"], "epochs": 0,
                         "init_from": {"path": "/x/w.pt", "sha256": "a" * 64, "run": "r1"}}),
]


@pytest.mark.parametrize("config", ROUND_TRIPS, ids=["default", "rectangular-per-core", "deep-sgd-validation", "wide",
                                                     "rank-schedule", "from-trained-weights"])
def test_a_config_loaded_into_the_design_comes_back_the_same(config):
    design = DesignState({}, LABELS)
    assert design.load(config) == []
    assert design.run_config() == config and design.run_config().key() == config.key()


def test_loading_fills_the_widgets_the_page_shows():
    design = DesignState({}, LABELS)
    design.load(ROUND_TRIPS[2])
    values = design.values
    assert (values["dataset"], values["pad_to"], values["in_modes"], values["more_layers"]) == (
        "digits", 0, "4x4x4", ["dense:32", "matrix_rank:16:3"])
    assert values["more_layer_1"] == "matrix_rank:16:3" and values["preset"] == CUSTOM
    assert (values["val_split"], values["early_stop"], values["train_limit"]) == (0.2, 3, 0)
    assert design.carried_text() == "optimizer sgd · momentum 0.5 · weight decay 0.0001 · init he · strategy ltr · " \
                                    "evals per epoch 2 · label a label"
    design.load(ROUND_TRIPS[1])  # a second load replaces the first entirely
    assert design.values["more_layers"] == [] and design.values["per_core"] and design.carried_text() == ""
    assert [design.values[design.core_rank_key(4, k)] for k in (1, 2, 3)] == [2, 5, 3]
    design.load(RunConfig())
    assert design.values["preset"].startswith("Paper") and not design.values["per_core"]


def test_what_the_design_cannot_hold_is_said():
    design = DesignState({}, LABELS)
    notes = design.load(RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": ["tt:4x4x4:max"]}))
    assert notes == ["ranks 'max' became the maximal useful ranks 16,16"]
    assert design.run_config().layers[0].ranks == (16, 16)
    with pytest.raises(ConfigError, match="no run 'gone'") as caught:
        design.load_run(None, "gone")
    assert caught.value.field == "from"


@pytest.mark.parametrize("layers", [["dense:64"], ["matrix_rank:32:3", "tt:4x8->4x4:2"],
                                    ["conv:8:3", "pool:2", "ttconv:2x4->2x4:2:3", "dense:32"]],
                         ids=["dense", "matrix-rank-first", "cnn"])
def test_a_network_the_shape_boxes_cannot_describe_loads_typed_layer_by_layer(layers):
    config = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": layers, "epochs": 2, "val_split": 0.2})
    design = DesignState({}, LABELS)
    assert design.load(config) == []
    assert design.typed and design.more_layers == [layer.text() for layer in config.layers]
    assert design.run_config() == config and design.run_config().key() == config.key()
