"""The run store: every run, its config, its metric events and its status, in SQLite.

One file (default ``~/.ttexplore/runs.db``; ``$TTEXPLORE_DB`` or ``$TTEXPLORE_HOME`` override it) outlives page
reloads and server restarts. Every call opens its own short connection in WAL mode with a busy timeout, so several
threads and processes (jobs, sweeps, two app sessions) can write at once without corrupting it.

The store is also the queue: a run is created ``queued`` on a named queue (``"app"`` for job managers, ``"sweep"``
for a sweep's own executor), and a worker takes one with :meth:`RunStore.claim_next`, an atomic transaction, so two
servers on one home never both take the same run. Model files and checkpoints live under the store's ``artifacts``
folder; the store never reads, serves or deletes a file outside it, whatever a row says.

A file that is not a readable database (corrupt, truncated, unreadable, read-only) raises :class:`StoreError`
naming the file and the fix; the file is never overwritten. A full disk is said to be one (the store is intact),
never a corrupt store (:mod:`ttexplore.runs.storefile`).

A store whose file is deleted while in use makes a new empty store with its schema there (never a 0-byte file) and
says so once in the log and in :attr:`RunStore.notice`; a file replaced by another is taken as the store from then
on.

Submitting twice: :meth:`RunStore.queue_run` with ``once_within_s`` returns the run already queued or running with
the same config, name, tags, queue and sweep, created within that many seconds, instead of queueing it again (one
transaction: two threads or processes submitting at once get one run); its :class:`Submission` says which happened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sqlite3
import time
import urllib.parse
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

from ttexplore.runs.config import RunConfig
from ttexplore.tt.atomic import write_atomic
from ttexplore.runs.fields import check_identity
from ttexplore.runs.storefile import (clean_tags, create_schema, event_dict, run_dict, safe_run_id, FileWatch, StoreError, default_db_path, default_home, file_gate,
                                      pid_alive, store_problem, BEST_VAL_SET, SETTINGS, best_val_values)
from ttexplore.runs.schedule import ROUND_KIND, size_after_truncation
from ttexplore.runs.validation import best_of

__all__ = ["RunStore", "StoreError", "Submission", "DUPLICATE_WINDOW_S", "default_home", "default_db_path", "pid_alive", "ACTIVE_STATUSES", "FINAL_STATUSES",
           "RESUMABLE_STATUSES", "QUEUES"]

ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("completed", "cancelled", "diverged", "failed", "interrupted")
#: Runs that may continue from their last checkpoint (see :mod:`ttexplore.runs.lifecycle`).
RESUMABLE_STATUSES = ("interrupted", "cancelled", "failed")
#: ``"app"``: taken by any :class:`~ttexplore.runs.jobs.JobManager`; ``"sweep"``: run by the sweep that queued it.
QUEUES = ("app", "sweep")

log = logging.getLogger(__name__)

#: Seconds within which the same submission (config, name, tags) is taken as a repeated click.
DUPLICATE_WINDOW_S = 10.0

_METRIC_COLUMNS = ("kind", "epoch", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "elapsed_s", "cores",
                   "val_loss", "val_accuracy")
#: Event values kept as JSON text (a list per event: the per-core norms of :mod:`ttexplore.runs.corestats`).
_JSON_METRICS = ("cores",)


@dataclass(frozen=True)
class Submission:
    """What :meth:`RunStore.queue_run` did: the run's id, and whether it found the same run already
    queued or running (``duplicate``) instead of recording a new one."""

    run_id: str
    duplicate: bool = False


def _new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


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
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir else self.path.parent / "artifacts"
        #: Set (and logged once) when the file was deleted or replaced while in use: what the store did about it.
        self.notice: Optional[str] = None
        self._watch = FileWatch(self.path)
        self._gate = file_gate(self.path)
        self._initialise()
        self._watch.remember()

    def _initialise(self, attempts: int = 50) -> None:
        """Create the folder and the file, switch it to WAL, create the tables and add newer columns,
        retrying while another process does the same (changing the journal mode takes a lock the busy
        timeout does not cover)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(self.path, f"the run store {self.path} cannot be created: its folder {self.path.parent} "
                                        f"cannot be made ({error.strerror}): point TTEXPLORE_DB (or --db) at a writable "
                                        "place", "cannot-open") from None
        for attempt in range(attempts):
            try:
                with self._connect(create=True) as connection:
                    if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        connection.execute("PRAGMA journal_mode=WAL")
                    connection.execute("BEGIN IMMEDIATE")  # one transaction: nobody sees half a schema
                    create_schema(connection)
                    connection.execute("COMMIT")
                return
            except StoreError as error:
                if "locked" not in str(error) and "duplicate column" not in str(error) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _follow_file(self) -> None:
        """Notice a file deleted or replaced since the last call (one ``stat``; the caller holds the gate):
        a deleted store is made again, empty, with its schema, once no connection of this process is open
        on the old one (its stale ``-wal``/``-shm`` removed first, so SQLite never mixes them with the new
        file); a replacing file is checked and used. Said once (the log, :attr:`notice`)."""
        change = self._watch.change()
        if change is None:
            return
        if change == "deleted":
            self._gate.condition.wait_for(lambda: self._gate.open == 0, timeout=60)
            change = self._watch.change()  # another thread may have made it anew while this one waited
            if change is None:
                return
            if not self.path.exists():
                for suffix in ("-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._initialise()  # a replacing file that is not a run store raises; the next call tries again
        self._watch.remember()
        self.notice = (f"the run store {self.path} was deleted while in use: a new, empty store was made there"
                       if change == "deleted" else
                       f"the run store {self.path} was replaced by another file while in use: using that file now")
        log.warning(self.notice)

    def _open(self, create: bool) -> sqlite3.Connection:
        uri = f"file:{urllib.parse.quote(str(self.path.absolute()))}?mode={'rwc' if create else 'rw'}"
        return sqlite3.connect(uri, timeout=30.0, isolation_level=None, uri=True)

    @contextmanager
    def _connect(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        """A short-lived connection; every SQLite failure leaves as a :class:`StoreError`.

        The file is opened read-write without creating it (only :meth:`_initialise` creates it), so a
        store deleted in use never becomes an empty 0-byte file. Opening passes the gate of the file
        (one per path in this process), so no thread opens a store another thread is making anew and a
        store is made anew only while no connection is open on the old one (:meth:`_follow_file`).
        """
        gate = self._gate
        try:
            if create:
                connection = self._open(create=True)
            else:
                with gate.condition:
                    self._follow_file()
                    try:
                        connection = self._open(create=False)
                    except sqlite3.OperationalError:
                        if self._watch.change() != "deleted":
                            raise
                        self._follow_file()  # deleted between the look and the open
                        connection = self._open(create=False)
                    gate.open += 1
        except sqlite3.Error as error:
            raise store_problem(self.path, error) from None
        connection.row_factory = sqlite3.Row
        try:
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("PRAGMA foreign_keys=ON")
            yield connection
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.rollback()
            if not create and self._watch.change() is not None:  # the file went while this call used it
                raise StoreError(self.path, f"the run store {self.path} was deleted or replaced while in use ({error}): "
                                            "try again; the next call uses the new file", "changed") from None
            raise store_problem(self.path, error) from None
        finally:
            connection.close()
            if not create:
                with gate.condition:
                    gate.open -= 1
                    gate.condition.notify_all()

    # ---------------------------------------------------------------- writes
    def create_run(self, config: RunConfig, sweep: Optional[str] = None, status: str = "queued", queue: str = "app",
                   name: str = "", tags: Sequence[str] = (), notes: str = "") -> str:
        """Record a new run of ``config`` on ``queue`` (see :data:`QUEUES`); returns its id."""
        return self.queue_run(config, sweep, status, queue, name, tags, notes).run_id

    def queue_run(self, config: RunConfig, sweep: Optional[str] = None, status: str = "queued", queue: str = "app",
                  name: str = "", tags: Sequence[str] = (), notes: str = "",
                  once_within_s: Optional[float] = None) -> Submission:
        """Record a new run of ``config`` on ``queue`` (see :data:`QUEUES`), as :meth:`create_run`.

        With ``once_within_s``, a run of the same config, name, tags, queue and sweep that is
        queued or running and was created less than that many seconds ago is returned instead
        (``duplicate=True``), in the same transaction as the insert: a double click, or two
        threads or processes submitting at once, record one run.
        """
        if queue not in QUEUES:
            raise ValueError(f"queue {queue!r} is unknown: use one of {', '.join(QUEUES)}")
        check_identity(name, tags, notes)
        run_id = _new_run_id()
        first = config.layers[0]  # the store's columns describe the first hidden layer
        ranks = first.rank_setting
        values = {
            "id": run_id, "created_at": time.time(), "status": status, "config": config.to_json(),
            "config_key": config.key(), "label": config.label, "dataset": config.dataset, "layer": first.name,
            "shape": config.shape_label(), "ranks": json.dumps(ranks), "layer_params": config.layer_params(),
            "compression": config.compression(), "sweep": sweep, "host": socket.gethostname(), "pid": os.getpid(),
            "queue": queue, "name": str(name), "tags": json.dumps(clean_tags(tags)), "notes": str(notes),
        }
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            if once_within_s is not None:
                same = connection.execute(
                    "SELECT id FROM runs WHERE config_key=? AND config=? AND name=? AND tags=? AND queue=? AND sweep IS ?"
                    " AND status IN ('queued', 'running') AND created_at>=? ORDER BY created_at DESC LIMIT 1",
                    (values["config_key"], values["config"], values["name"], values["tags"], queue, sweep,
                     values["created_at"] - once_within_s),
                ).fetchone()
                if same is not None:
                    connection.execute("COMMIT")
                    return Submission(same["id"], duplicate=True)
            connection.execute(f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                               tuple(values.values()))
            connection.execute("COMMIT")
        return Submission(run_id)

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

    def add_event(self, run_id: str, event: dict[str, Any], count_epoch: bool = True) -> None:
        """Append one metric event (see :mod:`ttexplore.runs.fit`) and update the run's best/final accuracy,
        its best validation epoch (:func:`~ttexplore.runs.validation.best_of`'s rule) and, for an end-of-epoch
        event when ``count_epoch``, its epochs done (a checkpointed run passes False and counts the epoch
        with :meth:`set_epochs_done` once its checkpoint is written).

        A rounding (kind ``"round"``, its ``detail`` kept as JSON) changes the network: the run's layer
        weights and compression become those in use from then on, and its best accuracy and best validation
        epoch start again from the rounded network's (the best of the network it ends with).
        """
        detail = event.get("detail")
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            seq = connection.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM metrics WHERE run_id=?", (run_id,)).fetchone()[0]
            connection.execute(
                f"INSERT INTO metrics (run_id, seq, {', '.join(_METRIC_COLUMNS)}, detail) "
                f"VALUES (?, ?, {', '.join('?' * len(_METRIC_COLUMNS))}, ?)",
                (run_id, seq, *(json.dumps(event[column]) if column in _JSON_METRICS and event.get(column) is not None
                                else event.get(column) for column in _METRIC_COLUMNS),
                 json.dumps(detail) if detail is not None else None),
            )
            accuracy = event.get("test_accuracy")
            if event.get("kind") == ROUND_KIND and isinstance(detail, dict):
                connection.execute("UPDATE runs SET layer_params=?, compression=?, best_test_accuracy=NULL, "
                                   + BEST_VAL_SET.replace("=?", "=NULL") + " WHERE id=?",
                                   (detail["params_after"], detail["compression_after"], run_id))
            # step 0 is the untrained network, except as a 0-epoch run's one "epoch" event (see fit)
            if accuracy is not None and (event.get("step", 0) > 0 or event.get("kind") == "epoch"):
                connection.execute(
                    "UPDATE runs SET final_test_accuracy=?, best_test_accuracy=MAX(COALESCE(best_test_accuracy, 0), ?) WHERE id=?",
                    (accuracy, accuracy, run_id),
                )
            if event.get("kind") == "epoch" and count_epoch:
                connection.execute("UPDATE runs SET epochs_done=MAX(epochs_done, ?) WHERE id=?", (event.get("epoch"), run_id))
            if event.get("kind") == "epoch" and event.get("val_loss") is not None:
                connection.execute("UPDATE runs SET " + BEST_VAL_SET + " WHERE id=? AND (best_val_loss IS NULL OR best_val_loss>?)",
                                   (*best_val_values(event), run_id, event["val_loss"]))
            connection.execute("COMMIT")

    def set_epochs_done(self, run_id: str, epochs: float) -> None:
        """Record that the run's first ``epochs`` epochs are done and checkpointed (what a resume continues from)."""
        with self._connect() as connection:
            connection.execute("UPDATE runs SET epochs_done=? WHERE id=?", (epochs, run_id))

    def truncate_metrics(self, run_id: str, after_epoch: float) -> int:
        """Drop the run's events past ``after_epoch`` (those of an epoch a resume redoes); returns how many went.

        The final accuracy, the best one (after the last rounding kept), the epochs done and, when roundings
        go, the layer weights and compression (:func:`~ttexplore.runs.schedule.size_after_truncation`) are
        recomputed from what stays.
        """
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            rounds = [(row["epoch"] > after_epoch, row["seq"], row["detail"]) for row in connection.execute(
                "SELECT seq, epoch, detail FROM metrics WHERE run_id=? AND kind=? AND detail IS NOT NULL ORDER BY seq",
                (run_id, ROUND_KIND))]
            dropped = connection.execute("DELETE FROM metrics WHERE run_id=? AND epoch>?", (run_id, after_epoch)).rowcount
            kept = [seq for gone, seq, _ in rounds if not gone]
            since = kept[-1] if kept else -1  # the network the run ends with: after its last rounding kept
            scored = [(row[0], row[1]) for row in connection.execute(
                "SELECT seq, test_accuracy FROM metrics WHERE run_id=? AND (step>0 OR kind='epoch') AND test_accuracy IS NOT"
                " NULL ORDER BY seq", (run_id,))]
            best = [accuracy for seq, accuracy in scored if seq >= since]
            epochs = connection.execute("SELECT * FROM metrics WHERE run_id=? AND kind='epoch' AND seq>? ORDER BY seq",
                                        (run_id, since))
            best_val = best_of(dict(row) for row in epochs.fetchall()) or {}
            connection.execute("UPDATE runs SET final_test_accuracy=?, best_test_accuracy=?, epochs_done=?, " + BEST_VAL_SET
                               + " WHERE id=?", (scored[-1][1] if scored else None, max(best) if best else None,
                                                 max(after_epoch, 0), *best_val_values(best_val), run_id))
            size = size_after_truncation([(gone, json.loads(detail)) for gone, _, detail in rounds])
            if size is not None:
                connection.execute("UPDATE runs SET layer_params=?, compression=? WHERE id=?", (*size, run_id))
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
        """Change a run's name, tags or notes (``None`` leaves one as it is, ``""`` or ``[]`` clears it).

        Raises:
            ConfigError: for a name, tag or notes over its bound (:func:`~ttexplore.runs.fields.check_identity`).
        """
        check_identity(name, tags, notes)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = str(name).strip()
        if tags is not None:
            changes["tags"] = json.dumps(clean_tags(tags))
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
        for path in ([self.artifact_path(path) for path in paths] + [self.checkpoint_path_for(run_id) for run_id in ids]
                     + [self.spectra_path_for(run_id) for run_id in ids] + [self.best_weights_path_for(run_id) for run_id in ids]):
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
        return run_dict(row) if row else None

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
        return [run_dict(row) for row in rows]

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
        return run_dict(row) if row else None

    def metrics(self, run_id: str, since_seq: int = -1) -> list[dict[str, Any]]:
        """The run's metric events in order (only those after ``since_seq``), their JSON columns parsed (:func:`event_dict`)."""
        with self._connect() as connection:
            rows = connection.execute("SELECT * FROM metrics WHERE run_id=? AND seq>? ORDER BY seq", (run_id, since_seq)).fetchall()
        return [event_dict(row) for row in rows]

    def metrics_for(self, run_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """Metric events of several runs at once: ``{run_id: [event, ...]}``."""
        ids = list(run_ids)
        result: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in ids}
        if not ids:
            return result
        with self._connect() as connection:
            rows = connection.execute(f"SELECT * FROM metrics WHERE run_id IN ({','.join('?' * len(ids))}) ORDER BY run_id, seq",
                                      ids).fetchall()
        for row in rows:
            result[row["run_id"]].append(event_dict(row))
        return result

    # ---------------------------------------------------------------- files
    def weights_path_for(self, run_id: str) -> Path:
        """Where a run's final model file goes: ``<artifacts>/<run_id>.pt``."""
        return self.artifacts_dir / f"{safe_run_id(run_id)}.pt"

    def best_weights_path_for(self, run_id: str) -> Path:
        """Where a run's best-validation-epoch model file goes (runs with a validation split): ``<artifacts>/<run_id>.best.pt``."""
        return self.artifacts_dir / f"{safe_run_id(run_id)}.best.pt"

    def checkpoint_path_for(self, run_id: str) -> Path:
        """Where a run's last end-of-epoch checkpoint goes: ``<artifacts>/checkpoints/<run_id>.pt``."""
        return self.artifacts_dir / "checkpoints" / f"{safe_run_id(run_id)}.pt"

    def spectra_path_for(self, run_id: str) -> Path:
        """Where a run's end-of-run spectra go (:mod:`ttexplore.runs.corestats`): ``<artifacts>/spectra/<run_id>.json``."""
        return self.artifacts_dir / "spectra" / f"{safe_run_id(run_id)}.json"

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
            write_atomic(path, data)  # whole or not at all: a full disk leaves no truncated upload
        else:
            path.touch()  # in use now: not an old upload for ttexplore.runs.uploads.clean_uploads
        return path

    def artifact_path(self, path: "Optional[str | os.PathLike]") -> Optional[Path]:
        """``path`` resolved, when it lies inside the artifacts folder; ``None`` otherwise (never serve or delete it)."""
        if not path:
            return None
        resolved = Path(path).expanduser().resolve()
        root = self.artifacts_dir.expanduser().resolve()
        return resolved if resolved.is_relative_to(root) and resolved != root else None
