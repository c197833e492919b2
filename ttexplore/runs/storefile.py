"""The run store's file: where it is, its schema, what went wrong with it in one line, and whether it vanished.

:func:`store_problem` turns an SQLite error into a :class:`StoreError` that names the
file and says what is really wrong: a full disk (the store itself intact), a read-only
file, a disk I/O error, a file that is not a run store (corrupt, truncated), a folder
that cannot be opened. A full disk is never reported as a corrupt store.

:class:`FileWatch` remembers the identity (device, inode) of the file the store opened,
so the store notices, before each connection, when the file was deleted or replaced
while in use; :class:`FileGate` is the per-file gate its connections pass (see :meth:`ttexplore.runs.store.RunStore`), instead of letting SQLite make
an empty 0-byte file and every page report "no such table".
"""

from __future__ import annotations

import json
import os
import sqlite3
import shutil
import threading
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ttexplore.tt.atomic import human_size

__all__ = ["StoreError", "store_problem", "FileWatch", "FileGate", "file_gate", "file_identity", "DISK_FULL_BELOW",
           "SCHEMA", "ADDED_COLUMNS", "ADDED_METRIC_COLUMNS", "SETTINGS", "BEST_VAL_SET", "best_val_values", "create_schema", "event_dict", "run_dict", "safe_run_id", "clean_tags", "default_home", "default_db_path", "pid_alive"]

#: The tables and indexes of a run store (created when missing).
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    config_key TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    dataset TEXT NOT NULL,
    layer TEXT NOT NULL,
    shape TEXT NOT NULL,
    ranks TEXT,
    layer_params INTEGER NOT NULL,
    compression REAL NOT NULL,
    best_test_accuracy REAL,
    final_test_accuracy REAL,
    error TEXT,
    sweep TEXT,
    weights_path TEXT,
    host TEXT,
    pid INTEGER
);
CREATE INDEX IF NOT EXISTS runs_sweep ON runs (sweep, config_key);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    epoch REAL NOT NULL,
    step INTEGER NOT NULL,
    train_loss REAL,
    train_accuracy REAL,
    test_loss REAL,
    test_accuracy REAL,
    elapsed_s REAL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT);
"""

#: Columns added after the first release, with their definitions: a store written
#: by an older version gains them when opened (its runs keep loading).
ADDED_COLUMNS = {
    "name": "TEXT NOT NULL DEFAULT ''",
    "tags": "TEXT NOT NULL DEFAULT '[]'",
    "notes": "TEXT NOT NULL DEFAULT ''",
    "queue": "TEXT NOT NULL DEFAULT 'app'",
    "epochs_done": "REAL NOT NULL DEFAULT 0",
    "cancel_requested": "INTEGER NOT NULL DEFAULT 0",
    # the best epoch by validation loss (runs with a validation split, ttexplore.runs.validation)
    "best_val_loss": "REAL", "best_val_accuracy": "REAL", "best_val_epoch": "REAL", "test_accuracy_at_best_val": "REAL",
}

#: Metric columns added after the first release (a store written before gains them when opened).
ADDED_METRIC_COLUMNS = {
    "detail": "TEXT",  # JSON: what a rounding changed (kind "round", see ttexplore.runs.schedule)
    "cores": "TEXT",  # JSON: an event's per-core norms (ttexplore.runs.corestats), NULL without TT layers
    "val_loss": "REAL", "val_accuracy": "REAL",  # on the validation split, at epoch ends (ttexplore.runs.validation)
}

#: The settings a store keeps beside its runs (``RunStore.setting``): ``baseline``, the pinned run's id.
SETTINGS = ("baseline",)

#: The run columns of the best validation epoch, as an SQL ``SET`` list (:func:`best_val_values` gives its values).
BEST_VAL_SET = "best_val_loss=?, best_val_accuracy=?, best_val_epoch=?, test_accuracy_at_best_val=?"


def best_val_values(event: Mapping[str, Any]) -> tuple:
    """The values of :data:`BEST_VAL_SET` from the best epoch's event (``None`` each for an empty one)."""
    return tuple(event.get(key) for key in ("val_loss", "val_accuracy", "epoch", "test_accuracy"))


def create_schema(connection: sqlite3.Connection) -> None:
    """Create the tables and index of :data:`SCHEMA` where missing and add the columns a store written by an
    older version lacks (:data:`ADDED_COLUMNS`, :data:`ADDED_METRIC_COLUMNS`); the caller holds a transaction."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            connection.execute(statement)
    for table, added in (("runs", ADDED_COLUMNS), ("metrics", ADDED_METRIC_COLUMNS)):
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        for column, definition in added.items():
            if column not in present:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    connection.execute("CREATE INDEX IF NOT EXISTS runs_queue ON runs (queue, status, created_at)")


def run_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A row as a dict; a column whose JSON cannot be read (a row another program damaged) reads as empty,
    and ``damaged`` names it, so one bad row never stops a page or a command listing the runs."""
    run = dict(row)
    damaged = []
    for column, kind in (("config", dict), ("ranks", (int, list)), ("tags", list)):
        text = run.get(column)
        try:
            value = json.loads(text) if text else None
        except (TypeError, ValueError):
            value, damaged = None, damaged + [column]
        if value is not None and not isinstance(value, kind):
            value, damaged = None, damaged + [column]
        run[column] = value if value is not None or column == "ranks" else kind()  # ranks: None when unknown
    if damaged:
        run["damaged"] = damaged
    return run


def safe_run_id(run_id: str) -> str:
    """A run id as a file name: no folder parts (ids are generated, but a row could say anything)."""
    name = Path(str(run_id)).name
    if not name or name in (".", "..") or name != str(run_id):
        raise ValueError(f"run id {run_id!r} is not a valid run id")
    return name


def clean_tags(tags: "Sequence[str] | str") -> list[str]:
    """Tags as a sorted list of distinct, stripped, non-empty strings (a string is split at commas)."""
    if isinstance(tags, str):
        tags = tags.split(",")
    return sorted({str(tag).strip() for tag in tags if str(tag).strip()})


def event_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A metric row as a dict, its JSON columns (``detail``, ``cores``) parsed (an unreadable one becomes ``None``)."""
    event = dict(row)
    for column in ("detail", "cores"):
        try:
            event[column] = json.loads(event[column]) if event.get(column) else None
        except ValueError:
            event[column] = None
    return event


#: Free bytes under which a disk I/O error is reported as a full disk (SQLite reports some
#: writes that hit ENOSPC, such as growing its shared-memory index, as "disk I/O error").
DISK_FULL_BELOW = 1 << 20


class StoreError(RuntimeError):
    """The run store's file cannot be opened, read or written; the message names the file and the fix.

    Attributes:
        path: the database file.
        reason: ``"full"``, ``"read-only"``, ``"io"``, ``"not-a-store"``, ``"cannot-open"``, ``"changed"``
            (the file was deleted or replaced during the call: the next call is fine) or ``"other"``.
    """

    def __init__(self, path: Path, message: str, reason: str = "other") -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason


def _free(folder: Path) -> Optional[int]:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def store_problem(path: Path, error: Exception) -> StoreError:
    """A :class:`StoreError` saying what is wrong with ``path`` and how to fix it.

    Args:
        path: the database file.
        error: what SQLite (or the OS) raised.
    """
    text = str(error).lower()
    free = _free(path.parent)
    full = "database or disk is full" in text or "disk is full" in text or (
        "disk i/o" in text and free is not None and free < DISK_FULL_BELOW)
    if full:
        return StoreError(path, f"the run store {path} cannot be written: the disk is full ({human_size(free)} free in "
                                f"{path.parent}); free some space and try again (the store itself is intact)", "full")
    if "readonly" in text or "read-only" in text:
        return StoreError(path, f"the run store {path} is read-only: make it and its folder writable (chmod u+w), "
                                "or point TTEXPLORE_DB at a writable file", "read-only")
    if "disk i/o" in text:
        return StoreError(path, f"the run store {path} hit a disk I/O error ({error}; {human_size(free)} free): check "
                                "the disk it lives on, then try again", "io")
    if "not a database" in text or "malformed" in text or "corrupt" in text or "no such table" in text:
        return StoreError(path, f"the run store {path} is not a readable SQLite database ({error}): move it aside "
                                f"(mv {path} {path}.bad) to start a new store, or point TTEXPLORE_DB at another file; "
                                "ttexplore never overwrites it", "not-a-store")
    if "unable to open" in text or "permission" in text:
        return StoreError(path, f"the run store {path} cannot be opened ({error}): check that its folder exists and is "
                                "writable, or point TTEXPLORE_DB at another file", "cannot-open")
    return StoreError(path, f"the run store {path} failed: {error}")


def file_identity(path: Path) -> Optional[tuple[int, int]]:
    """``(device, inode)`` of ``path``, or ``None`` when there is no such file."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


class FileWatch:
    """The identity of the store's file as last seen, to tell when it was deleted or replaced.

    Costs one ``stat`` per check (microseconds).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.identity = file_identity(path)

    def change(self) -> Optional[str]:
        """``"deleted"`` when the file is gone, ``"replaced"`` when another file took its place,
        ``None`` when it is the file last seen."""
        now = file_identity(self.path)
        if now == self.identity:
            return None
        return "deleted" if now is None else "replaced"

    def remember(self) -> None:
        """Take the file as it is now as the one to watch."""
        self.identity = file_identity(self.path)


class FileGate:
    """What the stores of this process opened on one file: a condition (over a re-entrant lock) that
    opening a connection passes, and how many connections are open now (a store deleted in use is made
    anew only when none is open on the old file, so SQLite never mixes the two files' WAL and index)."""

    def __init__(self) -> None:
        self.condition = threading.Condition(threading.RLock())
        self.open = 0


_GATES: dict[str, FileGate] = {}
_GATES_LOCK = threading.Lock()


def file_gate(path: Path) -> FileGate:
    """The one gate of ``path`` in this process (every store on the file shares it)."""
    with _GATES_LOCK:
        return _GATES.setdefault(str(Path(path).absolute()), FileGate())


def default_home() -> Path:
    """``$TTEXPLORE_HOME`` or ``~/.ttexplore``: where runs and artefacts live."""
    return Path(os.environ.get("TTEXPLORE_HOME", "~/.ttexplore")).expanduser()


def default_db_path() -> Path:
    """``$TTEXPLORE_DB``, else ``<home>/runs.db``."""
    if os.environ.get("TTEXPLORE_DB"):
        return Path(os.environ["TTEXPLORE_DB"]).expanduser()
    return default_home() / "runs.db"


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
