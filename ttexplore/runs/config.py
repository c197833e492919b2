"""One validated, JSON-serialisable description of an experiment: :class:`RunConfig`.

The pages, the CLI, the sweeps and the run store all speak it; validation lives
here, once, and every message names the field and the fix. Pure Python.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Optional, Union

from ttexplore.tt import ttmath
from ttexplore.tt.devicenames import DEFAULT_DEVICE, check_device_name
from ttexplore.tt.errors import ConfigError
from ttexplore.tt.init import INITS
from ttexplore.costmodel import STRATEGIES
from ttexplore.runs.data_info import DATASETS, dataset_info
from ttexplore.tt.shapes import (MAX_BITS, MAX_FEATURES, MAX_MODES, balanced_factorization, check_layer_side, default_modes,
                                   has_factorization, parse_modes, whole_number)
from ttexplore.tt.ttshape import TTShape, layer_text, modes_text
from ttexplore.runs.layerspec import LAYER_KINDS, InitFrom, LayerSpec, check_layers, parse_layers
from ttexplore.runs.fields import is_huge, modes_value, pad_value, ranks_value, real_field, short_repr, whole_field

__all__ = ["ConfigError", "RunConfig", "LAYER_KINDS", "OPTIMIZERS", "INITS", "MAX_SEED", "NETWORK_FIELDS"]

OPTIMIZERS = ("adam", "sgd")

#: The one-layer fields: a network of one hidden layer, as every run stored before
#: ``hidden_layers`` describes it. With ``hidden_layers`` they mirror its first layer.
NETWORK_FIELDS = ("layer", "in_modes", "out_modes", "ranks", "hidden", "matrix_rank")


#: The largest seed: :func:`~ttexplore.runs.fit.fit` also seeds a generator with ``seed + 1``,
#: and both must fit torch's generator and a signed 64-bit integer (the run store, JSON readers).
MAX_SEED = 2**63 - 2

#: Field kinds :meth:`RunConfig.from_dict` converts and :meth:`RunConfig.validate` checks.
_INT_FIELDS = ("epochs", "batch_size", "seed", "matrix_rank", "evals_per_epoch", "hidden", "train_limit")
_FLOAT_FIELDS = ("lr", "momentum", "weight_decay")
_CHOICE_FIELDS = ("dataset", "layer", "optimizer", "init", "strategy")

#: The longest label (free text shown with the run).
MAX_LABEL = 500




@dataclass(frozen=True)
class RunConfig:
    """A training run: data, network and optimisation, fully described.

    The network is the paper's: ``[pad] -> flatten -> hidden layer -> ReLU ->
    Linear(hidden, classes)``, where the hidden layer is a TT layer (``layer="tt"``)
    or one of the two baselines of the same sizes, a dense layer (``"dense"``) or
    a matrix-rank layer ``N x r`` then ``r x M`` (``"matrix_rank"``).

    Attributes:
        dataset: a name in :data:`ttexplore.runs.data_info.DATASETS`.
        pad_to: image side after zero padding (32 turns MNIST's 28x28 into
            32x32 = 1024 as in the paper); ``None`` keeps the images as they are.
        layer: ``"tt"``, ``"dense"`` or ``"matrix_rank"``.
        in_modes: TT input modes, multiplying to the (padded) input features.
        out_modes: TT output modes, multiplying to the hidden size.
        ranks: max TT rank (int), one rank per core boundary, or ``None`` (maximal).
        hidden: hidden size for the baselines when ``out_modes`` is not given.
        matrix_rank: the rank ``r`` of the matrix-rank baseline.
        epochs, batch_size, lr, optimizer, momentum, weight_decay, seed: optimisation.
        init: weight init of the hidden layer (std of the whole ``W``).
        strategy: TT forward strategy (``"auto"`` picks the cheapest).
        evals_per_epoch: metric events per epoch (train and test loss/accuracy).
        train_limit: use only the first ``train_limit`` training images (quick runs).
        label: free text shown with the run.
        device: where it trains: ``"auto"`` (the first CUDA device when there is
            one, else the CPU), ``"cpu"``, ``"cuda"``/``"cuda:N"`` or ``"mps"``.
            Like ``label`` it is not part of :meth:`key`: the result does not
            depend on it beyond rounding. Configs stored without it load as ``"auto"``.
        hidden_layers: two or more hidden layers (:class:`~ttexplore.runs.layerspec.LayerSpec`),
            each followed by a ReLU; ``None`` (the default) is the one layer the fields above
            describe, and :attr:`layers` reads either form. With it, the one-layer fields
            mirror its first layer.
        init_from: the trained weights the run starts from (:class:`~ttexplore.runs.layerspec.InitFrom`:
            each hidden layer by TT-SVD of the source's), ``None`` for a random init. A run with
            ``init_from`` may have 0 epochs: it only evaluates its first weights.
    """

    dataset: str = "mnist5k"
    pad_to: Optional[int] = 32
    layer: str = "tt"
    in_modes: Optional[tuple[int, ...]] = (4, 8, 8, 4)
    out_modes: Optional[tuple[int, ...]] = (4, 8, 8, 4)
    ranks: Union[int, tuple[int, ...], None] = 4
    hidden: Optional[int] = None
    matrix_rank: int = 4
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    init: str = "glorot"
    strategy: str = "auto"
    evals_per_epoch: int = 4
    train_limit: Optional[int] = None
    label: str = ""
    device: str = DEFAULT_DEVICE
    hidden_layers: Optional[tuple[LayerSpec, ...]] = None
    init_from: Optional[InitFrom] = None

    # ------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        """Build and validate from plain values (strings like ``"4x8x8x4"`` are parsed).

        Raises:
            ConfigError: for an unknown key or any invalid value.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown setting {unknown[0]!r}: known settings are {', '.join(sorted(known))}")
        cleaned = dict(values)
        for name in ("in_modes", "out_modes"):
            if name in cleaned:
                cleaned[name] = modes_value(cleaned[name], name)
        if "ranks" in cleaned:
            cleaned["ranks"] = ranks_value(cleaned["ranks"])
        if "pad_to" in cleaned:
            cleaned["pad_to"] = pad_value(cleaned["pad_to"])
        for name in _INT_FIELDS:
            if cleaned.get(name) is not None:
                cleaned[name] = whole_field(name, cleaned[name])
        for name in _FLOAT_FIELDS:
            if cleaned.get(name) is not None:
                cleaned[name] = real_field(name, cleaned[name])
        if cleaned.get("hidden_layers") is not None:
            cleaned = _fold_layers(cleaned, values)
        if cleaned.get("init_from") is not None:
            cleaned["init_from"] = InitFrom.of(cleaned["init_from"])
        config = cls(**cleaned)
        config.validate()
        return config

    @classmethod
    def for_dataset(cls, dataset: str, **values: Any) -> "RunConfig":
        """A validated config for ``dataset`` with sensible defaults for what is not given.

        Defaults: 28-pixel images are padded to 32 (as the paper did), others kept;
        ``in_modes`` is the most balanced 4-mode factorization of the input features
        (fewer modes when 4 do not fit); ``out_modes`` equals ``in_modes``.
        """
        if not isinstance(dataset, str) or dataset not in DATASETS:
            raise ConfigError("dataset", f"dataset {short_repr(dataset)} is unknown: choose one of {', '.join(DATASETS)}")
        info = dataset_info(dataset)
        values = {key: value for key, value in values.items() if value is not None or key in ("ranks", "pad_to")}
        values.setdefault("pad_to", 32 if info.side == 28 else None)
        pad_to = values["pad_to"] = pad_value(values["pad_to"])
        _check_pad(info, pad_to)
        features = info.channels * (pad_to or info.side) ** 2
        if values.get("hidden_layers") is not None:
            pass  # the layers say it all
        elif values.get("layer", "tt") == "tt" or "in_modes" in values:
            if values.get("in_modes") is None:
                values["in_modes"] = default_modes(features)
            if values.get("out_modes") is None and values.get("hidden") is None:
                values["out_modes"] = values["in_modes"]
        else:
            values.setdefault("in_modes", None)
            values.setdefault("out_modes", None)
        return cls.from_dict({"dataset": dataset, **values})

    def replace(self, **changes: Any) -> "RunConfig":
        """A validated copy with some fields changed (values parsed as in :meth:`from_dict`)."""
        values = self.to_dict()
        if "hidden_layers" in changes:  # new layers: the old ones' mirror must not contradict them
            values = {key: value for key, value in values.items() if key not in NETWORK_FIELDS}
        return RunConfig.from_dict({**values, **changes})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists). ``hidden_layers`` and ``init_from`` appear
        only when set, so a one-layer config reads (and hashes, :meth:`key`) as it always did."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("in_modes", "out_modes", "ranks"):
            if isinstance(values[name], tuple):
                values[name] = list(values[name])
        for name in ("hidden_layers", "init_from"):
            if values[name] is None:
                del values[name]
        if self.hidden_layers is not None:
            values["hidden_layers"] = [layer.to_dict() for layer in self.hidden_layers]
        if self.init_from is not None:
            values["init_from"] = self.init_from.to_dict()
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def key(self) -> str:
        """A stable hash of everything that changes the result (the label and the device excluded,
        so a run keeps its key, and resumes, on any device)."""
        values = self.to_dict()
        values.pop("label", None)
        values.pop("device", None)
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]

    # ------------------------------------------------------------ derived sizes
    @property
    def image_side(self) -> int:
        """Image side after padding."""
        return self.pad_to if self.pad_to is not None else dataset_info(self.dataset).side

    @property
    def in_features(self) -> int:
        """Features entering the hidden layer: channels x side x side after padding."""
        return dataset_info(self.dataset).channels * self.image_side**2

    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        """The hidden layers, first to last: :attr:`hidden_layers`, or the one the one-layer fields describe."""
        if self.hidden_layers is not None:
            return self.hidden_layers
        if self.layer == "tt":
            return (LayerSpec("tt", self.in_modes, self.out_modes, self.ranks),)
        width = ttmath.prod(self.out_modes) if self.out_modes is not None else (self.hidden or self.in_features)
        return (LayerSpec(self.layer, None, None, 4, width, self.matrix_rank if self.layer == "matrix_rank" else 4),)

    @property
    def hidden_features(self) -> int:
        """Width of the (last) hidden layer, the one the classifier reads: ``prod(out_modes)``, or ``hidden``."""
        if self.hidden_layers is not None:
            return self.hidden_layers[-1].out_features
        if self.out_modes is not None:
            return ttmath.prod(self.out_modes)
        if self.hidden is not None:
            return self.hidden
        return self.in_features

    @property
    def num_classes(self) -> int:
        return dataset_info(self.dataset).classes

    @property
    def layer_widths(self) -> list[int]:
        """Features from the input to the classes: ``[1024, 262144, 1024, 10]`` for two hidden layers."""
        return [self.in_features] + [layer.out_features for layer in self.layers] + [self.num_classes]

    def layer_params(self) -> int:
        """Weights of the hidden layers (no bias), summed: what the 2018 reproduction's figures put on the x axis."""
        widths = self.layer_widths
        return sum(layer.params(widths[index]) for index, layer in enumerate(self.layers))

    def dense_layer_params(self) -> int:
        """Weights of the dense hidden layers of the same widths, summed."""
        widths = self.layer_widths
        return sum(layer.dense_params(widths[index]) for index, layer in enumerate(self.layers))

    def compression(self) -> float:
        """Hidden-layer weights / dense hidden-layer weights."""
        return self.layer_params() / self.dense_layer_params()

    def tt_shape(self) -> Optional[TTShape]:
        """The first hidden layer's :class:`~ttexplore.tt.ttshape.TTShape` (ranks as used, clipped),
        ``None`` when it is a baseline."""
        if self.layer != "tt":
            return None
        return TTShape.of(self.in_modes, self.out_modes, self.ranks)

    def shape_label(self) -> str:
        """The shape as every figure's legend writes it (``"4x8x8x4"``, ``"4x7x4x7->5x5x8x4"``), or the layer
        kind; for several layers each one's, joined by ``" | "`` (``"4^5->8x16x16x16x8 | dense 1024"``)."""
        if self.hidden_layers is not None:
            return " | ".join(layer_text(spec.in_modes, spec.out_modes) if spec.kind == "tt" else spec.label()
                              for spec in self.hidden_layers)
        if self.layer == "tt":
            return layer_text(self.in_modes, self.out_modes)
        if self.layer == "matrix_rank":
            return "matrix rank"
        return "dense"

    def describe(self) -> str:
        """A one-line summary, e.g. ``"TT 4x8x8x4 r=4 on mnist5k"``."""
        if self.hidden_layers is not None:
            body = " -> ".join(layer.label() for layer in self.hidden_layers)
        elif self.layer == "tt":
            body = f"TT {self.tt_shape()}"
        elif self.layer == "matrix_rank":
            body = f"matrix-rank r={self.matrix_rank} {self.in_features}->{self.hidden_features}"
        else:
            body = f"dense {self.in_features}->{self.hidden_features}"
        start = f" from {self.init_from.describe()}" if self.init_from is not None else ""
        return f"{body}{start} on {self.dataset}"

    def dense_twin(self) -> "RunConfig":
        """The same network with every hidden layer dense (the baseline of the same sizes)."""
        if self.hidden_layers is None:
            return self.replace(layer="dense", init_from=None)
        return self.replace(hidden_layers=[layer.dense_twin() for layer in self.hidden_layers], init_from=None)

    # ------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every field; raise :class:`ConfigError` naming the first bad one and the fix.

        Types first (whole numbers are ints, not bools or 4.5; rates are finite), then
        sizes against the limits every search and estimate here is bounded by
        (:data:`~ttexplore.tt.shapes.MAX_FEATURES`, :data:`~ttexplore.tt.shapes.MAX_MODES`),
        then ranges; no message computes anything unbounded from a bad value.
        """
        for name in _CHOICE_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise ConfigError(name, f"{name} {short_repr(getattr(self, name))} must be a name (text)")
        if self.dataset not in DATASETS:
            raise ConfigError("dataset", f"dataset {self.dataset!r} is unknown: choose one of {', '.join(DATASETS)}")
        for name in _INT_FIELDS + ("pad_to", "in_modes", "out_modes", "ranks"):
            if is_huge(getattr(self, name)):
                raise ConfigError(name, f"{name} is far too large (more than {MAX_BITS} bits)")
        for name in _INT_FIELDS + ("pad_to",):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(name, f"{name} {short_repr(value)} must be a whole number")
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(name, f"{name} {short_repr(value)} must be a number")
            if not math.isfinite(value):
                raise ConfigError(name, f"{name} is {value}: it must be a finite number, e.g. {_FLOAT_EXAMPLES[name]}")
        if not isinstance(self.label, str):
            raise ConfigError("label", f"label {short_repr(self.label)} must be text")
        if len(self.label) > MAX_LABEL:
            raise ConfigError("label", f"label has {len(self.label)} characters: keep it to {MAX_LABEL}")
        info = dataset_info(self.dataset)
        _check_pad(info, self.pad_to)
        if self.layer not in LAYER_KINDS:
            raise ConfigError("layer", f"layer {self.layer!r} is unknown: use one of {', '.join(LAYER_KINDS)}")
        for name in ("in_modes", "out_modes"):
            modes = getattr(self, name)
            if modes is None:
                continue
            if not isinstance(modes, tuple) or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in modes):
                raise ConfigError(name, f"{name} {short_repr(modes)} must be positive whole numbers, e.g. 4x8x8x4")
            if not modes:
                raise ConfigError(name, f"{name} is empty: give the modes, e.g. 4x8x8x4")
            try:
                check_layer_side(modes, name)
            except ValueError as error:
                raise ConfigError(name, str(error)) from None
        if self.hidden is not None and not 1 <= self.hidden <= MAX_FEATURES:
            raise ConfigError("hidden", f"hidden {self.hidden:,} must be between 1 and {MAX_FEATURES:,} (2^40)")
        if self.hidden_layers is not None or self.init_from is not None:  # before the mirrored one-layer fields
            _check_layers_and_start(self)
        features = self.in_features
        if self.layer == "tt":
            if self.in_modes is None:
                raise ConfigError("in_modes", f"in_modes is missing: a TT layer needs input modes multiplying to {features}, e.g. {_examples(features)}")
            if self.out_modes is None:
                raise ConfigError("out_modes", "out_modes is missing: a TT layer needs output modes, e.g. 4x8x8x4")
        if self.in_modes is not None and ttmath.prod(self.in_modes) != features:
            padding = f" ({info.channels}x{self.image_side}x{self.image_side} after padding)" if self.pad_to else ""
            raise ConfigError(
                "in_modes",
                f"in_modes {modes_text(self.in_modes)} multiply to {ttmath.prod(self.in_modes)}, but the input has "
                f"{features} features{padding}: try {_examples(features, len(self.in_modes))}",
            )
        if self.in_modes is not None and self.out_modes is not None and len(self.in_modes) != len(self.out_modes):
            raise ConfigError(
                "out_modes",
                f"out_modes {modes_text(self.out_modes)} has {len(self.out_modes)} modes but in_modes "
                f"{modes_text(self.in_modes)} has {len(self.in_modes)}: give both the same number, e.g. "
                f"{modes_text(balanced_factorization(ttmath.prod(self.out_modes), len(self.in_modes)))}",
            )
        if self.hidden is not None and self.out_modes is not None and self.hidden != ttmath.prod(self.out_modes):
            raise ConfigError("hidden", f"hidden {self.hidden} disagrees with out_modes {modes_text(self.out_modes)} (= {ttmath.prod(self.out_modes)}): leave hidden empty")
        if self.ranks is not None:
            ranks = self.ranks if isinstance(self.ranks, tuple) else (self.ranks,)
            if not isinstance(self.ranks, (int, tuple)) or any(isinstance(r, bool) or not isinstance(r, int) for r in ranks):
                raise ConfigError("ranks", f"ranks {short_repr(self.ranks)} must be a whole number, one per core boundary, or None (max)")
            if any(r > MAX_FEATURES for r in ranks):
                raise ConfigError("ranks", f"ranks {short_repr(self.ranks)} has a rank above {MAX_FEATURES:,} (2^40): ranks above "
                                           f"the maximal useful ones are clipped anyway, use 'max'")
        if self.layer == "tt":
            try:
                ttmath.plan_ranks(self.in_modes, self.out_modes, self.ranks)
            except ValueError as error:
                raise ConfigError("ranks", str(error)) from None
        if not 1 <= self.matrix_rank <= MAX_FEATURES:
            raise ConfigError("matrix_rank", f"matrix_rank {self.matrix_rank:,} must be between 1 and {MAX_FEATURES:,} (2^40), e.g. 4")
        _check_range("epochs", self.epochs, 0 if self.init_from is not None else 1, 10_000,
                     "e.g. 5; 0, evaluating the first weights only, needs init_from")
        _check_range("batch_size", self.batch_size, 1, 65_536, "e.g. 64")
        if not (0 < self.lr <= 10):
            raise ConfigError("lr", f"lr {self.lr} must be positive and at most 10; 1e-3 is a good start for Adam")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError("optimizer", f"optimizer {self.optimizer!r} is unknown: use one of {', '.join(OPTIMIZERS)}")
        if not (0 <= self.momentum < 1):
            raise ConfigError("momentum", f"momentum {self.momentum} must be in [0, 1), e.g. 0.9")
        if not (0 <= self.weight_decay <= 1):
            raise ConfigError("weight_decay", f"weight_decay {self.weight_decay} must be between 0 and 1, e.g. 1e-4")
        if not (0 <= self.seed <= MAX_SEED):
            raise ConfigError("seed", f"seed {self.seed} must be between 0 and {MAX_SEED} (2^63 - 2: the run also uses "
                                      f"seed + 1, and both must fit a 64-bit integer), e.g. 0")
        if self.init not in INITS:
            raise ConfigError("init", f"init {self.init!r} is unknown: use one of {', '.join(INITS)}")
        if self.strategy not in STRATEGIES:
            raise ConfigError("strategy", f"strategy {self.strategy!r} is unknown: use one of {', '.join(STRATEGIES)}")
        try:
            check_device_name(self.device)
        except ValueError as error:
            raise ConfigError("device", str(error)) from None
        _check_range("evals_per_epoch", self.evals_per_epoch, 1, 100, "e.g. 4")
        if self.train_limit is not None:
            _check_range("train_limit", self.train_limit, 1, info.train_size, f"at most the {info.train_size} training images")


def _mirror(layer: LayerSpec) -> dict[str, Any]:
    """The one-layer fields that describe ``layer``."""
    if layer.kind == "tt":
        return {"layer": "tt", "in_modes": layer.in_modes, "out_modes": layer.out_modes, "ranks": layer.ranks,
                "hidden": None, "matrix_rank": 4}
    return {"layer": layer.kind, "in_modes": None, "out_modes": None, "ranks": 4, "hidden": layer.width,
            "matrix_rank": layer.matrix_rank}


def _fold_layers(cleaned: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``hidden_layers`` parsed, the one-layer fields set to mirror its first layer (a one-layer list
    becomes the one-layer fields alone, so its :meth:`RunConfig.key` is that of the one-layer form).

    Raises:
        ConfigError: for a bad layer, or a one-layer field given that contradicts ``hidden_layers[0]``.
    """
    layers = parse_layers(cleaned["hidden_layers"])
    mirror = _mirror(layers[0])
    for name in NETWORK_FIELDS:
        if name in given and cleaned[name] != mirror[name]:
            shown = modes_text(cleaned[name]) if isinstance(cleaned[name], tuple) else repr(cleaned[name])
            raise ConfigError(name, f"{name} {shown} disagrees with hidden_layers[0] ({layers[0].text()}): "
                                    f"describe the network either by hidden_layers or by {', '.join(NETWORK_FIELDS)}, "
                                    "not both")
    return {**cleaned, **mirror, "hidden_layers": layers if len(layers) > 1 else None}


def _check_layers_and_start(config: RunConfig) -> None:
    """The checks of ``hidden_layers`` (each layer against the one before, and the one-layer
    fields mirroring the first) and of ``init_from``."""
    if config.hidden_layers is not None:
        if not config.hidden_layers or not all(isinstance(layer, LayerSpec) for layer in config.hidden_layers):
            raise ConfigError("hidden_layers", "hidden_layers must be a list of layers (LayerSpec), e.g. "
                                               "['tt:4x8x8x4:4', 'dense:256']")
        mirror = _mirror(config.hidden_layers[0])
        for name in NETWORK_FIELDS:
            if getattr(config, name) != mirror[name]:
                raise ConfigError(name, f"{name} {getattr(config, name)!r} disagrees with hidden_layers[0] "
                                        f"({config.hidden_layers[0].text()}): build the config with RunConfig.from_dict")
        check_layers(config.hidden_layers, config.in_features)
    if config.init_from is not None:
        if not isinstance(config.init_from, InitFrom):
            raise ConfigError("init_from", "init_from must be an InitFrom (path, sha256, ...)")
        config.init_from.check()


_FLOAT_EXAMPLES = {"lr": "3e-3", "momentum": "0.9", "weight_decay": "1e-4"}


def _check_pad(info: Any, pad_to: Optional[int]) -> None:
    if pad_to is not None and pad_to < info.side:
        raise ConfigError("pad_to", f"pad_to {pad_to} is smaller than the {info.side}x{info.side} images: use {info.side} or more, or no padding")
    if pad_to is not None and pad_to > 4 * info.side:
        raise ConfigError("pad_to", f"pad_to {pad_to} is more than 4x the {info.side}-pixel image side: use at most {4 * info.side}")


def _check_range(name: str, value: int, low: int, high: int, hint: str) -> None:
    if not (low <= value <= high):
        raise ConfigError(name, f"{name} {value} must be between {low} and {high} ({hint})")


def _examples(features: int, d: Optional[int] = None) -> str:
    """Two shapes that fit ``features``: a balanced one with ``d`` modes and a 2-mode one."""
    options = []
    for depth in ([d] if d and 1 <= d <= MAX_MODES else []) + [4, 2]:
        if has_factorization(features, depth, min_mode=2):
            text = modes_text(balanced_factorization(features, depth))
            if text not in options:
                options.append(text)
    return " or ".join(options[:2]) if options else str(features)
