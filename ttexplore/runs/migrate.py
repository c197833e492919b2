"""The two forms a network was described in before :attr:`RunConfig.layers <ttexplore.runs.config.RunConfig>`
(always a list of layers), read into layers; and the dict their keys were hashed from, so that every
stored run keeps its key. Pure Python.

* **The one-layer fields** (every run stored before several hidden layers existed; the CLI's flags
  ``--layer``, ``--in-modes``, ``--out-modes``, ``--ranks``, ``--hidden``, ``--matrix-rank`` still speak them):
  ``layer`` (a kind's name), ``in_modes``, ``out_modes``, ``ranks``, ``hidden``, ``matrix_rank``, all six
  stored and hashed, also those the layer does not use (a dense layer's ``in_modes``).
* **``hidden_layers``**: the list of layers, the one-layer fields mirroring its first layer (a
  one-layer list was stored as the one-layer fields alone).

What a layer implies for the six fields is its *mirror* (:func:`one_layer_mirror`); where a stored
config's fields differ from it (values its layer does not use), the difference is kept in
``RunConfig.legacy_fields``, only so that :meth:`RunConfig.key` stays the hash the run was stored under.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ttexplore.tt import ttmath
from ttexplore.tt.errors import ConfigError
from ttexplore.tt.limits import MAX_FEATURES, limit_text
from ttexplore.tt.shapes import MAX_MODES, balanced_factorization, check_layer_side, has_factorization
from ttexplore.tt.ttshape import modes_text
from ttexplore.runs.fields import modes_value, ranks_value, short_repr
from ttexplore.runs.kinds import LayerSpec, Place, all_kinds, kind_named, parse_layers

__all__ = ["ONE_LAYER_FIELDS", "ONE_LAYER_DEFAULTS", "one_layer_kinds", "one_layer_mirror", "read_one_layer", "read_stacked",
           "legacy_key_values", "one_layer_values", "stored_layers", "freeze_fields", "thaw_fields", "check_legacy_fields"]

#: The one-layer fields, as runs stored before ``layers`` described their network.
ONE_LAYER_FIELDS = ("layer", "in_modes", "out_modes", "ranks", "hidden", "matrix_rank")

#: Their values when not given (the defaults of the one-layer ``RunConfig``: the paper's TT layer).
ONE_LAYER_DEFAULTS: dict[str, Any] = {"layer": "tt", "in_modes": (4, 8, 8, 4), "out_modes": (4, 8, 8, 4), "ranks": 4,
                                      "hidden": None, "matrix_rank": 4}


def one_layer_kinds() -> tuple[str, ...]:
    """The kinds the one-layer fields can describe (``layer``'s choices)."""
    return tuple(kind.name for kind in all_kinds() if kind.one_layer_form)


def _json(value: Any) -> Any:
    """``value`` as JSON writes it (tuples as lists), for comparing stored and derived fields."""
    if isinstance(value, (tuple, list)):
        return [_json(item) for item in value]
    return value


def _mirror(layer: LayerSpec, ranks_default: Any) -> dict[str, Any]:
    values = layer.to_dict()
    return {"layer": layer.name, "in_modes": values.get("in_modes"), "out_modes": values.get("out_modes"),
            "ranks": values.get("ranks", ranks_default), "hidden": values.get("width"),
            "matrix_rank": values.get("matrix_rank", ONE_LAYER_DEFAULTS["matrix_rank"])}


def one_layer_mirror(layer: LayerSpec) -> dict[str, Any]:
    """The one-layer fields ``layer`` implies when it is the only hidden layer (JSON values): its own
    values, the others empty (as sweeps wrote a dense baseline: no ranks, its width as ``hidden``)."""
    return _mirror(layer, None)


def _stacked_mirror(layer: LayerSpec) -> dict[str, Any]:
    """The one-layer fields a ``hidden_layers`` config stored beside its list, mirroring its first layer."""
    return _mirror(layer, ONE_LAYER_DEFAULTS["ranks"])


def freeze_fields(fields: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """``legacy_fields`` as a hashable value: ``(name, value)`` pairs in field order (names that are no
    one-layer field last, for :func:`check_legacy_fields` to refuse), lists as tuples."""
    def frozen(value: Any) -> Any:
        return tuple(frozen(item) for item in value) if isinstance(value, (list, tuple)) else value

    order = {name: index for index, name in enumerate(ONE_LAYER_FIELDS)}
    names = sorted(fields, key=lambda name: (order.get(name, len(order)), str(name)))
    return tuple((name, frozen(fields[name])) for name in names)


def thaw_fields(fields: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """``legacy_fields`` as JSON values (``{"in_modes": [4, 8, 8, 4], ...}``)."""
    return {name: _json(value) for name, value in fields}


def _differences(stored: Mapping[str, Any], layer: LayerSpec) -> tuple[tuple[str, Any], ...]:
    mirror = one_layer_mirror(layer)
    return freeze_fields({name: stored[name] for name in ONE_LAYER_FIELDS if _json(stored[name]) != mirror[name]})


def read_one_layer(values: Mapping[str, Any], features: int, input_text: str) -> tuple[LayerSpec, tuple]:
    """The layer the one-layer fields describe (parsed values; those not given take
    :data:`ONE_LAYER_DEFAULTS`), and the fields its mirror does not give (``legacy_fields``).

    Raises:
        ConfigError: naming the one-layer field (``in_modes``, ``hidden``, ...) and the fix.
    """
    fields = {**ONE_LAYER_DEFAULTS, **{name: values[name] for name in ONE_LAYER_FIELDS if name in values}}
    name = fields["layer"]
    kinds = one_layer_kinds()
    if not isinstance(name, str) or name not in kinds:
        raise ConfigError("layer", f"layer {short_repr(name)} is unknown: use one of {', '.join(kinds)}")
    kind = kind_named(name)
    place = Place(0, "", renames=(("width", "hidden"),), input_text=input_text)
    for side in ("in_modes", "out_modes"):
        if fields[side] is not None:
            try:
                check_layer_side(fields[side], side)
            except ValueError as error:
                raise ConfigError(side, str(error)) from None
    in_modes = fields["in_modes"]
    if in_modes is not None and "in_modes" not in kind.reads and ttmath.prod(in_modes) != features:
        raise ConfigError("in_modes", f"in_modes {modes_text(in_modes)} multiply to {ttmath.prod(in_modes)}, but "
                                      f"{input_text} has {features} features: try {_examples(features, len(in_modes))}, "
                                      f"or leave in_modes out for a {name} layer")
    width = fields["hidden"]
    if width is None and fields["out_modes"] is None and "in_modes" not in kind.reads:
        width = features  # a baseline without a width is as wide as the input
    given = {"in_modes": in_modes, "out_modes": fields["out_modes"], "ranks": fields["ranks"], "width": width,
             "matrix_rank": fields["matrix_rank"]}
    # the values the kind reads; ranks None is a value ('max'), any other None is a field not given
    layer = kind.from_values({key: value for key, value in given.items()
                              if key in kind.reads and (value is not None or key == "ranks")}, place)
    return layer, _differences(fields, layer)


def read_stacked(layers_value: Any, given: Mapping[str, Any], input_text: str) -> tuple[tuple[LayerSpec, ...], tuple]:
    """The layers of ``hidden_layers`` and, for a one-layer list (stored as the one-layer fields alone,
    mirroring it), the fields its one-layer mirror does not give.

    Raises:
        ConfigError: for a bad layer (``hidden_layers[1].ranks``), or a one-layer field given beside
            ``hidden_layers`` that contradicts its first layer.
    """
    layers = parse_layers(layers_value, "hidden_layers", input_text)
    mirror = _stacked_mirror(layers[0])
    for name in ONE_LAYER_FIELDS:
        if name in given and _json(given[name]) != mirror[name]:
            shown = modes_text(given[name]) if isinstance(given[name], tuple) else short_repr(given[name])
            raise ConfigError(name, f"{name} {shown} disagrees with hidden_layers[0] ({layers[0].text()}): describe "
                                    f"the network either by hidden_layers or by {', '.join(ONE_LAYER_FIELDS)}, not both")
    return layers, (_differences(mirror, layers[0]) if len(layers) == 1 else ())


def stored_layers(values: Mapping[str, Any], features: Optional[int] = None) -> Optional[tuple[LayerSpec, ...]]:
    """The hidden layers of a stored config in any of its forms, read without checking them against the
    input (labels for a run whose whole config this version no longer accepts); ``None`` when they
    cannot be read. ``features``: the input's, for a one-layer baseline stored without a width."""
    try:
        if values.get("layers") is not None:
            return parse_layers(values["layers"])
        if values.get("hidden_layers") is not None:
            return parse_layers(values["hidden_layers"], "hidden_layers")
        fields: dict[str, Any] = {}
        for name in ONE_LAYER_FIELDS:
            if name in values:
                value = values[name]
                fields[name] = (modes_value(value, name) if name.endswith("_modes") else
                                ranks_value(value) if name == "ranks" else value)
        return (read_one_layer(fields, features or 0, "the input")[0],)
    except (ConfigError, ValueError, TypeError, KeyError):
        return None


def legacy_key_values(layers: Sequence[LayerSpec], legacy_fields: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """The network's part of the dict a config's key hashes, as the form it could be stored in before
    ``layers`` gave it: the one-layer fields (with ``legacy_fields``), or the mirror of the first layer
    and ``hidden_layers``; ``None`` for a network with a kind that form never described."""
    if not all(layer.one_layer_form for layer in layers):
        return None
    if len(layers) == 1:
        return {**one_layer_mirror(layers[0]), **legacy_fields}
    return {**_stacked_mirror(layers[0]), "hidden_layers": [layer.to_dict() for layer in layers]}


def one_layer_values(layer: LayerSpec, legacy_fields: Mapping[str, Any]) -> dict[str, Any]:
    """The one-layer fields of a one-layer network (what ``replace(ranks=2)`` changes one of)."""
    return {**one_layer_mirror(layer), **legacy_fields}


def check_legacy_fields(fields: Any, layers: Sequence[LayerSpec]) -> None:
    """``legacy_fields`` are one-layer fields of a one-layer network, each a value its field could hold.

    Raises:
        ConfigError: naming ``legacy_fields`` and what is wrong.
    """
    if not fields:
        return
    if not isinstance(fields, tuple) or not all(isinstance(item, tuple) and len(item) == 2 for item in fields):
        raise ConfigError("legacy_fields", "legacy_fields must be (name, value) pairs: build the config with from_dict")
    if len(layers) != 1 or not layers[0].one_layer_form:
        raise ConfigError("legacy_fields", "legacy_fields belong to a network of one hidden layer stored by the "
                                           "one-layer fields: leave them out")
    for name, value in fields:
        if name not in ONE_LAYER_FIELDS[1:]:
            raise ConfigError("legacy_fields", f"legacy_fields has {short_repr(name)}: only "
                                               f"{', '.join(ONE_LAYER_FIELDS[1:])} may be kept")
        items = value if isinstance(value, tuple) else (value,)
        if value is not None and not all(isinstance(item, int) and not isinstance(item, bool) for item in items):
            raise ConfigError(name, f"{name} {short_repr(value)} must be a whole number (or numbers)")
        if name in ("in_modes", "out_modes") and value is not None:
            if not isinstance(value, tuple) or not value or len(value) > MAX_MODES or min(value) < 1:
                raise ConfigError(name, f"{name} {short_repr(value)} must be 1 to {MAX_MODES} positive modes, e.g. 4x8x8x4")
            try:
                check_layer_side(value, name)
            except ValueError as error:
                raise ConfigError(name, str(error)) from None
        elif value is not None and any(item < 1 or item > MAX_FEATURES for item in items):
            raise ConfigError(name, f"{name} {short_repr(value)} must be between 1 and {limit_text(MAX_FEATURES)}, e.g. 4")


def _examples(features: int, d: Optional[int] = None) -> str:
    """Two shapes that fit ``features``: a balanced one with ``d`` modes and a 2-mode one."""
    options = []
    for depth in ([d] if d and 1 <= d <= MAX_MODES else []) + [4, 2]:
        if has_factorization(features, depth, min_mode=2):
            text = modes_text(balanced_factorization(features, depth))
            if text not in options:
                options.append(text)
    return " or ".join(options[:2]) if options else str(features)
