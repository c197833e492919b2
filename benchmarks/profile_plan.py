"""Where a TT forward's time goes: each GEMM and copy of a plan, its time and GFLOP/s, beside the GEMM limit.

    python benchmarks/profile_plan.py --case paper-25088x4096-r4-b100 --threads 1
    python benchmarks/profile_plan.py --case paper-25088x4096-r4-b100 --blocks 3+3 --direction rtl --orientations cols,rows

Runs the chosen plan (``auto``'s, or the blocking given) under ``torch.profiler`` at inference and
prints one line per operator and input shape: calls per forward, self time per call (median of
the profiled forwards' totals is not kept: the profiler's per-call average), GFLOP/s where the
operator multiplies, and the share of the forward; then the machine's GEMM limit at the same
thread count (a 2048^3 float32 GEMM, best of 7).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from ttexplore.experiments.bench.cases import CASES  # noqa: E402
from ttexplore.experiments.bench.harness import describe_plan, gemm_limit_gflops  # noqa: E402
from ttexplore.nn import forward as tt_forward  # noqa: E402
from ttexplore.nn.kernels import tt_matmul_blocked  # noqa: E402
from ttexplore.nn.layers import TTLinear  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="paper-25088x4096-r4-b100", help="a benchmark case name")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--blocks", help="a blocking to profile instead of auto's plan, e.g. 3+3")
    parser.add_argument("--direction", default="rtl", help="its direction: rtl, ltr, rtl-bmm, ltr-bmm")
    parser.add_argument("--orientations", help="rtl step orientations, last block first, e.g. cols,rows")
    parser.add_argument("--chunk", type=int, default=0, help="rows per chunk of an rtl-bmm sweep (0: all)")
    parser.add_argument("--forwards", type=int, default=10, help="profiled forwards")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tt_forward.prime_allocator()
    case = next((case for case in CASES if case.name == args.case), None)
    if case is None:
        parser.error(f"--case {args.case!r} is not one of {', '.join(c.name for c in CASES)}")
    torch.manual_seed(0)
    layer = TTLinear(case.in_modes, case.out_modes, case.ranks)
    cores = list(layer.cores)
    inputs = torch.randn(case.batch, case.in_features)
    if args.blocks:
        blocks = tuple(int(length) for length in args.blocks.split("+"))
        orientations = tuple(args.orientations.split(",")) if args.orientations else None
        label = f"blocked {args.blocks} {args.direction}" + (f" {args.chunk} rows at a time" if args.chunk else "")

        def run() -> torch.Tensor:
            return tt_matmul_blocked(inputs, cores, blocks, args.direction, layer.bias, orientations, args.chunk)
    else:
        plan = tt_forward.plan_forward(layer.in_modes, layer.out_modes, layer.ranks, case.batch)
        label = describe_plan(plan) + " (auto's plan)"

        def run() -> torch.Tensor:
            return plan.run(inputs, cores, layer.bias)

    with torch.no_grad():
        for _ in range(3):
            run()
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as profiled:
            for _ in range(args.forwards):
                run()
    events = [event for event in profiled.key_averages(group_by_input_shape=True) if event.self_cpu_time_total > 0]
    total_us = sum(event.self_cpu_time_total for event in events) / args.forwards
    print(f"{case.name}, {args.threads} thread(s): {label}; {total_us / 1e3:.3f} ms per forward (profiled)")
    print(f"{'operator':16s} {'input shapes':48s} {'calls':>5s} {'ms/call':>8s} {'GFLOP/s':>8s} {'share':>6s}")
    for event in sorted(events, key=lambda event: -event.self_cpu_time_total):
        per_forward_us = event.self_cpu_time_total / args.forwards
        if per_forward_us < 0.005 * total_us:
            continue
        calls = event.count / args.forwards
        per_call_ms = event.self_cpu_time_total / event.count / 1e3
        gflops = f"{event.flops / (event.self_cpu_time_total * 1e3):8.1f}" if event.flops else f"{'-':>8s}"
        shapes = str(event.input_shapes)[:48]
        print(f"{event.key[:16]:16s} {shapes:48s} {calls:5.0f} {per_call_ms:8.3f} {gflops} {per_forward_us / total_us:6.1%}")
    print(f"GEMM limit at {args.threads} thread(s): {gemm_limit_gflops():.0f} GFLOP/s (a 2048^3 float32 GEMM, best of 7)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
