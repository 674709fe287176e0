"""The same tasks on the pinned upstream tree (marker ``realtree``).

They run when ``MPFORGE_MIRROR`` names a mirror folder or URL holding
``micropython/micropython.git`` and the submodules the unix port needs
(``pfalcon/axtls``, ``pfalcon/berkeley-db-1.xx``, ``atgreen/libffi``), and are
skipped with that reason otherwise. Each module builds a fresh project (this
repo's ports, toolchains and patch series, pinned like this repo pins) once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, add_gitlink, git, run_cli

MIRROR = os.environ.get("MPFORGE_MIRROR", "")
pytestmark = [
    pytest.mark.realtree,
    pytest.mark.skipif(not MIRROR, reason="real-tree tests need MPFORGE_MIRROR (a mirror folder "
                       "with micropython/micropython.git and its submodules)"),
]
EXPRESSION = "print(list(5 * x + y for x in range(10) for y in [4, 2, 1]))"


def pinned_commit() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-s", "micropython"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    return out[1]


@pytest.fixture(scope="module")
def real_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    proj = tmp_path_factory.mktemp("real") / "proj"
    for folder in ("ports", "toolchains", "patches"):
        shutil.copytree(REPO / folder, proj / folder)
    git(proj, "init", "-q", "-b", "main")
    git(proj, "add", "-A")
    add_gitlink(proj, "micropython", "https://github.com/micropython/micropython.git",
                pinned_commit())
    git(proj, "commit", "-q", "-m", "project")
    (proj / "micropython").mkdir()
    return proj


@pytest.fixture(scope="module")
def built_unix(real_project: Path) -> Path:
    result = run_cli(real_project, "build", "--mirror", MIRROR, timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    return real_project / "dist" / "unix"


def test_unix_build_runs_the_readme_expression(built_unix: Path):
    out = subprocess.run([built_unix / "micropython", "-c", EXPRESSION], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    assert out.startswith("[4, 2, 1, 9, 7, 6, 14, 12, 11,")
    assert out.strip().endswith("44, 42, 41, 49, 47, 46]")


def test_unix_build_has_the_optional_modules_from_its_deplibs(built_unix: Path):
    code = "import ffi, ussl, btree, _thread; print('ok')"
    out = subprocess.run([built_unix / "micropython", "-c", code], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    assert out.strip() == "ok"


def test_manifest_records_tree_patches_and_toolchain(built_unix: Path):
    manifest = json.loads((built_unix / "manifest.json").read_text())
    assert manifest["tree"]["commit"] == pinned_commit()
    assert manifest["tree"]["describe"].startswith("v1.8.2-20")
    from mpforge.patches import read_series
    assert [p["name"] for p in manifest["patches"]] == [p.name for p in read_series(REPO / "patches")]
    assert manifest["toolchain"]["name"] == "host-gcc"


def test_noop_rebuild_is_up_to_date(real_project: Path, built_unix: Path):
    result = run_cli(real_project, "build", "--mirror", MIRROR)
    assert result.returncode == 0, result.stderr
    assert "unix up to date" in result.stdout


def test_patch_series_reverts_to_pristine_and_reapplies(real_project: Path, built_unix: Path):
    tree = real_project / "micropython"
    assert run_cli(real_project, "patch", "--revert").returncode == 0
    assert git(tree, "status", "--porcelain", "--untracked-files=no") == ""
    status = run_cli(real_project, "patch", "--status")
    assert status.returncode == 0
    assert "conflicting" not in status.stdout
    assert run_cli(real_project, "patch").returncode == 0
    assert run_cli(real_project, "patch").stdout.strip().endswith("patch series already applied")
