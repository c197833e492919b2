"""The benchmark's cases and modes, and picking them from the command line (pure Python, no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from ttexplore.tt import ttmath

__all__ = ["BenchCase", "CASES", "CASE_NAMES", "CASE_GROUPS", "TRAINING_RANKS", "MODES", "GEMM_LIMIT_SIZE",
           "selected_cases", "selected_modes", "selected_threads"]


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
        if batch == 128:  # the MNIST layer at the paper's batch of 100, as measured against TensorLy-Torch
            cases.append(BenchCase("1024x1024-r4-b100", (4, 8, 8, 4), (4, 8, 8, 4), 4, 100))
        cases.append(BenchCase(f"784x625-r4-b{batch}", (4, 7, 4, 7), (5, 5, 5, 5), 4, batch))
        cases.append(BenchCase(f"4096x4096-r8-b{batch}", (8,) * 4, (8,) * 4, 8, batch))
    return tuple(cases)


#: Every benchmark case: the paper's 25088x4096 layer (Table 3) at batch 1 and
#: 100; 1024x1024 (4x8x8x4) at ranks 1, 2, 4, 8, 784 -> 625 and 4096x4096 (8^4,
#: r=8), each at batch 1 and 128; the MNIST layer (1024x1024, r=4) also at batch 100.
CASES = _cases()

CASE_NAMES = {case.name for case in CASES}

#: Names usable in ``--cases`` besides single case names.
CASE_GROUPS = {
    "all": [case.name for case in CASES],
    "paper": [case.name for case in CASES if case.name.startswith("paper")],
    "1024": [case.name for case in CASES if case.name.startswith("1024x1024")],
    "small": [case.name for case in CASES if not case.name.startswith(("paper", "4096"))],
}

#: Side of the square float32 GEMM whose speed the report gives as the machine's limit.
GEMM_LIMIT_SIZE = 2048

#: Training-step ranks of the MNIST net's TT layer.
TRAINING_RANKS = (1, 2, 4, 8)

#: Modes: "forward" runs under ``torch.no_grad``; "train" is forward plus
#: backward with the input requiring a gradient (a hidden layer).
MODES = ("forward", "train")


def selected_cases(spec: str) -> list[BenchCase]:
    """The cases a ``--cases`` value names (comma-separated case names and groups), in :data:`CASES` order.

    Raises:
        ValueError: a name is neither a case nor a group, or the value names none.
    """
    names: list[str] = []
    for token in (part.strip() for part in spec.split(",") if part.strip()):
        if token in CASE_GROUPS:
            names += CASE_GROUPS[token]
        elif token in CASE_NAMES:
            names.append(token)
        else:
            raise ValueError(f"--cases: {token!r} is neither a case nor a group ({', '.join(CASE_GROUPS)})")
    if not names:
        raise ValueError(f"--cases {spec!r} names no case: give case names or groups, e.g. --cases paper "
                         f"({', '.join(CASE_GROUPS)})")
    return [case for case in CASES if case.name in names]


def selected_modes(spec: str) -> list[str]:
    """The modes a ``--modes`` value names (comma-separated).

    Raises:
        ValueError: a mode is not one of :data:`MODES`, or the value names none.
    """
    modes = [mode.strip() for mode in spec.split(",") if mode.strip()]
    if not modes:
        raise ValueError(f"--modes {spec!r} names no mode: use {', '.join(MODES)} (comma-separated)")
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"--modes: {mode!r} is unknown: use {', '.join(MODES)}")
    return modes


def selected_threads(spec: str, default_threads: int, cores: int) -> list[int]:
    """The torch thread counts a ``--threads`` value names (comma-separated whole numbers, ``default``:
    torch's default ``default_threads``, ``all``: the ``cores``), sorted, each once.

    Raises:
        ValueError: an entry is not a whole number from 1 to 4 x ``cores``, nor a name.
    """
    counts = set()
    for token in (part.strip() for part in str(spec).split(",")):
        if token == "default":
            counts.add(default_threads)
        elif token == "all":
            counts.add(cores)
        elif token.isdigit() and 1 <= int(token) <= 4 * cores:
            counts.add(int(token))
        else:
            raise ValueError(f"--threads: {token!r} is not a thread count: give whole numbers from 1 to {4 * cores} "
                             f"(this machine has {cores} cores), 'default' (torch's, {default_threads} here) or 'all', "
                             f"comma-separated, e.g. 1,default")
    return sorted(counts)
