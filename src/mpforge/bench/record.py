"""What a benchmark's JSON file says about the run that produced it.

A figure in the docs must come from a file in ``bench-results/`` that says which run
produced it: the commit of the code that ran (and whether that checkout had changes
not committed), the pinned tree and the patch series, the host, the date and the
command. :func:`provenance` gathers that; the tasks write it next to the figures
(``--json F``, or ``--record`` for ``bench-results/<benchmark>.json``).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
from pathlib import Path

from mpforge.core.project import Project

#: where ``--record`` writes, relative to the checkout's root
RESULTS_DIR = "bench-results"


def record_path(project: Project, name: str) -> Path:
    """``bench-results/<name>.json`` in the checkout."""
    return project.root / RESULTS_DIR / f"{name}.json"


def _git(project: Project, where: Path, *args: str) -> str | None:
    result = project.executor.run(["git", "-C", str(where), *args], check=False, mutates=False,
                                  what="git")
    return result.stdout.strip() if result.ok else None


def _code_commit(project: Project) -> dict[str, object]:
    """The commit of the mpforge code that ran, and whether its checkout had changes."""
    source = Path(__file__).resolve().parents[3]  # src/mpforge/bench/record.py -> the checkout
    commit = _git(project, source, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "note": "mpforge not run from a git checkout"}
    status = _git(project, source, "status", "--porcelain", "--untracked-files=no", "--", "src")
    return {"commit": commit, "uncommitted_changes": bool(status)}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def host() -> dict[str, object]:
    """What the figures depend on: the CPU, how many cores, the system."""
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "system": platform.system(),
            "release": platform.release(), "python": platform.python_version()}


def series_digest(project: Project) -> str | None:
    """sha256 of ``patches/`` (the series file and every patch named in it), short."""
    series = project.patches_dir / "series"
    if not series.is_file():
        return None
    digest = hashlib.sha256()
    for path in sorted(project.patches_dir.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def provenance(project: Project, command: str) -> dict[str, object]:
    """The ``run`` header of a result file; ``command`` is what was typed (as the cli saw it)."""
    return {
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "mpforge": _code_commit(project),
        "project_commit": _git(project, project.root, "rev-parse", "HEAD"),
        "tree_commit": (_git(project, project.tree, "rev-parse", "HEAD")
                        if (project.tree / ".git").exists() else None),
        "patches_sha256": series_digest(project),
        "host": host(),
    }
