"""Operations on TT cores that never build the full tensor: orthogonalisation,
TT-rounding, singular values of the unfoldings, inner products and sums.

A core here has shape ``(r_{k-1}, *modes_k, r_k)`` with ``r_0 = r_d = 1``: a TT-matrix
core ``(r_{k-1}, n_k, m_k, r_k)`` (:mod:`ttexplore.nn.kernels`' layout), a TT-tensor
core ``(r_{k-1}, p_k, r_k)``, or a TT convolution's spatial core all qualify. The
middle modes of a core are one index as far as these operations are concerned
(``n_k m_k`` for a TT-matrix: the ``(n_k, m_k)`` pair is row-major), so every
unfolding is that of the tensor with indices ``(n_1 m_1, ..., n_d m_d)``, the one
TT-SVD (:func:`ttexplore.nn.kernels.dense_to_tt_matrix`) factorises.

Rounding (Oseledets 2011, "Tensor-Train decomposition", Algorithm 2): a right-to-left
QR sweep makes cores ``2..d`` right-orthogonal, so the first core carries the whole
norm; a left-to-right sweep of truncated SVDs then sees, at each boundary, exactly the
singular values of that unfolding of the (already truncated) tensor, and the dropped
parts are mutually orthogonal, so the squared error is the sum of the dropped
``sigma^2``. Cost ``O(d n m r^3)`` with ``n m`` the largest core's middle size and ``r``
its largest rank: independent of ``N M``.

The SVDs and QRs run in float64 (:func:`float64_workspace`) whatever the cores'
dtype, on the cores' device (on the CPU for a device without float64, Apple MPS).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import torch

from ttexplore.nn.kernels import truncation_rank

__all__ = [
    "float64_workspace",
    "orthogonalize_right",
    "Rounding",
    "round_cores",
    "tt_inner",
    "tt_norm",
    "tt_sum",
]


def float64_workspace(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` detached, in float64, on its device (the CPU for Apple MPS, which has no float64)."""
    device = torch.device("cpu") if tensor.device.type == "mps" else tensor.device
    return tensor.detach().to(device=device, dtype=torch.float64)


def orthogonalize_right(cores: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Right-orthogonalise TT cores: the same tensor, cores ``2..d`` with orthonormal rows.

    Core ``k >= 2`` comes back with its ``(r_{k-1}, modes_k r_k)`` unfolding having
    orthonormal rows; the first core carries the rest, so its Frobenius norm is the
    tensor's. A rank larger than its core's ``modes_k r_k`` shrinks to it (the QR
    factor is no wider), which never changes the tensor.

    Args:
        cores: ``d`` cores ``(r_{k-1}, *modes_k, r_k)``, all one dtype and device
            (use float64 for accuracy: :func:`float64_workspace`).

    Returns:
        ``d`` new cores ``(q_{k-1}, *modes_k, q_k)``, ``q_k <= r_k``.

    Complexity: ``sum_k O(prod(modes_k) r_k r_{k-1}^2)`` for the QRs plus the same order
    for folding each ``R`` into the core on its left: ``O(d n m r^3)``.
    """
    cores = list(cores)
    for k in range(len(cores) - 1, 0, -1):
        core = cores[k]
        rank_in = int(core.shape[0])
        # core: (r_{k-1}, modes_k r_k), transposed to (modes_k r_k, r_{k-1}) = Q R
        # Q: (modes_k r_k, q), R: (q, r_{k-1}), q = min(modes_k r_k, r_{k-1})
        q_factor, r_factor = torch.linalg.qr(core.reshape(rank_in, -1).t())
        kept = int(q_factor.shape[1])
        # new core k: Q^T (q, modes_k r_k) -> (q, *modes_k, r_k), orthonormal rows
        cores[k] = q_factor.t().reshape(kept, *core.shape[1:])
        previous = cores[k - 1]
        # core k-1: (r_{k-2} modes_{k-1}, r_{k-1}) @ R^T (r_{k-1}, q) -> (r_{k-2}, *modes_{k-1}, q)
        cores[k - 1] = torch.mm(previous.reshape(-1, rank_in), r_factor.t()).reshape(*previous.shape[:-1], kept)
    return cores


class Rounding(NamedTuple):
    """The result of :func:`round_cores`.

    Attributes:
        cores: the rounded cores, in the input cores' dtype and on their device.
        error: ``||A - B||_F / ||A||_F`` of the float64 result ``B``:
            ``sqrt(sum of dropped sigma^2) / ||A||``, exact because the sweep is orthogonal
            (0.0 for a zero tensor).
        singular_values: ``d - 1`` 1-D float64 tensors, those of each unfolding the sweep
            met (of the tensor truncated at the earlier boundaries; with no truncation,
            exactly the unfoldings of ``A``), every one kept, in decreasing order.
        norm: ``||A||_F`` (float).
    """

    cores: list[torch.Tensor]
    error: float
    singular_values: list[torch.Tensor]
    norm: float


def round_cores(
    cores: Sequence[torch.Tensor],
    max_ranks: Optional[Sequence[int]] = None,
    rel_error: Optional[float] = None,
) -> Rounding:
    """TT-rounding (Oseledets 2011): the quasi-optimal TT of lower ranks, without the full tensor.

    Right-to-left QR orthogonalisation (:func:`orthogonalize_right`), then one
    left-to-right sweep: at boundary ``k`` the SVD of the ``(r_{k-1} modes_k, r_k)``
    core is truncated by :func:`ttexplore.nn.kernels.truncation_rank` (the rule TT-SVD
    uses) with the threshold ``rel_error ||A|| / sqrt(d - 1)`` and the cap
    ``max_ranks[k]``, and ``diag(sigma) V^T`` is folded into the next core. So the
    result's relative error is at most ``rel_error`` when no cap binds, and from an
    exact representation the result is TT-SVD of the full tensor at the same ranks.

    The inputs are detached and computed on in float64 (:func:`float64_workspace`);
    the cores come back in the input dtype and device.

    Args:
        cores: ``d`` cores ``(r_{k-1}, *modes_k, r_k)``, one dtype and device.
        max_ranks: ``d - 1`` caps on the internal ranks, or ``None``.
        rel_error: the relative Frobenius error allowed, in ``[0, 1)``, or ``None``
            (keep every singular value up to the caps).

    Returns:
        A :class:`Rounding`.

    Complexity: ``O(d n m r^3)`` (one QR and one SVD of a ``(r n m, r)`` matrix per core,
    ``n m`` the largest middle size, ``r`` the largest input rank) and ``O(n m r^2)``
    memory per core; the full tensor is never formed.
    """
    d = len(cores)
    if max_ranks is not None and len(max_ranks) != d - 1:
        raise ValueError(f"max_ranks needs {d - 1} entries for {d} cores, got {len(max_ranks)}")
    dtype, device = cores[0].dtype, cores[0].device
    work = orthogonalize_right([float64_workspace(core) for core in cores])
    # the first core carries the norm: ||A|| = ||G_1||
    norm = float(torch.linalg.vector_norm(work[0]))
    threshold = None if rel_error is None else rel_error * norm / math.sqrt(max(d - 1, 1))
    rounded: list[torch.Tensor] = []
    spectra: list[torch.Tensor] = []
    dropped_sq = 0.0
    # carry: the current core, left-orthogonal cores before it, right-orthogonal after it
    carry = work[0]
    for k in range(d - 1):
        rank_in = int(carry.shape[0])
        # carry: (r_{k-1} modes_k, r_k) = U diag(sigma) V^T
        left, sigma, right_t = torch.linalg.svd(carry.reshape(-1, carry.shape[-1]), full_matrices=False)
        rank, dropped = truncation_rank(sigma, threshold, None if max_ranks is None else max_ranks[k])
        dropped_sq += dropped
        spectra.append(sigma)
        # core k: U[:, :rank] (r_{k-1} modes_k, rank) -> (r_{k-1}, *modes_k, rank), left-orthogonal
        rounded.append(left[:, :rank].reshape(rank_in, *carry.shape[1:-1], rank))
        following = work[k + 1]
        # next carry: diag(sigma) V^T (rank, r_k) @ (r_k, modes_{k+1} r_{k+1}) -> (rank, *modes_{k+1}, r_{k+1})
        carry = torch.mm(sigma[:rank, None] * right_t[:rank], following.reshape(following.shape[0], -1))
        carry = carry.reshape(rank, *following.shape[1:])
    rounded.append(carry)
    error = math.sqrt(dropped_sq) / norm if norm > 0 else 0.0
    return Rounding([core.to(dtype=dtype, device=device) for core in rounded], error, spectra, norm)


def tt_inner(cores_a: Sequence[torch.Tensor], cores_b: Sequence[torch.Tensor]) -> torch.Tensor:
    """Frobenius inner product ``<A, B> = sum A(i) B(i)`` of two TTs with the same modes, core by core.

    The state is the ``(s_k, r_k)`` matrix of ``B``'s and ``A``'s rank indices after
    contracting the first ``k`` cores of both (the Gram contraction). Differentiable;
    computed in the promoted dtype of both (use :func:`tt_norm` for an accurate norm of a
    difference: the Gram contraction squares the cancellation).

    Args:
        cores_a, cores_b: ``d`` cores each, ``(r_{k-1}, *modes_k, r_k)`` and
            ``(s_{k-1}, *modes_k, s_k)``, on one device.

    Returns:
        A 0-d tensor.

    Complexity: ``O(d n m r s (r + s))`` FLOPs, ``O(n m r s)`` memory.
    """
    dtype = torch.promote_types(cores_a[0].dtype, cores_b[0].dtype)
    # state: (s_0, r_0) = (1, 1)
    state = torch.ones(1, 1, dtype=dtype, device=cores_a[0].device)
    for core_a, core_b in zip(cores_a, cores_b):
        core_a, core_b = core_a.to(dtype), core_b.to(dtype)
        rank_a_in, rank_a_out = int(core_a.shape[0]), int(core_a.shape[-1])
        rank_b_out = int(core_b.shape[-1])
        # (s_{k-1}, r_{k-1}) @ (r_{k-1}, modes_k r_k) -> (s_{k-1}, modes_k, r_k) = (s_{k-1} modes_k, r_k)
        partial = torch.mm(state, core_a.reshape(rank_a_in, -1)).reshape(-1, rank_a_out)
        # (s_{k-1} modes_k, s_k)^T @ (s_{k-1} modes_k, r_k) -> (s_k, r_k)
        state = torch.mm(core_b.reshape(-1, rank_b_out).t(), partial)
    # state: (s_d, r_d) = (1, 1)
    return state.reshape(())


def tt_norm(cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """Frobenius norm of a TT by right-orthogonalisation in float64: the norm of the first core.

    Accurate to float64 precision relative to the norms of the parts, also for a
    difference ``A - B`` whose norm is far below ``||A||`` (where the Gram contraction
    of :func:`tt_inner` loses half the digits). Not differentiable (detached).

    Returns:
        A 0-d float64 tensor on the cores' device (the CPU for Apple MPS).

    Complexity: ``O(d n m r^3)`` (:func:`orthogonalize_right`).
    """
    work = orthogonalize_right([float64_workspace(core) for core in cores])
    return torch.linalg.vector_norm(work[0])


def tt_sum(cores_a: Sequence[torch.Tensor], cores_b: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Cores of ``A + B`` (same modes): the ranks add, ``r_k + s_k``.

    The first core is ``[G_1 | H_1]`` (concatenated along its last rank), the last
    ``[G_d ; H_d]`` (along its first), every other one block-diagonal
    ``[[G_k, 0], [0, H_k]]``; one core (``d = 1``) is the sum of the two. Differentiable;
    in the promoted dtype of both.

    Complexity: ``O(sum_k modes_k (r_{k-1} + s_{k-1}) (r_k + s_k))`` memory traffic, no FLOPs.
    """
    dtype = torch.promote_types(cores_a[0].dtype, cores_b[0].dtype)
    cores_a = [core.to(dtype) for core in cores_a]
    cores_b = [core.to(dtype) for core in cores_b]
    d = len(cores_a)
    if d == 1:
        return [cores_a[0] + cores_b[0]]
    summed = [torch.cat([cores_a[0], cores_b[0]], dim=-1)]  # (1, *modes_1, r_1 + s_1)
    for core_a, core_b in zip(cores_a[1:-1], cores_b[1:-1]):
        middle = tuple(core_a.shape[1:-1])
        # top: (r_{k-1}, *modes_k, r_k + s_k) = [G_k, 0]; bottom: (s_{k-1}, *modes_k, r_k + s_k) = [0, H_k]
        top = torch.cat([core_a, core_a.new_zeros(core_a.shape[0], *middle, core_b.shape[-1])], dim=-1)
        bottom = torch.cat([core_b.new_zeros(core_b.shape[0], *middle, core_a.shape[-1]), core_b], dim=-1)
        summed.append(torch.cat([top, bottom], dim=0))  # (r_{k-1} + s_{k-1}, *modes_k, r_k + s_k)
    summed.append(torch.cat([cores_a[-1], cores_b[-1]], dim=0))  # (r_{d-1} + s_{d-1}, *modes_d, 1)
    return summed
