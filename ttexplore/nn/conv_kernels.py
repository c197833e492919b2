"""TT convolution kernels in torch: the column sweeps, the spatial steps and the rebuilt kernel.

Layouts (see :mod:`ttexplore.tt.convshape`): ``cores[0]`` is the spatial core
``(1, kh*kw, 1, r_0)``, ``cores[k]`` the channel core ``(r_{k-1}, c_k, s_k, r_k)``,
``r_d = 1``. Images are NCHW, so one image is a ``(C, H*W)`` matrix: channels by
pixels, pixels contiguous.

The sweeps here keep that layout from start to end: the state of a chunk of ``G``
images is ``(G, <mode and rank indices>, L)`` with the ``L`` pixels innermost, and
each step is one batched GEMM ``(m, k) @ (b, k, n)`` whose contracted pair is, by
the choice of each core matrix's row order, always adjacent in the state. No step
permutes the state, so no step copies it (the TT-matrix kernels of
:mod:`ttexplore.nn.kernels` take rows of samples, and an NCHW image would first have
to be transposed into them and back).

Every kernel is made of reshapes, 2-D/batched matrix products and torch
convolutions, so autograd differentiates it and ``torch.compile`` traces it.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ttexplore.nn.kernels import tt_to_dense
from ttexplore.tt.ttmath import prod

__all__ = [
    "columns_sweep",
    "spatial_first",
    "channels_first",
    "im2col_columns",
    "im2col_sweep",
    "rebuild_kernel",
    "dense_conv",
]


# ---------------------------------------------------------------------------- sweeps over the columns
def columns_sweep(
    state: torch.Tensor, cores: Sequence[torch.Tensor], direction: str, input_rank: bool
) -> torch.Tensor:
    """Contract the modes of ``state`` with TT-matrix cores, one batched GEMM per core, pixels kept innermost.

    Args:
        state: ``(G, R, n_1, ..., n_d, L)`` as a ``(G, R * N, L)`` tensor; ``R = r_0`` (the first
            core's left rank) when ``input_rank``, else 1.
        cores: ``d`` cores ``(r_{k-1}, n_k, m_k, r_k)`` with ``r_d = 1``. ``r_0`` is contracted
            with the state's leading ``R`` index when ``input_rank``; otherwise it is kept as
            a leading output index.
        direction: ``"ltr"`` (first core first) or ``"rtl"`` (last core first).
        input_rank: see ``cores``.

    Returns:
        ``(G, m_1 ... m_d, L)`` when ``input_rank`` (or ``r_0 = 1``), else ``(G, r_0, m_1 ... m_d, L)``,
        as a ``(G, -1, L)`` tensor.

    Left to right the state before core ``k`` is ``(G, m_<k, r_{k-1}, n_k, n_>k, L)``: the core
    matrix ``(m_k r_k, r_{k-1} n_k)`` multiplies the ``(r_{k-1} n_k, n_>k L)`` block of each of
    the ``G m_<k`` batches. Right to left it is ``(G, R, n_<k, n_k, r_k, m_>k, L)``: the
    ``(r_{k-1} m_k, n_k r_k)`` core matrix multiplies the ``(n_k r_k, m_>k L)`` blocks of the
    ``G R n_<k`` batches (the last step, with ``input_rank``, contracts ``(r_0 n_1 r_1)`` at once).

    Complexity: step ``k`` costs ``2 G L r_{k-1} n_k m_k r_k prod_{j<k} m_j prod_{j>k} n_j`` FLOPs left
    to right, ``2 G L R r_{k-1} n_k m_k r_k prod_{j<k} n_j prod_{j>k} m_j`` right to left
    (:func:`ttexplore.costmodel.conv.columns_sweep_ops` lists them); no permuted copy of the state.
    """
    groups, pixels = state.shape[0], state.shape[-1]
    count = len(cores)
    if direction == "ltr":
        first = cores[0]
        if not input_rank and first.shape[0] > 1:
            # emit r_0 as the leading output index: (r_0, n_1, m_1, r_1) -> (1, n_1, r_0 m_1, r_1)
            rank_first, modes_in, modes_out, rank_out = first.shape
            first = first.permute(1, 0, 2, 3).reshape(1, modes_in, rank_first * modes_out, rank_out)
        cores = [first, *cores[1:]]
        batches = groups
        for core in cores:
            rank_in, modes_in, modes_out, rank_out = core.shape
            # core matrix: (m_k r_k, r_{k-1} n_k)
            core_matrix = core.permute(2, 3, 0, 1).reshape(modes_out * rank_out, rank_in * modes_in)
            # state: (G m_<k, r_{k-1} n_k, n_>k L) -> (G m_<k, m_k r_k, n_>k L)
            state = _batched_product(core_matrix, state.reshape(batches, rank_in * modes_in, -1))
            batches *= modes_out
        # state: (G m_1..m_d, r_d = 1, L)
        return state.reshape(groups, -1, pixels)
    if direction != "rtl":
        raise ValueError(f"direction {direction!r} is unknown: use 'ltr' or 'rtl'")
    rank_lead = int(cores[0].shape[0]) if input_rank else 1
    batches = groups * rank_lead * prod(int(core.shape[1]) for core in cores)
    for index in range(count - 1, -1, -1):
        core = cores[index]
        rank_in, modes_in, modes_out, rank_out = core.shape
        batches //= modes_in
        if index == 0 and input_rank:
            batches //= rank_in
            # core matrix: (m_1, r_0 n_1 r_1); state: (G, r_0 n_1 r_1, m_>1 L) -> (G, m_1, m_>1 L)
            core_matrix = core.permute(2, 0, 1, 3).reshape(modes_out, rank_in * modes_in * rank_out)
            state = _batched_product(core_matrix, state.reshape(batches, rank_in * modes_in * rank_out, -1))
        else:
            # core matrix: (r_{k-1} m_k, n_k r_k); state: (G R n_<k, n_k r_k, m_>k L) -> (.., r_{k-1} m_k, m_>k L)
            core_matrix = core.permute(0, 2, 1, 3).reshape(rank_in * modes_out, modes_in * rank_out)
            state = _batched_product(core_matrix, state.reshape(batches, modes_in * rank_out, -1))
    # state: (G, [r_0], m_1..m_d, L)
    return state.reshape(groups, -1, pixels)


def _batched_product(matrix: torch.Tensor, batches: torch.Tensor) -> torch.Tensor:
    """``matrix (m, k) @ batches (b, k, n)`` -> ``(b, m, n)``, contiguous, without copying ``batches``.

    One ``bmm`` with ``matrix`` expanded (stride 0). ``torch.matmul`` would do the same at
    inference, but when ``matrix`` requires grad it folds the product into one ``mm`` on the
    transposed batches, which copies them and returns a transposed result (a second copy at
    the next reshape).

    Complexity: ``2 b m k n`` FLOPs.
    """
    if batches.shape[0] == 1:
        return torch.mm(matrix, batches[0]).unsqueeze(0)
    return torch.bmm(matrix.expand(batches.shape[0], *matrix.shape), batches)


# ---------------------------------------------------------------------------- the strategies' bodies
def channels_first(
    inputs: torch.Tensor,
    cores: Sequence[torch.Tensor],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    direction: str,
    bias: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Channels first: contract each pixel's channels, then the spatial core as a small convolution.

    ``(G, C_in, H, W)`` -> the channel sweep (:func:`columns_sweep`, ``r_0`` kept) ->
    ``(G, r_0, C_out, H, W)`` -> a depthwise ``kh x kw`` convolution of each of the
    ``r_0 C_out`` planes by its column ``G_0[:, a]`` (stride and padding here) -> the sum
    over ``a`` -> ``(G, C_out, H', W')``.

    Complexity: the sweep over ``G H W`` pixels plus ``2 G H' W' r_0 C_out kh kw`` FLOPs;
    the intermediate has ``r_0 C_out H W`` elements per image.
    """
    groups, _, height, width = inputs.shape
    spatial = cores[0]
    rank_first = int(spatial.shape[-1])
    kernel_h, kernel_w = kernel_size
    # state: (G, C_in, L) -> (G, r_0, C_out, L)
    state = columns_sweep(inputs.reshape(groups, -1, height * width), cores[1:], direction, input_rank=False)
    out_channels = state.shape[1] // rank_first
    planes = state.reshape(groups, rank_first * out_channels, height, width)
    # depthwise weight: plane a * C_out + s gets G_0[:, a] -> (r_0 C_out, 1, kh, kw)
    filters = spatial.reshape(kernel_h * kernel_w, rank_first).t().reshape(rank_first, 1, 1, kernel_h, kernel_w)
    filters = filters.expand(rank_first, out_channels, 1, kernel_h, kernel_w).reshape(-1, 1, kernel_h, kernel_w)
    # the bias rides on the planes of a = 0, so the sum over a adds it once
    plane_bias = None if bias is None else F.pad(bias, (0, (rank_first - 1) * out_channels))
    # (G, r_0 C_out, H, W) -> (G, r_0 C_out, H', W')
    filtered = F.conv2d(planes, filters, plane_bias, stride=stride, padding=padding, groups=rank_first * out_channels)
    if rank_first == 1:
        return filtered
    # (G, r_0, C_out, H', W') summed over r_0 -> (G, C_out, H', W')
    return filtered.reshape(groups, rank_first, out_channels, *filtered.shape[-2:]).sum(1)


def spatial_first(
    inputs: torch.Tensor,
    cores: Sequence[torch.Tensor],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    direction: str,
    bias: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Spatial core first: each input plane convolved by the ``r_0`` spatial filters, then the channel sweep.

    ``(G, C_in, H, W)`` -> a depthwise convolution with channel multiplier ``r_0`` (``groups = C_in``,
    filter ``a`` of every plane ``G_0[:, a]``; stride and padding here) -> ``(G, C_in, r_0, H', W')`` ->
    one permuted copy to ``(G, r_0, C_in, H' W')`` -> the channel sweep contracting ``r_0`` with the
    first channel core (:func:`columns_sweep`) -> ``(G, C_out, H', W')``. (A ``conv3d`` giving
    ``(G, r_0, C_in, H', W')`` at once runs on torch's slow reference path on the CPU: 2 to 3 times
    the depthwise convolution and the copy together.)

    Complexity: ``2 G H' W' r_0 C_in kh kw`` FLOPs plus the sweep over ``G H' W'`` pixels;
    the intermediate has ``r_0 C_in H' W'`` elements per image.
    """
    groups, in_channels, _, _ = inputs.shape
    spatial = cores[0]
    rank_first = int(spatial.shape[-1])
    kernel_h, kernel_w = kernel_size
    # filters: (C_in r_0, 1, kh, kw), filter c * r_0 + a = G_0[:, a]
    filters = spatial.reshape(kernel_h * kernel_w, rank_first).t().reshape(1, rank_first, kernel_h, kernel_w)
    filters = filters.expand(in_channels, rank_first, kernel_h, kernel_w).reshape(-1, 1, kernel_h, kernel_w)
    # (G, C_in, H, W) -> (G, C_in r_0, H', W')
    planes = F.conv2d(inputs, filters, stride=stride, padding=padding, groups=in_channels)
    out_h, out_w = planes.shape[-2:]
    # (G, C_in, r_0, L') -> (G, r_0, C_in, L')
    planes = planes.reshape(groups, in_channels, rank_first, out_h * out_w).transpose(1, 2).contiguous()
    # (G, r_0 C_in, L') -> (G, C_out, L')
    state = columns_sweep(planes.reshape(groups, -1, out_h * out_w), cores[1:], direction, input_rank=True)
    return _with_bias(state.reshape(groups, -1, out_h, out_w), bias)


def im2col_columns(
    inputs: torch.Tensor, kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
) -> torch.Tensor:
    """The im2col matrix of each image, kernel position major: ``(G, kh*kw, C_in, H', W')``.

    Entry ``(g, x*kw + y, c, i, j)`` is the (zero-padded) input at ``(c, i*sh + x - ph, j*sw + y - pw)``,
    so ``K`` as the ``(C_out, kh*kw*C_in)`` TT-matrix multiplies it directly. One stacked copy of
    ``kh kw`` strided views (``F.unfold`` would give the channel-major order).

    Complexity: ``kh kw C_in H' W'`` elements written per image, no FLOPs.
    """
    kernel_h, kernel_w = kernel_size
    padded = F.pad(inputs, (padding[1], padding[1], padding[0], padding[0])) if any(padding) else inputs
    out_h = (padded.shape[-2] - kernel_h) // stride[0] + 1
    out_w = (padded.shape[-1] - kernel_w) // stride[1] + 1
    views = [
        padded[:, :, x : x + stride[0] * (out_h - 1) + 1 : stride[0], y : y + stride[1] * (out_w - 1) + 1 : stride[1]]
        for x in range(kernel_h)
        for y in range(kernel_w)
    ]
    return torch.stack(views, dim=1)


def im2col_sweep(
    inputs: torch.Tensor,
    cores: Sequence[torch.Tensor],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    direction: str,
    bias: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """im2col, then the TT-matrix of all ``d + 1`` cores applied to its columns.

    ``(G, C_in, H, W)`` -> :func:`im2col_columns` ``(G, kh*kw, C_in, H', W')`` -> the sweep
    over ``(G_0, G_1, ..., G_d)`` (left to right, its first step is the spatial GEMM
    ``(r_0, kh*kw) @ (kh*kw, C_in L')``) -> ``(G, C_out, H', W')``.

    Complexity: the im2col copy (``kh kw`` times the input) plus the sweep's FLOPs over ``G H' W'``
    pixels with the in-modes ``(kh*kw, c_1..c_d)``.
    """
    columns = im2col_columns(inputs, kernel_size, stride, padding)
    groups, _, _, out_h, out_w = columns.shape
    # (G, kh*kw C_in, L') -> (G, C_out, L')
    state = columns_sweep(columns.reshape(groups, -1, out_h * out_w), cores, direction, input_rank=False)
    return _with_bias(state.reshape(groups, -1, out_h, out_w), bias)


def _with_bias(output: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``output (G, C_out, H', W')`` plus ``bias (C_out,)`` on every pixel (one elementwise pass), or as it is."""
    return output if bias is None else output + bias.reshape(1, -1, 1, 1)


# ---------------------------------------------------------------------------- dense
def rebuild_kernel(cores: Sequence[torch.Tensor], kernel_size: tuple[int, int]) -> torch.Tensor:
    """The dense kernel, shaped like ``nn.Conv2d.weight``: ``(C_out, C_in, kh, kw)``, contiguous; differentiable.

    The TT-matrix of the cores is ``(C_out, kh*kw*C_in)`` (kernel position major); it is rebuilt
    (:func:`ttexplore.nn.kernels.tt_to_dense`) and its columns reordered.

    Complexity: ``O(d r^2 C_out C_in kh kw)`` FLOPs at worst; ``C_out C_in kh kw`` memory, twice.
    """
    matrix = tt_to_dense(list(cores))
    out_channels = matrix.shape[0]
    # (C_out, kh, kw, C_in) -> (C_out, C_in, kh, kw)
    return matrix.reshape(out_channels, kernel_size[0], kernel_size[1], -1).permute(0, 3, 1, 2).contiguous()


def dense_conv(
    inputs: torch.Tensor,
    kernel: torch.Tensor,
    bias: Optional[torch.Tensor],
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> torch.Tensor:
    """``F.conv2d`` by a dense ``(C_out, C_in, kh, kw)`` kernel. Complexity: ``2 G H' W' C_out C_in kh kw`` FLOPs."""
    return F.conv2d(inputs, kernel, bias, stride=stride, padding=padding)
