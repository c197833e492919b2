"""Tensor shapes of a TT layer: parsing, factorizations, suggestions, padding, ranks.

Pure Python (no torch), so a UI can call it on each keystroke.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence

from ttexplore.core.ttmath import dense_param_count, param_count, prod
from ttexplore.core.ttshape import layer_text, modes_text

__all__ = [
    "parse_modes",
    "prime_factors",
    "is_prime",
    "factorizations",
    "balanced_factorization",
    "ShapeSuggestion",
    "suggest_shapes",
    "check_factorizable",
    "next_factorizable",
    "padded_image_side",
    "ranks_for_compression",
]

_SEPARATORS = re.compile(r"\s*[x×X*,]\s*|\s+")


def parse_modes(text: "str | Sequence[int]", field: str = "modes") -> tuple[int, ...]:
    """Parse ``"4x8x8x4"`` (also ``4×8×8×4``, ``4*8*8*4``, ``4,8,8,4``, ``2^10``) into ints.

    ``a^k`` repeats ``a`` k times (``2^10`` is ten 2s, as in the 2018 reproduction's figures).

    Raises:
        ValueError: naming ``field`` and showing a valid example.
    """
    if not isinstance(text, str):
        modes = tuple(int(m) for m in text)
    else:
        stripped = text.strip()
        if not stripped:
            raise ValueError(f"{field} is empty: type the modes separated by x, e.g. 4x8x8x4")
        modes_list: list[int] = []
        for token in _SEPARATORS.split(stripped):
            if not token:
                continue
            power = re.fullmatch(r"(\d+)\^(\d+)", token)
            if power:
                base, times = int(power.group(1)), int(power.group(2))
                if times < 1 or times > 64:
                    raise ValueError(f"{field} {text!r}: the power in {token!r} must be between 1 and 64")
                modes_list.extend([base] * times)
            elif token.isdigit():
                modes_list.append(int(token))
            else:
                raise ValueError(
                    f"{field} {text!r} is not a shape: {token!r} is not a whole number; "
                    f"write the modes separated by x, e.g. 4x8x8x4 or 2^10"
                )
        modes = tuple(modes_list)
    if not modes:
        raise ValueError(f"{field} is empty: type the modes separated by x, e.g. 4x8x8x4")
    if any(m < 1 for m in modes):
        raise ValueError(f"{field} {modes_text(modes)} has a mode below 1: every mode must be at least 1")
    return modes


def prime_factors(number: int) -> list[int]:
    """Prime factors of ``number`` with multiplicity, ascending (``[]`` for 1)."""
    if number < 1:
        raise ValueError(f"cannot factor {number}: it must be a positive integer")
    factors, divisor = [], 2
    while divisor * divisor <= number:
        while number % divisor == 0:
            factors.append(divisor)
            number //= divisor
        divisor += 1
    if number > 1:
        factors.append(number)
    return factors


def is_prime(number: int) -> bool:
    """True for 2, 3, 5, 7, ..."""
    return number >= 2 and prime_factors(number) == [number]


@lru_cache(maxsize=4096)
def _factorizations(number: int, d: int, min_mode: int) -> tuple[tuple[int, ...], ...]:
    if d == 1:
        return ((number,),) if number >= min_mode else ()
    result = []
    for first in range(min_mode, number + 1):
        if number % first == 0:
            for rest in _factorizations(number // first, d - 1, min_mode):
                result.append((first, *rest))
    return tuple(result)


def factorizations(number: int, d: int, min_mode: int = 2, limit: Optional[int] = None) -> list[tuple[int, ...]]:
    """Every ordered tuple of ``d`` modes ``>= min_mode`` whose product is ``number``.

    The order of modes matters for a TT layer (it changes the ranks' meaning), so
    ``4x8`` and ``8x4`` are both listed. ``limit`` keeps the most balanced ones
    (smallest largest mode, then largest smallest mode, first).

    Raises:
        ValueError: when ``d < 1`` or ``number < 1``.
    """
    if d < 1:
        raise ValueError(f"d {d} is below 1: a TT layer has at least one core")
    if number < 1:
        raise ValueError(f"cannot factor {number}: it must be a positive integer")
    found = list(_factorizations(int(number), int(d), int(min_mode)))
    if limit is not None:
        found.sort(key=lambda modes: (max(modes), -min(modes), modes))
        found = found[:limit]
    return found


def balanced_factorization(number: int, d: int) -> tuple[int, ...]:
    """The factorization into ``d`` modes (``>= 2`` where possible) with the smallest largest mode.

    Modes are arranged small-large-small (``4x8x8x4`` rather than ``4x4x8x8``),
    the order the paper used, which keeps the middle ranks' limits high.
    """
    options = factorizations(number, d, min_mode=2) or factorizations(number, d, min_mode=1)
    best = min(options, key=lambda modes: (max(modes), -min(modes)))
    ordered = sorted(best)
    front, back = [], []
    for index, mode in enumerate(ordered):
        (front if index % 2 == 0 else back).append(mode)
    return tuple(front + back[::-1])


@dataclass(frozen=True)
class ShapeSuggestion:
    """One way of tensorizing an ``N -> M`` layer, with its cost at a rank."""

    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]
    params: int
    compression: float

    @property
    def label(self) -> str:
        """``"4x8x8x4"`` or ``"4x7x4x7->5x5x8x4"`` (:func:`~ttexplore.core.ttshape.layer_text`)."""
        return layer_text(self.in_modes, self.out_modes)


def check_factorizable(features: int, field: str = "features", d: int = 2) -> None:
    """Raise a clear ``ValueError`` when ``features`` has no factorization into ``d`` modes >= 2.

    A prime feature count would only give the useless ``1xN`` shape; the message
    suggests a padded size that factorizes well.
    """
    if d > 1 and not factorizations(features, d, min_mode=2):
        hint = next_factorizable(features, d)
        kind = "is prime" if is_prime(features) else f"has fewer than {d} prime factors ({'x'.join(map(str, prime_factors(features)))})"
        raise ValueError(
            f"{field} {features} {kind}, so it has no {d}-mode factorization (only 1x{features} would do, which "
            f"compresses nothing): pad it to {hint} (= {modes_text(balanced_factorization(hint, d))}) or choose fewer modes"
        )


def next_factorizable(features: int, d: int, max_mode: Optional[int] = None) -> int:
    """The smallest number ``>= features`` that factors into ``d`` modes ``>= 2``,
    each at most ``max_mode`` (default: ``ceil(features^(1/d)) * 2``)."""
    limit = max_mode or max(2, math.ceil(features ** (1.0 / d)) * 2)
    candidate = max(int(features), 2**d)
    while True:
        if any(max(modes) <= limit for modes in factorizations(candidate, d, min_mode=2)):
            return candidate
        candidate += 1


def padded_image_side(side: int) -> int:
    """The next power of two ``>= side`` (28 -> 32, as the paper padded MNIST)."""
    if side < 1:
        raise ValueError(f"image side {side} must be at least 1")
    return 1 << (int(side) - 1).bit_length()


def suggest_shapes(
    in_features: int,
    out_features: int,
    d: Optional[int] = None,
    rank: Optional[int] = 2,
    top: int = 10,
    min_mode: int = 2,
    max_candidates: int = 120,
) -> list[ShapeSuggestion]:
    """Ways to tensorize an ``N -> M`` layer, cheapest (fewest TT weights at ``rank``) first.

    Args:
        in_features, out_features: ``N`` and ``M``.
        d: number of cores; ``None`` tries every ``d`` from 2 to the most prime
            factors either side has.
        rank: the uniform max TT rank to price each shape at (``None``: maximal ranks).
        top: how many to return.
        max_candidates: per side and ``d``, only this many of the most balanced
            factorizations are paired (keeps the search bounded).

    Raises:
        ValueError: when no factorization exists (a prime feature count), naming
            the side and a padded size that works.
    """
    dense = dense_param_count(in_features, out_features)
    if d is None:
        most = min(len(prime_factors(in_features)), len(prime_factors(out_features)))
        depths = list(range(2, most + 1))
        if not depths:
            side, count = ("in_features", in_features) if len(prime_factors(in_features)) < 2 else ("out_features", out_features)
            check_factorizable(count, side, 2)
    else:
        depths = [int(d)]
        check_factorizable(in_features, "in_features", int(d))
        check_factorizable(out_features, "out_features", int(d))
    suggestions = []
    for depth in depths:
        in_options = factorizations(in_features, depth, min_mode, limit=max_candidates)
        out_options = factorizations(out_features, depth, min_mode, limit=max_candidates)
        for in_modes in in_options:
            for out_modes in out_options:
                params = _uniform_rank_params(in_modes, out_modes, rank)
                suggestions.append(ShapeSuggestion(in_modes, out_modes, params, params / dense))
    suggestions.sort(key=lambda s: (s.params, len(s.in_modes), max(s.in_modes + s.out_modes), s.in_modes, s.out_modes))
    return suggestions[:top]


def _uniform_rank_params(in_modes: Sequence[int], out_modes: Sequence[int], rank: Optional[int]) -> int:
    """:func:`ttexplore.core.ttmath.param_count` at a uniform rank, without validation (hot loop)."""
    sizes = [n * m for n, m in zip(in_modes, out_modes)]
    total_size = prod(sizes)
    left, ranks = 1, [1]
    for size in sizes[:-1]:
        left *= size
        limit = min(left, total_size // left)
        ranks.append(limit if rank is None else min(rank, limit))
    ranks.append(1)
    return sum(ranks[k] * size * ranks[k + 1] for k, size in enumerate(sizes))


def ranks_for_compression(in_modes: Sequence[int], out_modes: Sequence[int], target: float) -> int:
    """The largest uniform rank whose compression rate (TT / dense weights) is ``<= target``.

    Args:
        target: compression rate in (0, 1], e.g. ``1e-3`` for a 1000x smaller layer.

    Returns:
        The rank (at least 1; rank 1 is returned even if it overshoots the target,
        since no TT layer is smaller).
    """
    if not (0 < target <= 1):
        raise ValueError(f"target compression {target} must be in (0, 1], e.g. 0.001 for a 1000x smaller layer")
    dense = dense_param_count(prod(in_modes), prod(out_modes))
    rank = 1
    while True:
        candidate = rank + 1
        if param_count(in_modes, out_modes, candidate) == param_count(in_modes, out_modes, rank):
            return rank  # every rank is at its maximal useful value
        if param_count(in_modes, out_modes, candidate) / dense > target:
            return rank
        rank = candidate
