"""load_model checks the file, its config and every tensor before it builds the model."""

from __future__ import annotations

import math

import pytest
import torch

from ttexplore.nn.weightfile import WeightsFileError
from ttexplore.runs import models
from ttexplore.runs.config import RunConfig
from ttexplore.runs.models import MODEL_FORMAT, build_model, load_model, save_model
from ttexplore.runs.resources import ResourceError

SMALL = RunConfig.for_dataset("digits", in_modes="4x4x4", out_modes="4x4x4", ranks=2)
#: SMALL as a file written before RunConfig.layers stores it (the one-layer fields)
ONE_LAYER = {**{key: value for key, value in SMALL.to_dict().items() if key != "layers"}, "layer": "tt",
             "in_modes": [4, 4, 4], "out_modes": [4, 4, 4], "ranks": 2, "hidden": None, "matrix_rank": 4}


@pytest.fixture
def only_meta_builds(monkeypatch):
    """Fail if a model is built for real (on the meta device it allocates nothing)."""
    real = models.build_model

    def guarded(config, generator=None, layer_ranks=None):
        if torch.empty(()).device.type != "meta":
            raise AssertionError("a model was allocated before the file was checked")
        return real(config, generator, layer_ranks)

    monkeypatch.setattr(models, "build_model", guarded)


def write(path, config_values, state):
    torch.save({"format": MODEL_FORMAT, "config": config_values, "state_dict": state, "tt_spec": None, "tt_prefix": None}, path)
    return path


def test_a_saved_model_still_loads(tmp_path):
    model = build_model(SMALL)
    path = save_model(model, SMALL, tmp_path / "model.pt")
    loaded, config = load_model(path)
    assert config == SMALL
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_an_empty_or_truncated_model_file(tmp_path, only_meta_builds):
    path = save_model(build_model(SMALL), SMALL, tmp_path / "model.pt")
    data = path.read_bytes()
    empty, cut = tmp_path / "empty.pt", tmp_path / "cut.pt"
    empty.write_bytes(b"")
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsFileError, match="is empty"):
        load_model(empty)
    with pytest.raises(WeightsFileError, match="truncated or damaged"):
        load_model(cut)


def test_a_layer_file_is_not_a_model_file(tmp_path, only_meta_builds):
    from ttexplore.nn.layers import TTLinear

    path = tmp_path / "layer.pt"
    TTLinear((4, 4), (4, 4), 2).save(path)
    with pytest.raises(WeightsFileError, match="not a ttexplore model file"):
        load_model(path)


@pytest.mark.parametrize("change, field", [({"lr": math.nan}, "lr"), ({"out_modes": [2] * 64}, "out_modes"),
                                            ({"seed": 2**70}, "seed"), ({"in_modes": [4.5, 4, 4]}, "in_modes")])
def test_an_invalid_config_in_the_file_is_named(tmp_path, change, field, only_meta_builds):
    path = write(tmp_path / "model.pt", {**ONE_LAYER, **change}, build_model(SMALL).state_dict())
    with pytest.raises(WeightsFileError, match=f"{path} has an invalid run config: {field}"):
        load_model(path)


def test_a_crafted_huge_config_with_tiny_tensors_is_refused_without_allocating(tmp_path, only_meta_builds):
    huge = {**ONE_LAYER, "layer": "dense", "in_modes": None, "out_modes": None, "ranks": None, "hidden": 200_000 * 200_000}
    # tensors nothing like the 4e10 x 64 dense weight the config implies
    state = {"hidden.weight": torch.zeros(2, 2), "hidden.bias": torch.zeros(2), "head.weight": torch.zeros(10, 2),
             "head.bias": torch.zeros(10)}
    path = write(tmp_path / "huge.pt", huge, state)
    with pytest.raises(WeightsFileError, match=r"hidden.weight has shape \(2, 2\), but the model spec in the file implies \(40000000000, 64\)"):
        load_model(path)


def test_a_consistent_model_over_the_budget_is_a_resource_error(tmp_path, monkeypatch):
    config = RunConfig.for_dataset("digits", layer="dense", hidden=8192)  # 64 x 8192 + head: about 2.3 MiB
    path = save_model(build_model(config), config, tmp_path / "dense.pt")
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "1M")
    with pytest.raises(ResourceError, match=f"the model in {path} needs 2.3 MiB"):
        load_model(path)
