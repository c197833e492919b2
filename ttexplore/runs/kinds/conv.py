"""The conv kind: a dense 2-D convolution (``nn.Conv2d``), the baseline of the TT convolutions. Text form
``conv:OUT[:K][:sS]``: ``conv:32:3`` (32 output channels, a 3x3 kernel, stride 1), ``conv:64:3:s2``
(stride 2); ``K`` is 3 when left out. Padding ``(K - 1) // 2`` on each side (:mod:`.images`): 28x28
stays 28x28 at stride 1 for an odd ``K``. Pure Python at import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from ttexplore.tt.convshape import dense_conv_flops
from ttexplore.runs.kinds.base import FLOAT_BYTES, LayerMemory, LayerSpec, Place, Shape, features_of, whole_value
from ttexplore.runs.kinds.images import (MAX_CHANNELS, check_kernel_and_stride, check_out_shape, check_side_number,
                                         conv_out_shape, conv_padding, image_shape, stride_text, stride_value,
                                         suggested_channels)

__all__ = ["ConvLayerSpec", "DEFAULT_KERNEL", "split_conv_text", "conv_work_bytes"]

#: The kernel side of a convolution kind typed without one (``conv:32``).
DEFAULT_KERNEL = 3


def split_conv_text(body: str, names: tuple[str, ...], place: Place, syntax: str, example: str, kind: str) -> dict[str, str]:
    """The parts of a convolution kind's text after ``kind:``, by position into ``names``; a last part
    starting with ``s`` is the stride wherever it stands (``conv:32:s2`` keeps the default kernel)."""
    parts = [part.strip() for part in body.split(":")]
    values: dict[str, str] = {}
    if len(parts) > 1 and parts[-1].lower().startswith("s"):
        values["stride"] = parts.pop()
    if len(parts) > len(names):
        raise place.error("", f"{kind}:{body} has {len(parts) + len(values)} parts after {kind}: write {syntax}, e.g. {example}")
    values.update({name: part for name, part in zip(names, parts) if part})
    return values


def conv_work_bytes(in_shape: Shape, out_shape: Shape, batch: int, training: bool) -> int:
    """Bytes a convolution by ``F.conv2d`` holds beyond its output: oneDNN, torch's CPU convolution, copies the
    input and output into its blocked layout (``nChw8c``/``nChw16c``) for the call, forward and (training) backward.

    Complexity: integer arithmetic."""
    return FLOAT_BYTES * batch * (features_of(in_shape) + features_of(out_shape))


@dataclass(frozen=True)
class ConvLayerSpec(LayerSpec):
    """A dense convolution of ``channels`` outputs with a ``kernel_size`` square kernel and ``stride``.

    Complexity: ``C_out C_in K^2`` weights, ``2 H' W' C_out C_in K^2`` FLOPs per example.
    """

    channels: int = 32
    kernel_size: int = DEFAULT_KERNEL
    stride: int = 1

    name = "conv"
    syntax = "conv:OUT[:K][:sS]"
    example = "conv:32:3"
    title = "conv"
    keys = ("channels", "kernel_size", "stride")
    reads = ("channels", "kernel_size", "stride")
    flattens = False

    # ------------------------------------------------------------ reading and writing
    @classmethod
    def parse(cls, body: str, where: "Union[int, Place]" = 0) -> "ConvLayerSpec":
        """``"32:3"``, ``"64:3:s2"`` (the text after ``conv:``)."""
        place = Place.of(where)
        return cls.from_values(split_conv_text(body, ("channels", "kernel_size"), place, cls.syntax, cls.example,
                                               cls.name), place)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: "Union[int, Place]" = 0) -> "ConvLayerSpec":
        place = Place.of(where)
        channels = whole_value(values.get("channels"), place, "channels",
                               f"write the output channels as a whole number, e.g. {cls.example}")
        if channels is None:
            raise place.error("channels", f"{place.name('channels')} is missing: a convolution needs its output "
                                          f"channels, e.g. {cls.example}")
        kernel = whole_value(values.get("kernel_size"), place, "kernel_size",
                             f"write the kernel side as a whole number, e.g. {cls.example}")
        return cls(channels, DEFAULT_KERNEL if kernel is None else kernel,
                   stride_value(values.get("stride"), place, "conv:64:3:s2"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.name, "channels": self.channels, "kernel_size": self.kernel_size, "stride": self.stride}

    def text(self) -> str:
        return f"conv:{self.channels}:{self.kernel_size}{stride_text(self.stride)}"

    # ------------------------------------------------------------ sizes
    @property
    def padding(self) -> int:
        """Zeros padded on each side: ``(K - 1) // 2``."""
        return conv_padding(self.kernel_size)

    def out_shape(self, in_shape: Shape) -> Shape:
        return conv_out_shape(self.channels, image_shape(in_shape, Place(), self.text()), self.kernel_size, self.stride)

    def params(self, in_shape: Shape) -> int:
        return self.channels * int(in_shape[0]) * self.kernel_size ** 2

    def bias_params(self, in_shape: Shape) -> int:
        """One bias per output channel."""
        return self.channels

    def dense_params(self, in_shape: Shape) -> int:
        return self.params(in_shape)

    def dense_twin(self) -> "ConvLayerSpec":
        return self

    def flops(self, in_shape: Shape) -> int:
        """``2 H' W' C_out C_in K^2`` (the bias is not counted, as ``FlopCounterMode`` does not)."""
        out_shape = self.out_shape(in_shape)
        return dense_conv_flops(in_shape[0], self.channels, (self.kernel_size,) * 2, out_shape[1:])

    def memory(self, in_shape: Shape, batch: int, training: bool = True, input_grad: bool = False,
               strategy: str = "auto") -> LayerMemory:
        """Kernel and bias; oneDNN's layout copies of input and output (:func:`conv_work_bytes`)."""
        weights = self.params(in_shape)
        return LayerMemory(weights + self.channels, max(weights, self.channels),
                           conv_work_bytes(in_shape, self.out_shape(in_shape), batch, training))

    # ------------------------------------------------------------ names
    def label(self) -> str:
        return f"conv {self.channels} {self.kernel_size}x{self.kernel_size}" + (f" s{self.stride}" if self.stride > 1 else "")

    def describe(self, in_shape: Shape) -> str:
        return f"conv {in_shape[0]}->{self.channels} {self.kernel_size}x{self.kernel_size}" + \
            (f" s{self.stride}" if self.stride > 1 else "")

    def shrink_hint(self) -> str:
        return "use a TT convolution (ttconv:IN->OUT:RANK:K, e.g. ttconv:4x8->4x4x4:4:3) or fewer channels"

    # ------------------------------------------------------------ checks
    def check(self, in_shape: Shape, where: "Union[int, Place]" = 0) -> None:
        place = Place.of(where)
        check_side_number(self.channels, place, "channels", 1, MAX_CHANNELS, self.example)
        check_kernel_and_stride(self.kernel_size, self.stride, place, self.example)
        image = image_shape(in_shape, place, self.text())
        check_out_shape(self.out_shape(image), image, place, self.text(),
                        "use a smaller kernel or stride, or fewer pool layers before it")

    @classmethod
    def suggest(cls, in_shape: Shape, width: Optional[int] = None,
                previous: Optional[LayerSpec] = None) -> "Optional[ConvLayerSpec]":
        """After images: a 3x3 convolution to more channels (:func:`~.images.suggested_channels`); none after a vector
        (``width`` and ``previous`` do not apply: the kind chooses its channels)."""
        return cls(suggested_channels(int(in_shape[0])), DEFAULT_KERNEL) if len(in_shape) == 3 else None

    # ------------------------------------------------------------ the module
    def build(self, in_shape: Shape, init: str, strategy: str, generator: Any, dtype: Any = None,
              device: Any = None) -> Any:
        """An ``nn.Conv2d`` whose kernel has the std of ``init`` (``fan_in = C_in K^2``, ``fan_out = C_out K^2``),
        drawn from ``generator``; bias zero."""
        import torch
        from torch import nn

        from ttexplore.tt.init import target_std

        layer = nn.Conv2d(int(in_shape[0]), self.channels, self.kernel_size, self.stride, self.padding, dtype=dtype,
                          device=device)
        area = self.kernel_size ** 2
        with torch.no_grad():
            layer.weight.normal_(0.0, target_std(init, int(in_shape[0]) * area, self.channels * area), generator=generator)
            layer.bias.zero_()
        return layer
