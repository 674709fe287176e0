"""``invoke mirror`` and ``invoke patch --new/--refresh`` on the pinned upstream tree (marker ``realtree``).

A new mirror is made from the one the real-tree tests use (``MPFORGE_MIRROR``), checked,
and a fresh project fetches every port's needs through it; then patch 0010 is refreshed
with an edit inside its hunks, and an edit in a file only 0014 touches is refused naming 0014.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_realtree import make_real_project

from conftest import REPO, git, run_cli
from mpforge.core.settings import resolve_mirror

MIRROR = resolve_mirror(REPO, None)[0] or ""
pytestmark = [
    pytest.mark.realtree,
    pytest.mark.skipif(not MIRROR, reason="real-tree tests need a mirror (MPFORGE_MIRROR) with "
                       "micropython/micropython.git, its submodules and the esp8266 sources"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_real_project(tmp_path_factory.mktemp("real-mirror") / "proj", ("ports", "toolchains", "patches"))


@pytest.fixture(scope="module")
def new_mirror(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    new = tmp_path_factory.mktemp("new-mirror") / "mirror"
    made = run_cli(project, "mirror", str(new), "--from", MIRROR, timeout=1800)
    assert made.returncode == 0, made.stdout + made.stderr
    print(made.stdout)  # the sizes, with -s
    return new


def test_a_new_mirror_is_complete_and_serves_every_port(project: Path, new_mirror: Path):
    for rel in ("micropython/micropython.git", "pfalcon/axtls.git", "pfalcon/berkeley-db-1.xx.git",
                "atgreen/libffi.git", "espressif/ESP8266_NONOS_SDK.git", "pfalcon/esp-open-lwip.git"):
        assert (new_mirror / rel).is_dir(), rel
    checked = run_cli(project, "mirror", "--check", str(new_mirror), timeout=1800)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    fetched = run_cli(project, "fetch", "--port", "all", "--mirror", str(new_mirror), timeout=1800)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert git(project / "micropython", "describe", "--tags").startswith("v1.8.2-20-g")
    assert (project / "build" / "sources" / "esp8266-sdk" / ".git").exists()


def test_refresh_of_0010_inside_its_hunks_and_a_0014_file_refused(project: Path, new_mirror: Path):
    if not (project / "micropython" / ".git").exists():
        assert run_cli(project, "fetch", "--port", "all", "--mirror", str(new_mirror)).returncode == 0
    assert run_cli(project, "patch").returncode == 0
    gc = project / "micropython" / "py" / "gc.c"
    anchor = "#if MICROPY_GC_ALLOC_THRESHOLD\n"
    assert anchor in gc.read_text()
    gc.write_text(gc.read_text().replace(anchor, anchor + "// refreshed into 0010\n", 1))
    done = run_cli(project, "patch", "--refresh", "0010")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "+// refreshed into 0010" in (project / "patches" / "0010-gc-alloc-threshold.patch").read_text()
    objmodule = project / "micropython" / "py" / "objmodule.c"
    objmodule.write_text(objmodule.read_text() + "// only 0014 touches this file\n")
    refused = run_cli(project, "patch", "--refresh", "0010")
    assert refused.returncode == 1 and "0014-py-extra-c-modules.patch" in refused.stderr
