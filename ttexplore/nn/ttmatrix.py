"""``TTMatrix``: a TT-matrix as one value, its cores and modes, with TT-SVD, TT-rounding and algebra.

A TT-matrix ``W`` of shape ``(M, N)`` (like ``nn.Linear.weight``) with
``in_modes = (n_1..n_d)``, ``out_modes = (m_1..m_d)`` is
``W(i, j) = G_1[j_1, i_1] ... G_d[j_d, i_d]``, core ``G_k`` of shape
``(r_{k-1}, n_k, m_k, r_k)``, ``r_0 = r_d = 1`` (the layout of :mod:`ttexplore.nn.kernels`).

The value never builds ``W`` except in :meth:`TTMatrix.to_dense`: rounding, norms,
inner products, sums and the singular values of the unfoldings work on the cores
(:mod:`ttexplore.nn.coreops`), in ``O(d n m r^3)``.
"""

from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, Union

import torch

from ttexplore.nn.coreops import float64_workspace, round_cores, tt_inner, tt_norm, tt_sum
from ttexplore.nn.kernels import dense_to_tt_matrix, tt_to_dense
from ttexplore.tt.memory import check_bytes
from ttexplore.tt.ttmath import (RanksLike, check_modes, check_rank_caps, check_rel_error, modes_text, plan_ranks, prod,
                                 ranks_for_error)

__all__ = ["TTMatrix"]

Scalar = Union[numbers.Real, torch.Tensor]


class TTMatrix:
    """A TT-matrix: ``d`` cores ``(r_{k-1}, n_k, m_k, r_k)`` standing for an ``(M, N)`` matrix.

    A value: every operation returns a new ``TTMatrix`` and leaves this one as it is.
    Its dtype and device are those of its cores; :meth:`to` moves them. The cores may
    require grad: :meth:`to_dense`, :meth:`dot`, sums and scalar products stay
    differentiable; :meth:`round`, :meth:`norm` and :meth:`singular_values` detach.

    Args:
        cores: the ``d`` cores, 4-D floating-point tensors on one device and of one
            dtype, core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)`` with ``r_0 = r_d = 1``
            and matching ranks between neighbours.
        approximation_error: the relative Frobenius error of these cores against what
            they were made from (set by :meth:`from_dense` and :meth:`round`), or ``None``.

    Raises:
        ValueError: naming the core and the fix, for cores that do not chain.

    Attributes:
        cores: tuple of the ``d`` cores.
        in_modes, out_modes: ``(n_1..n_d)``, ``(m_1..m_d)``.
        approximation_error: ``||W_tt - W|| / ||W||`` for :meth:`from_dense` (``W`` the dense
            matrix given), ``||B - A|| / ||A||`` for ``B = A.round(...)`` (against the
            TT-matrix rounded, not against an earlier dense matrix); kept by :meth:`to`
            and by scalar products (relative errors do not change under scaling);
            ``None`` otherwise.
    """

    def __init__(self, cores: Sequence[torch.Tensor], approximation_error: Optional[float] = None) -> None:
        cores = tuple(cores)
        if not cores:
            raise ValueError("a TTMatrix needs at least one core, of shape (r_{k-1}, n_k, m_k, r_k)")
        for index, core in enumerate(cores):
            if not isinstance(core, torch.Tensor) or core.dim() != 4:
                found = f"shape {tuple(core.shape)}" if isinstance(core, torch.Tensor) else type(core).__name__
                raise ValueError(f"core {index} must be a 4-D tensor (r_{{k-1}}, n_k, m_k, r_k), got {found}")
            if not core.dtype.is_floating_point:
                raise ValueError(f"core {index} has dtype {core.dtype}: a TTMatrix needs floating-point cores "
                                 f"(convert them with .to(torch.float32) or .double())")
            if core.dtype != cores[0].dtype or core.device != cores[0].device:
                raise ValueError(f"core {index} is {core.dtype} on {core.device} but core 0 is {cores[0].dtype} on "
                                 f"{cores[0].device}: move every core to one dtype and device")
            if min(core.shape) < 1:
                raise ValueError(f"core {index} has an empty dimension, shape {tuple(core.shape)}: every rank and mode "
                                 f"must be at least 1")
        if cores[0].shape[0] != 1 or cores[-1].shape[-1] != 1:
            raise ValueError(f"the first core must start with rank 1 and the last end with rank 1 (r_0 = r_d = 1), "
                             f"got {cores[0].shape[0]} and {cores[-1].shape[-1]}")
        for index in range(len(cores) - 1):
            if cores[index].shape[-1] != cores[index + 1].shape[0]:
                raise ValueError(f"core {index} ends with rank {cores[index].shape[-1]} but core {index + 1} starts with "
                                 f"rank {cores[index + 1].shape[0]}: neighbouring cores must share their rank")
        self.cores: tuple[torch.Tensor, ...] = cores
        self.in_modes: tuple[int, ...] = tuple(int(core.shape[1]) for core in cores)
        self.out_modes: tuple[int, ...] = tuple(int(core.shape[2]) for core in cores)
        self.approximation_error = approximation_error

    # ------------------------------------------------------------------ what it is
    @property
    def d(self) -> int:
        """Number of cores."""
        return len(self.cores)

    @property
    def ranks(self) -> tuple[int, ...]:
        """The internal ranks ``(r_1, ..., r_{d-1})``."""
        return tuple(int(core.shape[-1]) for core in self.cores[:-1])

    @property
    def shape(self) -> tuple[int, int]:
        """``(M, N) = (prod m_k, prod n_k)``, like ``nn.Linear.weight``."""
        return prod(self.out_modes), prod(self.in_modes)

    @property
    def params(self) -> int:
        """Number of core entries, ``sum_k r_{k-1} n_k m_k r_k``."""
        return sum(core.numel() for core in self.cores)

    @property
    def dtype(self) -> torch.dtype:
        return self.cores[0].dtype

    @property
    def device(self) -> torch.device:
        return self.cores[0].device

    def __repr__(self) -> str:
        error = "" if self.approximation_error is None else f", approximation_error={self.approximation_error:.3g}"
        return (f"TTMatrix(in_modes={modes_text(self.in_modes)}, out_modes={modes_text(self.out_modes)}, "
                f"ranks={list(self.ranks)}, dtype={self.dtype}, device={self.device}{error})")

    def to(self, *args: Any, **kwargs: Any) -> "TTMatrix":
        """The same TT-matrix with every core passed through ``Tensor.to(*args, **kwargs)``."""
        return TTMatrix([core.to(*args, **kwargs) for core in self.cores], self.approximation_error)

    def detach(self) -> "TTMatrix":
        """The same TT-matrix with detached cores (they share storage with these)."""
        return TTMatrix([core.detach() for core in self.cores], self.approximation_error)

    # ------------------------------------------------------------------ dense <-> TT
    @classmethod
    def from_dense(
        cls,
        weight: torch.Tensor,
        in_modes: Sequence[int],
        out_modes: Sequence[int],
        ranks: RanksLike = None,
        rel_error: Optional[float] = None,
    ) -> "TTMatrix":
        """TT-SVD (Oseledets 2011) of a dense ``(M, N)`` matrix, in float64.

        Args:
            weight: ``W``, shaped like ``nn.Linear.weight``: ``(prod out_modes, prod in_modes)``.
            in_modes, out_modes: the factorizations of ``N`` and ``M`` (same length ``d``).
            ranks: caps on the internal ranks (an int or ``d - 1`` ints), clipped to the
                maximal useful ones (:func:`ttexplore.tt.ttmath.plan_ranks`, silently: a
                cap above them does not bind); ``None`` for no cap.
            rel_error: the relative Frobenius error allowed, in ``[0, 1)``; ``None`` keeps
                every singular value up to the caps (exact at the maximal ranks).

        Returns:
            A ``TTMatrix`` in ``W``'s dtype and on its device whose
            :attr:`approximation_error` is ``||W_tt - W|| / ||W||`` of the cores returned:
            the dropped singular values' share in float64; for another dtype, measured
            against ``W`` after the cores are cast back (the cast adds about that dtype's epsilon).

        Raises:
            ValueError: for ``W`` of the wrong shape or dtype, bad modes, ranks or ``rel_error``.

        Complexity: one SVD per core, dominated by the first,
        ``O(n_1 m_1 N M min(n_1 m_1, N M / (n_1 m_1)))``; about ``3 N M`` float64 numbers of
        memory, checked against the budget first.
        """
        in_modes, out_modes = check_modes(in_modes, out_modes)
        check_rel_error(rel_error)
        check_rank_caps(ranks)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or not weight.dtype.is_floating_point:
            found = f"{weight.dtype} tensor of shape {tuple(weight.shape)}" if isinstance(weight, torch.Tensor) \
                else type(weight).__name__
            raise ValueError(f"W must be a 2-D floating-point tensor shaped like nn.Linear.weight (out, in), got a {found}")
        expected = (prod(out_modes), prod(in_modes))
        if tuple(weight.shape) != expected:
            raise ValueError(f"W has shape {tuple(weight.shape)} but out_modes {modes_text(out_modes)} x in_modes "
                             f"{modes_text(in_modes)} make {expected} (M, N), like nn.Linear.weight: check the modes")
        check_bytes(3 * 8 * expected[0] * expected[1], f"TT-SVD of a {expected[0]}x{expected[1]} matrix in float64")
        plan = plan_ranks(in_modes, out_modes, ranks)
        reference = float64_workspace(weight)
        cores, error = dense_to_tt_matrix(reference, in_modes, out_modes, max_ranks=plan.ranks, rel_error=rel_error)
        cores = [core.to(dtype=weight.dtype, device=weight.device) for core in cores]
        if weight.dtype != torch.float64:
            # the error of the cores as cast: rebuild them in float64 and compare with W
            rebuilt = tt_to_dense([float64_workspace(core) for core in cores])
            norm = float(torch.linalg.matrix_norm(reference))
            error = float(torch.linalg.matrix_norm(rebuilt - reference)) / norm if norm > 0 else 0.0
        return cls(cores, approximation_error=error)

    def to_dense(self) -> torch.Tensor:
        """The dense ``W``, shape ``(M, N)`` like ``nn.Linear.weight``; differentiable.

        Raises:
            ResourceError: (a ``ValueError``) when ``M N`` numbers would not fit the memory budget.

        Complexity: :func:`ttexplore.nn.kernels.tt_to_dense`, ``O(d r^2 N M)`` at worst, ``N M`` memory.
        """
        rows, cols = self.shape
        check_bytes(rows * cols * self.cores[0].element_size(), f"the dense {rows}x{cols} matrix of a TTMatrix")
        return tt_to_dense(list(self.cores))

    full = to_dense

    # ------------------------------------------------------------------ rounding
    def round(self, max_rank: RanksLike = None, rel_error: Optional[float] = None) -> "TTMatrix":
        """TT-rounding (Oseledets 2011): the same matrix at lower ranks, without building ``W``.

        Right-to-left QR orthogonalisation, then one left-to-right sweep of truncated SVDs
        (:func:`ttexplore.nn.coreops.round_cores`). Each of the ``d - 1`` SVDs drops a tail
        of norm at most ``rel_error ||A|| / sqrt(d - 1)`` and keeps at most ``max_rank``
        values, so the result ``B`` has ``||B - A|| <= rel_error ||A||`` when no cap binds.
        From an exact representation, ``B`` is what TT-SVD of the dense matrix gives at the
        same ranks. The cores are detached and the work done in float64 (on the CPU for a
        device without float64); ``B`` comes back in this dtype and on this device.

        Args:
            max_rank: caps on the internal ranks, an int or ``d - 1`` ints (a cap above a
                rank does not bind); ``None`` for no cap.
            rel_error: the relative Frobenius error allowed, in ``[0, 1)``; ``None`` keeps
                every singular value up to the caps (then only ranks above the maximal
                useful ones shrink, exactly). ``rel_error=1e-12`` drops numerical zeros,
                e.g. the doubled ranks of ``A + A``.

        Returns:
            ``B``, whose :attr:`approximation_error` is ``||B - A|| / ||A||``: in float64,
            ``sqrt(sum of dropped sigma^2) / ||A||`` (exact, the sweep being orthogonal); for
            another dtype, measured after the cores are cast back (:func:`tt_norm` of the
            difference, in float64).

        Raises:
            ValueError: for ``max_rank`` below 1, not whole, or with the wrong number of
                entries, or ``rel_error`` outside ``[0, 1)``.

        Complexity: ``O(d n m r^3)`` FLOPs for ranks ``r`` (twice that, with ranks ``2r``,
        to measure the error of a cast to a lower precision); never ``O(N M)``.
        """
        check_rel_error(rel_error)
        caps = check_rank_caps(max_rank, self.d - 1, "max_rank")
        rounding = round_cores(self.cores, max_ranks=caps, rel_error=rel_error)
        error = rounding.error
        if self.dtype != torch.float64:
            reference = [float64_workspace(core) for core in self.cores]
            result = [float64_workspace(core) for core in rounding.cores]
            difference = tt_sum(reference, [-result[0], *result[1:]])
            error = float(tt_norm(difference)) / rounding.norm if rounding.norm > 0 else 0.0
        return TTMatrix(rounding.cores, approximation_error=error)

    def singular_values(self) -> list[torch.Tensor]:
        """The singular values of each of the ``d - 1`` unfoldings of ``W``, never building it.

        Unfolding ``k`` is the ``(n_1 m_1 ... n_k m_k, n_{k+1} m_{k+1} ... n_d m_d)`` matrix of
        the tensor TT-SVD factorises (``W`` reshaped to ``(m_1..m_d, n_1..n_d)``, its modes
        paired as ``(n_k, m_k)``). Read from the orthogonalised sweep without truncation.

        Returns:
            ``d - 1`` 1-D float64 tensors, in decreasing order, on this device (the CPU for
            Apple MPS); tensor ``k`` has ``min(r_k, r_{k-1} n_k m_k)`` values (its nonzero ones
            are those of the unfolding; the unfolding's others are zero).

        Complexity: ``O(d n m r^3)`` (one orthogonalisation and one SVD sweep).
        """
        return round_cores(self.cores).singular_values

    def effective_ranks(self, rel_error: float) -> tuple[int, ...]:
        """The rank each unfolding needs on its own for ``rel_error``: the smallest ``r_k``
        whose dropped tail is within ``rel_error ||W|| / sqrt(d - 1)``
        (:func:`ttexplore.tt.ttmath.ranks_for_error`). :meth:`round` with that ``rel_error``
        reaches these ranks or lower ones (truncating a boundary only shrinks the later
        unfoldings' singular values).

        Complexity: :meth:`singular_values`.
        """
        check_rel_error(rel_error)
        if rel_error is None:
            raise ValueError("rel_error must be a number in [0, 1) for effective_ranks, e.g. 0.01 for 1%")
        return ranks_for_error([spectrum.tolist() for spectrum in self.singular_values()], rel_error)

    # ------------------------------------------------------------------ algebra
    def norm(self) -> torch.Tensor:
        """Frobenius norm ``||W||_F`` by right-orthogonalisation in float64 (accurate also for a
        small difference ``A - B``); never builds ``W``. Detached: for a differentiable norm use
        ``A.dot(A).sqrt()``.

        Returns:
            A 0-d float64 tensor on this device (the CPU for Apple MPS).

        Complexity: ``O(d n m r^3)``.
        """
        return tt_norm(self.cores)

    def dot(self, other: "TTMatrix") -> torch.Tensor:
        """The Frobenius inner product ``<A, B> = sum_ij A_ij B_ij`` (``trace(A^T B)``),
        contracted core by core; differentiable, in the promoted dtype of both.

        Returns:
            A 0-d tensor.

        Complexity: ``O(d n m r s (r + s))`` for ranks ``r`` and ``s``; never builds either matrix.
        """
        self._check_partner(other, "dot")
        return tt_inner(self.cores, other.cores)

    def __add__(self, other: "TTMatrix") -> "TTMatrix":
        """``A + B``: ranks add (``r_k + s_k``); block-diagonal cores, the first concatenated
        along ``r_1`` and the last along ``r_{d-1}``. :meth:`round` brings the ranks back down.

        Complexity: ``O(d n m (r + s)^2)`` memory traffic.
        """
        if not isinstance(other, TTMatrix):
            return NotImplemented
        self._check_partner(other, "+")
        return TTMatrix(tt_sum(self.cores, other.cores))

    def __sub__(self, other: "TTMatrix") -> "TTMatrix":
        """``A - B`` (ranks add, as for ``+``)."""
        if not isinstance(other, TTMatrix):
            return NotImplemented
        self._check_partner(other, "-")
        return TTMatrix(tt_sum(self.cores, (-other).cores))

    def __mul__(self, scalar: Scalar) -> "TTMatrix":
        """``c A`` for a real number (or 0-d tensor) ``c``: the first core is scaled. Complexity: ``O(n_1 m_1 r_1)``."""
        if isinstance(scalar, torch.Tensor):
            if scalar.dim() != 0:
                raise ValueError(f"a TTMatrix can be multiplied by a scalar (0-d tensor), not by a tensor of shape "
                                 f"{tuple(scalar.shape)}: use dot() for the inner product")
        elif isinstance(scalar, bool) or not isinstance(scalar, numbers.Real):
            return NotImplemented
        scaled = self.cores[0] * scalar
        return TTMatrix([scaled.to(self.dtype), *self.cores[1:]], self.approximation_error)

    __rmul__ = __mul__

    def __truediv__(self, scalar: Scalar) -> "TTMatrix":
        """``A / c`` for a nonzero real number ``c``."""
        if isinstance(scalar, numbers.Real) and not isinstance(scalar, bool) and scalar == 0:
            raise ValueError("a TTMatrix divided by 0 has no value: divide by a nonzero number")
        if isinstance(scalar, (numbers.Real, torch.Tensor)) and not isinstance(scalar, bool):
            return self * (1.0 / scalar)
        return NotImplemented

    def __neg__(self) -> "TTMatrix":
        return self * -1.0

    def _check_partner(self, other: "TTMatrix", operation: str) -> None:
        """Refuse a partner of other modes or on another device, naming both."""
        if not isinstance(other, TTMatrix):
            raise ValueError(f"{operation} needs two TTMatrix values, got a {type(other).__name__}")
        if (self.in_modes, self.out_modes) != (other.in_modes, other.out_modes):
            raise ValueError(
                f"{operation} needs TT-matrices of the same modes: in_modes {modes_text(self.in_modes)} -> "
                f"out_modes {modes_text(self.out_modes)} against {modes_text(other.in_modes)} -> "
                f"{modes_text(other.out_modes)} (rebuild one with TTMatrix.from_dense on the other's modes)")
        if self.device != other.device:
            raise ValueError(f"{operation} needs TT-matrices on one device, got {self.device} and {other.device}: "
                             f"move one with .to(device)")
