"""Text from users is inert on the terminal: names, tags, notes, labels and paths printed by the CLI
show control characters as escapes and never move the cursor, ring the bell or forge a line; and
``runs edit`` can clear a name or notes."""

from __future__ import annotations

import json
import re

import pytest

from ttexplore.cli import main
from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore
from ttexplore.tt.text import terminal_lines, terminal_text

EVIL_NAME = "evil\x1b[2J\x07\nforged 20991231-000000-ffffff completed\r\u202eeman\x9b31m"
EVIL_TAG = "\x1b]0;pwned\x07"
EVIL_NOTES = "line one\nline two\x1b[31m red\x1b[0m"

#: What must never reach a terminal from user text: C0 controls except the newline ending each line,
#: DEL, C1 controls, bidi overrides and line separators.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


@pytest.mark.parametrize("text, shown", [
    ("plain name", "plain name"), ("a\x1b[2Jb", "a\\x1b[2Jb"), ("bell\x07", "bell\\x07"), ("two\nlines", "two\\nlines"),
    ("cr\rlf", "cr\\rlf"), ("tab\there", "tab\\there"), ("\u202eoverride", "\\u202eoverride"), ("del\x7f", "del\\x7f"),
    ("csi\x9b", "csi\\x9b"), ("zero\u200bwidth", "zero\\u200bwidth"), ("line\u2028sep", "line\\u2028sep"),
    ("family 👨\u200d👩\u200d👧", "family 👨\u200d👩\u200d👧"), ("é 中文 ü", "é 中文 ü"),
])
def test_terminal_text_escapes_what_moves_the_cursor_and_keeps_the_rest(text, shown):
    assert terminal_text(text, width=None) == shown


def test_terminal_text_bounds_the_width():
    assert terminal_text("x" * 100, width=10) == "x" * 9 + "…" and terminal_text("short", width=10) == "short"
    assert len(terminal_text("\x1b" * 100, width=12)) == 12  # escapes count against the width


def test_terminal_lines_keeps_line_breaks_between_lines_only():
    assert terminal_lines("first \x1b[2J\nsecond\x07") == "first \\x1b[2J\nsecond\\x07"


@pytest.fixture
def evil_run():
    store = RunStore()
    config = RunConfig.for_dataset("digits", in_modes="4x4x4", out_modes="4x4x4", ranks=2, label="label\x1b[5m")
    run_id = store.create_run(config, status="completed", name=EVIL_NAME, tags=[EVIL_TAG, "ok"], notes=EVIL_NOTES)
    store.create_run(config, status="completed")  # an unnamed one: its label (user text too) is shown
    return run_id


def test_runs_list_prints_names_tags_and_labels_inert(evil_run, capsys):
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert not RAW.search(out), repr(out)
    lines = out.splitlines()
    assert len(lines) == 3  # the header and one line per run: no forged line
    assert "evil\\x1b[2J\\x07\\nforged" in out and "\\x1b]0;pwned\\x07" in out and "label\\x1b[5m" in out
    assert all(len(line) < 200 for line in lines)  # names and tags are width-bounded


def test_runs_show_prints_every_user_field_inert(evil_run, capsys):
    assert main(["runs", "show", evil_run]) == 0
    out = capsys.readouterr().out
    assert not RAW.search(out), repr(out)
    assert "line one\\nline two\\x1b[31m red" in out and "\\u202eeman" in out


def test_json_output_keeps_the_text_exact(evil_run, capsys):
    assert main(["runs", "show", evil_run, "--json"]) == 0
    out = capsys.readouterr().out
    assert not RAW.search(out)  # JSON escapes them itself
    details = json.loads(out)
    assert details["name"] == EVIL_NAME and details["notes"] == EVIL_NOTES and EVIL_TAG in details["tags"]


def test_an_error_quoting_a_user_path_is_inert(tmp_path, capsys):
    path = tmp_path / "no\x1b[31mfolder" / "x.json"
    assert main(["train", "--json", str(path)]) == 2
    err = capsys.readouterr().err
    assert not RAW.search(err) and "no\\x1b[31mfolder" in err and len(err.strip().splitlines()) == 1


def test_runs_edit_clears_name_and_notes_and_refuses_an_empty_tag(evil_run, capsys):
    assert main(["runs", "edit", evil_run, "--name", "", "--notes", ""]) == 0
    run = RunStore().get_run(evil_run)
    assert run["name"] == "" and run["notes"] == "" and sorted(run["tags"]) == sorted([EVIL_TAG, "ok"])
    capsys.readouterr()
    assert main(["runs", "edit", evil_run, "--tag", ""]) == 2
    assert "--clear-tags" in capsys.readouterr().err
    assert main(["runs", "edit", evil_run, "--clear-tags", "--tag", "kept"]) == 0
    assert RunStore().get_run(evil_run)["tags"] == ["kept"]


def test_runs_edit_leaves_a_field_it_is_not_given(evil_run):
    assert main(["runs", "edit", evil_run, "--name", "renamed"]) == 0
    run = RunStore().get_run(evil_run)
    assert run["name"] == "renamed" and run["notes"] == EVIL_NOTES
