"""Where a run's first weights come from (:class:`InitFrom`), and the layer specs' old address. Pure Python.

A network's hidden layers are layer kinds (:mod:`ttexplore.runs.kinds`: one class per kind,
registered in one place); :class:`LayerSpec` (their base class), :func:`parse_layers`,
:func:`check_layers` and :func:`layers_text` are re-exported here so imports of this module keep working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ttexplore.tt.errors import ConfigError
from ttexplore.runs.kinds import (MAX_HIDDEN_LAYERS, LayerSpec, check_layers, kind_names, layers_text, parse_layer,
                                  parse_layers)

__all__ = ["LayerSpec", "InitFrom", "MAX_HIDDEN_LAYERS", "INIT_METHODS", "parse_layer", "parse_layers", "check_layers",
           "layers_text", "kind_names"]

#: How an :class:`InitFrom` turns the source's layers into the run's. ``"tt-svd"``: a TT layer by TT-SVD of
#: the source layer's dense weight, a matrix-rank layer by its truncated SVD, a dense layer by a copy.
#: ``"tt-round"``: each TT layer by TT-rounding the source's trained TT layer of the same place (to the
#: run's ranks; "Round and continue", compressing a TT run), the other layers as ``"tt-svd"`` does.
INIT_METHODS = ("tt-svd", "tt-round")


def _error(field: str, message: str) -> Exception:
    return ConfigError(field, message)


# ---------------------------------------------------------------- where the first weights come from
@dataclass(frozen=True)
class InitFrom:
    """A run whose first weights come from trained ones rather than a random draw.

    Each hidden layer is made from the source's layer of the same place (a TT layer by TT-SVD
    of its dense weight, at the run's ranks), the head and biases are copied. The run stays
    reproducible and resumable: the file is named and its content pinned by ``sha256``.

    Attributes:
        path: the weights file (a ttexplore model file, a ``state_dict`` or a tensor saved by ``torch.save``).
        sha256: the file's SHA-256 (hex), checked before it is used.
        run: the recorded run whose weights these are, when there is one (for the record).
        weight_key: the ``state_dict`` key of the hidden layer's weight, for a file that is not a
            ttexplore model (``None``: the one 2-D tensor of the right size).
        method: :data:`INIT_METHODS`.
        rank, rel_error: with ``"tt-round"``, what the trained cores were rounded to (a max rank, or a
            relative error); the run's layers hold the ranks it reached. ``None`` otherwise.
    """

    path: str
    sha256: str
    run: Optional[str] = None
    weight_key: Optional[str] = None
    method: str = "tt-svd"
    rank: Optional[int] = None
    rel_error: Optional[float] = None

    @classmethod
    def of(cls, value: Any) -> "InitFrom":
        """From a dict (as stored) or an :class:`InitFrom`.

        Raises:
            ConfigError: naming ``init_from.<field>`` and the fix.
        """
        if isinstance(value, InitFrom):
            return value
        if not isinstance(value, dict):
            raise _error("init_from", f"init_from {value!r} must be a dict with path and sha256")
        unknown = sorted(set(value) - {"path", "sha256", "run", "weight_key", "method", "rank", "rel_error"})
        if unknown:
            raise _error(f"init_from.{unknown[0]}", f"init_from has an unknown setting {unknown[0]!r}: it has "
                                                    "path, sha256, run, weight_key, method, rank and rel_error")
        spec = cls(**value)
        spec.check()
        return spec

    def check(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise _error("init_from.path", "init_from.path is missing: name the weights file")
        if not isinstance(self.sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise _error("init_from.sha256", f"init_from.sha256 {self.sha256!r} is not a SHA-256 in hex (64 digits)")
        if self.method not in INIT_METHODS:
            raise _error("init_from.method", f"init_from.method {self.method!r} is unknown: use one of "
                                             f"{', '.join(INIT_METHODS)}")
        for name in ("run", "weight_key"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise _error(f"init_from.{name}", f"init_from.{name} must be text")
        if self.method != "tt-round" and (self.rank is not None or self.rel_error is not None):
            name = "rank" if self.rank is not None else "rel_error"
            raise _error(f"init_from.{name}", f"init_from.{name} goes with method tt-round (rounding trained TT cores): "
                                              "leave it out")
        if self.rank is not None and (isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1):
            raise _error("init_from.rank", f"init_from.rank {self.rank!r} must be a whole number of 1 or more, e.g. 4")
        if self.rel_error is not None and (isinstance(self.rel_error, bool) or not isinstance(self.rel_error, (int, float))
                                           or not 0 < self.rel_error < 1):
            raise _error("init_from.rel_error", f"init_from.rel_error {self.rel_error!r} must be between 0 and 1, e.g. 0.1")

    def to_dict(self) -> dict[str, Any]:
        values = {"path": self.path, "sha256": self.sha256, "run": self.run, "weight_key": self.weight_key,
                  "method": self.method, "rank": self.rank, "rel_error": self.rel_error}
        return {key: value for key, value in values.items() if value is not None}

    def describe(self) -> str:
        """``"TT-SVD of run 2024...-ab12cd"``, ``"TT-SVD of weights.pt"``, ``"TT-ROUND of run ... to rank 4"``."""
        text = f"{self.method.upper()} of " + (f"run {self.run}" if self.run else Path(self.path).name)
        if self.rank is not None:
            text += f" to rank {self.rank}"
        if self.rel_error is not None:
            text += f" to relative error {self.rel_error:g}"
        return text
