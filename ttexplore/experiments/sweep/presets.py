"""Named sweeps: the grids of the seed's experiments, ready to run with ``--preset``."""

from __future__ import annotations

from typing import Any

from ttexplore.experiments.sweep.spec import SweepSpec, make_spec
from ttexplore.runs.config import ConfigError

__all__ = ["PRESETS", "preset_spec"]

#: The seed's experiments. ``seed-cifar10``'s shapes were read off slides 15 and 16:
#: the x position of each point (weights, log scale) matches these shapes at ranks 1-4.
PRESETS: dict[str, dict[str, Any]] = {
    "seed-mnist": {
        "description": "MNIST padded to 32x32, TT 1024 -> 1024 in six shapes, max TT rank 1-4, + dense and matrix-rank "
                       "baselines (slides 13-14); on the bundled MNIST-5k unless --dataset says otherwise",
        "datasets": ("mnist5k",),
        "shapes": "32x32, 4x8x8x4, 4x4x4x4x4, 2x2x8x8x2x2, 2x4x4x4x4x2, 2^10",
        "ranks": (1, 2, 3, 4),
        "pad_to": 32,
        "epochs": 20,
    },
    "seed-cifar10": {
        "description": "CIFAR-10 raw pixels (3072 inputs), one TT layer, max TT rank 1-4: hidden layers of other sizes "
                       "(slide 15) and of the input's size (slide 16), + baselines",
        "datasets": ("cifar10",),
        "shapes": ("8x8x8x3x2->10^5, 2x4x8x8x6->10^5, 4x4x4x8x6->10^5, 8x8x8x6->10^4, 32x16x6->100x10x10, "
                   "8x8x8x6, 8x8x8x3x2, 2x4x8x8x6, 4x4x4x8x6, 64x8x6"),
        "ranks": (1, 2, 3, 4),
        "pad_to": None,
        "epochs": 5,  # ~70 core-minutes per epoch of the whole grid: a job for a Ray cluster (see RESULTS.md)
    },
}


def preset_spec(preset: str, **overrides: Any) -> SweepSpec:
    """The :class:`SweepSpec` of a preset, with fields overridden (``None`` values are ignored).

    Raises:
        ConfigError: field ``"preset"`` for an unknown name.
    """
    if preset not in PRESETS:
        raise ConfigError("preset", f"preset {preset!r} is unknown: choose one of {', '.join(PRESETS)}")
    values = {key: value for key, value in PRESETS[preset].items() if key != "description"}
    values["name"] = preset
    values.update({key: value for key, value in overrides.items() if value is not None})
    return make_spec(**values)

