"""The gates `.ci/run` relies on cover everything they claim to.

A linter whose exclude pattern also matches a source folder reports "clean" on code it
never read (a bare ``build`` once skipped the package then named ``mpforge.build``). These
tests ask the tools themselves which files they check and compare that with what git
tracks, so a hole in the configuration fails here instead of hiding defects.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import REPO

#: what no gate is meant to read: the upstream tree's test inputs we ship as fixtures
NOT_OURS = ("tests/fixtures/",)


def tracked_python_files() -> set[str]:
    """Every ``.py`` file git tracks in this checkout, fixtures aside (relative paths)."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing to compare the gates with")
    out = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, check=True, capture_output=True, text=True)
    return {line for line in out.stdout.splitlines() if line and not line.startswith(NOT_OURS)}


def tool(name: str) -> list[str]:
    """The command that runs ``name`` from this interpreter's environment (the venv's)."""
    if shutil.which(name) is None and shutil.which(name, path=str(Path(sys.executable).parent)) is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return [sys.executable, "-m", name]


def test_ruff_reads_every_python_file_we_wrote() -> None:
    out = subprocess.run([*tool("ruff"), "check", "--show-files"], cwd=REPO, check=True,
                         capture_output=True, text=True)
    shown = {str(Path(line).resolve().relative_to(REPO)) for line in out.stdout.splitlines()
             if line.endswith(".py")}
    assert tracked_python_files() - shown == set(), "ruff skips these files"


def test_ruff_excludes_are_anchored_to_the_root() -> None:
    """A bare folder name excludes that name at any depth: every pattern starts with ``./``."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]
    loose = [p for p in config.get("extend-exclude", []) + config.get("exclude", []) if not p.startswith("./")]
    assert loose == []


def test_mypy_checks_every_library_module() -> None:
    """mypy's own list of the files it would check holds every module of the library."""
    library = {p for p in tracked_python_files() if p.startswith("src/")}
    out = subprocess.run([*tool("mypy"), "--no-incremental", "--cache-dir", "/dev/null", "-v"], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:]
    seen = set()
    for line in out.stderr.splitlines():
        # "LOG:  Parsing src/mpforge/core/lock.py (mpforge.core.lock)"
        if "Parsing " in line and "src/" in line:
            seen.add(line.split("Parsing ", 1)[1].split(" ", 1)[0])
    assert library - seen == set(), "mypy skips these files"
