"""The cost model of a TT convolution's forward strategies, in pure Python (no torch).

Each strategy of :mod:`ttexplore.nn.conv_forward` is listed as the operations it
performs, call for call, on one chunk of images (:func:`conv_strategy_ops`); the
batched GEMMs of the column sweeps are ``("gemm", ...)`` operations priced by the
machine's GEMM tables (:func:`ttexplore.costmodel.estimate.evaluate_ops`, the same
:class:`~ttexplore.costmodel.machine.MachineModel` the TT-matrix strategies use), and
the convolution-only steps by the speeds of :class:`ConvSpeeds` (measured with
``python -m ttexplore bench --calibrate-conv``; shipped as ``machines/conv_default.json``):

* ``("dense_conv", flops, in_elements, out_elements)``: ``F.conv2d`` by a dense kernel;
* ``("spatial_conv", form, flops, in_elements, out_elements)``: the spatial core's
  small convolution, ``form`` ``"depthwise"`` (channels first) or ``"multiplier"`` (spatial first: a
  depthwise convolution with channel multiplier ``r_0``);
* ``("stream", what, read_elements, written_elements)``: an elementwise pass (the sum over
  ``r_0``, the bias, im2col's stacked copy, padding, the kernel's layout, joining chunks).

Strategies (see :func:`conv_strategy_costs`): ``channels``, ``spatial``, ``im2col``
(each with the sweep direction the model finds cheaper) and ``dense`` (rebuild the
kernel, one ``F.conv2d``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ttexplore.costmodel.estimate import evaluate_ops
from ttexplore.costmodel.machine import MachineModel, default_machine
from ttexplore.costmodel.ops import CoreShape, merge_ops
from ttexplore.tt.convshape import conv_core_shapes, conv_output_size, dense_conv_flops
from ttexplore.tt.ttmath import prod

__all__ = [
    "CONV_STRATEGIES",
    "CONCRETE_CONV_STRATEGIES",
    "SWEEP_STRATEGIES",
    "ConvSpeeds",
    "default_conv_speeds",
    "load_conv_speeds",
    "conv_speeds_json",
    "ConvLayerShape",
    "columns_sweep_ops",
    "conv_strategy_ops",
    "chunk_images",
    "conv_strategy_costs",
    "stored_kernel_costs",
    "best_conv_strategy",
]

#: Strategy names a ``TTConv2d`` accepts (``"auto"`` picks one of the concrete ones).
CONV_STRATEGIES = ("auto", "channels", "spatial", "im2col", "dense")

#: The strategies ``"auto"`` chooses among.
CONCRETE_CONV_STRATEGIES = CONV_STRATEGIES[1:]

#: The strategies that sweep the cores over the pixels (each in the cheaper direction), in chunks of images.
SWEEP_STRATEGIES = ("channels", "spatial", "im2col")

#: The default speeds' file, inside this package.
CONV_SPEEDS_RESOURCE = "machines/conv_default.json"


@dataclass(frozen=True)
class ConvSpeeds:
    """Measured speeds of the convolution-only steps on one machine (the GEMMs use a ``MachineModel``).

    Attributes:
        description: which machine, and how the numbers were taken.
        dense_conv_flops: float32 FLOP/s of ``F.conv2d`` by a dense kernel with many channels (its time is
            this plus one elementwise pass over its input and output).
        depthwise_bytes, multiplier_bytes: bytes/s (read plus written) of the spatial step of the
            channels-first (a depthwise ``conv2d``) and spatial-first (a depthwise ``conv2d`` with channel
            multiplier ``r_0``) strategies.
        stream_bytes: bytes/s (read plus written) of an elementwise pass.
        conv_call_s, stream_call_s: fixed cost of one convolution call, one elementwise pass.
        gemm_scale: factor on the machine's GEMM estimates for the sweeps' batched GEMMs.
        chunk_bytes: the sweeps run on chunks of images whose largest state takes at most
            this many bytes (at least one image a chunk), so the states stay in cache.
        dense_backward, depthwise_backward, multiplier_backward: backward over forward time of the
            dense convolution and of the two spatial steps, with the gradients of input and weight
            (the multiplier step's weight gradient is the slow one: about 4.5 forwards).
    """

    description: str
    dense_conv_flops: float
    depthwise_bytes: float
    multiplier_bytes: float
    stream_bytes: float
    conv_call_s: float
    stream_call_s: float
    gemm_scale: float
    chunk_bytes: int
    dense_backward: float = 2.0
    depthwise_backward: float = 2.0
    multiplier_backward: float = 2.0


def _speeds_from_dict(data: dict[str, Any]) -> ConvSpeeds:
    names = [field.name for field in dataclasses.fields(ConvSpeeds)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown conv speed field(s) {', '.join(unknown)}; known: {', '.join(names)}")
    try:
        return ConvSpeeds(**data)
    except TypeError as error:
        raise ValueError(f"incomplete conv speeds: {error}") from None


def load_conv_speeds(path: Union[str, Path]) -> ConvSpeeds:
    """Read a conv speeds file (as ``bench --calibrate-conv`` prints it)."""
    return _speeds_from_dict(json.loads(Path(path).read_text()))


@functools.lru_cache(maxsize=None)
def default_conv_speeds() -> ConvSpeeds:
    """The benchmark machine's conv speeds, read once from ``machines/conv_default.json``."""
    return _speeds_from_dict(json.loads(resources.files(__package__).joinpath(CONV_SPEEDS_RESOURCE).read_text()))


def conv_speeds_json(speeds: ConvSpeeds) -> str:
    """``speeds`` as a JSON file, one field per line."""
    return json.dumps(dataclasses.asdict(speeds), indent=2) + "\n"


@dataclass(frozen=True)
class ConvLayerShape:
    """A TT convolution's shape: channel modes, kernel, stride, padding and the ``d`` ranks in use
    ``(r_0, ..., r_{d-1})`` (already clipped)."""

    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    ranks: tuple[int, ...]

    @property
    def core_shapes(self) -> list[CoreShape]:
        """The ``d + 1`` core shapes, spatial core first."""
        return [tuple(shape) for shape in conv_core_shapes(self.in_modes, self.out_modes, self.kernel_size, self.ranks)]

    @property
    def in_channels(self) -> int:
        return prod(self.in_modes)

    @property
    def out_channels(self) -> int:
        return prod(self.out_modes)


# ------------------------------------------------------------------ operation lists
def columns_sweep_ops(
    shapes: Sequence[CoreShape], direction: str, input_rank: bool, groups: int, pixels: int, operand: str = "input"
) -> tuple[list[tuple], int]:
    """Operations of :func:`ttexplore.nn.conv_kernels.columns_sweep`, and its largest state (elements).

    Each step is one ``(m, k) @ (b, k, n)`` batched GEMM, listed as ``("gemm", m, k, b n, "core", operand)``
    (its FLOPs, ``2 b m k n``, are those torch counts for the ``bmm``).
    """
    ops: list[tuple] = []
    first_rank = shapes[0][0]
    in_modes = [shape[1] for shape in shapes]
    largest = groups * (first_rank if input_rank else 1) * prod(in_modes) * pixels
    if direction == "ltr":
        batches = groups
        for index, (rank_in, modes_in, modes_out, rank_out) in enumerate(shapes):
            if index == 0 and not input_rank:
                modes_out, rank_in = rank_in * modes_out, 1
            rest = prod(in_modes[index + 1:]) * pixels
            ops.append(("gemm", modes_out * rank_out, rank_in * modes_in, batches * rest, "core", operand))
            batches *= modes_out
            largest = max(largest, batches * rank_out * rest)
            operand = "state"
        return ops, largest
    lead = first_rank if input_rank else 1
    out_modes = [shape[2] for shape in shapes]
    for index in range(len(shapes) - 1, -1, -1):
        rank_in, modes_in, modes_out, rank_out = shapes[index]
        before = groups * lead * prod(in_modes[:index])
        rest = prod(out_modes[index + 1:]) * pixels
        if index == 0 and input_rank:
            ops.append(("gemm", modes_out, rank_in * modes_in * rank_out, groups * rest, "core", operand))
            size = groups * modes_out * rest
        else:
            ops.append(("gemm", rank_in * modes_out, modes_in * rank_out, before * rest, "core", operand))
            size = before * rank_in * modes_out * rest
        largest = max(largest, size)
        operand = "state"
    return ops, largest


def conv_strategy_ops(
    strategy: str, direction: str, layer: ConvLayerShape, groups: int, height: int, width: int, bias: bool
) -> tuple[list[tuple], int]:
    """Operations of one sweep strategy on a chunk of ``groups`` images, and its largest state (elements).

    Raises:
        ValueError: for a strategy that is not one of :data:`SWEEP_STRATEGIES`.
    """
    shapes = layer.core_shapes
    out_h, out_w = conv_output_size(height, width, layer.kernel_size, layer.stride, layer.padding)
    pixels, out_pixels = height * width, out_h * out_w
    kernel_area = prod(layer.kernel_size)
    rank_first = shapes[0][3]
    c_in, c_out = layer.in_channels, layer.out_channels
    if strategy == "channels":
        ops, largest = columns_sweep_ops(shapes[1:], direction, False, groups, pixels)
        planes = groups * rank_first * c_out
        ops.append(("spatial_conv", "depthwise", 2 * planes * out_pixels * kernel_area, planes * pixels,
                    planes * out_pixels))
        if rank_first > 1:
            ops.append(("stream", "sum", planes * out_pixels, groups * c_out * out_pixels))
    elif strategy == "spatial":
        planes = groups * rank_first * c_in
        ops = [("spatial_conv", "multiplier", 2 * planes * out_pixels * kernel_area, groups * c_in * pixels,
                planes * out_pixels), ("stream", "permute", planes * out_pixels, planes * out_pixels)]
        sweep, largest = columns_sweep_ops(shapes[1:], direction, True, groups, out_pixels, operand="state")
        ops += sweep
    elif strategy == "im2col":
        ops = []
        if any(layer.padding):
            padded = (height + 2 * layer.padding[0]) * (width + 2 * layer.padding[1])
            ops.append(("stream", "pad", groups * c_in * pixels, groups * c_in * padded))
        columns = groups * kernel_area * c_in * out_pixels
        ops.append(("stream", "im2col", columns, columns))
        sweep, largest = columns_sweep_ops(shapes, direction, False, groups, out_pixels, operand="input_copy")
        ops += sweep
    else:
        raise ValueError(f"strategy {strategy!r} is not a sweep strategy: use one of {', '.join(SWEEP_STRATEGIES)}")
    if bias and strategy != "channels":  # channels first adds it in its depthwise step
        ops.append(("stream", "bias", groups * c_out * out_pixels, groups * c_out * out_pixels))
    return ops, largest


def chunk_images(largest_per_image: int, batch: int, dtype_bytes: int, speeds: ConvSpeeds) -> int:
    """Images per chunk: as many as keep the largest state within ``speeds.chunk_bytes`` (1 to ``batch``)."""
    return max(1, min(int(batch), int(speeds.chunk_bytes) // max(1, largest_per_image * int(dtype_bytes))))


def _dense_ops(layer: ConvLayerShape, batch: int, pixels: int, out_pixels: int, dtype_bytes: int) -> list[tuple]:
    """Rebuilding the kernel (the merge of :func:`ttexplore.nn.kernels.tt_to_dense`, then its layout) and one
    ``F.conv2d`` (the bias rides along)."""
    kernel_elements = layer.out_channels * layer.in_channels * prod(layer.kernel_size)
    ops = merge_ops(layer.core_shapes, dtype_bytes)
    ops.append(("stream", "kernel_layout", kernel_elements, kernel_elements))
    flops = 2 * batch * out_pixels * kernel_elements
    ops.append(("dense_conv", flops, batch * layer.in_channels * pixels, batch * layer.out_channels * out_pixels))
    return ops


# ------------------------------------------------------------------ pricing
class _ConvPricer:
    """Prices operation lists of one setting (element size, input gradient, machine and conv speeds)."""

    def __init__(self, dtype_bytes: int, input_grad: bool, machine: MachineModel, speeds: ConvSpeeds) -> None:
        self.dtype_bytes, self.input_grad, self.machine, self.speeds = dtype_bytes, input_grad, machine, speeds

    def price(self, ops: Sequence[tuple]) -> dict:
        """FLOPs, memory and estimated seconds of ``ops`` (the keys of :func:`evaluate_ops`)."""
        speeds, element = self.speeds, self.dtype_bytes
        slowdown = self.machine.float64_slowdown if element >= 8 else 1.0
        total = {"flops": 0, "backward_flops": 0, "peak_bytes": 0, "saved_bytes": 0, "forward_seconds": 0.0,
                 "backward_seconds": 0.0}
        for op in ops:
            if op[0] in ("gemm", "copy", "merge_call"):
                part = evaluate_ops([op], element, self.input_grad, self.machine)
                scale = speeds.gemm_scale if op[0] == "gemm" else 1.0
                part["forward_seconds"] *= scale
                part["backward_seconds"] *= scale
            elif op[0] == "dense_conv":
                _, flops, in_elements, out_elements = op
                # compute at the measured rate, plus one pass over input and output (few channels: memory-bound)
                seconds = (speeds.conv_call_s + flops * slowdown / speeds.dense_conv_flops
                           + (in_elements + out_elements) * element / speeds.stream_bytes)
                part = {"flops": flops, "backward_flops": flops * (1 + self.input_grad),
                        "peak_bytes": (in_elements + out_elements) * element, "saved_bytes": 0,
                        "forward_seconds": seconds,
                        "backward_seconds": seconds * (1 + self.input_grad) / 2 * speeds.dense_backward}
            elif op[0] == "spatial_conv":
                _, form, flops, in_elements, out_elements = op
                rate, backward = ((speeds.depthwise_bytes, speeds.depthwise_backward) if form == "depthwise"
                                  else (speeds.multiplier_bytes, speeds.multiplier_backward))
                seconds = speeds.conv_call_s + (in_elements + out_elements) * element * slowdown / rate
                input_grad = self.input_grad or form == "depthwise"  # the depthwise step's input is a state
                part = {"flops": flops, "backward_flops": flops * (1 + input_grad),
                        "peak_bytes": (in_elements + out_elements) * element,
                        "saved_bytes": in_elements * element if form == "depthwise" else 0,
                        "forward_seconds": seconds,
                        "backward_seconds": seconds * (1 + input_grad) / 2 * backward}
            elif op[0] == "stream":
                _, _, read, written = op
                seconds = speeds.stream_call_s + (read + written) * element / speeds.stream_bytes
                part = {"flops": 0, "backward_flops": 0, "peak_bytes": (read + written) * element, "saved_bytes": 0,
                        "forward_seconds": seconds, "backward_seconds": seconds}
            else:
                raise ValueError(f"unknown operation {op[0]!r}")
            for key in ("flops", "backward_flops", "saved_bytes", "forward_seconds", "backward_seconds"):
                total[key] += part[key]
            total["peak_bytes"] = max(total["peak_bytes"], part["peak_bytes"])
        return total


def _combined(parts: Sequence[tuple[dict, int]]) -> dict:
    """Costs of running each priced op list ``count`` times (peaks do not add; the rest does)."""
    total = {"flops": 0, "backward_flops": 0, "peak_bytes": 0, "saved_bytes": 0, "forward_seconds": 0.0,
             "backward_seconds": 0.0}
    for priced, count in parts:
        for key in ("flops", "backward_flops", "saved_bytes", "forward_seconds", "backward_seconds"):
            total[key] += priced[key] * count
        total["peak_bytes"] = max(total["peak_bytes"], priced["peak_bytes"])
    return total


def conv_strategy_costs(
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    kernel_size: Sequence[int],
    ranks: Sequence[int],
    batch: int,
    height: int,
    width: int,
    stride: Sequence[int] = (1, 1),
    padding: Sequence[int] = (0, 0),
    bias: bool = True,
    dtype_bytes: int = 4,
    training: bool = False,
    input_grad: bool = True,
    machine: Optional[MachineModel] = None,
    speeds: Optional[ConvSpeeds] = None,
) -> dict[str, dict]:
    """FLOPs, memory and estimated time of every concrete strategy of a TT convolution.

    Args:
        in_modes, out_modes, kernel_size, ranks: the layer (``ranks``: the ``d`` ranks in use).
        batch, height, width: the input's ``B`` and ``H x W``.
        stride, padding: ``(height, width)`` pairs.
        bias: whether a bias is added.
        dtype_bytes: 4 for float32, 8 for float64.
        training: rank by forward plus backward time instead of forward time.
        input_grad: whether the backward also computes the input's gradient.
        machine, speeds: the GEMM tables and conv speeds (default: the shipped ones).

    Returns:
        ``{strategy: costs}`` for ``channels``, ``spatial``, ``im2col`` and ``dense``; ``costs``
        has ``flops``/``backward_flops`` (multiply-adds counted twice, the GEMM and
        convolution steps only, as ``FlopCounterMode`` counts them), ``peak_bytes``,
        ``saved_bytes``, ``forward_seconds``/``backward_seconds``, ``seconds`` (the one
        ``training`` ranks by), ``plan`` (a short description); the sweep strategies also
        ``direction`` (``"ltr"``/``"rtl"``) and ``chunk`` (images per chunk).

    Complexity: ``O(d)`` per strategy and direction; cached.
    """
    layer = ConvLayerShape(tuple(map(int, in_modes)), tuple(map(int, out_modes)), tuple(map(int, kernel_size)),
                           tuple(map(int, stride)), tuple(map(int, padding)), tuple(map(int, ranks)))
    return _conv_strategy_costs(layer, int(batch), int(height), int(width), bool(bias), int(dtype_bytes),
                                bool(training), bool(input_grad), machine or default_machine(),
                                speeds or default_conv_speeds())


@functools.lru_cache(maxsize=1024)
def _conv_strategy_costs(
    layer: ConvLayerShape, batch: int, height: int, width: int, bias: bool, dtype_bytes: int, training: bool,
    input_grad: bool, machine: MachineModel, speeds: ConvSpeeds,
) -> dict[str, dict]:
    pricer = _ConvPricer(dtype_bytes, input_grad, machine, speeds)
    out_h, out_w = conv_output_size(height, width, layer.kernel_size, layer.stride, layer.padding)
    results: dict[str, dict] = {}
    for strategy in SWEEP_STRATEGIES:
        best = None
        for direction in ("ltr", "rtl"):
            _, per_image = conv_strategy_ops(strategy, direction, layer, 1, height, width, bias)
            chunk = chunk_images(per_image, batch, dtype_bytes, speeds)
            full, rest = divmod(batch, chunk)
            parts = [(pricer.price(conv_strategy_ops(strategy, direction, layer, chunk, height, width, bias)[0]), full)]
            if rest:
                parts.append((pricer.price(conv_strategy_ops(strategy, direction, layer, rest, height, width, bias)[0]), 1))
            if full + (rest > 0) > 1:
                outputs = batch * layer.out_channels * out_h * out_w
                parts.append((pricer.price([("stream", "cat", outputs, outputs)]), 1))
            costs = _combined(parts)
            costs["seconds"] = costs["forward_seconds"] + (costs["backward_seconds"] if training else 0.0)
            costs["direction"], costs["chunk"] = direction, chunk
            costs["plan"] = _PLAN_TEXT[strategy] + f", {direction}, {chunk} image{'s' if chunk > 1 else ''} a chunk"
            if best is None or costs["seconds"] < best["seconds"]:
                best = costs
        results[strategy] = best
    dense = pricer.price(_dense_ops(layer, batch, height * width, out_h * out_w, dtype_bytes))
    dense["seconds"] = dense["forward_seconds"] + (dense["backward_seconds"] if training else 0.0)
    dense["plan"] = _PLAN_TEXT["dense"]
    results["dense"] = dense
    return results


_PLAN_TEXT = {
    "channels": "channels first, then the spatial core (depthwise)",
    "spatial": "spatial core first (depthwise x r_0), then the channels",
    "im2col": "im2col, then all cores",
    "dense": "rebuild the kernel, one conv2d",
}


def stored_kernel_costs(
    in_channels: int, out_channels: int, kernel_size: Sequence[int], batch: int, out_height: int, out_width: int,
    dtype_bytes: int = 4, machine: Optional[MachineModel] = None, speeds: Optional[ConvSpeeds] = None,
    in_pixels: Optional[int] = None,
) -> dict:
    """Estimated cost of an inference forward by a stored dense kernel: one ``F.conv2d``, no rebuild.

    ``in_pixels`` is ``H W`` of the input (default ``H' W'``).

    Returns:
        The keys of :func:`conv_strategy_costs`' entries (``seconds`` = ``forward_seconds``) and
        ``weight_bytes``, what keeping the kernel costs in memory.
    """
    kernel_elements = int(in_channels) * int(out_channels) * prod(kernel_size)
    flops = dense_conv_flops(in_channels, out_channels, kernel_size, (out_height, out_width), batch)
    pricer = _ConvPricer(int(dtype_bytes), False, machine or default_machine(), speeds or default_conv_speeds())
    in_pixels = int(out_height) * int(out_width) if in_pixels is None else int(in_pixels)
    result = pricer.price([("dense_conv", flops, int(batch) * int(in_channels) * in_pixels,
                            int(batch) * int(out_channels) * int(out_height) * int(out_width))])
    result["seconds"] = result["forward_seconds"]
    result["weight_bytes"] = kernel_elements * int(dtype_bytes)
    return result


def best_conv_strategy(costs: dict[str, dict]) -> str:
    """The strategy with the smallest estimated ``seconds`` in a :func:`conv_strategy_costs` result."""
    return min(costs, key=lambda name: costs[name]["seconds"])
