"""Forward strategies of the TT layer, and how ``"auto"`` picks one on each device.

Strategies (all give the same result, forward and backward):

* ``"ltr"``: core by core from the first core, one GEMM and one permuted copy
  each (:func:`ttexplore.nn.kernels.tt_matmul_ltr`).
* ``"rtl"``: core by core from the last core (:func:`ttexplore.nn.kernels.tt_matmul_rtl`).
* ``"blocked"``: merge blocks of adjacent cores first, then sweep over the
  blocks (:func:`ttexplore.nn.kernels.tt_matmul_blocked`), with a permuted copy
  after each GEMM (directions ``rtl``, ``ltr``) or with one batched GEMM per block
  and no copy of the state (``rtl-bmm``, ``ltr-bmm``:
  :func:`ttexplore.nn.kernels.tt_matmul_batched`); the blocks and the direction are
  the cost model's best (found by dynamic programming over block boundaries).
* ``"einsum"``: one contraction of the input and all cores in the order
  opt_einsum finds, planned once per shape and dtype and cached
  (:func:`einsum_expression`).
* ``"dense"``: rebuild ``W`` from the cores, then one GEMM.
* ``"auto"``: on the CPU, the strategy the cost model
  (:func:`ttexplore.costmodel.strategy_costs`: FLOPs, memory traffic and the
  measured speeds of ``machines/threads-<t>.json`` for the current torch thread
  count ``t``, forward only or forward plus
  backward when autograd will need a backward) estimates fastest; with
  :func:`set_autotune` on, and on every other device (CUDA, MPS: the tables
  describe one CPU), the candidates are timed once per shape on that device
  instead, unless :func:`set_device_machine` gave a model fitted there.

Each decision is cached per (modes, ranks, batch, dtype, device, training, torch
thread count), so a forward pays one dictionary lookup for its plan, and a change of
``torch.set_num_threads`` (the app's workers set theirs from
``TTEXPLORE_TORCH_THREADS``) gets the plans priced with that thread count's tables:
small GEMMs get slower with more threads while the GEMV of a stored ``W`` gets faster. At inference
(:func:`stored_weight_pays`) ``auto`` may also multiply by a stored ``W``
rebuilt once (:class:`ttexplore.nn.layers.TTLinear` keeps it while its cores
are unchanged); the cost model, or the timing, and a memory budget
(:func:`set_stored_weight_budget`) decide. Under ``torch.compile`` and
``torch.export`` the plan is fixed at trace time (:func:`traced_plan_spec`) and
the kernels take their plain, traceable path.
"""

from __future__ import annotations

import functools
import threading
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ttexplore import costmodel
from ttexplore.tt import ttmath
from ttexplore.nn.device import batch_bucket, fastest_by_timing, random_operands
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
    "tie_band",
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

#: Estimates within this factor of the best count as a near tie (the cost model's): at inference on
#: the CPU ``auto`` then times the tied candidates once (:func:`plan_forward`,
#: :func:`stored_weight_pays`), and the memory estimate prices the largest of them. Over the
#: benchmark's cases the estimates put the fastest strategy within 1.2x of the model's pick, and a
#: stored ``W`` (a batch-1 GEMV) within 1.6x of the TT forward it replaces.
NEAR_TIE_BAND = costmodel.NEAR_TIE_BAND

#: The near-tie band where the pricing table was measured at another thread count than the one
#: in use (no table for it: :func:`ttexplore.costmodel.default_machine` falls back to the
#: nearest below). Small GEMMs and copies get slower with more threads while large GEMMs and
#: a stored ``W``'s GEMV get up to twice as fast, so the estimates are only good to about
#: 2.5x there (the 1024 x 1024 GEMV: 167 us at 1 thread, 66 us at 2); wider ties are timed.
UNCALIBRATED_TIE_BAND = 3.0

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
    dtype, device, grad-enabled, torch thread count) combination, on random tensors of the same
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


def decisions_generation() -> tuple[int, int]:
    """A value that changes whenever cached decisions are dropped (:func:`clear_caches`) or the torch
    thread count changes: layers that remember a decision of :func:`stored_weight_pays` forget it
    then (a worker thread that sets its own thread count gets its own decisions)."""
    return _generation, torch.get_num_threads()


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
    threads: Optional[int] = None,
) -> dict[str, dict]:
    """:func:`ttexplore.costmodel.strategy_costs` for a torch dtype, priced with the device's model
    (:func:`set_device_machine`; on the CPU by default the tables of the benchmark machine at
    ``threads`` torch threads, ``torch.get_num_threads()`` when ``None``)."""
    return costmodel.strategy_costs(
        in_modes, out_modes, ranks, batch, _dtype_bytes(dtype), training=training, input_grad=input_grad,
        machine=_machine(device_type, torch.get_num_threads() if threads is None else threads),
    )


def _machine(device_type: str, threads: int) -> costmodel.MachineModel:
    """The model that prices strategies on ``device_type`` at ``threads`` torch threads: the one
    :func:`set_device_machine` gave, else the shipped table for that thread count."""
    machine = _device_machines.get(device_type)
    return machine if machine is not None else costmodel.default_machine(threads)


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
    threads: int = 1,
) -> ForwardPlan:
    """The plan of a named strategy, or ``auto``'s by the cost model, priced for ``device_type`` at
    ``threads`` torch threads.

    A named strategy's structure (``blocked``'s blocks, ``rtl``'s orientations) is the
    cost model's on every device.
    """
    costs = costmodel.strategy_costs(
        in_modes, out_modes, ranks, batch, _dtype_bytes(dtype), training=training, input_grad=input_grad,
        machine=_machine(device_type, threads),
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
    threads = torch.get_num_threads()
    key = (tuple(in_modes), tuple(out_modes), tuple(ranks), int(batch), dtype, bool(training), bool(input_grad))
    if strategy != "auto":
        return _cached_plan(*key, strategy, device.type, threads)
    if not _priced_by_model(device.type):
        return _autotune_plan(*key, device, threads)
    if training:
        return _cached_plan(*key, "auto", device.type, threads)
    return _inference_plan(*key[:5], device, threads)


def _near_ties(estimates: dict[str, float], band: float) -> list[str]:
    """The names whose estimated seconds are within ``band`` of the smallest."""
    best = min(estimates.values())
    return [name for name, seconds in estimates.items() if seconds <= band * best]


def tie_band(machine: costmodel.MachineModel, threads: int) -> float:
    """How far apart two estimates by ``machine`` at ``threads`` torch threads may be and still be timed against
    each other: :data:`NEAR_TIE_BAND` where the table was measured at that thread count (or is a device's own
    model), else :data:`UNCALIBRATED_TIE_BAND`."""
    calibrated = machine.threads in (0, threads) or any(machine is model for model in _device_machines.values())
    return NEAR_TIE_BAND if calibrated else UNCALIBRATED_TIE_BAND


@functools.lru_cache(maxsize=4096)
def _inference_plan(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], batch: int, dtype: torch.dtype,
    device: torch.device, threads: int,
) -> ForwardPlan:
    """``auto``'s inference plan on a device the cost model prices: its pick, or, when other
    strategies' estimates are within :func:`tie_band` of it (:data:`NEAR_TIE_BAND`, wider for a
    table of another thread count), the fastest of those by one timing per batch bucket and
    thread count (the estimates are not finer than that; measured misrankings of up to 1.2x sat
    inside it)."""
    modelled = _cached_plan(in_modes, out_modes, ranks, batch, dtype, False, False, "auto", device.type, threads)
    machine = _machine(device.type, threads)
    costs = costmodel.strategy_costs(in_modes, out_modes, ranks, batch, _dtype_bytes(dtype), training=False,
                                     machine=machine)
    candidates = _near_ties({name: cost["seconds"] for name, cost in costs.items()}, tie_band(machine, threads))
    if ttmath.prod(in_modes) * ttmath.prod(out_modes) > AUTOTUNE_MAX_DENSE_ELEMENTS and "dense" in candidates:
        candidates.remove("dense")
    if len(candidates) <= 1:
        return modelled
    key = ("inference", in_modes, out_modes, ranks, batch_bucket(batch), dtype, str(device), threads)
    with _autotune_lock:
        plan = _autotune_cache.get(key)
        if plan is None:
            plan = _fastest_plan(candidates, costs, in_modes, out_modes, ranks, batch_bucket(batch), dtype, device,
                                 False, False)
            _autotune_cache[key] = plan
    return plan


def _autotune_plan(
    in_modes: tuple[int, ...],
    out_modes: tuple[int, ...],
    ranks: tuple[int, ...],
    batch: int,
    dtype: torch.dtype,
    training: bool,
    input_grad: bool,
    device: torch.device = torch.device("cpu"),
    threads: int = 1,
) -> ForwardPlan:
    """Time each plausible strategy once on random tensors on ``device`` and keep the fastest
    (cached per batch bucket and torch thread count).

    On the CPU the candidates are the strategies the cost model estimates within
    4x of its best; elsewhere every strategy (the tables describe a CPU). The
    dense one only runs when ``W`` has at most :data:`AUTOTUNE_MAX_DENSE_ELEMENTS`
    elements. They are timed round-robin (:func:`fastest_by_timing`; forward,
    plus backward when training).
    """
    bucket = batch_bucket(batch)
    key = ("plan", in_modes, out_modes, ranks, bucket, dtype, training, input_grad, str(device), threads)
    with _autotune_lock:
        plan = _autotune_cache.get(key)
        if plan is None:
            plan = _autotune_uncached(in_modes, out_modes, ranks, bucket, dtype, training, input_grad, device, threads)
            _autotune_cache[key] = plan
    return plan


def _autotune_uncached(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], bucket: int, dtype: torch.dtype,
    training: bool, input_grad: bool, device: torch.device, threads: int,
) -> ForwardPlan:
    """:func:`_autotune_plan` without its cache: pick the candidates and time them."""
    costs = costmodel.strategy_costs(
        in_modes, out_modes, ranks, bucket, _dtype_bytes(dtype), training=training, input_grad=input_grad,
        machine=_machine(device.type, threads),
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
    inputs, cores = random_operands(in_modes, out_modes, ranks, batch, dtype, device, training, input_grad)
    plans = {name: make_plan(name, costs, in_modes, out_modes, ranks, "timing") for name in candidates}
    return plans[fastest_by_timing({name: _plan_runner(plan, inputs, cores, training) for name, plan in plans.items()},
                                   device)]


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
    is estimated :func:`tie_band` times faster than the best strategy, no
    when that many times slower, and in between (at batch 1 the
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
    threads = torch.get_num_threads()
    if _priced_by_model(device.type):
        verdict = _modelled_stored_weight_verdict(in_modes, out_modes, ranks, int(batch), dtype, device.type, threads)
        if verdict is not None:
            return verdict
    return _timed_stored_weight_pays(in_modes, out_modes, ranks, int(batch), dtype, device, threads)


@functools.lru_cache(maxsize=4096)
def _modelled_stored_weight_verdict(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], batch: int, dtype: torch.dtype,
    device_type: str, threads: int = 1,
) -> Optional[bool]:
    """The cost model's answer for :func:`stored_weight_pays` at ``threads`` torch threads, ``None`` where its
    estimates are a near tie."""
    machine = _machine(device_type, threads)
    costs = costmodel.strategy_costs(in_modes, out_modes, ranks, batch, _dtype_bytes(dtype), training=False, machine=machine)
    stored = costmodel.stored_weight_costs(
        ttmath.prod(in_modes), ttmath.prod(out_modes), batch, _dtype_bytes(dtype), machine=machine
    )
    ratio = stored["seconds"] / costs[costmodel.best_strategy(costs)]["seconds"]
    band = tie_band(machine, threads)
    if ratio * band <= 1.0:
        return True
    if ratio >= band:
        return False
    return None


def _timed_stored_weight_pays(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...], batch: int, dtype: torch.dtype,
    device: torch.device, threads: int = 1,
) -> bool:
    """Whether one timed GEMM with a random ``W`` beats ``auto``'s timed inference plan, once per batch bucket
    and torch thread count (the caller's: ``threads`` only keys the cache)."""
    bucket = batch_bucket(batch)
    key = ("stored", in_modes, out_modes, ranks, bucket, dtype, str(device), threads)
    with _autotune_lock:
        answer = _autotune_cache.get(key)
        if answer is None:
            plan = plan_forward(in_modes, out_modes, ranks, bucket, dtype, False, False, "auto", device)
            inputs, cores = random_operands(in_modes, out_modes, ranks, bucket, dtype, device, False, False)
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

    A chunked ``rtl-bmm`` plan runs on the whole batch at once while traced (a loop over a
    symbolic batch would not trace; the compiler lays out the states itself).

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
