"""TT-matrix kernels in torch: rebuild the dense matrix, multiply by it, TT-SVD.

The layout conventions are those of :mod:`ttexplore.tt.ttmath`: core ``k`` has shape
``(r_{k-1}, n_k, m_k, r_k)``, the dense matrix is ``(M, N)`` like
``nn.Linear.weight``, multi-indices are row-major.

Every kernel here is made of reshapes, transposes and 2-D matrix products, so
autograd differentiates it and BLAS does the work.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from ttexplore.tt.layout import WIDE_COPY_BYTES, permuted_copy_plan
from ttexplore.tt.ttmath import prod

__all__ = [
    "permute_copy",
    "merge_cores",
    "tt_to_dense",
    "tt_to_dense_transposed",
    "tt_matmul_ltr",
    "tt_matmul_rtl",
    "tt_matmul_dense",
    "tt_matmul_blocked",
    "truncation_rank",
    "tt_matmul_batched",
    "tt_svd",
    "dense_to_tt_matrix",
]


# ---------------------------------------------------------------------------- permuted copies
#: Bytes of the widest element a permuted copy may move at once. ``complex128``
#: is the only 16-byte dtype; torch's copy kernel moves such elements with one
#: vector load/store, which makes a transpose whose unmoved inner block is 16,
#: 32, ... bytes wide several times faster than moving 4-byte floats (e.g.
#: 0.07 ms instead of 0.3 ms for a 2 MB ``(16384, 8, 4) -> (8, 16384, 4)`` copy on
#: the 2-core benchmark machine). The copy is bit-exact: no arithmetic is done.
_WIDE_BYTES = WIDE_COPY_BYTES
_WIDE_DTYPE = torch.complex128


def _permuted_copy(flat: torch.Tensor, shape: tuple[int, ...], perm: tuple[int, ...]) -> torch.Tensor:
    """Contiguous copy of ``flat.view(shape).permute(perm)``, returned flat (1-D).

    Returns ``flat`` itself (1-D) when the permutation moves nothing. The wide
    (16-byte word) copy is a measured CPU speed-up, so it runs on the CPU only.
    """
    flat = flat.contiguous()
    plan = permuted_copy_plan(shape, perm, flat.element_size())
    if plan is None:
        return flat.reshape(-1)
    copy_shape, copy_perm, wide = plan
    if wide and flat.device.type == "cpu" and flat.data_ptr() % _WIDE_BYTES == 0 and not flat.is_complex():
        wide_view = flat.reshape(-1).view(_WIDE_DTYPE).view(copy_shape)
        return wide_view.permute(copy_perm).contiguous().view(flat.dtype).reshape(-1)
    if wide:  # another device, unaligned or complex: move the tensor's own elements
        copy_shape = copy_shape[:-1] + (copy_shape[-1] * _WIDE_BYTES // flat.element_size(),)
    return flat.view(copy_shape).permute(copy_perm).contiguous().reshape(-1)


class _PermutedCopy(torch.autograd.Function):
    """Autograd wrapper of :func:`_permuted_copy`: the gradient is the inverse permuted copy."""

    @staticmethod
    def forward(ctx, flat: torch.Tensor, shape: tuple[int, ...], perm: tuple[int, ...]) -> torch.Tensor:
        ctx.permuted_shape = tuple(shape[axis] for axis in perm)
        inverse = [0] * len(perm)
        for position, axis in enumerate(perm):
            inverse[axis] = position
        ctx.inverse = tuple(inverse)
        result = _permuted_copy(flat, shape, perm)
        # an unmoved tensor comes back as a view of the input; autograd wants a new tensor
        return result.clone() if result.data_ptr() == flat.data_ptr() else result

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _PermutedCopy.apply(grad, ctx.permuted_shape, ctx.inverse), None, None


def permute_copy(tensor: torch.Tensor, shape: Sequence[int], perm: Sequence[int]) -> torch.Tensor:
    """``tensor.reshape(shape).permute(perm)``, materialised contiguously and returned 1-D.

    The same values as ``.permute(perm).contiguous()``, bit for bit, but faster when
    the innermost axis stays in place and spans a multiple of 16 bytes (it is then
    copied as ``complex128`` elements). Differentiable (its gradient is the
    inverse permuted copy), also twice.

    While ``torch.compile`` or ``torch.export`` traces, it is the plain
    ``reshape(shape).permute(perm).contiguous()`` (the compiler lays out copies itself).

    Args:
        tensor: any tensor with ``prod(shape)`` elements (made contiguous first).
        shape: the axes to permute.
        perm: the new order of the axes, as for :meth:`torch.Tensor.permute`.

    Complexity: ``O(prod(shape))`` memory traffic, no FLOPs.
    """
    shape, perm = tuple(shape), tuple(perm)
    if torch.compiler.is_compiling():
        return tensor.reshape(shape).permute(perm).contiguous().reshape(-1)
    if tensor.requires_grad and torch.is_grad_enabled():
        return _PermutedCopy.apply(tensor.reshape(-1), shape, perm)
    return _permuted_copy(tensor, shape, perm)


# ---------------------------------------------------------------------------- merging cores
def merge_cores(cores: Sequence[torch.Tensor], outputs_first: bool = False) -> torch.Tensor:
    """Contract adjacent TT-matrix cores into one core.

    Args:
        cores: ``b`` consecutive cores, core ``j`` of shape ``(r_{j-1}, n_j, m_j, r_j)``.
        outputs_first: order the merged modes as ``(r_0, m..., n..., r_b)`` instead
            of ``(r_0, n..., m..., r_b)``.

    Returns:
        One core of shape ``(r_0, prod n_j, prod m_j, r_b)`` (or
        ``(r_0, prod m_j, prod n_j, r_b)`` with ``outputs_first``) whose multi-indices
        are row-major. A single core is returned as it is (unless ``outputs_first``).

    Complexity: ``sum_{j>=2} 2 r_0 prod_{i<j}(n_i m_i) r_{j-1} n_j m_j r_j`` FLOPs
    (one GEMM per core after the first) and one permuted copy of the result.
    """
    if len(cores) == 1:
        # (r_0, n, m, r_1) as it is, or -> (r_0, m, n, r_1) by one torch copy (a tenth of the general path's cost)
        return cores[0].transpose(1, 2).contiguous() if outputs_first else cores[0]
    in_modes = [int(core.shape[1]) for core in cores]
    out_modes = [int(core.shape[2]) for core in cores]
    rank_first, rank_last = int(cores[0].shape[0]), int(cores[-1].shape[-1])
    # partial: (r_0 n_1 m_1, r_1)
    partial = cores[0].reshape(-1, cores[0].shape[-1])
    for core in cores[1:]:
        # (r_0 n_1 m_1 .. n_{j-1} m_{j-1}, r_{j-1}) @ (r_{j-1}, n_j m_j r_j)
        partial = torch.mm(partial, core.reshape(core.shape[0], -1)).reshape(-1, core.shape[-1])
    # partial: (r_0, n_1, m_1, ..., n_b, m_b, r_b) -> (r_0, n_1..n_b, m_1..m_b, r_b)
    count = len(cores)
    interleaved = [rank_first] + [size for pair in zip(in_modes, out_modes) for size in pair] + [rank_last]
    in_axes = [1 + 2 * j for j in range(count)]
    out_axes = [2 + 2 * j for j in range(count)]
    middle = out_axes + in_axes if outputs_first else in_axes + out_axes
    merged = permute_copy(partial, interleaved, [0, *middle, 2 * count + 1])
    first, second = (prod(out_modes), prod(in_modes)) if outputs_first else (prod(in_modes), prod(out_modes))
    return merged.reshape(rank_first, first, second, rank_last)


def tt_to_dense(cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """Rebuild the dense ``(M, N)`` matrix from TT-matrix cores.

    Args:
        cores: ``d`` tensors, core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``.

    Returns:
        ``W`` of shape ``(prod m_k, prod n_k)``, contiguous.

    Complexity: ``O(sum_k prod_{j<k}(n_j m_j) r_{k-1} n_k m_k r_k)`` FLOPs, i.e.
    ``O(d r^2 N M)`` at worst, and ``O(N M)`` memory.
    """
    merged = merge_cores(cores, outputs_first=True)
    return merged.reshape(merged.shape[1], merged.shape[2])


def tt_to_dense_transposed(cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """``W^T``, shape ``(N, M)``, contiguous: the layout ``inputs @ W^T`` reads best.

    Complexity: as :func:`tt_to_dense`.
    """
    merged = merge_cores(cores)
    return merged.reshape(merged.shape[1], merged.shape[2])


# ---------------------------------------------------------------------------- products
def _batch_first(state: torch.Tensor, batch: int, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``(M, B)`` sweep result -> ``(B, M)`` (plus ``bias``), contiguous."""
    out_features = state.numel() // batch
    if batch == 1:
        output = state.reshape(1, out_features)
    else:
        output = permute_copy(state, (out_features, batch), (1, 0)).reshape(batch, out_features)
    return output if bias is None else output + bias


def tt_matmul_rtl(
    inputs: torch.Tensor,
    cores: Sequence[torch.Tensor],
    bias: Optional[torch.Tensor] = None,
    orientations: Optional[Sequence[str]] = None,
) -> torch.Tensor:
    """``inputs @ W^T (+ bias)`` core by core, last core first; one GEMM per core.

    The state is kept as ``(m_{k+1}..m_d, B, n_1..n_{k-1}, [n_k, r_k])``, row-major:
    the pair the next core contracts is always the innermost block (as
    ``(n_k, r_k)`` or ``(r_k, n_k)``), so each step is one 2-D GEMM plus one permuted
    copy that moves ``m_k`` to the front. Two ways per step (``orientations``):

    * ``"rows"``: ``(rows, K) @ (K, m_k r_{k-1})``, then the copy
      ``(rows, m_k, r_{k-1}) -> (m_k, rows, r_{k-1})``, whose unmoved inner block
      is ``r_{k-1}`` wide;
    * ``"cols"``: ``(m_k r_{k-1}, K) @ (K, rows)``, then the copy
      ``(m_k, r_{k-1}, rows/n_{k-1}, n_{k-1}) -> (m_k, rows/n_{k-1}, r_{k-1}, n_{k-1})``,
      whose unmoved inner block is ``n_{k-1}`` wide (better after merged cores).

    The first core (``r_0 = 1``) is always multiplied as ``(m_1, K) @ (K, rows)``,
    which writes ``m_1`` in front with no copy.

    Args:
        inputs: ``(B, N)``.
        cores: TT-matrix cores of ``W``, core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``;
            any core may itself be a merged block of cores (see :func:`merge_cores`).
        bias: optional ``(M,)``, added to the result.
        orientations: ``"rows"`` or ``"cols"`` for each step, last core first;
            ``None`` is all ``"rows"`` (the cost model picks them per step, see
            :func:`ttexplore.costmodel.strategy_costs`).

    Returns:
        ``(B, M)``, contiguous.

    Complexity: ``sum_k 2 B r_{k-1} n_k m_k r_k prod_{j<k} n_j prod_{j>k} m_j`` FLOPs
    (:func:`ttexplore.tt.ttmath.tt_sweep_flops`); the largest intermediate has
    ``B max_k r_{k-1} prod_{j<k} n_j prod_{j>=k} m_j`` elements.
    """
    batch = inputs.shape[0]
    # state: (B, n_1..n_d, r_d) with r_d = 1
    state = inputs.reshape(-1)
    rank_first = False  # whether the innermost pair is (r_k, n_k) rather than (n_k, r_k)
    count = len(cores)
    for step in range(count):
        core = cores[count - 1 - step]
        rank_in, modes_in, modes_out, rank_out = core.shape
        pair = (3, 1) if rank_first else (1, 3)
        contracted = modes_in * rank_out
        rows = state.numel() // contracted
        # state: (rows = [m_{k+1}..m_d, B, n_1..n_{k-1}], K = n_k r_k or r_k n_k)
        state = state.reshape(rows, contracted)
        if rank_in == 1:
            # (m_k, K) @ (K, rows) -> (m_k, rows): m_k lands in front
            core_matrix = core.permute(2, *pair, 0).reshape(modes_out, contracted)
            state = torch.mm(core_matrix, state.t()).reshape(-1)
        elif orientations is None or orientations[step] == "rows":
            core_matrix = core.permute(*pair, 2, 0).reshape(contracted, modes_out * rank_in)
            # (rows, K) @ (K, m_k r_{k-1}) -> (rows, m_k, r_{k-1})
            state = torch.mm(state, core_matrix)
            # -> (m_k, rows, r_{k-1}) = (m_k..m_d, B, n_1..n_{k-1}, r_{k-1})
            state = permute_copy(state, (rows, modes_out, rank_in), (1, 0, 2))
            rank_first = False
        else:
            next_modes_in = cores[count - 2 - step].shape[1]
            core_matrix = core.permute(2, 0, *pair).reshape(modes_out * rank_in, contracted)
            # (m_k r_{k-1}, K) @ (K, rows) -> (m_k, r_{k-1}, [m_{k+1}..m_d B n_1..n_{k-2}], n_{k-1})
            state = torch.mm(core_matrix, state.t())
            # -> (m_k, [m_{k+1}..m_d B n_1..n_{k-2}], r_{k-1}, n_{k-1})
            state = permute_copy(
                state, (modes_out, rank_in, rows // next_modes_in, next_modes_in), (0, 2, 1, 3)
            )
            rank_first = True
    # state: (m_1..m_d, B)
    return _batch_first(state, batch, bias)


def tt_matmul_ltr(
    inputs: torch.Tensor, cores: Sequence[torch.Tensor], bias: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """``inputs @ W^T (+ bias)`` core by core, first core first; one GEMM per core.

    The state is kept as ``(r_{k-1}, n_k..n_d, m_1..m_{k-1}, B)``, row-major, so the
    pair ``(r_{k-1}, n_k)`` the next core contracts is always the outermost block:
    each step is one 2-D GEMM ``(r_k m_k, r_{k-1} n_k) @ (r_{k-1} n_k, cols)``
    followed by one permuted copy that moves ``m_k`` in front of ``B`` (its
    unmoved inner block is the batch, so it is cheap for large batches). The
    inputs are transposed to ``(n_1..n_d, B)`` once at the start.

    Args, returns: as :func:`tt_matmul_rtl`.

    Complexity: ``sum_k 2 B r_{k-1} n_k m_k r_k prod_{j>k} n_j prod_{j<k} m_j`` FLOPs;
    the largest intermediate has ``B max_k r_k prod_{j>k} n_j prod_{j<=k} m_j`` elements.
    """
    batch = inputs.shape[0]
    # state: (r_0 n_1..n_d, B) with r_0 = 1
    state = inputs.reshape(-1) if batch == 1 else permute_copy(inputs, (batch, inputs.shape[-1]), (1, 0))
    for core in cores:
        rank_in, modes_in, modes_out, rank_out = core.shape
        contracted = rank_in * modes_in
        cols = state.numel() // contracted
        core_matrix = core.permute(3, 2, 0, 1).reshape(rank_out * modes_out, contracted)
        # (r_k m_k, r_{k-1} n_k) @ (r_{k-1} n_k, cols) -> (r_k, m_k, [n_{k+1}..n_d m_1..m_{k-1}], B)
        state = torch.mm(core_matrix, state.reshape(contracted, cols))
        # -> (r_k, [n_{k+1}..n_d m_1..m_{k-1}], m_k, B)
        state = permute_copy(state, (rank_out, modes_out, cols // batch, batch), (0, 2, 1, 3))
    # state: (r_d = 1, m_1..m_d, B)
    return _batch_first(state, batch, bias)


def tt_matmul_dense(
    inputs: torch.Tensor, cores: Sequence[torch.Tensor], bias: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """``inputs @ W^T (+ bias)`` by rebuilding ``W^T`` (``(N, M)``) and one GEMM.

    Complexity: :func:`ttexplore.tt.ttmath.tt_rebuild_flops` FLOPs; ``N M`` extra memory.
    """
    weight_t = tt_to_dense_transposed(cores)
    # (B, N) @ (N, M) -> (B, M)
    if bias is None:
        return torch.mm(inputs, weight_t)
    return torch.addmm(bias, inputs, weight_t)


def tt_matmul_blocked(
    inputs: torch.Tensor,
    cores: Sequence[torch.Tensor],
    blocks: Sequence[int],
    direction: str = "rtl",
    bias: Optional[torch.Tensor] = None,
    orientations: Optional[Sequence[str]] = None,
    chunk: int = 0,
) -> torch.Tensor:
    """``inputs @ W^T (+ bias)``: merge blocks of adjacent cores, then sweep over the blocks.

    Merging two cores of a 4x8x8x4 layer costs a few thousand FLOPs and halves
    the number of passes over the (large) state, which is what a sweep spends
    most of its time on.

    Args:
        inputs: ``(B, N)``.
        cores: the ``d`` TT-matrix cores.
        blocks: lengths of the consecutive blocks, summing to ``d``; ``(2, 2)``
            merges cores 1-2 and 3-4. One block is the dense strategy.
        direction: the sweep over the merged blocks: ``"rtl"`` (:func:`tt_matmul_rtl`),
            ``"ltr"`` (:func:`tt_matmul_ltr`), ``"rtl-bmm"`` or ``"ltr-bmm"``
            (:func:`tt_matmul_batched`: no copies of the state).
        bias: optional ``(M,)``.
        orientations: per-step GEMM orientations of the ``"rtl"`` sweep
            (see :func:`tt_matmul_rtl`).
        chunk: ``"rtl-bmm"`` only: sweep this many input rows at a time (0: all at
            once). The batch is the outermost index of every state of that sweep, so a
            chunk's rows go through all the blocks alone and its states stay in cache;
            the chunks' results are joined at the end.

    Complexity: the FLOPs of merging each block (:func:`merge_cores`) plus those
    of the sweep over the merged cores (:func:`ttexplore.tt.ttmath.tt_sweep_flops`
    with the blocks' modes).
    """
    if sum(blocks) != len(cores) or any(length < 1 for length in blocks):
        raise ValueError(f"blocks {list(blocks)} must be positive lengths summing to the {len(cores)} cores")
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction {direction!r} is unknown: use one of {', '.join(_DIRECTIONS)}")
    if len(blocks) == 1:
        return tt_matmul_dense(inputs, cores, bias)
    groups, start = [], 0
    for length in blocks:
        groups.append(cores[start : start + length])
        start += length
    if direction == "rtl-bmm":
        # each block as (r_0, m.., n.., r_b): its core matrix (r_0 M_b, N_b r_b) is a view
        merged = [merge_cores(group, outputs_first=True) for group in groups]
        shapes = [(int(c.shape[0]), int(c.shape[2]), int(c.shape[1]), int(c.shape[3])) for c in merged]
        matrices = [c.reshape(c.shape[0] * c.shape[1], c.shape[2] * c.shape[3]) for c in merged]
        if 0 < chunk < inputs.shape[0]:
            # each chunk of rows: (chunk, N) -> (chunk, M), all in cache; then (B, M)
            parts = [_batched_sweep(inputs[start : start + chunk], matrices, shapes, direction, None)
                     for start in range(0, inputs.shape[0], chunk)]
            output = torch.cat(parts)
            return output if bias is None else output + bias
        return _batched_sweep(inputs, matrices, shapes, direction, bias)
    merged = [merge_cores(group) for group in groups]
    if direction == "ltr-bmm":
        return tt_matmul_batched(inputs, merged, bias, direction)
    if direction == "rtl":
        return tt_matmul_rtl(inputs, merged, bias, orientations)
    return tt_matmul_ltr(inputs, merged, bias)


_DIRECTIONS = ("rtl", "ltr", "rtl-bmm", "ltr-bmm")


def tt_matmul_batched(
    inputs: torch.Tensor, cores: Sequence[torch.Tensor], bias: Optional[torch.Tensor] = None, direction: str = "rtl-bmm"
) -> torch.Tensor:
    """``inputs @ W^T (+ bias)`` core by core with one batched GEMM per core and no copy of the state.

    ``"rtl-bmm"`` (last core first) keeps the state as ``(B n_1..n_{k-1}, [n_k r_k],
    m_{k+1}..m_d)``: the pair the next core contracts sits between the rows still to
    contract and the outputs already made, so each step multiplies every one of the
    ``B n_1..n_{k-1}`` blocks ``(n_k r_k, m_{k+1}..m_d)`` by the core matrix
    ``(r_{k-1} m_k, n_k r_k)`` in one ``torch.bmm`` (the core expanded, not copied),
    giving ``(B n_1..n_{k-1}, [r_{k-1} m_k], m_{k+1}..m_d)``: the next state, in
    place. The input is read as it is and the result is ``(B, M)`` as written.
    ``"ltr-bmm"`` is the mirror image on ``(m_1..m_{k-1}, [r_{k-1} n_k], n_{k+1}..n_d B)``
    (the input is transposed to ``(N, B)`` first and the result back, unless ``B = 1``).
    A step with a single block, or nothing after the pair, is one plain GEMM.

    Args:
        inputs: ``(B, N)``.
        cores: core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)`` (any may be a merged block).
        bias: optional ``(M,)``.
        direction: ``"rtl-bmm"`` or ``"ltr-bmm"``.

    Returns:
        ``(B, M)``, contiguous.

    Complexity: the FLOPs of the core-by-core sweep in that direction
    (:func:`ttexplore.tt.ttmath.tt_sweep_flops`); memory: the largest state, no copies
    but the core matrices.
    """
    if direction == "rtl-bmm":
        laid_out = [merge_cores([core], outputs_first=True) for core in cores]  # (r_{k-1}, m_k, n_k, r_k)
        matrices = [c.reshape(c.shape[0] * c.shape[1], c.shape[2] * c.shape[3]) for c in laid_out]
    elif direction == "ltr-bmm":
        # (r_{k-1}, n_k, m_k, r_k) -> (m_k r_k, r_{k-1} n_k)
        matrices = [core.permute(2, 3, 0, 1).reshape(core.shape[2] * core.shape[3], -1) for core in cores]
    else:
        raise ValueError(f"direction {direction!r} is unknown: use 'rtl-bmm' or 'ltr-bmm'")
    shapes = [tuple(int(size) for size in core.shape) for core in cores]
    return _batched_sweep(inputs, matrices, shapes, direction, bias)


def _batched_sweep(
    inputs: torch.Tensor,
    matrices: Sequence[torch.Tensor],
    shapes: Sequence[tuple[int, int, int, int]],
    direction: str,
    bias: Optional[torch.Tensor],
) -> torch.Tensor:
    """:func:`tt_matmul_batched` given each core's matrix and its ``(r_{k-1}, n_k, m_k, r_k)`` shape."""
    batch = inputs.shape[0]
    count = len(shapes)
    if direction == "rtl-bmm":
        # state: (B n_1..n_{d-1}, [n_d r_d]) with r_d = 1 and nothing after the pair
        state = inputs
        inner = 1
        for step in range(count):
            rank_in, modes_in, modes_out, rank_out = shapes[count - 1 - step]
            contracted = modes_in * rank_out
            outer = state.numel() // (contracted * inner)
            # (outer, [n_k r_k], inner) -> (outer, [r_{k-1} m_k], inner)
            state = _batched_step(state, matrices[count - 1 - step], outer, contracted, inner)
            inner *= modes_out
        # state: (B, [r_0 m_1], m_2..m_d) = (B, M)
        output = state.reshape(batch, -1)
    else:
        # state: ([r_0 n_1], n_2..n_d B) with r_0 = 1
        state = inputs.reshape(-1) if batch == 1 else permute_copy(inputs, (batch, inputs.shape[-1]), (1, 0))
        outer = 1
        for k in range(count):
            rank_in, modes_in, modes_out, rank_out = shapes[k]
            contracted = rank_in * modes_in
            inner = state.numel() // (outer * contracted)
            # (outer = m_1..m_{k-1}, [r_{k-1} n_k], inner) -> (outer, [m_k r_k], inner)
            state = _batched_step(state, matrices[k], outer, contracted, inner)
            outer *= modes_out
        # state: (m_1..m_d, [r_d], B) = (M, B)
        output = state.reshape(1, -1) if batch == 1 else permute_copy(state, (outer, batch), (1, 0)).reshape(batch, outer)
    return output if bias is None else output + bias


def _batched_step(state: torch.Tensor, matrix: torch.Tensor, outer: int, contracted: int, inner: int) -> torch.Tensor:
    """``matrix (rows, K) @ block`` for each of the ``outer`` blocks ``(K, inner)`` of ``state``, as
    ``(outer, rows, inner)``; one GEMM when ``inner`` or ``outer`` is 1, else one ``torch.bmm``.

    Complexity: ``2 outer rows K inner`` FLOPs.
    """
    if inner == 1:
        # (outer, K) @ (K, rows) -> (outer, rows)
        return torch.mm(state.reshape(outer, contracted), matrix.t())
    if outer == 1:
        # (rows, K) @ (K, inner) -> (rows, inner)
        return torch.mm(matrix, state.reshape(contracted, inner))
    # (outer, rows, K) [the matrix, expanded] @ (outer, K, inner) -> (outer, rows, inner)
    return torch.bmm(matrix.expand(outer, *matrix.shape), state.reshape(outer, contracted, inner))


def truncation_rank(
    sigma: torch.Tensor, threshold: Optional[float] = None, cap: Optional[int] = None
) -> tuple[int, float]:
    """The rank one truncated SVD keeps, and the squared norm it drops.

    The one truncation rule of TT-SVD and TT-rounding: the smallest rank whose dropped
    tail ``||sigma[rank:]||`` is at most ``threshold`` (every value when ``threshold``
    is ``None``), lowered to ``cap``, and never below 1.

    Args:
        sigma: singular values, 1-D, in decreasing order.
        threshold: the largest tail norm to drop (absolute), or ``None``.
        cap: the largest rank to keep, or ``None``.

    Returns:
        ``(rank, dropped_sq)`` with ``dropped_sq = sum(sigma[rank:] ** 2)``, summed from the
        smallest value up (no cancellation near zero).

    Complexity: ``O(len(sigma))``, one device-to-host copy of ``sigma``.
    """
    values = sigma.tolist()
    # tails_sq[i] = sum(sigma[i:] ** 2); tails_sq[len] = 0
    tails_sq = [0.0] * (len(values) + 1)
    for index in range(len(values) - 1, -1, -1):
        tails_sq[index] = tails_sq[index + 1] + values[index] * values[index]
    rank = len(values)
    if threshold is not None:
        rank = next(kept for kept, tail_sq in enumerate(tails_sq) if tail_sq <= threshold * threshold)
    if cap is not None:
        rank = min(rank, int(cap))
    rank = max(1, rank)
    return rank, tails_sq[min(rank, len(values))]


def tt_svd(
    tensor: torch.Tensor, max_ranks: Optional[Sequence[int]] = None, rel_error: Optional[float] = None
) -> tuple[list[torch.Tensor], float]:
    """TT-SVD (Oseledets 2011) of a ``d``-way tensor.

    Each of the ``d - 1`` truncated SVDs drops singular values whose tail norm is
    at most ``rel_error * ||A||_F / sqrt(d - 1)`` and keeps at most ``max_ranks[k]``
    (:func:`truncation_rank`), so the result has relative Frobenius error
    ``<= rel_error`` when no cap binds.

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
    threshold = None if rel_error is None else rel_error * norm / math.sqrt(max(d - 1, 1))
    cores: list[torch.Tensor] = []
    dropped_sq = 0.0
    # remainder: (r_{k-1} p_k, p_{k+1} .. p_d), the part of A not yet in cores
    remainder = tensor
    rank_in = 1
    for k in range(d - 1):
        matrix = remainder.reshape(rank_in * shape[k], -1)
        left, sigma, right_t = torch.linalg.svd(matrix, full_matrices=False)
        rank, dropped = truncation_rank(sigma, threshold, None if max_ranks is None else max_ranks[k])
        dropped_sq += dropped
        # core k: (r_{k-1} p_k, r_k) -> (r_{k-1}, p_k, r_k)
        cores.append(left[:, :rank].reshape(rank_in, shape[k], rank))
        # remainder: (r_k, p_{k+1} .. p_d)
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
