"""``doctor``: probing, required-vs-optional, the exit status and ``--fix``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import project_for, run_task
from mpforge.core.errors import MpforgeError
from mpforge.core.executor import Executor
from mpforge.firmware import doctor


def bin_with(tmp_path: Path, *programs: str) -> str:
    """A PATH holding only the named host programs (the CLI runs as ``sys.executable``)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in programs:
        real = shutil.which(name)
        assert real, f"test needs {name} on this machine"
        (folder / name).symlink_to(real)
    return str(folder)


def test_doctor_passes_when_everything_unix_needs_is_installed(fixture_project):
    result = run_task(fixture_project, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "host-gcc" in result.stdout and "needed by" in result.stdout
    assert "everything the requested ports need is installed" in result.stdout


def test_doctor_fails_naming_missing_required_tools_and_packages(fixture_project, tmp_path):
    path = bin_with(tmp_path, "git", "make", "gcc", "python3")
    result = run_task(fixture_project, "doctor", env={"PATH": path})
    assert result.returncode == 1
    assert "missing for unix: autoconf, automake, libtool" in result.stderr
    # each missing row says where it comes from
    assert "apt-get install autoconf" in result.stdout
    assert "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi" in result.stdout


def test_missing_optional_toolchain_does_not_fail(fixture_project, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", bin_with(tmp_path, "git", "make", "gcc", "python3", "autoconf",
                                        "automake", "libtoolize", "pkg-config", "aclocal"))
    project = project_for(fixture_project)
    checks = doctor.diagnose(project, [project.catalog.port("unix")])
    arm = next(c for c in checks if c.name == "arm-none-eabi")
    assert not arm.found and not arm.required
    assert all(c.found for c in checks if c.required)


def test_xc16_is_found_through_its_install_folder(fixture_project, tmp_path, monkeypatch):
    xc16 = tmp_path / "xc16"
    (xc16 / "bin").mkdir(parents=True)
    fake = xc16 / "bin" / "xc16-gcc"
    fake.write_text("#!/bin/sh\necho 'Microchip Language Tool Shell Version 1.26 (Build date: Jun 2016)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("XC16_DIR", str(xc16))
    project = project_for(fixture_project)
    checks = doctor.diagnose(project, [project.catalog.port("unix")])
    row = next(c for c in checks if c.name == "xc16")
    assert row.version == "1.26" and row.note == "via $XC16_DIR"


def fake_program(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def test_doctor_names_libltdl_dev_when_its_macro_is_missing(fixture_project, tmp_path):
    # A system set up with --no-install-recommends: libtool is there, libltdl-dev is not,
    # so aclocal has no LT_SYS_SYMBOL_USCORE (libffi's autogen.sh dies on it).
    path = bin_with(tmp_path, "git", "make", "gcc", "python3", "autoconf", "automake",
                    "libtoolize", "pkg-config")
    bin_dir = Path(path)
    acdir = tmp_path / "aclocal"
    acdir.mkdir()
    (acdir / "libtool.m4").write_text("AC_DEFUN([LT_INIT],\n[dnl\n])\n")
    (tmp_path / "aclocal-1.16").mkdir()
    (tmp_path / "aclocal-1.16" / "init.m4").write_text("AC_DEFUN([AM_INIT_AUTOMAKE],\n[])\n")
    fake_program(bin_dir, "aclocal", f"echo {acdir}\n")
    # dpkg knows every package but libltdl-dev
    fake_program(bin_dir, "dpkg-query", """for p in "$@"; do case $p in
  -*) ;;
  libltdl-dev) echo "dpkg-query: no packages found matching $p" ;;
  *) echo "$p install ok installed" ;;
esac; done
""")
    result = run_task(fixture_project, "doctor", env={"PATH": path})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "missing for unix: libltdl-dev, LT_SYS_SYMBOL_USCORE" in result.stderr
    assert "sudo apt-get update && sudo apt-get install libltdl-dev" in result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines()
             if line.startswith(("package ", "macro "))}
    assert "missing" in lines["LT_SYS_SYMBOL_USCORE"] and "init.m4" in lines["AM_INIT_AUTOMAKE"]
    assert "installed" in lines["libtool"]


def test_missing_pieces_are_blamed_on_the_ports_that_need_them(fixture_project, tmp_path):
    # everything unix needs, and no cross compiler at all
    path = bin_with(tmp_path, "git", "make", "gcc", "python3", "autoconf", "automake",
                    "libtoolize", "pkg-config", "aclocal")
    result = run_task(fixture_project, "doctor", "--port", "all", env={"PATH": path})
    assert result.returncode == 1
    errors = [line.split("error ", 1)[1] for line in result.stderr.splitlines() if "missing for" in line]
    assert "missing for pic16bit: xc16" in errors
    assert "missing for esp8266: xtensa-lx106, esptool" in errors
    assert "missing for stmhal: arm-none-eabi" in errors
    assert not any(e.startswith(("missing for unix", "missing for mpy-cross")) for e in errors), errors


def test_doctor_packages_prints_the_apt_list_of_the_ports(fixture_project):
    result = run_task(fixture_project, "doctor", "--packages", "--port", "unix,bare-arm")
    assert result.returncode == 0
    packages = result.stdout.split()
    assert {"libltdl-dev", "gcc-arm-none-eabi", "python3-venv"} <= set(packages)
    assert len(packages) == len(set(packages))


def diagnosis_of(*checks: doctor.Check) -> doctor.Diagnosis:
    return doctor.Diagnosis(list(checks), ["unix"])


def test_fix_installs_missing_debian_packages_with_apt(fixture_project, monkeypatch):
    logged: list[str] = []
    project = project_for(fixture_project)
    project.executor = Executor(log=logged.append, dry_run=True)
    found = diagnosis_of(doctor.Check("tool", "autoconf", "", "apt-get install autoconf", ["autoconf"], ["unix"]),
                         doctor.Check("tool", "git", "2.39", "", ["git"], ["unix"]),
                         doctor.Check("tool", "dfu-util", "", "", ["dfu-util"], []))  # not needed
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert doctor.fix(project, found) == ["autoconf"]
    assert logged == ["$ apt-get update",
                      "$ apt-get install -y --no-install-recommends autoconf"]


def test_fix_as_a_normal_user_says_what_to_run(fixture_project, monkeypatch):
    found = diagnosis_of(doctor.Check("tool", "autoconf", "", "", ["autoconf"], ["unix"]))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(MpforgeError, match="sudo apt-get update && sudo apt-get install autoconf"):
        doctor.fix(project_for(fixture_project), found)
