"""ttexplore.experiments.sweep.presets: the 2018 reproduction's grids and their former names."""

from __future__ import annotations

import pytest

from ttexplore.experiments import sweep
from ttexplore.runs.config import ConfigError


def test_presets_follow_the_2018_reproduction():
    mnist = sweep.expand(sweep.preset_spec("repro2018-mnist"))
    assert mnist.counts() == {"tt": 24, "dense": 1, "matrix_rank": 4}
    shapes = list(dict.fromkeys(cell.shape for cell in mnist.cells if cell.config.layers[0].name == "tt"))
    assert shapes == ["32x32", "4x8x8x4", "4^5", "2x2x8x8x2x2", "2x4x4x4x4x2", "2^10"]
    assert [cell.config.layer_params() for cell in mnist.cells if cell.shape == "4x8x8x4"] == [160, 576, 1248, 2176]
    assert sweep.preset_spec("repro2018-mnist", datasets="fashion-mnist").datasets == ("fashion-mnist",)
    cifar = sweep.expand(sweep.preset_spec("repro2018-cifar10"))
    assert all(cell.config.in_features == 3072 for cell in cifar.cells)
    assert cifar.counts() == {"tt": 40, "matrix_rank": 12, "dense": 2}  # dense 3072 x 10^5 is skipped, and says so
    assert any("3072x100000 skipped" in note for note in cifar.notes)
    # slide 15's "in 32x16x6, out 10^4" at rank 1 sits at ~3.4e3 weights
    assert [cell.config.layer_params() for cell in cifar.cells if cell.shape == "32x16x6->100x10x10"][0] == 3420


def test_former_preset_names_give_the_same_spec():
    for alias, preset in (("seed-mnist", "repro2018-mnist"), ("seed-cifar10", "repro2018-cifar10")):
        assert sweep.preset_name(alias) == preset
        assert sweep.preset_spec(alias) == sweep.preset_spec(preset)
        assert sweep.preset_spec(alias, epochs=1) == sweep.preset_spec(preset, epochs=1)
    with pytest.raises(ConfigError) as error:
        sweep.preset_spec("seed-svhn")
    assert error.value.field == "preset" and "repro2018-mnist" in str(error.value)
