"""What every layer kind answers: the base class :class:`LayerSpec`, where a layer sits (:class:`Place`)
and what it holds in memory (:class:`LayerMemory`). Pure Python (torch only inside ``build``).

A kind is a frozen dataclass whose fields describe one layer of that kind (a TT layer's modes and
ranks, a dense layer's width). Everything the house asks of a layer it answers itself, so no
other module compares kind names:

* its text form and dict, and reading them back (``tt:4x8x8x4->2^10:2,4,2``, ``dense:1024``);
* its sizes, from the activation shape that enters it: ``(features,)`` after a fully-connected
  layer, ``(channels, height, width)`` for images (a fully-connected kind flattens what comes in);
  weights, the weights of its dense twin, FLOPs, what it holds in memory while training;
* its names in figures and tables, its checks against the layer before it, its ranks;
* the ``torch.nn.Module`` it builds (the modules themselves live in :mod:`ttexplore.nn`).

A new kind is one module: a subclass registered with :func:`ttexplore.runs.kinds.register`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Optional, Sequence, Union

from ttexplore.tt import ttmath
from ttexplore.tt.errors import ConfigError
from ttexplore.tt.limits import MAX_FEATURES, limit_text, whole_number
from ttexplore.tt.shapes import balanced_factorization, has_factorization
from ttexplore.tt.ttshape import modes_text
from ttexplore.runs.fields import modes_value, ranks_value, short_repr

__all__ = ["Shape", "Place", "LayerMemory", "LayerSpec", "features_of", "layer_title", "checked", "FLOAT_BYTES"]

#: An activation shape without the batch: ``(features,)`` or ``(channels, height, width)``.
Shape = tuple[int, ...]

#: Every tensor of a run is float32.
FLOAT_BYTES = 4


def features_of(shape: Sequence[int]) -> int:
    """The number of values in an activation of ``shape`` (what a fully-connected layer sees after flattening)."""
    return ttmath.prod(shape)


def layer_title(field: str) -> Optional[str]:
    """How the user counts the layer a field path names: ``"layers[1].width"`` -> ``"Hidden layer 2"``
    (also ``hidden_layers[1]``); ``None`` for a field of no layer."""
    match = re.match(r"(?:hidden_)?layers\[(\d+)\]", field or "")
    return f"Hidden layer {int(match.group(1)) + 1}" if match else None


@dataclass(frozen=True)
class Place:
    """Where a layer sits, for messages: the user sees ``Hidden layer 2``, the field is its JSON path.

    Attributes:
        index: 0-based position among the hidden layers.
        path: the JSON path of the layer (``"layers[1]"``, ``"hidden_layers[1]"``), or ``""`` for a
            network given by the one-layer fields (``in_modes``, ``ranks``, ...), whose fields keep their names.
        renames: field renames for the one-layer fields (a dense layer's ``width`` is ``hidden`` there).
        input_text: how messages name the network's input (``"the input (1x32x32 after padding)"``).
    """

    index: int = 0
    path: Optional[str] = None
    renames: tuple[tuple[str, str], ...] = ()
    input_text: str = "the input"

    @classmethod
    def of(cls, where: "Union[int, Place]", array: str = "layers", input_text: str = "the input") -> "Place":
        """``where`` as a :class:`Place`: an int is the index in the list ``array``."""
        if isinstance(where, Place):
            return where
        return cls(int(where), f"{array}[{int(where)}]", input_text=input_text)

    @property
    def title(self) -> str:
        """How the pages and the CLI name the layer: ``"Hidden layer 2"`` (1-based)."""
        return f"Hidden layer {self.index + 1}"

    @property
    def source(self) -> str:
        """What feeds the layer: ``"the input"`` or ``"hidden layer 1"``."""
        return self.input_text if self.index == 0 else f"hidden layer {self.index}"

    def field(self, name: str = "") -> str:
        """The JSON path of one of the layer's fields (``"layers[1].ranks"``), or of the layer itself."""
        name = dict(self.renames).get(name, name)
        path = self.path if self.path is not None else f"layers[{self.index}]"
        if not path:
            return name
        return f"{path}.{name}" if name else path

    def name(self, name: str) -> str:
        """The field as the message writes it (the one-layer form's own name, e.g. ``hidden`` for ``width``)."""
        return dict(self.renames).get(name, name)

    def error(self, name: str, message: str) -> ConfigError:
        """A :class:`ConfigError` for field ``name`` whose message starts with the layer's title."""
        prefix = f"{self.title}: " if self.path != "" else ""
        return ConfigError(self.field(name), prefix + message)


@dataclass(frozen=True)
class LayerMemory:
    """What one layer holds while a network trains (the rest follows from these: gradients as many as
    the weights, the optimizer's state a multiple of them).

    Attributes:
        weights: values of its weights and bias.
        largest_tensor: values of its largest parameter tensor (Adam's step allocates two such temporaries).
        work_bytes: bytes a forward (and, training, its backward) holds beyond the layer's output, at
            the batch asked for (a TT layer's intermediates, a matrix-rank layer's ``A x``).
    """

    weights: int
    largest_tensor: int
    work_bytes: int


@dataclass(frozen=True)
class LayerSpec:
    """One hidden layer of some kind: the base class of every kind.

    Class attributes a kind sets:
        name: the kind's name in text forms and dicts (``"tt"``); ``aliases`` also read.
        syntax, example: its text form for messages (``"tt:IN[->OUT][:RANKS]"``, ``"tt:4x8x8x4:4"``).
        title: how a table's layer column names the kind (``"TT"``, ``"dense"``).
        keys: the keys of its dict besides ``kind`` (in the order its text form gives their values).
        reads: the keys its dict may carry (its own, and others' it checks against them, e.g. a dense
            layer's width given as ``out_modes``).
        has_tt_cores: it stores TT cores (sweeps over ranks, compression and rank schedules act on it).
        one_layer_form: runs stored before networks were lists of layers described it by the
            one-layer fields (``layer``, ``in_modes``, ...): their keys are kept (see :mod:`ttexplore.runs.migrate`).
        flattens: it reads its input as one vector (a fully-connected layer): a network flattens
            the activation before it.
        relu_after: a ReLU follows it in a network (every kind with weights; a max pool, whose
            output is already a ReLU's, has none).
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    syntax: ClassVar[str] = ""
    example: ClassVar[str] = ""
    title: ClassVar[str] = ""
    keys: ClassVar[tuple[str, ...]] = ()
    reads: ClassVar[tuple[str, ...]] = ()
    has_tt_cores: ClassVar[bool] = False
    one_layer_form: ClassVar[bool] = False
    flattens: ClassVar[bool] = True
    relu_after: ClassVar[bool] = True

    # ------------------------------------------------------------ reading and writing
    @property
    def kind(self) -> str:
        """The kind's name (``"tt"``)."""
        return self.name

    @classmethod
    def parse(cls, body: str, where: "Union[int, Place]" = 0) -> "LayerSpec":
        """The layer from the text after ``name:`` (``"4x8x8x4->2^10:2,4,2"`` for ``tt:...``): the parts
        separated by ``:`` are the values of :attr:`keys` in order (a kind with another grammar overrides this).

        Raises:
            ConfigError: naming the layer and the fix.
        """
        place = Place.of(where)
        parts = [part.strip() for part in body.split(":")] if body.strip() else []
        if len(parts) > len(cls.keys):
            raise place.error("", f"{cls.name}:{body} has {len(parts)} parts after {cls.name}: write {cls.syntax}, "
                                  f"e.g. {cls.example}")
        return cls.from_values(dict(zip(cls.keys, parts)), place)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: "Union[int, Place]" = 0) -> "LayerSpec":
        """The layer from its dict (without ``kind``; values may be text), in its one canonical form.

        Raises:
            ConfigError: naming the layer's field and the fix.
        """
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: ``{"kind": name, ...}`` (what :meth:`from_values` reads back)."""
        raise NotImplementedError

    def text(self) -> str:
        """The text form :func:`~ttexplore.runs.kinds.parse_layer` reads back (``"dense:1024"``)."""
        raise NotImplementedError

    # ------------------------------------------------------------ sizes
    def out_shape(self, in_shape: Shape) -> Shape:
        """The activation shape the layer gives for ``in_shape`` (without the batch)."""
        raise NotImplementedError

    def params(self, in_shape: Shape) -> int:
        """Weights without the bias (what the 2018 reproduction's figures count)."""
        raise NotImplementedError

    def bias_params(self, in_shape: Shape) -> int:
        """Bias entries: one per output feature."""
        return features_of(self.out_shape(in_shape))

    def dense_params(self, in_shape: Shape) -> int:
        """Weights of its dense twin (:meth:`dense_twin`) for the same input."""
        return ttmath.dense_param_count(features_of(in_shape), features_of(self.out_shape(in_shape)))

    def dense_twin(self) -> "LayerSpec":
        """The layer of the same sizes with a full weight matrix (the baseline)."""
        raise NotImplementedError

    def flops(self, in_shape: Shape) -> int:
        """FLOPs of one example's forward (a multiply-add counts 2)."""
        raise NotImplementedError

    def forward_calls(self) -> int:
        """Kernel calls (GEMMs) of one forward: each pays a fixed overhead its FLOPs do not show."""
        return 1

    def memory(self, in_shape: Shape, batch: int, training: bool = True, input_grad: bool = False,
               strategy: str = "auto") -> LayerMemory:
        """What the layer holds while training (``training``) or evaluating ``batch`` examples.

        Args:
            input_grad: the backward also computes the gradient of the layer's input (a layer after the first).
            strategy: the forward the run asked for (a TT layer prices the one it will use).
        """
        raise NotImplementedError

    # ------------------------------------------------------------ names
    def label(self) -> str:
        """How a figure or table names the layer: ``"TT 4x8x8x4 r=4"``, ``"dense 1024"``."""
        raise NotImplementedError

    def shape_label(self) -> str:
        """The legend entry of a network with this one hidden layer: ``"4x8x8x4"``, ``"dense"``."""
        return self.title

    def part_label(self) -> str:
        """The layer's part in the legend of a network of several (``"4^5->8x16x16x16x8"``, ``"dense 32"``)."""
        return self.label()

    def describe(self, in_shape: Shape) -> str:
        """A one-line summary with its sizes (``"dense 1024->1024"``)."""
        return self.label()

    def shrink_hint(self) -> str:
        """How to make the layer smaller, for a memory refusal's fix (a phrase)."""
        return "choose a smaller layer"

    # ------------------------------------------------------------ checks
    def check(self, in_shape: Shape, where: "Union[int, Place]" = 0) -> None:
        """Check the layer against the activation shape ``in_shape`` that the layer before it gives.

        Raises:
            ConfigError: naming the layer (``Hidden layer 2``), its field (``layers[1].in_modes``) and the fix.
        """
        raise NotImplementedError

    # ------------------------------------------------------------ ranks
    @property
    def rank_setting(self) -> Any:
        """The rank as the user set it (a TT layer's int, per-boundary tuple or ``None`` for 'max'; a
        matrix rank), ``None`` for a kind without one."""
        return None

    def ranks_used(self, in_shape: Shape) -> tuple[int, ...]:
        """The ranks the layer has after clipping to the useful ones (``()`` for a kind without ranks)."""
        return ()

    def clipping(self, in_shape: Shape) -> tuple[tuple[int, int, int], ...]:
        """``(k, asked, used)`` for each rank lowered to its maximal useful value (1-based ``k``)."""
        return ()

    def with_ranks(self, ranks: Any) -> "LayerSpec":
        """The same layer at other ranks (sweeps, rank schedules); a kind without ranks returns itself."""
        return self

    # ------------------------------------------------------------ suggestions
    @classmethod
    def suggest(cls, in_shape: Shape, width: Optional[int] = None,
                previous: Optional["LayerSpec"] = None) -> Optional["LayerSpec"]:
        """A layer of this kind that fits after a layer giving the activation ``in_shape`` (its :meth:`check`
        passes there), for the Explore page's "add a layer"; ``None`` where the kind has none that fits (a
        convolution after features; the page then asks the next kind).

        ``width``: the features a fully-connected kind goes to (``next_layer_text`` asks for the input's width);
        ``None``: the kind's own choice (:func:`suggested_width`; an image kind always chooses its channels).
        ``previous``: the layer before, whose form a kind may follow (a TT layer keeps a TT layer's output modes).
        """
        return None

    # ------------------------------------------------------------ the module
    def build(self, in_shape: Shape, init: str, strategy: str, generator: Any, dtype: Any = None,
              device: Any = None) -> Any:
        """The ``torch.nn.Module`` of the layer, its weights drawn from ``generator`` (imports torch)."""
        raise NotImplementedError


# ---------------------------------------------------------------- helpers for kinds
def checked(layer: LayerSpec, in_shape: Shape) -> Optional[LayerSpec]:
    """``layer`` when it passes :meth:`LayerSpec.check` against ``in_shape``, else ``None`` (for suggestions)."""
    try:
        layer.check(in_shape)
    except (ConfigError, ValueError):
        return None
    return layer


def whole_value(value: Any, place: Place, name: str, hint: str) -> Optional[int]:
    """``value`` as an int (``None`` when empty), or a ConfigError naming the field, with ``hint``."""
    if value is None or value == "":
        return None
    try:
        return whole_number(value, place.name(name))
    except ValueError as error:
        raise place.error(name, f"{error}: {hint}") from None


def width_value(value: Any, place: Place, kind: str, example: str) -> Optional[int]:
    """A width as typed: a whole number (``1024``) or modes multiplying to it (``2^10``, ``32x32``)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and not value.strip().isdigit():
        try:
            return ttmath.prod(modes_value(value, place.name("width")))
        except ConfigError:
            raise place.error("width", f"{place.name('width')} {short_repr(value)} is neither a whole number nor "
                                       f"modes: write the width as 1024 or as modes like 2^10, e.g. {example}") from None
    return whole_value(value, place, "width", f"write the width as a whole number, e.g. {example}")


def modes_field(value: Any, place: Place, name: str) -> Optional[tuple[int, ...]]:
    """Modes as typed (``"4x8x8x4"``, ``"2^10"``, a list), ``None`` when empty; a ConfigError naming the field."""
    try:
        return modes_value(value, place.name(name))
    except ConfigError as error:
        raise place.error(name, str(error)) from None


def ranks_field(value: Any, place: Place, name: str = "ranks") -> Union[int, tuple[int, ...], None]:
    """Ranks as typed (``4``, ``"2,4,2"``, ``"max"``); a ConfigError naming the field."""
    try:
        return ranks_value(value)
    except ConfigError as error:
        raise place.error(name, str(error)) from None


def is_whole(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_modes_type(modes: Any, place: Place, name: str) -> None:
    """Modes of a directly built spec: a non-empty tuple of positive whole numbers."""
    if not isinstance(modes, tuple) or not modes or not all(is_whole(mode) and mode >= 1 for mode in modes):
        raise place.error(name, f"{place.name(name)} {short_repr(modes)} must be positive whole numbers, e.g. 4x8x8x4")


def check_width(width: int, place: Place, name: str = "width") -> None:
    """A width between 1 and :data:`~ttexplore.tt.limits.MAX_FEATURES`."""
    if not is_whole(width):
        raise place.error(name, f"{place.name(name)} {short_repr(width)} must be a whole number")
    if not 1 <= width <= MAX_FEATURES:
        raise place.error(name, f"{place.name(name)} {width:,} must be between 1 and {limit_text(MAX_FEATURES)}")


#: The width of a fully-connected layer suggested after images (the preset CNNs' hidden FC layer).
IMAGE_FC_WIDTH = 256


def suggested_width(in_shape: Shape) -> int:
    """The width of a fully-connected layer suggested after ``in_shape``: as wide as a vector input, at most
    :data:`IMAGE_FC_WIDTH` after images (it flattens them)."""
    features = features_of(in_shape)
    return features if len(in_shape) == 1 else min(IMAGE_FC_WIDTH, features)


def example_modes(features: int, d: int) -> str:
    """A balanced ``d``-mode shape of ``features``, or a 2-mode one, for messages."""
    for depth in (d, 2):
        if depth >= 1 and (depth == 1 or has_factorization(features, depth, min_mode=2)):
            return modes_text(balanced_factorization(features, depth))
    return str(features)
