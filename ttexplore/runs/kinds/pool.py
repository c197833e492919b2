"""The pool kind: max pooling of ``SIZE x SIZE`` windows at stride ``SIZE`` (``nn.MaxPool2d``), no weights.
Text form ``pool:2`` (``pool`` alone is ``pool:2``): 28x28 becomes 14x14, an odd side rounds down
(7x7 becomes 3x3). No ReLU follows it in a network: its input is already a ReLU's output, and the max
of non-negative numbers is one. Pure Python at import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from ttexplore.runs.kinds.base import LayerMemory, LayerSpec, Place, Shape, features_of, whole_value
from ttexplore.runs.kinds.images import check_out_shape, check_side_number, image_shape

__all__ = ["PoolLayerSpec", "MAX_POOL"]

#: The largest pooling window side.
MAX_POOL = 64

#: Bytes of one index max pooling keeps per output value for its backward (int64).
INDEX_BYTES = 8


@dataclass(frozen=True)
class PoolLayerSpec(LayerSpec):
    """Max pooling over ``size x size`` windows, stride ``size``: ``(C, H, W)`` -> ``(C, H // size, W // size)``.

    Complexity: no weights; ``H W C`` comparisons per example, which are not FLOPs (``FlopCounterMode``
    counts none either).
    """

    size: int = 2

    name = "pool"
    aliases = ("maxpool", "max_pool")
    syntax = "pool:SIZE"
    example = "pool:2"
    title = "max pool"
    keys = ("size",)
    reads = ("size",)
    flattens = False
    relu_after = False

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: "Union[int, Place]" = 0) -> "PoolLayerSpec":
        place = Place.of(where)
        size = whole_value(values.get("size"), place, "size", f"write the window side as a whole number, e.g. {cls.example}")
        return cls(2 if size is None else size)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.name, "size": self.size}

    def text(self) -> str:
        return f"pool:{self.size}"

    def out_shape(self, in_shape: Shape) -> Shape:
        channels, height, width = image_shape(in_shape, Place(), self.text())
        return (channels, height // self.size, width // self.size)

    def params(self, in_shape: Shape) -> int:
        return 0

    def bias_params(self, in_shape: Shape) -> int:
        return 0

    def dense_params(self, in_shape: Shape) -> int:
        return 0

    def dense_twin(self) -> "PoolLayerSpec":
        return self

    def flops(self, in_shape: Shape) -> int:
        return 0

    def forward_calls(self) -> int:
        return 1

    def memory(self, in_shape: Shape, batch: int, training: bool = True, input_grad: bool = False,
               strategy: str = "auto") -> LayerMemory:
        """No weights; training, the int64 index of each output's maximum (kept for the backward)."""
        work = INDEX_BYTES * batch * features_of(self.out_shape(in_shape)) if training else 0
        return LayerMemory(0, 0, work)

    def label(self) -> str:
        return f"max pool {self.size}"

    def describe(self, in_shape: Shape) -> str:
        out = self.out_shape(in_shape)
        return f"max pool {self.size}: {in_shape[1]}x{in_shape[2]} -> {out[1]}x{out[2]}"

    def shrink_hint(self) -> str:
        return "pool earlier, or more"

    def check(self, in_shape: Shape, where: "Union[int, Place]" = 0) -> None:
        place = Place.of(where)
        check_side_number(self.size, place, "size", 1, MAX_POOL, self.example)
        image = image_shape(in_shape, place, self.text())
        check_out_shape(self.out_shape(image), image, place, self.text(),
                        "the window is larger than the image: use fewer pool layers or a smaller window")

    @classmethod
    def suggest(cls, in_shape: Shape, width: Optional[int] = None,
                previous: Optional[LayerSpec] = None) -> "Optional[PoolLayerSpec]":
        """After images of at least 2x2 pixels: a max pool of 2 (the side halves); none after a vector or 1-pixel images
        (``width`` and ``previous`` do not apply)."""
        return cls(2) if len(in_shape) == 3 and min(int(in_shape[1]), int(in_shape[2])) >= 2 else None

    def build(self, in_shape: Shape, init: str, strategy: str, generator: Any, dtype: Any = None,
              device: Any = None) -> Any:
        """An ``nn.MaxPool2d(size)`` (no weights: nothing is drawn)."""
        from torch import nn

        return nn.MaxPool2d(self.size)
