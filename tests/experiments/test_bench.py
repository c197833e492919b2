"""The benchmark's pure parts: case selection, the report and targets, the non-negative fit, purity."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from ttexplore.cli import main
from ttexplore.experiments.bench import report
from ttexplore.experiments.bench.calibrate import fit_nonnegative
from ttexplore.experiments.bench.cases import CASE_GROUPS, CASES, selected_cases, selected_modes


def test_report_cases_and_command_line_import_without_torch():
    code = (
        "import sys, ttexplore.experiments.bench, ttexplore.experiments.bench.report, ttexplore.cli; "
        "ttexplore.cli.build_parser('bench'); "
        "print(sorted(m for m in ('torch', 'plotly', 'scipy') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_the_package_hands_out_its_modules_names():
    import ttexplore.experiments.bench as bench
    from ttexplore.experiments.bench import calibrate, cases, harness

    assert bench.CASES is cases.CASES and bench.bench_case is harness.bench_case
    assert bench.calibrate_machine is calibrate.calibrate_machine
    with pytest.raises(AttributeError):
        bench.no_such_name


# ---------------------------------------------------------------------------- cases
def test_cases_and_groups_select_in_case_order():
    assert [case.name for case in selected_cases("all")] == [case.name for case in CASES]
    picked = selected_cases("784x625-r4-b128, paper")
    assert [case.name for case in picked] == CASE_GROUPS["paper"] + ["784x625-r4-b128"]
    assert selected_modes("train, forward") == ["train", "forward"]
    with pytest.raises(ValueError, match="nope"):
        selected_cases("paper,nope")
    with pytest.raises(ValueError, match="--modes"):
        selected_modes("backward")


def test_a_bad_case_is_one_line_and_exit_code_2(capsys):
    assert main(["bench", "--cases", "nope"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.splitlines() == ["ttexplore bench: error: --cases: 'nope' is neither a case nor a group "
                                  "(all, paper, 1024, small, conv)"]


# ---------------------------------------------------------------------------- the fit
def test_the_nonnegative_fit_recovers_nonnegative_coefficients():
    rng = np.random.default_rng(0)
    features = rng.uniform(0.0, 5.0, size=(40, 4))
    truth = np.array([2.0, 0.5, 0.0, 7.3e-6])
    fitted = fit_nonnegative(features.tolist(), (features @ truth).tolist())
    assert fitted == pytest.approx(truth.tolist(), abs=1e-9)
    assert all(isinstance(value, float) for value in fitted)


def test_a_coefficient_that_would_be_negative_comes_out_zero():
    features = [[1.0, 1.0], [1.0, 2.0], [1.0, 3.0], [1.0, 4.0]]
    targets = [4.0, 3.0, 2.0, 1.0]  # unconstrained: 5 - 1 * x
    intercept, slope = fit_nonnegative(features, targets)
    assert slope == 0.0
    assert intercept == pytest.approx(2.5)  # the best constant: the mean


# ---------------------------------------------------------------------------- the report
def _row(case, mode, contender, median_ms, speedup, auto_choice="", dense_flops_ratio=0.1, foreign_load=0.0):
    return {"case": case, "mode": mode, "contender": contender, "median_ms": median_ms, "speedup_vs_linear": speedup,
            "gflops": 1.5, "auto_choice": auto_choice, "dense_flops_ratio": dense_flops_ratio,
            "foreign_load": foreign_load}


def _case_rows(case, mode, linear_ms, strategies, auto_ms, choice, dense_flops_ratio=0.1):
    rows = [_row(case, mode, "nn.Linear", linear_ms, 1.0, dense_flops_ratio=dense_flops_ratio)]
    rows += [_row(case, mode, name, ms, linear_ms / ms, dense_flops_ratio=dense_flops_ratio)
             for name, ms in strategies.items()]
    rows.append(_row(case, mode, "auto", auto_ms, linear_ms / auto_ms, choice, dense_flops_ratio))
    return rows


PAPER_B1 = _case_rows("paper-25088x4096-r4-b1", "forward", 30.0, {"ltr": 2.0, "rtl": 1.0}, 1.0, "rtl")
SMALL = _case_rows("1024x1024-r2-b1", "train", 0.5, {"ltr": 0.4, "rtl": 0.2, "einsum": 0.3}, 0.3, "einsum")
TRAINING = [
    {"net": "dense", "batch": 128, "parameters": 1000, "median_ms": 10.0, "dense_over_net": 1.0, "auto_choice": ""},
    {"net": "tt-r2", "batch": 128, "parameters": 50, "median_ms": 8.0, "dense_over_net": 1.25, "auto_choice": "rtl"},
    {"net": "tt-r8", "batch": 128, "parameters": 90, "median_ms": 20.0, "dense_over_net": 0.5, "auto_choice": "einsum"},
]


def test_targets_say_met_and_missed():
    lines = report.evaluate_targets(PAPER_B1 + SMALL, TRAINING)
    assert lines == [
        "MET: paper-25088x4096-r4-b1 forward: auto is 30.0x faster than nn.Linear (target 20x; fastest strategy rtl 30.0x)",
        "MISSED: 1024x1024-r2-b1 train: auto (einsum) takes 1.50x the fastest strategy (rtl)",
        "MISSED: auto within 1.1x of the fastest strategy on every case (worst 1.50x on 1024x1024-r2-b1 train)",
        "MET: no TT case (auto) slower than nn.Linear when its FLOPs are under half the dense FLOPs",
        "MET: MNIST training step (batch 128) with tt-r2: 8.00 ms, dense net / TT net = 1.25",
        "MISSED: MNIST training step (batch 128) with tt-r8: 20.00 ms, dense net / TT net = 0.50",
    ]


def test_a_cheap_case_slower_than_linear_misses_its_target():
    slow = _case_rows("784x625-r4-b1", "forward", 0.2, {"rtl": 0.25}, 0.25, "rtl", dense_flops_ratio=0.05)
    assert report.evaluate_targets(slow, [])[-1] == (
        "MISSED: no TT case (auto) slower than nn.Linear when its FLOPs are under half the dense FLOPs: "
        "784x625-r4-b1 forward (0.80x)"
    )


def test_summary_markdown_tables():
    text = report.summary_markdown(SMALL + PAPER_B1, TRAINING, "Machine: test.")
    lines = text.splitlines()
    assert lines[0] == "Machine: test."
    assert "### forward (no_grad)" in lines and "### train (forward + backward, input needs grad)" in lines
    # the paper case comes first (case order), its missing strategies as "-"
    assert lines[4] == ("| case | nn.Linear ms | ltr ms | rtl ms | blocked ms | einsum ms | dense ms | auto ms (choice) "
                        "| speedup auto | auto / fastest | TT GFLOP/s | dense GFLOP/s |")
    assert ("| paper-25088x4096-r4-b1 | 30.000 | 2.000 | 1.000 | - | - | - | 1.000 (rtl) | 30.00x | 1.00 | 1.5 | 1.5 |"
            in lines)
    assert "| 1024x1024-r2-b1 | 0.500 | 0.400 | 0.200 | - | 0.300 | - | 0.300 (einsum) | 1.67x | 1.50 | 1.5 | 1.5 |" in lines
    assert "### MNIST net, one Adam step, batch 128" in lines
    assert "| tt-r8 | 90 | 20.000 | 0.50 | einsum |" in lines


def test_progress_lines():
    line = report.case_line(SMALL)
    assert line.startswith("1024x1024-r2-b1              train    nn.Linear     0.500 ms | ltr 0.400 rtl 0.200 einsum 0.300")
    assert line.endswith("| auto 0.300 (einsum) speedup 1.67x, auto/fastest(rtl) 1.50; other load 0.00")
    assert report.training_line(TRAINING[1]) == "MNIST step tt-r2     8.000 ms  dense/net 1.25 rtl"
    assert report.fastest_tt_contender({row["contender"]: row for row in SMALL})[0] == "rtl"


def test_csv_has_a_header_and_a_line_per_row(tmp_path):
    path = tmp_path / "bench.csv"
    report.write_csv(path, SMALL)
    with open(path, newline="") as handle:
        read = list(csv.DictReader(handle))
    assert [row["contender"] for row in read] == ["nn.Linear", "ltr", "rtl", "einsum", "auto"]
    assert read[2]["median_ms"] == "0.2"
    report.write_csv(tmp_path / "empty.csv", [])
    assert not (tmp_path / "empty.csv").exists()


# ---------------------------------------------------------------------------- the other contenders
EVAL = _case_rows("784x625-r4-b1", "forward", 0.05, {"rtl": 0.14}, 0.055, "stored W", dense_flops_ratio=0.05)
EVAL += [_row("784x625-r4-b1", "forward", "tltorch", 0.2, 0.25), _row("784x625-r4-b1", "forward", "compiled", 0.09, 0.55)]


def test_tltorch_and_compiled_rows_are_contenders_not_strategies():
    contenders = {row["contender"]: row for row in EVAL}
    assert report.fastest_tt_contender(contenders)[0] == "rtl"
    lines = report.evaluate_targets(EVAL, [])
    assert "MET: 784x625-r4-b1 forward: auto (stored W) takes 1.10x nn.Linear's time (target <= 1.2x)" in lines
    text = report.summary_markdown(EVAL, [], "Machine: test.").splitlines()
    assert text[4].endswith("| tltorch ms | compiled ms | auto ms (choice) | speedup auto | auto / fastest "
                            "| auto vs tltorch | TT GFLOP/s | dense GFLOP/s |")
    assert "| 784x625-r4-b1 | 0.050 | - | 0.140 | - | - | - | 0.200 | 0.090 | 0.055 (stored W) | 0.91x | 0.39 | 3.64x |" \
        in "\n".join(text)
    assert report.case_line(EVAL).split(" | ")[2] == "tltorch 0.200 compiled 0.090"


def test_tltorch_contender_is_built_when_installed_and_skipped_when_not(monkeypatch):
    import torch

    from ttexplore.experiments.bench import harness
    from ttexplore.experiments.bench.cases import CASES

    case = next(case for case in CASES if case.name == "784x625-r4-b1")
    try:
        import tltorch  # noqa: F401
    except ImportError:
        assert harness.tltorch_layer(case) is None
    else:
        layer = harness.tltorch_layer(case)
        assert layer(torch.randn(3, 784)).shape == (3, 625)
        # the same TT weights as ours: r = 4 between the 4 cores
        assert list(layer.weight.rank) == [1, 4, 4, 4, 1]
    monkeypatch.setitem(__import__("sys").modules, "tltorch", None)  # makes `import tltorch` fail
    assert harness.tltorch_layer(case) is None
    contenders, _ = harness._case_contenders(case, skip_huge_dense=True)
    assert "tltorch" not in contenders and {"nn.Linear", "auto", "rtl"} <= set(contenders)


def test_bench_on_an_absent_device_is_one_line(capsys):
    import torch

    if torch.cuda.is_available():
        import pytest as _pytest

        _pytest.skip("checks the message for a machine without CUDA; this one has a GPU")
    assert main(["bench", "--device", "cuda", "--cases", "784x625-r4-b1"]) == 2
    assert capsys.readouterr().err.strip() == ("ttexplore bench: error: --device cuda: no CUDA device on this machine: "
                                               "use --device cpu or auto")
    assert main(["bench", "--device", "tpu"]) == 2
    assert "device 'tpu' is unknown: use one of auto, cpu, cuda, cuda:N, mps" in capsys.readouterr().err


# ---------------------------------------------------------------------------- convolution cases
def test_conv_cases_split_from_the_fully_connected_ones():
    from ttexplore.experiments.bench.cases import CASE_NAMES
    from ttexplore.experiments.bench.conv_cases import CONV_CASES, split_cases

    linear, conv = split_cases("paper, conv256-r4-b16, 1024x1024-r1-b1", CASE_NAMES, CASE_GROUPS)
    assert linear == "paper,1024x1024-r1-b1" and [case.name for case in conv] == ["conv256-r4-b16"]
    linear, conv = split_cases("conv", CASE_NAMES, CASE_GROUPS)
    assert linear == "" and conv == list(CONV_CASES)
    assert conv[1].in_modes == (4, 8, 8) and conv[1].ranks == 4 and conv[1].padding == 1


def test_a_conv_only_run_names_unknown_cases_and_bad_thread_counts(capsys):
    assert main(["bench", "--cases", "conv", "--threads", "2,zero"]) == 2
    assert "--threads" in capsys.readouterr().err


def test_ratio_spread_is_taken_round_by_round():
    from ttexplore.experiments.bench.conv_cases import ratio_spread

    # rounds where the reference took 10x, 4x, 2x, 5x and 6x the contender's time
    low, middle, high = ratio_spread([1.0, 2.0, 3.0, 1.0, 0.5], [10.0, 8.0, 6.0, 5.0, 3.0])
    assert middle == 5.0 and low < middle < high


def _conv_row(contender, median_ms, speedup, **extra):
    row = {"case": "conv256-r4-b16", "mode": "forward", "threads": 2, "contender": contender, "median_ms": median_ms,
           "speedup_vs_conv": speedup, "speedup_p25": speedup * 0.9, "speedup_p75": speedup * 1.1, "params": 1572,
           "auto_choice": "", "foreign_load": 0.1}
    row.update(extra)
    return row


def test_the_conv_targets_and_tables():
    from ttexplore.experiments.bench.conv_cases import conv_summary_markdown, evaluate_conv_targets

    rows = [_conv_row("nn.Conv2d", 100.0, 1.0), _conv_row("tltorch", 15.0, 6.7),
            _conv_row("auto", 19.0, 5.3, auto_choice="channels rtl", tltorch_over_auto=0.79, tltorch_over_auto_p25=0.7,
                      tltorch_over_auto_p75=0.9)]
    targets = evaluate_conv_targets(rows)
    assert targets[0].startswith("MET: conv256-r4-b16 forward, 2 thread(s)") and "5.30x" in targets[0]
    assert targets[1].startswith("MISSED") and "0.79x" in targets[1]
    table = conv_summary_markdown(rows, "header")
    assert "#### forward (no_grad), 2 threads" in table
    assert "| conv256-r4-b16 | 1572 | 100.00 | 19.00 |" in table and "| channels rtl | 5.30 (4.77-5.83) | 0.79 (0.70-0.90)" in table


# ---------------------------------------------------------------------------- thread counts, TensorLy-Torch, the GEMM limit
def _at(rows, threads, **extra):
    return [{**row, "threads": threads, **extra} for row in rows]


def test_each_thread_count_gets_its_own_tables_and_targets():
    vgg = _case_rows("paper-25088x4096-r4-b100", "forward", 100.0, {"blocked": 8.0, "rtl": 20.0}, 8.0, "blocked")
    vgg.append(_row("paper-25088x4096-r4-b100", "forward", "tltorch", 12.0, 100 / 12))
    for row in vgg:
        if row["contender"] == "auto":
            row.update(over_linear_q1_q3="11.90-12.60", over_tltorch_q1_q3="1.41-1.55")
    one = _at(vgg, 1, limit_gflops=160.0)
    two = _at([{**row, "median_ms": row["median_ms"] * (1.2 if row["contender"] == "auto" else 1.0)} for row in vgg], 2,
              limit_gflops=300.0)
    lines = report.evaluate_targets(one + two, [])
    assert ("[1 thread] MET: paper-25088x4096-r4-b100 forward: auto (blocked) is 1.50x faster than TensorLy-Torch's "
            "FactorizedLinear (per round 1.41-1.55) (target >= 1.3x)") in lines
    assert ("[2 threads] MISSED: paper-25088x4096-r4-b100 forward: auto (blocked) is 1.25x faster than TensorLy-Torch's "
            "FactorizedLinear (per round 1.41-1.55) (target >= 1.3x)") in lines
    assert "[2 threads] MISSED: auto within 1.1x of the fastest strategy on every case (worst 1.20x on " \
           "paper-25088x4096-r4-b100 forward)" in lines
    text = report.summary_markdown(one + two, [], "Machine: test.").splitlines()
    assert text.index("## 1 thread (GEMM limit: a 2048^3 float32 GEMM at 160 GFLOP/s, 160-160 over the cases)") < \
        text.index("## 2 threads (GEMM limit: a 2048^3 float32 GEMM at 300 GFLOP/s, 300-300 over the cases)")
    header = next(line for line in text if line.startswith("| case"))
    assert header.endswith("| auto vs tltorch | TT GFLOP/s | % of GEMM limit | dense GFLOP/s |")
    # auto's 1.5 GFLOP/s of a 160 GFLOP/s limit: 1%; the speedups with their per-round spread
    assert "| 8.000 (blocked) | 12.50x (11.90-12.60) | 1.00 | 1.50x (1.41-1.55) | 1.5 | 1% | 1.5 |" in "\n".join(text)


def test_thread_counts_on_the_command_line():
    from ttexplore.experiments.bench.cases import selected_threads

    assert selected_threads("1,default", 2, 2) == [1, 2]
    assert selected_threads("all, 1, 1", 4, 8) == [1, 8]
    for bad in ("0", "-1", "1.5", "", "abc", "100"):
        with pytest.raises(ValueError, match="--threads"):
            selected_threads(bad, 2, 2)


def test_a_bad_thread_count_is_one_line_and_exit_code_2(capsys):
    assert main(["bench", "--threads", "0"]) == 2
    assert capsys.readouterr().err.strip().startswith("ttexplore bench: error: --threads: '0' is not a thread count")


def test_speedups_are_per_round_medians_where_the_rows_have_them():
    rows = _case_rows("784x625-r4-b1", "forward", 0.05, {"rtl": 0.14}, 0.055, "stored W", dense_flops_ratio=0.05)
    for row in rows:
        if row["contender"] == "auto":  # the ratio of the medians would be 0.91 (0.05 / 0.055)
            row.update(over_linear_median=0.87, over_linear_q1_q3="0.84-0.90")
    lines = report.evaluate_targets(rows, [])
    assert "MET: 784x625-r4-b1 forward: auto (stored W) takes 1.15x nn.Linear's time (target <= 1.2x)" in lines
    assert "| 0.055 (stored W) | 0.87x (0.84-0.90) |" in report.summary_markdown(rows, [], "Machine: test.")
