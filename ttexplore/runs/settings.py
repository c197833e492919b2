"""ttexplore's environment variables, read and checked in one place. Pure Python.

=========================  =======================================================================
``TTEXPLORE_HOME``         folder of runs, weights and data (default ``~/.ttexplore``); not a file
``TTEXPLORE_DB``           the run store file (default ``<home>/runs.db``); not a folder
``TTEXPLORE_DATA``         the datasets folder (default ``<home>/data``); not a file
``TTEXPLORE_WORKERS``      runs the app trains at once: a whole number from 1; above
                           :func:`worker_cap` (2 per core, at least 2) it is capped, with a note
``TTEXPLORE_TORCH_THREADS`` torch threads for the app's runs: 1 to :func:`thread_cap`
``TTEXPLORE_MEMORY_LIMIT`` what one run may use: ``8G``, ``512M``, ``1.5GiB`` or bytes
``TTEXPLORE_OFFLINE``      ``1``/``true``/``yes``/``on`` to never try a download; ``0``/``false``/``no``/``off``
                           or unset to allow them
=========================  =======================================================================

:func:`environment_problems` lists every bad value as one line naming the variable and the
fix (the CLI refuses to start with exit code 2); :func:`job_settings` gives the app's job
manager its values, falling back to the default for a bad one and saying so in its
``problems`` (the app keeps working and shows them); :func:`is_offline` reads
``TTEXPLORE_OFFLINE`` (an unknown value counts as offline, the safe side).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from ttexplore.tt.errors import ConfigError
from ttexplore.tt.memory import ENV_LIMIT, parse_size

__all__ = ["SettingError", "JobSettings", "ENV_VARS", "worker_cap", "thread_cap", "environment_problems",
           "job_settings", "is_offline", "read_count"]

log = logging.getLogger(__name__)

ENV_VARS = ("TTEXPLORE_HOME", "TTEXPLORE_DB", "TTEXPLORE_DATA", "TTEXPLORE_WORKERS", "TTEXPLORE_TORCH_THREADS",
            ENV_LIMIT, "TTEXPLORE_OFFLINE")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


class SettingError(ConfigError):
    """A bad environment variable; ``field`` is the variable's name, the message says the fix."""


def _cores() -> int:
    return max(1, os.cpu_count() or 1)


def worker_cap(cores: Optional[int] = None) -> int:
    """The most runs a job manager trains at once: two per core, at least 2 (more only slows each run)."""
    return max(2, 2 * (cores or _cores()))


def thread_cap(cores: Optional[int] = None) -> int:
    """The most torch threads a run may ask for: 4 per core, at least 64 (as ``--threads``)."""
    return max(64, 4 * (cores or _cores()))


def read_count(name: str, text: str, most: int, what: str) -> int:
    """``text`` (the value of variable ``name``) as a whole number from 1 to ``most``.

    Raises:
        SettingError: naming ``name``, the value and the fix.
    """
    stripped = text.strip()
    shown = stripped if len(stripped) <= 20 else stripped[:17] + "..."
    if not stripped.lstrip("+").isdigit() or len(stripped) > 12:
        raise SettingError(name, f"{name}={shown!r} is not a whole number: set it to the {what}, e.g. {name}=2, "
                                 "or unset it for the default")
    value = int(stripped)
    if value < 1:
        raise SettingError(name, f"{name}={value} must be at least 1: set the {what}, or unset it for the default")
    if value > most:
        raise SettingError(name, f"{name}={value} is more than {most} (this machine has {_cores()} cores): "
                                 f"set at most {most}, or unset it for the default")
    return value


def _path_problem(name: str, text: str, want_folder: bool) -> Optional[str]:
    if not text.strip():
        return f"{name} is set but empty: set it to a {'folder' if want_folder else 'file'} path, or unset it"
    path = Path(text).expanduser()
    if want_folder and path.exists() and not path.is_dir():
        return f"{name}={text!r} is a file, not a folder: point it at a folder (it is created when missing)"
    if not want_folder and path.is_dir():
        return f"{name}={text!r} is a folder: point it at a file inside it, e.g. {path / 'runs.db'}"
    return None


def environment_problems(environ: Optional[Mapping[str, str]] = None) -> list[str]:
    """Every ttexplore variable in ``environ`` (default ``os.environ``) with a bad value, as one line each
    naming the variable and the fix; ``TTEXPLORE_WORKERS`` above :func:`worker_cap` is not a problem
    (it is capped, see :func:`job_settings`)."""
    environ = os.environ if environ is None else environ
    problems = []
    for name, want_folder in (("TTEXPLORE_HOME", True), ("TTEXPLORE_DB", False), ("TTEXPLORE_DATA", True)):
        if name in environ:
            problem = _path_problem(name, environ[name], want_folder)
            if problem:
                problems.append(problem)
    if environ.get("TTEXPLORE_WORKERS", "").strip():
        try:
            read_count("TTEXPLORE_WORKERS", environ["TTEXPLORE_WORKERS"], 10 ** 12, "number of runs trained at once")
        except SettingError as error:
            problems.append(str(error))
    if environ.get("TTEXPLORE_TORCH_THREADS", "").strip():
        try:
            read_count("TTEXPLORE_TORCH_THREADS", environ["TTEXPLORE_TORCH_THREADS"], thread_cap(), "torch threads per run")
        except SettingError as error:
            problems.append(str(error))
    if environ.get(ENV_LIMIT, "").strip():
        try:
            parse_size(environ[ENV_LIMIT])
        except ConfigError as error:
            problems.append(str(error))
    offline = environ.get("TTEXPLORE_OFFLINE", "").strip().lower()
    if offline not in _TRUE + _FALSE:
        problems.append(f"TTEXPLORE_OFFLINE={offline[:20]!r} is neither on nor off: set it to 1 (never download) "
                        "or 0 (download when online), or unset it")
    return problems


def is_offline(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Whether ``TTEXPLORE_OFFLINE`` forbids downloads: ``1``/``true``/``yes``/``on``, or an unknown value."""
    environ = os.environ if environ is None else environ
    return environ.get("TTEXPLORE_OFFLINE", "").strip().lower() not in _FALSE


@dataclass(frozen=True)
class JobSettings:
    """What the app's job manager takes from the environment.

    Attributes:
        workers: runs at once (``None``: one per core), already capped at :func:`worker_cap`.
        torch_threads: torch threads (``None``: cores shared among the workers).
        data_dir: ``TTEXPLORE_DATA`` (``None``: the default folder).
        problems: one line per bad variable (its default was used instead), for the page to show.
        notes: one line per value changed (``TTEXPLORE_WORKERS`` capped).
    """

    workers: Optional[int] = None
    torch_threads: Optional[int] = None
    data_dir: Optional[str] = None
    problems: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())


def job_settings(environ: Optional[Mapping[str, str]] = None) -> JobSettings:
    """The job manager's settings from ``environ`` (default ``os.environ``); never raises: a bad value
    falls back to its default and is listed in ``problems``, a worker count over the cap is capped
    and listed in ``notes`` (each also logged: call it once per process)."""
    environ = os.environ if environ is None else environ
    problems, notes = [], []
    workers = threads = None
    if environ.get("TTEXPLORE_WORKERS", "").strip():
        try:
            workers = read_count("TTEXPLORE_WORKERS", environ["TTEXPLORE_WORKERS"], 10 ** 12, "number of runs trained at once")
        except SettingError as error:
            problems.append(f"{error} (using one run per core meanwhile)")
        if workers is not None and workers > worker_cap():
            notes.append(f"TTEXPLORE_WORKERS={workers} is more than {worker_cap()} (two per core on this "
                         f"{_cores()}-core machine): training {worker_cap()} runs at once")
            workers = worker_cap()
    if environ.get("TTEXPLORE_TORCH_THREADS", "").strip():
        try:
            threads = read_count("TTEXPLORE_TORCH_THREADS", environ["TTEXPLORE_TORCH_THREADS"], thread_cap(),
                                 "torch threads per run")
        except SettingError as error:
            problems.append(f"{error} (using the cores shared among the runs meanwhile)")
    data_dir = environ.get("TTEXPLORE_DATA") or None
    if data_dir is not None and _path_problem("TTEXPLORE_DATA", data_dir, True):
        problems.append(_path_problem("TTEXPLORE_DATA", data_dir, True))
    for line in problems + notes:
        log.warning(line)
    return JobSettings(workers, threads, data_dir, tuple(problems), tuple(notes))
