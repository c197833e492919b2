"""Shapes, counts and argument checks of a TT convolution (Garipov et al. 2016). Pure Python.

A ``TTConv2d`` with ``in_modes = (c_1..c_d)`` (``C_in = prod c_k``), ``out_modes =
(s_1..s_d)`` (``C_out = prod s_k``) and a ``kh x kw`` kernel stores its kernel

    ``K(x, y, c, s) = G_0[(x, y)] G_1[c_1, s_1] ... G_d[c_d, s_d]``

as a TT-matrix of ``d + 1`` cores with one extra leading core: the spatial core
``G_0`` of shape ``(1, kh*kw, 1, r_0)`` (in-mode ``kh*kw``, out-mode 1), then the
channel cores ``G_k`` of shape ``(r_{k-1}, c_k, s_k, r_k)``, ``r_d = 1``. As a matrix
that TT-matrix is ``(C_out, kh*kw*C_in)``, its column index ``(x*kw + y)*C_in + c``
(kernel position major, channel minor). Its ``d`` internal ranks ``(r_0, ..., r_{d-1})``
are the conv layer's ``ranks``: ``r_0`` joins the spatial core to the first channel
core. Everything TT-matrix arithmetic knows (:mod:`ttexplore.tt.ttmath`: maximal useful
ranks, clipping, weights) applies to the modes :func:`conv_tt_modes` returns.

:func:`check_conv_args` checks a constructor's arguments against the house limits
(:mod:`ttexplore.tt.limits`); it is the conv layer's half of the shared argument check
of layer constructors.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Sequence, Union

from ttexplore.tt.limits import MAX_MODES, short_repr, whole_number
from ttexplore.tt.shapes import parse_modes
from ttexplore.tt.ttmath import RankPlan, RanksLike, full_ranks, modes_text, plan_ranks, prod

__all__ = [
    "MAX_KERNEL_SIDE",
    "MAX_STRIDE",
    "MAX_PADDING",
    "MAX_CHANNEL_MODES",
    "PairLike",
    "ConvArgs",
    "check_pair",
    "check_conv_args",
    "conv_output_side",
    "conv_output_size",
    "conv_tt_modes",
    "plan_conv_ranks",
    "conv_core_shapes",
    "conv_param_count",
    "dense_conv_param_count",
    "dense_conv_flops",
    "tt4d_modes",
    "plan_tt4d_ranks",
    "tt4d_param_count",
    "tt4d_rebuild_flops",
]

#: The largest side of a convolution kernel (a TT conv's spatial core has ``kh * kw`` rows).
MAX_KERNEL_SIDE = 32

#: The largest stride of a convolution.
MAX_STRIDE = 64

#: The most zero padding on one side of an image.
MAX_PADDING = 1024

#: The most channel modes: with the spatial core a TT conv has at most :data:`MAX_MODES` cores.
MAX_CHANNEL_MODES = MAX_MODES - 1

PairLike = Union[int, Sequence[int]]


@dataclass(frozen=True)
class ConvArgs:
    """A TT convolution's checked constructor arguments.

    Attributes:
        in_modes, out_modes: the channel modes ``(c_1..c_d)`` and ``(s_1..s_d)``.
        kernel_size, stride, padding: ``(height, width)`` pairs.
    """

    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


def check_pair(value: object, field: str, low: int, high: int) -> tuple[int, int]:
    """``value`` (a whole number or two of them) as a ``(height, width)`` pair in ``low..high``.

    Raises:
        ValueError: naming ``field``, for anything else (fractions, booleans, three numbers,
            a value out of range), with the accepted form.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        values = [value]
    else:
        values = list(value)
        if len(values) != 2:
            raise ValueError(f"{field} {short_repr(value)} must be one whole number or two (height, width), "
                             f"got {len(values)} numbers")
    try:
        numbers_ = [whole_number(item, field) for item in values]
    except ValueError:
        raise ValueError(f"{field} {short_repr(value)} must be a whole number or a pair of them (height, width), "
                         f"e.g. 3 or (3, 5)") from None
    for number in numbers_:
        if not low <= number <= high:
            raise ValueError(f"{field} {short_repr(value)} must be between {low} and {high}")
    return (numbers_[0], numbers_[-1])


def check_conv_args(
    in_modes: object,
    out_modes: object,
    kernel_size: object,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
    padding_mode: object = "zeros",
) -> ConvArgs:
    """Check a TT convolution's constructor arguments against the house limits.

    Args:
        in_modes, out_modes: channel modes (ints, or text like ``"4x8x8"``): whole numbers
            of at least 1, the same count on both sides, at most :data:`MAX_CHANNEL_MODES`.
        kernel_size: one whole number or ``(kh, kw)``, each in ``1..MAX_KERNEL_SIDE``.
        stride: one or two whole numbers in ``1..MAX_STRIDE``.
        padding: one or two whole numbers in ``0..MAX_PADDING``, ``"valid"`` (no padding), or
            ``"same"`` (stride 1 and odd kernel sides only).
        dilation: only 1 (dilated TT convolutions are not written yet).
        padding_mode: only ``"zeros"``.

    Returns:
        The :class:`ConvArgs`.

    Raises:
        ValueError: naming the field and the fix.
    """
    in_modes = parse_modes(in_modes, "in_modes")
    out_modes = parse_modes(out_modes, "out_modes")
    if len(in_modes) != len(out_modes):
        raise ValueError(f"in_modes {modes_text(in_modes)} has {len(in_modes)} modes but out_modes "
                         f"{modes_text(out_modes)} has {len(out_modes)}: both need the same number (pad one with 1s, "
                         f"e.g. 4x8x8 and 8x8x1)")
    if len(in_modes) > MAX_CHANNEL_MODES:
        raise ValueError(f"in_modes has {len(in_modes)} modes, more than the {MAX_CHANNEL_MODES} channel modes a TT "
                         f"convolution may have (with its spatial core that makes {MAX_MODES} cores): merge "
                         f"neighbouring modes, e.g. 2x2 into 4")
    kernel = check_pair(kernel_size, "kernel_size", 1, MAX_KERNEL_SIDE)
    strides = check_pair(stride, "stride", 1, MAX_STRIDE)
    if isinstance(dilation, numbers.Integral) and not isinstance(dilation, bool):
        dilation = (int(dilation), int(dilation))
    if not (isinstance(dilation, Sequence) and tuple(dilation) == (1, 1)):
        raise ValueError(f"dilation {short_repr(dilation)}: dilated TT convolutions are not written yet; use dilation=1")
    if padding_mode != "zeros":
        raise ValueError(f"padding_mode {short_repr(padding_mode)}: other padding modes are not written yet for TT convolutions; use 'zeros'")
    if padding == "valid":
        pads = (0, 0)
    elif padding == "same":
        if strides != (1, 1) or kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
            raise ValueError(f"padding 'same' needs stride 1 and odd kernel sides (got kernel_size {kernel}, stride "
                             f"{strides}): give the padding as numbers instead")
        pads = (kernel[0] // 2, kernel[1] // 2)
    else:
        pads = check_pair(padding, "padding", 0, MAX_PADDING)
    return ConvArgs(in_modes, out_modes, kernel, strides, pads)


def conv_output_side(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output side of a convolution along one axis: ``(size + 2 padding - kernel) // stride + 1`` (0 or less:
    the padded image is smaller than the kernel)."""
    return (int(size) + 2 * int(padding) - int(kernel)) // int(stride) + 1


def conv_output_size(
    height: int, width: int, kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int]
) -> tuple[int, int]:
    """``(H', W')`` of a convolution of an ``H x W`` image (see :func:`conv_output_side`)."""
    return (conv_output_side(height, kernel_size[0], stride[0], padding[0]),
            conv_output_side(width, kernel_size[1], stride[1], padding[1]))


def conv_tt_modes(
    in_modes: Sequence[int], out_modes: Sequence[int], kernel_size: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The modes of the kernel's TT-matrix: ``((kh*kw, c_1..c_d), (1, s_1..s_d))`` (see the module notes)."""
    return (int(kernel_size[0]) * int(kernel_size[1]), *map(int, in_modes)), (1, *map(int, out_modes))


def plan_conv_ranks(
    in_modes: Sequence[int], out_modes: Sequence[int], kernel_size: Sequence[int], ranks: RanksLike
) -> RankPlan:
    """Resolve a TT convolution's ``ranks`` (an int, ``d`` ints ``(r_0..r_{d-1})`` or ``None`` for the maximal
    useful ones) into the ranks it uses: :func:`ttexplore.tt.ttmath.plan_ranks` of :func:`conv_tt_modes`.
    ``r_0`` is at most ``min(kh*kw, C_in C_out)``."""
    tt_in, tt_out = conv_tt_modes(in_modes, out_modes, kernel_size)
    return plan_ranks(tt_in, tt_out, ranks)


def conv_core_shapes(
    in_modes: Sequence[int], out_modes: Sequence[int], kernel_size: Sequence[int], ranks: RanksLike
) -> list[tuple[int, int, int, int]]:
    """Shapes of the ``d + 1`` cores after clipping: ``(1, kh*kw, 1, r_0)``, then ``(r_{k-1}, c_k, s_k, r_k)``."""
    tt_in, tt_out = conv_tt_modes(in_modes, out_modes, kernel_size)
    full = full_ranks(plan_ranks(tt_in, tt_out, ranks).ranks)
    return [(full[k], n, m, full[k + 1]) for k, (n, m) in enumerate(zip(tt_in, tt_out))]


def conv_param_count(
    in_modes: Sequence[int], out_modes: Sequence[int], kernel_size: Sequence[int], ranks: RanksLike = None,
    bias: bool = False,
) -> int:
    """Weights of a TT convolution: ``kh kw r_0 + sum_k r_{k-1} c_k s_k r_k`` (plus ``C_out`` with ``bias``)."""
    count = sum(prod(shape) for shape in conv_core_shapes(in_modes, out_modes, kernel_size, ranks))
    return count + (prod(out_modes) if bias else 0)


def dense_conv_param_count(in_channels: int, out_channels: int, kernel_size: Sequence[int], bias: bool = False) -> int:
    """Weights of ``nn.Conv2d(in_channels, out_channels, kernel_size)``: ``C_out C_in kh kw`` (+ ``C_out``)."""
    return int(out_channels) * int(in_channels) * prod(kernel_size) + (int(out_channels) if bias else 0)


def dense_conv_flops(
    in_channels: int, out_channels: int, kernel_size: Sequence[int], output_size: Sequence[int], batch: int = 1
) -> int:
    """FLOPs of the dense convolution: ``2 B H' W' C_out C_in kh kw`` (multiply-adds counted twice, as
    ``torch.utils.flop_counter.FlopCounterMode`` counts them; the bias is not counted)."""
    return 2 * int(batch) * prod(output_size) * int(out_channels) * int(in_channels) * prod(kernel_size)


# ---------------------------------------------------------------- the naive TT of the 4-D kernel
def tt4d_modes(in_channels: int, out_channels: int, kernel_size: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The 4-D kernel ``(C_out, C_in, kh, kw)`` as a TT-matrix of one row: in-modes ``(C_out, C_in, kh, kw)``,
    out-modes ``(1, 1, 1, 1)`` (a TT tensor is a TT-matrix whose out-modes are 1; the baseline
    ``TT4dConv2d`` of Garipov et al.'s comparison)."""
    return (int(out_channels), int(in_channels), int(kernel_size[0]), int(kernel_size[1])), (1, 1, 1, 1)


def plan_tt4d_ranks(in_channels: int, out_channels: int, kernel_size: Sequence[int], ranks: RanksLike) -> RankPlan:
    """The three ranks ``(r_1, r_2, r_3)`` of the 4-D kernel's TT after clipping to the maximal useful ones:
    ``r_1 <= min(C_out, C_in kh kw)``, ``r_2 <= min(C_out C_in, kh kw)``, ``r_3 <= min(C_out C_in kh, kw)``."""
    tt_in, tt_out = tt4d_modes(in_channels, out_channels, kernel_size)
    return plan_ranks(tt_in, tt_out, ranks)


def tt4d_param_count(in_channels: int, out_channels: int, kernel_size: Sequence[int], ranks: RanksLike) -> int:
    """Weights of the 4-D kernel's TT: ``C_out r_1 + r_1 C_in r_2 + r_2 kh r_3 + r_3 kw`` (ranks clipped)."""
    r_1, r_2, r_3 = plan_tt4d_ranks(in_channels, out_channels, kernel_size, ranks).ranks
    kh, kw = int(kernel_size[0]), int(kernel_size[1])
    return int(out_channels) * r_1 + r_1 * int(in_channels) * r_2 + r_2 * kh * r_3 + r_3 * kw


def tt4d_rebuild_flops(in_channels: int, out_channels: int, kernel_size: Sequence[int], ranks: Sequence[int]) -> int:
    """FLOPs of rebuilding the kernel from its four cores by three GEMMs (``ranks`` as used):
    ``2 C_out C_in (r_1 r_2 + kh r_2 r_3 + kh kw r_3)``."""
    r_1, r_2, r_3 = (int(rank) for rank in ranks)
    kh, kw = int(kernel_size[0]), int(kernel_size[1])
    return 2 * int(out_channels) * int(in_channels) * (r_1 * r_2 + kh * r_2 * r_3 + kh * kw * r_3)
