"""The package's layers, as the README's Layout section draws them: a package imports only
from the packages below it (the import graph has no cycle and no upward edge)."""

from __future__ import annotations

import ast

from conftest import REPO

#: bottom to top
LAYERS = ["core", "tree", "build", "device", "testing", "ci", "bench", "cli"]
PACKAGE = REPO / "src" / "mpforge"


def imported_packages(path) -> set[str]:
    """The mpforge subpackages a module imports from (at any depth, type-only imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mpforge."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("mpforge.")}
    return found


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
            if "pyboard_shim" in path.parts or path.name == "debian.py":
                # the shim runs inside the tree's run-tests (printing is its protocol);
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
