"""User text made inert for a terminal. Pure Python.

A run's name, tags and notes, a label, a file name: text a user typed (or a file
carried in) that the command line prints. Printed raw, a name holding ``\\x1b[2J``
clears the screen, ``\\x07`` rings the bell, ``\\r`` or a newline forges a line of the
table, an OSC sequence rewrites the window title or a hyperlink, and a right-to-left
override (U+202E) makes text read backwards. :func:`terminal_text` shows each such
character as its escape (``\\x1b``, ``\\n``, ``\\u202e``) and bounds the width; every
CLI output of user text goes through it (:func:`terminal_lines` for whole messages).
"""

from __future__ import annotations

import unicodedata
from typing import Any, Optional

__all__ = ["terminal_text", "terminal_lines", "ELLIPSIS"]

ELLIPSIS = "…"

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: Format characters that are legitimate inside visible text (emoji sequences): kept.
_KEPT_FORMAT = {"\u200d"}  # zero-width joiner


def _escaped(character: str) -> Optional[str]:
    """The escape that shows ``character`` (``None`` when it may be printed as it is)."""
    if character in _NAMED:
        return _NAMED[character]
    category = unicodedata.category(character)
    # Cc: C0/C1 controls and DEL; Cf: invisible format characters, bidi overrides among them;
    # Zl/Zp: line and paragraph separators; Cs: lone surrogates
    if category in ("Cc", "Zl", "Zp", "Cs") or (category == "Cf" and character not in _KEPT_FORMAT):
        code = ord(character)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return None


def terminal_text(text: Any, width: Optional[int] = 80) -> str:
    """``text`` safe to print on a terminal: every control, format or separator character shown as its
    escape (``\\x1b``, ``\\n``, ``\\u202e``), then cut to ``width`` characters (the last one ``…``) when
    ``width`` is given.

    Complexity: O(len(text)).
    """
    shown = []
    for character in str(text):
        escape = _escaped(character)
        shown.append(character if escape is None else escape)
    result = "".join(shown)
    if width is not None and len(result) > width:
        result = result[:max(0, width - 1)] + ELLIPSIS
    return result


def terminal_lines(message: Any) -> str:
    """A message of one or more lines (an error, its fix) with each line made safe by :func:`terminal_text`,
    never cut: the line breaks between them stay, nothing inside a line can move the cursor."""
    return "\n".join(terminal_text(line, width=None) for line in str(message).split("\n"))
