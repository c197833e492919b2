"""The benchmark's report: CSV files, the summary's markdown tables, the targets and the figure.

Pure Python (no torch): it works on the result rows of
:func:`ttexplore.experiments.bench.harness.bench_case` and
:func:`~ttexplore.experiments.bench.harness.bench_training_step`; plotly is
imported only to draw the figure.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from typing import Optional

from ttexplore.costmodel import CONCRETE_STRATEGIES
from ttexplore.tt.atomic import WriteError, write_atomic
from ttexplore.experiments.bench.cases import CASE_NAMES, CASES, GEMM_LIMIT_SIZE, MODES

__all__ = [
    "write_csv",
    "fastest_tt_contender",
    "evaluate_targets",
    "summary_markdown",
    "case_line",
    "training_line",
    "write_figure",
]

#: Contender rows that are not one of the TT strategies: the dense layer, auto, TensorLy-Torch's
#: FactorizedLinear (blocktt) and torch.compile of the auto layer.
_NOT_STRATEGIES = ("nn.Linear", "auto", "tltorch", "compiled")

#: Batch-1 inference cases where auto must be within :data:`EVAL_WITHIN` of ``nn.Linear``'s time.
EVAL_CASES = ("784x625-r4-b1", "1024x1024-r4-b1", "1024x1024-r8-b1")
EVAL_WITHIN = 1.2

#: Forward cases where auto must be at least this many times faster than TensorLy-Torch's
#: ``FactorizedLinear`` (blocktt), measured side by side.
TLTORCH_TARGETS = {"paper-25088x4096-r4-b1": 4.0, "paper-25088x4096-r4-b100": 1.3, "1024x1024-r4-b100": 1.5}


def write_csv(path: Path, rows: list[dict]) -> None:
    """``rows`` as CSV with the first row's keys as the header, written whole or not at all
    (:func:`~ttexplore.tt.atomic.write_atomic`); nothing is written for no rows."""
    if not rows:
        return
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue())


def _by_case(rows: list[dict]) -> dict[tuple[str, str], dict[str, dict]]:
    """``{(case, mode): {contender: row}}``."""
    by_case: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        by_case.setdefault((row["case"], row["mode"]), {})[row["contender"]] = row
    return by_case


def fastest_tt_contender(contenders: dict[str, dict]) -> tuple[str, dict]:
    """The concrete strategy with the smallest median time among one case's ``{contender: row}``, and its row."""
    tt_rows = {name: row for name, row in contenders.items() if name not in _NOT_STRATEGIES}
    name = min(tt_rows, key=lambda key: tt_rows[key]["median_ms"])
    return name, tt_rows[name]


def evaluate_targets(rows: list[dict], training_rows: list[dict]) -> list[str]:
    """The issue's targets, each as a line starting with MET or MISSED (after ``[N threads]`` when
    the rows record their thread count; each thread count is judged on its own rows).

    Targets: auto at least 20x (batch 1) / 5x faster than ``nn.Linear`` on the
    paper's layer (forward); the batch-1 inference of :data:`EVAL_CASES` within
    :data:`EVAL_WITHIN` of ``nn.Linear``; auto at least :data:`TLTORCH_TARGETS`
    times faster than TensorLy-Torch; auto within 1.1x of the fastest strategy
    on every case; no case where auto is slower than ``nn.Linear`` though its
    FLOPs are under half the dense ones; each TT net's training step faster than
    the dense net's.
    """
    lines = []
    for threads, group in _by_threads(rows, training_rows):
        prefix = "" if threads is None else f"[{_threads_text(threads)}] "
        case_rows, group_training = group
        by_case = _by_case(case_rows)
        group_lines = (
            _paper_speedup_targets(by_case)
            + _eval_within_linear_targets(by_case)
            + _tltorch_targets(by_case)
            + _auto_within_fastest_targets(by_case)
            + ([_few_flops_not_slower_target(by_case)] if by_case else [])
            + _training_targets(group_training)
        )
        lines += [f"{prefix}{line}" for line in group_lines]
    return lines


def _threads_text(threads: int) -> str:
    return f"{threads} thread" + ("s" if threads != 1 else "")


def _by_threads(rows: list[dict], training_rows: list[dict]) -> list[tuple[Optional[int], tuple[list[dict], list[dict]]]]:
    """Rows grouped by their ``threads`` (``None`` for rows that do not record it), fewest first."""
    keys = sorted({row.get("threads") for row in rows + training_rows}, key=lambda value: (value is not None, value or 0))
    return [(key, ([row for row in rows if row.get("threads") == key],
                   [row for row in training_rows if row.get("threads") == key])) for key in keys]


def _speedup(auto: dict, other: dict, per_round_key: str) -> float:
    """How many times faster ``auto`` is than ``other``: the median of the per-round ratios where the rows
    have it (each round timed both back to back, so a load that drifts over the run cancels), else the
    ratio of the medians."""
    value = auto.get(per_round_key)
    if isinstance(value, (int, float)) and value == value:
        return float(value)
    return other["median_ms"] / auto["median_ms"]


def _tltorch_targets(by_case: dict[tuple[str, str], dict[str, dict]]) -> list[str]:
    lines = []
    for case, need in TLTORCH_TARGETS.items():
        contenders = by_case.get((case, "forward"))
        if contenders is None or "tltorch" not in contenders:
            continue
        auto = contenders["auto"]
        ratio = _speedup(auto, contenders["tltorch"], "over_tltorch_median")
        spread = f" (per round {auto['over_tltorch_q1_q3']})" if auto.get("over_tltorch_q1_q3") else ""
        lines.append(f"{'MET' if ratio >= need else 'MISSED'}: {case} forward: auto ({auto['auto_choice']}) is "
                     f"{ratio:.2f}x faster than TensorLy-Torch's FactorizedLinear{spread} (target >= {need}x)")
    return lines


def _eval_within_linear_targets(by_case: dict[tuple[str, str], dict[str, dict]]) -> list[str]:
    lines = []
    for case in EVAL_CASES:
        contenders = by_case.get((case, "forward"))
        if contenders is None:
            continue
        ratio = 1.0 / _speedup(contenders["auto"], contenders["nn.Linear"], "over_linear_median")
        lines.append(
            f"{'MET' if ratio <= EVAL_WITHIN else 'MISSED'}: {case} forward: auto ({contenders['auto']['auto_choice']}) "
            f"takes {ratio:.2f}x nn.Linear's time (target <= {EVAL_WITHIN}x)"
        )
    return lines


def _paper_speedup_targets(by_case: dict[tuple[str, str], dict[str, dict]]) -> list[str]:
    lines = []
    for (case, mode), contenders in sorted(by_case.items()):
        if not case.startswith("paper") or mode != "forward":
            continue
        need = 20.0 if case.endswith("-b1") else 5.0
        best_name, best = fastest_tt_contender(contenders)
        auto = contenders["auto"]
        status = "MET" if auto["speedup_vs_linear"] >= need else "MISSED"
        lines.append(
            f"{status}: {case} forward: auto is {auto['speedup_vs_linear']:.1f}x faster than nn.Linear "
            f"(target {need:.0f}x; fastest strategy {best_name} {best['speedup_vs_linear']:.1f}x)"
        )
    return lines


def _auto_within_fastest_targets(by_case: dict[tuple[str, str], dict[str, dict]]) -> list[str]:
    lines = []
    worst = None
    for (case, mode), contenders in sorted(by_case.items()):
        best_name, best = fastest_tt_contender(contenders)
        ratio = contenders["auto"]["median_ms"] / best["median_ms"]
        if ratio > 1.1:
            lines.append(
                f"MISSED: {case} {mode}: auto ({contenders['auto']['auto_choice']}) takes {ratio:.2f}x the "
                f"fastest strategy ({best_name})"
            )
        if worst is None or ratio > worst[0]:
            worst = (ratio, case, mode)
    if worst is not None:
        lines.append(f"{'MET' if worst[0] <= 1.1 else 'MISSED'}: auto within 1.1x of the fastest strategy on every "
                     f"case (worst {worst[0]:.2f}x on {worst[1]} {worst[2]})")
    return lines


def _few_flops_not_slower_target(by_case: dict[tuple[str, str], dict[str, dict]]) -> str:
    slow = []
    for (case, mode), contenders in sorted(by_case.items()):
        auto = contenders["auto"]
        if auto["dense_flops_ratio"] < 0.5 and auto["speedup_vs_linear"] < 1.0:
            slow.append(f"{case} {mode} ({auto['speedup_vs_linear']:.2f}x)")
    return (
        ("MET" if not slow else "MISSED")
        + ": no TT case (auto) slower than nn.Linear when its FLOPs are under half the dense FLOPs"
        + (": " + ", ".join(slow) if slow else "")
    )


def _training_targets(training_rows: list[dict]) -> list[str]:
    lines = []
    for row in training_rows:
        if row["net"] == "dense":
            continue
        status = "MET" if row["dense_over_net"] > 1.0 else "MISSED"
        lines.append(
            f"{status}: MNIST training step (batch {row['batch']}) with {row['net']}: {row['median_ms']:.2f} ms, "
            f"dense net / TT net = {row['dense_over_net']:.2f}"
        )
    return lines


def _case_order(key: tuple[str, str]) -> int:
    return [case.name for case in CASES].index(key[0]) if key[0] in CASE_NAMES else 0


def summary_markdown(rows: list[dict], training_rows: list[dict], header: str) -> str:
    """Markdown tables of the results (pasted into BENCHMARKS.md): per thread count (when the rows
    record it), one per mode and one for the training step.

    Each case shows every contender's median, auto's speedups over ``nn.Linear`` and
    TensorLy-Torch as the median of the per-round ratios with their interquartile range
    (when recorded; else the ratio of the medians), auto's GFLOP/s and its share of the machine's GEMM limit (``limit_gflops``:
    a large square sgemm at the same thread count, measured right after the case).
    """
    out = [header, ""]
    for threads, (case_rows, group_training) in _by_threads(rows, training_rows):
        if threads is not None:
            limits = sorted(row["limit_gflops"] for row in case_rows if row.get("limit_gflops"))
            limit_text = (f" (GEMM limit: a {GEMM_LIMIT_SIZE}^3 float32 GEMM at {limits[len(limits) // 2]:.0f} GFLOP/s, "
                          f"{limits[0]:.0f}-{limits[-1]:.0f} over the cases)") if limits else ""
            out += [f"## {_threads_text(threads)}{limit_text}", ""]
        out += _case_tables(case_rows) + _training_table(group_training)
    return "\n".join(out)


def _case_tables(rows: list[dict]) -> list[str]:
    """One markdown table per mode of these (one thread count's) case rows."""
    out = []
    by_case = _by_case(rows)
    names = list(CONCRETE_STRATEGIES)
    for mode in MODES:
        keys = [key for key in by_case if key[1] == mode]
        if not keys:
            continue
        out.append(f"### {mode}" + (" (no_grad)" if mode == "forward" else " (forward + backward, input needs grad)"))
        out.append("")
        extras = [name for name in ("tltorch", "compiled") if any(name in by_case[key] for key in keys)]
        has_limit = any("limit_gflops" in row for key in keys for row in by_case[key].values())
        out.append(
            "| case | nn.Linear ms | " + " | ".join(f"{n} ms" for n in names + extras)
            + " | auto ms (choice) | speedup auto | auto / fastest |"
            + (" auto vs tltorch |" if "tltorch" in extras else "") + " TT GFLOP/s |"
            + (" % of GEMM limit |" if has_limit else "") + " dense GFLOP/s |"
        )
        out.append("|" + "---|" * (len(names) + len(extras) + 7 + ("tltorch" in extras) + has_limit))
        for key in sorted(keys, key=_case_order):
            contenders = by_case[key]
            linear, auto = contenders["nn.Linear"], contenders["auto"]
            _, best = fastest_tt_contender(contenders)
            cells = [f"{contenders[n]['median_ms']:.3f}" if n in contenders else "-" for n in names + extras]
            versus = ""
            if "tltorch" in extras:
                versus = (f" {_speedup(auto, contenders['tltorch'], 'over_tltorch_median'):.2f}x"
                          f"{_spread(auto, 'over_tltorch_q1_q3')} |" if "tltorch" in contenders else " - |")
            limit = ""
            if has_limit:
                limit = f" {100 * auto['gflops'] / auto['limit_gflops']:.0f}% |" if auto.get("limit_gflops") else " - |"
            out.append(
                f"| {key[0]} | {linear['median_ms']:.3f} | " + " | ".join(cells)
                + f" | {auto['median_ms']:.3f} ({auto['auto_choice']}) | {_speedup(auto, linear, 'over_linear_median'):.2f}x"
                + _spread(auto, "over_linear_q1_q3")
                + f" | {auto['median_ms'] / best['median_ms']:.2f} |{versus} {auto['gflops']:.1f} |{limit} {linear['gflops']:.1f} |"
            )
        out.append("")
    return out


def _spread(row: dict, key: str) -> str:
    """`` (a-b)``: the interquartile range of a per-round ratio, when the row has it."""
    return f" ({row[key]})" if row.get(key) else ""


def _training_table(training_rows: list[dict]) -> list[str]:
    if not training_rows:
        return []
    out = ["### MNIST net, one Adam step, batch %d" % training_rows[0]["batch"], "",
           "| net | parameters | median ms | dense / net | TT plan |", "|---|---|---|---|---|"]
    for row in training_rows:
        out.append(
            f"| {row['net']} | {row['parameters']} | {row['median_ms']:.3f} | {row['dense_over_net']:.2f} "
            f"| {row['auto_choice']} |"
        )
    out.append("")
    return out


def case_line(case_rows: list[dict]) -> str:
    """One progress line of a measured case: every contender's median, auto's choice and speedups, the load."""
    contenders = {row["contender"]: row for row in case_rows}
    auto, linear = contenders["auto"], contenders["nn.Linear"]
    best_name, best = fastest_tt_contender(contenders)
    others = " ".join(f"{name} {contenders[name]['median_ms']:.3f}" for name in ("tltorch", "compiled") if name in contenders)
    return (
        f"{auto['case']:28s} {auto['mode']:8s} nn.Linear {linear['median_ms']:9.3f} ms | "
        + " ".join(f"{name} {row['median_ms']:.3f}" for name, row in contenders.items() if name not in _NOT_STRATEGIES)
        + (f" | {others}" if others else "")
        + f" | auto {auto['median_ms']:.3f} ({auto['auto_choice']}) speedup {auto['speedup_vs_linear']:.2f}x"
        + f", auto/fastest({best_name}) {auto['median_ms'] / best['median_ms']:.2f}"
        + f"; other load {auto['foreign_load']:.2f}"
    )


def training_line(row: dict) -> str:
    """One progress line of a net's measured training step."""
    return f"MNIST step {row['net']:6s} {row['median_ms']:8.3f} ms  dense/net {row['dense_over_net']:.2f} {row['auto_choice']}"


def write_figure(rows: list[dict], out_dir: Path, machine: str) -> list[Path]:
    """Speedup over ``nn.Linear`` of each contender, per case; HTML always, PNG if kaleido works.

    ``machine`` describes the machine in the title. Returns the files written.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    modes = [mode for mode in MODES if any(row["mode"] == mode for row in rows)]
    thread_counts = sorted({row.get("threads") for row in rows}, key=lambda value: (value is not None, value or 0))
    panels = [(mode, threads) for threads in thread_counts for mode in modes]
    titles = [mode + ("" if threads is None else f", {_threads_text(threads)}") for mode, threads in panels]
    figure = make_subplots(rows=len(panels), cols=1, subplot_titles=titles, shared_xaxes=False)
    names = list(CONCRETE_STRATEGIES) + ["auto", "tltorch", "compiled"]
    palette = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d", "#e45756", "#72b7b2", "#eeca3b"]
    for index, (mode, threads) in enumerate(panels, start=1):
        mode_rows = [row for row in rows if row["mode"] == mode and row.get("threads") == threads]
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
        title=f"TT layer vs nn.Linear ({machine})", barmode="group", height=420 * len(panels), width=1400,
        font={"size": 11},
    )
    written = []
    html_path = out_dir / "bench.html"
    written.append(write_atomic(html_path, figure.to_html(include_plotlyjs="cdn")))
    png_path = out_dir / "bench.png"
    try:
        written.append(write_atomic(png_path, figure.to_image(format="png")))
    except WriteError:
        raise
    except Exception as error:  # kaleido needs a working Chrome/Chromium
        print(f"warning: could not write {png_path} ({type(error).__name__}: {error}); the HTML figure is written",
              file=sys.stderr)
    return written
