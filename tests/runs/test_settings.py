"""Every ttexplore environment variable is checked in one place: a bad value is one line naming the
variable and the fix (the CLI exits 2), the app's job manager falls back to the default and says so,
and TTEXPLORE_WORKERS is capped at two runs per core."""

from __future__ import annotations

import os
import threading

import pytest

from ttexplore.cli import main
from ttexplore.runs.jobs import JobManager
from ttexplore.runs.settings import environment_problems, is_offline, job_settings, thread_cap, worker_cap
from ttexplore.runs.store import RunStore

BAD = [  # (variable, value, words the one line must hold)
    ("TTEXPLORE_WORKERS", "abc", "not a whole number"), ("TTEXPLORE_WORKERS", "0", "at least 1"),
    ("TTEXPLORE_WORKERS", "-3", "not a whole number"), ("TTEXPLORE_WORKERS", "2.5", "not a whole number"),
    ("TTEXPLORE_WORKERS", "9" * 40, "not a whole number"),
    ("TTEXPLORE_TORCH_THREADS", "abc", "not a whole number"), ("TTEXPLORE_TORCH_THREADS", "0", "at least 1"),
    ("TTEXPLORE_TORCH_THREADS", "100000", "more than"),
    ("TTEXPLORE_MEMORY_LIMIT", "lots", "not a size"), ("TTEXPLORE_MEMORY_LIMIT", "-1G", "not a size"),
    ("TTEXPLORE_OFFLINE", "maybe", "neither on nor off"),
    ("TTEXPLORE_HOME", "{file}", "is a file, not a folder"), ("TTEXPLORE_HOME", "", "empty"),
    ("TTEXPLORE_DATA", "{file}", "is a file, not a folder"), ("TTEXPLORE_DB", "{folder}", "is a folder"),
]


@pytest.fixture
def places(tmp_path):
    (tmp_path / "file").write_text("x")
    return {"file": str(tmp_path / "file"), "folder": str(tmp_path)}


@pytest.mark.parametrize("variable, value, words", BAD)
def test_a_bad_variable_is_one_line_naming_it(variable, value, words, places):
    value = value.format(**places)
    problems = environment_problems({variable: value})
    assert len(problems) == 1 and problems[0].startswith(variable) and words in problems[0], problems


@pytest.mark.parametrize("variable, value, words", BAD)
def test_the_cli_refuses_to_start_on_a_bad_variable(variable, value, words, places, monkeypatch, capsys):
    monkeypatch.setenv(variable, value.format(**places))
    code = main(["count", "--in-modes", "4x8x8x4", "--out-modes", "4x8x8x4"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and variable in err[0] and words in err[0], err


@pytest.mark.parametrize("environment", [
    {}, {"TTEXPLORE_WORKERS": "2", "TTEXPLORE_TORCH_THREADS": "1", "TTEXPLORE_MEMORY_LIMIT": "1.5GiB",
         "TTEXPLORE_OFFLINE": "1"},
    {"TTEXPLORE_WORKERS": " 3 ", "TTEXPLORE_OFFLINE": "false", "TTEXPLORE_MEMORY_LIMIT": "8G"},
    {"TTEXPLORE_WORKERS": "1000"},  # capped, not refused
])
def test_good_values_have_no_problem(environment):
    assert environment_problems(environment) == []


def test_every_problem_is_listed(places):
    problems = environment_problems({"TTEXPLORE_WORKERS": "x", "TTEXPLORE_OFFLINE": "perhaps"})
    assert [problem.split("=")[0] for problem in problems] == ["TTEXPLORE_WORKERS", "TTEXPLORE_OFFLINE"]


@pytest.mark.parametrize("value, offline", [("", False), ("0", False), ("false", False), ("No", False), ("off", False),
                                            ("1", True), ("true", True), ("YES", True), ("on", True),
                                            ("perhaps", True)])
def test_offline_reads_on_and_off(value, offline):
    assert is_offline({"TTEXPLORE_OFFLINE": value}) is offline
    assert is_offline({}) is False


def test_the_app_falls_back_to_the_default_and_says_why():
    settings = job_settings({"TTEXPLORE_WORKERS": "abc", "TTEXPLORE_TORCH_THREADS": "0"})
    assert settings.workers is None and settings.torch_threads is None
    assert len(settings.problems) == 2 and "TTEXPLORE_WORKERS='abc'" in settings.problems[0]
    assert "meanwhile" in settings.problems[0] and "TTEXPLORE_TORCH_THREADS=0" in settings.problems[1]


def test_a_huge_worker_count_is_capped_with_a_note():
    settings = job_settings({"TTEXPLORE_WORKERS": "1000"})
    cores = os.cpu_count() or 1
    assert settings.workers == worker_cap() == max(2, 2 * cores) and settings.problems == ()
    assert len(settings.notes) == 1 and "TTEXPLORE_WORKERS=1000" in settings.notes[0]


def test_the_job_manager_caps_its_workers_and_says_so_once(tmp_path, caplog):
    before = threading.active_count()
    manager = JobManager(RunStore(tmp_path / "runs.db"), max_workers=1000)
    try:
        assert manager.max_workers == worker_cap()
        assert threading.active_count() - before <= worker_cap()
        assert len(manager.notes) == 1 and "1000 workers asked for" in manager.notes[0]
        assert sum("1000 workers asked for" in record.getMessage() for record in caplog.records) == 1
    finally:
        manager.shutdown()


def test_caps_scale_with_the_cores():
    assert worker_cap(1) == 2 and worker_cap(8) == 16
    assert thread_cap(2) == 64 and thread_cap(32) == 128
