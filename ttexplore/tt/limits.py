"""The limits every shape search is bounded by, and whole numbers checked against them. Pure Python.

A user can type any integer; these keep every search, message and allocation
bounded: a layer side is at most :data:`MAX_FEATURES`, a layer has at most
:data:`MAX_MODES` cores, and numbers too long to print are refused before any
message uses them.
"""

from __future__ import annotations

import math
import re

__all__ = ["MAX_FEATURES", "MAX_MODES", "MAX_FACTORIZATIONS", "MAX_SEARCH_STEPS", "MAX_BITS", "whole_number",
           "check_number", "check_depth", "limit_text", "approx_text", "short_repr"]

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

#: Whole numbers longer than this many bits are refused before any arithmetic or message uses them.
MAX_BITS = 128


def limit_text(value: int) -> str:
    """``2**40`` -> ``"2^40 (1,099,511,627,776)"``; other numbers with thousands separators."""
    if value > 0 and value & (value - 1) == 0:
        return f"2^{value.bit_length() - 1} ({value:,})"
    return f"{value:,}"


def approx_text(value: int) -> str:
    return f"{value:,}" if value < 10**15 else f"about {float(value):.3g}"


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
        raise ValueError(f"{field} {short_repr(value)} is not a whole number")
    try:
        import numbers

        if isinstance(value, numbers.Integral):
            return whole_number(int(value), field)
        if isinstance(value, numbers.Real):
            return whole_number(float(value), field)
    except (TypeError, ValueError, OverflowError):
        pass
    raise ValueError(f"{field} {short_repr(value)} is not a whole number")


def short_repr(value: object) -> str:
    """``repr(value)`` cut to 60 characters (and safe for ints too long for ``repr``)."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= 60 else text[:57] + "..."


def check_number(number: object, what: str = "number") -> int:
    """``number`` (a layer side, a number to factor) as an int in ``1..MAX_FEATURES``, else a
    ``ValueError`` naming ``what``."""
    value = whole_number(number, what)
    if value < 1:
        raise ValueError(f"{what} {value} must be a positive whole number")
    if value > MAX_FEATURES:
        raise ValueError(f"{what} {approx_text(value)} is more than the {limit_text(MAX_FEATURES)} features a layer side "
                         f"may have: choose a smaller size")
    return value


def check_depth(d: object, what: str = "d") -> int:
    value = whole_number(d, what)
    if value < 1:
        raise ValueError(f"{what} {value} is below 1: a TT layer has at least one core")
    if value > MAX_MODES:
        raise ValueError(f"{what} {value} is more than the {MAX_MODES} modes a TT layer may have: choose {MAX_MODES} or fewer")
    return value
