"""Which device a run or a layer computes on: resolving ``"auto"``, checking that a device exists, listing them;
and timing candidates on a device against each other (what ``auto`` does where the cost model is not trusted).

The names are those of :data:`ttexplore.tt.devicenames.DEVICE_NAMES` (checked
without torch by :func:`~ttexplore.tt.devicenames.check_device_name`); this
module asks torch what the machine has, so it imports torch.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ttexplore.tt import ttmath
from ttexplore.tt.devicenames import check_device_name

__all__ = [
    "DeviceUnavailable",
    "DeviceChoice",
    "device_problem",
    "resolve_device",
    "available_devices",
    "synchronize",
    "timed_seconds",
    "TIMING_ROUNDS",
    "fastest_by_timing",
    "batch_bucket",
    "random_operands",
]


class DeviceUnavailable(ValueError):
    """The asked device is not on this machine; the message says which to use instead."""


def _cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def device_problem(name: str, option: str = "device ") -> Optional[str]:
    """Why the device ``name`` cannot be used here, with the fix, or ``None`` when it can.

    Args:
        name: a device name (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
        option: how the fix names the setting, e.g. ``"--device "`` on the command line.

    Returns:
        e.g. ``"no CUDA device on this machine: use --device cpu or auto"``.
    """
    try:
        check_device_name(name)
    except ValueError as error:
        return str(error)
    if name in ("auto", "cpu"):
        return None
    if name.startswith("cuda"):
        count = _cuda_count()
        if count == 0:
            return f"no CUDA device on this machine: use {option}cpu or auto"
        index = int(name.split(":", 1)[1]) if ":" in name else 0
        if index >= count:
            names = ", ".join(f"cuda:{i}" for i in range(count))
            return (f"this machine has {count} CUDA device{'s' if count > 1 else ''} ({names}): "
                    f"use {option}cuda:{count - 1}, cpu or auto")
        return None
    if name == "mps" and not _mps_available():
        return f"no Apple MPS device on this machine: use {option}cpu or auto"
    return None


def resolve_device(name: str = "auto", option: str = "device ") -> torch.device:
    """The ``torch.device`` a device name stands for: ``"auto"`` is the first CUDA device when
    there is one, else the CPU.

    Raises:
        DeviceUnavailable: the device is not on this machine (the message names ``option`` and the fix).
    """
    problem = device_problem(name, option)
    if problem is not None:
        raise DeviceUnavailable(problem)
    if name == "auto":
        return torch.device("cuda", 0) if _cuda_count() else torch.device("cpu")
    if name == "cuda":
        return torch.device("cuda", 0)
    return torch.device(name)


@dataclass(frozen=True)
class DeviceChoice:
    """One device a user can pick, as the app lists them.

    Attributes:
        name: the value of ``RunConfig.device`` (``"auto"``, ``"cpu"``, ``"cuda:0"``, ``"mps"``).
        label: what it is on this machine, e.g. ``"cuda:0 — NVIDIA H200, 139 GiB"``.
    """

    name: str
    label: str


def _cpu_label() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), model)
    except OSError:
        pass
    return f"cpu — {model}, {os.cpu_count()} cores"


def available_devices() -> list[DeviceChoice]:
    """``auto`` (saying what it resolves to), the CPU, every CUDA device and MPS when present."""
    choices = []
    for index in range(_cuda_count()):
        properties = torch.cuda.get_device_properties(index)
        choices.append(DeviceChoice(f"cuda:{index}", f"cuda:{index} — {properties.name}, "
                                                     f"{properties.total_memory / 2**30:.0f} GiB"))
    if _mps_available():
        choices.append(DeviceChoice("mps", "mps — Apple GPU"))
    cpu = DeviceChoice("cpu", _cpu_label())
    resolved = choices[0].label if choices and choices[0].name.startswith("cuda") else cpu.label + " (no CUDA GPU found)"
    return [DeviceChoice("auto", f"auto → {resolved}"), cpu, *choices]


def synchronize(device: torch.device) -> None:
    """Wait until every kernel queued on ``device`` has finished (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed_seconds(function, device: torch.device) -> float:
    """Wall-clock seconds of ``function()`` including the kernels it queued on ``device``."""
    synchronize(device)
    start = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- timing candidates against each other
#: Rounds of a timing (:func:`fastest_by_timing`): the candidates run round-robin, best of these.
TIMING_ROUNDS = 5


def fastest_by_timing(runners: dict[str, "Callable[[], object]"], device: torch.device, rounds: int = TIMING_ROUNDS) -> str:
    """The name of the fastest runner: each runs once untimed, then ``rounds`` times round-robin (so load
    from other processes hits all alike); the best time of each counts."""
    for run in runners.values():
        run()
    best = {name: math.inf for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            best[name] = min(best[name], timed_seconds(run, device))
    return min(best, key=best.get)


def batch_bucket(batch: int) -> int:
    """The power of two at or above ``batch``: autotuning times one batch per bucket."""
    return 1 << max(0, math.ceil(math.log2(max(1, batch))))


def random_operands(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], batch: int, dtype: torch.dtype,
    device: torch.device, training: bool, input_grad: bool,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Random ``(batch, N)`` inputs and cores of these shapes on ``device``, for timing."""
    full = ttmath.full_ranks(ranks)
    cores = [
        torch.randn(full[k], n, m, full[k + 1], dtype=dtype, device=device, requires_grad=training)
        for k, (n, m) in enumerate(zip(in_modes, out_modes))
    ]
    inputs = torch.randn(batch, ttmath.prod(in_modes), dtype=dtype, device=device, requires_grad=training and input_grad)
    return inputs, cores
