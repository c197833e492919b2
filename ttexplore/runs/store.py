"""The run store: every run, its config, its metric events and its status, in SQLite.

One file (default ``~/.ttexplore/runs.db``; ``$TTEXPLORE_DB`` or
``$TTEXPLORE_HOME`` override it) outlives page reloads and server restarts.
Every call opens its own short connection in WAL mode with a busy timeout, so
several threads and processes (jobs, sweeps, two app sessions) can write at once
without corrupting it.

The store is also the queue: a run is created ``queued`` on a named queue
(``"app"`` for job managers, ``"sweep"`` for a sweep's own executor), and a
worker takes one with :meth:`RunStore.claim_next`, an atomic transaction, so two
servers on one home never both take the same run. Model files and checkpoints
live under the store's ``artifacts`` folder; the store never reads, serves or
deletes a file outside it, whatever a row says.

A file that is not a readable database (corrupt, truncated, unreadable,
read-only) raises :class:`StoreError` naming the file and the fix; the file is
never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

from ttexplore.runs.config import RunConfig
from ttexplore.runs.validation import best_of

__all__ = ["RunStore", "StoreError", "default_home", "default_db_path", "pid_alive", "ACTIVE_STATUSES", "FINAL_STATUSES",
           "RESUMABLE_STATUSES", "QUEUES"]

ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("completed", "cancelled", "diverged", "failed", "interrupted")
#: Runs that may continue from their last checkpoint (see :mod:`ttexplore.runs.lifecycle`).
RESUMABLE_STATUSES = ("interrupted", "cancelled", "failed")
#: ``"app"``: taken by any :class:`~ttexplore.runs.jobs.JobManager`; ``"sweep"``: run by the sweep that queued it.
QUEUES = ("app", "sweep")

_SCHEMA = """
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
_ADDED_COLUMNS = {
    "name": "TEXT NOT NULL DEFAULT ''",
    "tags": "TEXT NOT NULL DEFAULT '[]'",
    "notes": "TEXT NOT NULL DEFAULT ''",
    "queue": "TEXT NOT NULL DEFAULT 'app'",
    "epochs_done": "REAL NOT NULL DEFAULT 0",
    "cancel_requested": "INTEGER NOT NULL DEFAULT 0",
    # the best epoch by validation loss (runs with a validation split, ttexplore.runs.validation)
    "best_val_loss": "REAL", "best_val_accuracy": "REAL", "best_val_epoch": "REAL", "test_accuracy_at_best_val": "REAL",
}
_ADDED_METRIC_COLUMNS = {"val_loss": "REAL", "val_accuracy": "REAL"}  # metric columns added later, likewise
_METRIC_COLUMNS = ("kind", "epoch", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "elapsed_s",
                   *_ADDED_METRIC_COLUMNS)
SETTINGS = ("baseline",)  # the settings a store keeps beside its runs (RunStore.setting)


class StoreError(RuntimeError):
    """The run store's file cannot be opened, read or written; the message names the file and the fix.

    Attributes:
        path: the database file.
    """

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


def _store_problem(path: Path, error: Exception) -> StoreError:
    """A :class:`StoreError` saying what is wrong with ``path`` and how to fix it."""
    text = str(error).lower()
    if "readonly" in text or "read-only" in text:
        fix = (f"the run store {path} is read-only: make it and its folder writable "
               f"(chmod u+w), or point TTEXPLORE_DB at a writable file")
    elif "not a database" in text or "malformed" in text or "corrupt" in text or "disk i/o" in text:
        fix = (f"the run store {path} is not a readable SQLite database ({error}): move it aside "
               f"(mv {path} {path}.bad) to start a new store, or point TTEXPLORE_DB at another file; "
               "ttexplore never overwrites it")
    elif "unable to open" in text or "permission" in text:
        fix = (f"the run store {path} cannot be opened ({error}): check that its folder exists and is "
               "writable, or point TTEXPLORE_DB at another file")
    else:
        fix = f"the run store {path} failed: {error}"
    return StoreError(path, fix)


def default_home() -> Path:
    """``$TTEXPLORE_HOME`` or ``~/.ttexplore``: where runs and artefacts live."""
    return Path(os.environ.get("TTEXPLORE_HOME", "~/.ttexplore")).expanduser()


def default_db_path() -> Path:
    """``$TTEXPLORE_DB``, else ``<home>/runs.db``."""
    if os.environ.get("TTEXPLORE_DB"):
        return Path(os.environ["TTEXPLORE_DB"]).expanduser()
    return default_home() / "runs.db"


def _new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


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


class RunStore:
    """SQLite-backed record of runs, their metric events, and the queue.

    Args:
        path: the database file (created with its folder); default :func:`default_db_path`.
        artifacts_dir: where model files and checkpoints go; default ``<db folder>/artifacts``.

    Raises:
        StoreError: when the file cannot be opened or is not a readable run store.
    """

    def __init__(self, path: "Optional[str | os.PathLike]" = None, artifacts_dir: "Optional[str | os.PathLike]" = None) -> None:
        self.path = Path(path).expanduser() if path else default_db_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(self.path, f"the run store {self.path} cannot be created: its folder {self.path.parent} "
                                        f"cannot be made ({error.strerror}): point TTEXPLORE_DB (or --db) at a writable "
                                        "place") from None
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir else self.path.parent / "artifacts"
        self._initialise()

    def _initialise(self, attempts: int = 50) -> None:
        """Switch the file to WAL, create the tables and add newer columns, retrying while another
        process does the same (changing the journal mode takes a lock the busy timeout does not cover)."""
        for attempt in range(attempts):
            try:
                with self._connect() as connection:
                    if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        connection.execute("PRAGMA journal_mode=WAL")
                    connection.executescript(_SCHEMA)
                    for table, added in (("runs", _ADDED_COLUMNS), ("metrics", _ADDED_METRIC_COLUMNS)):
                        present = {row["name"] for row in connection.execute(f"PRAGMA table_info({table})")}
                        for column, definition in added.items():
                            if column not in present:
                                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
                    connection.execute("CREATE INDEX IF NOT EXISTS runs_queue ON runs (queue, status, created_at)")
                return
            except StoreError as error:
                if "locked" not in str(error) and "duplicate column" not in str(error) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection; every SQLite failure leaves as a :class:`StoreError`."""
        try:
            connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as error:
            raise _store_problem(self.path, error) from None
        connection.row_factory = sqlite3.Row
        try:
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("PRAGMA foreign_keys=ON")
            yield connection
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.rollback()
            raise _store_problem(self.path, error) from None
        finally:
            connection.close()

    # ---------------------------------------------------------------- writes
    def create_run(self, config: RunConfig, sweep: Optional[str] = None, status: str = "queued", queue: str = "app",
                   name: str = "", tags: Sequence[str] = (), notes: str = "") -> str:
        """Record a new run of ``config`` on ``queue`` (see :data:`QUEUES`); returns its id."""
        if queue not in QUEUES:
            raise ValueError(f"queue {queue!r} is unknown: use one of {', '.join(QUEUES)}")
        run_id = _new_run_id()
        first = config.layers[0]  # the store's columns describe the first hidden layer
        ranks = first.rank_setting
        values = {
            "id": run_id, "created_at": time.time(), "status": status, "config": config.to_json(),
            "config_key": config.key(), "label": config.label, "dataset": config.dataset, "layer": first.name,
            "shape": config.shape_label(), "ranks": json.dumps(ranks), "layer_params": config.layer_params(),
            "compression": config.compression(), "sweep": sweep, "host": socket.gethostname(), "pid": os.getpid(),
            "queue": queue, "name": str(name), "tags": json.dumps(_clean_tags(tags)), "notes": str(notes),
        }
        with self._connect() as connection:
            connection.execute(f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                               tuple(values.values()))
        return run_id

    def claim_next(self, queue: str = "app") -> Optional[str]:
        """Take the oldest ``queued`` run of ``queue`` for this process (status ``running``); ``None`` when none waits.

        One transaction: two processes claiming at once never get the same run.
        """
        with self._connect() as connection:
            if connection.execute("SELECT 1 FROM runs WHERE status='queued' AND queue=? LIMIT 1", (queue,)).fetchone() is None:
                return None  # the common idle case, without taking the write lock
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute(
                "SELECT id FROM runs WHERE status='queued' AND queue=? ORDER BY created_at, id LIMIT 1", (queue,)
            ).fetchone()
            if row is not None:
                connection.execute(
                    "UPDATE runs SET status='running', started_at=COALESCE(started_at, ?), finished_at=NULL, error=NULL,"
                    " host=?, pid=?, cancel_requested=0 WHERE id=?",
                    (time.time(), socket.gethostname(), os.getpid(), row["id"]),
                )
            connection.execute("COMMIT")
        return row["id"] if row is not None else None

    def take_for_resume(self, run_id: str) -> bool:
        """Mark a resumable run ``running`` for this process, atomically (two resumes never both get it)."""
        marks = ",".join("?" * len(RESUMABLE_STATUSES))
        with self._connect() as connection:
            changed = connection.execute(
                f"UPDATE runs SET status='running', finished_at=NULL, error=NULL, host=?, pid=?, cancel_requested=0"
                f" WHERE id=? AND status IN ({marks})",
                (socket.gethostname(), os.getpid(), run_id, *RESUMABLE_STATUSES),
            ).rowcount
        return bool(changed)

    def requeue_claimed(self, run_id: str) -> None:
        """Give back a run claimed but not started (its worker is shutting down)."""
        with self._connect() as connection:
            connection.execute("UPDATE runs SET status='queued' WHERE id=? AND status='running'", (run_id,))

    def mark_running(self, run_id: str) -> None:
        """Set status ``running`` (the start time only the first time), owned by this process."""
        with self._connect() as connection:
            connection.execute(
                "UPDATE runs SET status='running', started_at=COALESCE(started_at, ?), finished_at=NULL, error=NULL,"
                " host=?, pid=?, cancel_requested=0 WHERE id=?",
                (time.time(), socket.gethostname(), os.getpid(), run_id),
            )

    def requeue(self, run_id: str, queue: str = "app") -> bool:
        """Put a finished, resumable run back on ``queue`` (its metrics kept); False when it is not resumable."""
        marks = ",".join("?" * len(RESUMABLE_STATUSES))
        with self._connect() as connection:
            changed = connection.execute(
                f"UPDATE runs SET status='queued', queue=?, finished_at=NULL, error=NULL, host=?, pid=?,"
                f" cancel_requested=0 WHERE id=? AND status IN ({marks})",
                (queue, socket.gethostname(), os.getpid(), run_id, *RESUMABLE_STATUSES),
            ).rowcount
        return bool(changed)

    def add_event(self, run_id: str, event: dict[str, Any]) -> None:
        """Append one metric event (:mod:`ttexplore.runs.fit`), update the run's best/final accuracy, its epochs done
        and its best validation epoch (:func:`~ttexplore.runs.validation.best_of`'s rule)."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            seq = connection.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM metrics WHERE run_id=?", (run_id,)).fetchone()[0]
            connection.execute(
                f"INSERT INTO metrics (run_id, seq, {', '.join(_METRIC_COLUMNS)}) VALUES (?, ?, {', '.join('?' * len(_METRIC_COLUMNS))})",
                (run_id, seq, *(event.get(column) for column in _METRIC_COLUMNS)),
            )
            accuracy = event.get("test_accuracy")
            # step 0 is the untrained network, except as a 0-epoch run's one "epoch" event (see fit)
            if accuracy is not None and (event.get("step", 0) > 0 or event.get("kind") == "epoch"):
                connection.execute(
                    "UPDATE runs SET final_test_accuracy=?, best_test_accuracy=MAX(COALESCE(best_test_accuracy, 0), ?) WHERE id=?",
                    (accuracy, accuracy, run_id),
                )
            if event.get("kind") == "epoch":
                connection.execute("UPDATE runs SET epochs_done=MAX(epochs_done, ?) WHERE id=?", (event.get("epoch"), run_id))
            if event.get("kind") == "epoch" and event.get("val_loss") is not None:
                connection.execute("UPDATE runs SET " + _BEST_VAL_SET + " WHERE id=? AND (best_val_loss IS NULL OR best_val_loss>?)",
                                   (*_best_val_values(event), run_id, event["val_loss"]))
            connection.execute("COMMIT")

    def truncate_metrics(self, run_id: str, after_epoch: float) -> int:
        """Drop the run's events past ``after_epoch`` (those of an epoch a resume redoes); returns how many went.

        The best and final accuracies and the epochs done are recomputed from what stays.
        """
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            dropped = connection.execute("DELETE FROM metrics WHERE run_id=? AND epoch>?", (run_id, after_epoch)).rowcount
            scored = connection.execute(
                "SELECT test_accuracy FROM metrics WHERE run_id=? AND (step>0 OR kind='epoch') AND test_accuracy IS NOT NULL"
                " ORDER BY seq",
                (run_id,),
            ).fetchall()
            accuracies = [row[0] for row in scored]
            epochs = connection.execute("SELECT * FROM metrics WHERE run_id=? AND kind='epoch' ORDER BY seq", (run_id,))
            best = best_of(dict(row) for row in epochs.fetchall()) or {}
            connection.execute(
                "UPDATE runs SET final_test_accuracy=?, best_test_accuracy=?, epochs_done=?, " + _BEST_VAL_SET + " WHERE id=?",
                (accuracies[-1] if accuracies else None, max(accuracies) if accuracies else None, max(after_epoch, 0),
                 *_best_val_values(best), run_id),
            )
            connection.execute("COMMIT")
        return dropped

    def finish(self, run_id: str, status: str, error: Optional[str] = None, weights_path: Optional[str] = None) -> None:
        """Set a final status (one of :data:`FINAL_STATUSES`), with an error message or a weights file."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status {status!r} is not final: use one of {', '.join(FINAL_STATUSES)}")
        with self._connect() as connection:
            connection.execute(
                "UPDATE runs SET status=?, finished_at=?, error=?, weights_path=COALESCE(?, weights_path) WHERE id=?",
                (status, time.time(), error, weights_path, run_id),
            )

    def cancel_queued(self, run_id: str) -> bool:
        """Cancel the run if it is still queued (atomically: a worker claiming it at the same time wins or loses whole)."""
        with self._connect() as connection:
            changed = connection.execute(
                "UPDATE runs SET status='cancelled', finished_at=? WHERE id=? AND status='queued'", (time.time(), run_id)
            ).rowcount
        return bool(changed)

    def request_cancel(self, run_id: str) -> bool:
        """Ask whichever process runs ``run_id`` to stop it (it checks between batches); False when it is not running."""
        with self._connect() as connection:
            changed = connection.execute(
                "UPDATE runs SET cancel_requested=1 WHERE id=? AND status='running'", (run_id,)
            ).rowcount
        return bool(changed)

    def cancel_requested(self, run_id: str) -> bool:
        """Whether :meth:`request_cancel` was called for the run since it last started."""
        with self._connect() as connection:
            row = connection.execute("SELECT cancel_requested FROM runs WHERE id=?", (run_id,)).fetchone()
        return bool(row and row[0])

    def update_identity(self, run_id: str, name: Optional[str] = None, tags: Optional[Sequence[str]] = None,
                        notes: Optional[str] = None) -> None:
        """Change a run's name, tags or notes (``None`` leaves one as it is)."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = str(name).strip()
        if tags is not None:
            changes["tags"] = json.dumps(_clean_tags(tags))
        if notes is not None:
            changes["notes"] = str(notes)
        if not changes:
            return
        with self._connect() as connection:
            connection.execute(f"UPDATE runs SET {', '.join(f'{key}=?' for key in changes)} WHERE id=?",
                               (*changes.values(), run_id))

    def delete_runs(self, run_ids: Iterable[str]) -> int:
        """Delete runs, their metrics, their weight files and checkpoints; returns how many runs went.

        Only files inside the artifacts folder are removed, whatever a row names.
        """
        ids = list(run_ids)
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        with self._connect() as connection:
            paths = [row["weights_path"] for row in connection.execute(f"SELECT weights_path FROM runs WHERE id IN ({marks})", ids)]
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(f"DELETE FROM metrics WHERE run_id IN ({marks})", ids)
            deleted = connection.execute(f"DELETE FROM runs WHERE id IN ({marks})", ids).rowcount
            connection.execute("COMMIT")
        for path in [self.artifact_path(path) for path in paths] + [
                self.checkpoint_path_for(run_id) for run_id in ids] + [self.best_weights_path_for(run_id) for run_id in ids]:
            if path is not None and path.is_file():
                path.unlink()
        return deleted

    def recover(self, live_run_ids: Iterable[str] = ()) -> list[str]:
        """Mark runs whose process is gone ``interrupted`` (resumable; their metrics and checkpoints are kept).

        ``running`` runs of a dead process on this host (or of this process but not in
        ``live_run_ids``), and ``queued`` runs of the ``"sweep"`` queue whose sweep process
        is gone. Runs queued on ``"app"`` belong to no process: they stay queued and any
        job manager takes them. Called when a job manager starts, so a server restart never
        leaves a run "running" forever.
        """
        live = set(live_run_ids)
        host, pid = socket.gethostname(), os.getpid()
        orphans = []
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT id, host, pid, status, queue FROM runs WHERE status='running' OR (status='queued' AND queue='sweep')"
            ).fetchall()
            for row in rows:
                if row["host"] != host:
                    continue
                same_process = row["pid"] == pid
                if (same_process and row["id"] not in live) or (not same_process and not pid_alive(row["pid"] or 0)):
                    orphans.append(row["id"])
            for run_id in orphans:
                connection.execute(
                    "UPDATE runs SET status='interrupted', finished_at=?, error=? WHERE id=? AND status IN ('queued', 'running')",
                    (time.time(), "the process running it stopped (server restart or kill); resume it to continue "
                                  "from its last checkpoint", run_id),
                )
        return orphans

    def set_setting(self, name: str, value: Optional[str]) -> None:
        """Keep ``value`` under ``name`` (one of :data:`SETTINGS`; ``"baseline"``: the pinned run's id); ``None`` forgets it."""
        if name not in SETTINGS:
            raise ValueError(f"setting {name!r} is unknown: use one of {', '.join(SETTINGS)}")
        with self._connect() as connection:
            connection.execute("DELETE FROM settings WHERE name=?", (name,))
            connection.execute("INSERT INTO settings (name, value) SELECT ?, ? WHERE ? IS NOT NULL", (name, value, value))

    # ---------------------------------------------------------------- reads
    def setting(self, name: str) -> Optional[str]:
        """The value kept under ``name`` (:meth:`set_setting`), or ``None``."""
        with self._connect() as connection:
            row = connection.execute("SELECT value FROM settings WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def get_run(self, run_id: str) -> Optional[dict[str, Any]]:
        """One run as a dict (``config`` and ``tags`` parsed), or ``None``."""
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return self._run_dict(row) if row else None

    def list_runs(
        self,
        status: Optional[Iterable[str]] = None,
        sweep: Optional[str] = None,
        dataset: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> list[dict[str, Any]]:
        """Runs, newest first, optionally filtered."""
        clauses, values = [], []
        if status is not None:
            statuses = list(status)
            clauses.append(f"status IN ({','.join('?' * len(statuses))})")
            values.extend(statuses)
        if sweep is not None:
            clauses.append("sweep=?")
            values.append(sweep)
        if dataset is not None:
            clauses.append("dataset=?")
            values.append(dataset)
        query = "SELECT * FROM runs" + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        with self._connect() as connection:
            rows = connection.execute(query, values).fetchall()
        return [self._run_dict(row) for row in rows]

    def find_completed(self, config: RunConfig, sweep: Optional[str] = None) -> Optional[dict[str, Any]]:
        """The newest completed run with the same :meth:`RunConfig.key` (in ``sweep`` when given):
        the app's "already trained" notice."""
        query = "SELECT * FROM runs WHERE config_key=? AND status='completed'"
        values: list[Any] = [config.key()]
        if sweep is not None:
            query += " AND sweep=?"
            values.append(sweep)
        with self._connect() as connection:
            row = connection.execute(query + " ORDER BY finished_at DESC LIMIT 1", values).fetchone()
        return self._run_dict(row) if row else None

    def metrics(self, run_id: str, since_seq: int = -1) -> list[dict[str, Any]]:
        """The run's metric events in order (only those after ``since_seq`` when given)."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT * FROM metrics WHERE run_id=? AND seq>? ORDER BY seq", (run_id, since_seq)
            ).fetchall()
        return [dict(row) for row in rows]

    def metrics_for(self, run_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """Metric events of several runs at once: ``{run_id: [event, ...]}``."""
        ids = list(run_ids)
        result: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in ids}
        if not ids:
            return result
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT * FROM metrics WHERE run_id IN ({','.join('?' * len(ids))}) ORDER BY run_id, seq", ids
            ).fetchall()
        for row in rows:
            result[row["run_id"]].append(dict(row))
        return result

    @staticmethod
    def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
        run = dict(row)
        run["config"] = json.loads(run["config"])
        run["ranks"] = json.loads(run["ranks"]) if run["ranks"] else None
        try:
            run["tags"] = json.loads(run.get("tags") or "[]")
        except ValueError:
            run["tags"] = []
        return run

    # ---------------------------------------------------------------- files
    def weights_path_for(self, run_id: str) -> Path:
        """Where a run's final model file goes: ``<artifacts>/<run_id>.pt``."""
        return self.artifacts_dir / f"{_safe_id(run_id)}.pt"

    def best_weights_path_for(self, run_id: str) -> Path:
        """Where a run's best-validation-epoch model file goes (runs with a validation split): ``<artifacts>/<run_id>.best.pt``."""
        return self.artifacts_dir / f"{_safe_id(run_id)}.best.pt"

    def checkpoint_path_for(self, run_id: str) -> Path:
        """Where a run's last end-of-epoch checkpoint goes: ``<artifacts>/checkpoints/<run_id>.pt``."""
        return self.artifacts_dir / "checkpoints" / f"{_safe_id(run_id)}.pt"

    def can_resume(self, run: dict[str, Any]) -> bool:
        """Whether ``run`` (a :meth:`list_runs` dict) can be resumed now: it stopped (interrupted, cancelled or
        failed, :data:`RESUMABLE_STATUSES`) and its last end-of-epoch checkpoint is on disk."""
        return run.get("status") in RESUMABLE_STATUSES and self.checkpoint_path_for(run["id"]).is_file()

    def keep_upload(self, data: bytes) -> Path:
        """Keep an uploaded weights file as ``<artifacts>/uploads/<sha256 of data>.pt`` and return its path; the
        same bytes uploaded again are not written twice. Runs that start from the file name that path."""
        path = self.artifacts_dir / "uploads" / f"{hashlib.sha256(data).hexdigest()}.pt"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return path

    def artifact_path(self, path: "Optional[str | os.PathLike]") -> Optional[Path]:
        """``path`` resolved, when it lies inside the artifacts folder; ``None`` otherwise (never serve or delete it)."""
        if not path:
            return None
        resolved = Path(path).expanduser().resolve()
        root = self.artifacts_dir.expanduser().resolve()
        return resolved if resolved.is_relative_to(root) and resolved != root else None


_BEST_VAL_SET = "best_val_loss=?, best_val_accuracy=?, best_val_epoch=?, test_accuracy_at_best_val=?"


def _best_val_values(event: dict[str, Any]) -> tuple:  # the values of _BEST_VAL_SET from the best epoch's event
    return tuple(event.get(key) for key in ("val_loss", "val_accuracy", "epoch", "test_accuracy"))


def _safe_id(run_id: str) -> str:
    """A run id as a file name: no folder parts (ids are generated, but a row could say anything)."""
    name = Path(str(run_id)).name
    if not name or name in (".", "..") or name != str(run_id):
        raise ValueError(f"run id {run_id!r} is not a valid run id")
    return name


def _clean_tags(tags: "Sequence[str] | str") -> list[str]:
    """Tags as a sorted list of distinct, stripped, non-empty strings (a string is split at commas)."""
    if isinstance(tags, str):
        tags = tags.split(",")
    return sorted({str(tag).strip() for tag in tags if str(tag).strip()})
