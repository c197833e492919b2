"""The TT layer's forward strategies as lists of the operations they perform.

Each forward strategy of :mod:`ttexplore.nn.forward` is described here as the
list of operations it performs, call for call, so FLOPs, memory and an estimated
time can be computed without torch (the app shows them on every keystroke;
:mod:`ttexplore.costmodel.estimate` prices them). The einsum strategy's list is
in :mod:`ttexplore.costmodel.einsum`.

An operation is a tuple:

* ``("gemm", m, k, n, left, right)``: one ``(m, k) @ (k, n)`` product; ``left``
  and ``right`` say what each operand is: ``"input"`` (the layer's input),
  ``"core"`` (a core, a permuted core matrix or merged cores) or ``"state"`` (an
  intermediate that depends on the input).
* ``("bgemm", count, m, k, n, left, right)``: ``count`` independent ``(m, k) @ (k, n)``
  products in one batched call (``torch.bmm``) whose left operand, a core matrix, is
  shared by all of them (expanded, never copied); ``right`` is the batch of ``(k, n)``
  operands laid out one after the other.
* ``("copy", elements, block_bytes, wide, source, form, fan)``: one permuted copy
  that moves ``elements`` elements in contiguous blocks of ``block_bytes`` bytes;
  ``wide`` when it moves them as 16-byte words
  (:func:`ttexplore.nn.kernels.permute_copy`); ``source`` is the kind of the
  copied tensor; ``form`` and ``fan`` say how it walks memory
  (:func:`copy_geometry`).
* ``("einsum_call",)``: the Python bookkeeping opt_einsum does per contraction.
* ``("merge_call",)``: the Python bookkeeping of merging one block of cores.
* ``("forward_call",)``: the fixed cost of one forward (planning lookup, bias add).

Kinds: ``"input"`` (needs a gradient only when the input does), ``"input_copy"``
(a permuted copy of the input: the same, but allocated by the forward),
``"core"`` and ``"state"`` (always need one in training).

Core shapes are ``(r_{k-1}, n_k, m_k, r_k)`` as in :mod:`ttexplore.tt.ttmath`.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from ttexplore.tt.layout import WIDE_COPY_BYTES, permuted_copy_plan
from ttexplore.tt.ttmath import prod

__all__ = [
    "STRATEGIES",
    "CONCRETE_STRATEGIES",
    "CoreShape",
    "copy_op",
    "copy_geometry",
    "block_shapes",
    "block_compositions",
    "merge_ops",
    "rtl_sweep_ops",
    "sweep_ops",
    "dense_ops",
    "blocked_ops",
    "BLOCKED_DIRECTIONS",
    "batched_sweep_ops",
    "batched_step_ops",
    "chunked_sweep_ops",
    "chunk_sizes",
    "core_matrix_ops",
    "ltr_step_ops",
    "rtl_step_ops",
]

#: Strategy names a ``TTLinear`` accepts (``"auto"`` picks one of the concrete ones).
STRATEGIES = ("auto", "ltr", "rtl", "blocked", "einsum", "dense")

#: The concrete strategies the cost model covers ("auto" picks among them).
CONCRETE_STRATEGIES = ("ltr", "rtl", "blocked", "einsum", "dense")

#: How the blocked strategy sweeps over its merged blocks: core by core with a permuted copy
#: after each GEMM, last block first (``"rtl"``) or first block first (``"ltr"``), or with one
#: batched GEMM per block and no copy of the state at all (``"rtl-bmm"``, ``"ltr-bmm"``; see
#: :func:`batched_sweep_ops`).
BLOCKED_DIRECTIONS = ("rtl", "ltr", "rtl-bmm", "ltr-bmm")

#: A core's shape ``(r_{k-1}, n_k, m_k, r_k)``.
CoreShape = tuple[int, int, int, int]

#: Picks a right-to-left step's orientation from its two operation lists: ``"rows"`` or ``"cols"``.
OrientationChooser = Callable[[list[tuple], list[tuple]], str]


def copy_op(
    shape: Sequence[int], perm: Sequence[int], element_bytes: int, source: str = "state", wide_allowed: bool = True
) -> list[tuple]:
    """The ``("copy", ...)`` operation of one permuted copy, or ``[]`` when nothing moves.

    Args:
        shape, perm: the copied tensor's axes and their new order.
        element_bytes: bytes of one element.
        source: the kind of the copied tensor ("input", "core" or "state").
        wide_allowed: false for copies torch does itself (no 16-byte words).
    """
    plan = permuted_copy_plan(tuple(int(s) for s in shape), tuple(int(p) for p in perm), int(element_bytes))
    if plan is None:
        return []
    merged_shape, merged_perm, wide = plan
    last = len(merged_shape) - 1
    if merged_perm[-1] != last:
        block, moved_shape, moved_perm = element_bytes, list(merged_shape), list(merged_perm)
    else:
        unit = WIDE_COPY_BYTES if wide else element_bytes
        block = merged_shape[last] * unit
        moved_shape, moved_perm = list(merged_shape[:last]), list(merged_perm[:last])
    while moved_perm and moved_perm[0] == 0:  # leading axes that stay: a batch of copies
        moved_shape.pop(0)
        moved_perm = [axis - 1 for axis in moved_perm[1:]]
    form, fan = copy_geometry(moved_shape, moved_perm)
    return [("copy", prod(shape), block, wide and wide_allowed, source, form, fan)]


def copy_geometry(shape: Sequence[int], perm: Sequence[int]) -> tuple[str, int]:
    """How a permuted copy walks memory: ``("passes", q)``, ``("streams", p)`` or ``("nd", fan)``.

    The copy is written in output order. A swap ``(p, q) -> (q, p)`` of blocks
    reads the source in ``q`` strided passes when ``q <= p``, else from ``p``
    interleaved streams; either way the smaller side (the fan) sets how far
    apart consecutive reads land. Permutations of more axes (``"nd"``; torch
    walks them with short inner loops) are costed as passes over their
    smallest moved axis, with their own scale factor. The machine's copy tables
    (:class:`ttexplore.costmodel.machine.MachineModel`) are keyed by this form and fan.
    """
    if len(shape) == 2:
        p, q = shape
        return ("passes", q) if q <= p else ("streams", p)
    return "nd", min(shape) if shape else 1


def block_shapes(shapes: Sequence[CoreShape], blocks: Sequence[int]) -> list[CoreShape]:
    """Shapes of the cores after merging consecutive ``blocks`` of them (block lengths summing to ``len(shapes)``)."""
    merged, start = [], 0
    for length in blocks:
        group = shapes[start : start + length]
        merged.append((group[0][0], prod(s[1] for s in group), prod(s[2] for s in group), group[-1][3]))
        start += length
    return merged


def block_compositions(d: int) -> list[tuple[int, ...]]:
    """Every way to cut ``d`` cores into consecutive blocks, as tuples of block lengths (``2^(d-1)`` of them)."""
    result = []
    for mask in range(2 ** (d - 1)):
        cuts = [0] + [k + 1 for k in range(d - 1) if mask >> k & 1] + [d]
        result.append(tuple(cuts[j + 1] - cuts[j] for j in range(len(cuts) - 1)))
    return result


def merge_ops(shapes: Sequence[CoreShape], element_bytes: int, outputs_first: bool = False) -> list[tuple]:
    """Operations of :func:`ttexplore.nn.kernels.merge_cores` on cores of these shapes (``outputs_first`` as there)."""
    if len(shapes) == 1:
        if not outputs_first:
            return []
        return copy_op(shapes[0], (0, 2, 1, 3), element_bytes, source="core", wide_allowed=False)
    ops: list[tuple] = [("merge_call",)]
    rank_first, n_first, m_first, _ = shapes[0]
    rows = rank_first * n_first * m_first
    for rank_in, modes_in, modes_out, rank_out in shapes[1:]:
        # (r_0 n_1 m_1 .. n_{j-1} m_{j-1}, r_{j-1}) @ (r_{j-1}, n_j m_j r_j)
        ops.append(("gemm", rows, rank_in, modes_in * modes_out * rank_out, "core", "core"))
        rows *= modes_in * modes_out
    count = len(shapes)
    interleaved = [rank_first] + [size for s in shapes for size in (s[1], s[2])] + [shapes[-1][3]]
    in_axes = [1 + 2 * j for j in range(count)]
    out_axes = [2 + 2 * j for j in range(count)]
    middle = out_axes + in_axes if outputs_first else in_axes + out_axes
    ops += copy_op(interleaved, [0, *middle, 2 * count + 1], element_bytes, source="core")
    return ops


def core_matrix_ops(shape: CoreShape, perm: Sequence[int], element_bytes: int) -> list[tuple]:
    """The copy that lays a core out as the matrix a sweep step multiplies by."""
    return copy_op(shape, perm, element_bytes, source="core", wide_allowed=False)


def rtl_step_ops(
    shape: CoreShape,
    state: int,
    next_modes_in: int,
    rank_first: bool,
    orientation: str,
    operand: str,
    element_bytes: int,
) -> tuple[list[tuple], int, bool]:
    """One step of :func:`ttexplore.nn.kernels.tt_matmul_rtl`: its operations, the new state size and pair order."""
    rank_in, modes_in, modes_out, rank_out = shape
    pair = (3, 1) if rank_first else (1, 3)
    contracted = modes_in * rank_out
    rows = state // contracted
    if rank_in == 1:
        ops = core_matrix_ops(shape, (2, *pair, 0), element_bytes)
        ops.append(("gemm", modes_out, contracted, rows, "core", operand))
    elif orientation == "rows":
        ops = core_matrix_ops(shape, (*pair, 2, 0), element_bytes)
        ops.append(("gemm", rows, contracted, modes_out * rank_in, operand, "core"))
        ops += copy_op((rows, modes_out, rank_in), (1, 0, 2), element_bytes)
        rank_first = False
    else:
        ops = core_matrix_ops(shape, (2, 0, *pair), element_bytes)
        ops.append(("gemm", modes_out * rank_in, contracted, rows, "core", operand))
        ops += copy_op((modes_out, rank_in, rows // next_modes_in, next_modes_in), (0, 2, 1, 3), element_bytes)
        rank_first = True
    return ops, rows * modes_out * rank_in, rank_first


def rtl_sweep_ops(
    shapes: Sequence[CoreShape],
    batch: int,
    element_bytes: int,
    orientations: Optional[Sequence[str]] = None,
    choose: Optional[OrientationChooser] = None,
) -> tuple[list[tuple], tuple[str, ...]]:
    """Operations of :func:`ttexplore.nn.kernels.tt_matmul_rtl` and the per-step orientations used.

    With ``choose``, each step's orientation is ``choose(rows_ops, cols_ops)``
    (the steps' costs do not depend on each other's orientation); otherwise
    ``orientations`` (one per core, last core first; default all ``"rows"``).
    A step whose core has ``r_{k-1} = 1`` is always ``"rows"``.
    """
    ops: list[tuple] = []
    used: list[str] = []
    state = batch * prod(s[1] for s in shapes)
    rank_first = False
    operand = "input"
    count = len(shapes)
    for step in range(count):
        shape = shapes[count - 1 - step]
        next_modes_in = shapes[count - 2 - step][1] if step < count - 1 else 1
        if shape[0] == 1:
            orientation = "rows"
        elif choose is not None:
            options = {
                name: rtl_step_ops(shape, state, next_modes_in, rank_first, name, operand, element_bytes)[0]
                for name in ("rows", "cols")
            }
            orientation = choose(options["rows"], options["cols"])
        else:
            orientation = orientations[step] if orientations is not None else "rows"
        step_ops, state, rank_first = rtl_step_ops(
            shape, state, next_modes_in, rank_first, orientation, operand, element_bytes
        )
        ops += step_ops
        used.append(orientation)
        operand = "state"
    if batch > 1:
        ops += copy_op((prod(s[2] for s in shapes), batch), (1, 0), element_bytes)
    return ops, tuple(used)


def ltr_step_ops(
    shape: CoreShape, state: int, batch: int, operand: str, element_bytes: int
) -> tuple[list[tuple], int]:
    """One step of :func:`ttexplore.nn.kernels.tt_matmul_ltr` on a state of ``state`` elements: its
    operations and the new state size."""
    rank_in, modes_in, modes_out, rank_out = shape
    contracted = rank_in * modes_in
    cols = state // contracted
    ops = core_matrix_ops(shape, (3, 2, 0, 1), element_bytes)
    ops.append(("gemm", rank_out * modes_out, contracted, cols, "core", operand))
    ops += copy_op((rank_out, modes_out, cols // batch, batch), (0, 2, 1, 3), element_bytes)
    return ops, rank_out * modes_out * cols


def sweep_ops(
    shapes: Sequence[CoreShape],
    batch: int,
    direction: str,
    element_bytes: int,
    orientations: Optional[Sequence[str]] = None,
) -> list[tuple]:
    """Operations of :func:`ttexplore.nn.kernels.tt_matmul_ltr` (``direction="ltr"``) or ``tt_matmul_rtl`` ("rtl")."""
    if direction == "rtl":
        return rtl_sweep_ops(shapes, batch, element_bytes, orientations)[0]
    if direction != "ltr":
        raise ValueError(f"direction {direction!r} is unknown: use 'ltr' or 'rtl'")
    ops: list[tuple] = []
    operand = "input"
    in_features = prod(s[1] for s in shapes)
    if batch > 1:
        ops += copy_op((batch, in_features), (1, 0), element_bytes, source=operand)
        operand = "input_copy"
    state = in_features * batch
    for shape in shapes:
        step_ops, state = ltr_step_ops(shape, state, batch, operand, element_bytes)
        ops += step_ops
        operand = "state"
    if batch > 1:
        ops += copy_op((prod(s[2] for s in shapes), batch), (1, 0), element_bytes)
    return ops


def dense_ops(shapes: Sequence[CoreShape], batch: int, element_bytes: int) -> list[tuple]:
    """Operations of :func:`ttexplore.nn.kernels.tt_matmul_dense`: rebuild ``W^T``, one GEMM."""
    in_features = prod(s[1] for s in shapes)
    out_features = prod(s[2] for s in shapes)
    return merge_ops(shapes, element_bytes) + [("gemm", batch, in_features, out_features, "input", "core")]


def blocked_ops(
    shapes: Sequence[CoreShape],
    batch: int,
    blocks: Sequence[int],
    direction: str,
    element_bytes: int,
    orientations: Optional[Sequence[str]] = None,
    choose: Optional[OrientationChooser] = None,
    chunk: int = 0,
) -> tuple[list[tuple], tuple[str, ...]]:
    """Operations of :func:`ttexplore.nn.kernels.tt_matmul_blocked`, and the rtl orientations used.

    The cores are merged in consecutive ``blocks``, then swept in ``direction``;
    ``orientations`` and ``choose`` are those of :func:`rtl_sweep_ops`; ``chunk``
    (``"rtl-bmm"`` only) sweeps that many input rows at a time (0: all).
    """
    if len(blocks) == 1:
        return dense_ops(shapes, batch, element_bytes), ()
    ops: list[tuple] = []
    start = 0
    for length in blocks:
        ops += merge_ops(shapes[start : start + length], element_bytes, outputs_first=direction == "rtl-bmm")
        start += length
    merged = block_shapes(shapes, blocks)
    if direction == "rtl-bmm" and 0 < chunk < batch:
        return ops + chunked_sweep_ops(merged, batch, chunk, element_bytes), ()
    if direction in ("rtl-bmm", "ltr-bmm"):
        return ops + batched_sweep_ops(merged, batch, direction, element_bytes), ()
    if direction == "rtl":
        sweep, used = rtl_sweep_ops(merged, batch, element_bytes, orientations, choose)
        return ops + sweep, used
    return ops + sweep_ops(merged, batch, direction, element_bytes), ()


def batched_step_ops(
    shape: CoreShape, outer: int, inner: int, direction: str, operand: str, element_bytes: int
) -> list[tuple]:
    """One step of :func:`ttexplore.nn.kernels.tt_matmul_batched`: the GEMM of one (merged) core.

    ``"rtl-bmm"``: the state is ``(outer, [n_k r_k], inner)`` with ``outer = B n_1..n_{k-1}`` and
    ``inner = m_{k+1}..m_d``; each of the ``outer`` blocks is multiplied by the core matrix
    ``(r_{k-1} m_k, n_k r_k)``, giving ``(outer, [r_{k-1} m_k], inner)``. ``"ltr-bmm"``: the state is
    ``(outer, [r_{k-1} n_k], inner)`` with ``outer = m_1..m_{k-1}`` and ``inner = n_{k+1}..n_d B``; the core
    matrix is ``(m_k r_k, r_{k-1} n_k)``. With one block (``outer = 1``), or nothing after the
    contracted pair (``inner = 1``), it is a single GEMM; the core matrix is laid out by the
    caller (:func:`merge_ops`, or the copy :func:`batched_sweep_ops` lists).
    """
    rank_in, modes_in, modes_out, rank_out = shape
    if direction == "rtl-bmm":
        rows, contracted = rank_in * modes_out, modes_in * rank_out
    else:
        rows, contracted = modes_out * rank_out, rank_in * modes_in
    if inner == 1:  # (outer, K) @ (K, rows)
        return [("gemm", outer, contracted, rows, operand, "core")]
    if outer == 1:  # (rows, K) @ (K, inner)
        return [("gemm", rows, contracted, inner, "core", operand)]
    return [("bgemm", outer, rows, contracted, inner, "core", operand)]


def batched_sweep_ops(shapes: Sequence[CoreShape], batch: int, direction: str, element_bytes: int) -> list[tuple]:
    """Operations of :func:`ttexplore.nn.kernels.tt_matmul_batched` over (merged) cores of these shapes.

    ``"rtl-bmm"`` reads the input as it is and writes ``(B, M)`` directly: no copy of the
    state at all. ``"ltr-bmm"`` transposes the input to ``(N, B)`` and the result back
    (batch 1: neither) and lays each core out as ``(m_k r_k, r_{k-1} n_k)``. The
    core-matrix copies of ``"rtl-bmm"`` are in :func:`merge_ops` (``outputs_first``).
    """
    ops: list[tuple] = []
    operand = "input"
    count = len(shapes)
    if direction == "rtl-bmm":
        for step in range(count):
            k = count - 1 - step
            outer = batch * prod(s[1] for s in shapes[:k])
            inner = prod(s[2] for s in shapes[k + 1 :])
            ops += batched_step_ops(shapes[k], outer, inner, direction, operand, element_bytes)
            operand = "state"
        return ops
    if direction != "ltr-bmm":
        raise ValueError(f"direction {direction!r} is unknown: use 'rtl-bmm' or 'ltr-bmm'")
    if batch > 1:
        ops += copy_op((batch, prod(s[1] for s in shapes)), (1, 0), element_bytes, source=operand)
        operand = "input_copy"
    for k, shape in enumerate(shapes):
        ops += core_matrix_ops(shape, (2, 3, 0, 1), element_bytes)
        outer = prod(s[2] for s in shapes[:k])
        inner = batch * prod(s[1] for s in shapes[k + 1 :])
        ops += batched_step_ops(shape, outer, inner, direction, operand, element_bytes)
        operand = "state"
    if batch > 1:
        ops += copy_op((prod(s[2] for s in shapes), batch), (1, 0), element_bytes)
    return ops


def chunk_sizes(batch: int) -> list[int]:
    """The rows per chunk a chunked ``"rtl-bmm"`` sweep is priced at: the whole batch, then every power of two
    below it (``O(log B)`` of them)."""
    sizes = [int(batch)]
    size = 1
    while size < batch:
        sizes.append(size)
        size *= 2
    return sorted(set(sizes), reverse=True)


def chunked_sweep_ops(shapes: Sequence[CoreShape], batch: int, chunk: int, element_bytes: int) -> list[tuple]:
    """Operations of a ``"rtl-bmm"`` sweep run on ``chunk`` input rows at a time, then the chunks' results joined.

    The batch is the outermost index of every state of that sweep, so the rows of a chunk go through
    all the cores alone; the chunks' states are ``chunk / B`` of the whole ones and stay in cache where
    the whole ones would not (the paper's layer at batch 100: 23 MB after its first step, under 1 MB in
    chunks of 4 rows). The join (``torch.cat``) copies the ``(B, M)`` result once.
    """
    ops: list[tuple] = []
    for start in range(0, batch, chunk):
        ops += batched_sweep_ops(shapes, min(chunk, batch - start), "rtl-bmm", element_bytes)
    out_features = prod(s[2] for s in shapes)
    # a contiguous copy of each chunk's (rows, M) result into the (B, M) output
    ops.append(("copy", batch * out_features, 512, False, "state", "passes", 4))
    return ops
