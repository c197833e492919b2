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

from ttexplore.core import ttmath
from ttexplore.core.errors import ConfigError
from ttexplore.core.init import INITS
from ttexplore.costmodel import STRATEGIES
from ttexplore.runs.data_info import DATASETS, dataset_info
from ttexplore.core.shapes import (MAX_BITS, MAX_FEATURES, MAX_MODES, balanced_factorization, check_layer_side, has_factorization,
                                   parse_modes, whole_number)
from ttexplore.core.ttshape import TTShape, layer_text, modes_text

__all__ = ["ConfigError", "RunConfig", "LAYER_KINDS", "OPTIMIZERS", "INITS", "MAX_SEED"]

LAYER_KINDS = ("tt", "dense", "matrix_rank")
OPTIMIZERS = ("adam", "sgd")


def _modes_or_none(value: Any, name: str) -> Optional[tuple[int, ...]]:
    if value is None or value == "" or value == []:
        return None
    try:
        return parse_modes(value, name)
    except ValueError as error:
        raise ConfigError(name, str(error)) from None


def _ranks_value(value: Any) -> Union[int, tuple[int, ...], None]:
    if value is None or value == "" or (isinstance(value, str) and value.strip().lower() in ("max", "none", "full")):
        return None
    hint = "write one number (4), one per core boundary (2,4,2), or 'max'"
    if isinstance(value, bool):
        raise ConfigError("ranks", f"ranks must be a whole number (e.g. 4), a list like 2,4,2, or 'max', not {value!r}")
    if isinstance(value, (int, float)):
        return _whole("ranks", value, hint)
    if isinstance(value, str):
        parts = [part for part in value.replace("x", ",").replace(" ", ",").split(",") if part]
        if not parts or not all(part.strip().isdigit() and part.strip().isascii() for part in parts):
            raise ConfigError("ranks", f"ranks {_short(value)} is not understood: {hint}")
        numbers = tuple(_whole("ranks", part, hint) for part in parts)
        return numbers[0] if len(numbers) == 1 else numbers
    try:
        items = list(value)
    except TypeError:
        raise ConfigError("ranks", f"ranks {_short(value)} is not understood: {hint}") from None
    if len(items) > MAX_MODES:
        raise ConfigError("ranks", f"ranks has {len(items)} entries, but a layer has at most {MAX_MODES - 1} internal ranks "
                                   f"({MAX_MODES} modes): {hint}")
    return tuple(_whole("ranks", item, hint) for item in items)


def _short(value: Any) -> str:
    """``repr(value)`` cut to 60 characters (safe for ints too long for ``repr``)."""
    try:
        text = repr(value)
    except ValueError:
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= 60 else text[:57] + "..."


def _huge(value: Any) -> bool:
    """An int (or an int in a tuple) too long for messages and arithmetic."""
    items = value if isinstance(value, tuple) else (value,)
    return any(isinstance(item, int) and item.bit_length() > MAX_BITS for item in items)


def _whole(name: str, value: Any, hint: str = "") -> int:
    """``value`` as an int, or a :class:`ConfigError` naming ``name`` (4.5, True, 'abc' are refused, not truncated)."""
    try:
        return whole_number(value, name)
    except ValueError as error:
        raise ConfigError(name, f"{error}{'; ' + hint if hint else ''}") from None


def _real(name: str, value: Any) -> float:
    """``value`` as a float, or a :class:`ConfigError` naming ``name`` (True and 'abc' are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(name, f"{name} {_short(value)} is not a number")
    try:
        return float(value)
    except (ValueError, OverflowError):
        raise ConfigError(name, f"{name} {_short(value)} is not a number") from None


def _pad_value(value: Any) -> Optional[int]:
    """``pad_to`` as typed: ``None``/``""``/``"none"``/0 mean no padding; else a whole image side."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    side = _whole("pad_to", value, "give an image side such as 32, or 'none' to keep the images")
    return side or None


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
                cleaned[name] = _modes_or_none(cleaned[name], name)
        if "ranks" in cleaned:
            cleaned["ranks"] = _ranks_value(cleaned["ranks"])
        if "pad_to" in cleaned:
            cleaned["pad_to"] = _pad_value(cleaned["pad_to"])
        for name in _INT_FIELDS:
            if cleaned.get(name) is not None:
                cleaned[name] = _whole(name, cleaned[name])
        for name in _FLOAT_FIELDS:
            if cleaned.get(name) is not None:
                cleaned[name] = _real(name, cleaned[name])
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
            raise ConfigError("dataset", f"dataset {_short(dataset)} is unknown: choose one of {', '.join(DATASETS)}")
        info = dataset_info(dataset)
        values = {key: value for key, value in values.items() if value is not None or key in ("ranks", "pad_to")}
        values.setdefault("pad_to", 32 if info.side == 28 else None)
        pad_to = values["pad_to"] = _pad_value(values["pad_to"])
        _check_pad(info, pad_to)
        features = info.channels * (pad_to or info.side) ** 2
        if values.get("layer", "tt") == "tt" or "in_modes" in values:
            if values.get("in_modes") is None:
                depth = next((d for d in (4, 3, 2) if has_factorization(features, d, min_mode=2)), 1)
                values["in_modes"] = balanced_factorization(features, depth) if depth > 1 else (features,)
            if values.get("out_modes") is None and values.get("hidden") is None:
                values["out_modes"] = values["in_modes"]
        else:
            values.setdefault("in_modes", None)
            values.setdefault("out_modes", None)
        return cls.from_dict({"dataset": dataset, **values})

    def replace(self, **changes: Any) -> "RunConfig":
        """A validated copy with some fields changed (values parsed as in :meth:`from_dict`)."""
        return RunConfig.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists)."""
        values = dataclasses.asdict(self)
        for name in ("in_modes", "out_modes", "ranks"):
            if isinstance(values[name], tuple):
                values[name] = list(values[name])
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def key(self) -> str:
        """A stable hash of everything that changes the result (the label excluded)."""
        values = self.to_dict()
        values.pop("label", None)
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
    def hidden_features(self) -> int:
        """Width of the hidden layer (``prod(out_modes)``, or ``hidden``)."""
        if self.out_modes is not None:
            return ttmath.prod(self.out_modes)
        if self.hidden is not None:
            return self.hidden
        return self.in_features

    @property
    def num_classes(self) -> int:
        return dataset_info(self.dataset).classes

    def layer_params(self) -> int:
        """Weights of the hidden layer (no bias): what the 2018 reproduction's figures put on the x axis."""
        if self.layer == "tt":
            return ttmath.param_count(self.in_modes, self.out_modes, self.ranks)
        if self.layer == "matrix_rank":
            return ttmath.matrix_rank_param_count(self.in_features, self.hidden_features, self.matrix_rank)
        return ttmath.dense_param_count(self.in_features, self.hidden_features)

    def compression(self) -> float:
        """Hidden-layer weights / dense hidden-layer weights."""
        return self.layer_params() / ttmath.dense_param_count(self.in_features, self.hidden_features)

    def tt_shape(self) -> Optional[TTShape]:
        """The TT layer's :class:`~ttexplore.core.ttshape.TTShape` (ranks as used, clipped), ``None`` for the baselines."""
        if self.layer != "tt":
            return None
        return TTShape.of(self.in_modes, self.out_modes, self.ranks)

    def shape_label(self) -> str:
        """The shape as every figure's legend writes it (``"4x8x8x4"``, ``"4x7x4x7->5x5x8x4"``), or the layer kind."""
        if self.layer == "tt":
            return layer_text(self.in_modes, self.out_modes)
        if self.layer == "matrix_rank":
            return "matrix rank"
        return "dense"

    def describe(self) -> str:
        """A one-line summary, e.g. ``"TT 4x8x8x4 r=4 on mnist5k"``."""
        if self.layer == "tt":
            body = f"TT {self.tt_shape()}"
        elif self.layer == "matrix_rank":
            body = f"matrix-rank r={self.matrix_rank} {self.in_features}->{self.hidden_features}"
        else:
            body = f"dense {self.in_features}->{self.hidden_features}"
        return f"{body} on {self.dataset}"

    # ------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every field; raise :class:`ConfigError` naming the first bad one and the fix.

        Types first (whole numbers are ints, not bools or 4.5; rates are finite), then
        sizes against the limits every search and estimate here is bounded by
        (:data:`~ttexplore.core.shapes.MAX_FEATURES`, :data:`~ttexplore.core.shapes.MAX_MODES`),
        then ranges; no message computes anything unbounded from a bad value.
        """
        for name in _CHOICE_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise ConfigError(name, f"{name} {_short(getattr(self, name))} must be a name (text)")
        if self.dataset not in DATASETS:
            raise ConfigError("dataset", f"dataset {self.dataset!r} is unknown: choose one of {', '.join(DATASETS)}")
        for name in _INT_FIELDS + ("pad_to", "in_modes", "out_modes", "ranks"):
            if _huge(getattr(self, name)):
                raise ConfigError(name, f"{name} is far too large (more than {MAX_BITS} bits)")
        for name in _INT_FIELDS + ("pad_to",):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(name, f"{name} {_short(value)} must be a whole number")
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(name, f"{name} {_short(value)} must be a number")
            if not math.isfinite(value):
                raise ConfigError(name, f"{name} is {value}: it must be a finite number, e.g. {_FLOAT_EXAMPLES[name]}")
        if not isinstance(self.label, str):
            raise ConfigError("label", f"label {_short(self.label)} must be text")
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
                raise ConfigError(name, f"{name} {_short(modes)} must be positive whole numbers, e.g. 4x8x8x4")
            if not modes:
                raise ConfigError(name, f"{name} is empty: give the modes, e.g. 4x8x8x4")
            try:
                check_layer_side(modes, name)
            except ValueError as error:
                raise ConfigError(name, str(error)) from None
        if self.hidden is not None and not 1 <= self.hidden <= MAX_FEATURES:
            raise ConfigError("hidden", f"hidden {self.hidden:,} must be between 1 and {MAX_FEATURES:,} (2^40)")
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
                raise ConfigError("ranks", f"ranks {_short(self.ranks)} must be a whole number, one per core boundary, or None (max)")
            if any(r > MAX_FEATURES for r in ranks):
                raise ConfigError("ranks", f"ranks {_short(self.ranks)} has a rank above {MAX_FEATURES:,} (2^40): ranks above "
                                           f"the maximal useful ones are clipped anyway, use 'max'")
        if self.layer == "tt":
            try:
                ttmath.plan_ranks(self.in_modes, self.out_modes, self.ranks)
            except ValueError as error:
                raise ConfigError("ranks", str(error)) from None
        if not 1 <= self.matrix_rank <= MAX_FEATURES:
            raise ConfigError("matrix_rank", f"matrix_rank {self.matrix_rank:,} must be between 1 and {MAX_FEATURES:,} (2^40), e.g. 4")
        _check_range("epochs", self.epochs, 1, 10_000, "e.g. 5")
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
        _check_range("evals_per_epoch", self.evals_per_epoch, 1, 100, "e.g. 4")
        if self.train_limit is not None:
            _check_range("train_limit", self.train_limit, 1, info.train_size, f"at most the {info.train_size} training images")


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
