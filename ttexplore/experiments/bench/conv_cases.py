"""The benchmark's convolution cases, picking them from the command line, and their report (pure Python, no torch).

The measuring is :mod:`ttexplore.experiments.bench.conv_harness`; ``python -m ttexplore
bench --cases conv`` runs every case here (``--cases`` also takes single names, mixed with
the fully-connected ones).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from ttexplore.tt import ttmath

__all__ = ["ConvBenchCase", "CONV_CASES", "CONV_CASE_NAMES", "CONV_GROUP", "CONV_CONTENDERS", "split_cases",
           "ratio_spread", "conv_case_line", "conv_summary_markdown", "evaluate_conv_targets"]


@dataclass(frozen=True)
class ConvBenchCase:
    """One TT convolution at one batch and image size (square images, ``stride`` 1, ``padding`` keeping the size)."""

    name: str
    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]
    ranks: int
    kernel: int
    image: int
    batch: int

    @property
    def in_channels(self) -> int:
        return ttmath.prod(self.in_modes)

    @property
    def out_channels(self) -> int:
        return ttmath.prod(self.out_modes)

    @property
    def padding(self) -> int:
        return self.kernel // 2


def _conv_cases() -> tuple[ConvBenchCase, ...]:
    cases = [ConvBenchCase(f"conv256-r{rank}-b16", (4, 8, 8), (4, 8, 8), rank, 3, 32, 16) for rank in (2, 4, 8)]
    cases.append(ConvBenchCase("conv16to64-r4-b16", (4, 4), (8, 8), 4, 3, 32, 16))
    cases.append(ConvBenchCase("conv3to64-r4-b16", (1, 3), (8, 8), 4, 3, 32, 16))
    return tuple(cases)


#: The convolution cases: 256 -> 256 channels as 4x8x8 -> 4x8x8, 3x3, 32x32 images, batch 16, at ranks
#: 2, 4 and 8 (the issue's case is r = 4); two first-layer-like cases with few input channels,
#: 16 -> 64 (4x4 -> 8x8) and 3 -> 64 (1x3 -> 8x8), rank 4.
CONV_CASES = _conv_cases()

CONV_CASE_NAMES = {case.name for case in CONV_CASES}

#: The ``--cases`` group naming every convolution case.
CONV_GROUP = "conv"

#: Contenders that are not one of TTConv2d's strategies.
CONV_DENSE, CONV_TLTORCH, CONV_TEDNET = "nn.Conv2d", "tltorch", "tednet"
CONV_CONTENDERS = (CONV_DENSE, CONV_TLTORCH, CONV_TEDNET)


def split_cases(spec: str, linear_names: set[str], linear_groups: dict[str, list[str]]) -> tuple[str, list[ConvBenchCase]]:
    """Split a ``--cases`` value into the fully-connected part (comma-separated text, for
    :func:`~ttexplore.experiments.bench.cases.selected_cases`) and the convolution cases it names.

    Raises:
        ValueError: a name is neither a case nor a group of either kind.
    """
    linear, conv = [], []
    for token in (part.strip() for part in spec.split(",") if part.strip()):
        if token == CONV_GROUP:
            conv += [case.name for case in CONV_CASES]
        elif token in CONV_CASE_NAMES:
            conv.append(token)
        elif token in linear_names or token in linear_groups:
            linear.append(token)
        else:
            groups = ", ".join([*linear_groups, CONV_GROUP])
            raise ValueError(f"--cases: {token!r} is neither a case nor a group ({groups})")
    return ",".join(linear), [case for case in CONV_CASES if case.name in conv]


# ---------------------------------------------------------------------------- the report
def ratio_spread(times: list[float], reference: list[float]) -> tuple[float, float, float]:
    """``(p25, median, p75)`` of the per-round ratios ``reference / times`` (rounds interleaved, so each ratio
    compares two runs made under the same load)."""
    ratios = sorted(ref / own for own, ref in zip(times, reference) if own > 0)
    if len(ratios) < 2:
        value = ratios[0] if ratios else float("nan")
        return value, value, value
    quartiles = statistics.quantiles(ratios, n=4)
    return quartiles[0], statistics.median(ratios), quartiles[2]


def _by_case(rows: list[dict]) -> dict[tuple[str, str, int], dict[str, dict]]:
    by_case: dict[tuple[str, str, int], dict[str, dict]] = {}
    for row in rows:
        by_case.setdefault((row["case"], row["mode"], row["threads"]), {})[row["contender"]] = row
    return by_case


def conv_case_line(case_rows: list[dict]) -> str:
    """One progress line of a measured convolution case."""
    contenders = {row["contender"]: row for row in case_rows}
    first = case_rows[0]
    parts = " ".join(f"{name} {row['median_ms']:.2f}" for name, row in contenders.items())
    auto = contenders["auto"]
    return (f"{first['case']:20s} {first['mode']:8s} {first['threads']} thr | {parts} ms | auto ({auto['auto_choice']}) "
            f"{auto['speedup_vs_conv']:.2f}x nn.Conv2d; other load {first['foreign_load']:.2f}")


def conv_summary_markdown(rows: list[dict], header: str) -> str:
    """Markdown tables of the convolution results: one per mode and thread count."""
    out = [header, ""]
    by_case = _by_case(rows)
    order = [case.name for case in CONV_CASES]
    for mode, threads in sorted({(key[1], key[2]) for key in by_case}, key=lambda item: (item[0] != "forward", -item[1])):
        keys = sorted((key for key in by_case if key[1:] == (mode, threads)), key=lambda key: order.index(key[0]))
        names = [name for name in (CONV_DENSE, "auto", "channels", "spatial", "im2col", "dense", CONV_TLTORCH, CONV_TEDNET)
                 if any(name in by_case[key] for key in keys)]
        out += [f"#### {mode}{' (no_grad)' if mode == 'forward' else ' (forward + backward, input needs grad)'}, "
                f"{threads} thread{'s' if threads > 1 else ''}", ""]
        out.append("| case | TT weights | " + " | ".join(f"{name} ms" for name in names)
                   + " | auto choice | nn.Conv2d / auto (p25-p75) | tltorch / auto (p25-p75) | other load |")
        out.append("|" + "---|" * (len(names) + 6))
        for key in keys:
            contenders = by_case[key]
            auto = contenders["auto"]
            cells = [f"{contenders[name]['median_ms']:.2f}" if name in contenders else "-" for name in names]
            versus = "-"
            if CONV_TLTORCH in contenders:
                versus = f"{auto['tltorch_over_auto']:.2f} ({auto['tltorch_over_auto_p25']:.2f}-{auto['tltorch_over_auto_p75']:.2f})"
            out.append(f"| {key[0]} | {auto['params']} | " + " | ".join(cells) + f" | {auto['auto_choice']} | "
                       f"{auto['speedup_vs_conv']:.2f} ({auto['speedup_p25']:.2f}-{auto['speedup_p75']:.2f}) | {versus} | "
                       f"{auto['foreign_load']:.2f} |")
        out.append("")
    return "\n".join(out)


def evaluate_conv_targets(rows: list[dict]) -> list[str]:
    """The issue's convolution target, per thread count: on ``conv256-r4-b16``, forward without grad, auto at
    least 5x faster than ``nn.Conv2d`` and at least as fast as TensorLy-Torch's TT convolution."""
    lines = []
    for (case, mode, threads), contenders in sorted(_by_case(rows).items()):
        if case != "conv256-r4-b16" or mode != "forward":
            continue
        auto = contenders["auto"]
        speedup = auto["speedup_vs_conv"]
        lines.append(f"{'MET' if speedup >= 5 else 'MISSED'}: {case} forward, {threads} thread(s): auto "
                     f"({auto['auto_choice']}) is {speedup:.2f}x faster than nn.Conv2d (target 5x)")
        if CONV_TLTORCH in contenders:
            ratio = auto["tltorch_over_auto"]
            lines.append(f"{'MET' if ratio >= 1 else 'MISSED'}: {case} forward, {threads} thread(s): tltorch's TT "
                         f"convolution takes {ratio:.2f}x auto's time (target >= 1)")
    return lines
