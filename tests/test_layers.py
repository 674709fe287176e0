"""The package's layers, as docs/architecture.md's Layout section draws them: a package imports only
from the packages below it (the import graph has no cycle and no upward edge)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

#: bottom to top
LAYERS = ["core", "tree", "firmware", "device", "testing", "ci", "bench", "cli"]
PACKAGE = REPO / "src" / "mpforge"


def package_of(path: Path) -> tuple[str, ...]:
    """The dotted package a module file belongs to: ``('mpforge', 'tree')`` for tree/git.py."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return parts if path.name == "__init__.py" else parts[:-1]


def imported_modules(source: str, package: tuple[str, ...]) -> set[str]:
    """Every module ``path`` imports, as absolute dotted names, in any form: ``import a.b``,
    ``from a.b import c`` (``a.b.c`` too, since ``c`` may be a module), ``from mpforge import x``
    and relative imports (``from . import x``, ``from ..core import y``), at any depth of the
    file, type-only imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - node.level + 1])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}
    return found


def imported_packages(path: Path, source: str | None = None) -> set[str]:
    """The mpforge subpackages (layers) a module imports from."""
    text = path.read_text() if source is None else source
    return {name.split(".")[1] for name in imported_modules(text, package_of(path))
            if name.startswith("mpforge.") and len(name.split(".")) > 1}


def test_every_import_form_is_seen() -> None:
    """The parser above sees each way Python spells an import (a layer test that misses one
    form passes on the very code it should refuse)."""
    module = PACKAGE / "tree" / "probe_only_in_this_test.py"
    text = "\n".join([
        "import mpforge.cli.tasks",
        "from mpforge.device import transport",
        "from mpforge import bench",
        "from .. import testing",
        "from ..ci.run import run_ci",
        "from . import git",
        "def f():",
        "    from mpforge.firmware.pipeline import Pipeline",
    ])
    assert imported_packages(module, text) == {"cli", "device", "bench", "testing", "ci", "tree", "firmware"}


def test_every_module_lives_in_a_layer():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert loose == []
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()) \
        == sorted(LAYERS)


def test_no_package_imports_from_a_layer_above_it():
    upward = []
    for layer in LAYERS:
        for path in (PACKAGE / layer).rglob("*.py"):
            for other in imported_packages(path) & set(LAYERS):
                if LAYERS.index(other) > LAYERS.index(layer):
                    upward.append(f"{path.relative_to(PACKAGE)} imports mpforge.{other}")
    assert upward == []


def test_only_the_command_line_prints_or_uses_rich():
    offenders = []
    for layer in LAYERS[:-1]:
        for path in (PACKAGE / layer).rglob("*.py"):
            if "pyboard_shim" in path.parts or path.name == "debian.py" or "programs" in path.parts:
                # the shim runs inside the tree's run-tests (printing is its protocol);
                # bench/gc/programs/ are MicroPython programs run on the board (they print their figures);
                # debian.py is `python3 -m mpforge.core.debian`, run by .ci/run before any venv
                continue
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} print()")
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                        [a.name for a in node.names]
                    if any(n == "rich" or n.startswith("rich.") for n in names):
                        offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports rich")
    assert offenders == []


def module_graph() -> dict[str, set[str]]:
    """mpforge module -> the mpforge modules it imports (every form, at any depth of the file)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if path.name == "__init__.py" else parts)] = path
    graph = {}
    for name, path in modules.items():
        found = imported_modules(path.read_text(), package_of(path))
        graph[name] = {m for m in found if m in modules and m != name
                       # a package's __init__ importing its own submodules is how it is built
                       and not (path.name == "__init__.py" and m.startswith(name + "."))}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_hidden_function_level_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_import_cycle() -> None:
    """No two modules import each other, directly or round a loop, not even from inside a
    function (where a circle usually hides)."""
    assert cycles(module_graph()) == []


#: the most lines a library module may have: past that it holds more than one job
MAX_MODULE_LINES = 500


def test_no_library_module_is_over_500_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def module_file(name: str) -> Path | None:
    """The file of mpforge module ``name`` (dotted), or None when it is no module of ours (a
    name imported from a module, ``mpforge.device.spec.Auto``)."""
    base = PACKAGE.parent.joinpath(*name.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def imported_closure(path: Path) -> set[str]:
    """Every module ``path`` imports, in any form (:func:`imported_modules`), and everything the
    mpforge modules among them import in turn."""
    seen: set[str] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        for name in imported_modules(current.read_text(), package_of(current)) - seen:
            seen.add(name)
            found = module_file(name) if name.startswith("mpforge.") else None
            if found is not None:
                todo.append(found)
    return seen


def test_the_transport_does_not_import_labgrid() -> None:
    """The transport is the lowest device layer: neither it nor anything it imports (at any
    depth, in any form) reaches labgrid or mpforge's labgrid client and farm."""
    forbidden = ("labgrid", "mpforge.device.labgrid", "mpforge.device.farm")
    reached = imported_closure(PACKAGE / "device" / "transport.py")
    assert "mpforge.device.spec" in reached  # the closure is followed (the grammar is imported)
    assert sorted(n for n in reached if n in forbidden or n.startswith(tuple(f + "." for f in forbidden))) == []
