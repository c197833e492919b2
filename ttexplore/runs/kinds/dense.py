"""The dense kind: a fully-connected layer with its full ``M x N`` weight matrix (``nn.Linear``), the
baseline every other kind is compared with. Text form ``dense:WIDTH`` (``dense:1024``, ``dense:2^10``).
Pure Python at import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from ttexplore.tt import ttmath
from ttexplore.runs.kinds.base import (LayerMemory, LayerSpec, Place, Shape, check_width, checked, features_of,
                                       modes_field, suggested_width, width_value)

__all__ = ["DenseLayerSpec", "fc_width", "init_linear"]


def fc_width(values: Mapping[str, Any], place: Place, kind: str, example: str) -> Optional[int]:
    """A fully-connected layer's output width from its dict: ``width``, or the product of ``out_modes``
    (the two must agree when both are given); ``None`` when neither is."""
    width = width_value(values.get("width"), place, kind, example)
    out_modes = modes_field(values.get("out_modes"), place, "out_modes")
    if out_modes is not None:
        if width is not None and width != ttmath.prod(out_modes):
            raise place.error("width", f"width {width} disagrees with out_modes {ttmath.modes_text(out_modes)}: give "
                                       "one of them")
        width = ttmath.prod(out_modes)
    return width


def init_linear(layer: Any, generator: Any, init: str = "glorot") -> None:
    """Draw ``layer.weight`` (an ``nn.Linear``) from ``N(0, target_std(init))`` with ``generator``; zero the bias."""
    import torch

    from ttexplore.tt.init import target_std

    with torch.no_grad():
        layer.weight.normal_(0.0, target_std(init, layer.in_features, layer.out_features), generator=generator)
        if layer.bias is not None:
            layer.bias.zero_()


@dataclass(frozen=True)
class DenseLayerSpec(LayerSpec):
    """A dense layer of ``width`` outputs: ``N * width`` weights for ``N`` inputs.

    Complexity: ``2 N M`` FLOPs per example.
    """

    width: int = 1024

    name = "dense"
    syntax = "dense:WIDTH"
    example = "dense:1024"
    title = "dense"
    keys = ("width",)
    reads = ("width", "out_modes")
    one_layer_form = True

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: "Union[int, Place]" = 0) -> "DenseLayerSpec":
        place = Place.of(where)
        width = fc_width(values, place, cls.name, cls.example)
        if width is None:
            raise place.error("width", f"{place.name('width')} is missing: a dense layer needs its output width, "
                                       f"e.g. {cls.example}")
        return cls(width)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.name, "width": self.width}

    def text(self) -> str:
        return f"dense:{self.width}"

    def out_shape(self, in_shape: Shape) -> Shape:
        return (self.width,)

    def params(self, in_shape: Shape) -> int:
        return ttmath.dense_param_count(features_of(in_shape), self.width)

    def dense_twin(self) -> "DenseLayerSpec":
        return self

    def flops(self, in_shape: Shape) -> int:
        return ttmath.dense_flops(features_of(in_shape), self.width, 1)

    def memory(self, in_shape: Shape, batch: int, training: bool = True, input_grad: bool = False,
               strategy: str = "auto") -> LayerMemory:
        weights = self.params(in_shape)
        return LayerMemory(weights + self.width, max(weights, self.width), 0)

    def label(self) -> str:
        return f"dense {self.width}"

    def describe(self, in_shape: Shape) -> str:
        return f"dense {features_of(in_shape)}->{self.width}"

    def shrink_hint(self) -> str:
        return "use a TT layer (e.g. --layer tt, or tt:IN->OUT:RANK) or a narrower hidden layer"

    def check(self, in_shape: Shape, where: "Union[int, Place]" = 0) -> None:
        check_width(self.width, Place.of(where))

    @classmethod
    def suggest(cls, in_shape: Shape, width: Optional[int] = None,
                previous: Optional[LayerSpec] = None) -> Optional["DenseLayerSpec"]:
        """``dense:WIDTH``, which fits after any layer: ``width`` wide when given, else as wide as a vector
        input, 256 wide (or fewer) after images, which it flattens (:func:`~.base.suggested_width`)."""
        return checked(cls(suggested_width(in_shape) if width is None else width), in_shape)

    def build(self, in_shape: Shape, init: str, strategy: str, generator: Any, dtype: Any = None,
              device: Any = None) -> Any:
        """An ``nn.Linear`` whose weight has the std of ``init`` (drawn from ``generator``), bias zero."""
        from torch import nn

        layer = nn.Linear(features_of(in_shape), self.width, dtype=dtype, device=device)
        init_linear(layer, generator, init)
        return layer
