"""runs.uploads: an uploaded weights file is kept only while a run names it."""

from __future__ import annotations

import os
import time

from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore
from ttexplore.runs.uploads import clean_uploads, discard_upload, named_uploads


def upload(store: RunStore, content: bytes, age_s: float = 0.0):
    path = store.keep_upload(content)
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))
    return path


def named_by_a_run(store: RunStore, path) -> str:
    config = RunConfig.for_dataset("digits", epochs=0, ranks=2, init_from={"path": str(path), "sha256": "0" * 64})
    return store.create_run(config)


def test_a_rejected_upload_is_removed_unless_a_run_names_it(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    rejected, used = upload(store, b"rejected"), upload(store, b"used")
    named_by_a_run(store, used)
    assert discard_upload(store, rejected) and not rejected.exists()
    assert not discard_upload(store, used) and used.exists()  # a run starts from it
    outside = tmp_path / "mine.pt"
    outside.write_bytes(b"not an upload")
    assert not discard_upload(store, outside) and outside.exists()  # only the uploads folder is ever touched
    assert not discard_upload(store, rejected)  # gone already: nothing to do


def test_the_start_up_clean_removes_old_uploads_no_run_names(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    old_unused = upload(store, b"old, unused", age_s=7200)
    old_named = upload(store, b"old, named", age_s=7200)
    fresh = upload(store, b"fresh, unused")
    named_by_a_run(store, old_named)
    (old_unused.parent / "notes.txt").write_text("not an upload")
    assert clean_uploads(store) == [old_unused]
    assert not old_unused.exists() and old_named.exists() and fresh.exists()
    assert (old_unused.parent / "notes.txt").exists()
    assert named_uploads(store.list_runs()) == {old_named.resolve()}
    assert clean_uploads(RunStore(tmp_path / "other" / "runs.db")) == []  # no uploads folder


def test_an_upload_used_again_counts_as_fresh(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    path = upload(store, b"weights", age_s=7200)
    assert store.keep_upload(b"weights") == path  # the same bytes: the same file, touched
    assert clean_uploads(store) == [] and path.exists()

