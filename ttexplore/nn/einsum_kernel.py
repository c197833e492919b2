"""The ``einsum`` strategy's kernel: one opt_einsum contraction of the input and all cores.

The path is planned once per shapes and dtype (:func:`einsum_expression`); under
``torch.compile`` / ``torch.export`` the same path is replayed as plain
``torch.einsum`` calls (:func:`einsum_steps`, :func:`replay_einsum`).
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import torch

from ttexplore import costmodel

__all__ = ["einsum_expression", "tt_matmul_einsum", "einsum_steps", "replay_einsum"]


@functools.lru_cache(maxsize=256)
def einsum_expression(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], batch: int, dtype: torch.dtype
):
    """The opt_einsum ``ContractExpression`` of ``x W^T`` for these shapes, planned once.

    The equation is :func:`ttexplore.costmodel.einsum_equation` (boundary ranks
    dropped); the path is opt_einsum's ``"dp"`` optimum for FLOPs. Cached (LRU,
    256 entries) per shapes and dtype, so each forward only executes the plan
    (``torch.einsum`` would search a path on every call).
    """
    import opt_einsum

    equation, core_shapes = costmodel.einsum_equation(in_modes, out_modes, ranks)
    return opt_einsum.contract_expression(
        equation, (batch, *in_modes), *core_shapes, optimize=costmodel.EINSUM_OPTIMIZE
    )


def tt_matmul_einsum(
    inputs: torch.Tensor,
    cores: Sequence[torch.Tensor],
    in_modes: tuple[int, ...],
    out_modes: tuple[int, ...],
    ranks: tuple[int, ...],
    bias: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``inputs @ W^T (+ bias)`` as one cached opt_einsum contraction.

    Args:
        inputs: ``(B, N)``.
        cores: core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``.
        in_modes, out_modes, ranks: tuples describing the cores (``ranks`` internal).
        bias: optional ``(M,)``.

    Returns:
        ``(B, M)``.

    Complexity: the FLOPs of opt_einsum's path (``strategy_costs(...)["einsum"]``),
    a sequence of ``torch.tensordot`` calls.
    """
    batch = inputs.shape[0]
    expression = einsum_expression(in_modes, out_modes, ranks, batch, inputs.dtype)
    # result: (B, m_1, ..., m_d)
    output = expression(*_einsum_operands(inputs, cores, in_modes), backend="torch").reshape(batch, -1)
    return output if bias is None else output + bias


def _einsum_operands(inputs: torch.Tensor, cores: Sequence[torch.Tensor], in_modes: tuple[int, ...]) -> list[torch.Tensor]:
    """The operands of :func:`ttexplore.costmodel.einsum_equation`: ``(B, n_1..n_d)`` and the cores
    without their boundary ranks ``r_0 = r_d = 1``."""
    d = len(cores)
    operands = [inputs.reshape(inputs.shape[0], *in_modes)]
    for k, core in enumerate(cores):
        shape = list(core.shape)
        if k == d - 1:
            shape = shape[:-1]
        if k == 0:
            shape = shape[1:]
        operands.append(core.reshape(shape))
    return operands


def einsum_steps(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], batch: int
) -> tuple[tuple[tuple[int, ...], str], ...]:
    """opt_einsum's pairwise path for :func:`tt_matmul_einsum`, as plain values.

    Returns:
        ``((positions, equation), ...)``: each step pops the operands at
        ``positions`` (in that order) and appends ``torch.einsum(equation, *popped)``.
    """
    expression = einsum_expression(in_modes, out_modes, ranks, batch, torch.float32)
    return tuple((tuple(step[0]), step[2]) for step in expression.contraction_list)


def replay_einsum(
    steps: Sequence[tuple[tuple[int, ...], str]],
    inputs: torch.Tensor,
    cores: Sequence[torch.Tensor],
    in_modes: tuple[int, ...],
    bias: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """:func:`tt_matmul_einsum` as ``torch.einsum`` calls along ``steps`` (:func:`einsum_steps`): traceable.

    Complexity: that of the path (``strategy_costs(...)["einsum"]``).
    """
    operands = _einsum_operands(inputs, cores, in_modes)
    for positions, equation in steps:
        popped = [operands.pop(position) for position in positions]
        operands.append(torch.einsum(equation, *popped))
    output = operands[0].reshape(inputs.shape[0], -1)
    return output if bias is None else output + bias
