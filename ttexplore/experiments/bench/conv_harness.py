"""Timing TT convolutions: every strategy and ``auto`` against ``nn.Conv2d``, TensorLy-Torch and tednet.

Every contender of a case runs in the same process, round-robin in a shuffled order
(:func:`ttexplore.experiments.bench.harness.interleaved_times`), so load on the machine
hits all alike; ratios are also taken round by round (:func:`ratio_spread`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

import ttexplore
from ttexplore.experiments.bench.conv_cases import (CONV_CASES, CONV_DENSE, CONV_TEDNET, CONV_TLTORCH, ConvBenchCase,
                                                    ratio_spread)
from ttexplore.experiments.bench.harness import MIN_CASE_SECONDS, cpu_snapshot, foreign_load, interleaved_times
from ttexplore.nn import conv_forward
from ttexplore.nn.ttconv import TTConv2d

__all__ = ["tltorch_conv", "tednet_conv", "conv_contenders", "bench_conv_case", "measure_conv_case", "conv_child_main"]


def tltorch_conv(case: ConvBenchCase) -> Optional[nn.Module]:
    """TensorLy-Torch's ``FactorizedConv`` with ``factorization='tt'`` (TT of the 4-D kernel, ranks ``(1, r, r, r, 1)``,
    its factorized forward), or ``None`` when tltorch is not installed."""
    try:
        import tltorch
    except ImportError:
        return None
    return tltorch.FactorizedConv(case.in_channels, case.out_channels, case.kernel, order=2, padding=case.padding,
                                  bias=True, factorization="tt", rank=case.ranks, implementation="factorized")


def tednet_conv(case: ConvBenchCase) -> Optional[nn.Module]:
    """tednet's ``TTConv2D`` (the same Garipov format: a spatial ``Conv2d(1, r_0)`` then the channel cores), ranks
    ``r`` everywhere, or ``None`` when tednet is not installed. Its constructor prints a line; it is swallowed."""
    try:
        from tednet.tnn.tensor_train import TTConv2D
    except ImportError:
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        return TTConv2D(list(case.in_modes), list(case.out_modes), [case.ranks] * len(case.in_modes), case.kernel,
                        stride=1, padding=case.padding, bias=True)


def conv_contenders(case: ConvBenchCase) -> tuple[dict[str, nn.Module], TTConv2d]:
    """``nn.Conv2d``, one ``TTConv2d`` per strategy (same cores), tltorch's and tednet's layers when installed."""
    torch.manual_seed(0)
    reference = TTConv2d(case.in_modes, case.out_modes, case.ranks, case.kernel, padding=case.padding)
    layers = {}
    for strategy in conv_forward.CONCRETE_CONV_STRATEGIES + ("auto",):
        layer = TTConv2d(case.in_modes, case.out_modes, case.ranks, case.kernel, padding=case.padding, strategy=strategy)
        layer.load_state_dict(reference.state_dict())
        layers[strategy] = layer
    contenders: dict[str, nn.Module] = {CONV_DENSE: nn.Conv2d(case.in_channels, case.out_channels, case.kernel,
                                                              padding=case.padding), **layers}
    for name, make in ((CONV_TLTORCH, tltorch_conv), (CONV_TEDNET, tednet_conv)):
        module = make(case)
        if module is not None:
            contenders[name] = module
    return contenders, layers["auto"]


def _runner(module: nn.Module, inputs: torch.Tensor, grad_output: torch.Tensor, training: bool) -> Callable[[], None]:
    parameters = list(module.parameters())

    def run_forward() -> None:
        with torch.no_grad():
            module(inputs)

    def run_forward_backward() -> None:
        inputs.grad = None
        for parameter in parameters:
            parameter.grad = None
        module(inputs).backward(grad_output)

    return run_forward_backward if training else run_forward


def bench_conv_case(case: ConvBenchCase, mode: str, repeats: int, warmup: int = 2) -> list[dict]:
    """Time every contender on one case in one mode; one row per contender.

    Returns:
        Rows with ``case, mode, threads, batch, in_channels, out_channels, ranks, contender,
        median_ms, min_ms, p25_ms, p75_ms, runs, params`` (weights of the contender's kernel),
        ``flops`` (TT strategies: the cost model's; others: none), ``speedup_vs_conv`` with its
        per-round ``speedup_p25``/``speedup_p75``, on the ``auto`` row ``auto_choice`` and
        ``tltorch_over_auto`` (with p25/p75), and ``foreign_load``.
    """
    training = mode == "train"
    contenders, auto = conv_contenders(case)
    inputs = torch.randn(case.batch, case.in_channels, case.image, case.image, requires_grad=training)
    out_side = case.image  # stride 1, padding k // 2, odd k
    grad_output = torch.randn(case.batch, case.out_channels, out_side, out_side)
    runners = {name: _runner(module, inputs, grad_output, training) for name, module in contenders.items()}
    before = cpu_snapshot()
    times = interleaved_times(runners, repeats, warmup, min_seconds=MIN_CASE_SECONDS)
    load = foreign_load(before, cpu_snapshot())
    shape = auto.conv_shape
    costs = conv_forward.conv_costs_for(shape, case.batch, case.image, case.image, True, torch.float32, training, training)
    plan = conv_forward.plan_conv(shape, case.batch, case.image, case.image, True, torch.float32, training, training)
    stored = not training and conv_forward.stored_kernel_pays(shape, case.batch, case.image, case.image)
    choice = "stored kernel" if stored else f"{plan.strategy} {plan.direction}".strip()
    rows = []
    for name, samples in times.items():
        ordered = sorted(samples)
        quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
        low, middle, high = ratio_spread(samples, times[CONV_DENSE])
        concrete = plan.strategy if name == "auto" and not stored else name
        flops = costs[concrete]["flops"] + (costs[concrete]["backward_flops"] if training else 0) if concrete in costs else 0
        row = {
            "case": case.name, "mode": mode, "threads": torch.get_num_threads(), "batch": case.batch,
            "in_channels": case.in_channels, "out_channels": case.out_channels, "ranks": case.ranks, "contender": name,
            "median_ms": round(statistics.median(samples) * 1e3, 3), "min_ms": round(ordered[0] * 1e3, 3),
            "p25_ms": round(quartiles[0] * 1e3, 3), "p75_ms": round(quartiles[2] * 1e3, 3), "runs": len(samples),
            "params": sum(p.numel() for p in contenders[name].parameters()) - case.out_channels,
            "flops": flops, "speedup_vs_conv": round(middle, 3), "speedup_p25": round(low, 3),
            "speedup_p75": round(high, 3), "auto_choice": choice if name == "auto" else "",
            "model_ms": round(costs[concrete]["seconds"] * 1e3, 3) if concrete in costs else float("nan"),
            "foreign_load": round(load, 3),
            "tltorch_over_auto_p25": float("nan"), "tltorch_over_auto": float("nan"),
            "tltorch_over_auto_p75": float("nan"),
        }
        if name == "auto" and CONV_TLTORCH in times:
            row["tltorch_over_auto_p25"], row["tltorch_over_auto"], row["tltorch_over_auto_p75"] = (
                round(value, 3) for value in ratio_spread(samples, times[CONV_TLTORCH]))
        rows.append(row)
    return rows


def measure_conv_case(spec: dict, threads: int, in_process: bool = False) -> list[dict]:
    """One convolution case at ``threads`` torch threads, in a fresh interpreter unless ``in_process``
    (as :func:`ttexplore.experiments.bench.harness.measure` does for the fully-connected cases).

    ``spec`` is ``{"case": name, "mode": mode, "repeats": n}``.
    """
    spec = {**spec, "threads": threads}
    if in_process:
        return _measure_here(spec)
    package_root = str(Path(ttexplore.__file__).resolve().parent.parent)
    environment = dict(os.environ)
    environment["PYTHONPATH"] = package_root + os.pathsep + environment.get("PYTHONPATH", "")
    completed = subprocess.run([sys.executable, "-c", f"from {__name__} import conv_child_main; conv_child_main()"],
                               input=json.dumps(spec), capture_output=True, text=True, env=environment, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child for {spec} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _measure_here(spec: dict) -> list[dict]:
    torch.set_num_threads(spec["threads"])
    case = next(case for case in CONV_CASES if case.name == spec["case"])
    return bench_conv_case(case, spec["mode"], spec["repeats"])


def conv_child_main() -> None:
    """Entry point of a benchmark child: a JSON spec on stdin, the JSON rows as the last stdout line."""
    rows = _measure_here(json.loads(sys.stdin.read()))
    print(json.dumps(rows, default=float))
