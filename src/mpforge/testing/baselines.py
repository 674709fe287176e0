"""Known differences: the baselines of the tree's test suite, and the runner's own options.

``tests/baselines/<tree version>-cpython<X.Y>.toml`` lists the tests whose expected
output the host's CPython cannot produce for this tree, each with its reason (an entry
may name the ``ports`` it is a difference of). A run variant (:class:`RunOptions`:
``--emit native``, ``--heapsize``, other test folders) or a build variant
(``coverage``) has a file of its own, ``...-<flavour>.toml``, whose entries add to
the usual ones (:func:`baseline_path`). :mod:`mpforge.testing.testrun` applies them.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mpforge.core.config import RunVariantDef
from mpforge.core.errors import ConfigError
from mpforge.core.project import Project


def load_baseline(path: Path, port: str | None = None) -> dict[str, str]:
    """Test name -> reason, from a baseline file (absent file: no known differences).

    An entry with ``ports = ["unix"]`` is a known difference of those ports only (a
    test the emulated pyboard passes is no known difference there); ``port`` None
    takes every entry."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
        return {entry["test"]: entry["reason"] for entry in data.get("known", [])
                if port is None or port in entry.get("ports", [port])}
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path.name}: not a baseline ({exc})",
                          "each [[known]] needs test = \"dir/name.py\" and reason = \"...\" "
                          "(and optionally ports = [\"unix\"])") from exc


def baseline_path(project: Project, python: str, flavour: str = "") -> Path:
    """``tests/baselines/v1.8.2-cpython3.11.toml`` for this tree and this CPython; with a
    ``flavour`` (a build or run variant: ``native``, ``coverage``), the file of the
    differences that variant adds, ``v1.8.2-cpython3.11-native.toml``."""
    from mpforge.tree.git import Git
    described = Git(project.executor).query(project.tree, "describe", "--tags", "--always")
    version = described.split("-")[0] or "unknown"
    if python == sys.executable:  # the usual case: no CPython to start for it
        minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    else:
        minor = project.executor.output([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    suffix = f"-{flavour}" if flavour else ""
    return project.root / "tests" / "baselines" / f"{version}-cpython{minor}{suffix}.toml"


@dataclass(frozen=True)
class RunOptions:
    """How the tree's runner runs the suite, beyond the target: its own options.

    ``emit`` (``--emit native``), ``heapsize`` (``--heapsize 32k``), ``dirs`` (other
    test folders than the port's, e.g. ``thread``). Each non-default choice is a
    *flavour* with a baseline of its own (:func:`baseline_path`), whose known
    differences add to the port's usual ones.
    """

    emit: str = ""
    heapsize: str = ""
    dirs: tuple[str, ...] = ()

    @classmethod
    def of(cls, variant: RunVariantDef) -> RunOptions:
        return cls(variant.emit, variant.heapsize, variant.dirs)

    def args(self) -> list[str]:
        return [*(["--emit", self.emit] if self.emit else []),
                *(["--heapsize", self.heapsize] if self.heapsize else [])]

    def flavours(self) -> list[str]:
        return [f for f in (self.emit if self.emit not in ("", "bytecode") else "",
                            "heapsize" if self.heapsize else "", *self.dirs) if f]

    def describe(self) -> str:
        return " ".join([*self.args(), *(["-d", *self.dirs] if self.dirs else [])])
