"""Every shape search is bounded: huge or awkward sizes answer, or are refused with a message.

The guard below is a hang guard, not a speed test: each call gets several seconds
(SIGALRM) where it needs milliseconds, so only an unbounded search trips it.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys

import pytest

from ttexplore.tt import ttmath
from ttexplore.tt import factor
from ttexplore.tt.shapes import (
    MAX_FACTORIZATIONS,
    MAX_FEATURES,
    MAX_MODES,
    balanced_factorization,
    check_factorizable,
    default_modes,
    factorizations,
    has_factorization,
    next_factorizable,
    parse_modes,
    prime_factors,
    ranks_for_compression,
    suggest_shapes,
)

HANG_SECONDS = 8
LARGEST_PRIME = 1_099_511_627_689  # the largest prime below 2**40
HIGHLY_COMPOSITE = 963_761_198_400  # 6720 divisors, 18 prime factors
SEMIPRIME = 1_048_573 * 1_048_571  # two primes near 2**20: the worst case for trial division


class Hung(Exception):
    pass


@contextlib.contextmanager
def hang_guard(seconds: int = HANG_SECONDS):
    """Fail (instead of hanging the suite) when the body runs for ``seconds``."""

    def expire(signum, frame):
        raise Hung(f"still running after {seconds} s: the search is not bounded")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


HUGE = [MAX_FEATURES, MAX_FEATURES - 1, LARGEST_PRIME, HIGHLY_COMPOSITE, SEMIPRIME, 2**39 + 1, 10**12, 3**25]


@pytest.mark.parametrize("number", HUGE)
def test_prime_factors_of_any_size_up_to_the_limit_answer(number):
    with hang_guard():
        factors = prime_factors(number)
    assert ttmath.prod(factors) == number and factors == sorted(factors)
    assert all(len(prime_factors(p)) == 1 for p in set(factors))


@pytest.mark.parametrize("number", HUGE)
def test_factorization_searches_answer_for_every_depth(number):
    with hang_guard(2 * HANG_SECONDS):
        for d in range(1, MAX_MODES + 1):
            best = factorizations(number, d, limit=120)
            assert all(ttmath.prod(modes) == number and len(modes) == d for modes in best)
            assert ttmath.prod(balanced_factorization(number, d)) == number
            assert has_factorization(number, d) == bool(best)
            try:
                check_factorizable(number, "in_features", d)
            except ValueError as error:
                assert "in_features" in str(error)
            try:
                everything = factorizations(number, d)
            except ValueError as error:
                assert f"more than {MAX_FACTORIZATIONS:,} factorizations" in str(error)
            else:
                assert len(everything) <= MAX_FACTORIZATIONS
            padded = next_factorizable(number, d) if number * 4 <= MAX_FEATURES else None
            assert padded is None or has_factorization(padded, d)


def test_the_most_balanced_come_first_without_listing_the_rest():
    with hang_guard():
        first = factorizations(2**40, 12, limit=3)  # there are about 1.7e9 orderings in all
    assert first[0] == (8,) * 8 + (16,) * 4 and len(first) == 3
    assert balanced_factorization(2**40, 12) == (8, 8, 8, 8, 16, 16, 16, 16, 8, 8, 8, 8)


def test_default_modes_prefer_the_depth_asked_then_three_then_two():
    assert default_modes(1024) == (4, 8, 8, 4) and default_modes(1024, 2) == (32, 32)
    assert default_modes(12) == (2, 3, 2)  # 2·2·3: three modes at most
    assert default_modes(6) == (2, 3) and default_modes(97) == (97,)  # two prime factors; a prime
    assert default_modes(1000, 1) == (1000,)  # one mode asked (to match one input mode)
    for number in (784, 3072, 10**6, LARGEST_PRIME - 1):
        for d in (1, 2, 4, 6):
            modes = default_modes(number, d)
            assert ttmath.prod(modes) == number and min(modes) >= 2
            assert len(modes) == max(k for k in (1, 2, 3, d) if k <= d and has_factorization(number, k))


@pytest.mark.parametrize("in_features, out_features", [(784, 10**10), (2**40, 2**40), (HIGHLY_COMPOSITE, 1024), (LARGEST_PRIME - 1, 10)])
def test_suggest_answers_for_huge_layers(in_features, out_features):
    with hang_guard():
        found = suggest_shapes(in_features, out_features)
    assert found and all(ttmath.prod(s.in_modes) == in_features and ttmath.prod(s.out_modes) == out_features for s in found)
    assert all(len(s.in_modes) <= MAX_MODES for s in found)


def test_prime_sizes_get_a_padding_hint_at_once():
    with hang_guard():
        with pytest.raises(ValueError, match=r"out_features 1099511627689 is prime.*pad it to \d+"):
            suggest_shapes(1024, LARGEST_PRIME)
        assert has_factorization(next_factorizable(LARGEST_PRIME - 10**6, MAX_MODES), MAX_MODES)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: prime_factors(2**41), "more than the 2\\^40"),
        (lambda: factorizations(10**24, 4), "more than the 2\\^40"),
        (lambda: factorizations(1024, 64), "more than the 12 modes"),
        (lambda: suggest_shapes(784, 10**13), "out_features 10,000,000,000,000 is more than"),
        (lambda: suggest_shapes(784, 10, top=-1), "top -1 must be at least 1"),
        (lambda: suggest_shapes(784, 10, rank=0), "rank 0 is below 1"),
        (lambda: suggest_shapes(784, 10, d=0), "d 0 is below 1"),
        (lambda: suggest_shapes(784, 10, d=40), "more than the 12 modes"),
        (lambda: next_factorizable(100, 2, max_mode=3), "no size from 100 to 400"),
        (lambda: check_factorizable(10**20, "in_features", 2), "in_features"),
    ],
)
def test_beyond_the_limits_is_refused_with_a_message(call, message):
    with hang_guard():
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize(
    "text, message",
    [
        ("2^64", "between 1 and 12"),
        ("2^13", "between 1 and 12"),
        ("2x" * 13 + "2", "13 modes, more than the 12"),
        ("100000000000000000000000", "24 digits"),
        ("9" * 5000, "5000 digits"),  # int() of it would fail with Python's digit limit
        ("1000000x1000000x1000000", "more than the 2\\^40"),
        ("4x8²", "'8²' is not a whole number"),
        ([4.5, 2], "4.5 is not a whole number"),
        ([True, 8], "True is not a whole number"),
        ([2] * 100, "100 modes"),
    ],
)
def test_parse_modes_refuses_absurd_shapes(text, message):
    with hang_guard():
        with pytest.raises(ValueError, match=message) as error:
            parse_modes(text, "out_modes")
    assert "out_modes" in str(error.value)


def test_parse_modes_accepts_integral_numbers_and_a_lone_int():
    assert parse_modes([4.0, 8, "8", 4]) == (4, 8, 8, 4)
    assert parse_modes(1024) == (1024,)
    assert parse_modes("2^12") == (2,) * 12


def test_rank_budget_is_a_bisection():
    with hang_guard():
        rank = ranks_for_compression((2**20, 2**20), (2**20, 2**20), 0.5)  # the old loop counted up to ~1e11
    assert ttmath.compression((2**20, 2**20), (2**20, 2**20), rank) <= 0.5


def test_factorization_steps_are_capped(monkeypatch):
    monkeypatch.setattr(factor, "MAX_SEARCH_STEPS", 50)
    factor.divisors.cache_clear()
    with pytest.raises(ValueError, match="search steps"):
        factorizations(HIGHLY_COMPOSITE, 6)


@pytest.mark.parametrize(
    "argv",
    [
        ["suggest", "784", "10000000000"],
        ["count", "--in-modes", "4x8x8x4", "--out-modes", "1000x1000x1000"],
        ["count", "--in-modes", "4x8x8x4", "--out-modes", "2^64"],
        ["count", "--in-modes", "4x8x8x4", "--out-modes", "100000000000000000000000"],
    ],
)
def test_the_cli_commands_that_hung_now_answer(argv):
    """The reported hangs, end to end (a subprocess with a timeout, so a hang fails instead of blocking)."""
    result = subprocess.run([sys.executable, "-m", "ttexplore", *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
    if result.returncode == 2:
        assert result.stderr.count("\n") == 1 and "--out-modes" in result.stderr
