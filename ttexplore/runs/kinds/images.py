"""What the kinds that read images share (``conv``, ``ttconv``, ``tt4d``, ``pool``). Pure Python.

An image activation is ``(channels, height, width)``; a fully-connected kind flattens it, an image kind
needs it, so a convolution after a fully-connected layer is refused with the fix. Convolution kinds
keep square kernels and pad ``(K - 1) // 2`` zeros on each side: an odd kernel at stride 1 keeps the
side (``conv:32:3`` turns 28x28 into 28x28), at stride ``s`` the side becomes ``ceil(side / s)``.
"""

from __future__ import annotations

from typing import Any, Optional

from ttexplore.tt.convshape import MAX_KERNEL_SIDE, MAX_STRIDE, conv_output_side
from ttexplore.runs.fields import short_repr
from ttexplore.runs.kinds.base import Place, Shape, features_of, is_whole, whole_value

__all__ = ["MAX_CHANNELS", "image_shape", "conv_padding", "conv_out_shape", "stride_value", "check_side_number",
           "stride_text", "check_out_shape", "suggested_channels"]

#: The most channels an image layer may have.
MAX_CHANNELS = 1 << 20


def image_shape(in_shape: Shape, place: Place, layer_text: str) -> tuple[int, int, int]:
    """``in_shape`` as ``(C, H, W)``, or a ConfigError saying the layer needs images and how to order the layers."""
    if len(in_shape) != 3:
        raise place.error("", f"{layer_text} reads images (channels, height, width), but {place.source} gives "
                              f"{features_of(in_shape):,} features: put convolution and pool layers before the "
                              "fully-connected ones")
    return int(in_shape[0]), int(in_shape[1]), int(in_shape[2])


def conv_padding(kernel_size: int) -> int:
    """Zeros padded on each side by a convolution kind: ``(K - 1) // 2`` (the side kept for odd ``K`` at stride 1)."""
    return (int(kernel_size) - 1) // 2


def conv_out_shape(channels: int, in_shape: Shape, kernel_size: int, stride: int) -> Shape:
    """``(C_out, H', W')`` of a convolution kind (padding :func:`conv_padding`) on ``(C, H, W)``."""
    padding = conv_padding(kernel_size)
    return (int(channels), conv_output_side(in_shape[1], kernel_size, stride, padding),
            conv_output_side(in_shape[2], kernel_size, stride, padding))


def stride_value(value: Any, place: Place, example: str) -> int:
    """A stride as typed: ``s2``, ``2`` or nothing (1)."""
    if isinstance(value, str) and value.strip().lower().startswith("s"):
        value = value.strip()[1:]
    stride = whole_value(value, place, "stride", f"write the stride as s2, e.g. {example}")
    return 1 if stride is None else stride


def stride_text(stride: int) -> str:
    """``":s2"`` for a stride of 2, ``""`` for 1 (the text forms' optional last part)."""
    return f":s{stride}" if stride != 1 else ""


def check_side_number(value: Any, place: Place, name: str, low: int, high: int, example: str) -> None:
    """A kernel side, stride or channel count: a whole number in ``low..high``."""
    if not is_whole(value):
        raise place.error(name, f"{place.name(name)} {short_repr(value)} must be a whole number, e.g. {example}")
    if not low <= value <= high:
        raise place.error(name, f"{place.name(name)} {value:,} must be between {low} and {high:,}, e.g. {example}")


def check_kernel_and_stride(kernel_size: Any, stride: Any, place: Place, example: str) -> None:
    """The kernel side (1..32) and the stride (1..64) of a convolution kind."""
    check_side_number(kernel_size, place, "kernel_size", 1, MAX_KERNEL_SIDE, example)
    check_side_number(stride, place, "stride", 1, MAX_STRIDE, example)


def check_out_shape(out_shape: Shape, in_shape: Shape, place: Place, layer_text: str, fix: str) -> None:
    """The layer leaves at least one pixel: else a ConfigError naming the image it got and ``fix``."""
    if min(out_shape[1:]) < 1:
        raise place.error("", f"{layer_text} on the {in_shape[1]}x{in_shape[2]} images {place.source} gives leaves no "
                              f"pixel: {fix}")


#: The most output channels a suggested convolution has.
MAX_SUGGESTED_CHANNELS = 512


def suggested_channels(channels: int) -> int:
    """The output channels of a convolution suggested after ``channels``: 32 after few (an image), else twice as
    many, at most :data:`MAX_SUGGESTED_CHANNELS` (32 -> 64 -> 128, as the preset CNNs grow)."""
    return 32 if channels < 32 else min(2 * int(channels), max(MAX_SUGGESTED_CHANNELS, int(channels)))


def optional(value: Any) -> Optional[Any]:
    """``None`` for an absent or empty value, else the value."""
    return None if value is None or value == "" else value
