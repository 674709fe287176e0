"""mpforge drives labgrid through its public API only (mpforge.device.coordinator's docstring
says which parts), and the farm starts its programs through the executor only.

Read from the source with ``ast``, every import form and every attribute access:

- no name, module or attribute of labgrid that starts with ``_`` is imported or touched;
- in the modules that reach labgrid (directly, or through mpforge.device.coordinator,
  .labgrid or .farm), no private attribute of anything but ``self`` is touched
  (``coordinator._run(...)``, ``session._acquire_place(...)``, ``client._loop``), no
  ``argparse`` stands in for labgrid-client's command line, and a session's channel, stub
  or arguments are not replaced;
- the farm package starts no process itself (no subprocess, os.kill* of children, /proc).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "mpforge"
#: a ClientSession's parts that labgrid sets up itself: replacing them is using its insides
REPLACED = {"channel", "stub", "args"}
LABGRID_USERS = ("labgrid", "mpforge.device.coordinator", "mpforge.device.labgrid", "mpforge.device.farm")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in ``tree`` (function bodies included)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def labgrid_violations(path: Path) -> list[str]:
    """What in the module at ``path`` breaks the rules of this file's docstring."""
    tree = ast.parse(path.read_text(), str(path))
    imports = _imports(tree)
    found = []
    for module, names in imports:
        if module.split(".")[0] == "labgrid":
            found += [f"imports {module}" for part in module.split(".") if _private(part)]
            found += [f"imports {name} from {module}" for name in names if _private(name)]
    uses = any(m == user or m.startswith(user + ".") for m, _ in imports for user in LABGRID_USERS)
    uses |= any(m == "mpforge.device" and {"labgrid", "farm", "coordinator"} & set(n) for m, n in imports)
    if not uses:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Assign | ast.AugAssign):  # a session's insides replaced
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [f"line {node.lineno}: sets {ast.unparse(t)}" for t in targets
                      if isinstance(t, ast.Attribute) and t.attr in REPLACED]
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("insecure_channel"):
            found.append(f"line {node.lineno}: a gRPC channel of its own")
    found += [f"imports {m}" for m, _ in imports if m == "argparse"]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "templates" not in p.parts)


def test_no_module_uses_a_private_name_of_labgrid_or_of_the_labgrid_client() -> None:
    offences = {str(p.relative_to(SRC)): v for p in _modules() if (v := labgrid_violations(p))}
    assert offences == {}


def test_the_check_sees_the_ways_labgrid_was_driven_before(tmp_path: Path) -> None:
    """The forms the checker must catch: a private client call, an mpforge-private call on
    a session, a private labgrid import, labgrid-client's argparse command line."""
    module = tmp_path / "m.py"
    for source, says in [
        ("from labgrid.remote import client\ndef f(s): return s._acquire_place('p')\n", "s._acquire_place"),
        ("from mpforge.device.labgrid import Coordinator\ndef f(c, x): c._run(x)\n", "c._run"),
        ("def f():\n    from labgrid.remote.client import _loop\n", "imports _loop"),
        ("import argparse\nfrom mpforge.device import labgrid\n", "imports argparse"),
        ("import grpc\nfrom labgrid.remote import client\ndef f(s): s.channel = grpc.aio.insecure_channel('a')\n",
         "sets s.channel"),
    ]:
        module.write_text(source)
        assert any(says in v for v in labgrid_violations(module)), source
    module.write_text("import os\ndef f(x): return x._private\n")  # no labgrid: not this test's business
    assert labgrid_violations(module) == []


@pytest.mark.parametrize("module", sorted((SRC / "device" / "farm").glob("*.py")), ids=lambda p: p.name)
def test_the_farm_starts_no_process_but_through_the_executor(module: Path) -> None:
    tree = ast.parse(module.read_text())
    imported = {m.split(".")[0] for m, _ in _imports(tree)}
    assert "subprocess" not in imported
    called = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not called & {"os.killpg", "os.waitpid", "os.fork", "os.spawnv", "os.system", "os.popen"}
    assert "/proc" not in module.read_text()
