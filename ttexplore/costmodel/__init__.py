"""The cost model of the TT layer's forward strategies, in pure Python (no torch).

Each strategy of :mod:`ttexplore.core.forward` is listed here as the operations it
performs, call for call (GEMMs and permuted copies), so its FLOPs, peak and
saved activation memory and an estimated time come without running it; the app's
preview and ``strategy="auto"`` both use :func:`strategy_costs`. Times come from
a :class:`MachineModel` (speed tables and fitted factors; ``python -m ttexplore
bench --calibrate`` measures one for the machine at hand). The counting it builds
on (ranks, core shapes, plain FLOPs) is in :mod:`ttexplore.core.ttmath`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

from ttexplore.core.layout import WIDE_COPY_BYTES, permuted_copy_plan
from ttexplore.core.ttmath import RanksLike, check_modes, full_ranks, plan_ranks, prod

__all__ = [
    "STRATEGIES",
    "CONCRETE_STRATEGIES",
    "EINSUM_OPTIMIZE",
    "MachineModel",
    "DEFAULT_MACHINE",
    "block_compositions",
    "einsum_equation",
    "strategy_costs",
    "best_strategy",
]

#: Strategy names a ``TTLinear`` accepts (``"auto"`` picks one of the concrete ones).
STRATEGIES = ("auto", "ltr", "rtl", "blocked", "einsum", "dense")

# =============================================================================== cost model
#
# Each forward strategy of ttexplore.core.forward is described here as the list of
# operations it performs, call for call, so FLOPs, memory and an estimated time
# can be computed without torch (the app shows them on every keystroke).
#
# An operation is a tuple:
#   ("gemm", m, k, n, left, right)  one (m, k) @ (k, n) product; ``left`` and
#       ``right`` say what each operand is: "input" (the layer's input), "core"
#       (a core, a permuted core matrix or merged cores) or "state" (an
#       intermediate that depends on the input).
#   ("copy", elements, block_bytes, wide, source, form, fan)  one permuted copy
#       that moves ``elements`` elements in contiguous blocks of ``block_bytes``
#       bytes; ``wide`` when it moves them as 16-byte words
#       (ttexplore.core.kernels.permute_copy); ``source`` is the kind of the copied tensor;
#       ``form`` and ``fan`` say how it walks memory (see _copy_geometry).
# Kinds: "input" (needs a gradient only when the input does), "input_copy" (a
# permuted copy of the input: the same, but allocated by the forward), "core"
# and "state" (always need one in training).
#   ("einsum_call",)  the Python bookkeeping opt_einsum does per contraction.
#   ("merge_call",)  the Python bookkeeping of merging one block of cores.
#   ("forward_call",)  the fixed cost of one forward (planning lookup, bias add).

#: The concrete strategies the cost model covers ("auto" picks among them).
CONCRETE_STRATEGIES = ("ltr", "rtl", "blocked", "einsum", "dense")

#: A right-to-left step is done "cols"-wise only when that is estimated at most
#: this fraction of the "rows" way: at small sizes the estimate favours "cols" by
#: a few percent that the 4-axis copy's extra per-call cost takes back (measured
#: 0.083 vs 0.072 ms for 1024x1024 r=2 at batch 1, estimated 0.061 vs 0.064).
COLS_ORIENTATION_MARGIN = 0.9

#: The blocked strategy merges cores only when that is estimated at most this
#: fraction of the best core-by-core sweep: within a few percent the estimate
#: cannot tell them apart (1024x1024 r=8 at batch 1: blocks 2+1+1 estimated
#: level with the sweeps, measured 12% slower).
MERGE_MARGIN = 0.95

#: The path optimiser used for the einsum strategy (opt_einsum's dynamic programming).
EINSUM_OPTIMIZE = "dp"


def _copy_op(
    shape: Sequence[int], perm: Sequence[int], element_bytes: int, source: str = "state", wide_allowed: bool = True
) -> list[tuple]:
    """The ``("copy", ...)`` operation of one permuted copy, or ``[]`` when nothing moves.

    ``source`` is the kind of the copied tensor ("input", "core" or "state");
    ``wide_allowed`` is false for copies torch does itself (no 16-byte words).
    """
    plan = permuted_copy_plan(tuple(int(x) for x in shape), tuple(int(p) for p in perm), int(element_bytes))
    if plan is None:
        return []
    merged_shape, merged_perm, wide = plan
    wide = wide and wide_allowed
    last = len(merged_shape) - 1
    if merged_perm[-1] != last:
        block, moved_shape, moved_perm = element_bytes, list(merged_shape), list(merged_perm)
    else:
        unit = WIDE_COPY_BYTES if plan[2] else element_bytes
        block = merged_shape[last] * unit
        moved_shape, moved_perm = list(merged_shape[:last]), list(merged_perm[:last])
    while moved_perm and moved_perm[0] == 0:  # leading axes that stay: a batch of copies
        moved_shape.pop(0)
        moved_perm = [axis - 1 for axis in moved_perm[1:]]
    form, fan = _copy_geometry(moved_shape, moved_perm)
    return [("copy", prod(shape), block, wide, source, form, fan)]


def _copy_geometry(shape: Sequence[int], perm: Sequence[int]) -> tuple[str, int]:
    """How a permuted copy walks memory: ``("passes", q)`` or ``("streams", p)``.

    The copy is written in output order. A swap ``(p, q) -> (q, p)`` of blocks
    reads the source in ``q`` strided passes when ``q <= p``, else from ``p``
    interleaved streams; either way the smaller side (the fan) sets how far
    apart consecutive reads land. Permutations of more axes (``"nd"``; torch
    walks them with short inner loops) are costed as passes over their
    smallest moved axis, with their own scale factor.
    """
    if len(shape) == 2:
        p, q = shape
        return ("passes", q) if q <= p else ("streams", p)
    return "nd", min(shape) if shape else 1


# ------------------------------------------------------------------ operation lists# ------------------------------------------------------------------ operation lists
def _block_shapes(shapes: Sequence[tuple[int, int, int, int]], blocks: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """Shapes of the cores after merging consecutive ``blocks`` of them."""
    merged, start = [], 0
    for length in blocks:
        group = shapes[start : start + length]
        merged.append((group[0][0], prod(s[1] for s in group), prod(s[2] for s in group), group[-1][3]))
        start += length
    return merged


def _merge_ops(shapes: Sequence[tuple[int, int, int, int]], element_bytes: int) -> list[tuple]:
    """Operations of :func:`ttexplore.core.kernels.merge_cores` on cores of these shapes."""
    if len(shapes) == 1:
        return []
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
    ops += _copy_op(interleaved, [0, *in_axes, *out_axes, 2 * count + 1], element_bytes, source="core")
    return ops


def _core_matrix_ops(shape: tuple[int, int, int, int], perm: Sequence[int], element_bytes: int) -> list[tuple]:
    """The copy that lays a core out as the matrix a sweep step multiplies by."""
    return _copy_op(shape, perm, element_bytes, source="core", wide_allowed=False)


def _rtl_step_ops(
    shape: tuple[int, int, int, int],
    state: int,
    next_modes_in: int,
    rank_first: bool,
    orientation: str,
    operand: str,
    element_bytes: int,
) -> tuple[list[tuple], int, bool]:
    """One step of :func:`ttexplore.core.kernels.tt_matmul_rtl`: its operations, the new state size and pair order."""
    rank_in, modes_in, modes_out, rank_out = shape
    pair = (3, 1) if rank_first else (1, 3)
    contracted = modes_in * rank_out
    rows = state // contracted
    if rank_in == 1:
        ops = _core_matrix_ops(shape, (2, *pair, 0), element_bytes)
        ops.append(("gemm", modes_out, contracted, rows, "core", operand))
    elif orientation == "rows":
        ops = _core_matrix_ops(shape, (*pair, 2, 0), element_bytes)
        ops.append(("gemm", rows, contracted, modes_out * rank_in, operand, "core"))
        ops += _copy_op((rows, modes_out, rank_in), (1, 0, 2), element_bytes)
        rank_first = False
    else:
        ops = _core_matrix_ops(shape, (2, 0, *pair), element_bytes)
        ops.append(("gemm", modes_out * rank_in, contracted, rows, "core", operand))
        ops += _copy_op((modes_out, rank_in, rows // next_modes_in, next_modes_in), (0, 2, 1, 3), element_bytes)
        rank_first = True
    return ops, rows * modes_out * rank_in, rank_first


def _rtl_sweep(
    shapes: Sequence[tuple[int, int, int, int]],
    batch: int,
    element_bytes: int,
    orientations: Optional[Sequence[str]] = None,
    choose: Optional[Callable[[list[tuple], list[tuple]], str]] = None,
) -> tuple[list[tuple], tuple[str, ...]]:
    """Operations of :func:`ttexplore.core.kernels.tt_matmul_rtl` and the per-step orientations used.

    With ``choose``, each step's orientation is ``choose(rows_ops, cols_ops)``
    (the steps' costs do not depend on each other's orientation); otherwise
    ``orientations`` (default all ``"rows"``).
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
                name: _rtl_step_ops(shape, state, next_modes_in, rank_first, name, operand, element_bytes)[0]
                for name in ("rows", "cols")
            }
            orientation = choose(options["rows"], options["cols"])
        else:
            orientation = orientations[step] if orientations is not None else "rows"
        step_ops, state, rank_first = _rtl_step_ops(
            shape, state, next_modes_in, rank_first, orientation, operand, element_bytes
        )
        ops += step_ops
        used.append(orientation)
        operand = "state"
    if batch > 1:
        ops += _copy_op((prod(s[2] for s in shapes), batch), (1, 0), element_bytes)
    return ops, tuple(used)


def _sweep_ops(
    shapes: Sequence[tuple[int, int, int, int]],
    batch: int,
    direction: str,
    element_bytes: int,
    orientations: Optional[Sequence[str]] = None,
) -> list[tuple]:
    """Operations of :func:`ttexplore.core.kernels.tt_matmul_rtl` / ``tt_matmul_ltr`` on cores of these shapes."""
    if direction == "rtl":
        return _rtl_sweep(shapes, batch, element_bytes, orientations)[0]
    if direction != "ltr":
        raise ValueError(f"direction {direction!r} is unknown: use 'ltr' or 'rtl'")
    ops: list[tuple] = []
    operand = "input"
    in_features = prod(s[1] for s in shapes)
    if batch > 1:
        ops += _copy_op((batch, in_features), (1, 0), element_bytes, source=operand)
        operand = "input_copy"
    state = in_features * batch
    for rank_in, modes_in, modes_out, rank_out in shapes:
        contracted = rank_in * modes_in
        cols = state // contracted
        ops += _core_matrix_ops((rank_in, modes_in, modes_out, rank_out), (3, 2, 0, 1), element_bytes)
        ops.append(("gemm", rank_out * modes_out, contracted, cols, "core", operand))
        ops += _copy_op((rank_out, modes_out, cols // batch, batch), (0, 2, 1, 3), element_bytes)
        state = rank_out * modes_out * cols
        operand = "state"
    if batch > 1:
        ops += _copy_op((prod(s[2] for s in shapes), batch), (1, 0), element_bytes)
    return ops


def _dense_ops(shapes: Sequence[tuple[int, int, int, int]], batch: int, element_bytes: int) -> list[tuple]:
    """Operations of :func:`ttexplore.core.kernels.tt_matmul_dense`: rebuild ``W^T``, one GEMM."""
    in_features = prod(s[1] for s in shapes)
    out_features = prod(s[2] for s in shapes)
    return _merge_ops(shapes, element_bytes) + [("gemm", batch, in_features, out_features, "input", "core")]


def _blocked_ops(
    shapes: Sequence[tuple[int, int, int, int]],
    batch: int,
    blocks: Sequence[int],
    direction: str,
    element_bytes: int,
    orientations: Optional[Sequence[str]] = None,
    choose: Optional[Callable[[list[tuple], list[tuple]], str]] = None,
) -> tuple[list[tuple], tuple[str, ...]]:
    """Operations of :func:`ttexplore.core.kernels.tt_matmul_blocked`, and the rtl orientations used."""
    if len(blocks) == 1:
        return _dense_ops(shapes, batch, element_bytes), ()
    ops: list[tuple] = []
    start = 0
    for length in blocks:
        ops += _merge_ops(shapes[start : start + length], element_bytes)
        start += length
    merged = _block_shapes(shapes, blocks)
    if direction == "rtl":
        sweep, used = _rtl_sweep(merged, batch, element_bytes, orientations, choose)
        return ops + sweep, used
    return ops + _sweep_ops(merged, batch, direction, element_bytes), ()


def block_compositions(d: int) -> list[tuple[int, ...]]:
    """Every way to cut ``d`` cores into consecutive blocks, as tuples of block lengths."""
    result = []
    for mask in range(2 ** (d - 1)):
        cuts = [0] + [k + 1 for k in range(d - 1) if mask >> k & 1] + [d]
        result.append(tuple(cuts[j + 1] - cuts[j] for j in range(len(cuts) - 1)))
    return result


# ------------------------------------------------------------------ einsum
def einsum_equation(
    in_modes: Sequence[int], out_modes: Sequence[int], ranks: RanksLike
) -> tuple[str, list[tuple[int, ...]]]:
    """The einsum equation of ``x W^T`` and the core shapes it expects, batch excluded.

    The boundary ranks ``r_0 = r_d = 1`` are left out (a size-1 index would cost
    opt_einsum a separate trace step), so core 1 is ``(n_1, m_1, r_1)``, core ``d``
    is ``(r_{d-1}, n_d, m_d)`` and a single core is ``(n_1, m_1)``. The input term
    is ``(B, n_1..n_d)``, the output ``(B, m_1..m_d)``.

    Returns:
        ``(equation, core_shapes)``.
    """
    in_modes, out_modes = check_modes(in_modes, out_modes)
    r = full_ranks(plan_ranks(in_modes, out_modes, ranks).ranks)
    d = len(in_modes)
    symbols = _einsum_symbols(3 * d + 2)
    batch_symbol = symbols[0]
    n_symbols = symbols[1 : d + 1]
    m_symbols = symbols[d + 1 : 2 * d + 1]
    r_symbols = symbols[2 * d + 1 :]  # r_symbols[k] is r_{k+1}
    terms = [batch_symbol + "".join(n_symbols)]
    shapes = []
    for k in range(d):
        left = r_symbols[k - 1] if k > 0 else ""
        right = r_symbols[k] if k < d - 1 else ""
        terms.append(left + n_symbols[k] + m_symbols[k] + right)
        shape = ((r[k],) if k > 0 else ()) + (in_modes[k], out_modes[k]) + ((r[k + 1],) if k < d - 1 else ())
        shapes.append(shape)
    return ",".join(terms) + "->" + batch_symbol + "".join(m_symbols), shapes


def _einsum_symbols(count: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if count <= len(letters):
        return letters[:count]
    import opt_einsum  # pure Python; only needed past 52 indices

    return "".join(opt_einsum.get_symbol(i) for i in range(count))


def _viewable_as_matrix(memory: str, row_group: str, col_group: str, sizes: dict) -> bool:
    """Whether ``reshape(permute(t))`` to (rows, cols) is a view (no copy) for a tensor
    whose axes lie in memory in the order ``memory``."""
    order = [s for s in memory if sizes[s] != 1]
    for group in (row_group, col_group):
        group = [s for s in group if sizes[s] != 1]
        if not group:
            continue
        start = order.index(group[0])
        if order[start : start + len(group)] != group:
            return False
    return True


def _einsum_ops(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], batch: int, element_bytes: int
) -> list[tuple]:
    """Operations of opt_einsum's contraction (torch backend) of :func:`einsum_equation`.

    Follows opt_einsum's loop: each pairwise contraction is ``torch.tensordot``,
    which permutes an operand to ``(free, contracted)`` / ``(contracted, free)`` and
    copies it when that is not a view, then runs one GEMM; its result is contiguous
    in ``free_left + free_right`` order and opt_einsum only permutes the view.
    """
    import opt_einsum  # pure Python; imported here so this module stays light

    equation, core_shapes = einsum_equation(in_modes, out_modes, ranks)
    inputs, output = equation.split("->")
    terms = inputs.split(",")
    shapes = [(batch, *in_modes)] + core_shapes
    _, info = opt_einsum.contract_path(equation, *shapes, shapes=True, optimize=EINSUM_OPTIMIZE)
    sizes = {symbol: size for term, shape in zip(terms, shapes) for symbol, size in zip(term, shape)}
    # each operand: (logical term, memory order, kind)
    operands = [(terms[0], terms[0], "input")] + [(term, term, "core") for term in terms[1:]]
    ops: list[tuple] = []
    for contraction in info.contraction_list:
        positions, removed, einsum_str, _, blas = contraction[:5]
        picked = [operands.pop(position) for position in positions]
        ops.append(("einsum_call",))
        inputs_str, result = einsum_str.split("->")
        kind = "core" if all(p[2] == "core" for p in picked) else "state"
        if len(picked) != 2:
            # a single-operand einsum (never produced by this equation): one copy
            ops.append(("copy", prod(sizes[s] for s in result), element_bytes, False, kind, "passes", 1))
            operands.append((result, result, kind))
            continue
        (left, left_memory, left_kind), (right, right_memory, right_kind) = picked
        pairs = sorted((left.find(s), right.find(s)) for s in removed)
        contracted = "".join(left[p] for p, _ in pairs)
        free_left = "".join(s for s in left if s not in removed)
        free_right = "".join(s for s in right if s not in removed)
        operand_kinds = []
        for memory, rows, cols, operand_kind, logical in (
            (left_memory, free_left, contracted, left_kind, left),
            (right_memory, contracted, free_right, right_kind, right),
        ):
            if not _viewable_as_matrix(memory, rows, cols, sizes):
                wanted = rows + cols
                ops += _copy_op(
                    [sizes[s] for s in memory],
                    [memory.index(s) for s in wanted],
                    element_bytes,
                    source=operand_kind,
                    wide_allowed=False,
                )
                operand_kind = "input_copy" if operand_kind == "input" else operand_kind
            operand_kinds.append(operand_kind)
        m = prod(sizes[s] for s in free_left)
        k = prod(sizes[s] for s in contracted)
        n = prod(sizes[s] for s in free_right)
        ops.append(("gemm", m, k, n, operand_kinds[0], operand_kinds[1]))
        operands.append((result, free_left + free_right, kind))
    (logical, memory, _), = operands
    # the strategy reshapes the result (B, m_1..m_d) -> (B, M): a copy unless laid out so
    if [s for s in memory if sizes[s] != 1] != [s for s in output if sizes[s] != 1]:
        ops += _copy_op(
            [sizes[s] for s in memory], [memory.index(s) for s in output], element_bytes, wide_allowed=False
        )
    return ops


# ------------------------------------------------------------------ machine model
@dataclass(frozen=True)
class MachineModel:
    """Measured speeds of one machine: the constants of the time estimate.

    A GEMM ``(m, k) @ (k, n)`` is classed by its largest dimension: the output rows
    ``m`` (table ``gemm_rows``, indexed by ``(k, n)``), the output columns ``n``
    (``gemm_cols``, by ``(k, m)``) or the contraction ``k`` (``gemm_reduce``, by
    ``(m, n)``). Each table holds float32 FLOP/s at the sizes ``gemm_grid`` (powers
    of two; in between interpolated in ``log2``, beyond clamped), measured with
    operands of about ``gemm_small_bytes`` in all; the ``_large`` tables hold the
    same for about ``gemm_large_bytes`` (past the last-level cache), and working
    sets in between are interpolated in ``log2`` of their size.

    A permuted copy moves ``copy_tables[key][i][j]`` bytes/s (read plus write),
    ``key`` = ``"<form>/<size>/<moves>"``: ``form`` "passes" or "streams" and fan
    ``copy_fans[i]`` as :func:`_copy_geometry` classes it, contiguous blocks of
    ``copy_block_bytes[j]`` bytes, ``size`` "small" (``copy_small_bytes``) or
    "large" (``copy_large_bytes``; in between interpolated in ``log2``),
    ``moves`` "plain" or "wide" (16-byte words).

    Attributes:
        description: which machine, and how the numbers were taken.
        memory_bandwidth: bytes/s of main memory; no GEMM beyond the large
            tables' size is estimated faster than its operands can stream.
        fault_bytes, fault_bandwidth: results of at least ``fault_bytes`` get
            fresh pages from the OS on every allocation (glibc's largest mmap
            threshold), which costs ``bytes / fault_bandwidth`` more.
        gemm_call_s, copy_call_s, einsum_call_s, merge_call_s: fixed cost of one
            GEMM, one copy, one opt_einsum contraction step, one merged block, from
            Python (dispatch, allocation, bookkeeping).
        forward_call_s: fixed cost of one forward, whatever the strategy.
        backward_gemm_call_s, backward_copy_call_s: the same for the backward nodes.
        float64_slowdown: how much slower a float64 GEMM is than a float32 one.
        gemm_scale, plain_copy_scale, wide_copy_scale, nd_copy_scale: factors on
            the tables' times (``nd``: copies permuting more than two axes),
            fitted to whole forwards: an operation inside a forward (its
            operands just written by the previous one, its result freshly
            allocated, threads just woken) does not run at its isolated speed.
    """

    description: str
    gemm_grid: tuple[int, ...]
    gemm_rows: tuple[tuple[float, ...], ...]
    gemm_cols: tuple[tuple[float, ...], ...]
    gemm_reduce: tuple[tuple[float, ...], ...]
    gemm_rows_large: tuple[tuple[float, ...], ...]
    gemm_cols_large: tuple[tuple[float, ...], ...]
    gemm_reduce_large: tuple[tuple[float, ...], ...]
    gemm_small_bytes: int
    gemm_large_bytes: int
    copy_block_bytes: tuple[int, ...]
    copy_fans: tuple[int, ...]
    copy_tables: tuple[tuple[str, tuple[tuple[float, ...], ...]], ...]
    copy_small_bytes: int
    copy_large_bytes: int
    memory_bandwidth: float
    fault_bytes: int
    fault_bandwidth: float
    gemm_call_s: float
    copy_call_s: float
    einsum_call_s: float
    merge_call_s: float
    forward_call_s: float
    backward_gemm_call_s: float
    backward_copy_call_s: float
    float64_slowdown: float = 2.0
    gemm_scale: float = 1.0
    plain_copy_scale: float = 1.0
    wide_copy_scale: float = 1.0
    nd_copy_scale: float = 1.0

    def __post_init__(self) -> None:
        # a dict view of copy_tables, built once (the dataclass is frozen and hashable)
        object.__setattr__(self, "_copy_table_by_key", dict(self.copy_tables))

    def gemm_rate(self, m: int, k: int, n: int, total_bytes: int) -> float:
        """float32 FLOP/s of a ``(m, k) @ (k, n)`` GEMM whose operands and result take ``total_bytes``."""
        if m >= n and m >= k:
            small, large, first, second = self.gemm_rows, self.gemm_rows_large, k, n
        elif n >= k:
            small, large, first, second = self.gemm_cols, self.gemm_cols_large, k, m
        else:
            small, large, first, second = self.gemm_reduce, self.gemm_reduce_large, m, n
        return _by_size(
            _interpolate_2d(small, self.gemm_grid, first, second),
            _interpolate_2d(large, self.gemm_grid, first, second),
            total_bytes,
            self.gemm_small_bytes,
            self.gemm_large_bytes,
        )

    def copy_rate(self, block_bytes: int, wide: bool, total_bytes: int, form: str, fan: int) -> float:
        """Bytes/s (read plus write) of a permuted copy of ``total_bytes`` (see the class notes)."""
        tables = self._copy_table_by_key
        moves = "wide" if wide else "plain"
        small, large = (
            _interpolate_2d(tables[f"{form}/{size}/{moves}"], (self.copy_fans, self.copy_block_bytes), fan, block_bytes)
            for size in ("small", "large")
        )
        return _by_size(small, large, total_bytes, self.copy_small_bytes, self.copy_large_bytes)


def _by_size(small: float, large: float, size: float, small_size: float, large_size: float) -> float:
    """``small`` up to ``small_size``, ``large`` from ``large_size``, log2-interpolated in between."""
    if size <= small_size:
        return small
    if size >= large_size:
        return large
    weight = math.log2(size / small_size) / math.log2(large_size / small_size)
    return small * (1 - weight) + large * weight


#: Speeds of the benchmark machine (2 cores of an AMD EPYC under KVM, torch 2.14.1,
#: 2 threads), measured by ``python -m ttexplore bench --calibrate`` while other
#: processes left the CPUs idle. Another machine can print its own with that
#: command and pass it as ``machine=``.
DEFAULT_MACHINE = MachineModel(
    description="AMD EPYC (KVM), 2 CPUs, torch 2.14.1, 2 threads; measured by ttexplore.experiments.bench.calibrate_machine",
    gemm_grid=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    gemm_rows=(
        (4.16e+09, 1.64e+09, 2.26e+09, 5.32e+09, 8.98e+09, 1.37e+10, 1.85e+10, 2.23e+10, 2.49e+10, 2.67e+10),
        (5.43e+09, 3.23e+09, 5e+09, 1.15e+10, 4.97e+10, 4.84e+10, 4.5e+10, 4.34e+10, 4.22e+10, 2.48e+10),
        (7e+09, 5.82e+09, 8.6e+09, 2.19e+10, 8.09e+10, 8.23e+10, 7.63e+10, 7.36e+10, 7.09e+10, 6.53e+10),
        (7.85e+09, 7.47e+09, 1.37e+10, 2.51e+10, 1.13e+11, 1.2e+11, 1.22e+11, 1.2e+11, 1.2e+11, 1.16e+11),
        (1.3e+10, 8.19e+09, 1.7e+10, 2.89e+10, 1.31e+11, 1.46e+11, 1.51e+11, 1.58e+11, 1.57e+11, 1.58e+11),
        (1.84e+10, 8.32e+09, 1.68e+10, 3.06e+10, 1.42e+11, 1.42e+11, 1.69e+11, 1.76e+11, 1.8e+11, 1.77e+11),
        (2.32e+10, 7.62e+09, 1.68e+10, 2.94e+10, 1.44e+11, 1.71e+11, 1.62e+11, 1.83e+11, 1.89e+11, 1.86e+11),
        (1.86e+10, 7.38e+09, 1.51e+10, 2.86e+10, 1.49e+11, 1.73e+11, 1.78e+11, 1.93e+11, 1.98e+11, 1.91e+11),
        (2.13e+10, 7.09e+09, 1.44e+10, 2.84e+10, 1.49e+11, 1.75e+11, 1.92e+11, 2.01e+11, 2.06e+11, 1.87e+11),
        (2.36e+10, 7.17e+09, 1.41e+10, 2.83e+10, 1.49e+11, 1.77e+11, 1.92e+11, 1.9e+11, 1.89e+11, 1.95e+11),
    ),
    gemm_cols=(
        (1.54e+10, 2.28e+10, 2.22e+10, 2.27e+10, 2.17e+10, 2.16e+10, 2.19e+10, 2.25e+10, 2.76e+10, 2.72e+10),
        (2.3e+10, 2.47e+10, 2.21e+10, 3.26e+10, 3.55e+10, 4.35e+10, 2.98e+10, 2.44e+10, 2.77e+10, 8.75e+09),
        (2.86e+10, 3.1e+10, 3.43e+10, 4.98e+10, 6.63e+10, 5.98e+10, 3.51e+10, 3.79e+10, 4.51e+10, 1.84e+10),
        (2.89e+10, 2.91e+10, 3.86e+10, 7.49e+10, 8.28e+10, 8.21e+10, 4.81e+10, 4.27e+10, 3.82e+10, 4.25e+10),
        (3.07e+10, 2.84e+10, 4.54e+10, 8.04e+10, 9.18e+10, 1.05e+11, 6.67e+10, 7.28e+10, 7.33e+10, 9.91e+10),
        (2.59e+10, 2.79e+10, 4.52e+10, 6.74e+10, 9.58e+10, 1.04e+11, 1.07e+11, 1.1e+11, 1.19e+11, 1.38e+11),
        (3.1e+10, 3.04e+10, 4.26e+10, 6.36e+10, 9.28e+10, 1.03e+11, 1.22e+11, 1.38e+11, 1.49e+11, 1.65e+11),
        (3.09e+10, 2.9e+10, 4.07e+10, 6.51e+10, 9.73e+10, 1.17e+11, 1.47e+11, 1.59e+11, 1.77e+11, 1.81e+11),
        (2.8e+10, 2.98e+10, 4.5e+10, 6.73e+10, 9.43e+10, 1.25e+11, 1.53e+11, 1.74e+11, 1.81e+11, 1.82e+11),
        (2.29e+10, 2.91e+10, 3.48e+10, 6.55e+10, 1.05e+11, 1.32e+11, 1.64e+11, 1.72e+11, 1.73e+11, 1.77e+11),
    ),
    gemm_reduce=(
        (1.77e+09, 3.54e+09, 6.82e+09, 1.39e+10, 1.55e+10, 2.64e+10, 2.64e+10, 1.87e+10, 1.51e+10, 2.29e+10),
        (3.54e+09, 3.52e+09, 6.95e+09, 1.38e+10, 2.26e+10, 2.55e+10, 2.49e+10, 1.89e+10, 2.16e+10, 2.49e+10),
        (6.87e+09, 3.5e+09, 6.86e+09, 1.38e+10, 5.42e+10, 4.85e+10, 4.83e+10, 4.88e+10, 4.85e+10, 4.32e+10),
        (1.39e+10, 2.4e+09, 1.36e+10, 2.68e+10, 9.99e+10, 9.09e+10, 9.26e+10, 9.42e+10, 9.42e+10, 7.36e+10),
        (2.34e+10, 6.88e+09, 1.34e+10, 2.67e+10, 1.09e+11, 1.01e+11, 1.12e+11, 1.02e+11, 1.03e+11, 1e+11),
        (2.64e+10, 4.46e+09, 9.15e+09, 1.63e+10, 1.08e+11, 1.18e+11, 1.48e+11, 1.52e+11, 1.54e+11, 1.41e+11),
        (2.64e+10, 6.22e+09, 1.14e+10, 2.06e+10, 1.19e+11, 1.26e+11, 1.4e+11, 1.68e+11, 1.74e+11, 1.42e+11),
        (1.96e+10, 6.19e+09, 1.29e+10, 2.19e+10, 1.22e+11, 1.51e+11, 1.66e+11, 1.82e+11, 1.89e+11, 1.81e+11),
        (2.16e+10, 4.81e+09, 9.73e+09, 2.11e+10, 1.16e+11, 1.49e+11, 1.73e+11, 1.88e+11, 1.96e+11, 1.86e+11),
        (2.62e+10, 3.66e+09, 6.74e+09, 1.71e+10, 7.71e+10, 1.13e+11, 1.47e+11, 1.74e+11, 1.86e+11, 1.87e+11),
    ),
    gemm_rows_large=(
        (2.97e+09, 1.58e+09, 2.19e+09, 5.65e+09, 8.22e+09, 1.27e+10, 1.42e+10, 1.26e+10, 1.03e+10, 1.3e+10),
        (4.42e+09, 1.59e+09, 2.47e+09, 5.17e+09, 1.68e+10, 9.81e+09, 8.79e+09, 5.13e+09, 5.76e+09, 6.03e+09),
        (4.92e+09, 2.85e+09, 4.23e+09, 9.45e+09, 2.3e+10, 2.11e+10, 2.05e+10, 1.09e+10, 1.1e+10, 1.36e+10),
        (6.56e+09, 3.63e+09, 6.66e+09, 1.19e+10, 3.29e+10, 3.44e+10, 3.21e+10, 2.05e+10, 2.25e+10, 2.27e+10),
        (8.1e+09, 4.07e+09, 8.79e+09, 1.41e+10, 4.43e+10, 5.51e+10, 6.02e+10, 3.85e+10, 3.95e+10, 4.29e+10),
        (7.75e+09, 4.37e+09, 1.68e+10, 2.76e+10, 7.69e+10, 8.88e+10, 1.2e+11, 6.82e+10, 7.91e+10, 8.52e+10),
        (1.08e+10, 6.39e+09, 1.64e+10, 2.66e+10, 5.79e+10, 7.59e+10, 1.25e+11, 1.14e+11, 1.26e+11, 1.26e+11),
        (3.71e+09, 7.17e+09, 1.48e+10, 2.82e+10, 7.07e+10, 9.9e+10, 1.26e+11, 1.39e+11, 1.58e+11, 1.49e+11),
        (3.84e+09, 6.78e+09, 1.27e+10, 2.82e+10, 4.68e+10, 6.97e+10, 9.99e+10, 1.09e+11, 1.31e+11, 1.16e+11),
        (5.39e+09, 6.87e+09, 1.33e+10, 2.28e+10, 5.36e+10, 8.55e+10, 1.31e+11, 1.53e+11, 1.63e+11, 1.8e+11),
    ),
    gemm_cols_large=(
        (6.42e+09, 9.77e+09, 1.17e+10, 1.03e+10, 8.98e+09, 1.03e+10, 8.69e+09, 7.94e+09, 7.83e+09, 7.51e+09),
        (9.53e+09, 9.89e+09, 1.28e+10, 2e+10, 2.74e+10, 3.07e+10, 1.09e+10, 8.33e+09, 1.03e+10, 1.11e+10),
        (9.31e+09, 1.02e+10, 1.52e+10, 2.65e+10, 4.39e+10, 2.78e+10, 1.41e+10, 1.09e+10, 2.14e+10, 1.66e+10),
        (1.05e+10, 1.22e+10, 2.28e+10, 3.65e+10, 4.68e+10, 3.42e+10, 2.93e+10, 2.46e+10, 2.76e+10, 1.97e+10),
        (1.03e+10, 1.21e+10, 2.08e+10, 5.94e+10, 6.92e+10, 7.35e+10, 3.46e+10, 2.09e+10, 2.87e+10, 2.18e+10),
        (1.33e+10, 1.22e+10, 1.75e+10, 3.73e+10, 5.85e+10, 6.98e+10, 7.26e+10, 4.48e+10, 4.01e+10, 5.19e+10),
        (1.29e+10, 1.34e+10, 1.38e+10, 3.53e+10, 5.25e+10, 5.8e+10, 9.96e+10, 9.96e+10, 7.36e+10, 6.68e+10),
        (1.31e+10, 1.29e+10, 1.39e+10, 2.87e+10, 3.81e+10, 7.03e+10, 8.82e+10, 1.1e+11, 1.18e+11, 9.36e+10),
        (1.21e+10, 1.5e+10, 1.32e+10, 2.85e+10, 5.23e+10, 8.59e+10, 1.01e+11, 1.36e+11, 1.54e+11, 1.67e+11),
        (1.51e+10, 1.83e+10, 1.91e+10, 3.17e+10, 4.78e+10, 6.74e+10, 9.03e+10, 9.69e+10, 1.26e+11, 1.45e+11),
    ),
    gemm_reduce_large=(
        (1.74e+09, 3.47e+09, 6.4e+09, 1.04e+10, 1.09e+10, 8.16e+09, 7.94e+09, 3.69e+09, 3.97e+09, 5.88e+09),
        (3.31e+09, 3.23e+09, 6.13e+09, 8.83e+09, 1.06e+10, 1.04e+10, 6.04e+09, 4.08e+09, 4.87e+09, 6.22e+09),
        (6.7e+09, 3.44e+09, 6.62e+09, 1.02e+10, 2.42e+10, 1.52e+10, 1.78e+10, 1.91e+10, 2.07e+10, 1.99e+10),
        (1.05e+10, 2.6e+09, 1.06e+10, 1.99e+10, 4.52e+10, 3.66e+10, 3.72e+10, 3.89e+10, 4.2e+10, 3.69e+10),
        (9.23e+09, 3.35e+09, 7.3e+09, 1.27e+10, 4.81e+10, 5.34e+10, 5.62e+10, 5.56e+10, 5.67e+10, 5.24e+10),
        (1.1e+10, 1.49e+09, 2.85e+09, 5.87e+09, 7.4e+10, 7.88e+10, 8.65e+10, 9.22e+10, 9e+10, 9.11e+10),
        (8.33e+09, 1.57e+09, 2.91e+09, 5.9e+09, 5.97e+10, 7.86e+10, 1.02e+11, 1.12e+11, 1.21e+11, 1.22e+11),
        (3.59e+09, 1.69e+09, 3.21e+09, 5.94e+09, 8.77e+10, 1.07e+11, 1.33e+11, 1.48e+11, 1.45e+11, 1.53e+11),
        (4.17e+09, 2.43e+09, 4.97e+09, 8.81e+09, 9.9e+10, 1.22e+11, 1.47e+11, 1.64e+11, 1.66e+11, 1.73e+11),
        (6.29e+09, 2.41e+09, 4.67e+09, 1.03e+10, 7.08e+10, 1.03e+11, 1.35e+11, 1.62e+11, 1.81e+11, 1.86e+11),
    ),
    gemm_small_bytes=4194304,
    gemm_large_bytes=25165824,
    copy_block_bytes=(4, 8, 16, 32, 64, 128, 512),
    copy_fans=(4, 16, 64),
    copy_tables=(
        ('passes/small/plain', (
            (5.48e+10, 1.25e+10, 2.28e+10, 2.39e+10, 9.91e+10, 9.27e+10, 6.88e+10),
            (2.09e+10, 1.27e+10, 2.26e+10, 4.04e+10, 7.44e+10, 1.42e+11, 8.16e+10),
            (1.46e+10, 1.18e+10, 1.61e+10, 2.97e+10, 7.42e+10, 6.97e+10, 1.17e+11),
        )),
        ('passes/small/wide', (
            (5.48e+10, 1.25e+10, 6.03e+10, 3.3e+10, 1.12e+11, 8.08e+10, 6.88e+10),
            (2.09e+10, 1.27e+10, 5.69e+10, 5.09e+10, 1.06e+11, 1.25e+11, 8.16e+10),
            (1.46e+10, 1.18e+10, 2.47e+10, 3.89e+10, 6.76e+10, 7.82e+10, 1.17e+11),
        )),
        ('passes/large/plain', (
            (1.93e+10, 1.2e+10, 1.81e+10, 1.43e+10, 2.49e+10, 2.52e+10, 2.24e+10),
            (6.72e+09, 3.68e+09, 5.55e+09, 1.18e+10, 2.29e+10, 2.56e+10, 2.69e+10),
            (3.7e+09, 4.27e+09, 7.45e+09, 9e+09, 1.58e+10, 2.32e+10, 2.72e+10),
        )),
        ('passes/large/wide', (
            (1.93e+10, 1.2e+10, 1.77e+10, 1.35e+10, 2.58e+10, 3.23e+10, 2.24e+10),
            (6.72e+09, 3.68e+09, 7.81e+09, 1.03e+10, 2.17e+10, 2.98e+10, 2.69e+10),
            (3.7e+09, 4.27e+09, 1.11e+10, 9.13e+09, 1.53e+10, 2.31e+10, 2.72e+10),
        )),
        ('streams/small/plain', (
            (2.8e+10, 6.22e+09, 1.19e+10, 2.32e+10, 5.2e+10, 6.35e+10, 1.11e+11),
            (1.46e+10, 8.27e+09, 1.53e+10, 3.01e+10, 8.48e+10, 6.08e+10, 1.26e+11),
            (5.74e+09, 1.11e+10, 2.02e+10, 3.94e+10, 8.08e+10, 1.07e+11, 1.35e+11),
        )),
        ('streams/small/wide', (
            (2.8e+10, 6.22e+09, 9.95e+10, 2.48e+10, 4.97e+10, 5.55e+10, 1.11e+11),
            (1.46e+10, 8.27e+09, 5.16e+10, 3.38e+10, 8.46e+10, 6.74e+10, 1.26e+11),
            (5.74e+09, 1.11e+10, 2.29e+10, 4.86e+10, 7.96e+10, 9.84e+10, 1.35e+11),
        )),
        ('streams/large/plain', (
            (2.42e+10, 5.81e+09, 1.13e+10, 2.26e+10, 2.91e+10, 2.98e+10, 3.01e+10),
            (1.44e+10, 8.22e+09, 1.24e+10, 2.09e+10, 2.32e+10, 3.4e+10, 2.82e+10),
            (5.35e+09, 1.1e+10, 1.83e+10, 2.07e+10, 2.09e+10, 2.08e+10, 2.52e+10),
        )),
        ('streams/large/wide', (
            (2.42e+10, 5.81e+09, 3.19e+10, 2.27e+10, 2.51e+10, 2.61e+10, 3.01e+10),
            (1.44e+10, 8.22e+09, 2.86e+10, 2.18e+10, 2.42e+10, 3.17e+10, 2.82e+10),
            (5.35e+09, 1.1e+10, 2e+10, 2.18e+10, 1.85e+10, 2.11e+10, 2.52e+10),
        )),
    ),
    copy_small_bytes=4194304,
    copy_large_bytes=25165824,
    memory_bandwidth=3.12e+10,
    fault_bytes=33554432,
    fault_bandwidth=3.24e+09,
    gemm_call_s=7.38e-06,
    copy_call_s=3.78e-06,
    einsum_call_s=6.38e-06,
    merge_call_s=7.87e-06,
    forward_call_s=0,
    backward_gemm_call_s=4.26e-05,
    backward_copy_call_s=1.8e-05,
    float64_slowdown=2.0,
    gemm_scale=1.2,
    plain_copy_scale=1.17,
    wide_copy_scale=1.66,
    nd_copy_scale=3.13,
)

def _grid_position(grid: Sequence[int], value: float) -> tuple[int, float]:
    """Index ``i`` and weight ``w`` so that ``log2(value)`` lies between ``grid[i]`` and ``grid[i + 1]``."""
    if value <= grid[0]:
        return 0, 0.0
    if value >= grid[-1]:
        return len(grid) - 2, 1.0
    for index in range(len(grid) - 1):
        if grid[index] <= value <= grid[index + 1]:
            low, high = math.log2(grid[index]), math.log2(grid[index + 1])
            return index, (math.log2(value) - low) / (high - low)
    return len(grid) - 2, 1.0


def _interpolate_1d(values: Sequence[float], grid: Sequence[int], value: float) -> float:
    index, weight = _grid_position(grid, value)
    return values[index] * (1 - weight) + values[index + 1] * weight


def _interpolate_2d(
    table: Sequence[Sequence[float]], grid: Union[Sequence[int], tuple[Sequence[int], Sequence[int]]], first: float,
    second: float,
) -> float:
    """Bilinear interpolation (in ``log2``) of ``table[i][j]`` sampled at ``grid`` (one grid, or one per axis)."""
    first_grid, second_grid = grid if isinstance(grid[0], (tuple, list)) else (grid, grid)
    i, wi = _grid_position(first_grid, first)
    j, wj = _grid_position(second_grid, second)
    top = table[i][j] * (1 - wj) + table[i][j + 1] * wj
    bottom = table[i + 1][j] * (1 - wj) + table[i + 1][j + 1] * wj
    return top * (1 - wi) + bottom * wi


# ------------------------------------------------------------------ evaluation
def _needs_grad(kind: str, input_grad: bool) -> bool:
    return input_grad if kind in ("input", "input_copy") else True


def _gemm_seconds(m: int, k: int, n: int, element_bytes: int, machine: MachineModel) -> float:
    traffic = (m * k + k * n + m * n) * element_bytes
    rate = machine.gemm_rate(m, k, n, traffic) / (machine.float64_slowdown if element_bytes >= 8 else 1.0)
    seconds = max(2.0 * m * k * n / rate, traffic / machine.memory_bandwidth)
    return machine.gemm_scale * seconds + _fault_seconds(m * n * element_bytes, machine)


def _copy_seconds(
    elements: int, block_bytes: int, wide: bool, form: str, fan: int, element_bytes: int, machine: MachineModel
) -> float:
    total = elements * element_bytes
    if form == "nd":
        scale, form = machine.nd_copy_scale, "passes"
    else:
        scale = machine.wide_copy_scale if wide else machine.plain_copy_scale
    return scale * 2.0 * total / machine.copy_rate(block_bytes, wide, total, form, fan) + _fault_seconds(total, machine)


def _fault_seconds(result_bytes: int, machine: MachineModel) -> float:
    """Extra time of a result big enough to get fresh pages from the OS."""
    return result_bytes / machine.fault_bandwidth if result_bytes >= machine.fault_bytes else 0.0


def _evaluate(ops: Sequence[tuple], element_bytes: int, input_grad: bool, machine: MachineModel) -> dict:
    """FLOPs, memory and estimated seconds of one operation list (see the module comment)."""
    flops = backward_flops = 0
    peak = saved = 0
    forward_s = backward_s = 0.0
    for op in ops:
        if op[0] == "gemm":
            _, m, k, n, left, right = op
            product_flops = 2 * m * k * n
            flops += product_flops
            live = m * n + (m * k if left != "input" else 0) + (k * n if right != "input" else 0)
            forward_s += machine.gemm_call_s + _gemm_seconds(m, k, n, element_bytes, machine)
            grad_left, grad_right = _needs_grad(left, input_grad), _needs_grad(right, input_grad)
            backward_s += machine.backward_gemm_call_s
            if grad_left:  # d left = d out (m, n) @ right^T (n, k)
                backward_flops += product_flops
                backward_s += _gemm_seconds(m, n, k, element_bytes, machine)
                saved += k * n if right != "input" else 0
            if grad_right:  # d right = left^T (k, m) @ d out (m, n)
                backward_flops += product_flops
                backward_s += _gemm_seconds(k, m, n, element_bytes, machine)
                saved += m * k if left != "input" else 0
        elif op[0] == "copy":
            _, elements, block_bytes, wide, source, form, fan = op
            live = 2 * elements
            seconds = _copy_seconds(elements, block_bytes, wide, form, fan, element_bytes, machine)
            forward_s += machine.copy_call_s + seconds
            if _needs_grad(source, input_grad):
                backward_s += machine.backward_copy_call_s + seconds
        elif op[0] == "einsum_call":
            live = 0
            forward_s += machine.einsum_call_s
        elif op[0] == "merge_call":
            live = 0
            forward_s += machine.merge_call_s
        elif op[0] == "forward_call":
            live = 0
            forward_s += machine.forward_call_s
        else:
            raise ValueError(f"unknown operation {op[0]!r}")
        peak = max(peak, live)
    return {
        "flops": flops,
        "backward_flops": backward_flops,
        "peak_bytes": peak * element_bytes,
        "saved_bytes": saved * element_bytes,
        "forward_seconds": forward_s,
        "backward_seconds": backward_s,
    }


def strategy_costs(
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: RanksLike,
    batch: int = 1,
    dtype_bytes: int = 4,
    training: bool = False,
    input_grad: bool = True,
    machine: Optional[MachineModel] = None,
) -> dict[str, dict]:
    """FLOPs, activation memory and estimated time of every concrete forward strategy.

    Each strategy's operations are listed call for call as :mod:`ttexplore.core.kernels` and
    :mod:`ttexplore.core.forward` perform them, then costed with ``machine`` (by
    default :data:`DEFAULT_MACHINE`, measured on the 2-core benchmark machine).

    Args:
        in_modes, out_modes, ranks: the layer (ranks as for :func:`plan_ranks`).
        batch: rows of the input.
        dtype_bytes: 4 for float32, 8 for float64.
        training: rank by forward plus backward time instead of forward time.
        input_grad: whether the backward also computes the input's gradient.
        machine: the speeds to estimate time with.

    Returns:
        ``{strategy: costs}`` for ``ltr``, ``rtl``, ``blocked``, ``einsum`` (when
        opt_einsum is installed) and ``dense``; ``costs`` has

        * ``flops`` / ``backward_flops``: multiply-adds counted twice, as
          ``torch.utils.flop_counter.FlopCounterMode`` counts them;
        * ``peak_bytes``: the most bytes of intermediates one forward step holds
          (its operands and result, layer input and parameters excluded);
        * ``saved_bytes``: bytes of intermediates autograd keeps for the backward;
        * ``forward_seconds`` / ``backward_seconds`` and ``seconds`` (the one
          ``training`` ranks by): estimates, not measurements;
        * ``plan``: a short description; ``blocked`` also has ``blocks`` (block
          lengths; merged blocks only when estimated :data:`MERGE_MARGIN` of the
          best core-by-core sweep) and ``direction``; ``rtl`` and ``blocked``
          have ``orientations`` (per-step GEMM orientations of a right-to-left
          sweep, see :data:`COLS_ORIENTATION_MARGIN`).

    Complexity: ``O(2^d d)`` list operations (every blocking of the ``d`` cores
    is costed for ``blocked``), plus opt_einsum's path search; results are cached.
    """
    in_modes, out_modes = check_modes(in_modes, out_modes)
    internal = plan_ranks(in_modes, out_modes, ranks).ranks
    return _strategy_costs(
        in_modes, out_modes, internal, int(batch), int(dtype_bytes), bool(training), bool(input_grad),
        machine or DEFAULT_MACHINE,
    )


@functools.lru_cache(maxsize=1024)
def _strategy_costs(
    in_modes: tuple[int, ...],
    out_modes: tuple[int, ...],
    ranks: tuple[int, ...],
    batch: int,
    dtype_bytes: int,
    training: bool,
    input_grad: bool,
    machine: MachineModel,
) -> dict[str, dict]:
    r = full_ranks(ranks)
    shapes = [(r[k], n, m, r[k + 1]) for k, (n, m) in enumerate(zip(in_modes, out_modes))]
    d = len(shapes)

    def costed(ops: Sequence[tuple], plan: str) -> dict:
        result = _evaluate([("forward_call",), *ops], dtype_bytes, input_grad, machine)
        result["seconds"] = result["forward_seconds"] + (result["backward_seconds"] if training else 0.0)
        result["plan"] = plan
        return result

    def seconds(ops: Sequence[tuple]) -> float:
        result = _evaluate(ops, dtype_bytes, input_grad, machine)
        return result["forward_seconds"] + (result["backward_seconds"] if training else 0.0)

    def choose(rows_ops: list[tuple], cols_ops: list[tuple]) -> str:
        return "cols" if seconds(cols_ops) < COLS_ORIENTATION_MARGIN * seconds(rows_ops) else "rows"

    rtl_ops, rtl_orientations = _rtl_sweep(shapes, batch, dtype_bytes, choose=choose)
    results = {
        "ltr": costed(_sweep_ops(shapes, batch, "ltr", dtype_bytes), "core by core, first core first"),
        "rtl": costed(rtl_ops, "core by core, last core first"),
    }
    results["rtl"]["orientations"] = rtl_orientations
    best_merged = best_single = None
    for blocks in block_compositions(d):
        if len(blocks) == 1 and d > 1:
            continue
        for direction in ("rtl", "ltr"):
            ops, orientations = _blocked_ops(shapes, batch, blocks, direction, dtype_bytes, choose=choose)
            candidate = costed(
                ops,
                f"blocks {'+'.join(map(str, blocks))}, "
                + ("last block first" if direction == "rtl" else "first block first"),
            )
            candidate["blocks"], candidate["direction"], candidate["orientations"] = blocks, direction, orientations
            if len(blocks) == d:
                if best_single is None or candidate["seconds"] < best_single["seconds"]:
                    best_single = candidate
            elif best_merged is None or candidate["seconds"] < best_merged["seconds"]:
                best_merged = candidate
    if best_merged is not None and (best_single is None or best_merged["seconds"] <= MERGE_MARGIN * best_single["seconds"]):
        best = best_merged
    else:
        best = best_single
    merged_bytes = sum(prod(s) for s in _block_shapes(shapes, best["blocks"])) * dtype_bytes if d > 1 else 0
    best["peak_bytes"] += merged_bytes if any(length > 1 for length in best["blocks"]) else 0
    results["blocked"] = best
    try:
        einsum_ops = _einsum_ops(in_modes, out_modes, ranks, batch, dtype_bytes)
    except ImportError:
        einsum_ops = None
    if einsum_ops is not None:
        results["einsum"] = costed(einsum_ops, f"opt_einsum '{EINSUM_OPTIMIZE}' path")
    results["dense"] = costed(_dense_ops(shapes, batch, dtype_bytes), "rebuild W, one GEMM")
    return results


def best_strategy(costs: dict[str, dict]) -> str:
    """The strategy with the smallest estimated ``seconds`` in a :func:`strategy_costs` result."""
    return min(costs, key=lambda name: costs[name]["seconds"])
