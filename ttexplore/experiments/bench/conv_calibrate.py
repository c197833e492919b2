"""Measuring this machine's convolution speeds for the conv cost model (:class:`~ttexplore.costmodel.conv.ConvSpeeds`).

``python -m ttexplore bench --calibrate-conv`` runs :func:`calibrate_conv_speeds` and prints
the result as a JSON file (:func:`ttexplore.costmodel.conv.conv_speeds_json`); the shipped
default is ``ttexplore/costmodel/machines/conv_default.json``. The speeds of single steps
come from isolated calls (best of several, so background load biases them less); the
factor on the GEMM tables and the chunk budget are fitted to whole forwards of
:data:`FIT_LAYERS`.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ttexplore.costmodel import default_machine
from ttexplore.costmodel.conv import SWEEP_STRATEGIES, ConvSpeeds, conv_strategy_costs, default_conv_speeds
from ttexplore.experiments.bench.calibrate import best_seconds, three_digits
from ttexplore.experiments.bench.harness import machine_line
from ttexplore.nn import forward as tt_forward
from ttexplore.nn.conv_forward import ConvPlan, run_conv_plan
from ttexplore.nn.ttconv import TTConv2d

__all__ = ["calibrate_conv_speeds", "FIT_LAYERS", "CHUNK_BUDGETS"]

#: Layers whose whole forwards fit the GEMM factor and the chunk budget:
#: ``(in_modes, out_modes, rank, batch, image side)``, 3x3 kernels, padding 1.
FIT_LAYERS = (
    ((4, 8, 8), (4, 8, 8), 4, 16, 32),
    ((4, 8, 8), (4, 8, 8), 8, 8, 32),
    ((4, 4), (8, 8), 4, 16, 32),
    ((4, 8), (8, 8), 4, 32, 16),
)

#: Chunk budgets tried (bytes of the largest state of one chunk).
CHUNK_BUDGETS = tuple(1 << power for power in (20, 21, 22, 23, 24, 26))


def _best_seconds(function: Callable[[], object], repeats: int = 7, warmup: int = 2) -> float:
    """:func:`~ttexplore.experiments.bench.calibrate.best_seconds` under ``torch.no_grad``."""
    with torch.no_grad():
        return best_seconds(function, repeats, warmup)


def _dense_conv_flops() -> float:
    """FLOP/s of ``F.conv2d`` by dense kernels with many channels (compute-bound; the best of two sizes).
    The cost model adds a pass over input and output, which is what makes few-channel convolutions slower."""
    rates = []
    for batch, c_in, c_out, side in ((2, 256, 256, 32), (8, 64, 64, 32)):
        inputs, kernel = torch.randn(batch, c_in, side, side), torch.randn(c_out, c_in, 3, 3)
        seconds = _best_seconds(lambda: F.conv2d(inputs, kernel, padding=1), repeats=11)
        rates.append(2 * batch * side * side * c_out * c_in * 9 / seconds)
    return max(rates)


def _spatial_speeds() -> tuple[float, float]:
    """Bytes/s (read plus written) of the channels-first depthwise step and the spatial-first multiplier step:
    the best over three sizes (on a shared machine a whole timing can be disturbed; the best is the least)."""
    depthwise, multiplier = [], []
    for channels, rank, side in ((1024, 4, 32), (512, 8, 32), (256, 2, 16)):
        planes = torch.randn(1, channels, side, side)
        filters = torch.randn(channels, 1, 3, 3)
        seconds = _best_seconds(lambda: F.conv2d(planes, filters, padding=1, groups=channels), repeats=11)
        depthwise.append(2 * planes.numel() * 4 / seconds)
        inputs = torch.randn(1, channels // rank, side, side)
        spread = torch.randn(channels, 1, 3, 3)
        seconds = _best_seconds(lambda: F.conv2d(inputs, spread, padding=1, groups=channels // rank), repeats=11)
        multiplier.append((inputs.numel() + planes.numel()) * 4 / seconds)
    return max(depthwise), max(multiplier)


def _backward_factors() -> dict[str, float]:
    """Backward over forward time (both gradients) of ``F.conv2d`` by a dense kernel and of the two spatial
    steps, forward and forward + backward timed round-robin (best of 11 each)."""
    cases = {
        "dense_backward": (torch.randn(2, 64, 32, 32), torch.randn(64, 64, 3, 3), 1),
        "depthwise_backward": (torch.randn(1, 1024, 32, 32), torch.randn(1024, 1, 3, 3), 1024),
        "multiplier_backward": (torch.randn(1, 256, 32, 32), torch.randn(1024, 1, 3, 3), 256),
    }
    factors = {}
    for name, (inputs, weight, groups) in cases.items():
        inputs.requires_grad_(True)
        weight.requires_grad_(True)
        grad = torch.randn_like(F.conv2d(inputs.detach(), weight.detach(), padding=1, groups=groups))

        def forward_backward() -> None:
            with torch.enable_grad():
                inputs.grad = weight.grad = None
                F.conv2d(inputs, weight, padding=1, groups=groups).backward(grad)

        forward = best = math.inf
        for _ in range(11):
            forward = min(forward, _best_seconds(lambda: F.conv2d(inputs, weight, padding=1, groups=groups), 1, 1))
            best = min(best, _best_seconds(forward_backward, 1, 1))
        factors[name] = three_digits(max(0.5, (best - forward) / forward))
    return factors


def _stream_bytes() -> float:
    """Bytes/s (read plus written) of elementwise passes: the median of the best timings of the sum over ``r_0``,
    a bias, im2col's stack and a copy."""
    planes = torch.randn(4, 256, 32, 32)
    bias = torch.randn(1, 256, 1, 1)
    padded = F.pad(torch.randn(1, 256, 32, 32), (1, 1, 1, 1))
    rates = [
        5 * planes[0].numel() * 4 / _best_seconds(lambda: planes.sum(0), repeats=11),
        2 * planes.numel() * 4 / _best_seconds(lambda: planes + bias, repeats=11),
        2 * 9 * 256 * 1024 * 4 / _best_seconds(lambda: torch.stack(
            [padded[:, :, x:x + 32, y:y + 32] for x in range(3) for y in range(3)], 1), repeats=11),
        2 * planes.numel() * 4 / _best_seconds(lambda: planes.clone(), repeats=11),
    ]
    return statistics.median(rates)


def _forward_times(speeds: ConvSpeeds, repeats: int = 7) -> list[tuple[float, float, float]]:
    """``(measured, estimated GEMM, estimated other)`` seconds per image of every sweep strategy on every
    :data:`FIT_LAYERS` layer, each run on one chunk of images as ``speeds`` plans it (its direction and
    chunk); the GEMM part is priced with factor 1.

    One chunk, not the layer's whole batch: a run of a few milliseconds finds the quiet moments a
    best-of-several timing needs on a shared machine, as the single steps' timings do, so the fitted
    factor is not inflated by load that a 100 ms run can not escape.
    """
    unit = dataclasses.replace(speeds, gemm_scale=1.0)
    without_gemms = dataclasses.replace(speeds, gemm_scale=0.0)
    samples = []
    for in_modes, out_modes, rank, batch, side in FIT_LAYERS:
        layer = TTConv2d(in_modes, out_modes, rank, 3, padding=1)
        planned = conv_strategy_costs(in_modes, out_modes, (3, 3), layer.ranks, batch, side, side, (1, 1), (1, 1), True,
                                      4, speeds=unit)
        for name in SWEEP_STRATEGIES:
            chunk = planned[name]["chunk"]
            arguments = (in_modes, out_modes, (3, 3), layer.ranks, chunk, side, side, (1, 1), (1, 1), True, 4)
            costs, rest = conv_strategy_costs(*arguments, speeds=unit), conv_strategy_costs(*arguments, speeds=without_gemms)
            inputs = torch.randn(chunk, layer.in_channels, side, side)
            plan = ConvPlan(name, planned[name]["direction"], chunk, "calibration")
            seconds = _best_seconds(lambda: run_conv_plan(plan, inputs, list(layer.cores), layer.conv_shape, layer.bias),
                                    repeats=repeats)
            other = rest[name]["forward_seconds"]
            samples.append((seconds / chunk, (costs[name]["forward_seconds"] - other) / chunk, other / chunk))
    return samples


def _gemm_scale(speeds: ConvSpeeds) -> float:
    """The factor on the GEMM tables that makes the whole sweep forwards' estimates right, in the median:
    the median over forwards of ``(measured - other) / gemm`` (:func:`_forward_times`), at least 0.5."""
    ratios = [(seconds - other) / gemm for seconds, gemm, other in _forward_times(speeds) if gemm > 0]
    return max(0.5, statistics.median(ratios)) if ratios else 1.0


def _chunk_budget(speeds: ConvSpeeds) -> int:
    """The budget of :data:`CHUNK_BUDGETS` whose forwards took the least time in all."""
    totals = {}
    for budget in CHUNK_BUDGETS:
        totals[budget] = sum(sample[0] for sample in _forward_times(dataclasses.replace(speeds, chunk_bytes=budget), 3))
    return min(totals, key=totals.get)


def calibrate_conv_speeds(threads: Optional[int] = None) -> ConvSpeeds:
    """Measure the speeds :class:`ConvSpeeds` holds on this machine (about a minute on two cores).

    Single steps from isolated calls; then the chunk budget (whole forwards at every budget
    of :data:`CHUNK_BUDGETS`) and the factor on the machine's GEMM tables (:func:`_gemm_scale`).
    """
    if threads:
        torch.set_num_threads(threads)
    tt_forward.prime_allocator()
    tiny_planes, tiny_filter = torch.randn(1, 1, 4, 4), torch.randn(1, 1, 3, 3)
    depthwise, multiplier = _spatial_speeds()
    measured = ConvSpeeds(
        description="calibrating",
        dense_conv_flops=three_digits(_dense_conv_flops()),
        depthwise_bytes=three_digits(depthwise),
        multiplier_bytes=three_digits(multiplier),
        stream_bytes=three_digits(_stream_bytes()),
        conv_call_s=three_digits(_best_seconds(lambda: F.conv2d(tiny_planes, tiny_filter), repeats=50)),
        stream_call_s=three_digits(_best_seconds(lambda: tiny_planes + 1.0, repeats=50)),
        gemm_scale=1.0,
        chunk_bytes=default_conv_speeds().chunk_bytes,
        **_backward_factors(),
    )
    measured = dataclasses.replace(measured, chunk_bytes=_chunk_budget(measured))
    measured = dataclasses.replace(measured, gemm_scale=three_digits(_gemm_scale(measured)))
    return dataclasses.replace(measured, description=f"{machine_line()}; GEMM tables: {default_machine().description[:40]}"
                                                     f"...; measured by ttexplore.experiments.bench.calibrate_conv_speeds")
