"""One validated, JSON-serialisable description of an experiment: :class:`RunConfig`.

The pages, the CLI, the sweeps and the run store all speak it; it is validated once, when it is
made (every message names the field and the fix), and its network is always a list of layer
kinds (:mod:`ttexplore.runs.kinds`). Older forms (the one-layer fields, ``hidden_layers``) are read
by :meth:`RunConfig.from_dict` and keep their keys (:mod:`ttexplore.runs.migrate`). Pure Python.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Optional

from ttexplore.tt.devicenames import DEFAULT_DEVICE, check_device_name
from ttexplore.tt.errors import ConfigError
from ttexplore.tt.init import INITS
from ttexplore.costmodel import STRATEGIES
from ttexplore.runs.data_info import DATASETS, dataset_info
from ttexplore.tt.limits import MAX_BITS
from ttexplore.tt.shapes import default_modes, padded_image_side
from ttexplore.runs.fields import is_huge, modes_value, pad_value, ranks_value, real_field, short_repr, whole_field
from ttexplore.runs.kinds import (MAX_HIDDEN_LAYERS, LayerSpec, Place, Shape, TTLayerSpec, check_layers, features_of,
                                  kind_named, layer_shapes, parse_layer, parse_layers)
from ttexplore.runs.layerspec import InitFrom
from ttexplore.runs.schedule import RoundSchedule
from ttexplore.runs.migrate import (ONE_LAYER_DEFAULTS, ONE_LAYER_FIELDS, check_legacy_fields, freeze_fields, legacy_key_values,
                                    one_layer_kinds, one_layer_values, read_one_layer, read_stacked, thaw_fields)

__all__ = ["ConfigError", "RunConfig", "OPTIMIZERS", "INITS", "STRATEGIES", "MAX_SEED", "MAX_VAL_SPLIT", "ONE_LAYER_FIELDS",
           "one_layer_kinds"]

OPTIMIZERS = ("adam", "sgd")

#: The largest seed: :func:`~ttexplore.runs.fit.fit` also seeds a generator with ``seed + 1``,
#: and both must fit torch's generator and a signed 64-bit integer (the run store, JSON readers).
MAX_SEED = 2**63 - 2

#: Field kinds :meth:`RunConfig.from_dict` converts and :meth:`RunConfig.validate` checks.
_INT_FIELDS = ("epochs", "batch_size", "seed", "evals_per_epoch", "train_limit", "early_stop")
_FLOAT_FIELDS = ("lr", "momentum", "weight_decay", "val_split")
_CHOICE_FIELDS = ("dataset", "optimizer", "init", "strategy")
#: One-layer fields read as whole numbers (the others are modes and ranks).
_ONE_LAYER_INTS = ("hidden", "matrix_rank")

#: The longest label (free text shown with the run).
MAX_LABEL = 500

_FLOAT_EXAMPLES = {"lr": "3e-3", "momentum": "0.9", "weight_decay": "1e-4", "val_split": "0.1"}

#: Fields left out of :meth:`RunConfig.to_dict` (so out of the stored JSON and of :meth:`RunConfig.key`) at
#: their defaults: every run stored before they existed keeps its key.
_OMITTED_AT_DEFAULT = {"val_split": 0.0, "early_stop": None}

#: The largest share of the training images a validation split may hold out.
MAX_VAL_SPLIT = 0.5


@dataclass(frozen=True)
class RunConfig:
    """A training run: data, network and optimisation, fully described, validated when made.

    The network is ``[pad] -> L_1 -> ReLU -> ... -> L_k -> ReLU -> Linear(classes)``, each ``L_i`` a
    layer kind (:mod:`ttexplore.runs.kinds`); the paper's net is one TT layer (the default).

    Attributes:
        dataset: a name in :data:`ttexplore.runs.data_info.DATASETS`.
        pad_to: image side after zero padding (32 turns MNIST's 28x28 into
            32x32 = 1024 as in the paper); ``None`` keeps the images as they are.
        layers: the hidden layers, first to last (:class:`~ttexplore.runs.kinds.LayerSpec` values;
            text forms and dicts are read when the config is made), at most
            :data:`~ttexplore.runs.kinds.MAX_HIDDEN_LAYERS`.
        epochs, batch_size, lr, optimizer, momentum, weight_decay, seed: optimisation.
        init: weight init of the hidden layers (std of each whole ``W``).
        strategy: TT forward strategy (``"auto"`` picks the cheapest).
        evals_per_epoch: metric events per epoch (train and test loss/accuracy).
        train_limit: use only the first ``train_limit`` training images (quick runs).
        val_split: the share of the training images (after ``train_limit``) held out as a validation
            set, stratified by class and drawn from the seed (:mod:`ttexplore.runs.validation`); 0 (the
            default) holds none out. In ``[0, 0.5]``; the held-out set has at least one image per class.
        early_stop: stop after this many epochs without a lower validation loss (needs ``val_split``);
            ``None`` (the default) trains every epoch. Like ``val_split``, left out of the key at its default.
        label: free text shown with the run.
        device: where it trains: ``"auto"`` (the first CUDA device when there is
            one, else the CPU), ``"cpu"``, ``"cuda"``/``"cuda:N"`` or ``"mps"``.
            Like ``label`` it is not part of :meth:`key`. Configs stored without it load as ``"auto"``.
        init_from: the trained weights the run starts from (:class:`~ttexplore.runs.layerspec.InitFrom`:
            each hidden layer by TT-SVD of the source's), ``None`` for a random init. A run with
            ``init_from`` may have 0 epochs: it only evaluates its first weights.
        round_to: the rank schedule (:class:`~ttexplore.runs.schedule.RoundSchedule`, text ``"4@5,2@10"``):
            after each of its epochs every TT layer is rounded to a lower rank (or relative error) and
            training goes on; ``None`` (the default, left out of :meth:`to_dict` and :meth:`key`) keeps
            the ranks for the whole run.
        legacy_fields: one-layer fields of a run stored before ``layers`` that its layer does not
            use (a dense layer's ``in_modes``), kept only so that :meth:`key` stays the hash it was
            stored under (:mod:`ttexplore.runs.migrate`); empty for every config made from layers.
    """

    dataset: str = "mnist5k"
    pad_to: Optional[int] = 32
    layers: tuple[LayerSpec, ...] = (TTLayerSpec(),)
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
    val_split: float = 0.0
    early_stop: Optional[int] = None
    label: str = ""
    device: str = DEFAULT_DEVICE
    init_from: Optional[InitFrom] = None
    round_to: Optional[RoundSchedule] = None
    legacy_fields: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        """Read ``layers`` given as text or dicts and ``init_from`` given as a dict, then :meth:`validate`."""
        if not (isinstance(self.layers, tuple) and self.layers and all(isinstance(layer, LayerSpec) for layer in self.layers)):
            object.__setattr__(self, "layers", parse_layers(self.layers))
        if isinstance(self.init_from, dict):
            object.__setattr__(self, "init_from", InitFrom.of(self.init_from))
        if isinstance(self.legacy_fields, dict):
            object.__setattr__(self, "legacy_fields", freeze_fields(self.legacy_fields))
        if not isinstance(self.round_to, RoundSchedule):
            object.__setattr__(self, "round_to", RoundSchedule.of(self.round_to))
        self.validate()

    # ------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        """Build from plain values (strings like ``"4x8x8x4"`` are parsed), in any form a run was stored
        in: ``layers`` (a list of text forms or dicts), ``hidden_layers``, or the one-layer fields
        (``layer``, ``in_modes``, ``out_modes``, ``ranks``, ``hidden``, ``matrix_rank``; also none of
        them: the paper's TT layer). Messages name the fields as given.

        Raises:
            ConfigError: for an unknown key or any invalid value.
        """
        return cls._read(values, stored=True)

    @classmethod
    def _read(cls, values: dict[str, Any], stored: bool) -> "RunConfig":
        """:meth:`from_dict`; a config read as ``stored`` keeps the one-layer values its layer does not use
        (``legacy_fields``, for its key), a new one (:meth:`for_dataset`) is made from its layers alone."""
        if not isinstance(values, dict):
            raise ConfigError("config", f"a run config is a dict of settings, not {short_repr(values)}")
        known = {field.name for field in dataclasses.fields(cls)} | set(ONE_LAYER_FIELDS) | {"hidden_layers"}
        unknown = sorted(set(values) - known, key=str)
        if unknown:
            raise ConfigError(str(unknown[0]), f"unknown setting {short_repr(unknown[0])}: known settings are "
                                               f"{', '.join(sorted(known))}")
        cleaned = dict(values)
        for name in ("in_modes", "out_modes"):
            if name in cleaned:
                cleaned[name] = modes_value(cleaned[name], name)
        if "ranks" in cleaned:
            cleaned["ranks"] = ranks_value(cleaned["ranks"])
        if "pad_to" in cleaned:
            cleaned["pad_to"] = pad_value(cleaned["pad_to"])
        for name in _INT_FIELDS + _ONE_LAYER_INTS:
            if cleaned.get(name) is not None:
                cleaned[name] = whole_field(name, cleaned[name])
        for name in _FLOAT_FIELDS:
            if cleaned.get(name) is not None:
                cleaned[name] = real_field(name, cleaned[name])
        dataset, pad_to = cleaned.get("dataset", cls.dataset), cleaned.get("pad_to", cls.pad_to)
        _check_data(dataset, pad_to)
        in_shape, input_text = _input_shape(dataset, pad_to), _input_text(dataset, pad_to)
        given = {name: cleaned.pop(name) for name in ONE_LAYER_FIELDS if name in cleaned}
        form = "layers" if "layers" in cleaned else "hidden_layers" if "hidden_layers" in cleaned else "one layer"
        if form == "layers":
            mixed = sorted(given) + (["hidden_layers"] if "hidden_layers" in cleaned else [])
            if mixed:
                raise ConfigError(mixed[0], f"{mixed[0]} is given beside layers: describe the network by layers only")
            cleaned["layers"] = parse_layers(cleaned["layers"], "layers", input_text)
            if isinstance(cleaned.get("legacy_fields"), dict):
                cleaned["legacy_fields"] = freeze_fields(cleaned["legacy_fields"])
        elif "legacy_fields" in cleaned:
            raise ConfigError("legacy_fields", "legacy_fields come only with layers: leave them out")
        elif form == "hidden_layers":
            cleaned["layers"], cleaned["legacy_fields"] = read_stacked(cleaned.pop("hidden_layers"), given, input_text)
        else:
            layer, cleaned["legacy_fields"] = read_one_layer(given, features_of(in_shape), input_text)
            cleaned["layers"] = (layer,)
        if not stored:
            cleaned["legacy_fields"] = ()
        if cleaned.get("init_from") is not None:
            cleaned["init_from"] = InitFrom.of(cleaned["init_from"])
        try:
            return cls(**cleaned)
        except ConfigError as error:
            raise _padding_fix(_as_typed(error, form, cleaned["layers"], in_shape, input_text), cleaned["layers"],
                               dataset, pad_to) from None

    @classmethod
    def for_dataset(cls, dataset: str, **values: Any) -> "RunConfig":
        """A new config for ``dataset`` with sensible defaults for what is not given (``values`` as
        :meth:`from_dict` reads them: ``layers``, or the one-layer fields the CLI's flags give, which
        become its one layer: values that layer does not use, a dense layer's ``ranks``, are dropped).

        Defaults: 28-pixel images are padded to 32 (as the paper did) for a network whose first layer
        is fully connected, kept as they are for one that starts with a convolution (a CNN), others kept; without
        ``layers``, one TT layer whose ``in_modes`` are the most balanced 4-mode factorization
        of the input features (fewer modes when 4 do not fit), ``out_modes`` equal to them.
        """

        if not isinstance(dataset, str) or dataset not in DATASETS:
            raise ConfigError("dataset", f"dataset {short_repr(dataset)} is unknown: choose one of {', '.join(DATASETS)}")
        info = dataset_info(dataset)
        values = {key: value for key, value in values.items() if value is not None or key in ("ranks", "pad_to")}
        values.setdefault("pad_to", 32 if info.side == 28 and not _reads_images(values) else None)
        pad_to = values["pad_to"] = pad_value(values["pad_to"])
        _check_data(dataset, pad_to)
        features = features_of(_input_shape(dataset, pad_to))
        if values.get("hidden_layers") is not None or values.get("layers") is not None:
            pass  # the layers say it all
        elif "in_modes" in values or _reads_modes(values.get("layer", ONE_LAYER_DEFAULTS["layer"])):
            if values.get("in_modes") is None:
                values["in_modes"] = default_modes(features)
            if values.get("out_modes") is None and values.get("hidden") is None:
                values["out_modes"] = values["in_modes"]
        else:
            values.setdefault("in_modes", None)
            values.setdefault("out_modes", None)
        return cls._read({"dataset": dataset, **values}, stored=False)

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with some fields changed (values read as in :meth:`from_dict`). New ``layers`` replace the
        network; so does ``hidden_layers``; a one-layer field (``ranks=2``) changes a one-layer network."""
        values = self.to_dict()
        one_layer = sorted(set(changes) & set(ONE_LAYER_FIELDS))
        if "layers" in changes or "hidden_layers" in changes or one_layer:
            values.pop("legacy_fields", None)
            values.pop("layers")
        if one_layer and "hidden_layers" not in changes and "layers" not in changes:
            if len(self.layers) != 1 or not self.layers[0].one_layer_form:
                raise ConfigError(one_layer[0], f"{one_layer[0]} describes a network of one hidden layer, this one has "
                                                f"{len(self.layers)}: change layers instead")
            values.update(one_layer_values(self.layers[0], thaw_fields(self.legacy_fields)))
        return RunConfig.from_dict({**values, **changes})

    def with_ranks(self, ranks: Any) -> "RunConfig":
        """The same network with every layer that has ranks at ``ranks`` (a sweep's or a schedule's step)."""
        return self.replace(layers=[layer.with_ranks(ranks) for layer in self.layers])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: ``layers`` as a list of layer dicts; ``init_from``, ``round_to`` (its text
        form) and ``legacy_fields`` only when set."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "layers":
                values["layers"] = [layer.to_dict() for layer in value]
            elif field.name == "init_from":
                if value is not None:
                    values["init_from"] = value.to_dict()
            elif field.name == "legacy_fields":
                if value:
                    values["legacy_fields"] = thaw_fields(value)
            elif field.name == "round_to":
                if value is not None:
                    values["round_to"] = value.text()
            elif field.name in _OMITTED_AT_DEFAULT:
                if value != _OMITTED_AT_DEFAULT[field.name]:
                    values[field.name] = value
            else:
                values[field.name] = value
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def key(self) -> str:
        """A stable hash of everything that changes the result (the label and the device excluded,
        so a run keeps its key, and resumes, on any device). A network the older forms could describe
        is hashed in that form (:func:`~ttexplore.runs.migrate.legacy_key_values`), so every run stored
        before ``layers`` keeps its key; fields added later are hashed only away from their defaults."""
        return _digest(self._key_values())

    def group_key(self) -> str:
        """The key of the run's seed group: :meth:`key` computed without the seed (and, like it, without
        the label and the device). Runs that differ only by their seed share it (repeats of one
        experiment: their spread is the seed noise); any other difference gives another group."""
        values = self._key_values()
        values.pop("seed")
        return _digest(values)

    def _key_values(self) -> dict[str, Any]:
        """What :meth:`key` hashes: :meth:`to_dict` without the label and the device, the network in its
        oldest form that can describe it."""
        values = self.to_dict()
        values.pop("label", None)
        values.pop("device", None)
        layers = values.pop("layers")
        network = legacy_key_values(self.layers, values.pop("legacy_fields", {}))
        values.update(network if network is not None else {"layers": layers})
        return values

    # ------------------------------------------------------------ derived sizes
    @property
    def image_side(self) -> int:
        """Image side after padding."""
        return self.pad_to if self.pad_to is not None else dataset_info(self.dataset).side

    @property
    def input_shape(self) -> Shape:
        """The shape of one image after padding: ``(channels, side, side)``."""
        return _input_shape(self.dataset, self.pad_to)

    @property
    def in_features(self) -> int:
        """Features of one image after padding: channels x side x side."""
        return features_of(self.input_shape)

    @property
    def layer_shapes(self) -> list[Shape]:
        """Activation shapes through the network: the input's, then each hidden layer's output."""
        return layer_shapes(self.layers, self.input_shape)

    @property
    def hidden_features(self) -> int:
        """Width of the last hidden layer's output, the one the classifier reads."""
        return features_of(self.layer_shapes[-1])

    @property
    def num_classes(self) -> int:
        return dataset_info(self.dataset).classes

    @property
    def layer_widths(self) -> list[int]:
        """Features from the input to the classes: ``[1024, 262144, 1024, 10]`` for two hidden layers."""
        return [features_of(shape) for shape in self.layer_shapes] + [self.num_classes]

    def layer_params(self) -> int:
        """Weights of the hidden layers (no bias), summed: what the 2018 reproduction's figures put on the x axis."""
        shapes = self.layer_shapes
        return sum(layer.params(shapes[index]) for index, layer in enumerate(self.layers))

    def dense_layer_params(self) -> int:
        """Weights of the dense twins of the hidden layers, summed."""
        shapes = self.layer_shapes
        return sum(layer.dense_params(shapes[index]) for index, layer in enumerate(self.layers))

    def compression(self) -> float:
        """Hidden-layer weights / dense hidden-layer weights."""
        return self.layer_params() / self.dense_layer_params()

    def head_params(self) -> int:
        """Weights and biases of the classifier ``Linear(hidden_features, classes)``."""
        return (self.hidden_features + 1) * self.num_classes

    def net_params(self) -> int:
        """Every parameter of the network: each hidden layer's weights and bias, and the head's (what
        ``sum(p.numel() for p in model.parameters())`` counts; the x axis of the CNN figures)."""
        shapes = self.layer_shapes
        return sum(layer.params(shapes[index]) + layer.bias_params(shapes[index])
                   for index, layer in enumerate(self.layers)) + self.head_params()

    def dense_net_params(self) -> int:
        """:meth:`net_params` of the dense twin (every layer with its full weights; biases and head the same)."""
        shapes = self.layer_shapes
        return sum(layer.dense_params(shapes[index]) + layer.bias_params(shapes[index])
                   for index, layer in enumerate(self.layers)) + self.head_params()

    def shape_label(self) -> str:
        """The network as every figure's legend writes it: one layer's shape (``"4x8x8x4"``,
        ``"4x7x4x7->5x5x8x4"``) or kind (``"dense"``); for several each one's part, joined by ``" | "``
        (``"4^5->8x16x16x16x8 | dense 1024"``)."""
        if len(self.layers) == 1:
            return self.layers[0].shape_label()
        return " | ".join(layer.part_label() for layer in self.layers)

    def network_text(self) -> str:
        """The network in a few words: one layer with its sizes (``"TT 4x8x8x4 r=4"``, ``"dense 1024->1024"``),
        or each layer's label (``"TT 4^5->8x16x16x16x8 r=4 -> dense 1024"``)."""
        if len(self.layers) == 1:
            return self.layers[0].describe(self.input_shape)
        return " -> ".join(layer.label() for layer in self.layers)

    def describe(self) -> str:
        """A one-line summary, e.g. ``"TT 4x8x8x4 r=4 on mnist5k"``."""
        start = f" from {self.init_from.describe()}" if self.init_from is not None else ""
        schedule = f", {self.round_to.describe()}" if self.round_to is not None else ""
        return f"{self.network_text()}{start}{schedule} on {self.dataset}"

    def dense_twin(self) -> "RunConfig":
        """The same network with every hidden layer dense (the baseline of the same sizes, never rounded)."""
        return self.replace(layers=[layer.dense_twin() for layer in self.layers], init_from=None, round_to=None)

    # ------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every field; raise :class:`ConfigError` naming the first bad one and the fix. Runs
        when the config is made (there is no need to call it again).

        Types first (whole numbers are ints, not bools or 4.5; rates are finite), then
        sizes against the limits every search and estimate here is bounded by, then ranges;
        no message computes anything unbounded from a bad value.
        """
        for name in _CHOICE_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise ConfigError(name, f"{name} {short_repr(getattr(self, name))} must be a name (text)")
        for name in _INT_FIELDS + ("pad_to",):
            value = getattr(self, name)
            if is_huge(value):
                raise ConfigError(name, f"{name} is far too large (more than {MAX_BITS} bits)")
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
        _check_data(self.dataset, self.pad_to)
        if len(self.layers) > MAX_HIDDEN_LAYERS:
            raise ConfigError("layers", f"layers has {len(self.layers)} layers: use at most {MAX_HIDDEN_LAYERS}")
        try:
            check_layers(self.layers, self.input_shape, "layers", _input_text(self.dataset, self.pad_to))
        except ConfigError as error:
            raise _padding_fix(error, self.layers, self.dataset, self.pad_to) from None
        check_legacy_fields(self.legacy_fields, self.layers)
        if self.init_from is not None:
            if not isinstance(self.init_from, InitFrom):
                raise ConfigError("init_from", "init_from must be an InitFrom (path, sha256, ...)")
            self.init_from.check()
        info = dataset_info(self.dataset)
        _check_range("epochs", self.epochs, 0 if self.init_from is not None else 1, 10_000,
                     "e.g. 5; 0, evaluating the first weights only, needs init_from")
        if self.round_to is not None:
            if not isinstance(self.round_to, RoundSchedule):
                raise ConfigError("round_to", "round_to must be a RoundSchedule (or its text, e.g. 4@5,2@10)")
            self.round_to.check(self.layers, self.input_shape, self.epochs)
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
        _check_validation(self.val_split, self.early_stop, self.train_limit or info.train_size, info.classes)


# ---------------------------------------------------------------- helpers
def _reads_images(values: dict[str, Any]) -> bool:
    """Whether the network ``values`` describe (``layers`` or ``hidden_layers``) starts with a layer that reads
    images (a convolution): such a net keeps 28x28 images unpadded. A first layer that does not read
    is left to the validation that follows."""
    layers = values.get("layers", values.get("hidden_layers"))
    if isinstance(layers, str):
        layers = [part for part in layers.split(";") if part.strip()]
    if isinstance(layers, (LayerSpec, dict)):
        layers = [layers]
    try:
        first = list(layers)[0] if layers is not None else None
        return first is not None and not parse_layer(first).flattens
    except (ConfigError, TypeError, IndexError):
        return False


def _reads_modes(name: Any) -> bool:
    """Whether the one-layer kind called ``name`` takes ``in_modes`` (a TT layer does; a baseline does not)."""
    try:
        return "in_modes" in kind_named(name).reads
    except ConfigError:
        return False


def _check_data(dataset: Any, pad_to: Any) -> None:
    """The dataset is known and ``pad_to`` fits its images (checked before the layers, which need the input)."""
    if not isinstance(dataset, str):
        raise ConfigError("dataset", f"dataset {short_repr(dataset)} must be a name (text)")
    if dataset not in DATASETS:
        raise ConfigError("dataset", f"dataset {dataset!r} is unknown: choose one of {', '.join(DATASETS)}")
    if is_huge(pad_to):
        raise ConfigError("pad_to", f"pad_to is far too large (more than {MAX_BITS} bits)")
    if pad_to is not None and (isinstance(pad_to, bool) or not isinstance(pad_to, int)):
        raise ConfigError("pad_to", f"pad_to {short_repr(pad_to)} must be a whole number")
    side = dataset_info(dataset).side
    if pad_to is not None and pad_to < side:
        raise ConfigError("pad_to", f"pad_to {pad_to} is smaller than the {side}x{side} images: use {side} or more, or no padding")
    if pad_to is not None and pad_to > 4 * side:
        raise ConfigError("pad_to", f"pad_to {pad_to} is more than 4x the {side}-pixel image side: use at most {4 * side}")


def _input_shape(dataset: str, pad_to: Optional[int]) -> Shape:
    info = dataset_info(dataset)
    side = pad_to if pad_to is not None else info.side
    return (info.channels, side, side)


def _input_text(dataset: str, pad_to: Optional[int]) -> str:
    """How messages name the input: ``"the input (1x32x32 after padding)"``."""
    if pad_to is None:
        return "the input"
    return f"the input ({dataset_info(dataset).channels}x{pad_to}x{pad_to} after padding)"


def _as_typed(error: ConfigError, form: str, layers: tuple[LayerSpec, ...], in_shape: Shape,
              input_text: str) -> ConfigError:
    """A layer's error named as the user gave the network: ``hidden_layers[1].ranks``, or ``ranks`` for
    the one-layer fields (the layer's check run again with that :class:`Place`, only on this error path)."""
    if form == "layers" or not error.field.startswith("layers["):
        return error
    index = int(error.field[len("layers["):error.field.index("]")])
    place = (Place(index, f"hidden_layers[{index}]", input_text=input_text) if form == "hidden_layers"
             else Place(0, "", renames=(("width", "hidden"),), input_text=input_text))
    try:
        layers[index].check(layer_shapes(layers[:index], in_shape)[-1], place)
    except ConfigError as typed:
        return typed
    return error


_PADDING_FIX = "set the padding (pad_to) to"


def _padding_fix(error: ConfigError, layers: tuple[LayerSpec, ...], dataset: str, pad_to: Optional[int]) -> ConfigError:
    """``error`` about the first layer's input, when the layers fit the dataset's images under its other padding
    (none, or the next power of two): the fix is then the padding, said first (``"... set the padding (pad_to) to none (no
    padding), or keep 32x32 padding and try 4x8x8x4"``); any other error as it is.

    Complexity: one check of the layers per other padding (two at most)."""
    if not error.field.startswith(("layers[0]", "hidden_layers[0]", "in_modes")) or _PADDING_FIX in str(error):
        return error
    side = dataset_info(dataset).side
    for other in (None, padded_image_side(side)):
        if other == pad_to or other == side:
            continue
        try:
            check_layers(layers, _input_shape(dataset, other))
        except (ConfigError, ValueError):
            continue
        message = str(error).strip("'\"")
        first, _, hint = message.rpartition(": try ")
        what = "none (no padding)" if other is None else f"{other} ({other}x{other})"
        keep = f"keep {pad_to}x{pad_to} padding and " if pad_to is not None else "keep no padding and "
        return ConfigError(error.field, f"{first or message}: {_PADDING_FIX} {what}, where they fit" +
                           (f", or {keep}try {hint}" if first else ""))
    return error


def _digest(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def _check_validation(val_split: float, early_stop: Optional[int], train_images: int, classes: int) -> None:
    """``val_split`` in ``[0, 0.5]`` holding out at least one image per class of the ``train_images`` used;
    ``early_stop`` a positive number of epochs, and only with a validation split to stop on."""
    if not (0 <= val_split <= MAX_VAL_SPLIT):
        raise ConfigError("val_split", f"val_split {val_split} must be between 0 and {MAX_VAL_SPLIT} (the share of the "
                                       "training images held out for validation), e.g. 0.1; 0 holds none out")
    held_out = math.floor(train_images * val_split)
    if val_split > 0 and held_out < classes:
        raise ConfigError("val_split", f"val_split {val_split:g} holds out {held_out} of the {train_images:,} training "
                                       f"images: a validation set needs at least one image per class ({classes}): "
                                       f"use at least {math.ceil(1e4 * classes / train_images) / 1e4:g}")
    if early_stop is not None:
        _check_range("early_stop", early_stop, 1, 10_000, "epochs without a lower validation loss before stopping, "
                                                          "e.g. 3; leave it out to train every epoch")
        if val_split == 0:
            raise ConfigError("early_stop", "early_stop stops on the validation loss, and this run holds no validation "
                                            "set out: set val_split too (e.g. 0.1)")


def _check_range(name: str, value: int, low: int, high: int, hint: str) -> None:
    if not (low <= value <= high):
        raise ConfigError(name, f"{name} {value} must be between {low} and {high} ({hint})")
