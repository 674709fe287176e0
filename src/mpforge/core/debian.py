"""``python3 -m mpforge.core.debian PORT ...``: the Debian packages those ports need, one line.

For scripts that run before mpforge's own dependencies are installed (``.ci/run``
on a brand-new machine, a Dockerfile): this module uses the standard library only
(no pydantic: the typed model in :mod:`mpforge.core.model` cannot be imported
yet), so ``PYTHONPATH=src python3 -m mpforge.core.debian unix`` works in a bare
checkout. It reads the few keys the list is made of straight from the TOML files,
in the order of :meth:`mpforge.core.model.catalog.Catalog.debian_packages`, the list
the README, ``invoke doctor --fix`` and ``invoke ci-generate`` use;
``tests/core/test_debian.py`` keeps the two equal for every port.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any


def _read(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _words(value: object) -> list[str]:
    """A ``debian`` entry: one package or a list of them."""
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _macro_packages(deplibs: list[dict[str, Any]]) -> list[str]:
    """The packages that hold the deplibs' aclocal macros."""
    return [pkg for d in deplibs for pkg in d.get("aclocal_macros", {}).values()]


def packages(root: Path, ports: list[str]) -> list[str]:
    """The Debian packages of ``ports`` (with the ports they need), each once, in order."""
    host = _read(root / "toolchains" / "host-tools.toml")
    tools = {name: _words(t.get("debian")) for name, t in host.get("tools", {}).items()}
    project_tools = list(host.get("project", {}).get("tools", []))
    ordered: list[str] = []

    def visit(name: str, seen: tuple[str, ...] = ()) -> None:
        if name in ordered or name in seen:
            return
        data = _read(root / "ports" / f"{name}.toml")
        for need in data.get("needs", []):
            visit(need, (*seen, name))
        ordered.append(name)

    for port in ports:
        if not (root / "ports" / f"{port}.toml").is_file():
            raise SystemExit(f"mpforge.core.debian: unknown port '{port}'")
        visit(port)
    found: list[str] = []
    for name in ordered:
        data = _read(root / "ports" / f"{name}.toml")
        found += _words(_read(root / "toolchains" / f"{data['toolchain']}.toml").get("debian"))
        deplibs = data.get("deplibs", [])
        names = [*project_tools, *data.get("tools", []), *(t for d in deplibs for t in d.get("tools", []))]
        for tool in dict.fromkeys(names):
            found += tools.get(tool, [])
        found += _macro_packages(deplibs)
    if not ports:
        found += [p for t in project_tools for p in tools.get(t, [])]
    return list(dict.fromkeys(found))


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[3]
    try:
        ports = sorted(p.stem for p in (root / "ports").glob("*.toml")) if argv == ["all"] else argv
        print(" ".join(packages(root, ports)))
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        print(f"mpforge.core.debian: cannot read the data: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
