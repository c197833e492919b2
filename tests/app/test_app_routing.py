"""Deep links go through app.py's router (its sidebar and layout) even as the first request a server gets,
and the app reaches Streamlit through its public API only (no patched or imported internals)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from app_support import APP, app_home, new_app, shared_data_dir  # noqa: F401

ROOT = Path(APP).parent
APP_FILES = [ROOT / "app.py", ROOT / "ui.py", *sorted((ROOT / "page_blocks").glob("*.py")),
             *sorted((ROOT / "pages").glob("*.py"))]


def test_a_deep_link_as_a_servers_first_request_runs_through_app_py(app_home, monkeypatch):
    """A fresh server: Streamlit's legacy pages/ mode runs pages/runs.py alone, and it is the first to import ui
    (as in a process where ui was never imported); that import switches the app to st.navigation and reruns."""
    monkeypatch.delitem(sys.modules, "ui")
    at = new_app().switch_page("pages/runs.py")  # before any run: the address /runs
    at.run()
    assert not at.exception
    assert at.title[0].value == "Runs"
    # what app.py draws around every page: the sidebar, and the navigation it registered (with the hidden Run page)
    assert any("No training in progress" in item.value for item in at.sidebar.markdown)
    assert "ui" in sys.modules and sys.modules["ui"].ROUTER_ON in at.session_state


def test_the_app_uses_only_streamlits_public_api():
    """app.py, ui.py and the pages import ``streamlit`` itself, never its submodules, and assign no attribute of it."""
    offenders = []
    for path in APP_FILES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                offenders += [f"{path.name}: import {alias.name}" for alias in node.names if alias.name.startswith("streamlit.")]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("streamlit"):
                offenders.append(f"{path.name}: from {node.module} import ...")
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    root = target
                    while isinstance(root, (ast.Attribute, ast.Subscript)):
                        root = root.value
                    if isinstance(target, ast.Attribute) and isinstance(root, ast.Name) and root.id == "st" \
                            and not _is_session_state(target):
                        offenders.append(f"{path.name}:{node.lineno}: assigns {ast.unparse(target)}")
    assert offenders == []


def _is_session_state(target: ast.Attribute) -> bool:
    """``st.session_state.x = ...`` and ``st.query_params.x = ...`` are the public way to set state."""
    node = target
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute) and node.attr in ("session_state", "query_params"):
            return True
        node = node.value
    return False


def test_the_first_drawing_ends_whatever_the_page_does():
    """app.py decides the first drawing and draws its timer before ``page.run()``, and no ``try``/``finally``
    wraps the page: after ``st.stop()`` or an interrupting click Streamlit skips the rest of the run, and in a
    ``finally`` every session-state access raises the stop again (Streamlit 1.67), so a flag set there was
    never set. The first drawing then never ended: on a busy machine a CNN's charts stayed "Drawing…".
    (AppTest cannot show it: after its first run it runs a page file alone, without app.py.)"""
    tree = ast.parse((ROOT / "app.py").read_text())
    assert not any(isinstance(node, ast.Try) for node in ast.walk(tree)), "a try/finally around the page in app.py"

    def line_of(predicate) -> int:
        return min((node.lineno for node in ast.walk(tree) if predicate(node)), default=10**9)

    def calls(name: str):
        return lambda node: isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name

    marked = line_of(lambda node: isinstance(node, ast.Subscript) and getattr(node.slice, "value", None) == "_tt_drawn"
                     and isinstance(node.ctx, ast.Store))
    page_runs = line_of(lambda node: calls("run")(node) and getattr(node.func.value, "id", None) == "page")
    assert page_runs < 10**9, "app.py runs the page with page.run()"
    assert line_of(calls("draw_the_charts_soon")) < page_runs and marked < page_runs
