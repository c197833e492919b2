"""Neural-network layers: the TT layer of Novikov et al. (2015) and its baselines."""

from __future__ import annotations

import operator
import warnings
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ttexplore.nn import forward as tt_forward
from ttexplore.tt.init import INITS, target_std, tt_core_std
from ttexplore.nn.kernels import tt_to_dense
from ttexplore.nn.ttmatrix import TTMatrix
from ttexplore.tt.memory import check_bytes
from ttexplore.nn.weightfile import WeightsFileError, check_state, read_payload, state_bytes, write_payload
from ttexplore.tt.ttmath import (RanksLike, check_matrix_rank_layer, check_modes, check_rank_caps, check_rel_error,
                                 check_tt_layer, full_ranks, modes_text, param_count, plan_ranks, prod)

__all__ = ["TTLinear", "MatrixRankLinear"]

_VERSION = operator.attrgetter("_version")

class TTLinear(nn.Module):
    """A fully-connected layer whose ``(M, N)`` weight is a TT-matrix.

    ``y = x W^T + b`` with ``W(i, j) = G_1[j_1, i_1] ... G_d[j_d, i_d]`` where core
    ``G_k`` has shape ``(r_{k-1}, n_k, m_k, r_k)``; ``W`` itself is never built
    unless that is the cheaper way to multiply (see :mod:`ttexplore.nn.forward`).

    Args:
        in_modes: ``(n_1, ..., n_d)``, multiplying to ``in_features``.
        out_modes: ``(m_1, ..., m_d)``, multiplying to ``out_features``.
        ranks: an int (every internal rank), ``d - 1`` ints, or ``None`` for the
            maximal useful ranks. Ranks above the maximal useful ones are clipped
            (recorded in :attr:`clipped_ranks`, with one warning).
        bias: learn an additive bias of size ``out_features``.
        init: ``"glorot"``, ``"he"`` or ``"lecun"``: the std of the rebuilt ``W``
            (not of each core) equals that of a dense layer so initialised.
        strategy: how the forward contracts, one of :data:`ttexplore.nn.forward.STRATEGIES`;
            ``"auto"`` picks the fastest by the cost model on the CPU (by a one-off
            timing on other devices, or with :func:`ttexplore.nn.forward.set_autotune`),
            once per batch size, dtype, device and training mode.
        dtype, device: of the parameters.

    At inference (autograd off: ``torch.no_grad``, ``torch.inference_mode``),
    ``"auto"`` may multiply by a stored ``W`` instead, as ``nn.Linear`` does, when
    that is faster for the batch and ``W`` fits the memory budget
    (:func:`ttexplore.nn.forward.stored_weight_pays`). ``W`` is rebuilt on the
    second inference forward after the cores last changed (an optimizer step,
    an in-place update, ``load_state_dict``, ``.to()``: the cores' version
    counters, identities and the module's conversions tell) and reused until
    they change again; it is never used, and dropped, while autograd is on.
    Edits through ``core.data`` bypass the version counters, as they bypass
    autograd: call :meth:`drop_stored_weight` after them.

    Attributes:
        cores: ``nn.ParameterList`` of the ``d`` cores.
        ranks: the internal ranks in use, ``(r_1, ..., r_{d-1})``.
        clipped_ranks: ``(k, requested, used)`` for each clipped internal rank.
        approximation_error: ``||W_tt - W|| / ||W||`` when the cores came from a dense
            ``W`` (:meth:`from_linear`) or from a :class:`~ttexplore.nn.ttmatrix.TTMatrix`
            that carries an error (:meth:`from_tt`, e.g. a rounded one); ``None`` for a
            randomly initialised layer. It describes the cores as made, not after training.
    """

    def __init__(
        self,
        in_modes: Sequence[int],
        out_modes: Sequence[int],
        ranks: RanksLike = None,
        bias: bool = True,
        init: str = "glorot",
        strategy: str = "auto",
        dtype: Optional[torch.dtype] = None,
        device: Optional[torch.device] = None,
    ) -> None:
        super().__init__()
        self.in_modes, self.out_modes, plan = check_tt_layer(in_modes, out_modes, ranks)
        self.ranks: tuple[int, ...] = plan.ranks
        self.clipped_ranks = plan.clipped
        if plan.clipped:
            warnings.warn(f"TTLinear: {plan.describe_clipping()}", UserWarning, stacklevel=2)
        self.in_features = prod(self.in_modes)
        self.out_features = prod(self.out_modes)
        self.approximation_error: Optional[float] = None
        tt_forward.check_strategy(strategy)
        self.strategy = strategy
        self.init = init
        full = full_ranks(self.ranks)
        factory = {"dtype": dtype, "device": device}
        self.cores = nn.ParameterList(
            nn.Parameter(torch.empty(full[k], n, m, full[k + 1], **factory))
            for k, (n, m) in enumerate(zip(self.in_modes, self.out_modes))
        )
        # the ParameterList's own {"0": core, ...}: reading it skips nn.Module.__getattr__ on every forward
        self._core_dict = self.cores._parameters
        self.bias = nn.Parameter(torch.empty(self.out_features, **factory)) if bias else None
        # the stored W of inference forwards: (cores, their versions, W or None); see forward()
        self._stored: Optional[tuple[tuple[torch.Tensor, ...], tuple[int, ...], Optional[torch.Tensor]]] = None
        # stored_weight_pays per (batch, dtype, device), and the decisions generation it was asked in
        self._stored_pays: dict[tuple, bool] = {}
        self._stored_pays_generation = -1
        self.reset_parameters()

    @property
    def d(self) -> int:
        """Number of cores."""
        return len(self.in_modes)

    def reset_parameters(self, generator: Optional[torch.Generator] = None) -> None:
        """Draw cores (from ``generator``, or the global RNG) so the rebuilt ``W`` has the std of :attr:`init`, and zero the bias.

        ``W(i, j)`` sums ``prod_k r_k`` products of ``d`` independent zero-mean core
        entries, so ``Var W = prod_k r_k * s^(2d)`` for a per-core std ``s``;
        ``s = (sigma^2 / prod_k r_k)^(1 / (2d))`` gives ``std W = sigma`` for every ``d``.
        """
        sigma = target_std(self.init, self.in_features, self.out_features)
        core_std = tt_core_std(sigma, self.ranks, self.d)
        with torch.no_grad():
            for core in self.cores:
                core.normal_(0.0, core_std, generator=generator)
            if self.bias is not None:
                self.bias.zero_()

    def param_count(self, include_bias: bool = False) -> int:
        """Number of core weights (plus bias entries when asked)."""
        count = param_count(self.in_modes, self.out_modes, self.ranks)
        return count + (self.out_features if include_bias and self.bias is not None else 0)

    def to_dense(self) -> torch.Tensor:
        """The dense weight, shaped like ``nn.Linear.weight``: ``(out_features, in_features)``.

        Complexity: :func:`ttexplore.nn.kernels.tt_to_dense`.
        """
        return tt_to_dense(list(self.cores))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs @ W^T + bias`` for ``inputs`` of shape ``(..., in_features)``; ``(..., out_features)`` back.

        Complexity: the plan's (:func:`ttexplore.nn.forward.tt_linear`), or one
        ``O(B N M)`` GEMM with a stored ``W`` at inference (see the class notes).
        """
        if inputs.dim() == 0 or inputs.shape[-1] != self.in_features:
            raise ValueError(
                f"TTLinear expects inputs with {self.in_features} features (in_modes "
                f"{'x'.join(map(str, self.in_modes))}) in the last dimension, got shape {tuple(inputs.shape)}"
            )
        if torch.is_grad_enabled():
            if self._stored is not None:
                self._stored = None
        elif self.strategy == "auto" and not torch.compiler.is_compiling():
            weight = self._inference_weight(inputs)
            if weight is not None:
                return F.linear(inputs, weight, self.bias)
        cores = list(self.cores._parameters.values())  # list(self.cores) costs ~15 us a call
        leading = inputs.shape[:-1]
        flat = inputs.reshape(-1, self.in_features)
        output = tt_forward.tt_linear(flat, cores, self.in_modes, self.out_modes, self.ranks, self.strategy, bias=self.bias)
        return output.reshape(*leading, self.out_features)

    def _inference_weight(self, inputs: torch.Tensor) -> Optional[torch.Tensor]:
        """The stored ``W`` for this inference forward, or ``None`` to run the TT plan.

        ``None`` when a stored ``W`` does not pay for this batch
        (:func:`ttexplore.nn.forward.stored_weight_pays`) and on the first
        forward after the cores changed (a single evaluation between two
        optimizer steps does not pay for a rebuild); the second rebuilds ``W``.
        """
        key = (inputs.numel() // self.in_features, inputs.dtype, inputs.device)
        if key[0] == 0:  # an empty batch: tt_linear answers it without planning
            return None
        if self._stored_pays_generation != tt_forward.decisions_generation():
            self._stored_pays = {}
            self._stored_pays_generation = tt_forward.decisions_generation()
        pays = self._stored_pays.get(key)
        if pays is None:  # asked once per batch, dtype and device: a dictionary lookup afterwards
            pays = self._stored_pays[key] = tt_forward.stored_weight_pays(self.in_modes, self.out_modes, self.ranks, *key)
        if not pays:
            return None
        stored = self._stored
        if stored is not None and stored[1] == tuple(map(_VERSION, stored[0])) and all(
                map(operator.is_, stored[0], self._core_dict.values())):
            if stored[2] is not None:
                return stored[2]
            weight = tt_to_dense(list(stored[0]))
            self._stored = (stored[0], stored[1], weight)
            return weight
        cores = tuple(self._core_dict.values())
        self._stored = (cores, tuple(map(_VERSION, cores)), None)
        return None

    def drop_stored_weight(self) -> None:
        """Forget the stored inference ``W`` (needed only after editing a core through ``.data``)."""
        self._stored = None

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "TTLinear":
        # .to(), .double(), .cuda() swap the cores' data without bumping their version counters
        self._stored = None
        return super()._apply(fn, *args, **kwargs)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        # load_state_dict(assign=True) replaces the cores; a copy bumps their versions anyway
        self._stored = None
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        fmt = lambda modes: "x".join(map(str, modes))  # noqa: E731
        return (
            f"in_modes={fmt(self.in_modes)}, out_modes={fmt(self.out_modes)}, ranks={list(self.ranks)}, "
            f"bias={self.bias is not None}, strategy={self.strategy!r}"
        )

    # ------------------------------------------------------------------ TT-matrix values
    def tt_matrix(self) -> TTMatrix:
        """The layer's weight as a :class:`~ttexplore.nn.ttmatrix.TTMatrix`: a detached copy of
        the cores (later training does not change it), in their dtype and on their device.

        Complexity: one copy of the ``param_count()`` core weights.
        """
        return TTMatrix([core.detach().clone() for core in self.cores])

    @classmethod
    def from_tt(
        cls,
        tt: TTMatrix,
        bias: "Optional[torch.Tensor] | bool" = None,
        strategy: str = "auto",
    ) -> "TTLinear":
        """A layer whose weight is ``tt``: its cores copied, its dtype and device kept.

        Args:
            tt: the TT-matrix; the layer's ``ranks`` are its ranks (no clipping, no warning).
            bias: a tensor of ``M`` entries to copy, ``True`` for a zero bias, ``None`` or
                ``False`` for none.
            strategy: the forward strategy (see :class:`TTLinear`).

        Returns:
            A ``TTLinear`` (init ``"glorot"`` recorded, cores from ``tt``) whose
            :attr:`approximation_error` is ``tt.approximation_error``.

        Raises:
            ValueError: for ranks above the maximal useful ones (``tt.round()`` brings them
                down exactly) or a bias of the wrong shape.
        """
        if not isinstance(tt, TTMatrix):
            raise ValueError(f"from_tt needs a TTMatrix, got a {type(tt).__name__}: make one with TTMatrix.from_dense "
                             f"or a layer's tt_matrix()")
        plan = plan_ranks(tt.in_modes, tt.out_modes, tt.ranks)
        if plan.clipped:
            raise ValueError(f"the TT-matrix's ranks {list(tt.ranks)} exceed the maximal useful ranks "
                             f"{list(plan.max_useful)} of {modes_text(tt.in_modes)} -> {modes_text(tt.out_modes)}: "
                             f"call tt.round() first (exact: it only drops what the extra ranks can not hold)")
        rows = tt.shape[0]
        if isinstance(bias, torch.Tensor) and tuple(bias.shape) != (rows,):
            raise ValueError(f"bias has shape {tuple(bias.shape)} but the TT-matrix has {rows} outputs: give {rows} "
                             f"entries, True for a zero bias, or None")
        layer = cls(tt.in_modes, tt.out_modes, ranks=tt.ranks, bias=bias is not None and bias is not False,
                    strategy=strategy, dtype=tt.dtype, device=tt.device)
        with torch.no_grad():
            for target, core in zip(layer.cores, tt.cores):
                target.copy_(core.detach())
            if isinstance(bias, torch.Tensor):
                layer.bias.copy_(bias.detach())
        layer.approximation_error = tt.approximation_error
        return layer

    def rounded(self, max_rank: RanksLike = None, rel_error: Optional[float] = None) -> "TTLinear":
        """A new layer whose weight is this one's TT-rounded (:meth:`TTMatrix.round
        <ttexplore.nn.ttmatrix.TTMatrix.round>`): lower ranks, never building ``W``.

        Args:
            max_rank: caps on the internal ranks (an int or ``d - 1`` ints; a cap above a rank does not bind).
            rel_error: the relative Frobenius error allowed, in ``[0, 1)``.

        Returns:
            A ``TTLinear`` with the same modes, bias (copied), init, strategy, dtype and device, new
            parameters (optimizer state of these cores does not apply to it), and
            :attr:`approximation_error` ``||W - W_rounded||_F / ||W||_F`` against this layer's ``W``.

        Complexity: ``O(d n m r^3)`` (:meth:`TTMatrix.round`).
        """
        tt = self.tt_matrix().round(max_rank=max_rank, rel_error=rel_error)
        layer = TTLinear.from_tt(tt, bias=self.bias.detach() if self.bias is not None else None, strategy=self.strategy)
        layer.init = self.init
        layer.train(self.training)
        return layer

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        in_modes: Sequence[int],
        out_modes: Sequence[int],
        ranks: RanksLike = None,
        rel_error: Optional[float] = None,
        strategy: str = "auto",
    ) -> "TTLinear":
        """Compress a dense layer by TT-SVD of its weight
        (:meth:`TTMatrix.from_dense <ttexplore.nn.ttmatrix.TTMatrix.from_dense>`, then :meth:`from_tt`).

        Args:
            linear: the layer to compress; its bias, dtype and device are kept.
            in_modes, out_modes: factorizations of its in/out features.
            ranks: caps on the internal ranks (int, ``d - 1`` ints, or ``None``); caps above
                the maximal useful ranks are clipped, with one warning.
            rel_error: target relative Frobenius error of ``W``; ``None`` keeps
                everything up to the caps (exact at the maximal ranks).

        Returns:
            A ``TTLinear`` whose :attr:`approximation_error` is the relative
            Frobenius error ``||W_tt - W|| / ||W||`` it reached.

        Complexity: one SVD per core, dominated by the first,
        ``O(n_1 m_1 N M min(n_1 m_1, NM / (n_1 m_1)))``.
        """
        in_modes, out_modes = check_modes(in_modes, out_modes)
        check_rel_error(rel_error)
        check_rank_caps(ranks)
        if prod(in_modes) != linear.in_features:
            raise ValueError(
                f"in_modes {'x'.join(map(str, in_modes))} multiply to {prod(in_modes)}, "
                f"but the layer has {linear.in_features} input features"
            )
        if prod(out_modes) != linear.out_features:
            raise ValueError(
                f"out_modes {'x'.join(map(str, out_modes))} multiply to {prod(out_modes)}, "
                f"but the layer has {linear.out_features} output features"
            )
        plan = plan_ranks(in_modes, out_modes, ranks)
        if plan.clipped:
            warnings.warn(f"TTLinear.from_linear: {plan.describe_clipping()}", UserWarning, stacklevel=2)
        tt = TTMatrix.from_dense(linear.weight.detach(), in_modes, out_modes, ranks=plan.ranks, rel_error=rel_error)
        return cls.from_tt(tt, bias=linear.bias, strategy=strategy)

    # ------------------------------------------------------------------ files
    def export_spec(self) -> dict:
        """The constructor arguments that rebuild this layer's architecture."""
        return {
            "in_modes": list(self.in_modes),
            "out_modes": list(self.out_modes),
            "ranks": list(self.ranks),
            "bias": self.bias is not None,
            "init": self.init,
            "strategy": self.strategy,
        }

    def save(self, path) -> None:
        """Write the layer (its spec and its cores) to ``path`` (a ``torch.save`` file), whole or not at all
        (:func:`~ttexplore.nn.weightfile.write_payload`; a failure raises ``WriteError`` naming the file)."""
        write_payload({"format": "ttexplore.TTLinear/1", "spec": self.export_spec(), "state_dict": self.state_dict()}, path)

    @classmethod
    def load(cls, path, map_location="cpu") -> "TTLinear":
        """Read a layer written by :meth:`save`, or the TT layer of a model saved by
        :func:`ttexplore.runs.models.save_model`.

        The file is read without running code (``weights_only``) and memory-mapped;
        its spec and every tensor's shape are checked, and the layer's size against
        the memory budget (:func:`ttexplore.tt.memory.check_bytes`), before
        anything is allocated.

        Raises:
            WeightsFileError: (a ``ValueError``) naming the file and what is wrong with it.
            ResourceError: (a ``ValueError``) when the layer would not fit the memory budget.
        """
        payload = read_payload(path)
        kind = payload.get("format")
        if kind == "ttexplore.TTLinear/1":
            spec, state = payload.get("spec"), payload.get("state_dict")
        elif kind == "ttexplore.model/1" and payload.get("tt_spec"):
            spec = payload["tt_spec"]
            state = payload.get("state_dict")
            if not isinstance(state, dict):
                raise WeightsFileError(f"{path} has no state dict of model weights")
            prefix = payload.get("tt_prefix")
            if prefix is None:  # files written before the prefix was recorded: the module holding the cores
                prefix = next((key[: -len("cores.0")] for key in state if isinstance(key, str) and key.endswith("cores.0")), "")
            if not isinstance(prefix, str):
                raise WeightsFileError(f"{path} has a tt_prefix of type {type(prefix).__name__}, not text")
            state = {key[len(prefix):]: value for key, value in state.items() if isinstance(key, str) and key.startswith(prefix)}
        elif kind == "ttexplore.model/1":
            raise ValueError(f"{path} holds a model whose hidden layer is not a TT layer, so it has no TT cores to load")
        else:
            raise WeightsFileError(f"{path} is not a TTLinear or model file written by ttexplore (no format header)")
        spec = _checked_spec(spec, path)
        full = full_ranks(plan_ranks(spec["in_modes"], spec["out_modes"], spec["ranks"]).ranks)
        expected = {f"cores.{k}": (full[k], n, m, full[k + 1]) for k, (n, m) in enumerate(zip(spec["in_modes"], spec["out_modes"]))}
        if spec["bias"]:
            expected["bias"] = (prod(spec["out_modes"]),)
        check_state(state, expected, path, "TT layer")
        dtype = state["cores.0"].dtype
        check_bytes(state_bytes(expected, dtype.itemsize), f"the TT layer in {path}")
        layer = cls(**spec, dtype=dtype)
        layer.load_state_dict(state)
        return layer if str(map_location) == "cpu" else layer.to(map_location)


_SPEC_KEYS = {"in_modes", "out_modes", "ranks", "bias", "init", "strategy"}


def _checked_spec(spec, path) -> dict:
    """The constructor arguments in a file's TT spec, checked as a user's input is (bounded sizes)."""
    from ttexplore.tt.shapes import parse_modes, whole_number

    if not isinstance(spec, dict):
        raise WeightsFileError(f"{path} has no TT spec (found a {type(spec).__name__})")
    if set(spec) != _SPEC_KEYS:
        raise WeightsFileError(f"{path} has a TT spec with keys {sorted(map(str, spec))}, not {sorted(_SPEC_KEYS)}")
    try:
        in_modes = parse_modes(spec["in_modes"], "in_modes")
        out_modes = parse_modes(spec["out_modes"], "out_modes")
        ranks = spec["ranks"]
        if not isinstance(ranks, (list, tuple)) or len(ranks) != len(in_modes) - 1:
            raise ValueError(f"ranks {ranks!r:.60} must list the {len(in_modes) - 1} internal ranks")
        ranks = tuple(whole_number(rank, "ranks") for rank in ranks)
        plan_ranks(in_modes, out_modes, ranks)
        if not isinstance(spec["bias"], bool):
            raise ValueError(f"bias {spec['bias']!r:.40} must be true or false")
        if not isinstance(spec["init"], str) or spec["init"] not in INITS:
            raise ValueError(f"init {spec['init']!r:.40} is not one of {', '.join(INITS)}")
        if not isinstance(spec["strategy"], str):
            raise ValueError(f"strategy {spec['strategy']!r:.40} must be a name")
        tt_forward.check_strategy(spec["strategy"])
    except ValueError as error:
        raise WeightsFileError(f"{path} has an invalid TT spec: {error}") from None
    return {"in_modes": in_modes, "out_modes": out_modes, "ranks": ranks, "bias": spec["bias"], "init": spec["init"],
            "strategy": spec["strategy"]}


class MatrixRankLinear(nn.Module):
    """The matrix-rank baseline ``x -> B (A x) + b``: ``A`` is ``r x N``, ``B`` is ``M x r``.

    Novikov et al.'s Figure 1 compares the TT layer against this factorization
    of ``W = B A``. It has ``r (N + M)`` weights. ``dtype`` and ``device`` are those of
    the parameters, as for :class:`TTLinear`.

    Complexity: ``O(B r (N + M))`` per forward.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int,
        bias: bool = True,
        init: str = "glorot",
        dtype: Optional[torch.dtype] = None,
        device: Optional[torch.device] = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.rank = check_matrix_rank_layer(in_features, out_features, rank)
        self.init = init
        factory = {"dtype": dtype, "device": device}
        self.down = nn.Parameter(torch.empty(self.rank, self.in_features, **factory))
        self.up = nn.Parameter(torch.empty(self.out_features, self.rank, **factory))
        self.bias = nn.Parameter(torch.zeros(self.out_features, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self, generator: Optional[torch.Generator] = None) -> None:
        """Draw ``A`` and ``B`` so ``W = B A`` has the std of :attr:`init` (``Var W = r s^4``)."""
        sigma = target_std(self.init, self.in_features, self.out_features)
        factor_std = (sigma**2 / self.rank) ** 0.25
        with torch.no_grad():
            self.down.normal_(0.0, factor_std, generator=generator)
            self.up.normal_(0.0, factor_std, generator=generator)
            if self.bias is not None:
                self.bias.zero_()

    def param_count(self, include_bias: bool = False) -> int:
        """``r (N + M)`` weights (plus bias entries when asked)."""
        return self.rank * (self.in_features + self.out_features) + (
            self.out_features if include_bias and self.bias is not None else 0
        )

    def to_dense(self) -> torch.Tensor:
        """``W = B A``, shape ``(out_features, in_features)``."""
        return self.up @ self.down

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.dim() == 0 or inputs.shape[-1] != self.in_features:
            raise ValueError(f"MatrixRankLinear expects inputs with {self.in_features} features in the last dimension, "
                             f"got shape {tuple(inputs.shape)}")
        return F.linear(F.linear(inputs, self.down), self.up, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"
