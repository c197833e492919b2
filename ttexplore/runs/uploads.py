"""Uploaded weights files (the Compress page's): kept only while a run names them.

:meth:`RunStore.keep_upload` writes an upload as ``<artifacts>/uploads/<sha256>.pt`` so that the runs
starting from it (``RunConfig.init_from``) can name it. A file no run names is not kept:

* a rejected upload (empty, text, a pickle, no fitting weight) is removed at once
  (:func:`discard_upload`), unless a run already names the same bytes;
* an upload that was read but never used (the session moved on, or the server stopped before Compress was
  pressed) is removed on the next start (:func:`clean_uploads`, called when the app opens its store), once
  it is older than :data:`UNUSED_UPLOAD_AGE_S` (a session of another server on the same home may be using it).

Pure Python (no torch).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

__all__ = ["UNUSED_UPLOAD_AGE_S", "uploads_dir", "named_uploads", "discard_upload", "clean_uploads"]

log = logging.getLogger(__name__)

#: How old an upload no run names must be before :func:`clean_uploads` removes it (seconds).
UNUSED_UPLOAD_AGE_S = 3600.0


def uploads_dir(store: Any) -> Path:
    """The folder :meth:`RunStore.keep_upload` writes to."""
    return Path(store.artifacts_dir) / "uploads"


def named_uploads(runs: Iterable[Mapping[str, Any]]) -> set[Path]:
    """The files the runs start from (``config.init_from.path``), resolved: the uploads to keep.

    Complexity: O(number of runs)."""
    named = set()
    for run in runs:
        start = (run.get("config") or {}).get("init_from")
        if isinstance(start, Mapping) and isinstance(start.get("path"), str) and start["path"]:
            named.add(Path(start["path"]).expanduser().resolve())
    return named


def _is_upload(store: Any, path: Path) -> bool:
    folder = uploads_dir(store).expanduser().resolve()
    return path.parent == folder and path.suffix == ".pt"


def discard_upload(store: Any, path: "str | Path") -> bool:
    """Remove the upload ``path`` at once (it was rejected) unless a run names it; only a file of the uploads
    folder is ever removed. Returns True when it was removed."""
    resolved = Path(path).expanduser().resolve()
    if not _is_upload(store, resolved) or not resolved.is_file() or resolved in named_uploads(store.list_runs()):
        return False
    resolved.unlink(missing_ok=True)
    return True


def clean_uploads(store: Any, older_than_s: float = UNUSED_UPLOAD_AGE_S, now: Optional[float] = None) -> list[Path]:
    """Remove the uploads no run names that were last written more than ``older_than_s`` seconds ago (an upload
    read by a session that moved on, or by a server that stopped). Returns the files removed; never raises
    for a file another process removed first.

    Complexity: O(number of runs + number of uploads)."""
    folder = uploads_dir(store)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    named = named_uploads(store.list_runs())
    removed = []
    for path in sorted(folder.glob("*.pt")):
        resolved = path.resolve()
        try:
            if resolved in named or now - path.stat().st_mtime <= older_than_s:
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    if removed:
        log.info("removed %d uploaded weights file(s) no run names from %s", len(removed), folder)
    return removed
