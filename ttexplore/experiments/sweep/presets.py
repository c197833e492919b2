"""Named sweeps: the grids of the 2018 reproduction, ready to run with ``--preset``.

In 2018 a student team (Skoltech, team 28) reproduced Novikov et al. 2015,
"Tensorizing Neural Networks", on MNIST and CIFAR-10; ``repro2018-mnist`` and
``repro2018-cifar10`` are their grids. The names they first had here,
``seed-mnist`` and ``seed-cifar10``, still work (:data:`PRESET_ALIASES`) and give the same
sweep, named after the preset: a sweep recorded under a former name resumes with
``--name seed-mnist``.
"""

from __future__ import annotations

from typing import Any

from ttexplore.experiments.sweep.spec import SweepSpec, make_spec
from ttexplore.runs.config import ConfigError

__all__ = ["PRESETS", "PRESET_ALIASES", "preset_name", "preset_spec"]

#: The 2018 reproduction's experiments. ``repro2018-cifar10``'s shapes were read off slides 15 and 16:
#: the x position of each point (weights, log scale) matches these shapes at ranks 1-4.
PRESETS: dict[str, dict[str, Any]] = {
    "repro2018-mnist": {
        "description": "MNIST padded to 32x32, TT 1024 -> 1024 in six shapes, max TT rank 1-4, + dense and matrix-rank "
                       "baselines (slides 13-14 of the 2018 reproduction); on the bundled MNIST-5k unless --dataset "
                       "says otherwise",
        "datasets": ("mnist5k",),
        "shapes": "32x32, 4x8x8x4, 4x4x4x4x4, 2x2x8x8x2x2, 2x4x4x4x4x2, 2^10",
        "ranks": (1, 2, 3, 4),
        "pad_to": 32,
        "epochs": 20,
    },
    "repro2018-cifar10": {
        "description": "CIFAR-10 raw pixels (3072 inputs), one TT layer, max TT rank 1-4: hidden layers of other sizes "
                       "(slide 15 of the 2018 reproduction) and of the input's size (slide 16), + baselines",
        "datasets": ("cifar10",),
        "shapes": ("8x8x8x3x2->10^5, 2x4x8x8x6->10^5, 4x4x4x8x6->10^5, 8x8x8x6->10^4, 32x16x6->100x10x10, "
                   "8x8x8x6, 8x8x8x3x2, 2x4x8x8x6, 4x4x4x8x6, 64x8x6"),
        "ranks": (1, 2, 3, 4),
        "pad_to": None,
        "epochs": 5,  # ~70 core-minutes per epoch of the whole grid: a job for a Ray cluster (see RESULTS.md)
    },
}


#: Former preset names, still accepted: ``alias: preset``.
PRESET_ALIASES: dict[str, str] = {"seed-mnist": "repro2018-mnist", "seed-cifar10": "repro2018-cifar10"}


def preset_name(name: str) -> str:
    """The preset ``name`` stands for: itself, or the preset an alias names.

    Raises:
        ConfigError: field ``"preset"`` for an unknown name.
    """
    if name in PRESETS:
        return name
    if name in PRESET_ALIASES:
        return PRESET_ALIASES[name]
    raise ConfigError("preset", f"preset {name!r} is unknown: choose one of {', '.join(PRESETS)}")


def preset_spec(preset: str, **overrides: Any) -> SweepSpec:
    """The :class:`SweepSpec` of a preset or an alias of one, named after the preset, with fields
    overridden (``None`` values are ignored).

    Raises:
        ConfigError: field ``"preset"`` for an unknown name.
    """
    preset = preset_name(preset)
    values = {key: value for key, value in PRESETS[preset].items() if key != "description"}
    values["name"] = preset
    values.update({key: value for key, value in overrides.items() if value is not None})
    return make_spec(**values)
