"""Benchmarks of the TT layer's forward strategies against ``nn.Linear``.

``python -m ttexplore bench`` (or ``python benchmarks/run_bench.py``; the
command line is :mod:`ttexplore.cli.bench`) times, for each case, every
concrete strategy, ``"auto"`` and the dense ``nn.Linear`` of the same size in
the same run (interleaved, so load on the machine hits all alike), forward only
and forward plus backward, and one Adam training step of the paper's MNIST net
against its dense twin. It writes ``bench.csv``, ``training.csv``,
``summary.md`` and a plotly figure (``bench.html`` and, when kaleido can drive
a browser, ``bench.png``) into ``--out``.

``--calibrate`` instead measures the speeds the cost model needs
(:class:`ttexplore.costmodel.MachineModel`) on this machine and prints them as
a machine file.

Modules: :mod:`.cases` (the cases; pure), :mod:`.harness` (load monitor,
timing, child processes; torch), :mod:`.report` (CSV, summary, targets,
figure; pure), :mod:`.calibrate` (measuring and fitting a machine; torch).
Names below are imported from them on first use, so importing this package
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BenchCase": "cases",
    "CASES": "cases",
    "CASE_GROUPS": "cases",
    "bench_case": "harness",
    "bench_training_step": "harness",
    "foreign_load": "harness",
    "wait_for_quiet": "harness",
    "calibrate_machine": "calibrate",
    "evaluate_targets": "report",
    "summary_markdown": "report",
    "write_figure": "report",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
