"""Named networks: the wide-and-shallow preset builds, trains a few steps, and passes the memory guard
that refuses its dense twin."""

from __future__ import annotations

import pytest
import torch

from ttexplore.runs.config import ConfigError
from ttexplore.runs.data import Dataset, load_dataset
from ttexplore.runs.fit import fit
from ttexplore.runs.models import build_model, hidden_layers
from ttexplore.runs.presets import RUN_PRESETS, run_preset
from ttexplore.runs.resources import ResourceError, check_run_memory, eval_batch_size


def test_every_preset_is_a_valid_config():
    for name in RUN_PRESETS:
        assert run_preset(name).layer_params() > 0
    with pytest.raises(ConfigError, match="wide"):
        run_preset("nope")


def test_the_wide_net_is_too_big_to_exist_densely_but_not_as_tt():
    wide = run_preset("wide")
    assert wide.layer_widths == [1024, 262144, 1024, 10]
    assert wide.layer_params() == 2 * 3328 and wide.dense_layer_params() == 2 * 1024 * 262144
    budget = 4 << 30
    assert check_run_memory(wide, budget).total < 1 << 30  # the TT net: well under 1 GiB
    with pytest.raises(ResourceError) as refused:
        check_run_memory(wide.dense_twin(), budget)  # 2 GiB of weights, 8 with gradients and Adam
    assert "TT layer" in str(refused.value) and "GiB" in str(refused.value)
    assert eval_batch_size(wide) == 64  # evaluation in 64 MiB slices of the 262,144-wide layer


@pytest.mark.slow
def test_the_wide_net_builds_and_trains_a_few_steps():
    full = load_dataset("mnist5k")
    small = Dataset(full.info, full.train_images[:192], full.train_labels[:192], full.test_images[:64],
                    full.test_labels[:64], full.source)
    config = run_preset("wide", epochs=1, batch_size=64, evals_per_epoch=1)
    model = build_model(config)
    assert [type(layer).__name__ for _, layer in hidden_layers(model)] == ["TTLinear", "TTLinear"]
    assert model(small.train_images[:2]).shape == (2, 10)
    result = fit(config, small)
    assert result.status == "completed", result.error
    assert [event["step"] for event in result.events] == [0, 3]
    before, after = result.events[0]["train_loss"], result.history[-1]["train_loss"]
    assert torch.isfinite(torch.tensor(after)) and after < before + 0.5
