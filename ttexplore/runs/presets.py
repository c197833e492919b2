"""Named networks for ``ttexplore train --preset NAME`` (and the Explore page). Pure Python.

* ``paper``: Novikov et al.'s MNIST net, ``[pad 28->32] -> TT 4x8x8x4 (r=4) -> ReLU -> 10``.
* ``wide``: their wide-and-shallow idea, a hidden layer too big to exist densely:
  ``1024 -> TT -> 262 144 (2^18) -> ReLU -> TT -> 1024 -> ReLU -> 10`` on MNIST-5k. Its dense
  twin has 2 x 1024 x 262 144 = 536 870 912 weights (2 GiB in float32, about 8 GiB with
  gradients and Adam's two moments); the TT layers have 6 656 at rank 4.
* ``convnet``: a dense CNN, ``conv 32 -> pool -> conv 64 -> pool -> conv 128 -> pool -> FC 256 -> 10``
  (3x3 kernels, ReLUs, max pools of 2), images unpadded: 390 410 parameters on 28x28 images.
* ``tt-convnet``: the same net with its convolutions after the first (``ttconv``: 32 = 2x4x4 -> 4x4x4,
  64 = 4x4x4 -> 4x4x8) and its hidden FC layer (``tt``) in TT format at rank 4 (:func:`tt_convnet_layers`):
  5 282 parameters on 28x28 images, the whole network 73.9x smaller than ``convnet`` (the first
  convolution, the biases and the 2 570-parameter head stay dense: 3 338 of the 5 282; the TT
  layers hold 484 + 676 + 784).

The two CNNs size themselves for the dataset's images (28x28 here, 32x32 for CIFAR-10, 8x8 for the
digits): the convolutions keep the side, each pool halves it, and the FC layer reads what is left
(``128 x 3 x 3 = 1 152`` features on 28x28); images smaller than 8x8 are refused with that reason.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.data_info import DATASETS, dataset_info
from ttexplore.runs.fields import pad_value
from ttexplore.runs.kinds import parse_layers
from ttexplore.runs.ttnet import tt_network

__all__ = ["RUN_PRESETS", "run_preset", "preset_values", "convnet_layers", "tt_convnet_layers", "CNN_POOLS",
           "TT_CONVNET_RANK"]

#: Max pools of 2 in the preset CNNs: the images must be at least ``2 ** CNN_POOLS`` pixels a side.
CNN_POOLS = 3

#: The TT ranks of the ``tt-convnet`` preset.
TT_CONVNET_RANK = 4


def _cnn_side(side: int, name: str) -> int:
    """The side left after the preset CNNs' pools, or a ConfigError when the images are too small."""
    if side < 2 ** CNN_POOLS:
        raise ConfigError("dataset", f"the {name} preset pools {CNN_POOLS} times: it needs images of at least "
                                     f"{2 ** CNN_POOLS}x{2 ** CNN_POOLS} pixels, these are {side}x{side}: pad them "
                                     f"(--pad-to {2 ** CNN_POOLS}) or choose another dataset")
    return side // 2 ** CNN_POOLS


def convnet_layers(side: int) -> list[str]:
    """The dense CNN for ``side x side`` images: ``conv 32 -> pool -> conv 64 -> pool -> conv 128 -> pool -> FC 256``."""
    _cnn_side(side, "convnet")
    return ["conv:32:3", "pool:2", "conv:64:3", "pool:2", "conv:128:3", "pool:2", "dense:256"]


def tt_convnet_layers(side: int, rank: int = TT_CONVNET_RANK) -> list[str]:
    """:func:`convnet_layers` with the second and third convolutions and the FC layer in TT format at ``rank``
    (:func:`ttexplore.runs.ttnet.tt_network`): ``ttconv:2x4x4->4x4x4``, ``ttconv:4x4x4->4x4x8`` and, for the FC
    layer reading ``128 x s x s`` features (``s = side // 8``), ``tt:8x4x4x<s*s>->4x4x4x4`` (``8x4x4x9`` on
    28x28; the 128 features as ``4x4x4x2`` when ``s = 1``).
    """
    dense = parse_layers(convnet_layers(side))
    return [layer.text() for layer in tt_network(dense, (1, side, side), rank)]


#: The settings the preset CNNs train with (Adam at 1e-3, batches of 128, one evaluation an epoch).
_CNN_TRAINING = {"lr": 1e-3, "batch_size": 128, "epochs": 5, "evals_per_epoch": 1, "pad_to": None}

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
    "convnet": {
        "description": "a dense CNN: conv 32 -> pool -> conv 64 -> pool -> conv 128 -> pool -> FC 256 -> 10 (3x3 "
                       "kernels, max pools of 2, images unpadded), sized for the dataset's images",
        "values": {"dataset": "mnist5k", **_CNN_TRAINING},
        "layers_for": convnet_layers,
    },
    "tt-convnet": {
        "description": "convnet with its 2nd and 3rd convolutions (ttconv 2x4x4->4x4x4, 4x4x4->4x4x8) and its FC "
                       "layer (tt) in TT format at rank 4: the whole net 74x smaller on 28x28 images",
        "values": {"dataset": "mnist5k", **_CNN_TRAINING},
        "layers_for": tt_convnet_layers,
    },
}


def preset_values(name: str, dataset: Optional[str] = None, pad_to: Any = "preset") -> dict[str, Any]:
    """The :class:`RunConfig` fields of preset ``name``; a preset that sizes itself (the CNNs) gets its layers
    for the images of ``dataset`` (default: the preset's) padded to ``pad_to`` (default: the preset's).

    Raises:
        ConfigError: field ``"preset"`` for an unknown name, listing the known ones; ``"dataset"`` for
            images too small for the preset.
    """
    if name not in RUN_PRESETS:
        raise ConfigError("preset", f"preset {name!r} is unknown: choose one of {', '.join(RUN_PRESETS)}")
    values = dict(RUN_PRESETS[name]["values"])
    layers_for: Optional[Callable[[int], list[str]]] = RUN_PRESETS[name].get("layers_for")
    if layers_for is not None:
        dataset = dataset or values["dataset"]
        if dataset not in DATASETS:
            raise ConfigError("dataset", f"dataset {dataset!r} is unknown: choose one of {', '.join(DATASETS)}")
        side = pad_value(values.get("pad_to") if pad_to == "preset" else pad_to) or dataset_info(dataset).side
        values["layers"] = layers_for(side)
    return values


def run_preset(name: str, **overrides: Any) -> RunConfig:
    """The validated config of preset ``name`` with some fields changed (its layers sized for the ``dataset``
    and ``pad_to`` given)."""
    values = {**preset_values(name, overrides.get("dataset"), overrides.get("pad_to", "preset")), **overrides}
    return RunConfig.for_dataset(values.pop("dataset"), **values)
