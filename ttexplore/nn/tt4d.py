"""``TT4dConv2d``: the naive TT of a convolution kernel, the baseline Garipov et al. (2016) compare with.

The ``(C_out, C_in, kh, kw)`` kernel is a 4-way tensor stored as four TT cores, one per axis:

    ``K(s, c, x, y) = G_1[s] G_2[c] G_3[x] G_4[y]``,  ``G_1 (1, C_out, r_1)``, ``G_2 (r_1, C_in, r_2)``,
    ``G_3 (r_2, kh, r_3)``, ``G_4 (r_3, kw, 1)``

(TensorLy-Torch's ``FactorizedConv(factorization="tt")`` is this format). Garipov et al. show that
it compresses worse than their reshaping (:class:`~ttexplore.nn.ttconv.TTConv2d`: the channels
split into modes, the kernel position a core of its own): the 3x3 spatial axes give ranks ``r_2 <= 9``,
``r_3 <= 3`` and the channel axes are not factorized at all, so the two channel cores hold
``C_out r_1 + r_1 C_in r_2`` weights.

The forward rebuilds the kernel and runs one ``F.conv2d``. The kernel is tiny next to the convolution
(``C_out C_in kh kw`` entries against ``B H' W' C_out C_in kh kw`` multiply-adds), so the rebuild
costs ``O(C_out C_in (r_1 r_2 + kh r_2 r_3 + kh kw r_3))`` once a batch, less than one image's
convolution for every rank this format can have; a sequence of four small convolutions would move
``B H W`` times more data through memory for the same result.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ttexplore.nn.ttmatrix import TTMatrix
from ttexplore.tt.convshape import (MAX_KERNEL_SIDE, MAX_PADDING, MAX_STRIDE, PairLike, check_pair, conv_output_size,
                                    plan_tt4d_ranks, tt4d_modes)
from ttexplore.tt.init import INITS, target_std, tt_core_std
from ttexplore.tt.limits import MAX_FEATURES, whole_number
from ttexplore.tt.memory import check_bytes
from ttexplore.tt.ttmath import RanksLike, check_rank_caps, check_rel_error, prod

__all__ = ["TT4dConv2d"]


class TT4dConv2d(nn.Module):
    """A 2-D convolution whose ``(C_out, C_in, kh, kw)`` kernel is a TT tensor of four cores (see the module notes).

    Args:
        in_channels, out_channels: ``C_in``, ``C_out``.
        ranks: an int (every rank), three ints ``(r_1, r_2, r_3)`` or ``None`` (the maximal useful ones);
            larger ranks are clipped (:attr:`clipped_ranks`, one warning).
        kernel_size, stride, padding: an int or ``(height, width)``, as for ``nn.Conv2d`` (numbers only).
        bias: learn an additive bias of ``C_out``.
        init: ``"he"`` (default), ``"glorot"`` or ``"lecun"``: the rebuilt kernel gets the std of ``nn.Conv2d``'s
            weight so initialised (``fan_in = C_in kh kw``): per-core std ``(sigma^2 / (r_1 r_2 r_3))^(1/8)``.
        dtype, device: of the parameters.

    Attributes:
        cores: ``nn.ParameterList`` of the four cores ``(r_{k-1}, n_k, r_k)``.
        ranks: ``(r_1, r_2, r_3)`` in use. ``clipped_ranks``: ``(k, requested, used)`` per clipped rank.
        approximation_error: ``||K_tt - K|| / ||K||`` when the cores came from a dense kernel, else ``None``.
    """

    def __init__(self, in_channels: int, out_channels: int, ranks: RanksLike, kernel_size: PairLike, stride: PairLike = 1,
                 padding: PairLike = 0, bias: bool = True, init: str = "he", dtype: Optional[torch.dtype] = None,
                 device: Optional[torch.device] = None) -> None:
        super().__init__()
        self.in_channels = whole_number(in_channels, "in_channels")
        self.out_channels = whole_number(out_channels, "out_channels")
        for field, value in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if not 1 <= value <= MAX_FEATURES:
                raise ValueError(f"{field} {value} must be between 1 and 2^40")
        self.kernel_size = check_pair(kernel_size, "kernel_size", 1, MAX_KERNEL_SIDE)
        self.stride = check_pair(stride, "stride", 1, MAX_STRIDE)
        self.padding = check_pair(padding, "padding", 0, MAX_PADDING)
        if not isinstance(init, str) or init not in INITS:
            raise ValueError(f"init {init!r:.40} is unknown: use one of {', '.join(INITS)}")
        plan = plan_tt4d_ranks(self.in_channels, self.out_channels, self.kernel_size, ranks)
        self.ranks: tuple[int, ...] = plan.ranks
        self.clipped_ranks = plan.clipped
        if plan.clipped:
            warnings.warn(f"TT4dConv2d: {plan.describe_clipping()}", UserWarning, stacklevel=2)
        self.init = init
        self.approximation_error: Optional[float] = None
        shapes = self.core_shapes
        check_bytes(sum(prod(shape) for shape in shapes) * (dtype or torch.get_default_dtype()).itemsize,
                    "the 4-D TT convolution's cores")
        factory = {"dtype": dtype, "device": device}
        self.cores = nn.ParameterList(nn.Parameter(torch.empty(*shape, **factory)) for shape in shapes)
        self.bias = nn.Parameter(torch.empty(self.out_channels, **factory)) if bias else None
        self.reset_parameters()

    # ------------------------------------------------------------------ what it is
    @property
    def core_shapes(self) -> list[tuple[int, int, int]]:
        """``(1, C_out, r_1)``, ``(r_1, C_in, r_2)``, ``(r_2, kh, r_3)``, ``(r_3, kw, 1)``."""
        modes, _ = tt4d_modes(self.in_channels, self.out_channels, self.kernel_size)
        full = (1, *self.ranks, 1)
        return [(full[k], mode, full[k + 1]) for k, mode in enumerate(modes)]

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(H', W')`` of the output for an ``H x W`` input."""
        return conv_output_size(height, width, self.kernel_size, self.stride, self.padding)

    def param_count(self, include_bias: bool = False) -> int:
        """Number of core weights (plus bias entries when asked)."""
        count = sum(core.numel() for core in self.cores)
        return count + (self.out_channels if include_bias and self.bias is not None else 0)

    def reset_parameters(self, generator: Optional[torch.Generator] = None) -> None:
        """Draw the cores so the rebuilt kernel has the std of :attr:`init` (an entry sums ``r_1 r_2 r_3``
        products of four independent core entries); zero the bias."""
        area = prod(self.kernel_size)
        sigma = target_std(self.init, self.in_channels * area, self.out_channels * area)
        core_std = tt_core_std(sigma, self.ranks, 4)
        with torch.no_grad():
            for core in self.cores:
                core.normal_(0.0, core_std, generator=generator)
            if self.bias is not None:
                self.bias.zero_()

    def to_dense(self) -> torch.Tensor:
        """The kernel, ``(C_out, C_in, kh, kw)`` like ``nn.Conv2d.weight``; differentiable.

        Complexity: three GEMMs, ``O(C_out C_in (r_1 r_2 + kh r_2 r_3 + kh kw r_3))``.
        """
        first, second, third, fourth = self.cores
        c_out, c_in, (kh, kw) = self.out_channels, self.in_channels, self.kernel_size
        r_1, r_2, r_3 = self.ranks
        # (C_out, r_1) @ (r_1, C_in r_2) -> (C_out C_in, r_2)
        kernel = (first.reshape(c_out, r_1) @ second.reshape(r_1, c_in * r_2)).reshape(c_out * c_in, r_2)
        # (C_out C_in, r_2) @ (r_2, kh r_3) -> (C_out C_in kh, r_3)
        kernel = (kernel @ third.reshape(r_2, kh * r_3)).reshape(c_out * c_in * kh, r_3)
        # (C_out C_in kh, r_3) @ (r_3, kw) -> (C_out, C_in, kh, kw)
        return (kernel @ fourth.reshape(r_3, kw)).reshape(c_out, c_in, kh, kw)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Convolve ``(B, C_in, H, W)`` (or ``(C_in, H, W)``) inputs by the rebuilt kernel; ``(B, C_out, H', W')`` back.

        Complexity: :meth:`to_dense` plus one ``F.conv2d``, ``2 B H' W' C_out C_in kh kw`` FLOPs.
        """
        if not isinstance(inputs, torch.Tensor) or inputs.dim() not in (3, 4) or inputs.shape[-3] != self.in_channels:
            found = f"shape {tuple(inputs.shape)}" if isinstance(inputs, torch.Tensor) else f"a {type(inputs).__name__}"
            raise ValueError(f"TT4dConv2d expects images shaped (batch, {self.in_channels}, height, width), got {found}")
        return F.conv2d(inputs, self.to_dense(), self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, ranks={list(self.ranks)}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")

    # ------------------------------------------------------------------ TT values
    def tt_matrix(self) -> TTMatrix:
        """The kernel as a one-row :class:`TTMatrix` (in-modes ``(C_out, C_in, kh, kw)``, out-modes all 1;
        detached copies of the cores): its ``round``, ``norm`` and ``singular_values`` are the kernel's."""
        return TTMatrix([core.detach().clone().unsqueeze(2) for core in self.cores], self.approximation_error)

    @classmethod
    def from_tt(cls, tt: TTMatrix, kernel_size: PairLike, stride: PairLike = 1, padding: PairLike = 0,
                bias: "Optional[torch.Tensor] | bool" = None, init: str = "he") -> "TT4dConv2d":
        """A layer whose kernel is ``tt`` (a TT-matrix with in-modes ``(C_out, C_in, kh, kw)``, out-modes
        ``(1, 1, 1, 1)``; cores copied, dtype and device kept).

        Raises:
            ValueError: for a TT-matrix of other modes, ranks above the maximal useful ones, or a bad bias.
        """
        if not isinstance(tt, TTMatrix):
            raise ValueError(f"from_tt needs a TTMatrix, got a {type(tt).__name__}")
        kernel = check_pair(kernel_size, "kernel_size", 1, MAX_KERNEL_SIDE)
        if tt.d != 4 or tt.out_modes != (1, 1, 1, 1) or tt.in_modes[2:] != kernel:
            raise ValueError(f"a 4-D TT kernel has in-modes (C_out, C_in, {kernel[0]}, {kernel[1]}) and out-modes "
                             f"(1, 1, 1, 1); got {tt.in_modes} and {tt.out_modes}")
        out_channels, in_channels = tt.in_modes[0], tt.in_modes[1]
        plan = plan_tt4d_ranks(in_channels, out_channels, kernel, tt.ranks)
        if plan.clipped:
            raise ValueError(f"the TT kernel's ranks {list(tt.ranks)} exceed the maximal useful ones "
                             f"{list(plan.max_useful)}: call tt.round() first (exact)")
        if isinstance(bias, torch.Tensor) and tuple(bias.shape) != (out_channels,):
            raise ValueError(f"bias has shape {tuple(bias.shape)} but the layer has {out_channels} output channels")
        layer = cls(in_channels, out_channels, tt.ranks, kernel, stride, padding, bias=bias is not None and bias is not False,
                    init=init, dtype=tt.dtype, device=tt.device)
        with torch.no_grad():
            for target, core in zip(layer.cores, tt.cores):
                target.copy_(core.detach().squeeze(2))
            if isinstance(bias, torch.Tensor):
                layer.bias.copy_(bias.detach())
        layer.approximation_error = tt.approximation_error
        return layer

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, ranks: RanksLike = None, rel_error: Optional[float] = None) -> "TT4dConv2d":
        """Compress an ``nn.Conv2d`` by TT-SVD of its 4-D kernel (its bias, stride and padding kept; groups 1,
        dilation 1, numeric zero padding only).

        Complexity: one SVD per core, dominated by the first, ``O(C_out^2 C_in kh kw)``.
        """
        if not isinstance(conv, nn.Conv2d):
            raise ValueError(f"from_conv needs an nn.Conv2d, got a {type(conv).__name__}")
        if conv.groups != 1 or tuple(conv.dilation) != (1, 1) or isinstance(conv.padding, str) \
                or conv.padding_mode != "zeros":
            raise ValueError("from_conv takes a plain convolution: groups=1, dilation=1, numeric zero padding")
        check_rel_error(rel_error)
        check_rank_caps(ranks)
        kernel = tuple(conv.kernel_size)
        plan = plan_tt4d_ranks(conv.in_channels, conv.out_channels, kernel, ranks)
        in_modes, out_modes = tt4d_modes(conv.in_channels, conv.out_channels, kernel)
        # (C_out, C_in, kh, kw) -> one row, C_out the slowest index: the TT tensor's axis order
        tt = TTMatrix.from_dense(conv.weight.detach().reshape(1, -1), in_modes, out_modes, ranks=plan.ranks,
                                 rel_error=rel_error)
        return cls.from_tt(tt, kernel, conv.stride, conv.padding, bias=conv.bias)

    def rounded(self, max_rank: RanksLike = None, rel_error: Optional[float] = None) -> "TT4dConv2d":
        """A new layer whose kernel is this one's TT-rounded (:meth:`TTMatrix.round`): lower ranks, the same
        stride, padding, bias (copied), init, dtype and device; :attr:`approximation_error` against this kernel.

        Complexity: ``O(C_out C_in r^3)`` at most, never building the kernel.
        """
        tt = self.tt_matrix().round(max_rank=max_rank, rel_error=rel_error)
        layer = TT4dConv2d.from_tt(tt, self.kernel_size, self.stride, self.padding,
                                   bias=self.bias.detach() if self.bias is not None else None, init=self.init)
        layer.train(self.training)
        return layer
