"""Tensor shapes of a TT layer: parsing, factorizations, suggestions, padding, ranks.

Pure Python (no torch), so a UI can call it on each keystroke.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence

from ttexplore.core.ttmath import dense_param_count, max_useful_ranks, param_count, prod
from ttexplore.core.ttshape import layer_text, modes_text

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
    "balanced_factorization",
    "ShapeSuggestion",
    "suggest_shapes",
    "check_factorizable",
    "next_factorizable",
    "padded_image_side",
    "ranks_for_compression",
]

_SEPARATORS = re.compile(r"\s*[x×X*,]\s*|\s+")

#: The most features one side of a layer may have: 2**40 (about 1.1e12, a 4 TB float32
#: vector). Every search below is bounded for numbers up to this; larger ones are refused.
MAX_FEATURES = 2**40

#: The most modes (cores) of a TT layer. The cost model prices every blocking of the
#: cores (``2**(d-1)`` of them) to choose a forward, which takes seconds beyond 12.
MAX_MODES = 12

#: The most factorizations :func:`factorizations` lists without a ``limit`` (with one,
#: only the ``limit`` most balanced are built, however many there are).
MAX_FACTORIZATIONS = 10_000

#: Steps any one factorization search may take before it gives up with a message
#: (a safety net: no input up to :data:`MAX_FEATURES` and :data:`MAX_MODES` comes near it).
MAX_SEARCH_STEPS = 500_000

#: The most shapes :func:`suggest_shapes` prices in one call, over all depths: when it
#: tries every depth, the depths share it and each pairs the most balanced
#: factorizations of both sides (the cheapest shapes are among them).
MAX_PRICED_SHAPES = 40_000

#: How many consecutive sizes :func:`next_factorizable` tries before it looks only at
#: numbers whose prime factors are 2, 3, 5 and 7.
NEXT_SCAN = 512

#: Whole numbers longer than this many bits are refused before any arithmetic or message uses them.
MAX_BITS = 128

_DIGITS = re.compile(r"[0-9]+")
_POWER = re.compile(r"([0-9]+)\^([0-9]+)")
_MAX_DIGITS = len(str(MAX_FEATURES))


def _limit_text(value: int) -> str:
    """``2**40`` -> ``"2^40 (1,099,511,627,776)"``; other numbers with thousands separators."""
    if value > 0 and value & (value - 1) == 0:
        return f"2^{value.bit_length() - 1} ({value:,})"
    return f"{value:,}"


def whole_number(value: object, field: str) -> int:
    """``value`` as an ``int`` when it is a whole number (``4``, ``4.0``, ``"4"``), else a ``ValueError``
    naming ``field``. Booleans, fractions (``4.5``), NaN and infinities are refused, never truncated."""
    if isinstance(value, bool):
        raise ValueError(f"{field} {value!r} is a yes/no value, not a whole number")
    if isinstance(value, int):
        if value.bit_length() > MAX_BITS:
            raise ValueError(f"{field} is far too large (a {value.bit_length()}-bit number)")
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise ValueError(f"{field} {value!r} is not a whole number")
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if re.fullmatch(r"[+-]?[0-9]+", text):
            if len(text.lstrip("+-")) > 30:
                raise ValueError(f"{field} {text[:20]}... has {len(text.lstrip('+-'))} digits: far too large")
            return int(text)
        raise ValueError(f"{field} {_short_repr(value)} is not a whole number")
    try:
        import numbers

        if isinstance(value, numbers.Integral):
            return whole_number(int(value), field)
        if isinstance(value, numbers.Real):
            return whole_number(float(value), field)
    except (TypeError, ValueError, OverflowError):
        pass
    raise ValueError(f"{field} {_short_repr(value)} is not a whole number")


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
            f"{field} {_short_modes(modes)} multiply to {_approx(prod(modes))} features, more than the "
            f"{_limit_text(MAX_FEATURES)} a layer side may have: choose smaller modes"
        )


def _short_modes(modes: Sequence[int]) -> str:
    text = modes_text(modes)
    return text if len(text) <= 60 else text[:57] + "..."


def _approx(value: int) -> str:
    return f"{value:,}" if value < 10**15 else f"about {float(value):.3g}"


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
                reason = "a mode is far too large" if "far too large" in str(error) else f"{_short_repr(item)} is not a whole number"
                raise ValueError(
                    f"{field} {_short_repr(text)} is not a shape: {reason}; "
                    f"give whole modes, e.g. 4x8x8x4"
                ) from None
        modes = tuple(modes_list)
    else:
        stripped = text.strip()
        if not stripped:
            raise ValueError(f"{field} is empty: type the modes separated by x, e.g. 4x8x8x4")
        modes_list = []
        for token in _SEPARATORS.split(stripped):
            if not token:
                continue
            power = _POWER.fullmatch(token)
            if power:
                if len(power.group(1)) > _MAX_DIGITS or len(power.group(2)) > 3:
                    raise ValueError(f"{field} {_short_repr(text)}: {token[:20]!r} is far too large: "
                                     f"a layer side has at most {_limit_text(MAX_FEATURES)} features")
                base, times = int(power.group(1)), int(power.group(2))
                if times < 1 or times > MAX_MODES:
                    raise ValueError(f"{field} {_short_repr(text)}: the power in {token!r} must be between 1 and {MAX_MODES} "
                                     f"(a TT layer has at most {MAX_MODES} modes)")
                modes_list.extend([base] * times)
            elif _DIGITS.fullmatch(token):
                if len(token) > _MAX_DIGITS:
                    raise ValueError(f"{field} {_short_repr(text)}: the mode {token[:20]}{'...' if len(token) > 20 else ''} "
                                     f"has {len(token)} digits, far more than the {_limit_text(MAX_FEATURES)} features a "
                                     f"layer side may have: choose smaller modes")
                modes_list.append(int(token))
            else:
                raise ValueError(
                    f"{field} {_short_repr(text)} is not a shape: {token[:20]!r} is not a whole number; "
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


def _short_repr(value: object) -> str:
    """``repr(value)`` cut to 60 characters (and safe for ints too long for ``repr``)."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= 60 else text[:57] + "..."


def _check_number(number: object, what: str = "number") -> int:
    """``number`` (a layer side, a number to factor) as an int in ``1..MAX_FEATURES``, else a
    ``ValueError`` naming ``what``."""
    value = whole_number(number, what)
    if value < 1:
        raise ValueError(f"{what} {value} must be a positive whole number")
    if value > MAX_FEATURES:
        raise ValueError(f"{what} {_approx(value)} is more than the {_limit_text(MAX_FEATURES)} features a layer side "
                         f"may have: choose a smaller size")
    return value


def _check_depth(d: object, what: str = "d") -> int:
    value = whole_number(d, what)
    if value < 1:
        raise ValueError(f"{what} {value} is below 1: a TT layer has at least one core")
    if value > MAX_MODES:
        raise ValueError(f"{what} {value} is more than the {MAX_MODES} modes a TT layer may have: choose {MAX_MODES} or fewer")
    return value


# ---------------------------------------------------------------- prime factors
_SMALL_PRIMES = tuple(p for p in range(2, 1000) if all(p % q for q in range(2, int(p**0.5) + 1)))


def _is_probable_prime(n: int) -> bool:
    """Miller-Rabin with the first twelve primes as bases: exact for every n below 3.3e24."""
    if n < 2:
        return False
    for p in _SMALL_PRIMES[:12]:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for a in _SMALL_PRIMES[:12]:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _pollard_brent(n: int, max_steps: int = 1 << 16) -> Optional[int]:
    """A non-trivial factor of the odd composite ``n`` (no factor below 1000), or ``None``
    after ``max_steps`` (then the caller divides by trial, which is bounded by ``sqrt(n)``)."""
    for c in range(1, 8):
        y, r, q, g = 2, 1, 1, 1
        x = ys = y
        steps = 0
        while g == 1 and steps < max_steps:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(128, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = math.gcd(q, n)
                k += 128
            r *= 2
            steps += r
        if g == n:
            g = 1
            while g == 1:
                ys = (ys * ys + c) % n
                g = math.gcd(abs(x - ys), n)
        if 1 < g < n:
            return g
    return None


def _trial_factor(n: int, start: int) -> list[int]:
    """Prime factors of ``n`` (no factor below ``start``) by trial division up to ``sqrt(n)``."""
    factors, divisor = [], start | 1
    while divisor * divisor <= n:
        while n % divisor == 0:
            factors.append(divisor)
            n //= divisor
        divisor += 2
    if n > 1:
        factors.append(n)
    return factors


def _split(n: int) -> list[int]:
    """Prime factors of ``n`` (``n`` has no factor below 1000)."""
    if n == 1:
        return []
    if _is_probable_prime(n):
        return [n]
    factor = _pollard_brent(n)
    if factor is None:
        return _trial_factor(n, 1000)
    return _split(factor) + _split(n // factor)


@lru_cache(maxsize=65536)
def _prime_factors(number: int) -> tuple[int, ...]:
    factors = []
    for p in _SMALL_PRIMES:
        if p * p > number:
            break
        while number % p == 0:
            factors.append(p)
            number //= p
    if number > 1:
        factors.extend(_split(number) if number >= 1000 * 1000 else [number])
    return tuple(sorted(factors))


def prime_factors(number: int) -> list[int]:
    """Prime factors of ``number`` with multiplicity, ascending (``[]`` for 1).

    Small primes by trial division, the rest by Pollard's rho (Brent) with a
    Miller-Rabin test, so any number up to :data:`MAX_FEATURES` takes milliseconds.

    Raises:
        ValueError: for a number below 1 or above :data:`MAX_FEATURES`.
    """
    return list(_prime_factors(_check_number(number)))


def is_prime(number: int) -> bool:
    """True for 2, 3, 5, 7, ... (``ValueError`` above :data:`MAX_FEATURES`)."""
    return number >= 2 and prime_factors(number) == [number]


@lru_cache(maxsize=16384)
def _divisors(number: int) -> tuple[int, ...]:
    """Every divisor of ``number``, ascending (at most 6720 for numbers up to 2**40)."""
    divisors = [1]
    factors = _prime_factors(number)
    for p in sorted(set(factors)):
        power, powers = 1, []
        for _ in range(factors.count(p)):
            power *= p
            powers.append(power)
        divisors = [d * q for d in divisors for q in [1, *powers]]
    return tuple(sorted(divisors))


class _Budget:
    """Counts search steps; past :data:`MAX_SEARCH_STEPS` it stops the search with a message."""

    def __init__(self, what: str) -> None:
        self.what, self.steps = what, 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_SEARCH_STEPS:
            raise ValueError(f"{self.what} needs more than {MAX_SEARCH_STEPS:,} search steps: choose fewer modes")


def _multisets(number: int, k: int, low: int, high: int, budget: _Budget):
    """Non-decreasing ``k``-tuples of modes in ``[low, high]`` multiplying to ``number``."""
    budget.step()
    if k == 0:
        if number == 1:
            yield ()
        return
    if k == 1:
        if low <= number <= high:
            yield (number,)
        return
    factors = _prime_factors(number)
    if (factors and factors[-1] > high) or (low >= 2 and len(factors) < k):
        return  # a prime factor fits no mode, or too few factors for ``k`` modes
    for first in _divisors(number):
        if first < low:
            continue
        if first**k > number:
            break  # ``first`` is the smallest of ``k`` modes
        rest = number // first
        if rest > high ** (k - 1):
            continue
        for tail in _multisets(rest, k - 1, first, high, budget):
            yield (first, *tail)


def _ordered(number: int, k: int, low: int, budget: _Budget):
    """Every ordered ``k``-tuple of modes ``>= low`` multiplying to ``number``, lexicographically."""
    budget.step()
    if k == 1:
        if number >= low:
            yield (number,)
        return
    for first in _divisors(number):
        if first < low:
            continue
        rest = number // first
        if rest < low ** (k - 1):
            break  # divisors ascend, so the rest only shrinks
        if low >= 2 and len(_prime_factors(rest)) < k - 1:
            continue
        for tail in _ordered(rest, k - 1, low, budget):
            yield (first, *tail)


def _distinct_permutations(sorted_modes: tuple[int, ...]):
    """The distinct orderings of ``sorted_modes`` in lexicographic order (lazily)."""
    items = list(sorted_modes)
    while True:
        yield tuple(items)
        i = len(items) - 2
        while i >= 0 and items[i] >= items[i + 1]:
            i -= 1
        if i < 0:
            return
        j = len(items) - 1
        while items[j] <= items[i]:
            j -= 1
        items[i], items[j] = items[j], items[i]
        items[i + 1 :] = reversed(items[i + 1 :])


def _most_balanced(number: int, d: int, min_mode: int, limit: int, budget: _Budget) -> list[tuple[int, ...]]:
    """The ``limit`` first ordered factorizations by (largest mode, -smallest mode, modes).

    Built one (largest, smallest) pair at a time, in that order, and the orderings of
    each pair's mode sets lazily, so only about what is returned is ever generated.
    """
    if d == 1:
        return [(number,)] if number >= min_mode else []
    found: list[tuple[int, ...]] = []
    largest_prime = max(_prime_factors(number), default=1)
    for top in _divisors(number):
        if top < min_mode or top < largest_prime or top**d < number:
            continue
        rest = number // top  # the other d - 1 modes, each in [smallest, top]
        for smallest in reversed(_divisors(rest)):
            budget.step()
            if smallest > top or smallest ** (d - 1) > rest:
                continue
            if smallest < min_mode:
                break
            middle = rest // smallest  # d - 2 modes in [smallest, top]
            if middle > top ** (d - 2):
                break  # a smaller ``smallest`` leaves even more for the middle modes
            sets = [(smallest, *inner, top) for inner in _multisets(middle, d - 2, smallest, top, budget)] if d > 2 else (
                [(smallest, top)] if middle == 1 else [])
            for modes in heapq.merge(*(_distinct_permutations(modes) for modes in sets)):
                budget.step()
                found.append(modes)
                if len(found) >= limit:
                    return found
    return found


def factorizations(number: int, d: int, min_mode: int = 2, limit: Optional[int] = None) -> list[tuple[int, ...]]:
    """Every ordered tuple of ``d`` modes ``>= min_mode`` whose product is ``number``.

    The order of modes matters for a TT layer (it changes the ranks' meaning), so
    ``4x8`` and ``8x4`` are both listed, lexicographically. ``limit`` keeps the most
    balanced ones (smallest largest mode, then largest smallest mode, first), built
    without listing the others.

    Complexity: divisors come from the prime factorization; without ``limit`` at most
    :data:`MAX_FACTORIZATIONS` are listed, with it at most ``limit`` are built.

    Raises:
        ValueError: when ``d`` is not in ``1..MAX_MODES``, ``number`` not in
            ``1..MAX_FEATURES``, or (without ``limit``) there are more than
            :data:`MAX_FACTORIZATIONS` factorizations.
    """
    d = _check_depth(d)
    number = _check_number(number)
    min_mode = max(1, whole_number(min_mode, "min_mode"))
    budget = _Budget(f"factorizing {number:,} into {d} modes")
    if limit is not None:
        limit = whole_number(limit, "limit")
        return _most_balanced(number, d, min_mode, limit, budget) if limit > 0 else []
    found = []
    for modes in _ordered(number, d, min_mode, budget):
        found.append(modes)
        if len(found) > MAX_FACTORIZATIONS:
            raise ValueError(
                f"{number:,} has more than {MAX_FACTORIZATIONS:,} factorizations into {d} modes: "
                f"ask for the most balanced ones (limit=...) or fewer modes"
            )
    return found


def has_factorization(number: int, d: int, min_mode: int = 2) -> bool:
    """Whether ``number`` factors into ``d`` modes ``>= min_mode`` (decided without listing them)."""
    d = _check_depth(d)
    number = _check_number(number)
    if min_mode <= 1:
        return True
    if min_mode == 2:
        return len(_prime_factors(number)) >= d
    return bool(factorizations(number, d, min_mode, limit=1))


def balanced_factorization(number: int, d: int) -> tuple[int, ...]:
    """The factorization into ``d`` modes (``>= 2`` where possible) with the smallest largest mode.

    Modes are arranged small-large-small (``4x8x8x4`` rather than ``4x4x8x8``),
    the order the paper used, which keeps the middle ranks' limits high.
    """
    options = factorizations(number, d, min_mode=2, limit=1) or factorizations(number, d, min_mode=1, limit=1)
    ordered = sorted(options[0])
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
    features = _check_number(features, field)
    d = _check_depth(d)
    if d > 1 and len(_prime_factors(features)) < d:
        factors = _prime_factors(features)
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


def _fits(candidate: int, d: int, max_mode: int) -> bool:
    """Whether ``candidate`` splits into ``d`` modes in ``[2, max_mode]``."""
    factors = _prime_factors(candidate)
    if len(factors) < d or factors[-1] > max_mode:
        return False
    return next(_multisets(candidate, d, 2, max_mode, _Budget(f"factorizing {candidate:,}")), None) is not None


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
    features = _check_number(features, "features")
    d = _check_depth(d)
    limit = whole_number(max_mode, "max_mode") if max_mode else max(2, math.ceil(features ** (1.0 / d)) * 2)
    candidate = max(features, 2**d)
    high = 4 * candidate
    for value in range(candidate, min(candidate + NEXT_SCAN, MAX_FEATURES + 1)):
        if _fits(value, d, limit):
            return value
    for value in _smooth_numbers(candidate + NEXT_SCAN, min(high, MAX_FEATURES)):
        if _fits(value, d, limit):
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
    in_features = _check_number(in_features, "in_features")
    out_features = _check_number(out_features, "out_features")
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
        most = min(len(_prime_factors(in_features)), len(_prime_factors(out_features)), MAX_MODES)
        depths = list(range(2, most + 1))
        if not depths:
            side, count = ("in_features", in_features) if len(_prime_factors(in_features)) < 2 else ("out_features", out_features)
            check_factorizable(count, side, 2)
    else:
        d = _check_depth(d)
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
    """:func:`ttexplore.core.ttmath.param_count` at a uniform rank, without validation (hot loop)."""
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
