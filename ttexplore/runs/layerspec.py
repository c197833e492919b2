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

#: How an :class:`InitFrom` turns the source's layers into the run's: a TT layer by TT-SVD of the
#: source layer's dense weight, a matrix-rank layer by its truncated SVD, a dense layer by a copy.
INIT_METHODS = ("tt-svd",)


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
    """

    path: str
    sha256: str
    run: Optional[str] = None
    weight_key: Optional[str] = None
    method: str = "tt-svd"

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
        unknown = sorted(set(value) - {"path", "sha256", "run", "weight_key", "method"})
        if unknown:
            raise _error(f"init_from.{unknown[0]}", f"init_from has an unknown setting {unknown[0]!r}: it has "
                                                    "path, sha256, run, weight_key and method")
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

    def to_dict(self) -> dict[str, Any]:
        values = {"path": self.path, "sha256": self.sha256, "run": self.run, "weight_key": self.weight_key,
                  "method": self.method}
        return {key: value for key, value in values.items() if value is not None}

    def describe(self) -> str:
        """``"TT-SVD of run 2024...-ab12cd"`` or ``"TT-SVD of weights.pt"``."""
        return f"{self.method.upper()} of " + (f"run {self.run}" if self.run else Path(self.path).name)
