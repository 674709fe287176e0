"""Provenance on the pinned upstream tree (marker ``realtree``): the same firmware from two
checkouts on two file systems, the version its banner shows, its SBOM and its rebuild.

Two projects (this repo's ports, toolchains and patch series, pinned like this repo) are
made, one on tmpfs (``/dev/shm``) and one on the disk, at different paths; each builds the
unix port (with its frozen upip modules) and ``stmhal-PYBV10`` with the example app
(frozen package, C module), and every artifact must have the same sha256 in both. Before
the series sorted the frozen modules, the unix binaries differed (ext4 and tmpfs list a
folder in different orders).
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_realtree import MIRROR, make_real_project

from conftest import REPO, run_cli
from mpforge.firmware.manifest import expected_version, series_id
from mpforge.firmware.verify import compare, verify_dist
from mpforge.tree.patches import read_series

SHM = Path("/dev/shm")


def file_system(path: Path) -> str:
    return subprocess.run(["stat", "-f", "-c", "%T", str(path)], text=True, capture_output=True,
                          check=True).stdout.strip()


pytestmark = [
    pytest.mark.realtree,
    pytest.mark.skipif(not MIRROR, reason="real-tree tests need a mirror"),
    pytest.mark.skipif(not SHM.is_dir() or file_system(SHM) != "tmpfs", reason="needs a tmpfs at /dev/shm"),
]
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
VERSION = re.compile(r"v1\.8\.2-20-g04c27e5eaa\+s\.[0-9a-f]{8}")


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(on tmpfs, on the disk): two checkouts of the same project at different paths."""
    disk = tmp_path_factory.mktemp("disk")
    if file_system(disk) == "tmpfs":
        pytest.skip("the test folder is on tmpfs too: give --basetemp on a disk")
    shm_root = SHM / f"mpforge-repro-{os.getpid()}"
    shutil.rmtree(shm_root, ignore_errors=True)
    try:
        yield (make_real_project(shm_root / "checkout-a", app=True),
               make_real_project(disk / "elsewhere" / "checkout-b", app=True))
    finally:
        shutil.rmtree(shm_root, ignore_errors=True)


def build(project: Path, target: str, *args: str) -> dict:
    """Build ``target`` (named by ``args``) in ``project``; its manifest."""
    # without ccache: an object from the cache would hide a path the compiler wrote into it
    result = run_cli(project, "build", "--mirror", MIRROR, "--jobs", "2", "--no-ccache", *args, timeout=3600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((project / "dist" / target / "manifest.json").read_text())


def digests(dist: Path, manifest: dict) -> dict[str, str]:
    """sha256 of every artifact, from the files (not from the manifest)."""
    return {a["name"]: hashlib.sha256((dist / a["name"]).read_bytes()).hexdigest()
            for a in manifest["artifacts"]}


def banner(binary: Path) -> str:
    """The unix port's REPL banner: it shows only on a terminal, so one is made."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([str(binary)], stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    out = b""
    try:
        deadline = time.monotonic() + 20
        while b">>> " not in out and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                out += os.read(leader, 4096)
    finally:
        proc.kill()
        proc.wait()
        os.close(leader)
    return out.decode(errors="replace").splitlines()[0]


@pytest.fixture(scope="module")
def unix_builds(projects: tuple[Path, Path]) -> list[dict]:
    return [build(p, "unix", "--port", "unix") for p in projects]


@pytest.fixture(scope="module")
def stmhal_builds(projects: tuple[Path, Path]) -> list[dict]:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs arm-none-eabi-gcc")
    return [build(p, "stmhal-PYBV10", "--port", "stmhal", "--board", "PYBV10", "--app", str(p / "app" / "thermostat"))
            for p in projects]


def test_unix_is_byte_identical_on_tmpfs_and_on_disk(projects: tuple[Path, Path], unix_builds: list[dict]):
    a, b = projects
    assert (file_system(a), file_system(b)) != ("tmpfs", "tmpfs") and file_system(a) == "tmpfs"
    first, second = (digests(p / "dist" / "unix", m) for p, m in zip(projects, unix_builds, strict=True))
    assert "micropython" in first
    assert first == second
    # with its frozen upip modules (the two the folder order used to swap)
    ran = subprocess.run([a / "dist" / "unix" / "micropython", "-c",
                          "import upip_utarfile; print(upip_utarfile.__name__)"],
                         text=True, capture_output=True, timeout=60)
    assert ran.stdout.strip().splitlines()[-1] == "upip_utarfile", ran.stdout + ran.stderr


@needs_arm
def test_a_cross_target_with_an_app_is_byte_identical_on_tmpfs_and_on_disk(projects: tuple[Path, Path],
                                                                         stmhal_builds: list[dict]):
    first, second = (digests(p / "dist" / "stmhal-PYBV10", m)
                     for p, m in zip(projects, stmhal_builds, strict=True))
    assert {"firmware.dfu", "firmware.elf"} <= set(first)
    assert first == second
    assert [f["name"] for f in stmhal_builds[0]["app"]["frozen"]] == [
        "thermostat/__init__.py", "thermostat/control.py", "thermostat/frame.py"]


def test_the_banner_names_the_pin_and_the_series_and_dirty_after_an_edit(projects: tuple[Path, Path],
                                                                       unix_builds: list[dict]):
    project, manifest = projects[1], unix_builds[1]
    version = manifest["version"]
    assert VERSION.fullmatch(version), version
    assert version.endswith(series_id(manifest["patches"]))
    assert [p["name"] for p in manifest["patches"]] == [p.name for p in read_series(REPO / "patches")]
    assert expected_version(manifest) == version
    shown = banner(project / "dist" / "unix" / "micropython")
    assert shown.startswith(f"MicroPython {version} on "), shown

    edited = project / "micropython" / "py" / "qstr.c"
    original = edited.read_bytes()
    edited.write_bytes(original + b"\n/* a user's edit */\n")
    try:
        dirty = build(project, "unix", "--port", "unix")
        assert dirty["version"] == version + ".dirty"
        assert banner(project / "dist" / "unix" / "micropython").startswith(f"MicroPython {version}.dirty on ")
    finally:
        edited.write_bytes(original)
    clean = build(project, "unix", "--port", "unix")
    assert clean["version"] == version


@needs_arm
def test_verify_rebuild_is_identical_and_names_a_changed_artifact(projects: tuple[Path, Path],
                                                                 stmhal_builds: list[dict],
                                                                 tmp_path: Path):
    project = projects[0]
    dist = project / "dist" / "stmhal-PYBV10"
    keep = tmp_path / "rebuild"
    ran = run_cli(project, "verify", str(dist), "--rebuild", "--mirror", MIRROR, "--jobs", "2",
                  "--keep", str(keep), timeout=3600)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "the rebuild is identical, byte for byte" in ran.stdout

    tampered = tmp_path / "stmhal-PYBV10"
    shutil.copytree(dist, tampered)
    data = bytearray((tampered / "firmware.dfu").read_bytes())
    data[len(data) // 2] ^= 0x01
    (tampered / "firmware.dfu").write_bytes(bytes(data))
    assert not verify_dist(tampered).ok
    assert compare(tampered, keep / "checkout" / "dist" / "stmhal-PYBV10").differing == ["firmware.dfu"]
