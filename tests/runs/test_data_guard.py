"""Dataset files are read without trusting them: CIFAR-10 pickles through a restricted
unpickler, damaged IDX files as one clear DatasetUnavailable."""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np
import pytest

from ttexplore.cli import main
from ttexplore.runs.data import _CIFAR_TRAIN, DatasetUnavailable, load_dataset


class RunsCode:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def batch_bytes(count: int, seed: int, python2_names: bool = False) -> bytes:
    """A CIFAR-10 batch as the real ones are: a protocol-2 pickle of a dict with bytes keys and a uint8 array."""
    rng = np.random.default_rng(seed)
    entry = {b"batch_label": b"batch", b"labels": [int(v) for v in rng.integers(0, 10, count)],
             b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * count}
    data = pickle.dumps(entry, protocol=2)
    if python2_names:  # the original files (Python 2, numpy 1) name numpy.core, not numpy._core
        data = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    return data


def cifar_folder(root, replace=None):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for index, name in enumerate(_CIFAR_TRAIN + ["test_batch"]):
        (folder / name).write_bytes(batch_bytes(6, index, python2_names=index % 2 == 0))
    for name, content in (replace or {}).items():
        (folder / name).write_bytes(content)
    return folder


def test_real_shaped_cifar_batches_still_load(tmp_path):
    cifar_folder(tmp_path)
    dataset = load_dataset("cifar10", tmp_path)
    assert tuple(dataset.train_images.shape) == (30, 3, 32, 32) and tuple(dataset.test_images.shape) == (6, 3, 32, 32)
    assert 0 <= float(dataset.train_images.min()) and float(dataset.train_images.max()) <= 1
    assert int(dataset.train_labels.max()) <= 9


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "MARKER"
    evil = pickle.dumps({b"data": RunsCode(marker), b"labels": [0]}, protocol=2)
    folder = cifar_folder(tmp_path, {"data_batch_3": evil})
    with pytest.raises(DatasetUnavailable) as error:
        load_dataset("cifar10", tmp_path)
    message = str(error.value)
    assert str(folder / "data_batch_3") in message and "is not a CIFAR-10 batch" in message
    assert "system" in message and "nothing in it ran" in message
    assert not marker.exists()


def test_the_cli_reports_it_in_one_line(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    cifar_folder(tmp_path, {"test_batch": pickle.dumps({b"data": RunsCode(marker)}, protocol=2)})
    code = main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--quiet", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not a CIFAR-10 batch" in err
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (batch_bytes(6, 0)[:100], "could not be read as a CIFAR-10 batch"),
        (b"", "could not be read as a CIFAR-10 batch"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, protocol=2), "not n x 3072 bytes"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}, protocol=2), "2 images but 3 labels"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 42]}, protocol=2), "outside 0..9"),
        (pickle.dumps({b"labels": [0]}, protocol=2), "no data/labels"),
        (pickle.dumps([1, 2, 3], protocol=2), "no data/labels"),
        (pickle.dumps({b"data": np.array([object()], dtype=object)}, protocol=2), "refers to"),
    ],
)
def test_damaged_or_wrong_batches_are_named(tmp_path, content, message):
    folder = cifar_folder(tmp_path, {"data_batch_1": content})
    with pytest.raises(DatasetUnavailable, match=message) as error:
        load_dataset("cifar10", tmp_path)
    assert str(folder / "data_batch_1") in str(error.value)


def write_idx(folder, images: bytes = None):
    folder.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 8, 3]) + (3).to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
    (folder / "train-images-idx3-ubyte").write_bytes(images if images is not None else header + bytes(3 * 784))
    (folder / "t10k-images-idx3-ubyte").write_bytes(header + bytes(3 * 784))
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / name).write_bytes(bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes(3))


@pytest.mark.parametrize("images, message", [(bytes([0, 0, 8, 3, 0]), "truncated"), (b"\x01\x02\x03\x04", "bad magic"),
                                             (bytes([0, 0, 8, 3]) + bytes(12) + bytes(5), "holds 5 values")])
def test_a_damaged_idx_file_is_dataset_unavailable(tmp_path, images, message):
    write_idx(tmp_path / "MNIST" / "raw", images)
    with pytest.raises(DatasetUnavailable, match=message):
        load_dataset("mnist", tmp_path)


def test_a_truncated_gzip_idx_file_is_dataset_unavailable(tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    write_idx(folder)
    data = gzip.compress((folder / "train-images-idx3-ubyte").read_bytes())
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetUnavailable, match="could not be read"):
        load_dataset("mnist", tmp_path)
