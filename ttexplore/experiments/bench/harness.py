"""Timing the TT layer's strategies: the load monitor, interleaved timing, one case, child processes.

Every contender of a case runs in the same process, round-robin (so load on
the machine hits all alike), and each case runs in a fresh interpreter
(:func:`measure`) unless asked otherwise.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

import ttexplore
from ttexplore import costmodel
from ttexplore.nn import forward as tt_forward
from ttexplore.nn.device import resolve_device, synchronize
from ttexplore.tt import ttmath
from ttexplore.nn.layers import TTLinear
from ttexplore.experiments.bench.cases import CASES, GEMM_LIMIT_SIZE, TRAINING_RANKS, BenchCase

__all__ = [
    "CpuSnapshot",
    "cpu_snapshot",
    "foreign_load",
    "wait_for_quiet",
    "interleaved_times",
    "bench_case",
    "bench_training_step",
    "tltorch_layer",
    "describe_plan",
    "machine_line",
    "gemm_limit_gflops",
    "measure",
    "quietest",
    "child_main",
]

#: Fast cases repeat their rounds until this many seconds are spent (stable medians).
MIN_CASE_SECONDS = 2.0

#: Layers whose dense ``W`` is larger than this get fewer repeats of the dense strategy.
HUGE_DENSE_ELEMENTS = 1 << 25

#: Foreign load (fraction of the CPUs) above which a measurement is retried.
RETRY_LOAD = 0.15

#: Contenders that are not one of TTLinear's strategies: the dense layer, TensorLy-Torch's
#: ``FactorizedLinear`` (blocktt, when tltorch is installed) and ``torch.compile`` of the auto layer.
LINEAR, TLTORCH, COMPILED = "nn.Linear", "tltorch", "compiled"


# ---------------------------------------------------------------------------- machine load
@dataclass(frozen=True)
class CpuSnapshot:
    """CPU time spent so far, for :func:`foreign_load`."""

    busy_s: float  # CPU-seconds all processes spent busy since boot
    own_s: float  # CPU-seconds this process spent (all threads)
    wall_s: float


def cpu_snapshot() -> Optional[CpuSnapshot]:
    """Busy CPU time of the machine and of this process (Linux ``/proc/stat``), or ``None``."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(value) for value in handle.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = (sum(fields) - fields[3] - fields[4]) / ticks
    own = sum(os.times()[:2])
    return CpuSnapshot(busy, own, time.monotonic())


def foreign_load(before: Optional[CpuSnapshot], after: Optional[CpuSnapshot]) -> float:
    """Fraction of the machine's CPUs other processes kept busy between two snapshots (nan if unknown)."""
    if before is None or after is None or after.wall_s <= before.wall_s:
        return float("nan")
    others = (after.busy_s - before.busy_s) - (after.own_s - before.own_s)
    return max(0.0, others / ((after.wall_s - before.wall_s) * (os.cpu_count() or 1)))


def wait_for_quiet(max_wait_s: float, threshold: float = 0.15, window_s: float = 1.0) -> float:
    """Sleep until other processes use under ``threshold`` of the CPUs for ``window_s``.

    Gives up after ``max_wait_s``. Returns the load of the last window (nan when
    ``/proc/stat`` is not readable).
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        before = cpu_snapshot()
        time.sleep(window_s)
        load = foreign_load(before, cpu_snapshot())
        if not load >= threshold or time.monotonic() >= deadline:
            return load


def _minor_faults() -> int:
    """Minor page faults of this process so far (0 where ``resource`` is unavailable)."""
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def machine_line(device: str = "cpu") -> str:
    """One line naming this machine's CPU, its CPU count, torch's version and thread count (and the GPU,
    for a CUDA ``device``)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    line = f"{model}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if device.startswith("cuda") and torch.cuda.is_available():
        line += f"; {torch.cuda.get_device_name(resolve_device(device))}, CUDA {torch.version.cuda}"
    try:
        import tltorch

        line += f"; tltorch {tltorch.__version__}"
    except ImportError:
        line += "; tltorch not installed"
    return line


def gemm_limit_gflops(size: int = GEMM_LIMIT_SIZE, repeats: int = 7, device: "torch.device | str" = "cpu") -> float:
    """GFLOP/s of a ``(size, size) @ (size, size)`` float32 GEMM at the current thread count, the best of
    ``repeats`` runs: what BLAS reaches on this machine, the limit any forward's GFLOP/s is compared with.

    Complexity: ``2 size^3`` FLOPs per run.
    """
    device = torch.device(device)
    left = torch.randn(size, size, device=device)
    right = torch.randn(size, size, device=device)
    best = float("inf")
    for run in range(repeats + 1):
        start = time.perf_counter()
        torch.mm(left, right)
        if device.type != "cpu":
            synchronize(device)
        if run:  # the first run warms up
            best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


# ---------------------------------------------------------------------------- timing
def interleaved_times(
    candidates: dict[str, Callable[[], None]],
    repeats: int,
    warmup: int,
    slow: Sequence[str] = (),
    slow_repeats: int = 3,
    rewarm_below_s: float = 0.02,
    min_seconds: float = 0.0,
    max_rounds: int = 200,
) -> dict[str, list[float]]:
    """Wall-clock seconds of each candidate, run round-robin at least ``repeats`` times.

    Interleaving puts every candidate under the same background load; the order
    is shuffled each round (seeded). Within a round, a candidate faster than
    ``rewarm_below_s`` runs once untimed right before its timed run, so it is
    not charged for the caches the previous candidate (say, a 100 MB dense
    weight) evicted. ``slow`` candidates run only in the first ``slow_repeats``
    rounds. Rounds continue past ``repeats`` until ``min_seconds`` have been
    spent (at most ``max_rounds``), so fast cases get enough samples for a
    stable median.
    """
    for function in candidates.values():
        for _ in range(warmup):
            function()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    order = list(candidates)
    shuffler = random.Random(0)
    started = time.perf_counter()
    rounds = 0
    while rounds < repeats or (time.perf_counter() - started < min_seconds and rounds < max_rounds):
        rounds += 1
        shuffler.shuffle(order)  # no contender always follows the same one
        for name in order:
            function = candidates[name]
            if name in slow and rounds > slow_repeats:
                continue
            if not times[name] or times[name][-1] < rewarm_below_s:
                function()
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return times


def _forward_runner(module: nn.Module, inputs: torch.Tensor) -> Callable[[], None]:
    def run_forward() -> None:
        with torch.no_grad():
            module(inputs)
        if inputs.device.type != "cpu":  # the time includes the kernels queued on the device
            synchronize(inputs.device)

    return run_forward


def _train_runner(module: nn.Module, inputs: torch.Tensor, grad_output: torch.Tensor) -> Callable[[], None]:
    parameters = list(module.parameters())

    def run_forward_backward() -> None:
        inputs.grad = None
        for parameter in parameters:
            parameter.grad = None
        module(inputs).backward(grad_output)
        if inputs.device.type != "cpu":
            synchronize(inputs.device)

    return run_forward_backward


# ---------------------------------------------------------------------------- one case
def tltorch_layer(case: BenchCase) -> Optional[nn.Module]:
    """TensorLy-Torch's ``FactorizedLinear`` of the case's shape and rank (factorization ``blocktt``,
    its factorized forward), or ``None`` when tltorch is not installed."""
    try:
        import tltorch
    except ImportError:
        return None
    return tltorch.FactorizedLinear(tuple(case.in_modes), tuple(case.out_modes), bias=True, factorization="blocktt",
                                    rank=case.ranks, implementation="factorized")


def _case_contenders(case: BenchCase, skip_huge_dense: bool) -> tuple[dict[str, nn.Module], TTLinear]:
    """``nn.Linear``, one ``TTLinear`` per strategy (all with the same cores), tltorch's layer when
    installed, and the ``auto`` layer."""
    torch.manual_seed(0)
    layers = {}
    reference = TTLinear(case.in_modes, case.out_modes, case.ranks, bias=True)
    for strategy in tt_forward.CONCRETE_STRATEGIES + ("auto",):
        if strategy == "dense" and skip_huge_dense and case.in_features * case.out_features > HUGE_DENSE_ELEMENTS:
            continue
        layer = TTLinear(case.in_modes, case.out_modes, case.ranks, bias=True, strategy=strategy)
        layer.load_state_dict(reference.state_dict())
        layers[strategy] = layer
    contenders = {LINEAR: nn.Linear(case.in_features, case.out_features), **layers}
    factorized = tltorch_layer(case)
    if factorized is not None:
        contenders[TLTORCH] = factorized
    return contenders, layers["auto"]


def _compiled_runner(
    module: nn.Module, inputs: torch.Tensor, grad_output: torch.Tensor, training: bool
) -> tuple[Callable[[], None], float]:
    """A runner of ``torch.compile(module)`` (default inductor backend), and the seconds its first,
    compiling call took."""
    compiled = torch.compile(module)
    runner = (_train_runner(compiled, inputs, grad_output) if training else _forward_runner(compiled, inputs))
    started = time.perf_counter()
    runner()
    return runner, time.perf_counter() - started


def bench_case(
    case: BenchCase, mode: str, repeats: int, warmup: int = 2, skip_huge_dense: bool = False, compile_auto: bool = False,
    device: "torch.device | str" = "cpu",
) -> list[dict]:
    """Time every strategy, ``auto``, ``nn.Linear`` and tltorch's layer on one case, on ``device``; one row per contender.

    With ``compile_auto`` also ``torch.compile`` of the auto layer (contender
    ``compiled``; its cold compile time is the row's ``compile_s``). Off the
    CPU every timed call ends by waiting for the device.

    Returns:
        Rows with ``case, mode, batch, in_features, out_features, ranks,
        contender, median_ms, min_ms, runs, flops, gflops, speedup_vs_linear,
        model_ms, auto_choice`` (on the ``auto`` row), ``dense_flops_ratio``,
        ``foreign_load``, ``page_faults_per_call`` and ``compile_s``.
    """
    training = mode == "train"
    device = torch.device(device)
    contenders, auto = _case_contenders(case, skip_huge_dense)
    contenders = {name: module.to(device) for name, module in contenders.items()}
    inputs = torch.randn(case.batch, case.in_features, device=device, requires_grad=training)
    grad_output = torch.randn(case.batch, case.out_features, device=device)
    if training:
        runners = {name: _train_runner(module, inputs, grad_output) for name, module in contenders.items()}
    else:
        runners = {name: _forward_runner(module, inputs) for name, module in contenders.items()}
    compile_s = float("nan")
    if compile_auto:
        twin = TTLinear(case.in_modes, case.out_modes, case.ranks, bias=True).to(device)
        twin.load_state_dict(auto.state_dict())
        runners[COMPILED], compile_s = _compiled_runner(twin, inputs, grad_output, training)
    slow = [
        name for name in ("dense",) if name in runners and case.in_features * case.out_features > HUGE_DENSE_ELEMENTS
    ]
    before = cpu_snapshot()
    faults_before = _minor_faults()
    times = interleaved_times(runners, repeats, warmup, slow=slow, min_seconds=MIN_CASE_SECONDS)
    load = foreign_load(before, cpu_snapshot())
    calls = sum(len(samples) for samples in times.values())
    faults_per_call = (_minor_faults() - faults_before) / max(1, calls)
    costs = costmodel.strategy_costs(case.in_modes, case.out_modes, case.ranks, case.batch, training=training)
    plan = tt_forward.plan_forward(auto.in_modes, auto.out_modes, auto.ranks, case.batch, torch.float32, training, training,
                                   device=device)
    stored = not training and tt_forward.stored_weight_pays(auto.in_modes, auto.out_modes, auto.ranks, case.batch,
                                                            device=device)
    dense_flops = ttmath.dense_flops(case.in_features, case.out_features, case.batch)
    linear_ms = statistics.median(times[LINEAR]) * 1e3
    rows = []
    for name, samples in times.items():
        median_ms = statistics.median(samples) * 1e3
        q1_ms, q3_ms = _quartiles(samples)
        if name in (LINEAR, TLTORCH) or (name in ("auto", COMPILED) and stored):
            flops, model_ms = dense_flops * (3 if training else 1), float("nan")
            if name == TLTORCH:
                flops = costs["ltr"]["flops"] + (costs["ltr"]["backward_flops"] if training else 0)
        else:
            concrete = plan.strategy if name in ("auto", COMPILED) else name
            flops = costs[concrete]["flops"] + (costs[concrete]["backward_flops"] if training else 0)
            model_ms = costs[concrete]["seconds"] * 1e3
        rows.append(
            {
                "case": case.name,
                "mode": mode,
                "batch": case.batch,
                "in_features": case.in_features,
                "out_features": case.out_features,
                "ranks": case.ranks,
                "contender": name,
                "threads": torch.get_num_threads(),
                "median_ms": round(median_ms, 4),
                "q1_ms": round(q1_ms * 1e3, 4),
                "q3_ms": round(q3_ms * 1e3, 4),
                "min_ms": round(min(samples) * 1e3, 4),
                "runs": len(samples),
                "flops": flops,
                "gflops": round(flops / (median_ms * 1e-3) / 1e9, 2),
                "speedup_vs_linear": round(linear_ms / median_ms, 3),
                "model_ms": round(model_ms, 4),
                "auto_choice": (("stored W" if stored else describe_plan(plan)) if name == "auto" else ""),
                "dense_flops_ratio": round(costs[plan.strategy]["flops"] / dense_flops, 4),
                "foreign_load": round(load, 3),
                "page_faults_per_call": round(faults_per_call, 1),
                "compile_s": round(compile_s, 1) if name == COMPILED else float("nan"),
                # per round, the other contender's time over this one's (measured back to back, so under the
                # same load): the median and the spread of the speedups
                "over_linear_median": _ratio_median(times[LINEAR], samples),
                "over_linear_q1_q3": _ratio_quartiles(times[LINEAR], samples),
                "over_tltorch_median": _ratio_median(times[TLTORCH], samples) if TLTORCH in times else float("nan"),
                "over_tltorch_q1_q3": _ratio_quartiles(times[TLTORCH], samples) if TLTORCH in times else "",
            }
        )
    return rows


def _quartiles(samples: Sequence[float]) -> tuple[float, float]:
    """The first and third quartiles of ``samples`` (both the sample for a single one)."""
    if len(samples) < 2:
        return samples[0], samples[0]
    quartiles = statistics.quantiles(samples, n=4)
    return quartiles[0], quartiles[2]


def _ratio_median(other: Sequence[float], own: Sequence[float]) -> float:
    """The median over the rounds both ran in of ``other[i] / own[i]`` (nan when none)."""
    ratios = [a / b for a, b in zip(other, own)]
    return round(statistics.median(ratios), 3) if ratios else float("nan")


def _ratio_quartiles(other: Sequence[float], own: Sequence[float]) -> str:
    """``"q1-q3"`` of ``other[i] / own[i]`` over the rounds both ran in (interleaved, so each pair saw the same
    load): the spread of a speedup."""
    ratios = [a / b for a, b in zip(other, own)]
    if not ratios:
        return ""
    q1, q3 = _quartiles(ratios)
    return f"{q1:.2f}-{q3:.2f}"


def describe_plan(plan: tt_forward.ForwardPlan) -> str:
    """A short name of a forward plan: ``"rtl"``, ``"blocked 2+2 rtl"``, with ``cr..`` orientations if any are cols,
    ``"blocked 2+1+1+2 rtl-bmm 16 rows at a time"`` for a chunked batched sweep."""
    text = plan.strategy
    if plan.strategy == "blocked":
        text += f" {'+'.join(map(str, plan.blocks))} {plan.direction}"
        if plan.chunk:
            text += f" {plan.chunk} rows at a time"
    if "cols" in plan.orientations:
        text += " " + "".join(o[0] for o in plan.orientations)
    return text


# ---------------------------------------------------------------------------- training step
def _mnist_net(rank: Optional[int]) -> nn.Module:
    """The paper's MNIST net: 1024 -> (TT or dense) 1024 -> ReLU -> 10."""
    hidden: nn.Module
    if rank is None:
        hidden = nn.Linear(1024, 1024)
    else:
        hidden = TTLinear((4, 8, 8, 4), (4, 8, 8, 4), rank)
    return nn.Sequential(hidden, nn.ReLU(), nn.Linear(1024, 10))


def bench_training_step(
    repeats: int, batch: int = 128, ranks: Sequence[int] = TRAINING_RANKS, warmup: int = 3, device: "torch.device | str" = "cpu"
) -> list[dict]:
    """Median ms of one Adam step (zero grads, forward, cross-entropy, backward, step) on ``device``.

    The TT nets (one per rank) and the dense net run interleaved on the same
    random 32x32 "images" and labels.
    """
    torch.manual_seed(0)
    device = torch.device(device)
    images = torch.randn(batch, 1024, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)
    nets = {"dense": _mnist_net(None).to(device), **{f"tt-r{rank}": _mnist_net(rank).to(device) for rank in ranks}}
    runners = {}
    for name, net in nets.items():
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step(net=net, optimizer=optimizer) -> None:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(images), labels)
            loss.backward()
            optimizer.step()
            if device.type != "cpu":
                synchronize(device)

        runners[name] = step
    before = cpu_snapshot()
    times = interleaved_times(runners, repeats, warmup, min_seconds=MIN_CASE_SECONDS)
    load = foreign_load(before, cpu_snapshot())
    dense_ms = statistics.median(times["dense"]) * 1e3
    rows = []
    for name, samples in times.items():
        median_ms = statistics.median(samples) * 1e3
        net = nets[name]
        hidden = net[0]
        choice = ""
        if isinstance(hidden, TTLinear):
            plan = tt_forward.plan_forward(hidden.in_modes, hidden.out_modes, hidden.ranks, batch, torch.float32, True, False,
                                           device=device)
            choice = describe_plan(plan)
        rows.append(
            {
                "net": name,
                "threads": torch.get_num_threads(),
                "batch": batch,
                "parameters": sum(p.numel() for p in net.parameters()),
                "median_ms": round(median_ms, 4),
                "min_ms": round(min(samples) * 1e3, 4),
                "runs": len(samples),
                "dense_over_net": round(dense_ms / median_ms, 3),
                "auto_choice": choice,
                "foreign_load": round(load, 3),
            }
        )
    return rows


# ---------------------------------------------------------------------------- child processes
def measure(spec: dict, threads: int, autotune: bool, in_process: bool = False) -> list[dict]:
    """One case or the training-step benchmark, in a fresh interpreter unless ``in_process``.

    ``spec`` is ``{"kind": "case", "case": name, "mode": mode, "repeats": n,
    "skip_huge_dense": bool, "compile": bool, "device": name}`` or
    ``{"kind": "training", "repeats": n, "device": name}``.

    A long benchmark run leaves glibc's heap full of freed blocks of every size
    (the 25088x4096 cases allocate 400 MB matrices); later mid-size forwards then
    get a rotating set of cold addresses and ran up to 2x slower than in a
    process of their own (784->625 at batch 128: 1.34 ms against 0.6 ms), while
    ``nn.Linear``, with one small result, barely changed. Each measurement
    therefore runs in a new interpreter, as a user's program would.
    """
    spec = {**spec, "threads": threads, "autotune": autotune}
    if in_process:
        return _measure_here(spec)
    package_root = str(Path(ttexplore.__file__).resolve().parent.parent)
    environment = dict(os.environ)
    environment["PYTHONPATH"] = package_root + os.pathsep + environment.get("PYTHONPATH", "")
    completed = subprocess.run(
        [sys.executable, "-c", f"from {__name__} import child_main; child_main()"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child for {spec} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _measure_here(spec: dict) -> list[dict]:
    torch.set_num_threads(spec["threads"])
    tt_forward.set_autotune(spec["autotune"])
    device = resolve_device(spec.get("device", "cpu"))
    if device.type == "cpu":
        tt_forward.prime_allocator()  # before any contender runs, so nn.Linear sees the same allocator state
    if spec["kind"] == "training":
        return bench_training_step(spec["repeats"], device=device)
    case = next(case for case in CASES if case.name == spec["case"])
    rows = bench_case(case, spec["mode"], spec["repeats"], skip_huge_dense=spec["skip_huge_dense"],
                      compile_auto=spec.get("compile", False), device=device)
    limit = round(gemm_limit_gflops(device=device), 1)  # right after the case: the same threads, the same load
    return [{**row, "limit_gflops": limit} for row in rows]


def child_main() -> None:
    """Entry point of a benchmark child: a JSON spec on stdin, the JSON rows as the last stdout line."""
    spec = json.loads(sys.stdin.read())
    rows = _measure_here(spec)
    print(json.dumps(rows, default=float))


def quietest(measure_once: Callable[[], list[dict]], max_wait_s: float, retries: int) -> list[dict]:
    """Run ``measure_once`` (after waiting for a quiet machine), again while others disturbed it.

    Returns the rows of the attempt during which other processes used the least
    CPU (at most ``retries`` more attempts, each made when the last one's load
    was over :data:`RETRY_LOAD`); each row carries that attempt's ``foreign_load``.
    """
    best_rows: Optional[list[dict]] = None
    for _ in range(retries + 1):
        if max_wait_s > 0:
            wait_for_quiet(max_wait_s)
        rows = measure_once()
        load = max((row["foreign_load"] for row in rows), default=0.0)
        if best_rows is None or load < max(row["foreign_load"] for row in best_rows):
            best_rows = rows
        if not load > RETRY_LOAD:
            break
    return best_rows
