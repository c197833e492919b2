"""The parts of a :class:`~ttexplore.runs.config.RunConfig` that describe the network's hidden
layers (:class:`LayerSpec`) and where its first weights come from (:class:`InitFrom`). Pure Python.

A network is ``[pad] -> flatten -> L_1 -> ReLU -> ... -> L_k -> ReLU -> Linear(width_k, classes)``;
each ``L_i`` is a TT layer, a dense layer or a matrix-rank layer. One hidden layer (the paper's
net) is what the one-layer fields of ``RunConfig`` (``layer``, ``in_modes``, ``out_modes``,
``ranks``, ``hidden``, ``matrix_rank``) say; ``RunConfig.hidden_layers`` holds two or more.

A layer's text form, as the CLI's ``--hidden-layer`` takes it and labels show it:

* ``tt:4x8x8x4`` (input and output modes alike, max rank 4), ``tt:4^5->8x16x16x16x8:4``,
  ``tt:4x8x8x4:2,4,2``, ``tt:4x8x8x4:max``;
* ``dense:1024`` or ``dense:2^18`` (the width);
* ``matrix_rank:1024:4`` (the width, then the rank ``r`` of ``W = B A``).

Every message names its field as ``hidden_layers[1].out_modes`` (0-based, as in the JSON) and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ttexplore.tt import ttmath
from ttexplore.tt.limits import MAX_FEATURES, limit_text, whole_number
from ttexplore.tt.shapes import balanced_factorization, check_layer_side, has_factorization
from ttexplore.tt.ttshape import layer_text, modes_text, ranks_text
from ttexplore.runs.fields import modes_value, ranks_value
from ttexplore.tt.errors import ConfigError

__all__ = ["LAYER_KINDS", "LayerSpec", "InitFrom", "MAX_HIDDEN_LAYERS", "INIT_METHODS", "parse_layers", "check_layers",
           "layers_text"]

#: The most hidden layers a network may have.
MAX_HIDDEN_LAYERS = 8

#: How an :class:`InitFrom` turns the source's layers into the run's: a TT layer by TT-SVD of the
#: source layer's dense weight, a matrix-rank layer by its truncated SVD, a dense layer by a copy.
INIT_METHODS = ("tt-svd",)

#: The kinds a hidden layer may be.
LAYER_KINDS = ("tt", "dense", "matrix_rank")

_KIND_ALIASES = {"tt": "tt", "dense": "dense", "matrix_rank": "matrix_rank", "matrix-rank": "matrix_rank",
                 "mr": "matrix_rank"}
_DEFAULT_RANK = 4


def _error(field: str, message: str) -> Exception:
    return ConfigError(field, message)


@dataclass(frozen=True)
class LayerSpec:
    """One hidden layer.

    Attributes:
        kind: ``"tt"``, ``"dense"`` or ``"matrix_rank"``.
        in_modes, out_modes: a TT layer's modes (``None`` for the others).
        ranks: a TT layer's max rank, one per core boundary, or ``None`` (maximal).
        width: a dense or matrix-rank layer's output width (a TT layer's is ``prod(out_modes)``).
        matrix_rank: the rank ``r`` of a matrix-rank layer.
    """

    kind: str = "tt"
    in_modes: Optional[tuple[int, ...]] = None
    out_modes: Optional[tuple[int, ...]] = None
    ranks: Union[int, tuple[int, ...], None] = _DEFAULT_RANK
    width: Optional[int] = None
    matrix_rank: int = _DEFAULT_RANK

    # ------------------------------------------------------------ reading
    @classmethod
    def of(cls, value: Any, index: int = 0) -> "LayerSpec":
        """A layer from its text form, a dict (``{"kind": "tt", "in_modes": "4x8x8x4", ...}``) or a
        :class:`LayerSpec`, in its one canonical form (a dense layer given ``out_modes`` keeps only
        their product as ``width``; fields another kind does not use are dropped).

        Raises:
            ConfigError: naming ``hidden_layers[index].<field>`` and the fix.
        """
        where = f"hidden_layers[{index}]"
        if isinstance(value, LayerSpec):
            values = {"kind": value.kind, "in_modes": value.in_modes, "out_modes": value.out_modes,
                      "ranks": value.ranks, "width": value.width, "matrix_rank": value.matrix_rank}
        elif isinstance(value, str):
            values = _parse_text(value, where)
        elif isinstance(value, dict):
            unknown = sorted(set(value) - {"kind", "in_modes", "out_modes", "ranks", "width", "matrix_rank"})
            if unknown:
                raise _error(f"{where}.{unknown[0]}", f"{where} has an unknown setting {unknown[0]!r}: a layer has "
                                                      "kind, in_modes, out_modes, ranks, width and matrix_rank")
            values = dict(value)
        else:
            raise _error(where, f"{where} {value!r} is not a layer: write e.g. tt:4x8x8x4:4, dense:1024 or "
                                "matrix_rank:1024:4, or a dict with a kind")
        kind = _KIND_ALIASES.get(str(values.get("kind", "tt")).strip().lower())
        if kind is None:
            raise _error(f"{where}.kind", f"{where}.kind {values.get('kind')!r} is unknown: use one of "
                                          f"{', '.join(LAYER_KINDS)}")
        in_modes = _modes(values.get("in_modes"), f"{where}.in_modes")
        out_modes = _modes(values.get("out_modes"), f"{where}.out_modes")
        width = values.get("width")
        if isinstance(width, str) and not width.strip().isdigit():  # a width typed as modes: dense:2^18
            width = ttmath.prod(_modes(width, f"{where}.width"))
        width = _whole(width, f"{where}.width")
        if kind == "tt":
            if in_modes is None:
                raise _error(f"{where}.in_modes", f"{where}.in_modes is missing: a TT layer needs input modes, "
                                                  "e.g. tt:4x8x8x4 or tt:4x8x8x4->2^10")
            out_modes = out_modes if out_modes is not None else in_modes
            if width is not None and width != ttmath.prod(out_modes):
                raise _error(f"{where}.width", f"{where}.width {width} disagrees with out_modes {modes_text(out_modes)} "
                                               f"(= {ttmath.prod(out_modes)}): leave width out for a TT layer")
            ranks = _ranks(values.get("ranks", _DEFAULT_RANK), f"{where}.ranks")
            return cls("tt", in_modes, out_modes, ranks, None, _DEFAULT_RANK)
        if out_modes is not None:
            if width is not None and width != ttmath.prod(out_modes):
                raise _error(f"{where}.width", f"{where}.width {width} disagrees with out_modes {modes_text(out_modes)}: "
                                               "give one of them")
            width = ttmath.prod(out_modes)
        if width is None:
            raise _error(f"{where}.width", f"{where}.width is missing: a {kind} layer needs its output width, "
                                           f"e.g. {kind}:1024" + (":4" if kind == "matrix_rank" else ""))
        rank = _whole(values.get("matrix_rank", _DEFAULT_RANK), f"{where}.matrix_rank") if kind == "matrix_rank" else None
        return cls(kind, None, None, _DEFAULT_RANK, width, rank if rank is not None else _DEFAULT_RANK)

    # ------------------------------------------------------------ sizes
    @property
    def out_features(self) -> int:
        """The layer's output width."""
        return ttmath.prod(self.out_modes) if self.kind == "tt" else int(self.width)

    def params(self, in_features: int) -> int:
        """Weights without the bias (what the 2018 reproduction's figures count)."""
        if self.kind == "tt":
            return ttmath.param_count(self.in_modes, self.out_modes, self.ranks)
        if self.kind == "matrix_rank":
            return ttmath.matrix_rank_param_count(in_features, self.out_features, self.matrix_rank)
        return ttmath.dense_param_count(in_features, self.out_features)

    def dense_params(self, in_features: int) -> int:
        """Weights of the dense layer of the same sizes."""
        return ttmath.dense_param_count(in_features, self.out_features)

    # ------------------------------------------------------------ writing
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, only the fields the kind uses."""
        if self.kind == "tt":
            ranks = list(self.ranks) if isinstance(self.ranks, tuple) else self.ranks
            return {"kind": "tt", "in_modes": list(self.in_modes), "out_modes": list(self.out_modes), "ranks": ranks}
        if self.kind == "matrix_rank":
            return {"kind": "matrix_rank", "width": self.width, "matrix_rank": self.matrix_rank}
        return {"kind": "dense", "width": self.width}

    def text(self) -> str:
        """The text form :meth:`of` reads back (``"tt:4^5->8x16x16x16x8:4"``, ``"dense:1024"``)."""
        if self.kind == "tt":
            rank = ranks_text(self.ranks)[2:] if self.ranks is not None else "max"
            return f"tt:{layer_text(self.in_modes, self.out_modes)}:{rank}"
        if self.kind == "matrix_rank":
            return f"matrix_rank:{self.width}:{self.matrix_rank}"
        return f"dense:{self.width}"

    def label(self) -> str:
        """How a figure or table names the layer: ``"TT 4x8x8x4 r=4"``, ``"dense 1024"``, ``"matrix rank 1024 r=4"``."""
        if self.kind == "tt":
            return f"TT {layer_text(self.in_modes, self.out_modes)} {ranks_text(self.ranks)}"
        if self.kind == "matrix_rank":
            return f"matrix rank {self.width} r={self.matrix_rank}"
        return f"dense {self.width}"

    def dense_twin(self) -> "LayerSpec":
        """The dense layer of the same sizes."""
        return LayerSpec("dense", None, None, _DEFAULT_RANK, self.out_features, _DEFAULT_RANK)

    # ------------------------------------------------------------ checks
    def check(self, in_features: int, index: int) -> None:
        """Check the layer against the ``in_features`` the layer before it gives.

        Raises:
            ConfigError: naming ``hidden_layers[index].<field>`` and the fix.
        """
        where = f"hidden_layers[{index}]"
        source = "the input" if index == 0 else f"hidden_layers[{index - 1}]"
        if self.kind == "tt":
            for name in ("in_modes", "out_modes"):
                try:
                    check_layer_side(getattr(self, name), f"{where}.{name}")
                except ValueError as error:
                    raise _error(f"{where}.{name}", str(error)) from None
            if ttmath.prod(self.in_modes) != in_features:
                raise _error(f"{where}.in_modes", f"{where}.in_modes {modes_text(self.in_modes)} multiply to "
                             f"{ttmath.prod(self.in_modes)}, but {source} gives {in_features} features: try "
                             f"{_example(in_features, len(self.in_modes))}")
            if len(self.out_modes) != len(self.in_modes):
                raise _error(f"{where}.out_modes", f"{where}.out_modes {modes_text(self.out_modes)} has "
                             f"{len(self.out_modes)} modes but in_modes {modes_text(self.in_modes)} has "
                             f"{len(self.in_modes)}: give both the same number, e.g. "
                             f"{_example(ttmath.prod(self.out_modes), len(self.in_modes))}")
            try:
                ttmath.plan_ranks(self.in_modes, self.out_modes, self.ranks)
            except ValueError as error:
                raise _error(f"{where}.ranks", f"{where}.ranks: {error}") from None
            return
        if not 1 <= self.width <= MAX_FEATURES:
            raise _error(f"{where}.width", f"{where}.width {self.width:,} must be between 1 and {limit_text(MAX_FEATURES)}")
        if self.kind == "matrix_rank" and not 1 <= self.matrix_rank <= MAX_FEATURES:
            raise _error(f"{where}.matrix_rank", f"{where}.matrix_rank {self.matrix_rank:,} must be between 1 and "
                                                 f"{limit_text(MAX_FEATURES)}, e.g. 4")


def parse_layers(value: Any) -> tuple[LayerSpec, ...]:
    """``hidden_layers`` as given (a list of text forms or dicts, or one string of text forms
    separated by ``;``) as :class:`LayerSpec` values.

    Raises:
        ConfigError: naming the layer and field, for a bad layer or more than :data:`MAX_HIDDEN_LAYERS`.
    """
    if isinstance(value, str):
        value = [part for part in value.split(";") if part.strip()]
    if isinstance(value, (LayerSpec, dict)):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        raise _error("hidden_layers", f"hidden_layers {value!r} is not a list of layers: write e.g. "
                                      "['tt:4x8x8x4:4', 'dense:256']") from None
    if not items:
        raise _error("hidden_layers", "hidden_layers is empty: give at least one layer, e.g. tt:4x8x8x4:4")
    if len(items) > MAX_HIDDEN_LAYERS:
        raise _error("hidden_layers", f"hidden_layers has {len(items)} layers: use at most {MAX_HIDDEN_LAYERS}")
    return tuple(LayerSpec.of(item, index) for index, item in enumerate(items))


def check_layers(layers: Sequence[LayerSpec], in_features: int) -> None:
    """Check each layer against the width of the one before it (the first against ``in_features``)."""
    width = in_features
    for index, layer in enumerate(layers):
        layer.check(width, index)
        width = layer.out_features


def layers_text(layers: Sequence[LayerSpec]) -> str:
    """``"tt:4^5->8x16x16x16x8:4; tt:8x16x16x16x8->4^5:4"``: the layers as :func:`parse_layers` reads them."""
    return "; ".join(layer.text() for layer in layers)


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


# ---------------------------------------------------------------- helpers
def _parse_text(text: str, where: str) -> dict[str, Any]:
    """``"tt:4x8x8x4->2^10:2,4,2"`` -> ``{"kind": "tt", "in_modes": "4x8x8x4", "out_modes": "2^10", "ranks": "2,4,2"}``."""
    parts = [part.strip() for part in text.strip().split(":")]
    kind = parts[0].lower()
    if kind not in _KIND_ALIASES or len(parts) > 3:
        raise _error(where, f"{where} {text!r} is not a layer: write tt:IN[->OUT][:RANKS], dense:WIDTH or "
                            "matrix_rank:WIDTH:RANK, e.g. tt:4x8x8x4:4")
    values: dict[str, Any] = {"kind": kind}
    shape = parts[1] if len(parts) > 1 else ""
    if _KIND_ALIASES[kind] == "tt":
        if shape:
            left, _, right = shape.partition("->")
            values["in_modes"] = left
            values["out_modes"] = right or left
        if len(parts) > 2:
            values["ranks"] = parts[2]
    else:
        if shape:
            values["width"] = shape
        if len(parts) > 2:
            if _KIND_ALIASES[kind] != "matrix_rank":
                raise _error(where, f"{where} {text!r}: a dense layer has no rank: write dense:WIDTH")
            values["matrix_rank"] = parts[2]
    return values


def _modes(value: Any, field: str) -> Optional[tuple[int, ...]]:
    try:
        return modes_value(value, field)
    except ConfigError as error:
        raise _error(field, str(error)) from None


def _ranks(value: Any, field: str) -> Union[int, tuple[int, ...], None]:
    try:
        return ranks_value(value)
    except ConfigError as error:
        raise _error(field, f"{field}: {error}") from None


def _whole(value: Any, field: str) -> Optional[int]:
    if value is None or value == "":
        return None
    try:
        return whole_number(value, field)
    except ValueError as error:
        raise _error(field, str(error)) from None


def _example(features: int, d: int) -> str:
    """A balanced ``d``-mode shape of ``features``, or a 2-mode one, for messages."""
    for depth in (d, 2):
        if depth >= 1 and (depth == 1 or has_factorization(features, depth, min_mode=2)):
            return modes_text(balanced_factorization(features, depth))
    return str(features)
