"""How much memory ttexplore may allocate on this machine, and a check before it does. Pure Python.

* :func:`memory_budget`: ``TTEXPLORE_MEMORY_LIMIT`` when set (``8G``, ``512M``,
  ``1.5GiB`` or bytes), else :data:`DEFAULT_SHARE` of the memory the machine (or its
  container) has available now.
* :func:`check_bytes` raises :class:`ResourceError` (a
  :class:`~ttexplore.tt.errors.ConfigError` with field ``"memory"``) before an
  allocation past the budget; a run's own estimate is in :mod:`ttexplore.runs.resources`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from ttexplore.tt.errors import ConfigError

__all__ = ["ResourceError", "ENV_LIMIT", "DEFAULT_SHARE", "FALLBACK_BUDGET", "human_bytes", "parse_size",
           "available_memory", "memory_budget", "budget_description", "check_bytes"]

#: The environment variable that sets the budget (``8G``, ``512M``, ``1.5GiB``, or bytes).
ENV_LIMIT = "TTEXPLORE_MEMORY_LIMIT"

#: Without ``TTEXPLORE_MEMORY_LIMIT``, a run may use this share of the memory available now
#: (the rest is left to the app, the other runs and the machine).
DEFAULT_SHARE = 0.5

#: The budget when the available memory can not be read at all.
FALLBACK_BUDGET = 4 << 30

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([KMGTP]?)(I?B?)\s*", re.IGNORECASE)



class ResourceError(ConfigError):
    """A run (or a file) needs more memory than the budget; ``field`` is ``"memory"``."""

    def __init__(self, message: str, field: str = "memory") -> None:
        super().__init__(field, message)


# ---------------------------------------------------------------- sizes
def human_bytes(count: float) -> str:
    """``2176`` -> ``"2.1 KiB"``; ``4.2e9`` -> ``"3.9 GiB"`` (binary units, as ``free -h``)."""
    count = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(count) < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def parse_size(text: str, name: str = ENV_LIMIT) -> int:
    """``"8G"``, ``"512M"``, ``"1.5GiB"``, ``"8 GB"`` or ``"8000000000"`` -> bytes.

    Units are binary (``K`` = 1024, ``G`` = 1024**3), with or without ``B``/``iB``,
    in any case, as ``docker -m`` reads them.

    Raises:
        ResourceError: naming ``name`` and the accepted forms, for anything else or a size of 0.
    """
    match = _SIZE.fullmatch(str(text))
    if match is None or (match.group(3) and match.group(3).upper() == "I"):
        raise ResourceError(f"{name}={str(text)[:40]!r} is not a size: write bytes (8000000000) or a number with a unit, "
                            f"e.g. 8G, 512M or 1.5GiB")
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if value < 1 << 20:
        raise ResourceError(f"{name}={str(text)[:40]!r} is less than 1 MiB, too little for any run: give e.g. 8G or 512M")
    return int(value)


# ---------------------------------------------------------------- the budget
def _read_int(path: Path) -> Optional[int]:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_room() -> Optional[int]:
    """Bytes left under this process's cgroup memory limit (containers), ``None`` without one."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(Path(limit_file)), _read_int(Path(usage_file))
        if limit is not None and usage is not None and limit < 1 << 60:  # v1 writes a huge number for "no limit"
            return max(0, limit - usage)
    return None


def available_memory(meminfo: "str | os.PathLike" = "/proc/meminfo") -> Optional[int]:
    """Bytes the machine can give a new allocation now, ``None`` when no source answers.

    Linux's ``MemAvailable`` (capped by the cgroup's remaining room inside a container);
    elsewhere ``sysconf`` available pages, then psutil when installed.
    """
    found: Optional[int] = None
    try:
        with open(meminfo, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    parts = line.split()
                    found = int(parts[1]) * (1024 if len(parts) > 2 and parts[2].lower() == "kb" else 1)
                    break
    except (OSError, ValueError, IndexError):
        found = None
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            found = None
    if found is None:
        try:
            import psutil  # type: ignore[import-not-found]

            found = int(psutil.virtual_memory().available)
        except Exception:  # noqa: BLE001 - optional, any failure means "unknown"
            found = None
    room = _cgroup_room()
    if room is not None:
        found = room if found is None else min(found, room)
    return found


def memory_budget(share: float = DEFAULT_SHARE) -> int:
    """Bytes a run may use: ``TTEXPLORE_MEMORY_LIMIT`` when set, else ``share`` of :func:`available_memory`
    (:data:`FALLBACK_BUDGET` when it is unknown).

    Raises:
        ResourceError: when ``TTEXPLORE_MEMORY_LIMIT`` is not a size.
    """
    text = os.environ.get(ENV_LIMIT, "").strip()
    if text:
        return parse_size(text)
    available = available_memory()
    return FALLBACK_BUDGET if available is None else int(available * share)


def budget_description(budget: Optional[int] = None) -> str:
    """Where the budget comes from, for messages: ``"8.0 GiB (TTEXPLORE_MEMORY_LIMIT)"`` or
    ``"7.6 GiB (half of the 15.2 GiB available now)"``."""
    if os.environ.get(ENV_LIMIT, "").strip():
        size = parse_size(os.environ[ENV_LIMIT])
        return f"{human_bytes(size if budget is None else budget)} ({ENV_LIMIT})"
    available = available_memory()
    if budget is None:
        budget = memory_budget()
    if available is None:
        return f"{human_bytes(budget)} (the available memory could not be read)"
    share = "half" if DEFAULT_SHARE == 0.5 else f"{DEFAULT_SHARE:.0%}"
    return f"{human_bytes(budget)} ({share} of the {human_bytes(available)} available now)"


def check_bytes(needed: int, what: str, budget: Optional[int] = None) -> None:
    """Refuse to allocate ``needed`` bytes for ``what`` (a file's tensors, a model) beyond the budget.

    Raises:
        ResourceError: naming ``what``, the size and the budget.
    """
    explicit = budget is not None
    budget = memory_budget() if budget is None else int(budget)
    if needed > budget:
        source = human_bytes(budget) if explicit else budget_description(budget)
        raise ResourceError(f"{what} needs {human_bytes(needed)} of memory, more than the budget of {source}: "
                            f"raise {ENV_LIMIT} if the machine has the room")
