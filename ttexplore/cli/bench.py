"""``ttexplore bench``: time every TT forward strategy against ``nn.Linear`` (and, for the ``conv`` cases, every TT
convolution strategy against ``nn.Conv2d``), or ``--calibrate`` the cost model.

The measuring is :mod:`ttexplore.experiments.bench`; this module parses the
flags, runs the cases in turn, prints a line per case and writes the report.
Parsing the flags does not import torch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from ttexplore.cli.common import EXIT_OK, UsageError, check_output_path
from ttexplore.tt.atomic import write_atomic
from ttexplore.tt.devicenames import check_device_name
from ttexplore.experiments.bench import report
from ttexplore.experiments.bench.cases import (CASE_GROUPS, CASE_NAMES, CASES, BenchCase, selected_cases, selected_modes,
                                               selected_threads)
from ttexplore.experiments.bench.conv_cases import (CONV_CASES, CONV_GROUP, ConvBenchCase, conv_case_line,
                                                    conv_summary_markdown, evaluate_conv_targets, split_cases)

__all__ = ["configure_parser", "run", "main"]


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the benchmark's options to ``parser`` (for ``python -m ttexplore bench``)."""
    parser.add_argument(
        "--cases",
        default="all",
        help="comma-separated case names or groups (%s); default all (the fully-connected ones). Cases: %s; "
        "convolutions (group %s): %s"
        % (", ".join([*CASE_GROUPS, CONV_GROUP]), ", ".join(case.name for case in CASES), CONV_GROUP,
           ", ".join(case.name for case in CONV_CASES)),
    )
    parser.add_argument("--modes", default="forward,train", help="comma-separated: forward, train (default both)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per contender (default 15, --quick 5)")
    parser.add_argument("--out", default="benchmarks/results", help="directory for the CSV, summary and figure")
    parser.add_argument(
        "--threads",
        default=None,
        help="torch thread counts to measure at, comma-separated: whole numbers, 'default' (torch's default: one per "
        "core) or 'all' (every core); each gets its own tables (default 1,default; with --calibrate: default)",
    )
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
    parser.add_argument("--device", default="cpu",
                        help="where the contenders run: cpu (default), cuda, cuda:N or mps (each timed call waits "
                             "for the device)")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile of the auto layer (contender 'compiled', inductor); its cold compile takes "
        "about 100 s per case and mode on 2 cores, so pick few --cases",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="measure this machine's speeds for the cost model, print them as a machine file (JSON; save it and load "
        "it with ttexplore.costmodel.load_machine to pass as strategy_costs(machine=...)), exit; with several "
        "--threads, write one file per thread count (threads-N.json, the shipped tables' names) into --out",
    )
    parser.add_argument(
        "--calibrate-conv",
        action="store_true",
        help="measure this machine's convolution speeds for the TT convolution's cost model at one --threads count, "
        "print them as JSON (load it with ttexplore.costmodel.conv.load_conv_speeds; "
        "ttexplore.nn.conv_forward.set_conv_speeds), exit",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by ``args`` (from :func:`configure_parser`); returns an exit code.

    Every case (the convolution cases too) is measured at every thread count of ``--threads`` (one fresh
    interpreter per case and thread count), and the summary has one section per thread count.

    Raises:
        UsageError: an unknown case, group, mode or thread count, or a number out of its range.
    """
    check_numbers(args)
    try:
        linear_spec, conv_cases = split_cases(args.cases, CASE_NAMES, CASE_GROUPS)
        cases = selected_cases(linear_spec) if linear_spec else []
        if not cases and not conv_cases and not (args.calibrate or args.calibrate_conv):
            raise ValueError(f"--cases {args.cases!r} names no case: give case names or groups, e.g. --cases paper "
                             f"({', '.join([*CASE_GROUPS, CONV_GROUP])})")
        modes = selected_modes(args.modes)
        check_device_name(args.device)
        thread_spec = args.threads or ("default" if args.calibrate or args.calibrate_conv else "1,default")
        if args.calibrate_conv and len(selected_threads(thread_spec, 1, os.cpu_count() or 1)) != 1:
            raise ValueError(f"--threads {thread_spec}: --calibrate-conv measures at one thread count, e.g. --threads 1")
        selected_threads(thread_spec, 1, os.cpu_count() or 1)  # checked before torch is imported
    except ValueError as error:
        raise UsageError(f"ttexplore bench: error: {error}") from None
    check_output_path("bench", "--out", args.out, folder=True)
    import torch  # only now: --help and bad flags stay fast

    thread_counts = selected_threads(thread_spec, torch.get_num_threads(), os.cpu_count() or 1)
    if args.calibrate:
        return _calibrate(thread_counts, args.max_wait, Path(args.out))
    if args.calibrate_conv:
        return _calibrate_conv(thread_counts[0])
    from ttexplore.nn.device import device_problem
    from ttexplore.experiments.bench.harness import machine_line

    problem = device_problem(args.device, option="--device ")
    if problem is not None:
        raise UsageError(f"ttexplore bench: error: --device {args.device}: {problem}")
    default_threads = torch.get_num_threads()
    repeats = args.repeats if args.repeats is not None else (5 if args.quick else 15)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    load_before = _load_average()
    machine = machine_line(args.device).replace(f", {default_threads} threads", "")
    counts_text = ", ".join(f"{count}{' (torch default)' if count == default_threads else ''}" for count in thread_counts)
    print(f"# {machine}; threads {counts_text}; load average {load_before:.2f}; {repeats} repeats", flush=True)
    rows: list[dict] = []
    training_rows: list[dict] = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        rows += _run_cases(cases, modes, repeats, args, threads)
        training_rows += [] if args.no_training or not cases else _run_training_step(repeats, args, threads)
    conv_rows = _run_conv_cases(conv_cases, modes, repeats, thread_counts, args)
    header = (
        f"Machine: {machine}; torch threads {counts_text}. Load average {load_before:.2f} before, "
        f"{_load_average():.2f} after; {repeats} interleaved repeats (median; in brackets the interquartile range "
        f"of the per-round ratio); {time.time() - started:.0f} s."
    )
    _write_tables(rows, training_rows, header, out_dir)
    if conv_rows:
        _write_conv_tables(conv_rows, header, out_dir)
    if rows and not args.no_plot:
        for path in report.write_figure(rows, out_dir, machine):
            print(f"wrote {path}")
    print(f"wrote {out_dir / 'bench.csv'}, {out_dir / 'summary.md'}" + (f", {out_dir / 'conv.csv'}" if conv_rows else ""))
    return EXIT_OK


#: The most ``--repeats`` and ``--retries`` (each multiplies the benchmark's minutes) and ``--max-wait`` seconds.
MOST_REPEATS, MOST_RETRIES, MOST_WAIT_S = 1000, 20, 3600.0


def check_numbers(args: argparse.Namespace) -> None:
    """Refuse ``--repeats``, ``--retries`` and ``--max-wait`` out of their ranges, before any work (``--threads``
    is checked by :func:`~ttexplore.experiments.bench.cases.selected_threads`).

    Raises:
        UsageError: one line naming the flag, the range and the fix.
    """
    import math

    if args.repeats is not None and not 1 <= args.repeats <= MOST_REPEATS:
        raise UsageError(f"ttexplore bench: error: --repeats: {args.repeats} must be between 1 and {MOST_REPEATS} "
                         "(leave it out for 15, or 5 with --quick)")
    if not 0 <= args.retries <= MOST_RETRIES:
        raise UsageError(f"ttexplore bench: error: --retries: {args.retries} must be between 0 and {MOST_RETRIES}")
    if not (math.isfinite(args.max_wait) and 0 <= args.max_wait <= MOST_WAIT_S):
        raise UsageError(f"ttexplore bench: error: --max-wait: {args.max_wait} must be between 0 and {MOST_WAIT_S:g} "
                         "seconds")


def _run_conv_cases(cases: Sequence[ConvBenchCase], modes: Sequence[str], repeats: int, threads: Sequence[int],
                    args: argparse.Namespace) -> list[dict]:
    """Every convolution case in every mode at every thread count (CPU only); prints a line per measurement."""
    if not cases:
        return []
    if args.device != "cpu":
        print(f"the convolution cases run on the CPU only; skipped on --device {args.device}", flush=True)
        return []
    from ttexplore.experiments.bench import conv_harness, harness

    rows: list[dict] = []
    for count in threads:
        for case in cases:
            for mode in modes:
                spec = {"case": case.name, "mode": mode, "repeats": repeats}
                case_rows = harness.quietest(lambda: conv_harness.measure_conv_case(spec, count, args.in_process),
                                             args.max_wait, args.retries)
                rows += case_rows
                print(conv_case_line(case_rows), flush=True)
    return rows


def _write_conv_tables(rows: list[dict], header: str, out_dir: Path) -> None:
    """``conv.csv``, and the convolution tables and targets appended to ``summary.md`` (also printed)."""
    report.write_csv(out_dir / "conv.csv", rows)
    targets = evaluate_conv_targets(rows)
    text = ("\n## Convolutions\n\n" + conv_summary_markdown(rows, header) + "\n### convolution targets\n\n"
            + "\n".join(f"- {t}" for t in targets) + "\n")
    summary = out_dir / "summary.md"
    write_atomic(summary, (summary.read_text() if summary.exists() else "") + text)
    print("\n".join(targets))


def _calibrate_conv(threads: int) -> int:
    """Measure this machine's convolution speeds at ``threads`` torch threads and print them as a JSON file."""
    import torch

    from ttexplore.costmodel.conv import conv_speeds_json
    from ttexplore.experiments.bench.conv_calibrate import calibrate_conv_speeds

    torch.set_num_threads(threads)
    print(conv_speeds_json(calibrate_conv_speeds(threads)), end="")
    return EXIT_OK


def _calibrate(thread_counts: Sequence[int], max_wait_s: float, out_dir: Path) -> int:
    """Measure this machine for the cost model at each thread count: one machine file (JSON) printed,
    or with several thread counts one ``threads-N.json`` per count written into ``out_dir``."""
    import torch

    from ttexplore.costmodel import machine_json
    from ttexplore.experiments.bench.calibrate import calibrate_machine

    for threads in thread_counts:
        torch.set_num_threads(threads)
        text = machine_json(calibrate_machine(threads, max_wait_s))
        if len(thread_counts) == 1:
            print(text, end="")
        else:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = write_atomic(out_dir / f"threads-{threads}.json", text)
            print(f"wrote {path}", flush=True)
    return EXIT_OK


def _load_average() -> float:
    """The 1-minute load average (nan where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _run_cases(
    cases: Sequence[BenchCase], modes: Sequence[str], repeats: int, args: argparse.Namespace, threads: int
) -> list[dict]:
    """Every case in every mode at ``threads`` torch threads, each measured as the flags say; prints a line per case."""
    from ttexplore.experiments.bench import harness

    rows: list[dict] = []
    for case in cases:
        for mode in modes:
            spec = {"kind": "case", "case": case.name, "mode": mode, "repeats": repeats, "skip_huge_dense": args.quick,
                    "compile": args.compile, "device": args.device}
            case_rows = harness.quietest(
                lambda: harness.measure(spec, threads, args.autotune, args.in_process), args.max_wait, args.retries
            )
            rows += case_rows
            print(f"[{threads}t] " + report.case_line(case_rows), flush=True)
    return rows


def _run_training_step(repeats: int, args: argparse.Namespace, threads: int) -> list[dict]:
    """The MNIST training-step benchmark at ``threads`` torch threads (at least 10 repeats); prints a line per net."""
    from ttexplore.experiments.bench import harness

    spec = {"kind": "training", "repeats": max(repeats, 10), "device": args.device}
    training_rows = harness.quietest(
        lambda: harness.measure(spec, threads, args.autotune, args.in_process), args.max_wait, args.retries
    )
    for row in training_rows:
        print(f"[{threads}t] " + report.training_line(row), flush=True)
    return training_rows


def _write_tables(rows: list[dict], training_rows: list[dict], header: str, out_dir: Path) -> None:
    """``bench.csv``, ``training.csv`` and ``summary.md`` (with the targets, which are also printed)."""
    report.write_csv(out_dir / "bench.csv", rows)
    report.write_csv(out_dir / "training.csv", training_rows)
    targets = report.evaluate_targets(rows, training_rows) if rows else []
    if not rows and not training_rows:  # only convolution cases: their tables follow (_write_conv_tables)
        write_atomic(out_dir / "summary.md", "")
        return
    summary = report.summary_markdown(rows, training_rows, header) + "\n### targets\n\n" + "\n".join(f"- {t}" for t in targets)
    write_atomic(out_dir / "summary.md", summary + "\n")
    print("\n".join(targets))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``benchmarks/run_bench.py``: ``ttexplore bench`` with these arguments."""
    from ttexplore.cli import main as cli_main

    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])
