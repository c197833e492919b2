"""ttexplore.presenters.preview: presets, the numbers the Explore page shows, other factorizations."""

from __future__ import annotations

import sys
import subprocess

import pytest

from ttexplore.tt import ttmath
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.kinds import DenseLayerSpec
from ttexplore.presenters.preview import (CUSTOM, PRESETS, baseline_config, core_rank_limits, design_config, human_count,
                               layer_preview, other_factorizations, padding_options, presets_for, rank_slider_max)


def test_presets_are_the_papers_shapes_and_fit_mnist():
    names = [preset.name for preset in presets_for("mnist5k")]
    assert names == [preset.name for preset in PRESETS]
    paper = PRESETS[0]
    assert (paper.in_modes, paper.out_modes, paper.pad_to) == ((4, 8, 8, 4), (4, 8, 8, 4), 32)
    unpadded = PRESETS[1]
    assert (unpadded.in_modes, unpadded.out_modes, unpadded.pad_to) == ((4, 7, 4, 7), (5, 5, 8, 4), None)
    assert {preset.in_modes for preset in PRESETS} >= {(4,) * 5, (2,) * 10, (32, 32)}
    assert CUSTOM not in names


def test_other_datasets_get_balanced_presets_that_validate():
    for dataset in ("digits", "cifar10"):
        presets = presets_for(dataset)
        assert presets, dataset
        for preset in presets:
            assert preset.fits(dataset)
            design_config(dataset, preset.in_text, preset.out_text, preset.pad_to, 2)
    assert presets_for("digits")[0].in_modes == (2, 4, 4, 2)


def test_padding_options():
    assert padding_options("mnist5k") == [None, 32]
    assert padding_options("cifar10") == [None]


@pytest.mark.parametrize("preset", PRESETS, ids=lambda preset: preset.in_text)
@pytest.mark.parametrize("rank", [1, 2, 4, 9])
def test_preview_numbers_equal_ttmath(preset, rank):
    config = design_config("mnist5k", preset.in_text, preset.out_text, preset.pad_to, rank)
    view = layer_preview(config)
    assert view.tt_params == ttmath.param_count(preset.in_modes, preset.out_modes, rank)
    assert view.dense_params == ttmath.prod(preset.in_modes) * ttmath.prod(preset.out_modes)
    assert view.compression == pytest.approx(ttmath.compression(preset.in_modes, preset.out_modes, rank))
    assert view.compression_factor == pytest.approx(ttmath.compression_factor(preset.in_modes, preset.out_modes, rank))
    assert list(view.max_useful) == ttmath.max_useful_ranks(preset.in_modes, preset.out_modes)
    # the tile shows the FLOPs of the plan auto runs; the plain sweeps' counts are in the table
    assert view.tt_flops == view.costs[view.strategy]["flops"]
    assert view.costs["ltr"]["flops"] == ttmath.tt_sweep_flops(preset.in_modes, preset.out_modes, rank, 1, "ltr")
    assert view.costs["rtl"]["flops"] == ttmath.tt_sweep_flops(preset.in_modes, preset.out_modes, rank, 1, "rtl")
    assert view.dense_flops == 2 * view.dense_params
    assert sum(ttmath.prod(shape) for shape in view.core_shapes) == view.tt_params


def test_paper_layer_at_rank_4_and_clipping():
    view = layer_preview(design_config("mnist5k", "4x8x8x4", "4x8x8x4", 32, 4))
    assert view.tt_params == 2176 and view.dense_params == 1024 * 1024
    assert view.max_useful == (16, 1024, 16) and not view.clipped and view.clipping_note == ""
    clipped = layer_preview(design_config("mnist5k", "4x8x8x4", "4x8x8x4", 32, 20))
    assert clipped.ranks == (16, 20, 16)
    assert clipped.clipped == ((1, 20, 16), (3, 20, 16))
    assert "r_1: 20 -> 16" in clipped.clipping_note


def test_per_core_ranks_override_the_max_rank():
    config = design_config("mnist5k", "4x8x8x4", "4x8x8x4", 32, 4, core_ranks=[2, 6, 3])
    assert config.layers[0].ranks == (2, 6, 3)
    assert layer_preview(config).tt_params == ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), (2, 6, 3))


@pytest.mark.parametrize(
    "in_modes, out_modes, field, words",
    [
        ("4x8x8", "4x8x8x4", "in_modes", "try"),
        ("4x8x8x4", "4x8x8", "out_modes", "same number"),
        ("4 x eight", "4x8x8x4", "in_modes", "e.g. 4x8x8x4"),
        ("", "4x8x8x4", "in_modes", "missing"),
    ],
)
def test_bad_shapes_raise_config_error_naming_field_and_fix(in_modes, out_modes, field, words):
    with pytest.raises(ConfigError) as caught:
        design_config("mnist5k", in_modes, out_modes, 32, 4)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_training_fields_pass_through_and_are_validated():
    config = design_config("digits", "2x4x4x2", "2x4x4x2", None, 3, epochs=1, lr=0.01, batch_size=32, seed=7)
    assert (config.epochs, config.lr, config.batch_size, config.seed) == (1, 0.01, 32, 7)
    with pytest.raises(ConfigError) as caught:
        design_config("digits", "2x4x4x2", "2x4x4x2", None, 3, lr=-1)
    assert caught.value.field == "lr"


def test_baseline_is_the_dense_layer_of_the_same_sizes():
    config = design_config("mnist5k", "4x7x4x7", "5x5x8x4", None, 4, epochs=2)
    dense = baseline_config(config)
    assert dense.layers == (DenseLayerSpec(800),) and dense.epochs == 2
    assert (dense.in_features, dense.hidden_features) == (784, 800)
    assert dense.layer_params() == 784 * 800


def test_rank_slider_limits():
    # the sliders offer every useful rank: the middle boundary of 4x8x8x4 can use 1,024 (= 4*8 * 4*8)
    assert rank_slider_max((4, 8, 8, 4), (4, 8, 8, 4)) == 1024 == max(ttmath.max_useful_ranks((4, 8, 8, 4), (4, 8, 8, 4)))
    assert rank_slider_max((4, 8, 8, 4), (4, 8, 8, 4), cap=64) == 64
    assert rank_slider_max((2, 2), (2, 2)) == 4
    assert rank_slider_max((7,), (5,)) == 2, "a slider needs two values"
    assert core_rank_limits((4, 8, 8, 4), (4, 8, 8, 4)) == [16, 1024, 16]
    assert core_rank_limits((2,) * 10, (2,) * 10) == [4, 16, 64, 256, 1024, 256, 64, 16, 4]


def test_other_factorizations_include_the_users_shape_and_are_sorted():
    shapes = other_factorizations((4, 8, 8, 4), (4, 8, 8, 4), 4)
    labels = [item.label for item in shapes]
    assert "4x8x8x4" in labels
    assert len(labels) == len(set(labels))
    assert [item.params for item in shapes] == sorted(item.params for item in shapes)
    for item in shapes:
        assert item.params == ttmath.param_count(item.in_modes, item.out_modes, 4)
        assert ttmath.prod(item.in_modes) == 1024 and ttmath.prod(item.out_modes) == 1024
    assert len({len(item.in_modes) for item in shapes}) > 2  # several depths compared


def test_human_count():
    assert human_count(2176) == "2,176"
    assert human_count(1_048_576) == "1.05M"
    assert human_count(3.2e9) == "3.2G"


def test_preview_needs_neither_torch_nor_streamlit():
    code = "import sys, ttexplore.presenters.preview, ttexplore.presenters.reports; print('torch' in sys.modules, 'streamlit' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert output == ["False", "False"]


def test_preview_strategy_table_marks_autos_choice_and_agrees_with_flop_counts():
    from ttexplore.presenters.preview import strategy_rows

    view = layer_preview(RunConfig())
    rows = strategy_rows(view)
    assert rows[0]["strategy"] == f"{view.strategy} (auto)"
    assert {row["strategy"].split()[0] for row in rows} == {"ltr", "rtl", "blocked", "einsum", "dense"}
    by_name = {row["strategy"].split()[0]: row for row in rows}
    assert by_name["ltr"]["FLOPs"] == ttmath.tt_sweep_flops((4, 8, 8, 4), (4, 8, 8, 4), 4, 1, "ltr")
    assert view.tt_flops == by_name[view.strategy]["FLOPs"]
