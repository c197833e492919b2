"""Forward strategies of the TT layer, and how ``"auto"`` picks one on each device.

Strategies (all give the same result, forward and backward):

* ``"ltr"``: core by core from the first core, one GEMM and one permuted copy
  each (:func:`ttexplore.nn.kernels.tt_matmul_ltr`).
* ``"rtl"``: core by core from the last core (:func:`ttexplore.nn.kernels.tt_matmul_rtl`).
* ``"blocked"``: merge blocks of adjacent cores first, then sweep over the
  blocks (:func:`ttexplore.nn.kernels.tt_matmul_blocked`); the blocks and the direction
  are the cost model's best.
* ``"einsum"``: one contraction of the input and all cores in the order
  opt_einsum finds, planned once per shape and dtype and cached
  (:func:`einsum_expression`).
* ``"dense"``: rebuild ``W`` from the cores, then one GEMM.
* ``"auto"``: on the CPU, the strategy the cost model
  (:func:`ttexplore.costmodel.strategy_costs`: FLOPs, memory traffic and the
  measured speeds of ``machines/default.json``, forward only or forward plus
  backward when autograd will need a backward) estimates fastest; with
  :func:`set_autotune` on, and on every other device (CUDA, MPS: the tables
  describe one CPU), the candidates are timed once per shape on that device
  instead, unless :func:`set_device_machine` gave a model fitted there.

Each decision is cached per (modes, ranks, batch, dtype, device, training), so a
forward pays one dictionary lookup for its plan. At inference
(:func:`stored_weight_pays`) ``auto`` may also multiply by a stored ``W``
rebuilt once (:class:`ttexplore.nn.layers.TTLinear` keeps it while its cores
are unchanged); the cost model, or the timing, and a memory budget
(:func:`set_stored_weight_budget`) decide. Under ``torch.compile`` and
``torch.export`` the plan is fixed at trace time (:func:`traced_plan_spec`) and
the kernels take their plain, traceable path.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from ttexplore import costmodel
from ttexplore.tt import ttmath
from ttexplore.nn.device import timed_seconds
from ttexplore.nn.einsum_kernel import einsum_expression, einsum_steps, tt_matmul_einsum
from ttexplore.nn.plans import ForwardPlan, make_plan, run_plan_spec

__all__ = [
    "STRATEGIES",
    "CONCRETE_STRATEGIES",
    "ForwardPlan",
    "check_strategy",
    "strategy_costs",
    "plan_forward",
    "set_autotune",
    "set_device_machine",
    "set_stored_weight_budget",
    "stored_weight_pays",
    "decisions_generation",
    "fastest_by_timing",
    "traced_plan_spec",
    "run_plan_spec",
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

#: Default of :func:`set_stored_weight_budget`: the most bytes of ``W`` one layer
#: keeps for inference (a 4096 x 4096 float32 ``W`` is exactly this).
STORED_WEIGHT_BUDGET_BYTES = 64 << 20

#: Rounds of a timing (:func:`fastest_by_timing`): the candidates run round-robin, best of these.
TIMING_ROUNDS = 5

#: Estimates within this factor of the best count as a near tie (the cost model's; the memory estimate
#: prices the largest of the tied strategies, any of which a timing may pick).
NEAR_TIE_BAND = costmodel.NEAR_TIE_BAND

#: The batch a traced plan (:func:`traced_plan_spec`) is chosen for when the
#: batch is symbolic (``torch.compile(dynamic=True)``, ``torch.export`` with a ``Dim``).
TRACED_DYNAMIC_BATCH = 64

_autotune = False
_autotune_cache: dict[tuple, object] = {}
# held while a timing is looked up, made and stored: two threads never time the same key apart
# (and so never run two plans, or one with and one without a stored W, for the same shapes)
_autotune_lock = threading.RLock()
_allocator_primed = False
_device_machines: dict[str, costmodel.MachineModel] = {}
_stored_weight_budget = STORED_WEIGHT_BUDGET_BYTES
_generation = 0


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
    :func:`tt_linear` calls it once per process, on its first forward of CPU
    tensors (never for other devices, and never while tracing).
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
    """Let ``"auto"`` time its candidates once per shape on the CPU too, instead of trusting the cost model.

    The timing runs on the first forward of each (modes, ranks, batch bucket,
    dtype, device, grad-enabled) combination, on random tensors of the same
    shapes on the same device, and is cached for the process. Batches are
    bucketed to powers of two. Devices other than the CPU always time (see
    :func:`set_device_machine`).
    """
    global _autotune
    _autotune = bool(enabled)


def set_device_machine(device_type: str, machine: Optional[costmodel.MachineModel]) -> None:
    """Price strategies on ``device_type`` (``"cuda"``, ``"mps"``, ``"cpu"``) with ``machine`` instead of timing them.

    ``machine`` is a :class:`ttexplore.costmodel.MachineModel` fitted on that
    device (``None`` forgets it: the CPU goes back to the default tables, other
    devices to timing). Cached plans are dropped.
    """
    if machine is None:
        _device_machines.pop(device_type, None)
    else:
        _device_machines[device_type] = machine
    clear_caches()


def set_stored_weight_budget(max_bytes: int) -> None:
    """The most bytes of a rebuilt ``W`` one layer may keep for inference (0: never keep one).

    Default :data:`STORED_WEIGHT_BUDGET_BYTES`. Cached decisions are dropped.
    """
    global _stored_weight_budget
    _stored_weight_budget = max(0, int(max_bytes))
    clear_caches()


def decisions_generation() -> int:
    """A number that changes whenever cached decisions are dropped (:func:`clear_caches`): layers that
    remember a decision of :func:`stored_weight_pays` forget it then."""
    return _generation


def clear_caches() -> None:
    """Forget every cached plan, autotuning result, stored-weight decision and einsum expression."""
    global _generation
    _generation += 1
    _cached_plan.cache_clear()
    _modelled_stored_weight_verdict.cache_clear()
    _inference_plan.cache_clear()
    einsum_expression.cache_clear()
    with _autotune_lock:
        _autotune_cache.clear()


def _priced_by_model(device_type: str) -> bool:
    """Whether ``auto`` trusts the cost model on this device (else it times its candidates)."""
    return not _autotune and (device_type == "cpu" or device_type in _device_machines)


def strategy_costs(
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: ttmath.RanksLike,
    batch: int = 1,
    dtype: torch.dtype = torch.float32,
    training: bool = False,
    input_grad: bool = True,
    device_type: str = "cpu",
) -> dict[str, dict]:
    """:func:`ttexplore.costmodel.strategy_costs` for a torch dtype, priced with the device's model
    (:func:`set_device_machine`; the default tables when none was given)."""
    return costmodel.strategy_costs(
        in_modes, out_modes, ranks, batch, _dtype_bytes(dtype), training=training, input_grad=input_grad,
        machine=_device_machines.get(device_type),
    )


def _dtype_bytes(dtype: torch.dtype) -> int:
    return dtype.itemsize


# ---------------------------------------------------------------------------- plans
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
    device_type: str = "cpu",
) -> ForwardPlan:
    """The plan of a named strategy, or ``auto``'s by the cost model, priced for ``device_type``.

    A named strategy's structure (``blocked``'s blocks, ``rtl``'s orientations) is the
    cost model's on every device.
    """
    costs = costmodel.strategy_costs(
        in_modes, out_modes, ranks, batch, _dtype_bytes(dtype), training=training, input_grad=input_grad,
        machine=_device_machines.get(device_type),
    )
    if strategy == "auto":
        return make_plan(costmodel.best_strategy(costs), costs, in_modes, out_modes, ranks, "model")
    return make_plan(strategy, costs, in_modes, out_modes, ranks, "fixed")


def plan_forward(
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: Sequence[int],
    batch: int,
    dtype: torch.dtype = torch.float32,
    training: bool = False,
    input_grad: bool = False,
    strategy: str = "auto",
    device: "torch.device | str" = "cpu",
) -> ForwardPlan:
    """The cached plan ``tt_linear`` runs for these shapes on ``device``.

    ``"auto"`` asks the cost model on the CPU (or on a device given a model by
    :func:`set_device_machine`); at inference, strategies whose estimates are
    within :data:`NEAR_TIE_BAND` of the best are timed once against each other
    (:func:`_inference_plan`). Elsewhere, or with :func:`set_autotune` on, it
    times the candidates once per batch bucket on ``device`` (:func:`_autotune_plan`).
    A training plan is the cost model's alone on the CPU, so a run's arithmetic
    does not depend on a timing.
    """
    device = torch.device(device)
    key = (tuple(in_modes), tuple(out_modes), tuple(ranks), int(batch), dtype, bool(training), bool(input_grad))
    if strategy != "auto":
        return _cached_plan(*key, strategy, device.type)
    if not _priced_by_model(device.type):
        return _autotune_plan(*key, device)
    if training:
        return _cached_plan(*key, "auto", device.type)
    return _inference_plan(*key[:5], device)


@functools.lru_cache(maxsize=4096)
def _inference_plan(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], batch: int, dtype: torch.dtype,
    device: torch.device,
) -> ForwardPlan:
    """``auto``'s inference plan on a device the cost model prices: its pick, or, when other
    strategies' estimates are within :data:`NEAR_TIE_BAND` of it, the fastest of those by one
    timing per batch bucket (the estimates are not finer than that; measured misrankings of
    up to 1.2x sat inside it)."""
    modelled = _cached_plan(in_modes, out_modes, ranks, batch, dtype, False, False, "auto", device.type)
    costs = costmodel.strategy_costs(in_modes, out_modes, ranks, batch, _dtype_bytes(dtype), training=False,
                                     machine=_device_machines.get(device.type))
    candidates = costmodel.near_ties(costs)
    if ttmath.prod(in_modes) * ttmath.prod(out_modes) > AUTOTUNE_MAX_DENSE_ELEMENTS and "dense" in candidates:
        candidates.remove("dense")
    if len(candidates) <= 1:
        return modelled
    key = ("inference", in_modes, out_modes, ranks, _batch_bucket(batch), dtype, str(device))
    with _autotune_lock:
        plan = _autotune_cache.get(key)
        if plan is None:
            plan = _fastest_plan(candidates, costs, in_modes, out_modes, ranks, _batch_bucket(batch), dtype, device,
                                 False, False)
            _autotune_cache[key] = plan
    return plan


def _batch_bucket(batch: int) -> int:
    """The power of two at or above ``batch``: autotuning times one batch per bucket."""
    return 1 << max(0, math.ceil(math.log2(max(1, batch))))


def _random_layer(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], batch: int, dtype: torch.dtype,
    device: torch.device, training: bool, input_grad: bool,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Random ``(batch, N)`` inputs and cores of these shapes on ``device``, for timing."""
    full = ttmath.full_ranks(ranks)
    cores = [
        torch.randn(full[k], n, m, full[k + 1], dtype=dtype, device=device, requires_grad=training)
        for k, (n, m) in enumerate(zip(in_modes, out_modes))
    ]
    inputs = torch.randn(batch, ttmath.prod(in_modes), dtype=dtype, device=device, requires_grad=training and input_grad)
    return inputs, cores


def _autotune_plan(
    in_modes: tuple[int, ...],
    out_modes: tuple[int, ...],
    ranks: tuple[int, ...],
    batch: int,
    dtype: torch.dtype,
    training: bool,
    input_grad: bool,
    device: torch.device = torch.device("cpu"),
) -> ForwardPlan:
    """Time each plausible strategy once on random tensors on ``device`` and keep the fastest.

    On the CPU the candidates are the strategies the cost model estimates within
    4x of its best; elsewhere every strategy (the tables describe a CPU). The
    dense one only runs when ``W`` has at most :data:`AUTOTUNE_MAX_DENSE_ELEMENTS`
    elements. They are timed round-robin (:func:`fastest_by_timing`; forward,
    plus backward when training).
    """
    bucket = _batch_bucket(batch)
    key = ("plan", in_modes, out_modes, ranks, bucket, dtype, training, input_grad, str(device))
    with _autotune_lock:
        plan = _autotune_cache.get(key)
        if plan is None:
            plan = _autotune_uncached(in_modes, out_modes, ranks, bucket, dtype, training, input_grad, device)
            _autotune_cache[key] = plan
    return plan


def _autotune_uncached(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], bucket: int, dtype: torch.dtype,
    training: bool, input_grad: bool, device: torch.device,
) -> ForwardPlan:
    """:func:`_autotune_plan` without its cache: pick the candidates and time them."""
    costs = costmodel.strategy_costs(
        in_modes, out_modes, ranks, bucket, _dtype_bytes(dtype), training=training, input_grad=input_grad,
        machine=_device_machines.get(device.type),
    )
    best_estimate = min(cost["seconds"] for cost in costs.values())
    if device.type == "cpu":
        candidates = [name for name in costs if costs[name]["seconds"] <= 4 * best_estimate]
    else:
        candidates = list(costs)
    if ttmath.prod(in_modes) * ttmath.prod(out_modes) > AUTOTUNE_MAX_DENSE_ELEMENTS and "dense" in candidates:
        candidates.remove("dense")
    if not candidates:
        candidates = [costmodel.best_strategy(costs)]
    return _fastest_plan(candidates, costs, in_modes, out_modes, ranks, bucket, dtype, device, training, input_grad)


def _fastest_plan(
    candidates: Sequence[str], costs: dict[str, dict], in_modes: tuple[int, ...], out_modes: tuple[int, ...],
    ranks: tuple[int, ...], batch: int, dtype: torch.dtype, device: torch.device, training: bool, input_grad: bool,
) -> ForwardPlan:
    """The plan of the fastest of ``candidates``, timed on random tensors on ``device`` (:func:`fastest_by_timing`)."""
    inputs, cores = _random_layer(in_modes, out_modes, ranks, batch, dtype, device, training, input_grad)
    plans = {name: make_plan(name, costs, in_modes, out_modes, ranks, "timing") for name in candidates}
    return plans[fastest_by_timing({name: _plan_runner(plan, inputs, cores, training) for name, plan in plans.items()},
                                   device)]


def fastest_by_timing(runners: dict[str, "Callable[[], object]"], device: torch.device, rounds: int = TIMING_ROUNDS) -> str:
    """The name of the fastest runner: each runs once untimed, then ``rounds`` times round-robin (so load
    from other processes hits all alike); the best time of each counts."""
    for run in runners.values():
        run()
    best = {name: math.inf for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            best[name] = min(best[name], timed_seconds(run, device))
    return min(best, key=best.get)


def _plan_runner(plan: ForwardPlan, inputs: torch.Tensor, cores: Sequence[torch.Tensor], training: bool):
    """A function running one forward of ``plan`` (+ backward when ``training``)."""

    def run() -> None:
        with torch.set_grad_enabled(training):
            output = plan.run(inputs, cores, None)
            if training:
                output.sum().backward()

    return run


# ---------------------------------------------------------------------------- a stored W at inference
def stored_weight_pays(
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: Sequence[int],
    batch: int,
    dtype: torch.dtype = torch.float32,
    device: "torch.device | str" = "cpu",
) -> bool:
    """Whether an inference forward of ``batch`` rows is faster with a stored ``W`` than with ``auto``'s plan.

    Never when ``W`` is over the budget of :func:`set_stored_weight_budget`. On a
    device the cost model prices (:func:`plan_forward`): yes when one
    ``(B, N) @ (N, M)`` GEMM (:func:`ttexplore.costmodel.stored_weight_costs`)
    is estimated :data:`NEAR_TIE_BAND` times faster than the best strategy, no
    when :data:`NEAR_TIE_BAND` times slower, and in between (at batch 1 the
    estimates err by up to 1.6x either way) the faster of the two by one timing
    per batch bucket. Elsewhere always by that timing. Rebuilding ``W`` is not
    charged: the layer rebuilds it once and reuses it while its cores are
    unchanged. Cached.

    Complexity of the answer: ``O(1)`` after the first call per shape.
    """
    device = torch.device(device)
    in_modes, out_modes, ranks = tuple(in_modes), tuple(out_modes), tuple(ranks)
    weight_bytes = ttmath.prod(in_modes) * ttmath.prod(out_modes) * _dtype_bytes(dtype)
    if weight_bytes > _stored_weight_budget:
        return False
    if _priced_by_model(device.type):
        verdict = _modelled_stored_weight_verdict(in_modes, out_modes, ranks, int(batch), dtype, device.type)
        if verdict is not None:
            return verdict
    return _timed_stored_weight_pays(in_modes, out_modes, ranks, int(batch), dtype, device)


@functools.lru_cache(maxsize=4096)
def _modelled_stored_weight_verdict(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], batch: int, dtype: torch.dtype,
    device_type: str,
) -> Optional[bool]:
    """The cost model's answer for :func:`stored_weight_pays`, ``None`` where its estimates are a near tie."""
    machine = _device_machines.get(device_type)
    costs = costmodel.strategy_costs(in_modes, out_modes, ranks, batch, _dtype_bytes(dtype), training=False, machine=machine)
    stored = costmodel.stored_weight_costs(
        ttmath.prod(in_modes), ttmath.prod(out_modes), batch, _dtype_bytes(dtype), machine=machine
    )
    ratio = stored["seconds"] / costs[costmodel.best_strategy(costs)]["seconds"]
    if ratio * NEAR_TIE_BAND <= 1.0:
        return True
    if ratio >= NEAR_TIE_BAND:
        return False
    return None


def _timed_stored_weight_pays(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], batch: int, dtype: torch.dtype,
    device: torch.device,
) -> bool:
    """Whether one timed GEMM with a random ``W`` beats ``auto``'s timed inference plan, once per batch bucket."""
    bucket = _batch_bucket(batch)
    key = ("stored", in_modes, out_modes, ranks, bucket, dtype, str(device))
    with _autotune_lock:
        answer = _autotune_cache.get(key)
        if answer is None:
            plan = plan_forward(in_modes, out_modes, ranks, bucket, dtype, False, False, "auto", device)
            inputs, cores = _random_layer(in_modes, out_modes, ranks, bucket, dtype, device, False, False)
            weight = torch.randn(ttmath.prod(out_modes), ttmath.prod(in_modes), dtype=dtype, device=device)
            with torch.no_grad():
                answer = fastest_by_timing({"stored": lambda: F.linear(inputs, weight),
                                            "plan": lambda: plan.run(inputs, cores, None)}, device) == "stored"
            _autotune_cache[key] = answer
    return answer


# ---------------------------------------------------------------------------- tracing (torch.compile, torch.export)
@torch.compiler.assume_constant_result
def traced_plan_spec(
    inputs: torch.Tensor,
    in_modes: tuple[int, ...],
    out_modes: tuple[int, ...],
    ranks: tuple[int, ...],
    training: bool,
    input_grad: bool,
    strategy: str,
) -> tuple:
    """The plan of :func:`plan_forward` for ``inputs`` (``(B, N)``) as plain values, fixed while
    ``torch.compile`` or ``torch.export`` traces.

    ``torch.compiler.assume_constant_result`` makes ``torch.compile`` call it
    once, with the real ``inputs`` it is tracing, and bake the answer into the
    graph, so neither the cost model nor opt_einsum is traced: a graph made
    dynamic in the batch keeps the plan of the batch it was traced with.
    ``torch.export`` calls it with a fake tensor; a symbolic batch there is
    planned as :data:`TRACED_DYNAMIC_BATCH`.

    Returns:
        ``(strategy, blocks, direction, orientations, einsum_steps)`` for :func:`run_plan_spec`.
    """
    batch = inputs.shape[0]
    batch = batch if isinstance(batch, int) else TRACED_DYNAMIC_BATCH
    plan = plan_forward(in_modes, out_modes, ranks, batch, inputs.dtype, training, input_grad, strategy, inputs.device)
    steps = einsum_steps(in_modes, out_modes, ranks, batch) if plan.strategy == "einsum" else ()
    return (plan.strategy, plan.blocks, plan.direction, plan.orientations, steps)


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
        inputs: ``(B, N)``, on the cores' device.
        cores: core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``.
        in_modes, out_modes, ranks: describe the cores (``ranks`` are the internal ones).
        strategy: one of :data:`STRATEGIES`.
        bias: optional ``(M,)``, added to every row.

    Returns:
        ``(B, M)``; an empty batch (``B = 0``) gives ``(0, M)`` without planning.

    Complexity: that of the plan's strategy (:func:`strategy_costs`).
    """
    if inputs.shape[0] == 0:
        return _empty_batch(inputs, cores, ttmath.prod(out_modes), bias)
    training = torch.is_grad_enabled() and (inputs.requires_grad or any(core.requires_grad for core in cores))
    input_grad = training and inputs.requires_grad
    if torch.compiler.is_compiling():
        spec = traced_plan_spec(inputs, tuple(in_modes), tuple(out_modes), tuple(ranks), training, input_grad, strategy)
        return run_plan_spec(spec, inputs, cores, tuple(in_modes), bias)
    device = inputs.device
    if not _allocator_primed and device.type == "cpu":
        prime_allocator()
    plan = plan_forward(in_modes, out_modes, ranks, inputs.shape[0], inputs.dtype, training, input_grad, strategy, device)
    return plan.run(inputs, cores, bias)
