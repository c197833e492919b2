"""Reading weight files safely: nothing executed, nothing allocated before the checks.

:func:`read_payload` opens a ``torch.save`` file with ``weights_only=True`` (no
code runs, only tensors and plain values are rebuilt) and ``mmap=True`` (the
tensors stay in the file until used), and turns every way a file can be wrong
(empty, truncated, not a torch archive, holding objects) into one
:class:`WeightsFileError` naming the file. :func:`check_state` compares the
tensors with the shapes a spec or a config implies, before a model is built.
:func:`write_payload` is the one way a weights file (a model, a layer, a checkpoint)
is written: whole or not at all (:func:`ttexplore.tt.atomic.write_atomic`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from ttexplore.tt.atomic import write_atomic

__all__ = ["WeightsFileError", "read_tensors", "read_payload", "write_payload", "check_state", "state_bytes"]

log = logging.getLogger(__name__)

#: ANSI escape sequences and other control characters: torch's own messages colour words with them.
_CONTROLS = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|[\x00-\x1f\x7f]")


class WeightsFileError(ValueError):
    """A weights file that can not be used, with the path and what is wrong."""


def write_payload(payload: Any, path: "str | Path") -> Path:
    """``torch.save(payload)`` into ``path``, atomically: a temporary file beside it, fsync-ed, then renamed,
    its folder created first; on any failure the old file is kept and the temporary one removed.

    Raises:
        WriteError: (an ``OSError``) one line naming the file and the fix (for a full disk, the bytes
            needed and free).
    """
    return write_atomic(path, lambda handle: torch.save(payload, handle), make_folder=True)


def read_tensors(path: "str | Path", fix: str = "save it again with torch.save") -> Any:
    """What a ``torch.save`` file holds (a dict, a tensor, ...), read weights-only, its tensors memory-mapped (CPU).

    Every way the file can be wrong is one :class:`WeightsFileError` in ttexplore's words, ending with ``fix``
    (what to do): torch's own message (its mmap and unpickling texts, coloured with ANSI codes) never reaches it.

    Raises:
        FileNotFoundError, IsADirectoryError, PermissionError: as ``open`` does.
        WeightsFileError: for an empty, truncated or damaged file, a file ``torch.save`` did not write (text, a
            bare pickle, torch's pre-1.6 format), or one holding anything but tensors and plain values.
    """
    path = Path(path)
    with open(path, "rb") as handle:  # the usual OSError for a missing file, a folder, no permission
        head = handle.read(4)
    if not head:
        raise WeightsFileError(f"{path} is empty (0 bytes): it holds no weights; {fix}")
    if head[:2] != b"PK":
        raise WeightsFileError(f"{path} is not a weights file written by torch.save (not a torch zip archive): {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001 - any failure of the reader means the file can not be used
        text = _CONTROLS.sub("", str(error).split("\n")[0]).strip()
        if "Weights only load failed" in text or type(error).__name__ == "UnpicklingError":
            raise WeightsFileError(f"{path} holds objects other than tensors and plain values, so it was not read "
                                   f"(ttexplore loads weights, never code): {fix}") from None
        log.info("reading %s failed: %s: %s", path, type(error).__name__, text)  # torch's words: for the log only
        raise WeightsFileError(f"{path} could not be read as a torch weights file (it is probably truncated or "
                               f"damaged): {fix}") from None


def read_payload(path: "str | Path") -> dict:
    """The dict a ttexplore weights file holds, its tensors memory-mapped (CPU).

    Raises:
        FileNotFoundError, IsADirectoryError, PermissionError: as ``open`` does.
        WeightsFileError: for an empty, truncated or damaged file, a file ``torch.save``
            did not write, or one holding anything but tensors and plain values (see :func:`read_tensors`).
    """
    payload = read_tensors(path, "give a file saved by ttexplore (a run's weights file, or a saved model)")
    if not isinstance(payload, dict):
        raise WeightsFileError(f"{path} is not a ttexplore weights file: it holds a {type(payload).__name__}, not a dict "
                               f"with a format header")
    return payload


def check_state(state: Any, expected: Mapping[str, tuple[int, ...]], path: "str | Path", what: str) -> None:
    """Check that ``state`` holds exactly the floating-point tensors ``expected`` names, of those shapes.

    Args:
        state: the file's state dict.
        expected: ``{key: shape}`` the spec or config implies.
        what: what the file should hold, for messages (``"TT layer"``, ``"model"``).

    Raises:
        WeightsFileError: naming ``path``, the key and the shapes.
    """
    if not isinstance(state, Mapping):
        raise WeightsFileError(f"{path} has no state dict of {what} weights (found a {type(state).__name__})")
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(map(str, missing[:4]))}{' ...' if len(missing) > 4 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(map(repr, unexpected[:4]))}{' ...' if len(unexpected) > 4 else ''}")
        raise WeightsFileError(f"{path} does not hold the weights its {what} spec describes: {'; '.join(parts)}")
    for key, shape in expected.items():
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor):
            raise WeightsFileError(f"{path}: {key} is a {type(tensor).__name__}, not a tensor")
        if not tensor.is_floating_point():
            raise WeightsFileError(f"{path}: {key} holds {tensor.dtype} values, not floating-point weights")
        if tuple(tensor.shape) != tuple(shape):
            raise WeightsFileError(f"{path}: {key} has shape {tuple(tensor.shape)}, but the {what} spec in the file "
                                   f"implies {tuple(shape)}: the file is inconsistent; save it again")


def state_bytes(expected: Mapping[str, tuple[int, ...]], element_bytes: int) -> int:
    """Bytes the tensors of ``expected`` take once built."""
    total = 0
    for shape in expected.values():
        count = 1
        for size in shape:
            count *= int(size)
        total += count
    return total * int(element_bytes)
