"""What a page says when something fails: no traceback and no server path, an error id tied to the
server log, a link that names a missing run said to be missing. Streamlit-free (``ui.py`` draws it).

* :func:`new_error_id`: a short random id shown on the page and logged with the full traceback;
* :func:`failure_text`: the page's words for an exception escaping a page or a fragment;
* :class:`Places`, :func:`server_places`, :func:`path_text`, :func:`scrub_paths`: a message's
  server paths turned into what they are for the user (``the uploaded file``, ``run 1a2b's
  weights file``) or a name relative to the ttexplore home (``$TTEXPLORE_HOME/runs.db``,
  ``~/.ttexplore/runs.db``), any other absolute path cut to its file name (``…/x.pt``);
* :func:`missing_run_text`, :func:`missing_ids`: links (``/run?id=``, ``/train?runs=``) naming
  runs the store does not hold.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

from ttexplore.presenters.usertext import markdown_text

__all__ = ["new_error_id", "Places", "server_places", "path_text", "scrub_paths", "failure_text", "is_ours",
           "missing_run_text", "missing_ids", "missing_ids_text", "setting_note_text", "store_notice_text"]

#: Characters a path token of a message runs over (a space, a quote, a bracket or a comma ends it).
_PATH_CHARS = r"[^\s'\"`,;:()\[\]{}<>|]"
#: An absolute path of two parts or more that is not the tail of a word, a number or a URL (``1/2``, ``a/b``,
#: ``http://x/y`` are not paths).
_ABSOLUTE = re.compile(rf"(?<![\w.~$/:\\-])((?:/{_PATH_CHARS}+)+)")
#: The longest run id or file stem :func:`path_text` names (ids are 12 hex characters).
_ID = r"[A-Za-z0-9_-]{1,64}"


def new_error_id() -> str:
    """A short random id (6 hex digits) tying a message on a page to its traceback in the server log."""
    return secrets.token_hex(3)


@dataclass(frozen=True)
class Places:
    """The server's folders a message may name, and how the page names each.

    Attributes:
        home: the ttexplore home; shown as ``home_text`` (``$TTEXPLORE_HOME`` when the variable is set, else
            ``~/.ttexplore``).
        artifacts: the store's artifacts folder (weights files, ``checkpoints/``, ``uploads/``).
        store: the run store file; shown as ``$TTEXPLORE_DB`` when that variable names it.
        data: the datasets folder; shown as ``$TTEXPLORE_DATA`` when that variable names it.
        user_home: the server user's home folder, shown as ``~``.
    """

    home: str
    home_text: str
    artifacts: str
    store: str
    store_text: Optional[str]
    data: Optional[str]
    user_home: Optional[str]


def _absolute(path: "str | os.PathLike") -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(str(path))))


def server_places(environ: Optional[Mapping[str, str]] = None, store_path: "Optional[str | os.PathLike]" = None,
                  artifacts: "Optional[str | os.PathLike]" = None) -> Places:
    """The :class:`Places` of this server, read from the ``TTEXPLORE_*`` variables as the run store reads them
    (``store_path`` and ``artifacts`` override them, for a store opened on another file). Never raises."""
    environ = os.environ if environ is None else environ
    set_home = (environ.get("TTEXPLORE_HOME") or "").strip()
    home = _absolute(set_home or "~/.ttexplore")
    set_db = (environ.get("TTEXPLORE_DB") or "").strip()
    store = _absolute(store_path or set_db or os.path.join(home, "runs.db"))
    set_data = (environ.get("TTEXPLORE_DATA") or "").strip()
    user_home = os.path.expanduser("~")
    return Places(home=home, home_text="$TTEXPLORE_HOME" if set_home else "~/.ttexplore",
                  artifacts=_absolute(artifacts or os.path.join(os.path.dirname(store), "artifacts")),
                  store=store, store_text="$TTEXPLORE_DB" if set_db and store == _absolute(set_db) else None,
                  data=_absolute(set_data) if set_data else None,
                  user_home=_absolute(user_home) if user_home not in ("", "~", "/") else None)


def _roots(places: Places) -> list[tuple[str, str]]:
    """``(folder, how the page names it)``, the most specific first."""
    roots = [(places.store, places.store_text)] if places.store_text else []
    if places.data:
        roots.append((places.data, "$TTEXPLORE_DATA"))
    roots.append((places.home, places.home_text))
    if places.user_home:
        roots.append((places.user_home, "~"))
    return sorted(roots, key=lambda root: -len(root[0]))


def _named(path: str, places: Places) -> Optional[str]:
    """What ``path`` is for the user, when it is one of the store's own files."""
    artifacts = re.escape(places.artifacts)
    if re.fullmatch(rf"{artifacts}/uploads/{_PATH_CHARS}+", path):
        return "the uploaded file"
    match = re.fullmatch(rf"{artifacts}/checkpoints/({_ID})\.pt(?:\.{_PATH_CHARS}*)?", path)
    if match:
        return f"run {match.group(1)}'s checkpoint"
    match = re.fullmatch(rf"{artifacts}/({_ID})\.pt", path)
    if match:
        return f"run {match.group(1)}'s weights file"
    return None


def path_text(path: "str | os.PathLike", places: Places) -> str:
    """``path`` as a page may show it: what it is (``the uploaded file``, ``run 1a2b's weights file``), or relative
    to the place it lies in (``$TTEXPLORE_HOME/runs.db``, ``~/data/x.pt``), or its file name alone (``…/x.pt``).

    Complexity: O(len(path)).
    """
    text = str(path)
    absolute = _absolute(text) if text.startswith(("/", "~")) else text
    named = _named(absolute, places)
    if named:
        return named
    for root, shown in _roots(places):
        if absolute == root:
            return shown
        if absolute.startswith(root.rstrip("/") + "/"):
            return shown + "/" + absolute[len(root.rstrip("/")) + 1:]
        if root == places.store and re.fullmatch(r"[.-]\w+", absolute[len(root):]):  # runs.db.bad, runs.db-wal
            return shown + absolute[len(root):]
    if absolute.startswith("/"):
        return "…/" + (os.path.basename(absolute.rstrip("/")) or "")
    return text


def scrub_paths(text: Any, places: Places) -> str:
    """``text`` with every server path in it shown as :func:`path_text` shows it (the home, the store, uploads,
    checkpoints, weights files, and any other absolute path). A path with spaces inside a known folder is
    named whole; elsewhere it is cut at its first space.

    Complexity: O(len(text) * number of places).
    """
    message = str(text)
    literal = [places.artifacts] + [root for root, _ in _roots(places)]
    for root in sorted(set(literal), key=len, reverse=True):  # folders whose names may hold spaces: whole
        if " " in root and root in message:
            message = message.replace(root, path_text(root, places))
    return _ABSOLUTE.sub(lambda match: _scrubbed_token(match.group(1), places), message)


def _scrubbed_token(token: str, places: Places) -> str:
    trailing = ""
    while token and token[-1] in ".!?":  # a sentence's full stop is not part of the path
        token, trailing = token[:-1], token[-1] + trailing
    return path_text(token, places) + trailing if token else trailing


def is_ours(error: BaseException) -> bool:
    """True for an error ttexplore raised on purpose (its message says what is wrong and the fix, for a user):
    a ``ConfigError``, ``StoreError``, ``WarmStartError``, ``WriteError``, ``ResumeError``...; False for a bug
    (``ZeroDivisionError``, ``KeyError``) or another library's error, whose message is for a developer."""
    return type(error).__module__.split(".")[0] == "ttexplore"


def failure_text(error: BaseException, what: str, error_id: str, places: Places) -> str:
    """The Markdown a page shows for ``error``, which stopped ``what`` (``"the Sweep page"``, ``"the live view"``):
    what failed, ttexplore's own message when it has one (server paths scrubbed, shown as text), what to do,
    and the error id the server log holds the traceback under. Never a traceback or an exception's type."""
    lines = [f"**Something went wrong drawing {markdown_text(what)}.**"]
    if is_ours(error) and str(error).strip():
        lines.append(markdown_text(scrub_paths(str(error).strip().strip("'\""), places), width=600))
    lines.append("The rest of the app still works: reload the page, or open another page from the menu. "
                 f"If it happens again, error id `{error_id}` finds the details in the server log.")
    return "\n\n".join(lines)


def missing_run_text(run_id: Any) -> str:
    """The Run page's answer to ``/run?id=<an id the store does not hold>`` (Markdown)."""
    return (f"There is no run **{markdown_text(run_id, width=64)}** in this app's run store: it was deleted, or "
            "the link comes from another store.")


def missing_ids(requested: Optional[str], saved: Iterable[str]) -> list[str]:
    """The ids of a comma-separated list (``/train?runs=a,b``) that the store does not hold, in the list's order,
    each once (empty parts ignored; at most 50 looked at)."""
    known = set(saved)
    missing: list[str] = []
    for part in (requested or "").split(",")[:50]:
        part = part.strip()
        if part and part not in known and part not in missing:
            missing.append(part)
    return missing


def setting_note_text(note: str, places: Places) -> str:
    """A job manager's note (a bad ``TTEXPLORE_*`` variable, a capped worker count) as the sidebar shows it."""
    return markdown_text(scrub_paths(note, places), width=400)


def store_notice_text(notice: str, places: Places) -> str:
    """The run store's notice (deleted or replaced while in use) as a toast says it."""
    return markdown_text(scrub_paths(notice, places), width=400)


def missing_ids_text(ids: Sequence[str]) -> str:
    """What Train says of the pinned runs (``?runs=``) the store does not hold (Markdown; ids shown as text)."""
    shown = ", ".join(f"**{markdown_text(run_id, width=64)}**" for run_id in ids[:8])
    more = f" and {len(ids) - 8} more" if len(ids) > 8 else ""
    return (f"{len(ids)} run{'s' if len(ids) != 1 else ''} in this link {'are' if len(ids) != 1 else 'is'} not in "
            f"this app's run store (deleted, or from another store): {shown}{more}. The others are shown.")
