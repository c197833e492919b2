"""Every page under a broken environment, through AppTest (issue 19, classes 1, 5, 6, 7, 8 on the pages):
no exception element, no traceback and no server path on any page; a failure tied to an error id in the
log; links that name missing runs say so and keep the address; uploads refused in the page's words and not
kept; user text shown as text; a double click queues once."""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import re
import sqlite3
import sys
import time
from pathlib import Path

import pytest
import torch

from app_support import APP, app_home, new_app, release_app_resources, shared_data_dir  # noqa: F401

from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore

PAGES = ("pages/explore.py", "pages/train.py", "pages/runs.py", "pages/sweep.py", "pages/compress.py",
         "pages/export.py", "pages/run.py")
#: Element types whose text Streamlit renders as Markdown (where user text must arrive escaped).
MARKDOWN_TYPES = {"markdown", "caption", "title", "header", "subheader", "error", "warning", "info", "success",
                  "toast", "page_link", "metric", "exception"}


def elements(at):
    """Every leaf element of the app's tree (main, sidebar, dialogs), sidebar included."""
    found = []

    def walk(node):
        children = getattr(node, "children", None)
        if children:
            for child in children.values():
                walk(child)
        elif getattr(node, "proto", None) is not None:
            found.append(node)

    walk(at._tree)
    return found


def texts(at, types=None) -> list[str]:
    """The text of each element (its whole protobuf, so labels and help texts count), of ``types`` only when given."""
    return [str(node.proto) for node in elements(at) if types is None or getattr(node, "type", None) in types]


def assert_clean(at, where: str) -> None:
    """No exception element, no traceback and no server path anywhere on the page."""
    assert not at.exception, (where, [item.value for item in at.exception])
    home = os.environ["TTEXPLORE_HOME"]
    for text in texts(at):
        assert "Traceback" not in text, (where, text[:300])
        assert "/tmp/" not in text and home not in text, (where, text[:300])
        assert str(Path.home()) + "/" not in text, (where, text[:300])


def open_page(at, page: str):
    """Open ``page`` as a browser does, through app.py's router (its sidebar and error boundary around the page).

    AppTest's ``switch_page`` runs a page file alone while the process has imported ``ui`` already (in a server,
    once any session ran ``st.navigation`` every request goes through app.py); a page that imports ``ui`` afresh
    switches this session to the router and reruns, as a fresh server's first deep link does (ui's
    ``_route_through_app``)."""
    sys.modules.pop("ui", None)
    if "_tt_router_on" in at.session_state:
        del at.session_state["_tt_router_on"]
    return at.switch_page(page).run()


def visit_every_page(at, before_each=None) -> None:
    at.run()
    assert_clean(at, "first drawing")
    for page in PAGES:
        if before_each:
            before_each(page)
        open_page(at, page)
        assert at.get("page_link") or at.title, page
        assert any("ttexplore" in text for text in texts(at, {"markdown"})), f"{page}: drawn through app.py (its sidebar)"
        assert_clean(at, page)


def finished(store: RunStore, config: RunConfig, **identity) -> str:
    run_id = store.create_run(config, **identity)
    store.mark_running(run_id)
    store.add_event(run_id, {"kind": "eval", "epoch": 1, "step": 10, "train_loss": 1.0, "train_accuracy": 0.5,
                             "test_loss": 1.1, "test_accuracy": 0.45, "elapsed_s": 1.0})
    store.finish(run_id, "completed")
    with store._connect() as connection:
        connection.execute("UPDATE runs SET started_at=?, finished_at=? WHERE id=?", (time.time() - 5, time.time(), run_id))
    return run_id


def zero_epoch_config(tmp_path: Path) -> RunConfig:
    """A compressed run's config: 0 epochs, started from a weights file (the Compress page's TT-SVD net)."""
    weights = tmp_path / "w.pt"
    torch.save({"weight": torch.randn(64, 64)}, weights)
    from ttexplore.runs.warmstart import file_sha256

    return RunConfig.for_dataset("digits", epochs=0, ranks=2, init_from={"path": str(weights), "sha256": file_sha256(weights)})


# ---------------------------------------------------------------- class 1: no traceback, no path, ever
@pytest.mark.parametrize("variable", ["TTEXPLORE_WORKERS", "TTEXPLORE_TORCH_THREADS"])
def test_a_bad_variable_is_said_once_in_the_sidebar_and_every_page_works(app_home, monkeypatch, variable):
    monkeypatch.setenv(variable, "abc")
    release_app_resources()
    finished(RunStore(), RunConfig.for_dataset("digits", epochs=1, ranks=2))
    at = new_app()
    visit_every_page(at)
    notes = [item.value.replace("\\", "") for item in at.warning if "TTEXPLORE" in item.value]
    assert len(notes) == 1 and f"{variable}='abc' is not a whole number" in notes[0] and "meanwhile" in notes[0]


def test_every_page_survives_damaged_rows_and_a_zero_epoch_run(app_home, tmp_path):
    store = RunStore()
    finished(store, RunConfig.for_dataset("digits", epochs=1, ranks=2), name="fine")
    finished(store, zero_epoch_config(tmp_path), name="compressed")  # the Sweep page's estimate divided by its 0 epochs
    damaged = {finished(store, RunConfig.for_dataset("digits", epochs=2, ranks=3)): "{not json",
               finished(store, RunConfig.for_dataset("digits", epochs=3, ranks=3)): json.dumps([1, 2]),
               finished(store, RunConfig.for_dataset("digits", epochs=4, ranks=3)): json.dumps({"layers": 5})}
    with sqlite3.connect(store.path) as connection:
        for run_id, text in damaged.items():
            connection.execute("UPDATE runs SET config=?, tags=? WHERE id=?", (text, "[broken", run_id))
    at = new_app()
    visit_every_page(at)
    open_page(at, "pages/sweep.py")
    assert any("run" in item.value and "worker" in item.value for item in at.markdown)  # the time estimate is back
    broken = next(iter(damaged))
    at.query_params["id"] = broken
    open_page(at, "pages/run.py")
    assert_clean(at, "a damaged run's page")
    assert any("cannot be read" in item.value for item in at.warning)


def test_a_store_deleted_mid_session_is_said_once_and_every_page_goes_on(app_home):
    store = RunStore()
    finished(store, RunConfig.for_dataset("digits", epochs=1, ranks=2))
    at = new_app()
    at.run()
    assert_clean(at, "before")
    store.path.unlink()
    said = []
    for page in PAGES:
        open_page(at, page)
        assert_clean(at, page)
        said += [(page, item.value) for item in at.toast if "deleted while in use" in item.value]
    assert len(said) == 1 and "$TTEXPLORE\\_HOME" in said[0][1], said  # once per session, no path
    open_page(at, "pages/train.py")
    assert any("No run yet" in item.value for item in at.info), "the page reads the new, empty store"


@pytest.mark.parametrize("damage", ["garbage", "TTEXPLORE_DB garbage", "home is a file", "store is a folder"])
def test_a_store_that_cannot_be_used_is_said_without_its_path(app_home, monkeypatch, damage, tmp_path):
    release_app_resources()
    fix = None
    if damage == "garbage":
        (app_home / "runs.db").write_bytes(b"these are not runs" * 500)
        fix = "mv $TTEXPLORE_HOME/runs.db $TTEXPLORE_HOME/runs.db.bad"  # the fix, still one command to type
    elif damage == "TTEXPLORE_DB garbage":
        (tmp_path / "elsewhere.db").write_bytes(b"these are not runs" * 500)
        monkeypatch.setenv("TTEXPLORE_DB", str(tmp_path / "elsewhere.db"))
        fix = "mv $TTEXPLORE_DB $TTEXPLORE_DB.bad"
    elif damage == "home is a file":
        (tmp_path / "home-file").write_text("a file, not a folder")
        monkeypatch.setenv("TTEXPLORE_HOME", str(tmp_path / "home-file"))
    else:
        (tmp_path / "db-folder").mkdir()
        monkeypatch.setenv("TTEXPLORE_DB", str(tmp_path / "db-folder"))
    at = new_app()
    try:
        visit_every_page(at)
        open_page(at, "pages/runs.py")
        message = " ".join(item.value for item in at.error).replace("\\", "")
        assert "cannot be used" in message
        assert fix is None or fix in message, message
    finally:  # the fixture's teardown opens the store again
        import streamlit as st

        st.cache_resource.clear()
        monkeypatch.setenv("TTEXPLORE_HOME", str(app_home))
        monkeypatch.delenv("TTEXPLORE_DB", raising=False)
        if damage == "garbage":
            (app_home / "runs.db").unlink()


def test_a_page_that_fails_shows_an_error_id_and_logs_the_traceback(app_home, monkeypatch, caplog):
    from ttexplore.presenters import tracking

    finished(RunStore(), RunConfig.for_dataset("digits", epochs=1, ranks=2))

    def broken_table(*args, **kwargs):
        raise ZeroDivisionError(f"division by zero in {app_home}/secret.py")

    monkeypatch.setattr(tracking, "hparams_table", broken_table)
    at = new_app()
    with caplog.at_level(logging.ERROR, logger="ttexplore.app"):
        open_page(at, "pages/runs.py")
    assert_clean(at, "a failing page")
    message = next(item.value for item in at.error if "Something went wrong" in item.value)
    assert "the Runs page" in message and "division" not in message and "ZeroDivisionError" not in message
    error_id = re.search(r"error id `([0-9a-f]{6})`", message).group(1)
    record = next(record for record in caplog.records if error_id in record.getMessage())
    assert record.exc_info and record.exc_info[0] is ZeroDivisionError  # the server log has the whole trace
    # another failure gets another id
    open_page(at, "pages/runs.py")
    again = next(item.value for item in at.error if "Something went wrong" in item.value)
    assert re.search(r"error id `([0-9a-f]{6})`", again).group(1) != error_id


def test_ttexplores_own_message_is_shown_with_its_paths_named_for_the_user(app_home, monkeypatch):
    from ttexplore.presenters import plots
    from ttexplore.tt.atomic import WriteError

    run_id = finished(RunStore(), RunConfig.for_dataset("digits", epochs=1, ranks=2))

    def full_disk(*args, **kwargs):
        target = app_home / "artifacts" / "checkpoints" / f"{run_id}.pt"
        raise WriteError(target, f"cannot write {target}: no space left on the device")

    monkeypatch.setattr(plots, "training_curves", full_disk)  # drawn in the Train page's live fragment
    at = new_app()
    at.query_params["runs"] = run_id
    open_page(at, "pages/train.py")
    assert_clean(at, "a failing fragment")
    message = next(item.value for item in at.error if "Something went wrong" in item.value)
    shown = message.replace("\\", "")
    assert "the live view" in shown and f"run {run_id}'s checkpoint: no space left" in shown


# ---------------------------------------------------------------- class 6: a link means what it says
def test_a_link_to_a_missing_run_stays_missing(app_home):
    store = RunStore()
    finished(store, RunConfig.for_dataset("digits", epochs=1, ranks=2))
    at = new_app()
    at.query_params["id"] = "deadbeef0000"
    open_page(at, "pages/run.py")
    assert_clean(at, "a missing run")
    assert at.title[0].value == "Run"
    assert any("There is no run" in item.value and "deadbeef0000" in item.value for item in at.warning)
    assert [link.proto.page for link in at.get("page_link") if "Runs" in link.proto.label]
    for _ in range(2):  # never rewritten to another run, however often it redraws
        at.run()
        assert at.query_params["id"] in ("deadbeef0000", ["deadbeef0000"])
        assert at.title[0].value == "Run" and not at.get("metric")


def test_the_run_page_without_an_id_shows_a_run_and_leaves_the_address_alone(app_home):
    store = RunStore()
    older = finished(store, RunConfig.for_dataset("digits", epochs=1, ranks=3), name="older")
    time.sleep(0.01)
    finished(store, RunConfig.for_dataset("digits", epochs=1, ranks=2), name="the newest")
    at = new_app()
    open_page(at, "pages/run.py")
    assert_clean(at, "/run")
    assert at.title[0].value == "the newest" and "id" not in at.query_params
    at.selectbox(key="run_page_pick").set_value(older).run()  # a pick is the one thing that writes the address
    assert at.query_params["id"] in (older, [older])


def test_a_pinned_dashboard_keeps_the_runs_it_has_and_names_those_gone(app_home):
    store = RunStore()
    kept = finished(store, RunConfig.for_dataset("digits", epochs=1, ranks=2))
    at = new_app()
    at.query_params["runs"] = f"gone00000001,{kept},gone00000002"
    open_page(at, "pages/train.py")
    assert_clean(at, "pinned with missing runs")
    assert at.multiselect(key="train_watch").value == [kept]
    warning = next(item.value for item in at.warning if "not in this app" in item.value)
    assert "gone00000001" in warning and "gone00000002" in warning and "2 runs" in warning
    assert at.query_params["runs"] in (f"gone00000001,{kept},gone00000002", [f"gone00000001,{kept},gone00000002"])


# ---------------------------------------------------------------- class 7: uploads speak the page's language
def _saved(payload) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


class Runs:  # a class the weights-only reader refuses
    def __reduce__(self):
        return (print, ("this would run",))


UPLOADS = {
    "empty": (b"", "is empty"),
    "text": (b"this is not a weights file\n", "not a weights file written by torch.save"),
    "a bare pickle": (pickle.dumps({"weight": [[1.0]]}), "not a weights file written by torch.save"),
    "code": (_saved({"weight": Runs()}), "holds objects other than tensors"),
    "truncated": (_saved({"weight": torch.zeros(64, 64)})[:200], "probably truncated or damaged"),
    "two matrices": (_saved({"a.weight": torch.zeros(64, 64), "b.weight": torch.zeros(32, 64)}), "Weight key"),
}


@pytest.mark.parametrize("case", list(UPLOADS))
def test_a_refused_upload_is_said_in_the_pages_words_and_not_kept(app_home, case):
    data, words = UPLOADS[case]
    at = new_app()
    open_page(at, "pages/compress.py")
    at.segmented_control(key="compress_kind").set_value("A weights file").run()
    at.selectbox(key="compress_dataset").set_value("digits").run()
    at.file_uploader[0].set_value(("model.pt", data, "application/octet-stream")).run()
    assert_clean(at, case)
    message = " ".join(item.value for item in at.error).replace("\\", "")
    assert words in message, message
    assert "the uploaded file" in message and "--" not in message and "\x1b" not in message and "[1m" not in message
    uploads = app_home / "artifacts" / "uploads"
    assert not uploads.exists() or not list(uploads.iterdir()), "a refused upload is removed at once"
    if case == "two matrices":  # the field the message names is the one the page shows; with it, the file is read
        assert "Weight key (optional)" in [item.label for item in at.text_input]
        at.text_input(key="compress_key").input("b.weight").run()
        assert_clean(at, "with the weight key")
        assert not at.error and any("W is 32 × 64" in item.value for item in at.caption)
        assert len(list(uploads.iterdir())) == 1  # kept while the page uses it (removed on the next start if no run names it)


# ---------------------------------------------------------------- class 8: user text is shown as text
HOSTILE = "**bold** <script>alert(1)</script> [x](javascript:alert(1))"


def assert_inert(at, where: str) -> None:
    """No element that renders Markdown holds the hostile name's markup, or an escape character, unescaped."""
    assert_clean(at, where)
    for text in texts(at, MARKDOWN_TYPES):
        assert "**bold**" not in text and "<script>" not in text and "](javascript" not in text, (where, text[:300])
        assert "\x1b" not in text and "\\033" not in text, (where, text[:300])


def test_a_hostile_name_is_text_on_every_page(app_home):
    store = RunStore()
    config = RunConfig.for_dataset("digits", epochs=1, ranks=2)
    run_id = finished(store, config, name=HOSTILE, tags=["<b>tag</b>", "**t**"], notes="line one\nline two \x1b[31mred",
                      sweep="<b>sw</b> [y](javascript:x)")
    at = new_app()
    at.query_params["id"] = run_id
    open_page(at, "pages/run.py")  # a first drawing: the figures are "Drawing “<the run's title>”…" placeholders
    assert_inert(at, "run page, first drawing")
    assert any("Drawing" in text and "\\\\*\\\\*bold" in text for text in texts(at, {"caption"}))
    assert at.title[0].value.startswith("\\*\\*bold\\*\\* \\<script\\>")
    at.query_params.clear()
    for page in PAGES:
        open_page(at, page)
        assert_inert(at, page)
        if page == "pages/sweep.py":  # the sweep's name in its figure's title: drawn as text by plotly
            at.run()  # the figures come with the second drawing
            title = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]
            assert title.startswith("&lt;b&gt;sw&lt;/b&gt; [y](javascript:x)"), title
    at.query_params["runs"] = run_id
    open_page(at, "pages/train.py")
    links = [link.proto.label for link in at.get("page_link")]
    assert any(label.startswith("\\*\\*bold\\*\\*") for label in links), links


def test_an_over_long_name_on_the_run_page_is_said_under_the_form(app_home):
    store = RunStore()
    run_id = finished(store, RunConfig.for_dataset("digits", epochs=1, ranks=2), name="short")
    at = new_app()
    at.query_params["id"] = run_id
    open_page(at, "pages/run.py")
    at.text_input(key=f"run-name-{run_id}").input("n" * 300)
    at.button[[button.label for button in at.button].index("Save")].click().run()
    assert_clean(at, "over-long name")
    assert any(item.value.startswith("Name has 300 characters") for item in at.error), [item.value for item in at.error]
    assert store.get_run(run_id)["name"] == "short"  # nothing saved


# ---------------------------------------------------------------- class 5: a submission happens once
def test_a_second_train_click_says_already_queued_and_can_queue_another(app_home, monkeypatch):
    from ttexplore.runs import jobs

    monkeypatch.setattr(jobs.JobManager, "_claim", lambda self: None)  # runs stay queued: no worker takes them
    at = new_app().run()
    at.button(key="train_submit").click().run()
    assert_clean(at, "first click")
    store = RunStore()
    first = [run["id"] for run in store.list_runs()]
    assert len(first) == 1
    open_page(at, "pages/explore.py")
    at.button(key="train_submit").click().run()  # the same run again, seconds later: not queued twice
    assert_clean(at, "second click")
    assert len(store.list_runs()) == 1
    notice = [str(node.proto) for node in elements(at) if "Already queued" in str(node.proto)]
    assert notice and any(first[0] in link.proto.label for link in at.get("page_link"))
    at.button(key="train-again").click().run()
    assert_clean(at, "another anyway")
    assert len(store.list_runs()) == 2
