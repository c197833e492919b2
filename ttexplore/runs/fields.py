"""The field parsers of :class:`~ttexplore.runs.config.RunConfig` and of the layer specs, in a room of their
own so that both import them and neither imports the other. Pure Python.

Each turns what a user typed (text, a number, a list) into the field's value, or raises
:class:`~ttexplore.tt.errors.ConfigError` naming the field and the fix.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from ttexplore.tt.errors import ConfigError
from ttexplore.tt.shapes import MAX_BITS, MAX_MODES, parse_modes, whole_number

__all__ = ["modes_value", "ranks_value", "short_repr", "is_huge", "whole_field", "real_field", "pad_value",
           "check_identity", "MAX_NAME", "MAX_TAG", "MAX_NOTES", "MAX_TAGS"]


def modes_value(value: Any, name: str) -> Optional[tuple[int, ...]]:
    """Modes as typed (``"4x8x8x4"``, ``"2^10"``, a list), or ``None`` for nothing given."""
    if value is None or value == "" or value == []:
        return None
    try:
        return parse_modes(value, name)
    except ValueError as error:
        raise ConfigError(name, str(error)) from None


def ranks_value(value: Any) -> Union[int, tuple[int, ...], None]:
    """Ranks as typed: one whole number, one per core boundary (``"2,4,2"``), or ``None`` for 'max'."""
    if value is None or value == "" or (isinstance(value, str) and value.strip().lower() in ("max", "none", "full")):
        return None
    hint = "write one number (4), one per core boundary (2,4,2), or 'max'"
    if isinstance(value, bool):
        raise ConfigError("ranks", f"ranks must be a whole number (e.g. 4), a list like 2,4,2, or 'max', not {value!r}")
    if isinstance(value, (int, float)):
        return whole_field("ranks", value, hint)
    if isinstance(value, str):
        parts = [part for part in value.replace("x", ",").replace(" ", ",").split(",") if part]
        if not parts or not all(part.strip().isdigit() and part.strip().isascii() for part in parts):
            raise ConfigError("ranks", f"ranks {short_repr(value)} is not understood: {hint}")
        numbers = tuple(whole_field("ranks", part, hint) for part in parts)
        return numbers[0] if len(numbers) == 1 else numbers
    try:
        items = list(value)
    except TypeError:
        raise ConfigError("ranks", f"ranks {short_repr(value)} is not understood: {hint}") from None
    if len(items) > MAX_MODES:
        raise ConfigError("ranks", f"ranks has {len(items)} entries, but a layer has at most {MAX_MODES - 1} internal ranks "
                                   f"({MAX_MODES} modes): {hint}")
    return tuple(whole_field("ranks", item, hint) for item in items)


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to 60 characters (safe for ints too long for ``repr``)."""
    try:
        text = repr(value)
    except ValueError:
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= 60 else text[:57] + "..."


def is_huge(value: Any) -> bool:
    """An int (or an int in a tuple) too long for messages and arithmetic."""
    items = value if isinstance(value, tuple) else (value,)
    return any(isinstance(item, int) and item.bit_length() > MAX_BITS for item in items)


def whole_field(name: str, value: Any, hint: str = "") -> int:
    """``value`` as an int, or a :class:`ConfigError` naming ``name`` (4.5, True, 'abc' are refused, not truncated)."""
    try:
        return whole_number(value, name)
    except ValueError as error:
        raise ConfigError(name, f"{error}{'; ' + hint if hint else ''}") from None


def real_field(name: str, value: Any) -> float:
    """``value`` as a float, or a :class:`ConfigError` naming ``name`` (True and 'abc' are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(name, f"{name} {short_repr(value)} is not a number")
    try:
        return float(value)
    except (ValueError, OverflowError):
        raise ConfigError(name, f"{name} {short_repr(value)} is not a number") from None


def pad_value(value: Any) -> Optional[int]:
    """``pad_to`` as typed: ``None``/``""``/``"none"``/0 mean no padding; else a whole image side."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    side = whole_field("pad_to", value, "give an image side such as 32, or 'none' to keep the images")
    return side or None


#: The longest run name, tag and notes, and the most tags a run may have (text a user typed, shown
#: in tables and legends: bounded so one entry cannot swamp them).
MAX_NAME, MAX_TAG, MAX_NOTES, MAX_TAGS = 200, 50, 10_000, 50


def check_identity(name: Optional[str] = None, tags: Any = None, notes: Optional[str] = None) -> None:
    """Refuse a run name, tags or notes over their bounds (``None`` is not checked; ``""`` clears a field).

    Raises:
        ConfigError: field ``name``, ``tags`` or ``notes``, with the bound.
    """
    if name is not None and len(str(name)) > MAX_NAME:
        raise ConfigError("name", f"name has {len(str(name)):,} characters: keep it to {MAX_NAME} (notes hold more)")
    if notes is not None and len(str(notes)) > MAX_NOTES:
        raise ConfigError("notes", f"notes have {len(str(notes)):,} characters: keep them to {MAX_NOTES:,}")
    if tags is not None:
        items = str(tags).split(",") if isinstance(tags, str) else [str(tag) for tag in tags]
        if len(items) > MAX_TAGS:
            raise ConfigError("tags", f"{len(items)} tags: give at most {MAX_TAGS}")
        long = next((tag for tag in items if len(tag.strip()) > MAX_TAG), None)
        if long is not None:
            raise ConfigError("tags", f"the tag {long[:20]!r}... has {len(long.strip())} characters: keep a tag to "
                                      f"{MAX_TAG}")
