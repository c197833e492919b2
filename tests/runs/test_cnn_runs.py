"""CNNs as runs: the convnet and tt-convnet presets sized for each dataset (and refused where they cannot fit),
a few training steps on digits and MNIST-5k, CIFAR-10 from small generated files through a CNN, and a TT CNN
started from a dense CNN's weights (InitFrom: each kernel by TT-SVD, exact at full rank)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch

from ttexplore.runs import data as data_module
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.data import Dataset, load_dataset
from ttexplore.runs.fit import fit
from ttexplore.runs.layerspec import InitFrom
from ttexplore.runs.models import build_model, hidden_layers, net_params, save_model
from ttexplore.runs.presets import RUN_PRESETS, preset_values, run_preset
from ttexplore.runs.ttnet import tt_network
from ttexplore.runs.warmstart import apply_init_from, file_sha256


@pytest.mark.parametrize("dataset, side, channels", [("mnist5k", 28, 1), ("digits", 8, 1), ("cifar10", 32, 3),
                                                     ("fashion-mnist", 28, 1)])
def test_the_cnn_presets_size_themselves_for_the_images(dataset, side, channels):
    dense, tt = run_preset("convnet", dataset=dataset), run_preset("tt-convnet", dataset=dataset)
    assert dense.pad_to is None and dense.input_shape == (channels, side, side)
    left = side // 8
    assert dense.layer_shapes[-2] == tt.layer_shapes[-2] == (128, left, left)
    assert [layer.name for layer in tt.layers] == ["conv", "pool", "ttconv", "pool", "ttconv", "pool", "tt"]
    assert tt.dense_twin().layers == dense.layers  # the same net with its TT layers dense
    assert tt.dense_net_params() == dense.net_params()
    # the counts are those of the built networks
    assert net_params(build_model(tt)) == tt.net_params() and net_params(build_model(dense)) == dense.net_params()


def test_the_tt_convnet_is_50x_smaller_than_the_convnet_on_28x28():
    dense, tt = run_preset("convnet"), run_preset("tt-convnet")
    assert dense.net_params() == 288 + 32 + 18432 + 64 + 73728 + 128 + 1152 * 256 + 256 + 2570
    assert dense.net_params() / tt.net_params() >= 50
    assert [layer.text() for layer in tt.layers] == preset_values("tt-convnet")["layers"] == [
        "conv:32:3", "pool:2", "ttconv:2x4x4->4x4x4:4:3", "pool:2", "ttconv:4x4x4->4x4x8:4:3", "pool:2",
        "tt:8x4x4x9->4x4x4x4:4"]
    assert [layer.text() for layer in tt_network(dense.layers, dense.input_shape, 4)] == preset_values("tt-convnet")["layers"]


def test_images_too_small_for_three_pools_are_refused_with_the_reason():
    with pytest.raises(ConfigError, match="at least 8x8") as caught:
        preset_values("convnet", "digits", 6)
    assert caught.value.field == "dataset"
    assert preset_values("convnet", "digits", "16")["layers"][0] == "conv:32:3"  # padded: fine
    assert set(RUN_PRESETS) >= {"paper", "wide", "convnet", "tt-convnet"}


def _small(name: str, train: int, test: int) -> Dataset:
    full = load_dataset(name)
    return Dataset(full.info, full.train_images[:train], full.train_labels[:train], full.test_images[:test],
                   full.test_labels[:test], full.source)


@pytest.mark.parametrize("preset", ["convnet", "tt-convnet"])
def test_the_cnn_presets_train_a_few_steps_on_digits(preset):
    config = run_preset(preset, dataset="digits", epochs=1, batch_size=64, evals_per_epoch=1)
    result = fit(config, _small("digits", 192, 64))
    assert result.status == "completed", result.error
    assert [event["step"] for event in result.events] == [0, 3]
    assert np.isfinite(result.history[-1]["train_loss"])
    assert result.events[-1]["layer_params"] == config.layer_params()


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["convnet", "tt-convnet"])
def test_the_cnn_presets_train_a_few_steps_on_mnist5k(preset):
    config = run_preset(preset, epochs=1, batch_size=64, evals_per_epoch=1)
    result = fit(config, _small("mnist5k", 128, 64))
    assert result.status == "completed", result.error
    assert result.history[-1]["train_loss"] < 2.5


def _write_cifar(folder, images_per_batch: int = 4) -> None:
    """The six pickled batches of torchvision's CIFAR-10 folder, with random images and labels."""
    rng = np.random.default_rng(1)
    folder.mkdir()
    for name in [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": rng.integers(0, 256, (images_per_batch, 3072)).astype(np.uint8),
                         b"labels": rng.integers(0, 10, images_per_batch).tolist()}, handle)


def test_cifar10_files_go_through_a_tt_cnn(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    data_module._CACHE.clear()
    try:
        dataset = load_dataset("cifar10", tmp_path)
    finally:
        data_module._CACHE.clear()
    config = run_preset("tt-convnet", dataset="cifar10", epochs=1, batch_size=8, evals_per_epoch=1)
    assert config.input_shape == (3, 32, 32) and config.layers[-1].in_modes == (8, 4, 4, 16)
    model = build_model(config)
    assert model.hidden.in_channels == 3 and model(dataset.test_images).shape == (4, 10)
    result = fit(config, dataset)
    assert result.status == "completed", result.error
    assert result.events[-1]["step"] == 3  # 20 images in batches of 8


# ---------------------------------------------------------------- warm starts
DENSE_CNN = ["conv:4:3", "pool:2", "conv:8:3", "tt4d:6:2:3", "pool:2", "dense:12"]


def _dense_file(tmp_path):
    dense = RunConfig.for_dataset("digits", layers=DENSE_CNN[:3] + ["conv:6:3", "pool:2", "dense:12"])
    model = build_model(dense, torch.Generator().manual_seed(3))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))  # nonzero biases, as trained ones are
    path = save_model(model, dense, tmp_path / "dense.pt")
    return dense, model, path


def test_a_tt_cnn_starts_from_a_dense_cnns_weights_exactly_at_full_rank(tmp_path):
    dense, dense_model, path = _dense_file(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'max' ranks clip nothing; tt4d's r_3 above 3 would
        full = dense.replace(layers=["conv:4:3", "pool:2", "ttconv:2x2->2x4:max:3", "tt4d:6:max:3", "pool:2",
                                     "tt:2x2x6->2x2x3:max"],
                             init_from=InitFrom(str(path), file_sha256(path)).to_dict())
        model = build_model(full)
    errors = apply_init_from(model, full)
    assert len(errors) == 6 and max(errors) < 1e-6 and errors[1] == 0.0  # the max pool: nothing to start
    images = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(images), dense_model(images), atol=1e-5, rtol=1e-4)
    low = full.replace(layers=[layer.with_ranks(1) for layer in full.layers])
    errors = apply_init_from(build_model(low), low)
    assert errors[0] == 0.0 and all(error > 0.05 for error in errors[2:4]) and errors[5] > 0.05
    assert [type(module).__name__ for _, module in hidden_layers(model)] == [
        "Conv2d", "MaxPool2d", "TTConv2d", "TT4dConv2d", "MaxPool2d", "TTLinear"]


def test_a_warm_start_of_other_sizes_is_refused_naming_the_layer(tmp_path):
    from ttexplore.runs.warmstart import WarmStartError

    dense, _, path = _dense_file(tmp_path)
    other = dense.replace(layers=["conv:4:3", "pool:2", "conv:8:5", "conv:6:3", "pool:2", "dense:12"],
                          init_from=InitFrom(str(path), file_sha256(path)).to_dict())
    with pytest.raises(WarmStartError, match="hidden layer 3 .* has 8x4x3x3 .*C_out x C_in x kh x kw.* needs 8x4x5x5"):
        apply_init_from(build_model(other), other)
