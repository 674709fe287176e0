"""The workloads ``invoke perf`` counts: our programs, and a user's own file.

Our programs are ``programs/*.py`` (package data, MicroPython 1.8 syntax: no
f-strings); each exercises one thing firmware does (dicts, attributes, big ints,
floats, formatting, bytes, generators, exceptions, closures, allocation, imports...)
and prints a result, so a run that goes wrong shows. ``--workloads NAME,...`` picks
some of them; an item ending in ``.py`` is a user's file, named by its stem.
``shim/bench.py`` is the ``bench`` module the tree's own ``tests/bench/*.py`` import
(ITERS scaled down for valgrind).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mpforge.core.errors import MpforgeError


@dataclass(frozen=True)
class Workload:
    name: str
    source: str
    origin: str  # "mpforge", "tree" or "file"


def ours() -> dict[str, Workload]:
    """Every program of ours, by name, sorted."""
    folder = resources.files(__package__).joinpath("programs")
    found = sorted(p.name for p in folder.iterdir() if p.name.endswith(".py"))
    return {name[:-3]: Workload(name[:-3], folder.joinpath(name).read_text(), "mpforge")
            for name in found}


def bench_shim() -> str:
    """The text of our ``bench`` module for the tree's ``tests/bench`` programs."""
    return resources.files(__package__).joinpath("shim", "bench.py").read_text()


def select(spec: str | None) -> list[Workload]:
    """``None``/``all``: all of ours; else ``NAME,...`` and ``FILE.py`` items, in order.
    An unknown name or a missing file is one error naming it (nothing is run)."""
    available = ours()
    if spec is None or spec.strip() in ("", "all"):
        return list(available.values())
    chosen = []
    for item in (i.strip() for i in spec.split(",") if i.strip()):
        if item.endswith(".py"):
            path = Path(item)
            if not path.is_file():
                raise MpforgeError(f"--workloads: no such file: {item}", "give a Python file that exists")
            chosen.append(Workload(path.stem, path.read_text(), "file"))
        elif item in available:
            chosen.append(available[item])
        else:
            raise MpforgeError(f"--workloads: unknown workload {item!r}",
                               f"choose from {', '.join(available)} or give FILE.py")
    return chosen
