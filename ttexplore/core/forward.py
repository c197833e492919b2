"""Forward strategies of the TT layer, and the cost model that picks one.

Strategies (all give the same result, forward and backward):

* ``"ltr"``: core by core from the first core, one GEMM and one permuted copy
  each (:func:`ttexplore.core.kernels.tt_matmul_ltr`).
* ``"rtl"``: core by core from the last core (:func:`ttexplore.core.kernels.tt_matmul_rtl`).
* ``"blocked"``: merge blocks of adjacent cores first, then sweep over the
  blocks (:func:`ttexplore.core.kernels.tt_matmul_blocked`); the blocks and the direction
  are the cost model's best.
* ``"einsum"``: one contraction of the input and all cores in the order
  opt_einsum finds, planned once per shape and dtype and cached
  (:func:`einsum_expression`).
* ``"dense"``: rebuild ``W`` from the cores, then one GEMM; cheapest for small
  layers and large batches.
* ``"auto"``: the strategy the cost model (:func:`ttexplore.costmodel.strategy_costs`:
  FLOPs, memory traffic and measured machine speeds, forward only or forward
  plus backward when autograd will need a backward) estimates fastest; with
  :func:`set_autotune` on, the candidates are timed once per shape instead.

Each decision is cached per (modes, ranks, batch, dtype, training), so a
forward pays one dictionary lookup for its plan.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

from ttexplore import costmodel
from ttexplore.core import ttmath
from ttexplore.core.kernels import tt_matmul_blocked, tt_matmul_dense, tt_matmul_ltr, tt_matmul_rtl

__all__ = [
    "STRATEGIES",
    "CONCRETE_STRATEGIES",
    "ForwardPlan",
    "check_strategy",
    "strategy_costs",
    "plan_forward",
    "set_autotune",
    "prime_allocator",
    "clear_caches",
    "einsum_expression",
    "tt_matmul_einsum",
    "tt_linear",
]

#: Strategy names a ``TTLinear`` accepts.
STRATEGIES = costmodel.STRATEGIES

#: The strategies ``"auto"`` chooses among.
CONCRETE_STRATEGIES = costmodel.CONCRETE_STRATEGIES

#: Layers whose dense ``W`` has more elements than this are never timed with the
#: dense strategy by the autotuner (rebuilding them takes seconds).
AUTOTUNE_MAX_DENSE_ELEMENTS = 1 << 25

#: Bytes of the block :func:`prime_allocator` allocates and frees: just under
#: glibc's 32 MiB cap on its adaptive mmap threshold.
PRIME_ALLOCATOR_BYTES = 31 << 20

_autotune = False
_autotune_cache: dict[tuple, "ForwardPlan"] = {}
_autotune_lock = threading.Lock()
_allocator_primed = False


def prime_allocator() -> None:
    """Let glibc keep freed intermediates on its heap instead of returning them to the OS.

    glibc serves allocations above its mmap threshold (128 KiB at start) with
    fresh pages from the OS and unmaps them on free; it raises the threshold to
    the largest such block freed so far, up to 32 MiB. Until a block that large
    has been freed, every forward of a mid-size TT layer page-faults its
    intermediates back in (784 -> 625 at batch 128 on the benchmark machine:
    1.5 ms and 270 page faults per call, against 0.6 ms once primed). Allocating
    and freeing one untouched 31 MiB block, as loading any dataset does, settles
    it for the process; with other allocators it is a no-op in effect.
    :func:`tt_linear` calls it once per process.
    """
    global _allocator_primed
    _allocator_primed = True
    del_after = torch.empty(PRIME_ALLOCATOR_BYTES, dtype=torch.uint8)
    del del_after


def check_strategy(strategy: str) -> None:
    """Raise a ``ValueError`` naming the choices when ``strategy`` is unknown."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is unknown: use one of {', '.join(STRATEGIES)}")


def set_autotune(enabled: bool) -> None:
    """Let ``"auto"`` time its candidates once per shape instead of trusting the cost model.

    The timing runs on the first forward of each (modes, ranks, batch bucket,
    dtype, grad-enabled) combination, on random tensors of the same shapes, and
    is cached for the process. Batches are bucketed to powers of two.
    """
    global _autotune
    _autotune = bool(enabled)


def clear_caches() -> None:
    """Forget every cached plan, autotuning result and einsum expression."""
    _cached_plan.cache_clear()
    einsum_expression.cache_clear()
    with _autotune_lock:
        _autotune_cache.clear()


def strategy_costs(
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: ttmath.RanksLike,
    batch: int = 1,
    dtype: torch.dtype = torch.float32,
    training: bool = False,
    input_grad: bool = True,
) -> dict[str, dict]:
    """:func:`ttexplore.costmodel.strategy_costs` for a torch dtype."""
    return costmodel.strategy_costs(
        in_modes, out_modes, ranks, batch, _dtype_bytes(dtype), training=training, input_grad=input_grad
    )


def _dtype_bytes(dtype: torch.dtype) -> int:
    return dtype.itemsize


# ---------------------------------------------------------------------------- einsum
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
    d = len(cores)
    operands = [inputs.reshape(batch, *in_modes)]
    for k, core in enumerate(cores):
        # drop the boundary ranks r_0 = r_d = 1, as einsum_equation does
        shape = list(core.shape)
        if k == d - 1:
            shape = shape[:-1]
        if k == 0:
            shape = shape[1:]
        operands.append(core.reshape(shape))
    # result: (B, m_1, ..., m_d)
    output = expression(*operands, backend="torch").reshape(batch, -1)
    return output if bias is None else output + bias


# ---------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class ForwardPlan:
    """A concrete way to compute one forward, chosen once and reused.

    Attributes:
        strategy: the concrete strategy.
        blocks: block lengths (``"blocked"`` only, else ``()``).
        direction: ``"ltr"`` or ``"rtl"`` (``"blocked"`` only, else ``""``).
        source: ``"fixed"`` (asked for by name), ``"model"`` or ``"timing"``.
        run: ``run(inputs (B, N), cores, bias) -> (B, M)``.
        orientations: per-step GEMM orientations of a right-to-left sweep
            (see :func:`ttexplore.core.kernels.tt_matmul_rtl`), else ``()``.
    """

    strategy: str
    blocks: tuple[int, ...]
    direction: str
    source: str
    run: Callable[[torch.Tensor, Sequence[torch.Tensor], Optional[torch.Tensor]], torch.Tensor]
    orientations: tuple[str, ...] = ()


def _make_plan(
    strategy: str,
    costs: dict[str, dict],
    in_modes: tuple[int, ...],
    out_modes: tuple[int, ...],
    ranks: tuple[int, ...],
    source: str,
) -> ForwardPlan:
    if strategy == "ltr":
        return ForwardPlan("ltr", (), "", source, lambda x, cores, bias: tt_matmul_ltr(x, cores, bias))
    if strategy == "rtl":
        orientations = costs["rtl"]["orientations"]
        return ForwardPlan(
            "rtl", (), "rtl", source, lambda x, cores, bias: tt_matmul_rtl(x, cores, bias, orientations), orientations
        )
    if strategy == "dense":
        return ForwardPlan("dense", (), "", source, lambda x, cores, bias: tt_matmul_dense(x, cores, bias))
    if strategy == "blocked":
        blocked = costs["blocked"]
        blocks, direction, orientations = blocked["blocks"], blocked["direction"], blocked["orientations"]
        return ForwardPlan(
            "blocked",
            blocks,
            direction,
            source,
            lambda x, cores, bias: tt_matmul_blocked(x, cores, blocks, direction, bias, orientations),
            orientations,
        )
    if strategy == "einsum":
        return ForwardPlan(
            "einsum",
            (),
            "",
            source,
            lambda x, cores, bias: tt_matmul_einsum(x, cores, in_modes, out_modes, ranks, bias),
        )
    check_strategy(strategy)
    raise AssertionError(f"strategy {strategy!r} is listed but not dispatched")


@functools.lru_cache(maxsize=4096)
def _cached_plan(
    in_modes: tuple[int, ...],
    out_modes: tuple[int, ...],
    ranks: tuple[int, ...],
    batch: int,
    dtype: torch.dtype,
    training: bool,
    input_grad: bool,
    strategy: str,
) -> ForwardPlan:
    costs = costmodel.strategy_costs(
        in_modes, out_modes, ranks, batch, _dtype_bytes(dtype), training=training, input_grad=input_grad
    )
    if strategy == "auto":
        return _make_plan(costmodel.best_strategy(costs), costs, in_modes, out_modes, ranks, "model")
    return _make_plan(strategy, costs, in_modes, out_modes, ranks, "fixed")


def plan_forward(
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: Sequence[int],
    batch: int,
    dtype: torch.dtype = torch.float32,
    training: bool = False,
    input_grad: bool = False,
    strategy: str = "auto",
) -> ForwardPlan:
    """The cached plan ``tt_linear`` runs for these shapes.

    ``"auto"`` asks the cost model, or, with :func:`set_autotune` on, times the
    candidates once per batch bucket (see :func:`_autotune_plan`).
    """
    key = (tuple(in_modes), tuple(out_modes), tuple(ranks), int(batch), dtype, bool(training), bool(input_grad))
    if strategy == "auto" and _autotune:
        return _autotune_plan(*key)
    return _cached_plan(*key, strategy)


def _batch_bucket(batch: int) -> int:
    """The power of two at or above ``batch``: autotuning times one batch per bucket."""
    return 1 << max(0, math.ceil(math.log2(max(1, batch))))


def _autotune_plan(
    in_modes: tuple[int, ...],
    out_modes: tuple[int, ...],
    ranks: tuple[int, ...],
    batch: int,
    dtype: torch.dtype,
    training: bool,
    input_grad: bool,
) -> ForwardPlan:
    """Time each plausible strategy once on random tensors and keep the fastest.

    Candidates are the strategies the cost model estimates within 4x of its best
    (the dense one only when ``W`` has at most
    :data:`AUTOTUNE_MAX_DENSE_ELEMENTS` elements); each runs once to warm up,
    then the best of three runs counts (forward, plus backward when training).
    """
    bucket = _batch_bucket(batch)
    key = (in_modes, out_modes, ranks, bucket, dtype, training, input_grad)
    with _autotune_lock:
        plan = _autotune_cache.get(key)
    if plan is not None:
        return plan
    costs = costmodel.strategy_costs(
        in_modes, out_modes, ranks, bucket, _dtype_bytes(dtype), training=training, input_grad=input_grad
    )
    best_estimate = min(cost["seconds"] for cost in costs.values())
    candidates = [name for name in costs if costs[name]["seconds"] <= 4 * best_estimate]
    if ttmath.prod(in_modes) * ttmath.prod(out_modes) > AUTOTUNE_MAX_DENSE_ELEMENTS and "dense" in candidates:
        candidates.remove("dense")
    if not candidates:
        candidates = [costmodel.best_strategy(costs)]
    full = ttmath.full_ranks(ranks)
    cores = [
        torch.randn(full[k], n, m, full[k + 1], dtype=dtype, requires_grad=training)
        for k, (n, m) in enumerate(zip(in_modes, out_modes))
    ]
    inputs = torch.randn(bucket, ttmath.prod(in_modes), dtype=dtype, requires_grad=training and input_grad)
    timings = {}
    for name in candidates:
        plan = _make_plan(name, costs, in_modes, out_modes, ranks, "timing")
        timings[name] = _time_plan(plan, inputs, cores, training)
    chosen = min(timings, key=timings.get)
    plan = _make_plan(chosen, costs, in_modes, out_modes, ranks, "timing")
    with _autotune_lock:
        _autotune_cache[key] = plan
    return plan


def _time_plan(plan: ForwardPlan, inputs: torch.Tensor, cores: Sequence[torch.Tensor], training: bool) -> float:
    """Best of three wall-clock times of one forward (+ backward when ``training``)."""
    best = math.inf
    for attempt in range(4):
        start = time.perf_counter()
        with torch.set_grad_enabled(training):
            output = plan.run(inputs, cores, None)
            if training:
                output.sum().backward()
        elapsed = time.perf_counter() - start
        if attempt > 0:
            best = min(best, elapsed)
    return best


def _empty_batch(
    inputs: torch.Tensor, cores: Sequence[torch.Tensor], out_features: int, bias: Optional[torch.Tensor]
) -> torch.Tensor:
    """The ``(0, M)`` result of an empty batch, as ``nn.Linear`` gives it.

    No strategy is planned (the cost model divides by the batch) and nothing of the
    layer's size is allocated; the result is still connected to the inputs, the
    cores and the bias, so a backward through it gives them zero gradients.
    """
    anchor = inputs.sum() * 0  # a 0-d zero in the graph of every operand
    for core in cores:
        anchor = anchor + core.sum() * 0
    output = anchor.to(inputs.dtype).expand(0, out_features)
    return output if bias is None else output + bias


def tt_linear(
    inputs: torch.Tensor,
    cores: Sequence[torch.Tensor],
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: Sequence[int],
    strategy: str = "auto",
    bias: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``inputs @ W^T (+ bias)`` for a TT-matrix ``W`` given by ``cores``.

    Args:
        inputs: ``(B, N)``.
        cores: core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``.
        in_modes, out_modes, ranks: describe the cores (``ranks`` are the internal ones).
        strategy: one of :data:`STRATEGIES`.
        bias: optional ``(M,)``, added to every row.

    Returns:
        ``(B, M)``; an empty batch (``B = 0``) gives ``(0, M)`` without planning.
    """
    if inputs.shape[0] == 0:
        return _empty_batch(inputs, cores, ttmath.prod(out_modes), bias)
    if not _allocator_primed:
        prime_allocator()
    training = torch.is_grad_enabled() and (inputs.requires_grad or any(core.requires_grad for core in cores))
    plan = plan_forward(
        in_modes, out_modes, ranks, inputs.shape[0], inputs.dtype, training, training and inputs.requires_grad,
        strategy,
    )
    return plan.run(inputs, cores, bias)
