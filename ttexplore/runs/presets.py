"""Named networks for ``ttexplore train --preset NAME`` (and the Explore page). Pure Python.

* ``paper``: Novikov et al.'s MNIST net, ``[pad 28->32] -> TT 4x8x8x4 (r=4) -> ReLU -> 10``.
* ``wide``: their wide-and-shallow idea, a hidden layer too big to exist densely:
  ``1024 -> TT -> 262 144 (2^18) -> ReLU -> TT -> 1024 -> ReLU -> 10`` on MNIST-5k. Its dense
  twin has 2 x 1024 x 262 144 = 536 870 912 weights (2 GiB in float32, about 8 GiB with
  gradients and Adam's two moments); the TT layers have 6 656 at rank 4.
"""

from __future__ import annotations

from typing import Any

from ttexplore.runs.config import ConfigError, RunConfig

__all__ = ["RUN_PRESETS", "run_preset", "preset_values"]

#: ``name: {"description": ..., "values": RunConfig fields}``.
RUN_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "description": "Novikov et al.'s MNIST net: pad 28->32, TT 1024->1024 as 4x8x8x4 at rank 4, ReLU, 10 classes",
        "values": {"dataset": "mnist5k", "pad_to": 32, "layer": "tt", "in_modes": "4x8x8x4", "out_modes": "4x8x8x4",
                   "ranks": 4},
    },
    "wide": {
        "description": "wide and shallow (Novikov et al. 2015): 1024 -> TT -> 262,144 (2^18) hidden units -> ReLU -> "
                       "TT -> 1024 -> ReLU -> 10 on MNIST-5k; 6,656 TT weights where the dense layers would have "
                       "536,870,912 (2 GiB)",
        "values": {"dataset": "mnist5k", "pad_to": 32,
                   "hidden_layers": ["tt:4^5->8x16x16x16x8:4", "tt:8x16x16x16x8->4^5:4"],
                   "epochs": 3, "evals_per_epoch": 1},
    },
}


def preset_values(name: str) -> dict[str, Any]:
    """The :class:`RunConfig` fields of preset ``name``.

    Raises:
        ConfigError: field ``"preset"`` for an unknown name, listing the known ones.
    """
    if name not in RUN_PRESETS:
        raise ConfigError("preset", f"preset {name!r} is unknown: choose one of {', '.join(RUN_PRESETS)}")
    return dict(RUN_PRESETS[name]["values"])


def run_preset(name: str, **overrides: Any) -> RunConfig:
    """The validated config of preset ``name`` with some fields changed."""
    values = {**preset_values(name), **overrides}
    return RunConfig.for_dataset(values.pop("dataset"), **values)
