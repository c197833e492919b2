"""Tensor shapes of a TT layer: parsing, suggestions, padding, ranks for a compression.

Pure Python (no torch), so a UI can call it on each keystroke. The factorizations it
builds on are in :mod:`ttexplore.tt.factor` and the limits every search is bounded
by in :mod:`ttexplore.tt.limits`; both are re-exported here.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass
from typing import Optional, Sequence

from ttexplore.tt.ttmath import dense_param_count, max_useful_ranks, param_count, prod
from ttexplore.tt.ttshape import layer_text, modes_text
from ttexplore.tt.factor import (balanced_factorization, default_modes, factorizations, has_factorization, is_prime,
                                   prime_factor_tuple, prime_factors, splits_into)
from ttexplore.tt.limits import (MAX_BITS, MAX_FACTORIZATIONS, MAX_FEATURES, MAX_MODES, approx_text, check_depth, check_number,
                                   limit_text, short_repr, whole_number)

__all__ = [
    "parse_modes",
    "prime_factors",
    "is_prime",
    "factorizations",
    "has_factorization",
    "whole_number",
    "check_layer_side",
    "MAX_FEATURES",
    "MAX_MODES",
    "MAX_FACTORIZATIONS",
    "MAX_BITS",
    "balanced_factorization",
    "default_modes",
    "ShapeSuggestion",
    "suggest_shapes",
    "check_factorizable",
    "next_factorizable",
    "padded_image_side",
    "ranks_for_compression",
]

_SEPARATORS = re.compile(r"\s*[x×X*,]\s*|\s+")
_DOUBLE_STAR = re.compile(r"\*\s*\*")

#: The most shapes :func:`suggest_shapes` prices in one call, over all depths: when it
#: tries every depth, the depths share it and each pairs the most balanced
#: factorizations of both sides (the cheapest shapes are among them).
MAX_PRICED_SHAPES = 40_000

#: How many consecutive sizes :func:`next_factorizable` tries before it looks only at
#: numbers whose prime factors are 2, 3, 5 and 7.
NEXT_SCAN = 512

_DIGITS = re.compile(r"[0-9]+")
_POWER = re.compile(r"([0-9]+)\^([0-9]+)")
_MAX_DIGITS = len(str(MAX_FEATURES))


def check_layer_side(modes: Sequence[int], field: str = "modes") -> None:
    """Refuse modes beyond the limits every search here is bounded by.

    Raises:
        ValueError: naming ``field`` when there are more than :data:`MAX_MODES` modes, or
            they multiply to more than :data:`MAX_FEATURES`, with the fix.
    """
    if len(modes) > MAX_MODES:
        raise ValueError(
            f"{field} has {len(modes)} modes, more than the {MAX_MODES} ttexplore supports (choosing the forward "
            f"prices every grouping of the cores, which takes seconds beyond {MAX_MODES}): merge neighbouring modes, "
            f"e.g. 2x2 into 4"
        )
    if any(mode > MAX_FEATURES for mode in modes) or prod(modes) > MAX_FEATURES:
        raise ValueError(
            f"{field} {_short_modes(modes)} multiply to {approx_text(prod(modes))} features, more than the "
            f"{limit_text(MAX_FEATURES)} a layer side may have: choose smaller modes"
        )


def _short_modes(modes: Sequence[int]) -> str:
    text = modes_text(modes)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_modes(text: "str | int | Sequence[int]", field: str = "modes") -> tuple[int, ...]:
    """Parse ``"4x8x8x4"`` (also ``4×8×8×4``, ``4*8*8*4``, ``4,8,8,4``, ``2^10``) into ints.

    ``a^k`` repeats ``a`` k times (``2^10`` is ten 2s, as in the 2018 reproduction's figures).
    A sequence must hold whole numbers (``4.5`` and ``True`` are refused, not truncated);
    a lone int is a one-mode shape.

    Raises:
        ValueError: naming ``field`` and showing a valid example; also for more than
            :data:`MAX_MODES` modes or a product above :data:`MAX_FEATURES`.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = [text]
    if isinstance(text, bool) or text is None:
        raise ValueError(f"{field} {text!r} is not a shape: type the modes separated by x, e.g. 4x8x8x4")
    if not isinstance(text, str):
        try:
            items = list(text)
        except TypeError:
            raise ValueError(f"{field} {text!r} is not a shape: type the modes separated by x, e.g. 4x8x8x4") from None
        if len(items) > MAX_MODES:
            check_layer_side([1] * len(items), field)
        modes_list = []
        for item in items:
            try:
                modes_list.append(whole_number(item, field))
            except ValueError as error:
                reason = "a mode is far too large" if "far too large" in str(error) else f"{short_repr(item)} is not a whole number"
                raise ValueError(
                    f"{field} {short_repr(text)} is not a shape: {reason}; "
                    f"give whole modes, e.g. 4x8x8x4"
                ) from None
        modes = tuple(modes_list)
    else:
        stripped = text.strip()
        if not stripped:
            raise ValueError(f"{field} is empty: type the modes separated by x, e.g. 4x8x8x4")
        if _DOUBLE_STAR.search(stripped):
            raise ValueError(f"{field} {short_repr(text)} is not a shape: write a power with ^ (2^10 is ten 2s), "
                             "not **; or the modes separated by x, e.g. 4x8x8x4")
        tokens = _SEPARATORS.split(stripped)
        if "" in tokens:  # two separators in a row, or one at an end: a mode is missing
            raise ValueError(f"{field} {short_repr(text)} is not a shape: a mode is missing between two separators "
                             "or at an end; write the modes separated by one x, e.g. 4x8x8x4 or 2^10")
        modes_list = []
        for token in tokens:
            power = _POWER.fullmatch(token)
            if power:
                if len(power.group(1)) > _MAX_DIGITS or len(power.group(2)) > 3:
                    raise ValueError(f"{field} {short_repr(text)}: {token[:20]!r} is far too large: "
                                     f"a layer side has at most {limit_text(MAX_FEATURES)} features")
                base, times = int(power.group(1)), int(power.group(2))
                if times < 1 or times > MAX_MODES:
                    raise ValueError(f"{field} {short_repr(text)}: the power in {token!r} must be between 1 and {MAX_MODES} "
                                     f"(a TT layer has at most {MAX_MODES} modes)")
                modes_list.extend([base] * times)
            elif _DIGITS.fullmatch(token):
                if len(token) > _MAX_DIGITS:
                    raise ValueError(f"{field} {short_repr(text)}: the mode {token[:20]}{'...' if len(token) > 20 else ''} "
                                     f"has {len(token)} digits, far more than the {limit_text(MAX_FEATURES)} features a "
                                     f"layer side may have: choose smaller modes")
                modes_list.append(int(token))
            else:
                raise ValueError(
                    f"{field} {short_repr(text)} is not a shape: {token[:20]!r} is not a whole number; "
                    f"write the modes separated by x, e.g. 4x8x8x4 or 2^10"
                )
            if len(modes_list) > MAX_MODES:
                check_layer_side(modes_list, field)
        modes = tuple(modes_list)
    if not modes:
        raise ValueError(f"{field} is empty: type the modes separated by x, e.g. 4x8x8x4")
    if any(m < 1 for m in modes):
        raise ValueError(f"{field} {_short_modes(modes)} has a mode below 1: every mode must be at least 1")
    check_layer_side(modes, field)
    return modes


@dataclass(frozen=True)
class ShapeSuggestion:
    """One way of tensorizing an ``N -> M`` layer, with its cost at a rank."""

    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]
    params: int
    compression: float

    @property
    def label(self) -> str:
        """``"4x8x8x4"`` or ``"4x7x4x7->5x5x8x4"`` (:func:`~ttexplore.tt.ttshape.layer_text`)."""
        return layer_text(self.in_modes, self.out_modes)


def check_factorizable(features: int, field: str = "features", d: int = 2) -> None:
    """Raise a clear ``ValueError`` when ``features`` has no factorization into ``d`` modes >= 2.

    A prime feature count would only give the useless ``1xN`` shape; the message
    suggests a padded size that factorizes well.
    """
    features = check_number(features, field)
    d = check_depth(d)
    if d > 1 and len(prime_factor_tuple(features)) < d:
        factors = prime_factor_tuple(features)
        kind = "is prime" if factors == (features,) else f"has fewer than {d} prime factors ({'x'.join(map(str, factors))})"
        try:
            hint = next_factorizable(features, d)
            fix = f"pad it to {hint} (= {modes_text(balanced_factorization(hint, d))}) or choose fewer modes"
        except ValueError:
            fix = "choose fewer modes"
        raise ValueError(
            f"{field} {features} {kind}, so it has no {d}-mode factorization (only 1x{features} would do, which "
            f"compresses nothing): {fix}"
        )


def _smooth_numbers(low: int, high: int) -> list[int]:
    """Numbers in ``[low, high]`` whose prime factors are all 2, 3, 5 or 7, ascending."""
    found = []
    p2 = 1
    while p2 <= high:
        p3 = p2
        while p3 <= high:
            p5 = p3
            while p5 <= high:
                p7 = p5
                while p7 <= high:
                    if p7 >= low:
                        found.append(p7)
                    p7 *= 7
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return sorted(found)


def next_factorizable(features: int, d: int, max_mode: Optional[int] = None) -> int:
    """The smallest number ``>= features`` that factors into ``d`` modes ``>= 2``,
    each at most ``max_mode`` (default: ``ceil(features^(1/d)) * 2``).

    The :data:`NEXT_SCAN` sizes from ``features`` on are tried one by one; past them
    only sizes whose prime factors are 2, 3, 5 and 7 (up to ``4 * features``), so
    the answer comes at once for any size; beyond :data:`NEXT_SCAN` it is the
    smallest such "smooth" size, not always the smallest of all.

    Raises:
        ValueError: when ``features``/``d`` are out of range, or no size up to
            ``4 * features`` fits ``max_mode``.
    """
    features = check_number(features, "features")
    d = check_depth(d)
    limit = whole_number(max_mode, "max_mode") if max_mode else max(2, math.ceil(features ** (1.0 / d)) * 2)
    candidate = max(features, 2**d)
    high = 4 * candidate
    for value in range(candidate, min(candidate + NEXT_SCAN, MAX_FEATURES + 1)):
        if splits_into(value, d, limit):
            return value
    for value in _smooth_numbers(candidate + NEXT_SCAN, min(high, MAX_FEATURES)):
        if splits_into(value, d, limit):
            return value
    raise ValueError(
        f"no size from {features:,} to {min(high, MAX_FEATURES):,} factors into {d} modes of at most {limit}: "
        f"allow larger modes or choose fewer modes"
    )


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
            factorizations are paired (keeps the search bounded); fewer when
            many depths are tried, so at most :data:`MAX_PRICED_SHAPES` are priced.

    Raises:
        ValueError: when no factorization exists (a prime feature count), naming
            the side and a padded size that works.
    """
    in_features = check_number(in_features, "in_features")
    out_features = check_number(out_features, "out_features")
    if rank is not None:
        rank = whole_number(rank, "rank")
        if rank < 1:
            raise ValueError(f"rank {rank} is below 1: a TT rank must be at least 1")
    top = whole_number(top, "top")
    if top < 1:
        raise ValueError(f"top {top} must be at least 1: it is how many shapes to list")
    max_candidates = max(1, whole_number(max_candidates, "max_candidates"))
    min_mode = max(1, whole_number(min_mode, "min_mode"))
    dense = dense_param_count(in_features, out_features)
    if d is None:
        most = min(len(prime_factor_tuple(in_features)), len(prime_factor_tuple(out_features)), MAX_MODES)
        depths = list(range(2, most + 1))
        if not depths:
            side, count = ("in_features", in_features) if len(prime_factor_tuple(in_features)) < 2 else ("out_features", out_features)
            check_factorizable(count, side, 2)
    else:
        d = check_depth(d)
        depths = [d]
        check_factorizable(in_features, "in_features", d)
        check_factorizable(out_features, "out_features", d)
    # Price at most MAX_PRICED_SHAPES pairs in all (the most balanced of each side and depth),
    # keeping only the ``top`` cheapest; a depth with few pairs leaves its share to the others.
    options = {depth: (factorizations(in_features, depth, min_mode, limit=max_candidates),
                       factorizations(out_features, depth, min_mode, limit=max_candidates)) for depth in depths}
    left = MAX_PRICED_SHAPES
    best: list[_Reversed] = []
    for count, depth in enumerate(sorted(depths, key=lambda k: len(options[k][0]) * len(options[k][1]))):
        in_options, out_options = options[depth]
        share = left // (len(depths) - count)
        in_options, out_options = _within(in_options, out_options, share)
        left -= len(in_options) * len(out_options)
        for in_modes in in_options:
            for out_modes in out_options:
                params = _uniform_rank_params(in_modes, out_modes, rank)
                key = (params, depth, max(max(in_modes), max(out_modes)), in_modes, out_modes)
                if len(best) < top:
                    heapq.heappush(best, _Reversed(key))
                elif key < best[0].key:
                    heapq.heapreplace(best, _Reversed(key))
    keys = sorted(item.key for item in best)
    return [ShapeSuggestion(in_modes, out_modes, params, params / dense) for params, _, _, in_modes, out_modes in keys]


def _within(in_options: list, out_options: list, share: int) -> tuple[list, list]:
    """The most balanced prefixes of both lists whose pairs number at most ``share`` (each at least one)."""
    a, b = len(in_options), len(out_options)
    if a * b <= share:
        return in_options, out_options
    side = max(1, math.isqrt(share))
    if a <= side:
        return in_options, out_options[: max(1, share // a)]
    if b <= side:
        return in_options[: max(1, share // b)], out_options
    return in_options[:side], out_options[:side]


class _Reversed:
    """A heap item ordered backwards, so ``heapq`` keeps the ``top`` smallest keys."""

    __slots__ = ("key",)

    def __init__(self, key: tuple) -> None:
        self.key = key

    def __lt__(self, other: "_Reversed") -> bool:
        return other.key < self.key


def _uniform_rank_params(in_modes: Sequence[int], out_modes: Sequence[int], rank: Optional[int]) -> int:
    """:func:`ttexplore.tt.ttmath.param_count` at a uniform rank, without validation (hot loop)."""
    sizes = [n * m for n, m in zip(in_modes, out_modes)]
    total = prod(sizes)
    left, previous, params = 1, 1, 0
    for size in sizes[:-1]:
        left *= size
        current = min(left, total // left)
        if rank is not None and rank < current:
            current = rank
        params += previous * size * current
        previous = current
    return params + previous * sizes[-1]


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
    saturated = max(max_useful_ranks(in_modes, out_modes), default=1)
    # the largest rank within the target, by bisection: weights grow with the rank until it saturates
    low, high = 1, max(1, saturated)
    while low < high:
        middle = (low + high + 1) // 2
        if param_count(in_modes, out_modes, middle) / dense <= target:
            low = middle
        else:
            high = middle - 1
    return low
