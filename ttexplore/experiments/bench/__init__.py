"""Benchmarks of the TT layer's forward strategies against ``nn.Linear``.

``python -m ttexplore bench`` (or ``python benchmarks/run_bench.py``) times, for
each case, every concrete strategy, ``"auto"`` and the dense ``nn.Linear`` of the
same size in the same run (interleaved, so load on the machine hits all alike),
forward only and forward plus backward, and one Adam training step of the
paper's MNIST net against its dense twin. It writes ``bench.csv``,
``training.csv``, ``summary.md`` and a plotly figure (``bench.html`` and, when
kaleido can drive a browser, ``bench.png``) into ``--out``.

``--calibrate`` instead measures the speeds the cost model needs
(:class:`ttexplore.costmodel.MachineModel`) on this machine and prints them.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
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

from ttexplore.core import forward as tt_forward
from ttexplore import costmodel
from ttexplore.core.layout import permuted_copy_plan
from ttexplore.costmodel import ops as cost_ops
from ttexplore.costmodel.einsum import einsum_ops
from ttexplore.costmodel.estimate import evaluate_ops, forward_seconds_by_part
from ttexplore.core import ttmath
from ttexplore.core.layers import TTLinear

__all__ = [
    "BenchCase",
    "CASES",
    "CASE_GROUPS",
    "configure_parser",
    "run",
    "bench_case",
    "bench_training_step",
    "calibrate_machine",
    "machine_literal",
    "foreign_load",
    "wait_for_quiet",
]


@dataclass(frozen=True)
class BenchCase:
    """One layer size at one batch size."""

    name: str
    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]
    ranks: int
    batch: int

    @property
    def in_features(self) -> int:
        return ttmath.prod(self.in_modes)

    @property
    def out_features(self) -> int:
        return ttmath.prod(self.out_modes)


def _cases() -> tuple[BenchCase, ...]:
    cases = [
        BenchCase("paper-25088x4096-r4-b1", (2, 7, 8, 8, 7, 4), (4,) * 6, 4, 1),
        BenchCase("paper-25088x4096-r4-b100", (2, 7, 8, 8, 7, 4), (4,) * 6, 4, 100),
    ]
    for batch in (1, 128):
        for rank in (1, 2, 4, 8):
            cases.append(BenchCase(f"1024x1024-r{rank}-b{batch}", (4, 8, 8, 4), (4, 8, 8, 4), rank, batch))
        cases.append(BenchCase(f"784x625-r4-b{batch}", (4, 7, 4, 7), (5, 5, 5, 5), 4, batch))
        cases.append(BenchCase(f"4096x4096-r8-b{batch}", (8,) * 4, (8,) * 4, 8, batch))
    return tuple(cases)


#: Every benchmark case: the paper's 25088x4096 layer (Table 3) at batch 1 and
#: 100; 1024x1024 (4x8x8x4) at ranks 1, 2, 4, 8, 784 -> 625 and 4096x4096 (8^4,
#: r=8), each at batch 1 and 128.
CASES = _cases()

#: Names usable in ``--cases`` besides single case names.
CASE_GROUPS = {
    "all": [case.name for case in CASES],
    "paper": [case.name for case in CASES if case.name.startswith("paper")],
    "1024": [case.name for case in CASES if case.name.startswith("1024x1024")],
    "small": [case.name for case in CASES if not case.name.startswith(("paper", "4096"))],
}

#: Training-step ranks of the MNIST net's TT layer.
TRAINING_RANKS = (1, 2, 4, 8)

#: Modes: "forward" runs under ``torch.no_grad``; "train" is forward plus
#: backward with the input requiring a gradient (a hidden layer).
MODES = ("forward", "train")

#: Fast cases repeat their rounds until this many seconds are spent (stable medians).
MIN_CASE_SECONDS = 2.0

#: Layers whose dense ``W`` is larger than this get fewer repeats of the dense strategy.
HUGE_DENSE_ELEMENTS = 1 << 25


# ---------------------------------------------------------------------------- machine load
@dataclass(frozen=True)
class _CpuSnapshot:
    busy_s: float  # CPU-seconds all processes spent busy since boot
    own_s: float  # CPU-seconds this process spent (all threads)
    wall_s: float


def _cpu_snapshot() -> Optional[_CpuSnapshot]:
    """Busy CPU time of the machine and of this process (Linux ``/proc/stat``), or ``None``."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(value) for value in handle.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = (sum(fields) - fields[3] - fields[4]) / ticks
    own = sum(os.times()[:2])
    return _CpuSnapshot(busy, own, time.monotonic())


def foreign_load(before: Optional[_CpuSnapshot], after: Optional[_CpuSnapshot]) -> float:
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
        before = _cpu_snapshot()
        time.sleep(window_s)
        load = foreign_load(before, _cpu_snapshot())
        if not load >= threshold or time.monotonic() >= deadline:
            return load


# ---------------------------------------------------------------------------- timing
def _interleaved_times(
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

    return run_forward


def _train_runner(module: nn.Module, inputs: torch.Tensor, grad_output: torch.Tensor) -> Callable[[], None]:
    parameters = list(module.parameters())

    def run_forward_backward() -> None:
        inputs.grad = None
        for parameter in parameters:
            parameter.grad = None
        module(inputs).backward(grad_output)

    return run_forward_backward


# ---------------------------------------------------------------------------- one case
def bench_case(case: BenchCase, mode: str, repeats: int, warmup: int = 2, skip_huge_dense: bool = False) -> list[dict]:
    """Time every strategy, ``auto`` and ``nn.Linear`` on one case; one row per contender.

    Returns:
        Rows with ``case, mode, batch, in_features, out_features, ranks,
        contender, median_ms, min_ms, runs, flops, gflops, speedup_vs_linear,
        model_ms`` and, on the ``auto`` row, ``auto_choice``.
    """
    training = mode == "train"
    torch.manual_seed(0)
    layers = {}
    reference = TTLinear(case.in_modes, case.out_modes, case.ranks, bias=True)
    for strategy in tt_forward.CONCRETE_STRATEGIES + ("auto",):
        if strategy == "dense" and skip_huge_dense and case.in_features * case.out_features > HUGE_DENSE_ELEMENTS:
            continue
        layer = TTLinear(case.in_modes, case.out_modes, case.ranks, bias=True, strategy=strategy)
        layer.load_state_dict(reference.state_dict())
        layers[strategy] = layer
    linear = nn.Linear(case.in_features, case.out_features)
    inputs = torch.randn(case.batch, case.in_features, requires_grad=training)
    grad_output = torch.randn(case.batch, case.out_features)
    contenders: dict[str, nn.Module] = {"nn.Linear": linear, **layers}
    if training:
        runners = {name: _train_runner(module, inputs, grad_output) for name, module in contenders.items()}
    else:
        runners = {name: _forward_runner(module, inputs) for name, module in contenders.items()}
    slow = [
        name for name in ("dense",) if name in runners and case.in_features * case.out_features > HUGE_DENSE_ELEMENTS
    ]
    before = _cpu_snapshot()
    faults_before = _minor_faults()
    times = _interleaved_times(runners, repeats, warmup, slow=slow, min_seconds=MIN_CASE_SECONDS)
    load = foreign_load(before, _cpu_snapshot())
    calls = sum(len(samples) for samples in times.values())
    faults_per_call = (_minor_faults() - faults_before) / max(1, calls)
    costs = costmodel.strategy_costs(case.in_modes, case.out_modes, case.ranks, case.batch, training=training)
    plan = tt_forward.plan_forward(
        layers["auto"].in_modes, layers["auto"].out_modes, layers["auto"].ranks, case.batch, torch.float32,
        training, training,
    )
    dense_flops = ttmath.dense_flops(case.in_features, case.out_features, case.batch) * (3 if training else 1)
    linear_ms = statistics.median(times["nn.Linear"]) * 1e3
    rows = []
    for name, samples in times.items():
        median_ms = statistics.median(samples) * 1e3
        if name == "nn.Linear":
            flops, model_ms = dense_flops, float("nan")
        else:
            concrete = plan.strategy if name == "auto" else name
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
                "median_ms": round(median_ms, 4),
                "min_ms": round(min(samples) * 1e3, 4),
                "runs": len(samples),
                "flops": flops,
                "gflops": round(flops / (median_ms * 1e-3) / 1e9, 2),
                "speedup_vs_linear": round(linear_ms / median_ms, 3),
                "model_ms": round(model_ms, 4),
                "auto_choice": _describe_plan(plan) if name == "auto" else "",
                "dense_flops_ratio": round(costs[plan.strategy]["flops"] / ttmath.dense_flops(
                    case.in_features, case.out_features, case.batch), 4),
                "foreign_load": round(load, 3),
                "page_faults_per_call": round(faults_per_call, 1),
            }
        )
    return rows


def _minor_faults() -> int:
    """Minor page faults of this process so far (0 where ``resource`` is unavailable)."""
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _describe_plan(plan: tt_forward.ForwardPlan) -> str:
    text = plan.strategy
    if plan.strategy == "blocked":
        text += f" {'+'.join(map(str, plan.blocks))} {plan.direction}"
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


def bench_training_step(repeats: int, batch: int = 128, ranks: Sequence[int] = TRAINING_RANKS, warmup: int = 3) -> list[dict]:
    """Median ms of one Adam step (zero grads, forward, cross-entropy, backward, step).

    The TT nets (one per rank) and the dense net run interleaved on the same
    random 32x32 "images" and labels.
    """
    torch.manual_seed(0)
    images = torch.randn(batch, 1024)
    labels = torch.randint(0, 10, (batch,))
    nets = {"dense": _mnist_net(None), **{f"tt-r{rank}": _mnist_net(rank) for rank in ranks}}
    runners = {}
    for name, net in nets.items():
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step(net=net, optimizer=optimizer) -> None:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(images), labels)
            loss.backward()
            optimizer.step()

        runners[name] = step
    before = _cpu_snapshot()
    times = _interleaved_times(runners, repeats, warmup, min_seconds=MIN_CASE_SECONDS)
    load = foreign_load(before, _cpu_snapshot())
    dense_ms = statistics.median(times["dense"]) * 1e3
    rows = []
    for name, samples in times.items():
        median_ms = statistics.median(samples) * 1e3
        net = nets[name]
        hidden = net[0]
        choice = ""
        if isinstance(hidden, TTLinear):
            plan = tt_forward.plan_forward(hidden.in_modes, hidden.out_modes, hidden.ranks, batch, torch.float32, True, False)
            choice = _describe_plan(plan)
        rows.append(
            {
                "net": name,
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


# ---------------------------------------------------------------------------- reporting
def _machine_line() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def evaluate_targets(rows: list[dict], training_rows: list[dict]) -> list[str]:
    """The issue's targets, each as a line starting with MET or MISSED."""
    lines = []
    by_case: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        by_case.setdefault((row["case"], row["mode"]), {})[row["contender"]] = row
    for (case, mode), contenders in sorted(by_case.items()):
        if not case.startswith("paper") or mode != "forward":
            continue
        need = 20.0 if case.endswith("-b1") else 5.0
        best_name, best = _fastest_tt(contenders)
        auto = contenders["auto"]
        status = "MET" if auto["speedup_vs_linear"] >= need else "MISSED"
        lines.append(
            f"{status}: {case} forward: auto is {auto['speedup_vs_linear']:.1f}x faster than nn.Linear "
            f"(target {need:.0f}x; fastest strategy {best_name} {best['speedup_vs_linear']:.1f}x)"
        )
    worst = None
    for (case, mode), contenders in sorted(by_case.items()):
        best_name, best = _fastest_tt(contenders)
        ratio = contenders["auto"]["median_ms"] / best["median_ms"]
        status = "MET" if ratio <= 1.1 else "MISSED"
        if status == "MISSED" or worst is None or ratio > worst[0]:
            if status == "MISSED":
                lines.append(
                    f"MISSED: {case} {mode}: auto ({contenders['auto']['auto_choice']}) takes {ratio:.2f}x the "
                    f"fastest strategy ({best_name})"
                )
            if worst is None or ratio > worst[0]:
                worst = (ratio, case, mode)
    if worst is not None:
        lines.append(f"{'MET' if worst[0] <= 1.1 else 'MISSED'}: auto within 1.1x of the fastest strategy on every "
                     f"case (worst {worst[0]:.2f}x on {worst[1]} {worst[2]})")
    slow = []
    for (case, mode), contenders in sorted(by_case.items()):
        auto = contenders["auto"]
        if auto["dense_flops_ratio"] < 0.5 and auto["speedup_vs_linear"] < 1.0:
            slow.append(f"{case} {mode} ({auto['speedup_vs_linear']:.2f}x)")
    lines.append(
        ("MET" if not slow else "MISSED")
        + ": no TT case (auto) slower than nn.Linear when its FLOPs are under half the dense FLOPs"
        + (": " + ", ".join(slow) if slow else "")
    )
    for row in training_rows:
        if row["net"] == "dense":
            continue
        status = "MET" if row["dense_over_net"] >= 1.0 else "MISSED"
        lines.append(
            f"{status}: MNIST training step (batch {row['batch']}) with {row['net']}: {row['median_ms']:.2f} ms, "
            f"dense net / TT net = {row['dense_over_net']:.2f}"
        )
    return lines


def _fastest_tt(contenders: dict[str, dict]) -> tuple[str, dict]:
    tt_rows = {name: row for name, row in contenders.items() if name not in ("nn.Linear", "auto")}
    name = min(tt_rows, key=lambda key: tt_rows[key]["median_ms"])
    return name, tt_rows[name]


def summary_markdown(rows: list[dict], training_rows: list[dict], header: str) -> str:
    """Markdown tables of the results (pasted into BENCHMARKS.md)."""
    out = [header, ""]
    by_case: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        by_case.setdefault((row["case"], row["mode"]), {})[row["contender"]] = row
    for mode in MODES:
        keys = [key for key in by_case if key[1] == mode]
        if not keys:
            continue
        names = [n for n in tt_forward.CONCRETE_STRATEGIES]
        out.append(f"### {mode}" + (" (no_grad)" if mode == "forward" else " (forward + backward, input needs grad)"))
        out.append("")
        out.append(
            "| case | nn.Linear ms | " + " | ".join(f"{n} ms" for n in names)
            + " | auto ms (choice) | speedup auto | auto / fastest | TT GFLOP/s | dense GFLOP/s |"
        )
        out.append("|" + "---|" * (len(names) + 7))
        for key in sorted(keys, key=lambda k: [c.name for c in CASES].index(k[0]) if k[0] in CASE_NAMES else 0):
            contenders = by_case[key]
            linear, auto = contenders["nn.Linear"], contenders["auto"]
            _, best = _fastest_tt(contenders)
            cells = [f"{contenders[n]['median_ms']:.3f}" if n in contenders else "-" for n in names]
            out.append(
                f"| {key[0]} | {linear['median_ms']:.3f} | " + " | ".join(cells)
                + f" | {auto['median_ms']:.3f} ({auto['auto_choice']}) | {auto['speedup_vs_linear']:.2f}x"
                + f" | {auto['median_ms'] / best['median_ms']:.2f} | {auto['gflops']:.1f} | {linear['gflops']:.1f} |"
            )
        out.append("")
    if training_rows:
        out.append("### MNIST net, one Adam step, batch %d" % training_rows[0]["batch"])
        out.append("")
        out.append("| net | parameters | median ms | dense / net | TT plan |")
        out.append("|---|---|---|---|---|")
        for row in training_rows:
            out.append(
                f"| {row['net']} | {row['parameters']} | {row['median_ms']:.3f} | {row['dense_over_net']:.2f} "
                f"| {row['auto_choice']} |"
            )
        out.append("")
    return "\n".join(out)


CASE_NAMES = {case.name for case in CASES}


def write_figure(rows: list[dict], out_dir: Path) -> list[Path]:
    """Speedup over ``nn.Linear`` of each contender, per case; HTML always, PNG if kaleido works."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    modes = [mode for mode in MODES if any(row["mode"] == mode for row in rows)]
    figure = make_subplots(rows=len(modes), cols=1, subplot_titles=[f"{m}" for m in modes], shared_xaxes=False)
    names = list(tt_forward.CONCRETE_STRATEGIES) + ["auto"]
    palette = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d", "#e45756"]
    for index, mode in enumerate(modes, start=1):
        mode_rows = [row for row in rows if row["mode"] == mode]
        cases = [case.name for case in CASES if any(row["case"] == case.name for row in mode_rows)]
        for color, name in zip(palette, names):
            values = []
            for case in cases:
                match = [row for row in mode_rows if row["case"] == case and row["contender"] == name]
                values.append(match[0]["speedup_vs_linear"] if match else None)
            figure.add_trace(
                go.Bar(name=name, x=cases, y=values, marker_color=color, showlegend=index == 1, legendgroup=name),
                row=index,
                col=1,
            )
        figure.update_yaxes(type="log", title_text="speedup vs nn.Linear", row=index, col=1)
    figure.add_hline(y=1.0, line_dash="dot", line_color="black")
    figure.update_layout(
        title=f"TT layer vs nn.Linear ({_machine_line()})", barmode="group", height=420 * len(modes), width=1400,
        font={"size": 11},
    )
    written = []
    html_path = out_dir / "bench.html"
    figure.write_html(html_path, include_plotlyjs="cdn")
    written.append(html_path)
    png_path = out_dir / "bench.png"
    try:
        figure.write_image(png_path)
        written.append(png_path)
    except Exception as error:  # kaleido needs a working Chrome/Chromium
        print(f"warning: could not write {png_path} ({type(error).__name__}: {error}); the HTML figure is written",
              file=sys.stderr)
    return written


# ---------------------------------------------------------------------------- calibration
def calibrate_machine(threads: Optional[int] = None) -> costmodel.MachineModel:
    """Measure the speeds :class:`ttexplore.costmodel.MachineModel` holds, on this machine.

    GEMM tables: float32 ``torch.mm`` at every pair of small sizes on the model's
    grid, the large dimension chosen so operands and result take ~4 MB (and
    ~24 MB for the ``_large`` tables). Copy tables: 4 MB and 24 MB swaps
    ``(p, q, block) -> (q, p, block)`` with ``q`` (passes) or ``p`` (streams)
    equal to each fan, per block size, plain and (where used) wide. Page faults: a fresh 64 MB result against one written
    into existing memory. Per-call costs: :func:`_fit_call_costs`. The best of
    several runs counts, so background load biases it less; takes about half a
    minute.
    """
    from ttexplore.core.kernels import permute_copy

    if threads:
        torch.set_num_threads(threads)
    tt_forward.prime_allocator()
    grid = tuple(1 << power for power in range(10))  # 1 .. 512
    small_bytes, large_bytes = 4 << 20, 24 << 20

    def best_seconds(function: Callable[[], object], repeats: int = 7, warmup: int = 2) -> float:
        for _ in range(warmup):
            function()
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            best = min(best, time.perf_counter() - start)
        return best

    tiny = torch.randn(2, 2)
    call_s = best_seconds(lambda: torch.mm(tiny, tiny), repeats=200, warmup=20)

    def gemm_table(kind: str, total_bytes: int, repeats: int) -> tuple[tuple[float, ...], ...]:
        table = []
        for first in grid:
            row = []
            for second in grid:
                # operands and result of (big, first) @ (first, second) and the like: big * (first + second) floats
                big = max(total_bytes // 4 // (first + second), 4 * max(first, second), 256)
                if total_bytes == small_bytes:
                    big = max(min(big, (1 << 23) // (2 * first * second)), 4 * max(first, second), 256)
                if kind == "rows":  # (big, k) @ (k, n)
                    left, right = torch.randn(big, first), torch.randn(first, second)
                elif kind == "cols":  # (m, k) @ (k, big)
                    left, right = torch.randn(second, first), torch.randn(first, big)
                else:  # (m, big) @ (big, n), the left operand read transposed
                    left, right = torch.randn(big, first).t(), torch.randn(big, second)
                seconds = best_seconds(lambda: torch.mm(left, right), repeats=repeats)
                flops = 2 * big * first * second
                row.append(float(f"{flops / max(seconds - call_s, 0.2 * seconds):.3g}"))
            table.append(tuple(row))
        return tuple(table)

    tables = {kind: gemm_table(kind, small_bytes, 7) for kind in ("rows", "cols", "reduce")}
    large_tables = {kind: gemm_table(kind, large_bytes, 3) for kind in ("rows", "cols", "reduce")}
    block_sizes = (4, 8, 16, 32, 64, 128, 512)
    fans = (4, 16, 64)
    copy_tables = []
    for form in ("passes", "streams"):
        for size, total_bytes in (("small", small_bytes), ("large", large_bytes)):
            plain_table, wide_table = [], []
            for fan in fans:
                plain_row, wide_row = [], []
                for block_bytes in block_sizes:
                    block = block_bytes // 4
                    other = max(1, total_bytes // 4 // (fan * block))
                    shape = (other, fan, block) if form == "passes" else (fan, other, block)
                    source = torch.randn(shape)
                    moved = 2 * source.numel() * 4
                    plain = best_seconds(lambda: source.permute(1, 0, 2).contiguous(), repeats=5)
                    plain_row.append(float(f"{moved / plain:.3g}"))
                    if permuted_copy_plan(shape, (1, 0, 2), 4).wide:
                        wide = best_seconds(lambda: permute_copy(source, shape, (1, 0, 2)), repeats=5)
                        wide_row.append(float(f"{moved / wide:.3g}"))
                    else:
                        wide_row.append(plain_row[-1])
                plain_table.append(tuple(plain_row))
                wide_table.append(tuple(wide_row))
            copy_tables.append((f"{form}/{size}/plain", tuple(plain_table)))
            copy_tables.append((f"{form}/{size}/wide", tuple(wide_table)))
    source = torch.randn(1 << 24)  # 64 MB
    target = torch.empty_like(source)
    into_existing = best_seconds(lambda: target.copy_(source), repeats=5)
    into_fresh = best_seconds(lambda: source.clone(), repeats=5)
    bandwidth = 2 * source.numel() * 4 / into_existing
    fault_bandwidth = source.numel() * 4 / max(into_fresh - into_existing, 1e-6)
    del source, target

    measured = dict(
        gemm_grid=grid,
        gemm_rows=tables["rows"],
        gemm_cols=tables["cols"],
        gemm_reduce=tables["reduce"],
        gemm_rows_large=large_tables["rows"],
        gemm_cols_large=large_tables["cols"],
        gemm_reduce_large=large_tables["reduce"],
        gemm_small_bytes=small_bytes,
        gemm_large_bytes=large_bytes,
        copy_block_bytes=block_sizes,
        copy_fans=fans,
        copy_tables=tuple(copy_tables),
        copy_small_bytes=small_bytes,
        copy_large_bytes=large_bytes,
        memory_bandwidth=float(f"{bandwidth:.3g}"),
        fault_bytes=32 << 20,
        fault_bandwidth=float(f"{fault_bandwidth:.3g}"),
    )
    no_calls = dict.fromkeys(
        ("gemm_call_s", "copy_call_s", "einsum_call_s", "merge_call_s", "forward_call_s", "backward_gemm_call_s",
         "backward_copy_call_s"),
        0.0,
    )
    provisional = costmodel.MachineModel(description="calibrating", **measured, **no_calls)
    calls = _fit_call_costs(provisional, best_seconds)
    with_calls = costmodel.MachineModel(description="calibrating", **measured, **calls)
    scales = _fit_scales(with_calls)
    return costmodel.MachineModel(
        description=f"{_machine_line()}; measured by ttexplore.experiments.bench.calibrate_machine", **measured, **calls, **scales
    )


def _fit_call_costs(provisional: costmodel.MachineModel, best_seconds) -> dict[str, float]:
    """Per-call costs, fitted to tiny layers where the calls are nearly all the time.

    For every strategy (and a few blockings and orientations) on ``2^d x 2^d``
    layers of rank 2, ``d = 1..6``, batch 1 and 4, the measured time minus the
    tables' compute estimate is fitted (non-negative least squares) to the
    numbers of GEMMs, copies, opt_einsum steps, merged blocks and forwards; the
    backward's likewise to its GEMM and copy nodes.
    """
    from ttexplore.core.kernels import tt_matmul_blocked, tt_matmul_dense, tt_matmul_ltr, tt_matmul_rtl

    kinds = ("gemm", "copy", "einsum_call", "merge_call", "forward_call")
    forward_features, forward_targets = [], []
    backward_features, backward_targets = [], []
    for d in range(1, 7):
        in_modes = out_modes = (2,) * d
        layer = TTLinear(in_modes, out_modes, 2, bias=False)
        cores = list(layer.cores)
        shapes = [tuple(core.shape) for core in cores]
        internal = layer.ranks
        for batch in (1, 4):
            variants: list[tuple[Callable, list[tuple]]] = [
                (lambda x: tt_matmul_ltr(x, cores), cost_ops.sweep_ops(shapes, batch, "ltr", 4)),
                (lambda x: tt_matmul_rtl(x, cores), cost_ops.rtl_sweep_ops(shapes, batch, 4)[0]),
                (lambda x: tt_matmul_dense(x, cores), cost_ops.dense_ops(shapes, batch, 4)),
                (
                    lambda x: tt_forward.tt_matmul_einsum(x, cores, in_modes, out_modes, internal),
                    einsum_ops(in_modes, out_modes, internal, batch, 4),
                ),
            ]
            if d >= 2:
                cols = ("cols",) * d
                variants.append(
                    (lambda x, cols=cols: tt_matmul_rtl(x, cores, None, cols), cost_ops.rtl_sweep_ops(shapes, batch, 4, cols)[0])
                )
            if d >= 3:
                for direction in ("rtl", "ltr"):
                    blocks = (2, d - 2)
                    ops, _ = cost_ops.blocked_ops(shapes, batch, blocks, direction, 4)
                    variants.append(
                        (lambda x, blocks=blocks, direction=direction: tt_matmul_blocked(x, cores, blocks, direction), ops)
                    )
            inputs = torch.randn(batch, 2**d)
            grad_inputs = inputs.clone().requires_grad_()
            for run_variant, ops in variants:
                ops = [("forward_call",), *ops]
                with torch.no_grad():
                    forward = best_seconds(lambda: run_variant(inputs), repeats=30, warmup=5)
                total = best_seconds(lambda: run_variant(grad_inputs).sum().backward(), repeats=30, warmup=5)
                compute = evaluate_ops(ops, 4, True, provisional)
                counts = {kind: sum(1 for op in ops if op[0] == kind) for kind in kinds}
                forward_features.append([counts[kind] for kind in kinds])
                forward_targets.append(forward - compute["forward_seconds"])
                backward_features.append([counts["gemm"], counts["copy"]])
                backward_targets.append(total - forward - compute["backward_seconds"])
    gemm, copy, einsum, merge, call = _nonnegative_least_squares(forward_features, forward_targets)
    backward_gemm, backward_copy = _nonnegative_least_squares(backward_features, backward_targets)

    def rounded(value: float) -> float:
        return float(f"{value:.3g}")

    return {
        "gemm_call_s": rounded(gemm),
        "copy_call_s": rounded(copy),
        "einsum_call_s": rounded(einsum),
        "merge_call_s": rounded(merge),
        "forward_call_s": rounded(call),
        "backward_gemm_call_s": rounded(backward_gemm),
        "backward_copy_call_s": rounded(backward_copy),
    }


#: Layers and batches whose whole forwards fit the model's scale factors.
SCALE_FIT_LAYERS = (
    ((4, 8, 8, 4), (4, 8, 8, 4), 2, 128),
    ((4, 8, 8, 4), (4, 8, 8, 4), 8, 32),
    ((4, 8, 8, 4), (4, 8, 8, 4), 8, 128),
    ((4, 7, 4, 7), (5, 5, 5, 5), 4, 128),
    ((8, 8, 8, 8), (8, 8, 8, 8), 4, 32),
    ((8, 8, 8, 8), (8, 8, 8, 8), 8, 64),
    ((2, 7, 8, 8, 7, 4), (4,) * 6, 4, 16),
)


def _fit_scales(machine: costmodel.MachineModel, repeats: int = 9) -> dict[str, float]:
    """Factors on GEMM, plain-, wide- and n-d-copy times that best fit whole forwards.

    On each of :data:`SCALE_FIT_LAYERS`, the sweeps, several blockings and
    orientations, einsum and (for small layers) dense run interleaved; the
    best times are fitted, as relative errors, by non-negative least squares
    to the estimate's GEMM, plain-copy and wide-copy parts (the call costs are
    kept as fitted on tiny layers).
    """
    from ttexplore.core.kernels import tt_matmul_blocked, tt_matmul_dense, tt_matmul_ltr, tt_matmul_rtl

    features, targets = [], []
    for in_modes, out_modes, ranks, batch in SCALE_FIT_LAYERS:
        layer = TTLinear(in_modes, out_modes, ranks, bias=False)
        cores = list(layer.cores)
        shapes = [tuple(core.shape) for core in cores]
        internal = layer.ranks
        d = len(shapes)
        inputs = torch.randn(batch, layer.in_features)
        variants = {
            "ltr": (lambda: tt_matmul_ltr(inputs, cores), cost_ops.sweep_ops(shapes, batch, "ltr", 4)),
            "rtl": (lambda: tt_matmul_rtl(inputs, cores), cost_ops.rtl_sweep_ops(shapes, batch, 4)[0]),
            "einsum": (
                lambda: tt_forward.tt_matmul_einsum(inputs, cores, in_modes, out_modes, internal),
                einsum_ops(in_modes, out_modes, internal, batch, 4),
            ),
        }
        if layer.in_features * layer.out_features <= 1 << 20:
            variants["dense"] = (lambda: tt_matmul_dense(inputs, cores), cost_ops.dense_ops(shapes, batch, 4))
        for blocks in {(2,) * (d // 2) + ((1,) if d % 2 else ()), (1,) * (d - 2) + (2,), (2,) + (1,) * (d - 2)}:
            for direction, orientations in (("rtl", None), ("rtl", ("cols",) * len(blocks)), ("ltr", None)):
                ops, _ = cost_ops.blocked_ops(shapes, batch, blocks, direction, 4, orientations)
                variants[f"{blocks}{direction}{orientations}"] = (
                    lambda blocks=blocks, direction=direction, orientations=orientations: tt_matmul_blocked(
                        inputs, cores, blocks, direction, None, orientations
                    ),
                    ops,
                )
        with torch.no_grad():
            times = _interleaved_times({name: run for name, (run, _) in variants.items()}, repeats, 2)
        for name, (_, ops) in variants.items():
            measured = min(times[name])  # the least disturbed run: background load only ever adds
            parts = forward_seconds_by_part(ops, 4, machine)
            total = evaluate_ops([("forward_call",), *ops], 4, False, machine)["forward_seconds"]
            calls = total - sum(parts.values())
            features.append([parts[name] / measured for name in ("gemm", "plain", "wide", "nd")])
            targets.append(1.0 - calls / measured)
    gemm_scale, plain_scale, wide_scale, nd_scale = _nonnegative_least_squares(features, targets)
    return {
        "gemm_scale": float(f"{gemm_scale:.3g}"),
        "plain_copy_scale": float(f"{plain_scale:.3g}"),
        "wide_copy_scale": float(f"{wide_scale:.3g}"),
        "nd_copy_scale": float(f"{nd_scale:.3g}"),
    }


def _nonnegative_least_squares(features: list[list[float]], targets: list[float]) -> list[float]:
    """Coefficients ``c >= 0`` minimising ``sum_i (features_i . c - targets_i)^2`` (active-set method)."""
    count = len(features[0])
    active = list(range(count))
    while True:
        size = len(active)
        # normal equations restricted to the active features, solved by Gauss-Jordan elimination
        matrix = [[sum(row[a] * row[b] for row in features) for b in active] for a in active]
        rhs = [sum(row[a] * target for row, target in zip(features, targets)) for a in active]
        for column in range(size):
            pivot = max(range(column, size), key=lambda r: abs(matrix[r][column]))
            matrix[column], matrix[pivot] = matrix[pivot], matrix[column]
            rhs[column], rhs[pivot] = rhs[pivot], rhs[column]
            if abs(matrix[column][column]) < 1e-18:
                continue
            for r in range(size):
                if r != column:
                    factor = matrix[r][column] / matrix[column][column]
                    matrix[r] = [x - factor * y for x, y in zip(matrix[r], matrix[column])]
                    rhs[r] -= factor * rhs[column]
        solution = [rhs[i] / matrix[i][i] if abs(matrix[i][i]) > 1e-18 else 0.0 for i in range(size)]
        if all(value >= 0 for value in solution):
            coefficients = [0.0] * count
            for index, value in zip(active, solution):
                coefficients[index] = value
            return coefficients
        active.pop(min(range(size), key=lambda i: solution[i]))


def machine_literal(machine: costmodel.MachineModel) -> str:
    """Python source of ``machine`` (to paste as :data:`ttexplore.costmodel.DEFAULT_MACHINE`)."""
    import dataclasses

    def number(value) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    def table(rows, indent: str) -> str:
        return "(\n" + "".join(f"{indent}    (" + ", ".join(map(number, row)) + "),\n" for row in rows) + indent + ")"

    lines = []
    for field in dataclasses.fields(machine):
        value = getattr(machine, field.name)
        if field.name == "copy_tables":
            entries = "".join(f"        ({key!r}, {table(rows, '        ')}),\n" for key, rows in value)
            text = "(\n" + entries + "    )"
        elif isinstance(value, tuple) and value and isinstance(value[0], tuple):
            text = table(value, "    ")
        elif isinstance(value, tuple):
            text = "(" + ", ".join(map(number, value)) + ")"
        else:
            text = number(value) if not isinstance(value, str) else repr(value)
        lines.append(f"    {field.name}={text},")
    return "MachineModel(\n" + "\n".join(lines) + "\n)"


# ---------------------------------------------------------------------------- command line
def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the benchmark's options to ``parser`` (for ``python -m ttexplore bench``)."""
    parser.add_argument(
        "--cases",
        default="all",
        help="comma-separated case names or groups (%s); default all. Cases: %s"
        % (", ".join(CASE_GROUPS), ", ".join(case.name for case in CASES)),
    )
    parser.add_argument("--modes", default="forward,train", help="comma-separated: forward, train (default both)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per contender (default 15, --quick 5)")
    parser.add_argument("--out", default="benchmarks/results", help="directory for the CSV, summary and figure")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the benchmark machine's cores)")
    parser.add_argument("--quick", action="store_true", help="5 repeats, and skip the dense strategy on huge layers")
    parser.add_argument("--no-training", action="store_true", help="skip the MNIST training-step benchmark")
    parser.add_argument("--no-plot", action="store_true", help="do not write the figure")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=0.0,
        help="before each case wait up to this many seconds for other processes to leave the CPUs idle "
        "(shared machines; default 0: do not wait)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=0,
        help="re-measure a case up to this many times when other processes used over 15%% of the CPUs during it, "
        "keeping the quietest measurement (default 0)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="measure every case in this process instead of a fresh interpreter per case",
    )
    parser.add_argument("--autotune", action="store_true", help="let auto time its candidates (set_autotune(True))")
    parser.add_argument(
        "--calibrate", action="store_true", help="measure this machine's speeds for the cost model, print them, exit"
    )
    return parser


def _measure(kind: str, spec: dict, args: argparse.Namespace) -> list[dict]:
    """One case (``kind="case"``) or the training-step benchmark, in a fresh process unless ``--in-process``.

    A long benchmark run leaves glibc's heap full of freed blocks of every size
    (the 25088x4096 cases allocate 400 MB matrices); later mid-size forwards then
    get a rotating set of cold addresses and ran up to 2x slower than in a
    process of their own (784->625 at batch 128: 1.34 ms against 0.6 ms), while
    ``nn.Linear``, with one small result, barely changed. Each measurement
    therefore runs in a new interpreter, as a user's program would.
    """
    spec = {**spec, "kind": kind, "threads": args.threads, "autotune": args.autotune}
    if args.in_process:
        return _measure_here(spec)
    package_root = str(Path(__file__).resolve().parent.parent)
    environment = dict(os.environ)
    environment["PYTHONPATH"] = package_root + os.pathsep + environment.get("PYTHONPATH", "")
    completed = subprocess.run(
        [sys.executable, "-c", "from ttexplore.experiments.bench import _child_main; _child_main()"],
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
    tt_forward.prime_allocator()  # before any contender runs, so nn.Linear sees the same allocator state
    if spec["kind"] == "training":
        return bench_training_step(spec["repeats"])
    case = next(case for case in CASES if case.name == spec["case"])
    return bench_case(case, spec["mode"], spec["repeats"], skip_huge_dense=spec["skip_huge_dense"])


def _child_main() -> None:
    """Entry point of a benchmark child: a JSON spec on stdin, the JSON rows as the last stdout line."""
    spec = json.loads(sys.stdin.read())
    rows = _measure_here(spec)
    print(json.dumps(rows, default=float))


#: Foreign load (fraction of the CPUs) above which a measurement is retried.
RETRY_LOAD = 0.15


def _quietest(measure: Callable[[], list[dict]], max_wait_s: float, retries: int) -> list[dict]:
    """Run ``measure`` (after waiting for a quiet machine), again while others disturbed it.

    Returns the rows of the attempt during which other processes used the least
    CPU; each row carries that attempt's ``foreign_load``.
    """
    best_rows: Optional[list[dict]] = None
    for attempt in range(retries + 1):
        if max_wait_s > 0:
            wait_for_quiet(max_wait_s)
        rows = measure()
        load = max((row["foreign_load"] for row in rows), default=0.0)
        if best_rows is None or load < max(row["foreign_load"] for row in best_rows):
            best_rows = rows
        if not load > RETRY_LOAD:
            break
    return best_rows


def _selected_cases(spec: str) -> list[BenchCase]:
    names: list[str] = []
    for token in (part.strip() for part in spec.split(",") if part.strip()):
        if token in CASE_GROUPS:
            names += CASE_GROUPS[token]
        elif token in CASE_NAMES:
            names.append(token)
        else:
            raise ValueError(f"--cases: {token!r} is neither a case nor a group ({', '.join(CASE_GROUPS)})")
    return [case for case in CASES if case.name in names]


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by ``args`` (from :func:`configure_parser`); returns an exit code."""
    torch.set_num_threads(args.threads)
    if args.calibrate:
        machine = calibrate_machine(args.threads)
        print(machine_literal(machine))
        return 0
    try:
        cases = _selected_cases(args.cases)
        modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
        for mode in modes:
            if mode not in MODES:
                raise ValueError(f"--modes: {mode!r} is unknown: use {', '.join(MODES)}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    repeats = args.repeats or (5 if args.quick else 15)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {_machine_line()}; load average {load_before:.2f}; {repeats} repeats", flush=True)
    rows: list[dict] = []
    for case in cases:
        for mode in modes:
            case_rows = _quietest(
                lambda: _measure(
                    "case", {"case": case.name, "mode": mode, "repeats": repeats, "skip_huge_dense": args.quick}, args
                ),
                args.max_wait,
                args.retries,
            )
            rows += case_rows
            contenders = {row["contender"]: row for row in case_rows}
            auto = contenders["auto"]
            best_name, best = _fastest_tt(contenders)
            print(
                f"{case.name:28s} {mode:8s} nn.Linear {contenders['nn.Linear']['median_ms']:9.3f} ms | "
                + " ".join(f"{name} {row['median_ms']:.3f}" for name, row in contenders.items()
                           if name not in ("nn.Linear", "auto"))
                + f" | auto {auto['median_ms']:.3f} ({auto['auto_choice']}) speedup {auto['speedup_vs_linear']:.2f}x"
                + f", auto/fastest({best_name}) {auto['median_ms'] / best['median_ms']:.2f}"
                + f"; other load {auto['foreign_load']:.2f}",
                flush=True,
            )
    training_rows: list[dict] = []
    if not args.no_training:
        training_rows = _quietest(
            lambda: _measure("training", {"repeats": max(repeats, 10)}, args), args.max_wait, args.retries
        )
        for row in training_rows:
            print(f"MNIST step {row['net']:6s} {row['median_ms']:8.3f} ms  dense/net {row['dense_over_net']:.2f} "
                  f"{row['auto_choice']}", flush=True)
    _write_csv(out_dir / "bench.csv", rows)
    _write_csv(out_dir / "training.csv", training_rows)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (
        f"Machine: {_machine_line()}. Load average {load_before:.2f} before, {load_after:.2f} after; "
        f"{repeats} interleaved repeats (median); {time.time() - started:.0f} s."
    )
    targets = evaluate_targets(rows, training_rows) if rows else []
    summary = summary_markdown(rows, training_rows, header) + "\n### targets\n\n" + "\n".join(f"- {t}" for t in targets)
    (out_dir / "summary.md").write_text(summary + "\n")
    print("\n".join(targets))
    if rows and not args.no_plot:
        for path in write_figure(rows, out_dir):
            print(f"wrote {path}")
    print(f"wrote {out_dir / 'bench.csv'}, {out_dir / 'summary.md'}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``benchmarks/run_bench.py``."""
    parser = configure_parser(argparse.ArgumentParser(prog="ttexplore bench", description=__doc__.split("\n\n")[0]))
    return run(parser.parse_args(argv))
