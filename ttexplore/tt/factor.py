"""Factorizations of layer sizes into TT modes, bounded for any size a user can type. Pure Python.

Divisors come from the prime factorization (small primes, then Pollard-Brent), and
only the most balanced factorizations are built when a limit is given, so every
call answers quickly for sizes up to :data:`~ttexplore.tt.limits.MAX_FEATURES`.
"""

from __future__ import annotations

import heapq
import math
from functools import lru_cache
from typing import Optional

from ttexplore.tt.limits import MAX_FACTORIZATIONS, MAX_SEARCH_STEPS, check_depth, check_number, whole_number

__all__ = ["prime_factors", "prime_factor_tuple", "is_prime", "factorizations", "has_factorization",
           "balanced_factorization", "default_modes", "splits_into", "divisors"]


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
def prime_factor_tuple(number: int) -> tuple[int, ...]:
    """Prime factors of ``number`` (``>= 1``, unchecked) with multiplicity, ascending, as a cached tuple."""
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
    return list(prime_factor_tuple(check_number(number)))


def is_prime(number: int) -> bool:
    """True for 2, 3, 5, 7, ... (``ValueError`` above :data:`MAX_FEATURES`)."""
    return number >= 2 and prime_factors(number) == [number]


@lru_cache(maxsize=16384)
def divisors(number: int) -> tuple[int, ...]:
    """Every divisor of ``number``, ascending (at most 6720 for numbers up to 2**40)."""
    found = [1]
    factors = prime_factor_tuple(number)
    for p in sorted(set(factors)):
        power, powers = 1, []
        for _ in range(factors.count(p)):
            power *= p
            powers.append(power)
        found = [d * q for d in found for q in [1, *powers]]
    return tuple(sorted(found))


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
    factors = prime_factor_tuple(number)
    if (factors and factors[-1] > high) or (low >= 2 and len(factors) < k):
        return  # a prime factor fits no mode, or too few factors for ``k`` modes
    for first in divisors(number):
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
    for first in divisors(number):
        if first < low:
            continue
        rest = number // first
        if rest < low ** (k - 1):
            break  # divisors ascend, so the rest only shrinks
        if low >= 2 and len(prime_factor_tuple(rest)) < k - 1:
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
    largest_prime = max(prime_factor_tuple(number), default=1)
    for top in divisors(number):
        if top < min_mode or top < largest_prime or top**d < number:
            continue
        rest = number // top  # the other d - 1 modes, each in [smallest, top]
        for smallest in reversed(divisors(rest)):
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
    d = check_depth(d)
    number = check_number(number)
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
    d = check_depth(d)
    number = check_number(number)
    if min_mode <= 1:
        return True
    if min_mode == 2:
        return len(prime_factor_tuple(number)) >= d
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


def default_modes(number: int, d: int = 4) -> tuple[int, ...]:
    """The modes proposed for a layer side of ``number`` when the user gave none (the config's default,
    the Compress page's and command's first guess): the :func:`balanced_factorization` into ``d`` modes
    ``>= 2``, else into 3, else into 2 (``number`` prime: the one mode ``(number,)``).

    Complexity: one prime factorization of ``number`` (cached), then one balanced search.
    """
    for depth in (d, 3, 2):
        if has_factorization(number, depth, min_mode=2):
            return balanced_factorization(number, depth)
    return (check_number(number),)


def splits_into(candidate: int, d: int, max_mode: int) -> bool:
    """Whether ``candidate`` splits into ``d`` modes in ``[2, max_mode]`` (a bounded search)."""
    factors = prime_factor_tuple(candidate)
    if len(factors) < d or factors[-1] > max_mode:
        return False
    return next(_multisets(candidate, d, 2, max_mode, _Budget(f"factorizing {candidate:,}")), None) is not None
