"""The einsum strategy: its equation and the operations opt_einsum performs for it.

Pure Python; opt_einsum (also pure Python) is imported only to plan a path.
The operation tuples are those of :mod:`ttexplore.costmodel.ops`.
"""

from __future__ import annotations

from typing import Sequence

from ttexplore.tt.ttmath import RanksLike, check_modes, full_ranks, plan_ranks, prod
from ttexplore.costmodel.ops import copy_op

__all__ = ["EINSUM_OPTIMIZE", "einsum_equation", "einsum_ops"]

#: The path optimiser used for the einsum strategy (opt_einsum's dynamic programming).
EINSUM_OPTIMIZE = "dp"

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


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
    """``count`` distinct index letters: ASCII letters, opt_einsum's symbols past 52."""
    if count <= len(_LETTERS):
        return _LETTERS[:count]
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


def _matrix_operand_ops(
    memory: str, rows: str, cols: str, kind: str, sizes: dict, element_bytes: int
) -> tuple[list[tuple], str]:
    """The copy ``torch.tensordot`` makes to lay an operand out as the matrix ``(rows, cols)``, and its kind after.

    No copy when that layout is a view of the operand (axes in memory order ``memory``);
    a copied input becomes ``"input_copy"``.
    """
    if _viewable_as_matrix(memory, rows, cols, sizes):
        return [], kind
    wanted = rows + cols
    ops = copy_op(
        [sizes[s] for s in memory], [memory.index(s) for s in wanted], element_bytes, source=kind, wide_allowed=False
    )
    return ops, "input_copy" if kind == "input" else kind


def einsum_ops(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], batch: int, element_bytes: int
) -> list[tuple]:
    """Operations of opt_einsum's contraction (torch backend) of :func:`einsum_equation`.

    Follows opt_einsum's loop: each pairwise contraction is ``torch.tensordot``,
    which permutes an operand to ``(free, contracted)`` / ``(contracted, free)`` and
    copies it when that is not a view, then runs one GEMM; its result is contiguous
    in ``free_left + free_right`` order and opt_einsum only permutes the view.

    Raises:
        ImportError: opt_einsum is not installed.
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
        positions, removed, einsum_str = contraction[:3]
        picked = [operands.pop(position) for position in positions]
        ops.append(("einsum_call",))
        result = einsum_str.split("->")[1]
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
        left_copy, left_kind = _matrix_operand_ops(left_memory, free_left, contracted, left_kind, sizes, element_bytes)
        right_copy, right_kind = _matrix_operand_ops(right_memory, contracted, free_right, right_kind, sizes, element_bytes)
        m = prod(sizes[s] for s in free_left)
        k = prod(sizes[s] for s in contracted)
        n = prod(sizes[s] for s in free_right)
        ops += left_copy + right_copy + [("gemm", m, k, n, left_kind, right_kind)]
        operands.append((result, free_left + free_right, kind))
    (_, memory, _), = operands
    # the strategy reshapes the result (B, m_1..m_d) -> (B, M): a copy unless laid out so
    if [s for s in memory if sizes[s] != 1] != [s for s in output if sizes[s] != 1]:
        ops += copy_op(
            [sizes[s] for s in memory], [memory.index(s) for s in output], element_bytes, wide_allowed=False
        )
    return ops
