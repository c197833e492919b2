"""The TT-conv kind: a convolution whose kernel is a TT-matrix with a spatial core (``TTConv2d``, Garipov
et al. 2016). Text form ``ttconv:IN->OUT[:RANKS][:K][:sS]``: ``ttconv:4x8->4x4x4:4:3`` (32 input channels as
4x8, 64 output channels as 4x4x4, ranks 4, a 3x3 kernel), ``ttconv:4x4x4:2`` (64 -> 64), ``...:max``.
A side given with fewer modes is padded with 1s at its end (``4x8->4x4x4`` is ``4x8x1->4x4x4``: both
sides need as many modes, one core each), and that padded form is the layer's one canonical form.
``RANKS`` are ``d`` numbers ``(r_0..r_{d-1})``, ``r_0`` joining the spatial core to the first channel
core, or one for all; clipped to the maximal useful ones as a TT layer's are. Pure Python at import."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Union

from ttexplore.tt import ttmath
from ttexplore.tt.convshape import MAX_CHANNEL_MODES, conv_core_shapes, conv_param_count, plan_conv_ranks
from ttexplore.tt.shapes import default_modes
from ttexplore.tt.ttshape import layer_text, modes_text, ranks_text
from ttexplore.runs.fields import is_huge, short_repr
from ttexplore.runs.kinds.base import (FLOAT_BYTES, LayerMemory, LayerSpec, Place, Shape, check_modes_type, example_modes,
                                       is_whole, modes_field, ranks_field, whole_value)
from ttexplore.runs.kinds.conv import DEFAULT_KERNEL, ConvLayerSpec, split_conv_text
from ttexplore.runs.kinds.images import (check_kernel_and_stride, check_out_shape, conv_out_shape, conv_padding,
                                         image_shape, stride_text, stride_value, suggested_channels)

__all__ = ["TTConvLayerSpec", "DEFAULT_CONV_RANK", "padded_modes", "conv_strategy"]

#: The rank of a TT convolution typed without one.
DEFAULT_CONV_RANK = 4

#: The fewest input channels a suggested TT convolution reads.
MIN_SUGGESTED_CHANNELS = 8

RanksSetting = Union[int, tuple[int, ...], None]


def padded_modes(in_modes: tuple[int, ...], out_modes: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Both sides with as many modes: the shorter padded with 1s at its end (``4x8``, ``4x4x4`` -> ``4x8x1``, ``4x4x4``)."""
    count = max(len(in_modes), len(out_modes))
    return tuple(in_modes) + (1,) * (count - len(in_modes)), tuple(out_modes) + (1,) * (count - len(out_modes))


def conv_strategy(strategy: str) -> str:
    """The ``TTConv2d`` strategy a run's ``strategy`` names: a convolution strategy by its name, any other
    (a fully-connected layer's ``ltr``, ``einsum``, ...) ``auto``."""
    from ttexplore.costmodel.conv import CONV_STRATEGIES

    return strategy if strategy in CONV_STRATEGIES else "auto"


@dataclass(frozen=True)
class TTConvLayerSpec(LayerSpec):
    """A TT convolution: spatial core ``(1, K^2, 1, r_0)``, channel cores ``(r_{k-1}, c_k, s_k, r_k)``.

    Complexity: ``K^2 r_0 + sum_k r_{k-1} c_k s_k r_k`` weights; FLOPs those of the forward the conv
    cost model picks (:mod:`ttexplore.costmodel.conv`).
    """

    in_modes: tuple[int, ...] = (4, 8, 1)
    out_modes: tuple[int, ...] = (4, 4, 4)
    ranks: RanksSetting = DEFAULT_CONV_RANK
    kernel_size: int = DEFAULT_KERNEL
    stride: int = 1

    name = "ttconv"
    aliases = ("tt-conv", "tt_conv")
    syntax = "ttconv:IN->OUT[:RANKS][:K][:sS]"
    example = "ttconv:4x8->4x4x4:4:3"
    title = "TT conv"
    keys = ("in_modes", "out_modes", "ranks", "kernel_size", "stride")
    reads = keys
    has_tt_cores = True
    flattens = False

    # ------------------------------------------------------------ reading and writing
    @classmethod
    def parse(cls, body: str, where: "Union[int, Place]" = 0) -> "TTConvLayerSpec":
        """``"4x8->4x4x4:4:3"`` (the text after ``ttconv:``)."""
        place = Place.of(where)
        values: dict[str, Any] = split_conv_text(body, ("modes", "ranks", "kernel_size"), place, cls.syntax,
                                                 cls.example, cls.name)
        left, arrow, right = values.pop("modes", "").partition("->")
        if arrow and not right.strip():
            raise place.error("out_modes", f"ttconv:{body} has nothing after '->': write the output channels' modes "
                                           f"there, e.g. {cls.example}")
        if left.strip():
            values["in_modes"], values["out_modes"] = left, right or left
        return cls.from_values(values, place)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: "Union[int, Place]" = 0) -> "TTConvLayerSpec":
        place = Place.of(where)
        in_modes = modes_field(values.get("in_modes"), place, "in_modes")
        if in_modes is None:
            raise place.error("in_modes", f"{place.name('in_modes')} is missing: a TT convolution needs the modes of "
                                          f"its input channels, e.g. {cls.example}")
        out_modes = modes_field(values.get("out_modes"), place, "out_modes")
        in_modes, out_modes = padded_modes(in_modes, out_modes if out_modes is not None else in_modes)
        ranks = ranks_field(values.get("ranks", DEFAULT_CONV_RANK), place)
        kernel = whole_value(values.get("kernel_size"), place, "kernel_size",
                             f"write the kernel side as a whole number, e.g. {cls.example}")
        return cls(in_modes, out_modes, ranks, DEFAULT_KERNEL if kernel is None else kernel,
                   stride_value(values.get("stride"), place, "ttconv:4x8->4x4x4:4:3:s2"))

    def to_dict(self) -> dict[str, Any]:
        ranks = list(self.ranks) if isinstance(self.ranks, tuple) else self.ranks
        return {"kind": self.name, "in_modes": list(self.in_modes), "out_modes": list(self.out_modes), "ranks": ranks,
                "kernel_size": self.kernel_size, "stride": self.stride}

    def text(self) -> str:
        rank = ranks_text(self.ranks)[2:] if self.ranks is not None else "max"
        return f"ttconv:{layer_text(self.in_modes, self.out_modes)}:{rank}:{self.kernel_size}{stride_text(self.stride)}"

    # ------------------------------------------------------------ sizes
    @property
    def kernel(self) -> tuple[int, int]:
        return (self.kernel_size, self.kernel_size)

    @property
    def padding(self) -> int:
        return conv_padding(self.kernel_size)

    @property
    def out_channels(self) -> int:
        return ttmath.prod(self.out_modes)

    def out_shape(self, in_shape: Shape) -> Shape:
        return conv_out_shape(self.out_channels, image_shape(in_shape, Place(), self.text()), self.kernel_size, self.stride)

    def params(self, in_shape: Shape) -> int:
        return conv_param_count(self.in_modes, self.out_modes, self.kernel, self.ranks)

    def bias_params(self, in_shape: Shape) -> int:
        return self.out_channels

    def dense_params(self, in_shape: Shape) -> int:
        return self.dense_twin().params(in_shape)

    def dense_twin(self) -> ConvLayerSpec:
        return ConvLayerSpec(self.out_channels, self.kernel_size, self.stride)

    def costs(self, in_shape: Shape, batch: int, training: bool = False, input_grad: bool = True) -> dict[str, dict]:
        """The conv cost model's prices of every forward strategy for ``(C, H, W)`` inputs at ``batch`` (cached)."""
        from ttexplore.costmodel.conv import conv_strategy_costs

        return conv_strategy_costs(self.in_modes, self.out_modes, self.kernel, self.ranks_used(in_shape), batch,
                                   int(in_shape[1]), int(in_shape[2]), (self.stride,) * 2, (self.padding,) * 2, True,
                                   FLOAT_BYTES, training=training, input_grad=input_grad)

    def flops(self, in_shape: Shape) -> int:
        """FLOPs of one image's forward by the strategy ``auto`` picks for one image (inference)."""
        from ttexplore.costmodel.conv import best_conv_strategy

        costs = self.costs(in_shape, 1)
        return int(costs[best_conv_strategy(costs)]["flops"])

    def forward_calls(self) -> int:
        """A GEMM per channel core and the spatial step."""
        return len(self.in_modes) + 1

    def memory(self, in_shape: Shape, batch: int, training: bool = True, input_grad: bool = False,
               strategy: str = "auto") -> LayerMemory:
        """Cores and bias; the peak intermediates (and, training, what the backward keeps) of the forward
        ``strategy`` (``auto``: the cheapest) from the conv cost model, the call the forward makes."""
        from ttexplore.costmodel.conv import best_conv_strategy

        costs = self.costs(in_shape, batch, training, input_grad)
        name = conv_strategy(strategy)
        chosen = costs[name if name in costs else best_conv_strategy(costs)]
        work = int(chosen["peak_bytes"]) + (int(chosen["saved_bytes"]) if training else 0)
        shapes = conv_core_shapes(self.in_modes, self.out_modes, self.kernel, self.ranks)
        return LayerMemory(self.params(in_shape) + self.out_channels,
                           max([ttmath.prod(shape) for shape in shapes] + [self.out_channels]), work)

    # ------------------------------------------------------------ names
    def label(self) -> str:
        """``"TT conv 4x8x1->4x4x4 r=4 3x3"``."""
        stride = f" s{self.stride}" if self.stride > 1 else ""
        return f"TT conv {layer_text(self.in_modes, self.out_modes)} {ranks_text(self.ranks)} " \
               f"{self.kernel_size}x{self.kernel_size}{stride}"

    def shape_label(self) -> str:
        return f"conv {layer_text(self.in_modes, self.out_modes)}"

    def part_label(self) -> str:
        return f"conv {layer_text(self.in_modes, self.out_modes)}"

    def describe(self, in_shape: Shape) -> str:
        """The label with the ranks as used (clipped)."""
        ranks = ranks_text(self.ranks_used(in_shape)) if self.ranks is not None else "r=max"
        return f"TT conv {layer_text(self.in_modes, self.out_modes)} {ranks} {self.kernel_size}x{self.kernel_size}"

    def shrink_hint(self) -> str:
        return "lower the TT convolution's ranks or its channels"

    # ------------------------------------------------------------ checks
    def check(self, in_shape: Shape, where: "Union[int, Place]" = 0) -> None:
        place = Place.of(where)
        for name in ("in_modes", "out_modes"):
            check_modes_type(getattr(self, name), place, name)
            if is_huge(getattr(self, name)) or len(getattr(self, name)) > MAX_CHANNEL_MODES:
                raise place.error(name, f"{place.name(name)} has {len(getattr(self, name))} modes: a TT convolution "
                                        f"has at most {MAX_CHANNEL_MODES} channel modes (with its spatial core "
                                        f"{MAX_CHANNEL_MODES + 1} cores)")
        if len(self.out_modes) != len(self.in_modes):
            raise place.error("out_modes", f"out_modes {modes_text(self.out_modes)} has {len(self.out_modes)} modes but "
                                           f"in_modes {modes_text(self.in_modes)} has {len(self.in_modes)}: give both "
                                           f"the same number (pad one with 1s), or write the layer as text, which pads")
        check_kernel_and_stride(self.kernel_size, self.stride, place, self.example)
        image = image_shape(in_shape, place, self.text())
        if ttmath.prod(self.in_modes) != image[0]:
            raise place.error("in_modes", f"in_modes {modes_text(self.in_modes)} multiply to "
                                          f"{ttmath.prod(self.in_modes):,}, but {place.source} gives {image[0]:,} "
                                          f"channels: try {example_modes(image[0], len(self.in_modes))}")
        ranks = self.ranks if isinstance(self.ranks, tuple) else (self.ranks,)
        if self.ranks is not None and not all(is_whole(rank) for rank in ranks):
            raise place.error("ranks", f"ranks {short_repr(self.ranks)} must be a whole number, one per core boundary "
                                       "(r_0 first), or None (max)")
        if is_huge(self.ranks):
            raise place.error("ranks", "ranks is far too large")
        try:
            plan_conv_ranks(self.in_modes, self.out_modes, self.kernel, self.ranks)
        except ValueError as error:
            raise place.error("ranks", f"{error} (a TT convolution has one rank per channel mode, r_0 first)") from None
        check_out_shape(self.out_shape(image), image, place, self.text(),
                        "use a smaller kernel or stride, or fewer pool layers before it")

    # ------------------------------------------------------------ ranks
    @property
    def rank_setting(self) -> RanksSetting:
        return self.ranks

    def ranks_used(self, in_shape: Shape = ()) -> tuple[int, ...]:
        return plan_conv_ranks(self.in_modes, self.out_modes, self.kernel, self.ranks).ranks

    def clipping(self, in_shape: Shape = ()) -> tuple[tuple[int, int, int], ...]:
        return plan_conv_ranks(self.in_modes, self.out_modes, self.kernel, self.ranks).clipped

    def max_useful_ranks(self) -> tuple[int, ...]:
        """The maximal useful ranks ``(r_0..r_{d-1})`` (``r_0 <= K^2``)."""
        return plan_conv_ranks(self.in_modes, self.out_modes, self.kernel, self.ranks).max_useful

    def core_shapes(self) -> list[tuple[int, int, int, int]]:
        """The ``d + 1`` core shapes after clipping, spatial core first (for a core diagram)."""
        return conv_core_shapes(self.in_modes, self.out_modes, self.kernel, self.ranks)

    def with_ranks(self, ranks: Any) -> "TTConvLayerSpec":
        return replace(self, ranks=ranks_field(ranks, Place()))

    @classmethod
    def suggest(cls, in_shape: Shape, width: Optional[int] = None,
                previous: Optional[LayerSpec] = None) -> "Optional[TTConvLayerSpec]":
        """After images of at least :data:`MIN_SUGGESTED_CHANNELS` channels: a 3x3 TT convolution to more channels
        (:func:`~.images.suggested_channels`), each side's channels in 3 balanced modes smallest first (32 = 2x4x4),
        ranks 4. None after a vector, or after few channels (an image's: nothing to factorize, Garipov et al. keep
        the first convolution dense). ``width`` and ``previous`` do not apply: the kind chooses its channels."""
        if len(in_shape) != 3 or int(in_shape[0]) < MIN_SUGGESTED_CHANNELS:
            return None
        in_modes, out_modes = padded_modes(tuple(sorted(default_modes(int(in_shape[0]), 3))),
                                           tuple(sorted(default_modes(suggested_channels(int(in_shape[0])), 3))))
        return cls(in_modes, out_modes, DEFAULT_CONV_RANK, DEFAULT_KERNEL)

    # ------------------------------------------------------------ the module
    def build(self, in_shape: Shape, init: str, strategy: str, generator: Any, dtype: Any = None,
              device: Any = None) -> Any:
        """A ``TTConv2d`` whose rebuilt kernel has the std of ``init``, its cores drawn from ``generator``."""
        from ttexplore.nn.ttconv import TTConv2d

        layer = TTConv2d(self.in_modes, self.out_modes, self.ranks, self.kernel_size, self.stride, self.padding,
                         init=init, strategy=conv_strategy(strategy), dtype=dtype, device=device)
        layer.reset_parameters(generator=generator)
        return layer
