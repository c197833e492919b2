"""Pure-Python arithmetic of TT-matrices: sizes, ranks and costs.

Nothing here imports torch, so a UI can call every function on each keystroke.

Conventions (used throughout ttexplore):

* A TT-matrix ``W`` of shape ``(M, N)`` (like ``nn.Linear.weight``: out x in) has
  ``in_modes = (n_1, ..., n_d)`` with ``N = prod(n_k)`` and
  ``out_modes = (m_1, ..., m_d)`` with ``M = prod(m_k)``.
* Core ``k`` (1-based in the maths, 0-based in code) has shape
  ``(r_{k-1}, n_k, m_k, r_k)`` with ``r_0 = r_d = 1``.
* ``ranks`` given by a user is the list of the ``d - 1`` *internal* ranks
  ``(r_1, ..., r_{d-1})``; :func:`full_ranks` adds the two boundary ones.
* Multi-indices are flattened row-major: the first mode is the most significant,
  exactly as ``x.reshape(batch, n_1, ..., n_d)`` does.
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

from ttexplore.tt.limits import MAX_FEATURES, MAX_MODES, approx_text, limit_text, short_repr, whole_number

RanksLike = Union[int, Sequence[int], None]

_NOTHING = object()

__all__ = [
    "modes_text",
    "POWER_FROM",
    "RanksLike",
    "RankPlan",
    "prod",
    "check_modes",
    "check_tt_layer",
    "check_matrix_rank_layer",
    "max_useful_ranks",
    "plan_ranks",
    "check_rel_error",
    "check_rank_caps",
    "full_ranks",
    "core_shapes",
    "param_count",
    "dense_param_count",
    "compression",
    "compression_factor",
    "matrix_rank_param_count",
    "dense_flops",
    "tt_sweep_flops",
    "tt_rebuild_flops",
    "reconstruction_flops",
    "truncation_errors",
    "ranks_for_error",
]


#: Modes are written as a power ``a^k`` from this many equal modes on.
POWER_FROM = 5


def modes_text(modes: Sequence[int]) -> str:
    """``(4, 8, 8, 4)`` -> ``"4x8x8x4"``; ``(2,) * 10`` -> ``"2^10"`` (five or more equal modes).

    The one text form of modes (:mod:`ttexplore.tt.ttshape` writes layers and ranks with it;
    :func:`ttexplore.tt.shapes.parse_modes` reads it back).
    """
    modes = tuple(int(mode) for mode in modes)
    if len(modes) >= POWER_FROM and len(set(modes)) == 1:
        return f"{modes[0]}^{len(modes)}"
    return "x".join(map(str, modes))



def prod(values: Iterable[int]) -> int:
    """Product of integers (1 for an empty sequence)."""
    result = 1
    for value in values:
        result *= int(value)
    return result


def _whole_modes(modes: Sequence[int], field: str) -> tuple[int, ...]:
    """``modes`` as a tuple of ints, each a whole number (``4`` or ``4.0``, never ``4.7`` or ``True``), at most
    :data:`~ttexplore.tt.limits.MAX_MODES` of them."""
    if isinstance(modes, (str, bytes)) or not hasattr(modes, "__iter__"):
        raise ValueError(f"{field} {short_repr(modes)} must be a sequence of whole numbers, e.g. (4, 8, 8, 4)")
    given = list(itertools.islice(modes, MAX_MODES + 1))  # an endless iterable stops here
    if len(given) > MAX_MODES:
        count = f"{len(modes)}" if hasattr(modes, "__len__") else f"more than {MAX_MODES}"
        raise ValueError(f"{field} has {count} modes, more than the {MAX_MODES} a TT layer may have: merge "
                         f"neighbouring modes, e.g. 2x2 into 4")
    return tuple(whole_number(mode, f"{field} {short_repr(tuple(given))}: mode") for mode in given)


def check_modes(in_modes: Sequence[int], out_modes: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validate a pair of mode tuples and return them as tuples of ints.

    The house limits hold here, for every caller: at most :data:`~ttexplore.tt.limits.MAX_MODES`
    modes, at most :data:`~ttexplore.tt.limits.MAX_FEATURES` features a side, whole numbers only
    (``4.0`` is 4; ``4.7`` and ``True`` are refused, never truncated).

    Raises:
        ValueError: naming ``in_modes`` / ``out_modes`` when they are empty, hold a
            non-positive or fractional entry, are too many or too large, or differ in length.

    Complexity: ``O(d)``.
    """
    in_modes = _whole_modes(in_modes, "in_modes")
    out_modes = _whole_modes(out_modes, "out_modes")
    if not in_modes:
        raise ValueError("in_modes is empty: give at least one mode, e.g. 4x8x8x4")
    if not out_modes:
        raise ValueError("out_modes is empty: give at least one mode, e.g. 4x8x8x4")
    for field, modes in (("in_modes", in_modes), ("out_modes", out_modes)):
        if any(mode < 1 for mode in modes):
            raise ValueError(f"{field} {modes_text(modes)} has a mode below 1: every mode must be a positive integer")
        if any(mode > MAX_FEATURES for mode in modes) or prod(modes) > MAX_FEATURES:
            raise ValueError(f"{field} multiply to {approx_text(prod(modes))} features, more than the "
                             f"{limit_text(MAX_FEATURES)} a layer side may have: choose smaller modes")
    if len(in_modes) != len(out_modes):
        raise ValueError(
            f"in_modes {modes_text(in_modes)} has {len(in_modes)} modes but out_modes {modes_text(out_modes)} has "
            f"{len(out_modes)}: both need the same number of modes (pad one with 1s, e.g. 4x8x8x4 and 32x32x1x1)"
        )
    return in_modes, out_modes


def check_tt_layer(
    in_modes: Sequence[int], out_modes: Sequence[int], ranks: RanksLike
) -> tuple[tuple[int, ...], tuple[int, ...], "RankPlan"]:
    """The arguments of a TT layer (``TTLinear``, and every layer built on a TT-matrix), checked against
    the house limits the CLI enforces: the one check every TT layer's constructor calls.

    Modes as :func:`check_modes` (whole numbers, at most ``MAX_MODES`` of them, at most ``MAX_FEATURES``
    a side); ranks as :func:`plan_ranks` (whole numbers of at least 1; ``2.5`` and ``True`` refused).

    Returns:
        ``(in_modes, out_modes, rank_plan)``.

    Raises:
        ValueError: naming the argument and the fix.

    Complexity: ``O(d)``.
    """
    in_modes, out_modes = check_modes(in_modes, out_modes)
    return in_modes, out_modes, plan_ranks(in_modes, out_modes, ranks)


def check_matrix_rank_layer(in_features: int, out_features: int, rank: int) -> tuple[int, int, int]:
    """The arguments of the matrix-rank baseline, checked as the CLI checks them: whole numbers from 1
    to :data:`~ttexplore.tt.limits.MAX_FEATURES` (``True`` and ``2.5`` refused, never truncated).

    Returns:
        ``(in_features, out_features, rank)`` as ints.

    Raises:
        ValueError: naming the argument and the fix.
    """
    values = []
    for field, value in (("in_features", in_features), ("out_features", out_features), ("rank", rank)):
        number = whole_number(value, field)
        if number < 1:
            raise ValueError(f"{field} {number} is below 1: the matrix-rank layer needs {field} >= 1")
        if number > MAX_FEATURES:
            raise ValueError(f"{field} {approx_text(number)} is more than {limit_text(MAX_FEATURES)}: choose a "
                             f"smaller {field}")
        values.append(number)
    return values[0], values[1], values[2]


def max_useful_ranks(in_modes: Sequence[int], out_modes: Sequence[int]) -> list[int]:
    """The largest internal ranks that can still add expressive power.

    ``r_k <= min(prod_{j<=k} n_j m_j, prod_{j>k} n_j m_j)``: the rank of the k-th
    unfolding of a ``prod(n_j m_j)``-element tensor can not exceed either side.

    Returns:
        A list of ``d - 1`` ints.
    """
    in_modes, out_modes = check_modes(in_modes, out_modes)
    sizes = [n * m for n, m in zip(in_modes, out_modes)]
    limits = []
    for k in range(1, len(sizes)):
        limits.append(min(prod(sizes[:k]), prod(sizes[k:])))
    return limits


@dataclass(frozen=True)
class RankPlan:
    """Internal ranks a layer will use, and what was clipped to get them.

    Attributes:
        requested: internal ranks as asked for (``None`` entries never appear:
            ``ranks=None`` requests the maximal ones).
        ranks: internal ranks actually used, ``min(requested, max_useful)``.
        max_useful: the maximal useful internal ranks.
        clipped: ``(k, requested, used)`` for each 1-based internal rank index
            ``k`` that was lowered.
    """

    requested: tuple[int, ...]
    ranks: tuple[int, ...]
    max_useful: tuple[int, ...]
    clipped: tuple[tuple[int, int, int], ...]

    def describe_clipping(self) -> str:
        """A human sentence about the clipped ranks ('' when nothing was clipped)."""
        if not self.clipped:
            return ""
        parts = [f"r_{k}: {asked} -> {used}" for k, asked, used in self.clipped]
        return "ranks above the maximal useful rank were clipped (" + ", ".join(parts) + ")"


def plan_ranks(in_modes: Sequence[int], out_modes: Sequence[int], ranks: RanksLike) -> RankPlan:
    """Resolve a user's ``ranks`` into the internal ranks a layer will use.

    Args:
        in_modes, out_modes: the TT-matrix modes (same length ``d``).
        ranks: an int (every internal rank), a sequence of ``d - 1`` ints, or
            ``None`` (the maximal useful ranks, i.e. an exact representation).

    Raises:
        ValueError: naming ``ranks`` when it has the wrong length or a value below 1.
    """
    in_modes, out_modes = check_modes(in_modes, out_modes)
    d = len(in_modes)
    limits = tuple(max_useful_ranks(in_modes, out_modes))
    if ranks is None:
        requested = limits
    elif isinstance(ranks, bool):
        raise ValueError("ranks must be an int, a list of ints, or None, not a bool")
    elif isinstance(ranks, (str, bytes)) or not hasattr(ranks, "__iter__"):
        value = whole_number(ranks, "ranks")
        if value < 1:
            raise ValueError(f"ranks {value} is below 1: a TT rank must be at least 1")
        requested = (value,) * (d - 1)
    else:
        iterator = iter(ranks)
        given = list(itertools.islice(iterator, d - 1))
        too_many = next(iterator, _NOTHING) is not _NOTHING  # an endless iterable stops here
        requested = tuple(whole_number(r, f"ranks {short_repr(given)}: rank") for r in given)
        if too_many or len(requested) != d - 1:
            count = len(ranks) if hasattr(ranks, "__len__") else f"more than {len(requested)}" if too_many else len(requested)
            raise ValueError(
                f"ranks {short_repr(ranks)} has {count} entries but a {d}-core "
                f"layer has {d - 1} internal ranks: give {d - 1} numbers, or one int for all"
            )
        if any(r < 1 for r in requested):
            raise ValueError(f"ranks {list(requested)} has a value below 1: every TT rank must be at least 1")
    used = tuple(min(r, limit) for r, limit in zip(requested, limits))
    clipped = tuple((k + 1, r, u) for k, (r, u) in enumerate(zip(requested, used)) if r != u)
    return RankPlan(requested=requested, ranks=used, max_useful=limits, clipped=clipped)


def check_rel_error(rel_error: Optional[float], field: str = "rel_error") -> None:
    """Refuse a target relative error a truncation can not mean: not a number, negative, NaN,
    infinite, or 1 and more (which would drop every singular value). ``None`` (no target) passes.

    Raises:
        ValueError: naming ``field`` and the accepted range.
    """
    if rel_error is None:
        return
    if isinstance(rel_error, bool) or not isinstance(rel_error, numbers.Real):
        raise ValueError(f"{field} {rel_error!r:.40} must be a number in [0, 1), e.g. 0.01 for 1% "
                         f"(or None: exact up to the ranks)")
    if not (math.isfinite(rel_error) and 0 <= rel_error < 1):
        raise ValueError(f"{field} {rel_error} must be in [0, 1): the relative Frobenius error to allow, e.g. 0.01 "
                         f"for 1% (1 or more would drop every singular value)")


def check_rank_caps(ranks: RanksLike, count: Optional[int] = None, field: str = "ranks") -> Optional[tuple[int, ...]]:
    """Validate caps on the internal ranks before any SVD runs.

    Args:
        ranks: ``None`` (no cap), one whole number ``>= 1`` (every internal rank) or a
            sequence of them.
        count: the number of internal ranks (``d - 1``); when given, a sequence must
            have exactly that many entries and the caps come back expanded.
        field: the name the messages use (``"ranks"``, ``"max_rank"``).

    Returns:
        ``None`` for no cap, else the caps as a tuple (``count`` of them when ``count`` is given).

    Raises:
        ValueError: naming ``field``, for a cap below 1, a non-whole number or a bool, or a
            sequence of the wrong length.
    """
    if ranks is None:
        return None
    single = not isinstance(ranks, (list, tuple))
    values = [ranks] if single else list(ranks)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{field} {ranks!r:.60} must be whole numbers of at least 1 (caps on the internal ranks), "
                             f"or None for no cap")
    if count is None:
        return tuple(int(value) for value in values)
    if single:
        return (int(ranks),) * count
    if len(values) != count:
        raise ValueError(f"{field} {list(values)!r:.60} has {len(values)} entries but there are {count} internal ranks: "
                         f"give {count} numbers, or one int for all")
    return tuple(int(value) for value in values)


def full_ranks(internal_ranks: Sequence[int]) -> tuple[int, ...]:
    """``(1, r_1, ..., r_{d-1}, 1)`` from the internal ranks."""
    return (1, *(int(r) for r in internal_ranks), 1)


def core_shapes(in_modes: Sequence[int], out_modes: Sequence[int], ranks: RanksLike) -> list[tuple[int, int, int, int]]:
    """Shapes ``(r_{k-1}, n_k, m_k, r_k)`` of the cores, after rank clipping."""
    in_modes, out_modes = check_modes(in_modes, out_modes)
    r = full_ranks(plan_ranks(in_modes, out_modes, ranks).ranks)
    return [(r[k], n, m, r[k + 1]) for k, (n, m) in enumerate(zip(in_modes, out_modes))]


def param_count(in_modes: Sequence[int], out_modes: Sequence[int], ranks: RanksLike = None, bias: bool = False) -> int:
    """Number of weights in the TT cores (plus ``M`` bias entries when ``bias``).

    ``sum_k r_{k-1} n_k m_k r_k`` with ranks clipped to the maximal useful ones.
    The 1024x1024 layer as 4x8x8x4 -> 4x8x8x4 has 160, 576, 1248, 2176 core
    weights at ranks 1, 2, 3, 4.
    """
    count = sum(prod(shape) for shape in core_shapes(in_modes, out_modes, ranks))
    return count + (prod(out_modes) if bias else 0)


def dense_param_count(in_features: int, out_features: int, bias: bool = False) -> int:
    """Weights of the dense ``nn.Linear(in_features, out_features)``: ``N*M`` (+ ``M``)."""
    return int(in_features) * int(out_features) + (int(out_features) if bias else 0)


def compression(in_modes: Sequence[int], out_modes: Sequence[int], ranks: RanksLike = None) -> float:
    """Compression *rate*: TT core weights / dense weights (smaller is more compressed)."""
    return param_count(in_modes, out_modes, ranks) / dense_param_count(prod(in_modes), prod(out_modes))


def compression_factor(in_modes: Sequence[int], out_modes: Sequence[int], ranks: RanksLike = None) -> float:
    """Compression *factor*: dense weights / TT core weights (larger is more compressed)."""
    return 1.0 / compression(in_modes, out_modes, ranks)


def matrix_rank_param_count(in_features: int, out_features: int, rank: int, bias: bool = False) -> int:
    """Weights of the matrix-rank baseline ``x -> B (A x)``, ``A: r x N``, ``B: M x r``."""
    return int(rank) * (int(in_features) + int(out_features)) + (int(out_features) if bias else 0)


def dense_flops(in_features: int, out_features: int, batch: int = 1) -> int:
    """FLOPs of ``x @ W.T`` for ``x`` of shape ``(batch, N)``: ``2 * batch * N * M``.

    (Multiply-adds counted as two FLOPs, as torch's ``FlopCounterMode`` does;
    the bias add is not counted.)
    """
    return 2 * int(batch) * int(in_features) * int(out_features)


def tt_sweep_flops(
    in_modes: Sequence[int], out_modes: Sequence[int], ranks: RanksLike, batch: int = 1, direction: str = "ltr"
) -> int:
    """FLOPs of the core-by-core forward (one GEMM per core).

    Left to right, step ``k`` multiplies a ``(B prod_{j>k} n_j prod_{j<k} m_j) x
    (r_{k-1} n_k)`` matrix by the ``(r_{k-1} n_k) x (m_k r_k)`` core, so costs
    ``2 B r_{k-1} n_k m_k r_k prod_{j>k} n_j prod_{j<k} m_j``. Right to left is the
    mirror image (``prod_{j<k} n_j prod_{j>k} m_j``).

    Complexity of the forward itself: ``O(B d r^2 max(n,m) max(N, M))``.
    """
    in_modes, out_modes = check_modes(in_modes, out_modes)
    r = full_ranks(plan_ranks(in_modes, out_modes, ranks).ranks)
    d = len(in_modes)
    total = 0
    for k in range(d):
        if direction == "ltr":
            rest = prod(in_modes[k + 1 :]) * prod(out_modes[:k])
        elif direction == "rtl":
            rest = prod(in_modes[:k]) * prod(out_modes[k + 1 :])
        else:
            raise ValueError(f"direction {direction!r} is unknown: use 'ltr' or 'rtl'")
        total += 2 * int(batch) * r[k] * in_modes[k] * out_modes[k] * r[k + 1] * rest
    return total


def reconstruction_flops(in_modes: Sequence[int], out_modes: Sequence[int], ranks: RanksLike) -> int:
    """FLOPs of rebuilding the dense ``W`` from its cores, left to right.

    Step ``k`` (k >= 2) multiplies the ``(prod_{j<k} n_j m_j) x r_{k-1}`` partial
    product by the ``r_{k-1} x (n_k m_k r_k)`` core:
    ``2 prod_{j<k}(n_j m_j) r_{k-1} n_k m_k r_k``.
    """
    in_modes, out_modes = check_modes(in_modes, out_modes)
    r = full_ranks(plan_ranks(in_modes, out_modes, ranks).ranks)
    total = 0
    left = in_modes[0] * out_modes[0]
    for k in range(1, len(in_modes)):
        total += 2 * left * r[k] * in_modes[k] * out_modes[k] * r[k + 1]
        left *= in_modes[k] * out_modes[k]
    return total


def tt_rebuild_flops(in_modes: Sequence[int], out_modes: Sequence[int], ranks: RanksLike, batch: int = 1) -> int:
    """FLOPs of the 'rebuild W, then one dense GEMM' forward."""
    return reconstruction_flops(in_modes, out_modes, ranks) + dense_flops(prod(in_modes), prod(out_modes), batch)


def truncation_errors(spectrum: Sequence[float]) -> list[float]:
    """``e[r] = ||sigma[r:]|| / ||sigma||`` for ``r = 0 .. len(spectrum)``: the relative Frobenius
    error of cutting one TT unfolding (singular values ``spectrum``) at rank ``r``."""
    tails = [0.0]  # summed from the smallest value up: no cancellation near zero
    for value in reversed(spectrum):
        tails.append(tails[-1] + float(value) * float(value))
    total = tails[-1]
    return [math.sqrt(tail / total) if total > 0 else 0.0 for tail in reversed(tails)]


def ranks_for_error(spectra: Sequence[Sequence[float]], rel_error: float) -> tuple[int, ...]:
    """The smallest rank of each TT boundary whose own cut stays within ``rel_error / sqrt(d - 1)``,
    given the singular values of each unfolding: the ranks TT-SVD (Oseledets 2011) picks for
    ``rel_error``, which keeps the whole error within it; so what each boundary needs."""
    if not spectra:
        return ()
    share = rel_error / math.sqrt(len(spectra))
    return tuple(max(1, next(r for r, tail in enumerate(truncation_errors(spectrum)) if tail <= share))
                 for spectrum in spectra)
