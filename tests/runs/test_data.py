"""Dataset loaders on small files the tests write, plus the bundled sets."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import time

import numpy as np
import pytest

from ttexplore.runs import data as data_module
from ttexplore.runs.data import DatasetUnavailable, available_datasets, load_dataset, read_idx


@pytest.fixture(autouse=True)
def fresh_cache():
    data_module._CACHE.clear()
    yield
    data_module._CACHE.clear()


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def write_idx_set(folder, train_count=30, test_count=10, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train_count, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, train_count),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test_count, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, test_count),
    }
    for name, array in arrays.items():
        write_idx(folder / name, array, compress)
    return arrays


def test_read_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    write_idx(tmp_path / "plain", array, compress=False)
    write_idx(tmp_path / "packed", array, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed.gz"), array)
    (tmp_path / "broken").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "broken")


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_from_a_torchvision_style_folder(tmp_path, compress):
    arrays = write_idx_set(tmp_path / "MNIST" / "raw", compress=compress)
    dataset = load_dataset("mnist", tmp_path)
    assert dataset.train_images.shape == (30, 1, 28, 28) and dataset.test_images.shape == (10, 1, 28, 28)
    assert dataset.train_images.dtype.is_floating_point and float(dataset.train_images.max()) <= 1.0
    np.testing.assert_allclose(dataset.train_images[:, 0].numpy() * 255, arrays["train-images-idx3-ubyte"], atol=1e-3)
    np.testing.assert_array_equal(dataset.test_labels.numpy(), arrays["t10k-labels-idx1-ubyte"])


def test_fashion_mnist_from_a_folder(tmp_path):
    arrays = write_idx_set(tmp_path / "FashionMNIST" / "raw", train_count=12, test_count=4, seed=3)
    dataset = load_dataset("fashion-mnist", tmp_path)
    assert dataset.source == str(tmp_path / "FashionMNIST" / "raw")  # a user's folder wins over the system one
    np.testing.assert_array_equal(dataset.train_labels.numpy(), arrays["train-labels-idx1-ubyte"])
    assert dataset.train_images.shape[0] == 12


def test_cifar10_from_python_batches(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    expected_labels = []
    for name in [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, 4).tolist()
        expected_labels.append(labels)
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": rng.integers(0, 256, (4, 3072)).astype(np.uint8), b"labels": labels}, handle)
    dataset = load_dataset("cifar10", tmp_path)
    assert dataset.train_images.shape == (20, 3, 32, 32) and dataset.test_images.shape == (4, 3, 32, 32)
    assert dataset.train_labels.tolist() == sum(expected_labels[:5], [])
    assert dataset.test_labels.tolist() == expected_labels[5]
    assert available_datasets(tmp_path)["cifar10"] is True


@pytest.mark.parametrize("name, hint", [("mnist", "MNIST/raw"), ("cifar10", "cifar-10-batches-py")])
def test_absent_dataset_says_how_to_get_it_without_hanging(tmp_path, name, hint):
    started = time.monotonic()
    with pytest.raises(DatasetUnavailable, match=hint) as error:
        load_dataset(name, tmp_path / "empty")
    assert "--data-dir" in str(error.value)
    assert time.monotonic() - started < 30  # generous: the point is that nothing waits on the network
    assert available_datasets(tmp_path / "empty")[name] is False


def test_fashion_mnist_absent_everywhere(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "not-installed")
    with pytest.raises(DatasetUnavailable, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", tmp_path / "empty")


def test_bundled_digits_split_is_fixed_and_stratified():
    first = load_dataset("digits")
    data_module._CACHE.clear()
    second = load_dataset("digits")
    assert first.train_images.shape == (1437, 1, 8, 8) and first.test_images.shape == (360, 1, 8, 8)
    assert (first.test_labels == second.test_labels).all()
    assert (first.train_images == second.train_images).all()
    counts = first.test_labels.bincount().tolist()
    assert len(counts) == 10 and max(counts) - min(counts) <= 2


def test_bundled_mnist5k_is_4000_1000_stratified():
    dataset = load_dataset("mnist5k")
    assert dataset.train_images.shape == (4000, 1, 28, 28) and dataset.test_images.shape == (1000, 1, 28, 28)
    assert dataset.test_labels.bincount().tolist() == [100] * 10
    assert 0.0 <= float(dataset.train_images.min()) and float(dataset.train_images.max()) == 1.0


@pytest.mark.skipif(
    not os.path.isdir("/usr/share/datasets/fashion-mnist") and not os.environ.get("TTEXPLORE_REQUIRE_FASHION"),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)
def test_system_fashion_mnist_is_full_size(tmp_path):
    dataset = load_dataset("fashion-mnist", tmp_path / "nothing-here")
    assert dataset.train_images.shape == (60000, 1, 28, 28) and dataset.test_images.shape == (10000, 1, 28, 28)
    assert dataset.train_labels.bincount().tolist() == [6000] * 10
