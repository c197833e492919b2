"""``TTConv2d``: a 2-D convolution whose kernel is a TT-matrix with a spatial core (Garipov et al. 2016)."""

from __future__ import annotations

import operator
import warnings
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ttexplore.nn import conv_forward
from ttexplore.nn.conv_kernels import rebuild_kernel
from ttexplore.nn.ttmatrix import TTMatrix
from ttexplore.nn.weightfile import WeightsFileError, check_state, read_payload, state_bytes, write_payload
from ttexplore.tt.convshape import (PairLike, check_conv_args, conv_core_shapes, conv_output_size, conv_tt_modes,
                                    plan_conv_ranks)
from ttexplore.tt.init import INITS, target_std, tt_core_std
from ttexplore.tt.memory import check_bytes
from ttexplore.tt.ttmath import RanksLike, check_rank_caps, check_rel_error, modes_text, prod

__all__ = ["TTConv2d"]

_VERSION = operator.attrgetter("_version")


class TTConv2d(nn.Module):
    """A 2-D convolution whose ``(C_out, C_in, kh, kw)`` kernel is stored in TT format.

    ``K(x, y, c, s) = G_0[(x, y)] G_1[c_1, s_1] ... G_d[c_d, s_d]`` (Garipov, Podoprikhin,
    Novikov and Vetrov 2016): ``cores[0]`` is the spatial core ``G_0`` of shape
    ``(1, kh*kw, 1, r_0)``, ``cores[k]`` (``k = 1..d``) the channel core
    ``(r_{k-1}, c_k, s_k, r_k)`` with ``r_d = 1``. Together they are the TT-matrix of the
    kernel as a ``(C_out, kh*kw*C_in)`` matrix (in-modes ``(kh*kw, c_1..c_d)``, out-modes
    ``(1, s_1..s_d)``; :mod:`ttexplore.tt.convshape`), which :meth:`tt_matrix` hands out. The
    kernel itself is never built unless that is the cheaper way to convolve
    (:mod:`ttexplore.nn.conv_forward`).

    Args:
        in_modes: ``(c_1, ..., c_d)``, multiplying to ``in_channels`` (at most 11 modes).
        out_modes: ``(s_1, ..., s_d)``, multiplying to ``out_channels``.
        ranks: an int (every rank), ``d`` ints ``(r_0, ..., r_{d-1})`` (``r_0`` joins the spatial
            core to the first channel core), or ``None`` for the maximal useful ranks. Ranks
            above the maximal useful ones are clipped (:attr:`clipped_ranks`, one warning).
        kernel_size, stride: an int or ``(height, width)``.
        padding: an int, ``(height, width)``, ``"valid"`` or ``"same"`` (stride 1, odd kernel).
        bias: learn an additive bias of ``out_channels``.
        init: ``"he"`` (default), ``"glorot"`` or ``"lecun"``: the std of the rebuilt kernel
            equals that of ``nn.Conv2d``'s weight so initialised, for ``fan_in = C_in kh kw``,
            ``fan_out = C_out kh kw``.
        strategy: how the forward contracts, one of :data:`ttexplore.nn.conv_forward.CONV_STRATEGIES`.
        dtype, device: of the parameters.
        dilation, padding_mode: only ``1`` and ``"zeros"`` (others are not written yet).

    At inference (autograd off), ``"auto"`` may convolve by a stored kernel instead, as
    ``nn.Conv2d`` does, when that is estimated faster for the batch and image size
    (:func:`ttexplore.nn.conv_forward.stored_kernel_pays`): it is rebuilt on the second inference
    forward after the cores changed (their version counters and identities tell) and dropped
    while autograd is on. Call :meth:`drop_stored_kernel` after editing a core through ``.data``.

    Attributes:
        cores: ``nn.ParameterList`` of the ``d + 1`` cores, spatial core first.
        ranks: the ``d`` ranks in use, ``(r_0, ..., r_{d-1})``.
        clipped_ranks: ``(k, requested, used)`` for each clipped rank (``k = 1`` is ``r_0``).
        in_channels, out_channels, kernel_size, stride, padding: as for ``nn.Conv2d`` (pairs).
        conv_shape: the :class:`~ttexplore.costmodel.conv.ConvLayerShape` the cost model prices.
        approximation_error: ``||K_tt - K|| / ||K||`` when the cores came from a dense kernel
            (:meth:`from_conv`) or a TT-matrix carrying one (:meth:`from_tt`); ``None`` otherwise.
    """

    def __init__(
        self,
        in_modes: Sequence[int],
        out_modes: Sequence[int],
        ranks: RanksLike,
        kernel_size: PairLike,
        stride: PairLike = 1,
        padding: "PairLike | str" = 0,
        bias: bool = True,
        init: str = "he",
        strategy: str = "auto",
        dtype: Optional[torch.dtype] = None,
        device: Optional[torch.device] = None,
        dilation: PairLike = 1,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        args = check_conv_args(in_modes, out_modes, kernel_size, stride, padding, dilation, padding_mode)
        if not isinstance(init, str) or init not in INITS:
            raise ValueError(f"init {init!r:.40} is unknown: use one of {', '.join(INITS)}")
        conv_forward.check_conv_strategy(strategy)
        self.in_modes, self.out_modes = args.in_modes, args.out_modes
        self.kernel_size, self.stride, self.padding = args.kernel_size, args.stride, args.padding
        plan = plan_conv_ranks(self.in_modes, self.out_modes, self.kernel_size, ranks)
        self.ranks: tuple[int, ...] = plan.ranks
        self.clipped_ranks = plan.clipped
        if plan.clipped:
            warnings.warn(f"TTConv2d: {plan.describe_clipping().replace('r_', 'rank ')} (rank 1 is r_0, after the "
                          f"spatial core)", UserWarning, stacklevel=2)
        self.in_channels, self.out_channels = prod(self.in_modes), prod(self.out_modes)
        self.init, self.strategy = init, strategy
        self.approximation_error: Optional[float] = None
        shapes = conv_core_shapes(self.in_modes, self.out_modes, self.kernel_size, self.ranks)
        check_bytes(sum(prod(shape) for shape in shapes) * (dtype or torch.get_default_dtype()).itemsize,
                    "the TT convolution's cores")
        factory = {"dtype": dtype, "device": device}
        self.cores = nn.ParameterList(nn.Parameter(torch.empty(*shape, **factory)) for shape in shapes)
        self.bias = nn.Parameter(torch.empty(self.out_channels, **factory)) if bias else None
        self.conv_shape = conv_forward.layer_shape(self.in_modes, self.out_modes, self.kernel_size, self.stride, self.padding,
                                              self.ranks)
        # the stored kernel of inference forwards: (cores, their versions, kernel or None)
        self._stored: Optional[tuple[tuple[torch.Tensor, ...], tuple[int, ...], Optional[torch.Tensor]]] = None
        self._stored_pays: dict[tuple, bool] = {}
        self._stored_pays_generation = -1
        self.reset_parameters()

    # ------------------------------------------------------------------ what it is
    @property
    def d(self) -> int:
        """Number of channel cores (the layer has ``d + 1`` cores)."""
        return len(self.in_modes)

    @property
    def spatial_core(self) -> nn.Parameter:
        """``G_0``, shape ``(1, kh*kw, 1, r_0)``; row ``x*kw + y`` is kernel position ``(x, y)``."""
        return self.cores[0]

    @property
    def channel_cores(self) -> list[nn.Parameter]:
        """``G_1..G_d``, shapes ``(r_{k-1}, c_k, s_k, r_k)``."""
        return list(self.cores)[1:]

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(H', W')`` of the output for an ``H x W`` input."""
        return conv_output_size(height, width, self.kernel_size, self.stride, self.padding)

    def reset_parameters(self, generator: Optional[torch.Generator] = None) -> None:
        """Draw the cores (from ``generator``, or the global RNG) so the rebuilt kernel has the std of :attr:`init`,
        and zero the bias.

        A kernel entry sums ``prod_k r_k`` products of ``d + 1`` independent zero-mean core entries
        (the spatial core among them), so a per-core std ``s`` gives ``Var K = prod_k r_k s^(2(d+1))``:
        ``s = (sigma^2 / prod_k r_k)^(1 / (2(d+1)))`` gives ``std K = sigma`` for every ``d``.
        """
        area = prod(self.kernel_size)
        sigma = target_std(self.init, self.in_channels * area, self.out_channels * area)
        core_std = tt_core_std(sigma, self.ranks, self.d + 1)
        with torch.no_grad():
            for core in self.cores:
                core.normal_(0.0, core_std, generator=generator)
            if self.bias is not None:
                self.bias.zero_()

    def param_count(self, include_bias: bool = False) -> int:
        """Number of core weights (plus bias entries when asked)."""
        count = sum(core.numel() for core in self.cores)
        return count + (self.out_channels if include_bias and self.bias is not None else 0)

    def to_dense(self) -> torch.Tensor:
        """The kernel, shaped like ``nn.Conv2d.weight``: ``(C_out, C_in, kh, kw)``; differentiable.

        Raises:
            ResourceError: (a ``ValueError``) when it would not fit the memory budget.

        Complexity: :func:`ttexplore.nn.conv_kernels.rebuild_kernel`.
        """
        elements = self.out_channels * self.in_channels * prod(self.kernel_size)
        check_bytes(2 * elements * self.cores[0].element_size(), "the TT convolution's dense kernel")
        return rebuild_kernel(list(self.cores), self.kernel_size)

    # ------------------------------------------------------------------ forward
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Convolve ``(B, C_in, H, W)`` (or unbatched ``(C_in, H, W)``) inputs; ``(B, C_out, H', W')`` back.

        Complexity: the plan's (:func:`ttexplore.nn.conv_forward.tt_conv2d`), or one dense convolution
        by a stored kernel at inference (see the class notes).
        """
        unbatched = self._check_inputs(inputs)
        if unbatched:
            inputs = inputs.unsqueeze(0)
        output = None
        if torch.is_grad_enabled():
            self._stored = None
        elif self.strategy == "auto" and not torch.compiler.is_compiling() and inputs.shape[0] > 0:
            kernel = self._inference_kernel(inputs)
            if kernel is not None:
                output = F.conv2d(inputs, kernel, self.bias, self.stride, self.padding)
        if output is None:
            cores = list(self.cores._parameters.values())  # list(self.cores) costs ~15 us a call
            output = conv_forward.tt_conv2d(inputs, cores, self.conv_shape, self.strategy, self.bias)
        return output.squeeze(0) if unbatched else output

    def _check_inputs(self, inputs: torch.Tensor) -> bool:
        """Whether ``inputs`` is one unbatched image; a ``ValueError`` naming the expected shape otherwise."""
        expected = f"(batch, {self.in_channels}, height, width) or ({self.in_channels}, height, width)"
        if not isinstance(inputs, torch.Tensor) or inputs.dim() not in (3, 4):
            found = f"shape {tuple(inputs.shape)}" if isinstance(inputs, torch.Tensor) else f"a {type(inputs).__name__}"
            raise ValueError(f"TTConv2d expects images shaped {expected}, got {found}")
        if inputs.shape[-3] != self.in_channels:
            raise ValueError(f"TTConv2d expects {self.in_channels} input channels (in_modes {modes_text(self.in_modes)}), "
                             f"shaped {expected}; got shape {tuple(inputs.shape)}")
        out_h, out_w = self.output_size(inputs.shape[-2], inputs.shape[-1])
        if out_h < 1 or out_w < 1:
            raise ValueError(f"TTConv2d: the {inputs.shape[-2]}x{inputs.shape[-1]} input padded by {self.padding} is "
                             f"smaller than the {self.kernel_size[0]}x{self.kernel_size[1]} kernel: give larger images "
                             f"or more padding")
        return inputs.dim() == 3

    def _inference_kernel(self, inputs: torch.Tensor) -> Optional[torch.Tensor]:
        """The stored kernel for this inference forward, or ``None`` to run the TT plan (as
        :meth:`ttexplore.nn.layers.TTLinear._inference_weight`: not on the first forward after a change)."""
        key = (inputs.shape[0], inputs.shape[-2], inputs.shape[-1], inputs.dtype, inputs.device)
        if self._stored_pays_generation != conv_forward.conv_decisions_generation():
            self._stored_pays = {}
            self._stored_pays_generation = conv_forward.conv_decisions_generation()
        pays = self._stored_pays.get(key)
        if pays is None:
            pays = self._stored_pays[key] = conv_forward.stored_kernel_pays(
                self.conv_shape, key[0], key[1], key[2], self.bias is not None, key[3], key[4])
        if not pays:
            return None
        stored = self._stored
        if stored is not None and stored[1] == tuple(map(_VERSION, stored[0])) and all(
                map(operator.is_, stored[0], self.cores._parameters.values())):
            if stored[2] is None:
                self._stored = (stored[0], stored[1], rebuild_kernel(list(stored[0]), self.kernel_size))
            return self._stored[2]
        cores = tuple(self.cores._parameters.values())
        self._stored = (cores, tuple(map(_VERSION, cores)), None)
        return None

    def drop_stored_kernel(self) -> None:
        """Forget the stored inference kernel (needed only after editing a core through ``.data``)."""
        self._stored = None

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "TTConv2d":
        self._stored = None  # .to(), .double() swap the cores' data without bumping their versions
        return super()._apply(fn, *args, **kwargs)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._stored = None
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        return (f"in_modes={modes_text(self.in_modes)}, out_modes={modes_text(self.out_modes)}, ranks={list(self.ranks)}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"bias={self.bias is not None}, strategy={self.strategy!r}")

    # ------------------------------------------------------------------ TT-matrix values
    def tt_matrix(self) -> TTMatrix:
        """The kernel as a :class:`~ttexplore.nn.ttmatrix.TTMatrix` of the ``d + 1`` cores (a detached copy):
        the ``(C_out, kh*kw*C_in)`` matrix with in-modes ``(kh*kw, c_1..c_d)``, out-modes ``(1, s_1..s_d)``.
        Its ``round``, ``norm`` and ``singular_values`` are those of the kernel."""
        return TTMatrix([core.detach().clone() for core in self.cores], self.approximation_error)

    @classmethod
    def from_tt(
        cls, tt: TTMatrix, kernel_size: PairLike, stride: PairLike = 1, padding: "PairLike | str" = 0,
        bias: "Optional[torch.Tensor] | bool" = None, strategy: str = "auto",
    ) -> "TTConv2d":
        """A layer whose kernel is ``tt`` (cores copied, dtype and device kept; no clipping, no warning).

        Args:
            tt: a TT-matrix with in-modes ``(kh*kw, c_1..c_d)`` and out-modes ``(1, s_1..s_d)``,
                e.g. a layer's :meth:`tt_matrix` after ``round()``.
            kernel_size, stride, padding: as for the constructor (``kh*kw`` must be ``tt``'s first in-mode).
            bias: a tensor of ``C_out`` entries, ``True`` (zero bias), ``None``/``False`` (none).

        Raises:
            ValueError: for a TT-matrix of other modes, ranks above the maximal useful ones, or a bad bias.
        """
        if not isinstance(tt, TTMatrix):
            raise ValueError(f"from_tt needs a TTMatrix, got a {type(tt).__name__}: take one from a layer's tt_matrix()")
        if tt.d < 2:
            raise ValueError("a TT convolution's TT-matrix has a spatial core and at least one channel core (d + 1 >= 2)")
        args = check_conv_args(tt.in_modes[1:], tt.out_modes[1:], kernel_size, stride, padding)
        expected = conv_tt_modes(args.in_modes, args.out_modes, args.kernel_size)
        if (tt.in_modes, tt.out_modes) != expected:
            raise ValueError(f"the TT-matrix has in-modes {modes_text(tt.in_modes)} and out-modes {modes_text(tt.out_modes)}, "
                             f"but a {args.kernel_size[0]}x{args.kernel_size[1]} TT convolution needs "
                             f"{modes_text(expected[0])} and {modes_text(expected[1])} (the spatial core first)")
        plan = plan_conv_ranks(args.in_modes, args.out_modes, args.kernel_size, tt.ranks)
        if plan.clipped:
            raise ValueError(f"the TT-matrix's ranks {list(tt.ranks)} exceed the maximal useful ranks "
                             f"{list(plan.max_useful)}: call tt.round() first (exact)")
        if isinstance(bias, torch.Tensor) and tuple(bias.shape) != (prod(args.out_modes),):
            raise ValueError(f"bias has shape {tuple(bias.shape)} but the layer has {prod(args.out_modes)} output "
                             f"channels: give that many entries, True for a zero bias, or None")
        layer = cls(args.in_modes, args.out_modes, tt.ranks, args.kernel_size, args.stride, args.padding,
                    bias=bias is not None and bias is not False, strategy=strategy, dtype=tt.dtype, device=tt.device)
        with torch.no_grad():
            for target, core in zip(layer.cores, tt.cores):
                target.copy_(core.detach())
            if isinstance(bias, torch.Tensor):
                layer.bias.copy_(bias.detach())
        layer.approximation_error = tt.approximation_error
        return layer

    def rounded(self, max_rank: RanksLike = None, rel_error: Optional[float] = None) -> "TTConv2d":
        """A new layer whose kernel is this one's TT-rounded (:meth:`TTMatrix.round
        <ttexplore.nn.ttmatrix.TTMatrix.round>` of :meth:`tt_matrix`): lower ranks, never building the kernel.

        Args:
            max_rank: caps on the ``d`` ranks ``(r_0..r_{d-1})``, an int or ``d`` ints.
            rel_error: the relative Frobenius error of the kernel allowed, in ``[0, 1)``.

        Returns:
            A ``TTConv2d`` of the same modes, kernel, stride, padding, bias (copied), init, strategy, dtype and
            device, with new parameters and :attr:`approximation_error` against this layer's kernel.

        Complexity: ``O(d c s r^3)`` (:meth:`TTMatrix.round`).
        """
        tt = self.tt_matrix().round(max_rank=max_rank, rel_error=rel_error)
        layer = TTConv2d.from_tt(tt, self.kernel_size, self.stride, self.padding,
                                 bias=self.bias.detach() if self.bias is not None else None, strategy=self.strategy)
        layer.init = self.init
        layer.train(self.training)
        return layer

    @classmethod
    def from_conv(
        cls, conv: nn.Conv2d, in_modes: Sequence[int], out_modes: Sequence[int], ranks: RanksLike = None,
        rel_error: Optional[float] = None, strategy: str = "auto",
    ) -> "TTConv2d":
        """Compress an ``nn.Conv2d`` by TT-SVD of its kernel reshaped to ``(C_out, kh*kw*C_in)``
        (:meth:`TTMatrix.from_dense <ttexplore.nn.ttmatrix.TTMatrix.from_dense>`, then :meth:`from_tt`).

        Args:
            conv: the layer; its bias, stride, padding, dtype and device are kept (groups 1,
                dilation 1, zero padding only).
            in_modes, out_modes: factorizations of its channels.
            ranks: caps on the ``d`` ranks (int, ``d`` ints, ``None``), clipped to the maximal useful ones.
            rel_error: target relative Frobenius error of the kernel; ``None`` is exact up to the caps.

        Returns:
            A ``TTConv2d`` whose :attr:`approximation_error` is the error reached.

        Complexity: one SVD per core, dominated by the first, ``O(kh^2 kw^2 C_in C_out)``.
        """
        if not isinstance(conv, nn.Conv2d):
            raise ValueError(f"from_conv needs an nn.Conv2d, got a {type(conv).__name__}")
        if conv.groups != 1:
            raise ValueError(f"from_conv: grouped convolutions (groups={conv.groups}) are not written yet; use groups=1")
        check_rel_error(rel_error)
        check_rank_caps(ranks)
        args = check_conv_args(in_modes, out_modes, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                               conv.padding_mode)
        for field, modes, channels in (("in_modes", args.in_modes, conv.in_channels),
                                       ("out_modes", args.out_modes, conv.out_channels)):
            if prod(modes) != channels:
                raise ValueError(f"{field} {modes_text(modes)} multiply to {prod(modes)}, but the convolution has "
                                 f"{channels} {field[:-6]}put channels")
        plan = plan_conv_ranks(args.in_modes, args.out_modes, args.kernel_size, ranks)
        if plan.clipped:
            warnings.warn(f"TTConv2d.from_conv: {plan.describe_clipping()}", UserWarning, stacklevel=2)
        weight = conv.weight.detach()
        # (C_out, C_in, kh, kw) -> (C_out, kh, kw, C_in) -> (C_out, kh*kw*C_in), kernel position major
        matrix = weight.permute(0, 2, 3, 1).reshape(conv.out_channels, -1)
        tt_in, tt_out = conv_tt_modes(args.in_modes, args.out_modes, args.kernel_size)
        tt = TTMatrix.from_dense(matrix, tt_in, tt_out, ranks=plan.ranks, rel_error=rel_error)
        return cls.from_tt(tt, args.kernel_size, args.stride, args.padding, bias=conv.bias, strategy=strategy)

    # ------------------------------------------------------------------ files
    def export_spec(self) -> dict:
        """The constructor arguments that rebuild this layer's architecture."""
        return {"in_modes": list(self.in_modes), "out_modes": list(self.out_modes), "ranks": list(self.ranks),
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                "bias": self.bias is not None, "init": self.init, "strategy": self.strategy}

    def save(self, path) -> None:
        """Write the layer (its spec and its cores) to ``path`` (a ``torch.save`` file), whole or not at all."""
        write_payload({"format": "ttexplore.TTConv2d/1", "spec": self.export_spec(), "state_dict": self.state_dict()}, path)

    @classmethod
    def load(cls, path, map_location="cpu") -> "TTConv2d":
        """Read a layer written by :meth:`save`: read without running code, its spec and tensor shapes checked
        and its size held against the memory budget before anything is allocated.

        Raises:
            WeightsFileError: (a ``ValueError``) naming the file and what is wrong with it.
        """
        payload = read_payload(path)
        if payload.get("format") != "ttexplore.TTConv2d/1":
            raise WeightsFileError(f"{path} is not a TTConv2d file written by ttexplore (no TTConv2d format header)")
        spec, state = payload.get("spec"), payload.get("state_dict")
        keys = {"in_modes", "out_modes", "ranks", "kernel_size", "stride", "padding", "bias", "init", "strategy"}
        if not isinstance(spec, dict) or set(spec) != keys:
            raise WeightsFileError(f"{path} has no valid TTConv2d spec (expected the keys {sorted(keys)})")
        try:
            args = check_conv_args(spec["in_modes"], spec["out_modes"], spec["kernel_size"], spec["stride"],
                                   spec["padding"])
            ranks = check_rank_caps(spec["ranks"], len(args.in_modes))
            plan = plan_conv_ranks(args.in_modes, args.out_modes, args.kernel_size, ranks)
            if plan.clipped or not isinstance(spec["bias"], bool) or spec["init"] not in INITS:
                raise ValueError("its ranks, bias or init are not ones a layer was saved with")
            conv_forward.check_conv_strategy(spec["strategy"])
        except (ValueError, TypeError) as error:
            raise WeightsFileError(f"{path} has an invalid TTConv2d spec: {error}") from None
        shapes = conv_core_shapes(args.in_modes, args.out_modes, args.kernel_size, ranks)
        expected = {f"cores.{k}": tuple(shape) for k, shape in enumerate(shapes)}
        if spec["bias"]:
            expected["bias"] = (prod(args.out_modes),)
        check_state(state, expected, path, "TT convolution")
        dtype = state["cores.0"].dtype
        check_bytes(state_bytes(expected, dtype.itemsize), f"the TT convolution in {path}")
        layer = cls(args.in_modes, args.out_modes, ranks, args.kernel_size, args.stride, args.padding,
                    bias=spec["bias"], init=spec["init"], strategy=spec["strategy"], dtype=dtype)
        layer.load_state_dict(state)
        return layer if str(map_location) == "cpu" else layer.to(map_location)
