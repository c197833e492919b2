"""The device names a run accepts, checked without torch (:mod:`ttexplore.nn.device` asks torch what exists)."""

from __future__ import annotations

import re

__all__ = ["DEVICE_NAMES", "DEFAULT_DEVICE", "check_device_name"]

#: What ``RunConfig.device`` and ``--device`` accept: ``auto`` (the first CUDA device when
#: there is one, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``, ``mps``.
DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")

DEFAULT_DEVICE = "auto"

_DEVICE_PATTERN = re.compile(r"(auto|cpu|mps|cuda(:\d{1,3})?)")


def check_device_name(name: object) -> str:
    """``name`` when it is a device name this project knows.

    Raises:
        ValueError: naming the accepted forms.
    """
    if not isinstance(name, str) or not _DEVICE_PATTERN.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "..."
        raise ValueError(f"device {shown} is unknown: use one of {', '.join(DEVICE_NAMES)}")
    return name
