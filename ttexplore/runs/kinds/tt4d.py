"""The tt4d kind: the naive TT of a convolution's 4-D kernel ``(C_out, C_in, kh, kw)`` as four cores
(``TT4dConv2d``), the baseline Garipov et al. (2016) show to compress worse than their reshaping
(the ``ttconv`` kind). Text form ``tt4d:OUT[:RANKS][:K][:sS]``: ``tt4d:64:4:3`` (64 output channels,
ranks 4, a 3x3 kernel); ``RANKS`` one number or three ``(r_1, r_2, r_3)``, clipped to the maximal useful
ones (``r_2 <= K^2``, ``r_3 <= K``). Pure Python at import."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Union

from ttexplore.tt.convshape import dense_conv_flops, plan_tt4d_ranks, tt4d_param_count, tt4d_rebuild_flops
from ttexplore.tt.ttshape import ranks_text
from ttexplore.runs.fields import is_huge, short_repr
from ttexplore.runs.kinds.base import FLOAT_BYTES, LayerMemory, LayerSpec, Place, Shape, is_whole, ranks_field, whole_value
from ttexplore.runs.kinds.conv import DEFAULT_KERNEL, ConvLayerSpec, conv_work_bytes, split_conv_text
from ttexplore.runs.kinds.images import (MAX_CHANNELS, check_kernel_and_stride, check_out_shape, check_side_number,
                                         conv_out_shape, conv_padding, image_shape, stride_text, stride_value,
                                         suggested_channels)

__all__ = ["TT4dLayerSpec"]

RanksSetting = Union[int, tuple[int, ...], None]


@dataclass(frozen=True)
class TT4dLayerSpec(LayerSpec):
    """A convolution whose kernel is a TT tensor of cores ``(1, C_out, r_1)``, ``(r_1, C_in, r_2)``,
    ``(r_2, K, r_3)``, ``(r_3, K, 1)``; its forward rebuilds the kernel (small) and runs one ``F.conv2d``.

    Complexity: ``C_out r_1 + r_1 C_in r_2 + r_2 K r_3 + r_3 K`` weights; FLOPs the rebuild
    (``2 C_out C_in (r_1 r_2 + K r_2 r_3 + K^2 r_3)``) plus the dense convolution.
    """

    channels: int = 64
    ranks: RanksSetting = 4
    kernel_size: int = DEFAULT_KERNEL
    stride: int = 1

    name = "tt4d"
    aliases = ("tt-4d", "tt_4d")
    syntax = "tt4d:OUT[:RANKS][:K][:sS]"
    example = "tt4d:64:4:3"
    title = "TT 4-D conv"
    keys = ("channels", "ranks", "kernel_size", "stride")
    reads = keys
    has_tt_cores = True
    flattens = False

    @classmethod
    def parse(cls, body: str, where: "Union[int, Place]" = 0) -> "TT4dLayerSpec":
        place = Place.of(where)
        return cls.from_values(split_conv_text(body, ("channels", "ranks", "kernel_size"), place, cls.syntax,
                                               cls.example, cls.name), place)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: "Union[int, Place]" = 0) -> "TT4dLayerSpec":
        place = Place.of(where)
        channels = whole_value(values.get("channels"), place, "channels",
                               f"write the output channels as a whole number, e.g. {cls.example}")
        if channels is None:
            raise place.error("channels", f"{place.name('channels')} is missing: a convolution needs its output "
                                          f"channels, e.g. {cls.example}")
        kernel = whole_value(values.get("kernel_size"), place, "kernel_size",
                             f"write the kernel side as a whole number, e.g. {cls.example}")
        return cls(channels, ranks_field(values.get("ranks", 4), place), DEFAULT_KERNEL if kernel is None else kernel,
                   stride_value(values.get("stride"), place, "tt4d:64:4:3:s2"))

    def to_dict(self) -> dict[str, Any]:
        ranks = list(self.ranks) if isinstance(self.ranks, tuple) else self.ranks
        return {"kind": self.name, "channels": self.channels, "ranks": ranks, "kernel_size": self.kernel_size,
                "stride": self.stride}

    def text(self) -> str:
        rank = ranks_text(self.ranks)[2:] if self.ranks is not None else "max"
        return f"tt4d:{self.channels}:{rank}:{self.kernel_size}{stride_text(self.stride)}"

    # ------------------------------------------------------------ sizes
    @property
    def kernel(self) -> tuple[int, int]:
        return (self.kernel_size, self.kernel_size)

    @property
    def padding(self) -> int:
        return conv_padding(self.kernel_size)

    def out_shape(self, in_shape: Shape) -> Shape:
        return conv_out_shape(self.channels, image_shape(in_shape, Place(), self.text()), self.kernel_size, self.stride)

    def params(self, in_shape: Shape) -> int:
        return tt4d_param_count(int(in_shape[0]), self.channels, self.kernel, self.ranks)

    def bias_params(self, in_shape: Shape) -> int:
        return self.channels

    def dense_params(self, in_shape: Shape) -> int:
        return self.dense_twin().params(in_shape)

    def dense_twin(self) -> ConvLayerSpec:
        return ConvLayerSpec(self.channels, self.kernel_size, self.stride)

    def flops(self, in_shape: Shape) -> int:
        """The kernel's rebuild plus one dense convolution of one image (what ``FlopCounterMode`` counts)."""
        out_shape = self.out_shape(in_shape)
        return tt4d_rebuild_flops(in_shape[0], self.channels, self.kernel, self.ranks_used(in_shape)) + \
            dense_conv_flops(in_shape[0], self.channels, self.kernel, out_shape[1:])

    def forward_calls(self) -> int:
        """Three GEMMs of the rebuild, one convolution."""
        return 4

    def memory(self, in_shape: Shape, batch: int, training: bool = True, input_grad: bool = False,
               strategy: str = "auto") -> LayerMemory:
        """Cores and bias; the rebuild's two intermediates and the kernel (kept for the backward, with their
        gradients, when training) and the convolution's layout copies (:func:`~.conv.conv_work_bytes`)."""
        c_in = int(in_shape[0])
        _, r_2, r_3 = self.ranks_used(in_shape)
        rebuild = self.channels * c_in * (r_2 + self.kernel_size * r_3 + self.kernel_size ** 2)
        work = FLOAT_BYTES * rebuild * (2 if training else 1) + conv_work_bytes(in_shape, self.out_shape(in_shape),
                                                                                batch, training)
        modes = (self.channels, c_in, self.kernel_size, self.kernel_size)
        full = (1, *self.ranks_used(in_shape), 1)
        largest = max([full[k] * mode * full[k + 1] for k, mode in enumerate(modes)] + [self.channels])
        return LayerMemory(self.params(in_shape) + self.channels, largest, work)

    # ------------------------------------------------------------ names
    def label(self) -> str:
        """``"TT4d conv 64 r=4 3x3"``."""
        stride = f" s{self.stride}" if self.stride > 1 else ""
        return f"TT4d conv {self.channels} {ranks_text(self.ranks)} {self.kernel_size}x{self.kernel_size}{stride}"

    def shape_label(self) -> str:
        return f"tt4d {self.channels}"

    def part_label(self) -> str:
        return f"tt4d {self.channels}"

    def describe(self, in_shape: Shape) -> str:
        ranks = ranks_text(self.ranks_used(in_shape)) if self.ranks is not None else "r=max"
        return f"TT4d conv {in_shape[0]}->{self.channels} {ranks} {self.kernel_size}x{self.kernel_size}"

    def shrink_hint(self) -> str:
        return "lower the 4-D TT convolution's ranks or its channels"

    # ------------------------------------------------------------ checks
    def check(self, in_shape: Shape, where: "Union[int, Place]" = 0) -> None:
        place = Place.of(where)
        check_side_number(self.channels, place, "channels", 1, MAX_CHANNELS, self.example)
        check_kernel_and_stride(self.kernel_size, self.stride, place, self.example)
        image = image_shape(in_shape, place, self.text())
        ranks = self.ranks if isinstance(self.ranks, tuple) else (self.ranks,)
        if self.ranks is not None and not all(is_whole(rank) for rank in ranks):
            raise place.error("ranks", f"ranks {short_repr(self.ranks)} must be a whole number, three (r_1,r_2,r_3), "
                                       "or None (max)")
        if is_huge(self.ranks):
            raise place.error("ranks", "ranks is far too large")
        try:
            plan_tt4d_ranks(image[0], self.channels, self.kernel, self.ranks)
        except ValueError as error:
            raise place.error("ranks", f"{error} (the 4-D kernel's TT has three ranks)") from None
        check_out_shape(self.out_shape(image), image, place, self.text(),
                        "use a smaller kernel or stride, or fewer pool layers before it")

    # ------------------------------------------------------------ ranks
    @property
    def rank_setting(self) -> RanksSetting:
        return self.ranks

    def ranks_used(self, in_shape: Shape) -> tuple[int, ...]:
        return plan_tt4d_ranks(int(in_shape[0]), self.channels, self.kernel, self.ranks).ranks

    def clipping(self, in_shape: Shape) -> tuple[tuple[int, int, int], ...]:
        return plan_tt4d_ranks(int(in_shape[0]), self.channels, self.kernel, self.ranks).clipped

    def with_ranks(self, ranks: Any) -> "TT4dLayerSpec":
        return replace(self, ranks=ranks_field(ranks, Place()))

    @classmethod
    def suggest(cls, in_shape: Shape, width: Optional[int] = None,
                previous: Optional[LayerSpec] = None) -> "Optional[TT4dLayerSpec]":
        """After images: the naive TT of a 3x3 kernel to more channels, ranks 4; none after a vector
        (``width`` and ``previous`` do not apply: the kind chooses its channels)."""
        return cls(suggested_channels(int(in_shape[0])), 4, DEFAULT_KERNEL) if len(in_shape) == 3 else None

    # ------------------------------------------------------------ the module
    def build(self, in_shape: Shape, init: str, strategy: str, generator: Any, dtype: Any = None,
              device: Any = None) -> Any:
        """A ``TT4dConv2d`` whose rebuilt kernel has the std of ``init`` (clipping warns once), drawn from ``generator``."""
        from ttexplore.nn.tt4d import TT4dConv2d

        layer = TT4dConv2d(int(in_shape[0]), self.channels, self.ranks, self.kernel_size, self.stride, self.padding,
                           init=init, dtype=dtype, device=device)
        layer.reset_parameters(generator=generator)
        return layer

