"""What the CLI imports on its way to work: ``count`` and ``suggest`` never import torch, and
``train`` on a bundled dataset whose split is saved imports none of the analysis packages
(scikit-learn, scipy, pandas, plotly, torchvision): each costs start-up seconds it does not need.
The seconds themselves are in BENCHMARKS.md ("Start-up"), never asserted here."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

#: Packages ``train`` has no use for before its first batch (nor after, on a bundled dataset).
NOT_FOR_TRAINING = ("sklearn", "scipy", "pandas", "plotly", "torchvision", "mlxtend", "streamlit")


def run_and_list_imports(code: str, home) -> tuple[str, list[str]]:
    """Run ``code`` in a fresh interpreter; return its stdout and which of torch and
    :data:`NOT_FOR_TRAINING` it had imported by the end (listed on stderr's last line)."""
    watched = ("torch",) + NOT_FOR_TRAINING
    probe = (code + "\nimport sys\n"
             f"print(sorted({{name.split('.')[0] for name in sys.modules}} & set({watched!r})), file=sys.stderr)")
    env = {**os.environ, "TTEXPLORE_HOME": str(home), "TTEXPLORE_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout, ast.literal_eval(result.stderr.strip().splitlines()[-1])


def test_count_and_suggest_run_without_torch(isolated_home):
    stdout, loaded = run_and_list_imports('from ttexplore.cli import main\n'
                                          'assert main(["suggest", "1024", "1024"]) == 0\n'
                                          'assert main(["count", "--ranks", "3", "--json"]) == 0', isolated_home)
    assert loaded == []
    numbers = json.loads(stdout[stdout.index("\n{") :])  # count's JSON comes last
    assert numbers["layer weights"] == 1248  # it did the work: 4x8x8x4 at rank 3


@pytest.mark.slow
def test_train_on_a_saved_split_imports_no_analysis_package(isolated_home):
    from ttexplore.runs.data import load_dataset
    from ttexplore.runs.datacache import split_cache_path

    load_dataset("digits")  # saves the split under this test's home, as a first run does
    assert split_cache_path(isolated_home / "data", "digits").is_file()
    stdout, loaded = run_and_list_imports('from ttexplore.cli import main\n'
                                          'assert main(["train", "--dataset", "digits", "--epochs", "1", '
                                          '"--train-limit", "64", "--json", "-", "--quiet"]) == 0', isolated_home)
    assert loaded == ["torch"]
    assert json.loads(stdout)["status"] == "completed"
