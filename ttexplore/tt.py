"""TT-matrix kernels in torch: rebuild the dense matrix, multiply by it, TT-SVD.

The layout conventions are those of :mod:`ttexplore.ttmath`: core ``k`` has shape
``(r_{k-1}, n_k, m_k, r_k)``, the dense matrix is ``(M, N)`` like
``nn.Linear.weight``, multi-indices are row-major.

Every kernel here is made of reshapes, transposes and 2-D matrix products, so
autograd differentiates it and BLAS does the work.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from .ttmath import prod

__all__ = ["tt_to_dense", "tt_matmul_ltr", "tt_matmul_rtl", "tt_svd", "dense_to_tt_matrix"]


def tt_to_dense(cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """Rebuild the dense ``(M, N)`` matrix from TT-matrix cores.

    Args:
        cores: ``d`` tensors, core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``.

    Returns:
        ``W`` of shape ``(prod m_k, prod n_k)``.

    Complexity: ``O(sum_k prod_{j<k}(n_j m_j) r_{k-1} n_k m_k r_k)`` FLOPs, i.e.
    ``O(d r^2 N M)`` at worst, and ``O(N M)`` memory.
    """
    in_modes = [core.shape[1] for core in cores]
    out_modes = [core.shape[2] for core in cores]
    # partial: (n_1 m_1 ... n_k m_k, r_k)
    partial = cores[0].reshape(-1, cores[0].shape[-1])
    for core in cores[1:]:
        rank_in, rank_out = core.shape[0], core.shape[-1]
        # (n_1 m_1 .. n_{k-1} m_{k-1}, r_{k-1}) @ (r_{k-1}, n_k m_k r_k)
        partial = (partial @ core.reshape(rank_in, -1)).reshape(-1, rank_out)
    d = len(cores)
    # partial: (n_1, m_1, n_2, m_2, ..., n_d, m_d) -> (m_1..m_d, n_1..n_d)
    interleaved = partial.reshape([size for pair in zip(in_modes, out_modes) for size in pair])
    order = [2 * k + 1 for k in range(d)] + [2 * k for k in range(d)]
    return interleaved.permute(order).reshape(prod(out_modes), prod(in_modes))


def tt_matmul_ltr(inputs: torch.Tensor, cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """``inputs @ W.T`` core by core, first core first; one GEMM per core.

    Args:
        inputs: ``(B, N)``.
        cores: TT-matrix cores of ``W``, core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``.

    Returns:
        ``(B, M)``.

    Complexity: ``sum_k 2 B r_{k-1} n_k m_k r_k prod_{j>k} n_j prod_{j<k} m_j`` FLOPs
    (see :func:`ttexplore.ttmath.tt_sweep_flops`), largest intermediate
    ``B max_k r_k prod_{j>k} n_j prod_{j<=k} m_j``.
    """
    batch = inputs.shape[0]
    # state: (r_0 n_1 .. n_d, B) with r_0 = 1
    state = inputs.reshape(batch, -1).t()
    for core in cores:
        rank_in, modes_in, modes_out, rank_out = core.shape
        # state: (r_{k-1} n_k, [n_{k+1}..n_d, B, m_1..m_{k-1}])
        state = state.reshape(rank_in * modes_in, -1)
        # (m_k r_k, rest) = core^T (m_k r_k, r_{k-1} n_k) @ state
        state = core.reshape(rank_in * modes_in, modes_out * rank_out).t() @ state
        # move m_k to the back: (r_k [n_{k+1}..n_d B m_1..m_{k-1}], m_k)
        state = state.reshape(modes_out, -1).t()
    # state: (r_d = 1, B, m_1..m_d)
    return state.reshape(batch, -1)


def tt_matmul_rtl(inputs: torch.Tensor, cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """``inputs @ W.T`` core by core, last core first; one GEMM per core.

    The mirror image of :func:`tt_matmul_ltr`; cheaper when the input modes
    at the end are large and the output modes at the end are small.

    Complexity: ``sum_k 2 B r_{k-1} n_k m_k r_k prod_{j<k} n_j prod_{j>k} m_j`` FLOPs.
    """
    batch = inputs.shape[0]
    # state: (B n_1 .. n_d, r_d) with r_d = 1
    state = inputs.reshape(batch, -1)
    for core in reversed(cores):
        rank_in, modes_in, modes_out, rank_out = core.shape
        # state: ([m_{k+1}..m_d, B, n_1..n_{k-1}], n_k r_k)
        state = state.reshape(-1, modes_in * rank_out)
        # core as (n_k r_k, r_{k-1} m_k)
        core_matrix = core.permute(1, 3, 0, 2).reshape(modes_in * rank_out, rank_in * modes_out)
        state = state @ core_matrix
        # move m_k to the front: (m_k, [m_{k+1}..m_d B n_1..n_{k-1}] r_{k-1})
        state = state.reshape(-1, modes_out).t()
    # state: (m_1..m_d, B r_0) with r_0 = 1
    return state.reshape(-1, batch).t()


def tt_svd(
    tensor: torch.Tensor, max_ranks: Optional[Sequence[int]] = None, rel_error: Optional[float] = None
) -> tuple[list[torch.Tensor], float]:
    """TT-SVD (Oseledets 2011) of a ``d``-way tensor.

    Each of the ``d - 1`` truncated SVDs drops singular values whose tail norm is
    at most ``rel_error * ||A||_F / sqrt(d - 1)`` and keeps at most ``max_ranks[k]``,
    so the result has relative Frobenius error ``<= rel_error`` when no cap binds.

    Args:
        tensor: shape ``(p_1, ..., p_d)``.
        max_ranks: ``d - 1`` caps on the internal ranks, or ``None`` for no cap.
        rel_error: target relative Frobenius error, or ``None`` (exact up to the caps).

    Returns:
        ``(cores, error)``: cores of shape ``(r_{k-1}, p_k, r_k)`` and the relative
        Frobenius error of the truncation, ``sqrt(sum of dropped sigma^2) / ||A||``
        (exact for TT-SVD, since the dropped parts are orthogonal).

    Complexity: dominated by the first SVD, ``O(p_1 prod_k p_k min(p_1, prod_{k>1} p_k))``.
    """
    shape = list(tensor.shape)
    d = len(shape)
    if max_ranks is not None and len(max_ranks) != d - 1:
        raise ValueError(f"max_ranks needs {d - 1} entries for a {d}-way tensor, got {len(max_ranks)}")
    norm = torch.linalg.vector_norm(tensor).item()
    threshold = 0.0 if rel_error is None else rel_error * norm / math.sqrt(max(d - 1, 1))
    cores: list[torch.Tensor] = []
    dropped_sq = 0.0
    remainder = tensor
    rank_in = 1
    for k in range(d - 1):
        matrix = remainder.reshape(rank_in * shape[k], -1)
        left, sigma, right_t = torch.linalg.svd(matrix, full_matrices=False)
        # tail[i] = norm of sigma[i:]
        tail = torch.sqrt(torch.flip(torch.cumsum(torch.flip(sigma**2, [0]), 0), [0]))
        rank = int(sigma.numel())
        if threshold > 0:
            # smallest rank whose dropped tail is within the threshold
            within = (tail <= threshold).nonzero()
            if within.numel():
                rank = max(1, int(within[0].item()))
        if max_ranks is not None:
            rank = min(rank, int(max_ranks[k]))
        rank = max(1, rank)
        dropped_sq += float((sigma[rank:] ** 2).sum().item())
        cores.append(left[:, :rank].reshape(rank_in, shape[k], rank))
        remainder = sigma[:rank, None] * right_t[:rank]
        rank_in = rank
    cores.append(remainder.reshape(rank_in, shape[-1], 1))
    error = math.sqrt(dropped_sq) / norm if norm > 0 else 0.0
    return cores, error


def dense_to_tt_matrix(
    weight: torch.Tensor,
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    max_ranks: Optional[Sequence[int]] = None,
    rel_error: Optional[float] = None,
) -> tuple[list[torch.Tensor], float]:
    """TT-matrix cores of a dense ``(M, N)`` matrix by TT-SVD.

    ``W`` is reshaped to ``(m_1..m_d, n_1..n_d)``, permuted to ``(n_1, m_1, ...,
    n_d, m_d)`` and merged to ``(n_1 m_1, ..., n_d m_d)`` before :func:`tt_svd`.

    Returns:
        ``(cores, error)`` with cores ``(r_{k-1}, n_k, m_k, r_k)`` and the relative
        Frobenius error reached.
    """
    d = len(in_modes)
    tensor = weight.reshape(*out_modes, *in_modes)
    order = [index for k in range(d) for index in (d + k, k)]
    merged = tensor.permute(order).reshape([n * m for n, m in zip(in_modes, out_modes)])
    cores, error = tt_svd(merged, max_ranks=max_ranks, rel_error=rel_error)
    return [core.reshape(core.shape[0], n, m, core.shape[-1]) for core, n, m in zip(cores, in_modes, out_modes)], error
