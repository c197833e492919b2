"""presenters.faults: server paths named for the user, the failure text with its error id, missing links."""

from __future__ import annotations

import re

import pytest

from ttexplore.presenters.faults import (failure_text, is_ours, missing_ids, missing_ids_text, missing_run_text,
                                         new_error_id, path_text, scrub_paths, server_places)
from ttexplore.tt.errors import ConfigError

RUN = "20261205-114747-86c862"
SHA = "4a10ccd4cf00bb0a7d1298ab75100d351221046b74722809633b6a27d1fedd0f"


@pytest.fixture
def places():
    """A server whose home is set by TTEXPLORE_HOME."""
    return server_places({"TTEXPLORE_HOME": "/srv/tt"})


@pytest.mark.parametrize("path, shown", [
    (f"/srv/tt/artifacts/uploads/{SHA}.pt", "the uploaded file"),
    (f"/srv/tt/artifacts/checkpoints/{RUN}.pt", f"run {RUN}'s checkpoint"),
    (f"/srv/tt/artifacts/{RUN}.pt", f"run {RUN}'s weights file"),
    ("/srv/tt/runs.db", "$TTEXPLORE_HOME/runs.db"),
    ("/srv/tt/runs.db.bad", "$TTEXPLORE_HOME/runs.db.bad"),
    ("/srv/tt/data/mnist/x.npz", "$TTEXPLORE_HOME/data/mnist/x.npz"),
    ("/srv/tt", "$TTEXPLORE_HOME"),
    ("/opt/venv/lib/python3.11/site-packages/torch/serialization.py", "…/serialization.py"),
    ("/srv/tt/../tt/runs.db", "$TTEXPLORE_HOME/runs.db"),
])
def test_a_path_is_named_by_what_it_is_or_relative_to_the_home(places, path, shown):
    assert path_text(path, places) == shown


def test_the_default_home_is_written_as_the_shell_would_and_a_set_store_by_its_variable(tmp_path):
    default = server_places({})
    assert path_text(default.home + "/runs.db", default) == "~/.ttexplore/runs.db"
    set_db = server_places({"TTEXPLORE_HOME": str(tmp_path / "h"), "TTEXPLORE_DB": str(tmp_path / "x.db"),
                            "TTEXPLORE_DATA": str(tmp_path / "d")})
    assert path_text(tmp_path / "x.db", set_db) == "$TTEXPLORE_DB"
    assert path_text(f"{tmp_path}/x.db-wal", set_db) == "$TTEXPLORE_DB-wal"
    assert path_text(tmp_path / "d" / "cifar", set_db) == "$TTEXPLORE_DATA/cifar"
    assert set_db.artifacts == str(tmp_path / "artifacts")  # beside the store, as RunStore puts it
    assert path_text(tmp_path / "artifacts" / "uploads" / f"{SHA}.pt", set_db) == "the uploaded file"


def test_every_path_in_a_message_is_scrubbed_and_the_rest_kept(places):
    message = (f"the run store /srv/tt/runs.db is not a readable SQLite database: move it aside (mv /srv/tt/runs.db "
               f"/srv/tt/runs.db.bad). Then /srv/tt/artifacts/uploads/{SHA}.pt: 'in_modes' 4x8 -> 2^10, 1/2 of a/b "
               "at https://example.org/a/b, file /usr/lib/x.py.")
    scrubbed = scrub_paths(message, places)
    assert "/srv" not in scrubbed and "/usr" not in scrubbed
    assert "(mv $TTEXPLORE_HOME/runs.db $TTEXPLORE_HOME/runs.db.bad)." in scrubbed  # the fix stays one command
    assert "Then the uploaded file: 'in_modes' 4x8 -> 2^10, 1/2 of a/b at https://example.org/a/b, file …/x.py." in scrubbed


def test_a_home_with_a_space_is_named_whole():
    places = server_places({"TTEXPLORE_HOME": "/srv/my runs"})
    assert scrub_paths("cannot open /srv/my runs/runs.db now", places) == "cannot open $TTEXPLORE_HOME/runs.db now"


def test_the_users_home_is_a_tilde(places):
    import os

    home = os.path.expanduser("~")
    assert scrub_paths(f"read {home}/weights/w.pt", places) == "read ~/weights/w.pt"


def test_a_failure_says_what_failed_and_the_id_never_a_developers_message(places):
    bug = ZeroDivisionError("float division by zero in /srv/tt/secret.py")
    text = failure_text(bug, "the Sweep page", "3f9a2c", places)
    assert "Sweep page" in text and "error id `3f9a2c`" in text and "server log" in text
    assert "division" not in text and "ZeroDivisionError" not in text and "/srv" not in text
    ours = ConfigError("weights", "cannot write /srv/tt/artifacts/checkpoints/abc.pt: no space left **now**")
    shown = failure_text(ours, "the live view", "000001", places)
    assert "cannot write run abc\\'s checkpoint\\: no space left \\*\\*now\\*\\*" in shown  # ttexplore's words, as text
    assert is_ours(ours) and not is_ours(bug) and not is_ours(ValueError("torch's words"))


def test_error_ids_are_short_and_differ():
    ids = {new_error_id() for _ in range(200)}
    assert len(ids) == 200 and all(re.fullmatch(r"[0-9a-f]{6}", error_id) for error_id in ids)


def test_missing_links_are_named_once_in_order_and_as_text():
    assert missing_ids("a,b,,c,a, d ", {"b"}) == ["a", "c", "d"]
    assert missing_ids(None, set()) == [] and missing_ids("", {"x"}) == []
    assert len(missing_ids(",".join(f"id{index}" for index in range(500)), set())) == 50  # bounded
    text = missing_ids_text(["gone", "**x**"])
    assert "2 runs" in text and "**gone**" in text and "\\*\\*x\\*\\*" in text
    assert "1 run in this link is" in missing_ids_text(["gone"])
    assert "and 2 more" in missing_ids_text([f"g{index}" for index in range(10)])
    shown = missing_run_text("[x](javascript:alert(1))")
    assert "\\[x\\]\\(javascript" in shown and "deleted" in shown
