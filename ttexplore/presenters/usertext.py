"""User text made inert for the page and the figures. No Streamlit.

A run's name, tags and notes, a sweep's name, a label, a file name or a weight key
from an uploaded file end up in ``st.markdown``, ``st.title``, ``st.toast``,
``st.error``, a ``page_link`` label (all Markdown: ``**``, ``[link](...)``,
``:red[...]``, ``$LaTeX$``, HTML) and in plotly legends, hover text and annotations
(which read ``<a href>``, ``<b>``, ``<br>``). Shown raw, a name is markup. Each
function here returns the text to pass so it shows as the characters typed:

* :func:`markdown_text`: for any Streamlit element that renders Markdown;
* :func:`plot_text`: for a plotly trace name, hover text, title or annotation.

Control characters, newlines and bidi overrides become visible escapes first
(:func:`ttexplore.tt.text.terminal_text`), so one name cannot break a line either.
"""

from __future__ import annotations

import html
import string
from typing import Any, Optional

from ttexplore.tt.text import terminal_text

__all__ = ["markdown_text", "plot_text", "MARKDOWN_SPECIAL"]

#: Every ASCII punctuation character: CommonMark lets each be backslash-escaped to stand for itself,
#: which also stops Streamlit's directives (``:red[...]``), LaTeX (``$``) and raw HTML (``<``).
MARKDOWN_SPECIAL = frozenset(string.punctuation)


def markdown_text(text: Any, width: Optional[int] = None) -> str:
    """``text`` as Markdown that renders as exactly its characters (controls shown escaped; cut to
    ``width`` characters first when given).

    Complexity: O(len(text)).
    """
    shown = terminal_text(text, width)
    return "".join("\\" + character if character in MARKDOWN_SPECIAL else character for character in shown)


def plot_text(text: Any, width: Optional[int] = None) -> str:
    """``text`` for plotly (names, hover, titles, annotations): controls shown escaped, ``&``, ``<`` and
    ``>`` as entities, so no tag or link in it is drawn."""
    return html.escape(terminal_text(text, width), quote=False)
