"""``python3 -m mpforge.core.debian PORT ...``: the Debian packages those ports need, one line.

For scripts that run before mpforge's own dependencies are installed (``.ci/run``
on a brand-new machine, a Dockerfile): this module and what it imports use the
standard library only, so ``PYTHONPATH=src python3 -m mpforge.core.debian unix``
works in a bare checkout. The list is :meth:`mpforge.core.config.Catalog.debian_packages`,
the same one the README, ``invoke doctor --fix`` and ``invoke ci-generate`` use.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mpforge.core.config import Catalog
from mpforge.core.errors import MpforgeError


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[3]
    try:
        catalog = Catalog.load(root / "ports", root / "toolchains")
        ports = sorted(catalog.ports) if argv == ["all"] else argv
        print(" ".join(catalog.debian_packages(ports)))
    except MpforgeError as exc:
        print(f"mpforge.core.debian: {exc.one_line()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
