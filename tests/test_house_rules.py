"""The rules that keep the package livable, checked over all of ``ttexplore/``:
no UI import, pure modules without torch, no module reaching into another's private
names, no module over 600 lines (a module that long holds two concerns); and no page
of the app over 250 lines (a page arranges widgets, its logic lives in presenters)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ttexplore"
MODULES = sorted(PACKAGE.rglob("*.py"))

#: Modules a page or the CLI imports on every keystroke: they must never import torch.
PURE = ["ttexplore.tt", "ttexplore.tt.ttmath", "ttexplore.tt.ttshape", "ttexplore.tt.shapes", "ttexplore.tt.init",
        "ttexplore.tt.layout", "ttexplore.tt.factor", "ttexplore.tt.limits", "ttexplore.tt.memory",
        "ttexplore.tt.devicenames", "ttexplore.tt.errors", "ttexplore.tt.atomic", "ttexplore.tt.text",
        "ttexplore.tt.convshape", "ttexplore.costmodel.conv",
        "ttexplore.costmodel", "ttexplore.runs.fields", "ttexplore.runs.settings", "ttexplore.runs.storefile",
        "ttexplore.runs.kinds", "ttexplore.runs.kinds.tt", "ttexplore.runs.kinds.dense", "ttexplore.runs.kinds.matrix_rank",
        "ttexplore.runs.kinds.images", "ttexplore.runs.kinds.conv", "ttexplore.runs.kinds.ttconv",
        "ttexplore.runs.kinds.tt4d", "ttexplore.runs.kinds.pool", "ttexplore.runs.network", "ttexplore.runs.ttnet",
        "ttexplore.runs.presets",
        "ttexplore.runs.migrate", "ttexplore.runs.layerspec", "ttexplore.runs.config", "ttexplore.runs.store",
        "ttexplore.runs.schedule", "ttexplore.presenters.rounding",
        "ttexplore.presenters.preview", "ttexplore.presenters.reports", "ttexplore.experiments.sweep",
        "ttexplore.experiments.bench.report", "ttexplore.cli", "ttexplore.presenters.design",
        "ttexplore.presenters.faults", "ttexplore.presenters.usertext", "ttexplore.runs.uploads",
        "ttexplore.presenters.cores", "ttexplore.presenters.network"]


def _private_uses(path: Path) -> list[str]:
    """``from x import _name`` and ``module._name`` in ``path``: reaching into another module's private names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            found += [f"from {node.module} import {alias.name}" for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if isinstance(node.value, ast.Name) and node.value.id not in ("self", "cls", "ctx", "object"):
                found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_module_reaches_into_another_modules_private_names():
    offenders = {str(path.relative_to(PACKAGE)): _private_uses(path) for path in MODULES}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_library_never_imports_streamlit():
    offenders = [str(path.relative_to(PACKAGE)) for path in MODULES
                 if any(isinstance(node, (ast.Import, ast.ImportFrom))
                        and any((alias.name if isinstance(node, ast.Import) else node.module or "").startswith("streamlit")
                                for alias in node.names)
                        for node in ast.walk(ast.parse(path.read_text())))]
    assert offenders == []


def test_no_module_is_over_600_lines():
    sizes = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in MODULES}
    assert {path: lines for path, lines in sizes.items() if lines > 600} == {}


def test_pure_modules_import_without_torch():
    code = f"import sys, importlib\nfor name in {PURE!r}: importlib.import_module(name)\nprint('torch' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent).stdout
    assert output.strip() == "False"


@pytest.mark.parametrize("name", ["TTLinear", "TTConv2d", "MatrixRankLinear", "TTMatrix", "TTShape", "RunConfig", "ConfigError", "RunStore",
                                  "JobManager", "param_count"])
def test_the_public_api(name):
    import ttexplore

    assert getattr(ttexplore, name) is not None and name in ttexplore.__all__


#: Floors of the house, bottom up; a module imports only from its own floor or below (also inside functions).
FLOORS = [
    ("ttexplore.tt",),  # pure TT arithmetic, shapes, limits, errors
    ("ttexplore.costmodel",),
    ("ttexplore.nn",),  # torch: kernels, forward, layers, weight files
    ("ttexplore.runs",),
    ("ttexplore.presenters",),
    ("ttexplore.experiments",),
    ("ttexplore.cli", "ttexplore.__main__", "ttexplore"),
]


def _floor(module: str) -> int:
    for level, prefixes in enumerate(FLOORS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return level
    raise AssertionError(f"{module} is on no floor: add it to FLOORS")


def test_imports_only_point_down():
    upward = []
    for path in MODULES:
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for name in names:
                if name.startswith("ttexplore.") and name != "ttexplore" and _floor(name) > _floor(module):
                    upward.append(f"{module} imports {name}")
    assert upward == []


def _import_graph() -> dict[str, set[str]]:
    """Module -> the ``ttexplore`` modules it imports anywhere in its file (also inside functions);
    ``from package import name`` points at ``package.name`` where that is a module."""
    modules = {}
    for path in MODULES:
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    targets.add(child if child in modules else node.module)
        graph[module] = {target for target in targets if target in modules and target != module}
    return graph


def test_no_circle_of_imports():
    graph = _import_graph()
    index, low, on_stack, stack, circles = {}, {}, set(), [], []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert circles == []


PAGES = sorted((PACKAGE.parent / "pages").glob("*.py")) + sorted((PACKAGE.parent / "page_blocks").glob("*.py"))


def test_no_page_is_over_250_lines():
    """A page (or a block of one, ``page_blocks/``) arranges widgets and calls the library; its logic lives in
    ``ttexplore/presenters/`` (tested there)."""
    assert PAGES, "pages/ holds the app's pages"
    sizes = {path.name: len(path.read_text().splitlines()) for path in PAGES}
    assert {name: lines for name, lines in sizes.items() if lines > 250} == {}
