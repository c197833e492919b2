"""Forward strategies of the TT convolution, and how ``"auto"`` picks one.

Strategies (all give the same result, forward and backward; the kernels are in
:mod:`ttexplore.nn.conv_kernels`):

* ``"channels"``: channels first (Garipov et al.'s order): each pixel's channels go
  through the channel cores (a column sweep keeping ``r_0``), then the spatial core
  filters the ``r_0 C_out`` planes (a depthwise ``kh x kw`` convolution, with the stride
  and padding; the bias rides along) and the ``r_0`` results are summed.
* ``"spatial"``: spatial core first: every input plane is filtered by the ``r_0`` spatial
  filters (a depthwise convolution with channel multiplier ``r_0``), then the channel sweep
  contracts ``r_0`` and the channels, on the output pixels only.
* ``"im2col"``: the im2col matrix (kernel position major), then the TT-matrix of all
  ``d + 1`` cores over its ``kh*kw*C_in`` rows (its first step is the spatial core).
* ``"dense"``: rebuild the ``(C_out, C_in, kh, kw)`` kernel, one ``F.conv2d``.
* ``"auto"``: on the CPU, the strategy the cost model
  (:func:`ttexplore.costmodel.conv.conv_strategy_costs`) estimates fastest, forward
  only or forward plus backward when autograd will need a backward; on other devices
  (the tables describe one CPU) the fastest by one timing per shape.

The sweep strategies run the batch in chunks of images small enough for their states
to stay in cache (``chunk`` in the costs) and sweep in the direction the model prices
cheaper. Each decision is cached per (layer shape, batch, image size, dtype, device,
training). At inference ``auto`` may also convolve by a stored kernel
(:func:`stored_kernel_pays`), rebuilt once and kept by the layer while its cores are
unchanged. Under ``torch.compile`` and ``torch.export`` the plan is fixed at trace time
(:func:`traced_conv_plan`) and the batch runs as one chunk.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from ttexplore.costmodel import conv as conv_costs
from ttexplore.nn import forward as tt_forward
from ttexplore.nn.conv_kernels import channels_first, dense_conv, im2col_sweep, rebuild_kernel, spatial_first
from ttexplore.tt.convshape import conv_output_size

__all__ = [
    "CONV_STRATEGIES",
    "CONCRETE_CONV_STRATEGIES",
    "ConvPlan",
    "check_conv_strategy",
    "layer_shape",
    "conv_costs_for",
    "plan_conv",
    "set_conv_speeds",
    "set_stored_kernel_budget",
    "stored_kernel_pays",
    "clear_conv_caches",
    "conv_decisions_generation",
    "traced_conv_plan",
    "run_conv_plan",
    "tt_conv2d",
]

CONV_STRATEGIES = conv_costs.CONV_STRATEGIES
CONCRETE_CONV_STRATEGIES = conv_costs.CONCRETE_CONV_STRATEGIES

#: Default of :func:`set_stored_kernel_budget`: the most bytes of kernel one layer keeps for inference.
STORED_KERNEL_BUDGET_BYTES = tt_forward.STORED_WEIGHT_BUDGET_BYTES

_speeds: Optional[conv_costs.ConvSpeeds] = None
_stored_kernel_budget = STORED_KERNEL_BUDGET_BYTES
_timing_lock = threading.RLock()
_timed: dict[tuple, object] = {}
_generation = 0
_allocator_primed = [False]  # whether this module primed glibc's allocator (a list: set without a global statement)

_BODIES = {"channels": channels_first, "spatial": spatial_first, "im2col": im2col_sweep}


@dataclass(frozen=True)
class ConvPlan:
    """A concrete way to compute one forward, chosen once and reused.

    Attributes:
        strategy: the concrete strategy.
        direction: ``"ltr"`` or ``"rtl"``, the sweep's direction (``""`` for ``dense``).
        chunk: images per chunk of a sweep strategy (0 for ``dense``).
        source: ``"fixed"`` (asked for by name), ``"model"`` or ``"timing"``.
    """

    strategy: str
    direction: str
    chunk: int
    source: str


def check_conv_strategy(strategy: object) -> None:
    """Raise a ``ValueError`` naming the choices when ``strategy`` is unknown."""
    if not isinstance(strategy, str) or strategy not in CONV_STRATEGIES:
        raise ValueError(f"strategy {strategy!r:.40} is unknown for a TT convolution: use one of "
                         f"{', '.join(CONV_STRATEGIES)}")


def set_conv_speeds(speeds: Optional[conv_costs.ConvSpeeds]) -> None:
    """Price convolution steps with ``speeds`` (``None``: the shipped defaults); cached plans are dropped."""
    global _speeds
    _speeds = speeds
    clear_conv_caches()


def set_stored_kernel_budget(max_bytes: int) -> None:
    """The most bytes of rebuilt kernel one layer may keep for inference (0: never keep one); drops cached plans."""
    global _stored_kernel_budget
    _stored_kernel_budget = max(0, int(max_bytes))
    clear_conv_caches()


def conv_decisions_generation() -> int:
    """A number that changes whenever cached decisions are dropped (:func:`clear_conv_caches`): layers that
    remember a :func:`stored_kernel_pays` answer forget it then."""
    return _generation


def clear_conv_caches() -> None:
    """Forget every cached convolution plan, stored-kernel decision and timing."""
    global _generation
    _generation += 1
    _cached_plan.cache_clear()
    _modelled_stored_kernel.cache_clear()
    with _timing_lock:
        _timed.clear()


def layer_shape(
    in_modes: Sequence[int], out_modes: Sequence[int], kernel_size: Sequence[int], stride: Sequence[int],
    padding: Sequence[int], ranks: Sequence[int],
) -> conv_costs.ConvLayerShape:
    """The cost model's description of a layer (all tuples of ints)."""
    return conv_costs.ConvLayerShape(tuple(map(int, in_modes)), tuple(map(int, out_modes)), tuple(map(int, kernel_size)),
                                     tuple(map(int, stride)), tuple(map(int, padding)), tuple(map(int, ranks)))


def conv_costs_for(
    shape: conv_costs.ConvLayerShape, batch: int, height: int, width: int, bias: bool, dtype: torch.dtype,
    training: bool = False, input_grad: bool = True,
) -> dict[str, dict]:
    """:func:`ttexplore.costmodel.conv.conv_strategy_costs` for a torch dtype, with the speeds in use."""
    return conv_costs.conv_strategy_costs(shape.in_modes, shape.out_modes, shape.kernel_size, shape.ranks, batch, height,
                                          width, shape.stride, shape.padding, bias, dtype.itemsize, training, input_grad,
                                          speeds=_speeds)


def _plan_of(name: str, costs: dict[str, dict], source: str) -> ConvPlan:
    entry = costs[name]
    return ConvPlan(name, entry.get("direction", ""), entry.get("chunk", 0), source)


@functools.lru_cache(maxsize=4096)
def _cached_plan(
    shape: conv_costs.ConvLayerShape, batch: int, height: int, width: int, bias: bool, dtype: torch.dtype,
    training: bool, input_grad: bool, strategy: str,
) -> ConvPlan:
    """The plan of a named strategy (its direction and chunk the model's), or ``auto``'s by the model."""
    costs = conv_costs_for(shape, batch, height, width, bias, dtype, training, input_grad)
    if strategy == "auto":
        return _plan_of(conv_costs.best_conv_strategy(costs), costs, "model")
    return _plan_of(strategy, costs, "fixed")


def plan_conv(
    shape: conv_costs.ConvLayerShape, batch: int, height: int, width: int, bias: bool = True,
    dtype: torch.dtype = torch.float32, training: bool = False, input_grad: bool = False, strategy: str = "auto",
    device: "torch.device | str" = "cpu",
) -> ConvPlan:
    """The cached plan :func:`tt_conv2d` runs for these shapes on ``device``.

    ``"auto"`` asks the cost model on the CPU; on other devices it times every strategy
    once per shape on that device (:func:`ttexplore.nn.forward.fastest_by_timing`).
    """
    device = torch.device(device)
    key = (shape, int(batch), int(height), int(width), bool(bias), dtype, bool(training), bool(input_grad))
    if strategy != "auto" or device.type == "cpu":
        return _cached_plan(*key, strategy)
    with _timing_lock:
        plan = _timed.get(("plan", *key, str(device)))
        if plan is None:
            plan = _timed_plan(*key, device)
            _timed[("plan", *key, str(device))] = plan
    return plan


def _random_operands(
    shape: conv_costs.ConvLayerShape, batch: int, height: int, width: int, dtype: torch.dtype, device: torch.device,
    requires_grad: bool,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    cores = [torch.randn(*core, dtype=dtype, device=device, requires_grad=requires_grad) for core in shape.core_shapes]
    inputs = torch.randn(batch, shape.in_channels, height, width, dtype=dtype, device=device,
                         requires_grad=requires_grad)
    return inputs, cores


def _timed_plan(
    shape: conv_costs.ConvLayerShape, batch: int, height: int, width: int, bias: bool, dtype: torch.dtype,
    training: bool, input_grad: bool, device: torch.device,
) -> ConvPlan:
    """The fastest strategy by one round-robin timing on random tensors on ``device``."""
    costs = conv_costs_for(shape, batch, height, width, bias, dtype, training, input_grad)
    inputs, cores = _random_operands(shape, batch, height, width, dtype, device, training)
    plans = {name: _plan_of(name, costs, "timing") for name in CONCRETE_CONV_STRATEGIES}

    def runner(plan: ConvPlan):
        def run() -> None:
            with torch.set_grad_enabled(training):
                output = run_conv_plan(plan, inputs, cores, shape, None)
                if training:
                    output.sum().backward()
        return run

    return plans[tt_forward.fastest_by_timing({name: runner(plan) for name, plan in plans.items()}, device)]


# ---------------------------------------------------------------------------- a stored kernel at inference
def stored_kernel_pays(
    shape: conv_costs.ConvLayerShape, batch: int, height: int, width: int, bias: bool = True,
    dtype: torch.dtype = torch.float32, device: "torch.device | str" = "cpu",
) -> bool:
    """Whether an inference forward is faster by a stored dense kernel than by ``auto``'s plan.

    Never when the kernel is over the budget (:func:`set_stored_kernel_budget`). On the CPU
    the cost model answers (:func:`ttexplore.costmodel.conv.stored_kernel_costs` against the
    best strategy; rebuilding the kernel is not charged, the layer does it once); elsewhere one
    timing per shape. Cached.
    """
    device = torch.device(device)
    kernel_bytes = shape.in_channels * shape.out_channels * shape.kernel_size[0] * shape.kernel_size[1] * dtype.itemsize
    if kernel_bytes > _stored_kernel_budget:
        return False
    key = (shape, int(batch), int(height), int(width), bool(bias), dtype)
    if device.type == "cpu":
        return _modelled_stored_kernel(*key)
    with _timing_lock:
        answer = _timed.get(("stored", *key, str(device)))
        if answer is None:
            plan = plan_conv(shape, batch, height, width, bias, dtype, False, False, "auto", device)
            inputs, cores = _random_operands(shape, batch, height, width, dtype, device, False)
            kernel = rebuild_kernel(cores, shape.kernel_size)
            with torch.no_grad():
                answer = tt_forward.fastest_by_timing({
                    "stored": lambda: dense_conv(inputs, kernel, None, shape.stride, shape.padding),
                    "plan": lambda: run_conv_plan(plan, inputs, cores, shape, None)}, device) == "stored"
            _timed[("stored", *key, str(device))] = answer
    return answer


@functools.lru_cache(maxsize=4096)
def _modelled_stored_kernel(
    shape: conv_costs.ConvLayerShape, batch: int, height: int, width: int, bias: bool, dtype: torch.dtype
) -> bool:
    costs = conv_costs_for(shape, batch, height, width, bias, dtype, False, False)
    out_h, out_w = conv_output_size(height, width, shape.kernel_size, shape.stride, shape.padding)
    stored = conv_costs.stored_kernel_costs(shape.in_channels, shape.out_channels, shape.kernel_size, batch, out_h, out_w,
                                            dtype.itemsize, speeds=_speeds, in_pixels=height * width)
    return stored["seconds"] < costs[conv_costs.best_conv_strategy(costs)]["seconds"]


# ---------------------------------------------------------------------------- running a plan
@torch.compiler.assume_constant_result
def traced_conv_plan(
    inputs: torch.Tensor, in_modes: tuple[int, ...], out_modes: tuple[int, ...], kernel_size: tuple[int, int],
    stride: tuple[int, int], padding: tuple[int, int], ranks: tuple[int, ...], bias: bool, training: bool,
    input_grad: bool, strategy: str,
) -> tuple[str, str]:
    """``(strategy, direction)`` of :func:`plan_conv` for ``inputs``, fixed while ``torch.compile`` or
    ``torch.export`` traces (called once with the real or fake inputs and baked into the graph; the
    layer travels as plain tuples). A symbolic batch is planned as
    :data:`ttexplore.nn.forward.TRACED_DYNAMIC_BATCH` images."""
    shape = layer_shape(in_modes, out_modes, kernel_size, stride, padding, ranks)
    batch, height, width = inputs.shape[0], inputs.shape[-2], inputs.shape[-1]
    batch = batch if isinstance(batch, int) else tt_forward.TRACED_DYNAMIC_BATCH
    plan = plan_conv(shape, batch, int(height), int(width), bias, inputs.dtype, training, input_grad, strategy,
                     inputs.device)
    return plan.strategy, plan.direction


def run_conv_plan(
    plan: ConvPlan, inputs: torch.Tensor, cores: Sequence[torch.Tensor], shape: conv_costs.ConvLayerShape,
    bias: Optional[torch.Tensor],
) -> torch.Tensor:
    """One forward of ``plan`` on ``(B, C_in, H, W)`` inputs; ``(B, C_out, H', W')`` back.

    A sweep strategy runs the batch in chunks of ``plan.chunk`` images (all at once for
    ``chunk`` 0) and joins them; each chunk gets the bias.

    Complexity: that of the plan's strategy (:func:`ttexplore.costmodel.conv.conv_strategy_costs`).
    """
    if plan.strategy == "dense":
        return dense_conv(inputs, rebuild_kernel(cores, shape.kernel_size), bias, shape.stride, shape.padding)
    body = _BODIES[plan.strategy]
    parts = inputs.split(plan.chunk) if 0 < plan.chunk < inputs.shape[0] else (inputs,)
    outputs = []
    for part in parts:
        outputs.append(body(part.contiguous(), cores, shape.kernel_size, shape.stride, shape.padding, plan.direction, bias))
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=0)


def _empty_batch(
    inputs: torch.Tensor, cores: Sequence[torch.Tensor], shape: conv_costs.ConvLayerShape,
    bias: Optional[torch.Tensor],
) -> torch.Tensor:
    """The ``(0, C_out, H', W')`` result of an empty batch, as ``nn.Conv2d`` gives it, connected to every
    operand (a backward gives them zero gradients) and planned by nobody."""
    out_h, out_w = conv_output_size(inputs.shape[-2], inputs.shape[-1], shape.kernel_size, shape.stride, shape.padding)
    anchor = inputs.sum() * 0
    for core in cores:
        anchor = anchor + core.sum() * 0
    output = anchor.to(inputs.dtype).expand(0, shape.out_channels, out_h, out_w)
    return output if bias is None else output + bias.reshape(1, -1, 1, 1)


def tt_conv2d(
    inputs: torch.Tensor,
    cores: Sequence[torch.Tensor],
    shape: conv_costs.ConvLayerShape,
    strategy: str = "auto",
    bias: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """The TT convolution of ``(B, C_in, H, W)`` inputs by the kernel of ``cores``; ``(B, C_out, H', W')`` back.

    Args:
        inputs: a batch of images, on the cores' device (``H'``, ``W'`` at least 1).
        cores: the spatial core ``(1, kh*kw, 1, r_0)`` and the ``d`` channel cores.
        shape: the layer (:func:`layer_shape`).
        strategy: one of :data:`CONV_STRATEGIES`.
        bias: optional ``(C_out,)``.

    Complexity: that of the plan's strategy.
    """
    if inputs.shape[0] == 0:
        return _empty_batch(inputs, cores, shape, bias)
    training = torch.is_grad_enabled() and (inputs.requires_grad or any(core.requires_grad for core in cores)
                                            or (bias is not None and bias.requires_grad))
    input_grad = training and inputs.requires_grad
    if torch.compiler.is_compiling():
        name, direction = traced_conv_plan(inputs, shape.in_modes, shape.out_modes, shape.kernel_size, shape.stride,
                                           shape.padding, shape.ranks, bias is not None, training, input_grad, strategy)
        return run_conv_plan(ConvPlan(name, direction, 0, "traced"), inputs, cores, shape, bias)
    if not _allocator_primed[0] and inputs.device.type == "cpu":
        # glibc returns freed blocks over its mmap threshold to the OS until one of 32 MiB was freed, and every
        # chunk's states would page-fault back in (see ttexplore.nn.forward.prime_allocator)
        tt_forward.prime_allocator()
        _allocator_primed[0] = True
    plan = plan_conv(shape, inputs.shape[0], inputs.shape[-2], inputs.shape[-1], bias is not None, inputs.dtype, training,
                     input_grad, strategy, inputs.device)
    return run_conv_plan(plan, inputs, cores, shape, bias)
