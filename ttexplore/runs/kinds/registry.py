"""The one place layer kinds are registered, and reading layers and lists of layers through it. Pure Python.

:func:`register` adds a kind (a :class:`~ttexplore.runs.kinds.base.LayerSpec` subclass); from then on
its text form and dict read everywhere (the CLI's ``--hidden-layer``, the app, stored runs),
and everything that sizes, names, prices or builds a network asks it. :func:`registered` adds one
for the time of a ``with`` block (tests).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence, Union

from ttexplore.tt.errors import ConfigError
from ttexplore.runs.fields import short_repr
from ttexplore.runs.kinds.base import LayerSpec, Place, Shape

__all__ = ["register", "unregister", "registered", "kind_named", "all_kinds", "kind_names", "parse_layer",
           "parse_layers", "check_layers", "layer_shapes", "layers_text", "MAX_HIDDEN_LAYERS", "DEFAULT_KIND"]

#: The most hidden layers a network may have.
MAX_HIDDEN_LAYERS = 8

#: The kind of a layer dict without ``kind`` (as the first networks wrote them).
DEFAULT_KIND = "tt"

#: name -> kind, in the order they were registered (the order tables and messages list them in).
_KINDS: dict[str, type[LayerSpec]] = {}
#: every name a kind is read by (its own and its aliases, lower case) -> its name
_NAMES: dict[str, str] = {}


def register(kind: type[LayerSpec]) -> type[LayerSpec]:
    """Add ``kind`` to the registry (returns it, so it also works as a class decorator).

    Raises:
        ValueError: when it is not a :class:`LayerSpec` subclass with a name, or a name is taken.
    """
    if not (isinstance(kind, type) and issubclass(kind, LayerSpec)) or not kind.name:
        raise ValueError(f"{kind!r} is not a layer kind: subclass LayerSpec and give it a name")
    names = [kind.name.lower(), *(alias.lower() for alias in kind.aliases)]
    taken = [name for name in names if name in _NAMES]
    if taken:
        raise ValueError(f"layer kind name {taken[0]!r} is taken by {_NAMES[taken[0]]!r}: choose another")
    _KINDS[kind.name] = kind
    _NAMES.update({name: kind.name for name in names})
    return kind


def unregister(kind: "Union[type[LayerSpec], str]") -> None:
    """Remove a kind (by class or name); a kind that is not registered is left alone."""
    name = kind if isinstance(kind, str) else kind.name
    if _KINDS.pop(name, None) is not None:
        for alias in [alias for alias, owner in _NAMES.items() if owner == name]:
            del _NAMES[alias]


@contextmanager
def registered(kind: type[LayerSpec]) -> Iterator[type[LayerSpec]]:
    """``with registered(MyKind):`` the kind is registered inside the block, and only there."""
    register(kind)
    try:
        yield kind
    finally:
        unregister(kind)


def all_kinds() -> tuple[type[LayerSpec], ...]:
    """Every registered kind, in registration order."""
    return tuple(_KINDS.values())


def kind_names() -> tuple[str, ...]:
    """Every registered kind's name (``("tt", "dense", "matrix_rank", ...)``)."""
    return tuple(_KINDS)


def kind_named(name: Any, where: "Union[int, Place, None]" = None) -> type[LayerSpec]:
    """The kind called ``name`` (or one of its aliases, any case).

    Raises:
        ConfigError: naming ``<layer>.kind`` (or ``kind``) and the kinds there are.
    """
    found = _NAMES.get(str(name).strip().lower()) if isinstance(name, str) else None
    if found is None:
        message = f"kind {short_repr(name)} is unknown: use one of {', '.join(_KINDS)}"
        if where is None:
            raise ConfigError("kind", message)
        raise Place.of(where).error("kind", message)
    return _KINDS[found]


def _syntaxes() -> str:
    forms = [kind.syntax for kind in _KINDS.values()]
    return ", ".join(forms[:-1]) + f" or {forms[-1]}" if len(forms) > 1 else "".join(forms)


def _read_keys() -> set[str]:
    """The dict keys some kind reads (a kind reads its own keys and may read others' to check them)."""
    return {"kind"} | {key for kind in _KINDS.values() for key in (*kind.keys, *kind.reads)}


def parse_layer(value: Any, where: "Union[int, Place]" = 0) -> LayerSpec:
    """A layer from its text form (``"tt:4x8x8x4:4"``), a dict (``{"kind": "dense", "width": 1024}``) or
    a :class:`LayerSpec`, in its kind's one canonical form (keys other kinds use are dropped).

    Raises:
        ConfigError: naming the layer (``layers[1]``, ``Hidden layer 2``), its field and the fix.
    """
    place = Place.of(where)
    if isinstance(value, LayerSpec):
        return value
    if isinstance(value, str):
        head, _, body = value.strip().partition(":")
        kind = _KINDS.get(_NAMES.get(head.strip().lower(), ""))
        if kind is None:
            raise place.error("", f"{short_repr(value)} is not a layer: write {_syntaxes()}, e.g. "
                                  f"{next(iter(_KINDS.values())).example if _KINDS else 'tt:4x8x8x4:4'}")
        return kind.parse(body, place)
    if isinstance(value, dict):
        unknown = sorted(set(value) - _read_keys(), key=str)
        if unknown:
            raise place.error(str(unknown[0]), f"unknown setting {short_repr(unknown[0])}: a layer has "
                                               f"{', '.join(sorted(_read_keys()))}")
        kind = kind_named(value.get("kind", DEFAULT_KIND), place)
        return kind.from_values({key: item for key, item in value.items() if key != "kind"}, place)
    raise place.error("", f"{short_repr(value)} is not a layer: write e.g. {_syntaxes()}, or a dict with a kind")


def parse_layers(value: Any, array: str = "layers", input_text: str = "the input") -> tuple[LayerSpec, ...]:
    """A list of layers as given (text forms, dicts or specs; or one string of text forms separated by ``;``).

    Args:
        array: the key they were given under, for the messages' field paths (``layers``, ``hidden_layers``).

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
        raise ConfigError(array, f"{array} {short_repr(value)} is not a list of layers: write e.g. "
                                 "['tt:4x8x8x4:4', 'dense:256']") from None
    if not items:
        raise ConfigError(array, f"{array} is empty: give at least one layer, e.g. tt:4x8x8x4:4")
    if len(items) > MAX_HIDDEN_LAYERS:
        raise ConfigError(array, f"{array} has {len(items)} layers: use at most {MAX_HIDDEN_LAYERS}")
    return tuple(parse_layer(item, Place.of(index, array, input_text)) for index, item in enumerate(items))


def layer_shapes(layers: Sequence[LayerSpec], in_shape: Shape) -> list[Shape]:
    """The activation shapes through the layers: ``in_shape``, then what each layer gives."""
    shapes = [tuple(in_shape)]
    for layer in layers:
        shapes.append(tuple(layer.out_shape(shapes[-1])))
    return shapes


def check_layers(layers: Sequence[LayerSpec], in_shape: Shape, array: str = "layers",
                 input_text: str = "the input") -> None:
    """Check each layer against the shape the one before gives (the first against ``in_shape``).

    Raises:
        ConfigError: naming ``<array>[i].<field>``, ``Hidden layer i+1`` and the fix.
    """
    shape = tuple(in_shape)
    for index, layer in enumerate(layers):
        if not isinstance(layer, LayerSpec):
            raise ConfigError(f"{array}[{index}]", f"{array}[{index}] {short_repr(layer)} is not a layer spec: "
                                                   "build it with parse_layer")
        layer.check(shape, Place.of(index, array, input_text))
        shape = tuple(layer.out_shape(shape))


def layers_text(layers: Sequence[LayerSpec]) -> str:
    """``"tt:4^5->8x16x16x16x8:4; tt:8x16x16x16x8->4^5:4"``: the layers as :func:`parse_layers` reads them."""
    return "; ".join(layer.text() for layer in layers)
