"""Dataset loaders on small files the tests write, plus the bundled sets."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import sys
import time

import numpy as np
import pytest
import torch

from ttexplore.runs import data as data_module
from ttexplore.runs.data import DatasetUnavailable, available_datasets, load_dataset, read_idx
from ttexplore.runs.datacache import SPLIT_KEYS, split_cache_path, split_digest


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


# ---------------------------------------------------------------- the bundled sets' saved splits (ttexplore.runs.datacache)
def load_fresh(name, folder):
    """``load_dataset`` past the per-process cache, as a new process would."""
    data_module._CACHE.clear()
    return load_dataset(name, folder)


def assert_same_dataset(first, second):
    for attribute in ("train_images", "train_labels", "test_images", "test_labels"):
        one, other = getattr(first, attribute), getattr(second, attribute)
        assert one.dtype == other.dtype and torch.equal(one, other), attribute


def without_scikit_learn(monkeypatch):
    """Make every import of scikit-learn's loaders fail, so a load can only come from the saved file."""
    for module in ("sklearn", "sklearn.datasets", "sklearn.model_selection"):
        monkeypatch.setitem(sys.modules, module, None)


@pytest.fixture
def from_package(tmp_path):
    """digits built from scikit-learn with nothing saved: its data dir's ``cache`` is a file, not a folder."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "cache").write_text("not a folder")
    dataset = load_fresh("digits", blocked)
    assert (blocked / "cache").read_text() == "not a folder"  # nothing written, and no error
    return dataset


def test_a_bundled_split_is_saved_once_then_read_without_its_package(tmp_path, monkeypatch, from_package):
    home = tmp_path / "data"
    first = load_fresh("digits", home)
    assert split_cache_path(home, "digits").is_file()
    assert_same_dataset(first, from_package)
    without_scikit_learn(monkeypatch)
    with pytest.raises(DatasetUnavailable, match="scikit-learn"):  # the package really is out of reach
        load_fresh("digits", tmp_path / "elsewhere")
    assert_same_dataset(load_fresh("digits", home), from_package)


def _rewrite(path, arrays, digest):
    path.unlink()
    np.savez(path, sha256=np.array(digest), **arrays)


@pytest.mark.parametrize("damage", ["truncated", "one byte changed", "arrays changed, digest kept", "another size",
                                    "not a zip", "a digest missing"])
def test_a_damaged_or_foreign_saved_split_is_built_again(tmp_path, monkeypatch, from_package, damage):
    home = tmp_path / "data"
    load_fresh("digits", home)
    path = split_cache_path(home, "digits")
    good = path.read_bytes()
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in SPLIT_KEYS}
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "one byte changed":
        middle = len(good) // 2
        path.write_bytes(good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1:])
    elif damage == "arrays changed, digest kept":
        digest = split_digest(arrays)
        arrays["train_x"] = arrays["train_x"].copy()
        arrays["train_x"][0, 0] += 1
        _rewrite(path, arrays, digest)
    elif damage == "another size":  # a sound file, but not of digits' sizes
        arrays = {key: value[:-1] for key, value in arrays.items()}
        _rewrite(path, arrays, split_digest(arrays))
    elif damage == "not a zip":
        path.write_bytes(b"garbage" * 100)
    else:
        path.unlink()
        np.savez(path, **arrays)
    assert_same_dataset(load_fresh("digits", home), from_package)  # built from scikit-learn again ...
    without_scikit_learn(monkeypatch)
    assert_same_dataset(load_fresh("digits", home), from_package)  # ... and saved sound: read without it
