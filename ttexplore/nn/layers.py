"""Neural-network layers: the TT layer of Novikov et al. (2015) and its baselines."""

from __future__ import annotations

import math
import numbers
import operator
import warnings
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ttexplore.nn import forward as tt_forward
from ttexplore.tt.init import INITS, target_std, tt_core_std
from ttexplore.nn.kernels import dense_to_tt_matrix, tt_to_dense
from ttexplore.tt.memory import check_bytes
from ttexplore.nn.weightfile import WeightsFileError, check_state, read_payload, state_bytes
from ttexplore.tt.ttmath import (RanksLike, check_matrix_rank_layer, check_modes, check_tt_layer, full_ranks, param_count,
                                 plan_ranks, prod)

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

    # ------------------------------------------------------------------ factories
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
        """Compress a dense layer by TT-SVD of its weight.

        Args:
            linear: the layer to compress; its bias, dtype and device are kept.
            in_modes, out_modes: factorizations of its in/out features.
            ranks: caps on the internal ranks (int, ``d - 1`` ints, or ``None``).
            rel_error: target relative Frobenius error of ``W``; ``None`` keeps
                everything up to the caps (exact at the maximal ranks).

        Returns:
            A ``TTLinear`` whose :attr:`approximation_error` is the relative
            Frobenius error ``||W_tt - W|| / ||W||`` it reached.

        Complexity: one SVD per core, dominated by the first,
        ``O(n_1 m_1 N M min(n_1 m_1, NM / (n_1 m_1)))``.
        """
        in_modes, out_modes = check_modes(in_modes, out_modes)
        _check_rel_error(rel_error)
        _check_rank_caps(ranks)
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
        weight = linear.weight.detach()
        cores, _ = dense_to_tt_matrix(weight.double(), in_modes, out_modes, max_ranks=plan.ranks, rel_error=rel_error)
        layer = cls(
            in_modes,
            out_modes,
            ranks=[core.shape[-1] for core in cores[:-1]],
            bias=linear.bias is not None,
            strategy=strategy,
            dtype=weight.dtype,
            device=weight.device,
        )
        with torch.no_grad():
            for target, core in zip(layer.cores, cores):
                target.copy_(core.to(dtype=weight.dtype, device=weight.device))
            if linear.bias is not None:
                layer.bias.copy_(linear.bias.detach())
            rebuilt = layer.to_dense().double()
            reference = weight.double()
            norm = torch.linalg.matrix_norm(reference).item()
            error = torch.linalg.matrix_norm(rebuilt - reference).item()
        layer.approximation_error = error / norm if norm > 0 else 0.0
        return layer

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
        """Write the layer (its spec and its cores) to ``path`` (a ``torch.save`` file)."""
        torch.save({"format": "ttexplore.TTLinear/1", "spec": self.export_spec(), "state_dict": self.state_dict()}, path)

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


def _check_rel_error(rel_error: Optional[float]) -> None:
    """Refuse a target error TT-SVD can not mean: negative, NaN, infinite, or 1 and more (rank 0)."""
    if rel_error is None:
        return
    if isinstance(rel_error, bool) or not isinstance(rel_error, numbers.Real):
        raise ValueError(f"rel_error {rel_error!r:.40} must be a number in [0, 1), e.g. 0.01 for 1% (or None: exact up to the ranks)")
    if not (math.isfinite(rel_error) and 0 <= rel_error < 1):
        raise ValueError(f"rel_error {rel_error} must be in [0, 1): the relative Frobenius error of W to allow, e.g. 0.01 "
                         f"for 1% (1 or more would drop every singular value)")


def _check_rank_caps(ranks: RanksLike) -> None:
    """Refuse rank caps below 1 (and bools) before any SVD runs."""
    if ranks is None:
        return
    values = list(ranks) if isinstance(ranks, (list, tuple)) else [ranks]
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"ranks {ranks!r:.60} must be whole numbers of at least 1 (caps on the internal ranks), "
                             f"or None for no cap")


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
    of ``W = B A``. It has ``r (N + M)`` weights.

    Complexity: ``O(B r (N + M))`` per forward.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True, init: str = "glorot") -> None:
        super().__init__()
        self.in_features, self.out_features, self.rank = check_matrix_rank_layer(in_features, out_features, rank)
        self.init = init
        self.down = nn.Parameter(torch.empty(self.rank, self.in_features))
        self.up = nn.Parameter(torch.empty(self.out_features, self.rank))
        self.bias = nn.Parameter(torch.zeros(self.out_features)) if bias else None
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
