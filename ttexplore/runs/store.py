"""The run store: every run, its config, its metric events and its status, in SQLite.

One file (default ``~/.ttexplore/runs.db``; ``$TTEXPLORE_DB`` or
``$TTEXPLORE_HOME`` override it) outlives page reloads and server restarts.
Every call opens its own short connection in WAL mode with a busy timeout, so
several threads and processes (jobs, sweeps, two app sessions) can write at once
without corrupting it.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from ttexplore.runs.config import RunConfig

__all__ = ["RunStore", "default_home", "default_db_path", "pid_alive", "ACTIVE_STATUSES", "FINAL_STATUSES"]

ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("completed", "cancelled", "diverged", "failed", "interrupted")

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
"""

_METRIC_COLUMNS = ("kind", "epoch", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "elapsed_s")


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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """SQLite-backed record of runs and their metric events.

    Args:
        path: the database file (created with its folder); default :func:`default_db_path`.
        artifacts_dir: where model files go; default ``<db folder>/artifacts``.
    """

    def __init__(self, path: "Optional[str | os.PathLike]" = None, artifacts_dir: "Optional[str | os.PathLike]" = None) -> None:
        self.path = Path(path).expanduser() if path else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir else self.path.parent / "artifacts"
        self._initialise()

    def _initialise(self, attempts: int = 50) -> None:
        """Switch the file to WAL and create the tables, retrying while another process
        does the same (changing the journal mode takes a lock the busy timeout does not cover)."""
        for attempt in range(attempts):
            try:
                with self._connect() as connection:
                    if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        connection.execute("PRAGMA journal_mode=WAL")
                    connection.executescript(_SCHEMA)
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA busy_timeout=30000")
        connection.execute("PRAGMA foreign_keys=ON")
        try:
            yield connection
        finally:
            connection.close()

    # ---------------------------------------------------------------- writes
    def create_run(self, config: RunConfig, sweep: Optional[str] = None, status: str = "queued") -> str:
        """Record a new run of ``config``; returns its id."""
        run_id = _new_run_id()
        ranks = config.ranks if config.layer == "tt" else (config.matrix_rank if config.layer == "matrix_rank" else None)
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO runs (id, created_at, status, config, config_key, label, dataset, layer, shape, ranks,"
                " layer_params, compression, sweep, host, pid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    time.time(),
                    status,
                    config.to_json(),
                    config.key(),
                    config.label,
                    config.dataset,
                    config.layer,
                    config.shape_label(),
                    json.dumps(ranks),
                    config.layer_params(),
                    config.compression(),
                    sweep,
                    socket.gethostname(),
                    os.getpid(),
                ),
            )
        return run_id

    def mark_running(self, run_id: str) -> None:
        """Set status ``running`` and the start time, owned by this process."""
        with self._connect() as connection:
            connection.execute(
                "UPDATE runs SET status='running', started_at=?, host=?, pid=? WHERE id=?",
                (time.time(), socket.gethostname(), os.getpid(), run_id),
            )

    def add_event(self, run_id: str, event: dict[str, Any]) -> None:
        """Append one metric event (see :mod:`ttexplore.runs.fit`) and update the run's best/final accuracy."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            seq = connection.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM metrics WHERE run_id=?", (run_id,)).fetchone()[0]
            connection.execute(
                f"INSERT INTO metrics (run_id, seq, {', '.join(_METRIC_COLUMNS)}) VALUES (?, ?, {', '.join('?' * len(_METRIC_COLUMNS))})",
                (run_id, seq, *(event.get(column) for column in _METRIC_COLUMNS)),
            )
            accuracy = event.get("test_accuracy")
            if accuracy is not None and event.get("step", 0) > 0:
                connection.execute(
                    "UPDATE runs SET final_test_accuracy=?, best_test_accuracy=MAX(COALESCE(best_test_accuracy, 0), ?) WHERE id=?",
                    (accuracy, accuracy, run_id),
                )
            connection.execute("COMMIT")

    def finish(self, run_id: str, status: str, error: Optional[str] = None, weights_path: Optional[str] = None) -> None:
        """Set a final status (one of :data:`FINAL_STATUSES`), with an error message or a weights file."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status {status!r} is not final: use one of {', '.join(FINAL_STATUSES)}")
        with self._connect() as connection:
            connection.execute(
                "UPDATE runs SET status=?, finished_at=?, error=?, weights_path=COALESCE(?, weights_path) WHERE id=?",
                (status, time.time(), error, weights_path, run_id),
            )

    def delete_runs(self, run_ids: Iterable[str]) -> int:
        """Delete runs, their metrics and their weight files; returns how many runs went."""
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
        for path in paths:
            if path and Path(path).is_file():
                Path(path).unlink()
        return deleted

    def mark_orphans_interrupted(self, live_run_ids: Iterable[str] = ()) -> list[str]:
        """Mark queued/running runs whose process is gone (or, in this process, not
        in ``live_run_ids``) as ``interrupted``; their metrics so far are kept.

        Called when a job manager starts, so a server restart never leaves a run
        "running" forever.
        """
        live = set(live_run_ids)
        host, pid = socket.gethostname(), os.getpid()
        orphans = []
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT id, host, pid FROM runs WHERE status IN ({','.join('?' * len(ACTIVE_STATUSES))})", ACTIVE_STATUSES
            ).fetchall()
            for row in rows:
                if row["host"] != host:
                    continue
                same_process = row["pid"] == pid
                if (same_process and row["id"] not in live) or (not same_process and not pid_alive(row["pid"] or 0)):
                    orphans.append(row["id"])
            for run_id in orphans:
                connection.execute(
                    "UPDATE runs SET status='interrupted', finished_at=?, error=? WHERE id=?",
                    (time.time(), "the process running it stopped (server restart?); its metrics so far are kept", run_id),
                )
        return orphans

    # ---------------------------------------------------------------- reads
    def get_run(self, run_id: str) -> Optional[dict[str, Any]]:
        """One run as a dict (``config`` parsed), or ``None``."""
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
        """The newest completed run with the same :meth:`RunConfig.key` (in ``sweep`` when given)."""
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
        return run

    def weights_path_for(self, run_id: str) -> Path:
        """Where a run's model file goes: ``<artifacts>/<run_id>.pt``."""
        return self.artifacts_dir / f"{run_id}.pt"
