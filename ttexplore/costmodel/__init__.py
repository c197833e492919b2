"""The cost model of the TT layer's forward strategies, in pure Python (no torch).

Each strategy of :mod:`ttexplore.nn.forward` is listed as the operations it
performs, call for call (GEMMs and permuted copies: :mod:`.ops`, :mod:`.einsum`),
so its FLOPs, peak and saved activation memory and an estimated time come
without running it (:mod:`.estimate`); the app's preview and ``strategy="auto"``
both use :func:`strategy_costs`. Times come from a :class:`MachineModel`
(:mod:`.machine`: speed tables and fitted factors; ``python -m ttexplore bench
--calibrate`` measures one for the machine at hand and prints it as a file
:func:`load_machine` reads). The counting it builds on (ranks, core shapes,
plain FLOPs) is in :mod:`ttexplore.tt.ttmath`; the copy layout it shares with
the kernels is in :mod:`ttexplore.tt.layout`.
"""

from __future__ import annotations

from typing import Any

from ttexplore.costmodel.einsum import EINSUM_OPTIMIZE, einsum_equation
from ttexplore.costmodel.estimate import (COLS_ORIENTATION_MARGIN, MERGE_MARGIN, NEAR_TIE_BAND, best_strategy, near_ties,
                                         stored_weight_costs, strategy_costs)
from ttexplore.costmodel.machine import MachineModel, default_machine, load_machine, machine_json
from ttexplore.costmodel.ops import CONCRETE_STRATEGIES, STRATEGIES, block_compositions

__all__ = [
    "STRATEGIES",
    "CONCRETE_STRATEGIES",
    "EINSUM_OPTIMIZE",
    "COLS_ORIENTATION_MARGIN",
    "MERGE_MARGIN",
    "MachineModel",
    "DEFAULT_MACHINE",
    "default_machine",
    "load_machine",
    "machine_json",
    "block_compositions",
    "einsum_equation",
    "strategy_costs",
    "stored_weight_costs",
    "best_strategy",
    "near_ties",
    "NEAR_TIE_BAND",
]


def __getattr__(name: str) -> Any:
    # DEFAULT_MACHINE is read from its data file on first use, not on import
    if name == "DEFAULT_MACHINE":
        return default_machine()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
