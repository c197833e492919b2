"""How a permuted copy of a contiguous tensor is laid out, in pure Python (no torch).

Both the torch kernels (:func:`ttexplore.nn.kernels.permute_copy` runs the copy)
and the cost model (:mod:`ttexplore.costmodel`, which prices it) need the same
answer to "which axes really move, and can the copy move 16-byte words?"; it
lives here so neither depends on the other's internals.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

from ttexplore.tt.ttmath import prod

__all__ = ["WIDE_COPY_BYTES", "WIDE_COPY_MAX_BYTES", "CopyPlan", "permuted_copy_plan"]

#: Bytes of the word a wide permuted copy moves (complex128).
WIDE_COPY_BYTES = 16

#: Wide copies are used for unmoved inner blocks of 16 to this many bytes; past
#: that, moving the tensor's own elements is as fast (measured on the benchmark
#: machine: 16-byte blocks copy at ~60 GB/s wide vs ~22 GB/s plain, 32-byte at
#: ~52 vs ~43, 64 bytes and up within noise of each other).
WIDE_COPY_MAX_BYTES = 128


class CopyPlan(NamedTuple):
    """A permuted copy reduced to the axes that move (see :func:`permuted_copy_plan`)."""

    shape: tuple[int, ...]
    perm: tuple[int, ...]
    wide: bool


@functools.lru_cache(maxsize=4096)
def permuted_copy_plan(shape: tuple[int, ...], perm: tuple[int, ...], element_bytes: int) -> Optional[CopyPlan]:
    """How a permuted copy of a contiguous tensor is done: ``None`` if nothing moves.

    Size-1 axes are dropped and axes that stay adjacent are merged, so ``(rows, m, 1)``
    with ``perm (1, 0, 2)`` becomes ``(rows, m)`` with ``(1, 0)``.

    Args:
        shape: the tensor's axes, a tuple (the answer is cached by the arguments).
        perm: the new order of the axes, a tuple, as for ``torch.Tensor.permute``.
        element_bytes: bytes of one element.

    Returns:
        ``None`` when the permutation leaves the memory order unchanged, else a
        :class:`CopyPlan` ``(shape, perm, wide)``: the merged axes and permutation,
        and ``wide`` when the innermost axis stays in place and spans a multiple of
        16 bytes (more than one element, at most :data:`WIDE_COPY_MAX_BYTES`); the
        copy then moves 16-byte words and the last entry of ``shape`` counts
        words, not elements.

    Complexity: ``O(len(shape))``; cached.
    """
    kept = [axis for axis in range(len(shape)) if shape[axis] != 1]
    rank_of = {axis: index for index, axis in enumerate(kept)}
    order = [rank_of[axis] for axis in perm if shape[axis] != 1]
    sizes = [shape[axis] for axis in kept]
    # runs of axes that are consecutive in both the source and the permuted order
    runs: list[list[int]] = []
    for axis in order:
        if runs and runs[-1][-1] + 1 == axis:
            runs[-1].append(axis)
        else:
            runs.append([axis])
    if len(runs) <= 1:
        return None
    by_source = sorted(runs, key=lambda run: run[0])
    merged_shape = [prod(sizes[axis] for axis in run) for run in by_source]
    position = {run[0]: index for index, run in enumerate(by_source)}
    merged_perm = tuple(position[run[0]] for run in runs)
    last = len(merged_shape) - 1
    inner_bytes = merged_shape[last] * element_bytes if merged_perm[-1] == last else 0
    wide = element_bytes < inner_bytes <= WIDE_COPY_MAX_BYTES and inner_bytes % WIDE_COPY_BYTES == 0
    if wide:
        merged_shape[last] = inner_bytes // WIDE_COPY_BYTES
    return CopyPlan(tuple(merged_shape), merged_perm, wide)
