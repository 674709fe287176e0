"""The example app (``tests/fixtures/thermostat``) on the pinned upstream tree (marker ``realtree``):
its frozen package and C module imported and used on the unix build and on the emulated
pyboard, its own board (a folder outside the checkout) built to a DfuSe file that deploy's
checks accept, and a C module that is not there failing the build in one line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_realtree import MIRROR, real_project  # noqa: F401  (the shared fixture)

from conftest import FIXTURES, REPO, run_cli
from mpforge.device.emulate import running

pytestmark = [
    pytest.mark.realtree,
    pytest.mark.skipif(not MIRROR, reason="real-tree tests need a mirror"),
]
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="needs arm-none-eabi-gcc")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="needs qemu-system-arm")
QEMU = "qemu-system-arm -M netduinoplus2 -nographic -monitor none -serial pty -kernel {elf}"

#: what tests/fixtures/thermostat/selftest.py prints on a firmware with the app built in
SELFTEST = """\
crc16 0x29b1
frame ['0x7', '0xfb', '0x2e', '0x43', '0x9b']
decoded (7, -1234)
heating [True, True, False, False, True]
damaged bad frame
thermostat 1.0 ok
"""


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example app in a folder outside the checkout, as a user's own would be."""
    dest = tmp_path_factory.mktemp("outside") / "thermostat"
    shutil.copytree(FIXTURES / "thermostat", dest)
    return dest


def build(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_cli(project, "build", "--mirror", MIRROR, *args, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def unix_app(real_project: Path, example: Path) -> Path:  # noqa: F811
    build(real_project, "--port", "unix", "--app", str(example))
    return real_project / "dist" / "unix"


def test_the_frozen_package_and_the_c_module_work_on_unix(unix_app: Path, example: Path,
                                                          tmp_path: Path):
    binary = unix_app / "micropython"
    # from an empty folder: nothing to import but what the firmware holds
    ran = subprocess.run([binary], input=(example / "selftest.py").read_text(), text=True,
                         capture_output=True, cwd=tmp_path, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == SELFTEST
    where = subprocess.run([binary, "-c", "import thermostat, crc16; print(thermostat, crc16)"],
                           text=True, capture_output=True, cwd=tmp_path, timeout=60)
    assert where.stdout.strip() == "<module 'thermostat'> <module 'crc16'>"


def test_the_manifest_lists_every_frozen_file_with_its_sha256(unix_app: Path, example: Path):
    manifest = json.loads((unix_app / "manifest.json").read_text())
    app = manifest["app"]
    assert (app["name"], app["freeze"]) == ("thermostat", "mpy")
    assert {f["name"]: f["sha256"] for f in app["frozen"]} == {
        name: hashlib.sha256((example / name).read_bytes()).hexdigest()
        for name in ("thermostat/__init__.py", "thermostat/control.py", "thermostat/frame.py")}
    assert [m["name"] for m in app["c_modules"]] == ["crc16"]
    # the module's symbol stays in the stripped program: the build looked for it there
    symbols = subprocess.run(["nm", str(unix_app / "micropython")], text=True,
                             capture_output=True).stdout
    assert " mp_module_crc16" in symbols


def test_a_missing_c_module_fails_the_build_in_one_line(real_project: Path, example: Path,  # noqa: F811
                                                        tmp_path: Path):
    broken = tmp_path / "thermostat"
    shutil.copytree(example, broken)
    (broken / "cmodules" / "crc16" / "crc16.c").unlink()
    result = run_cli(real_project, "build", "--mirror", MIRROR, "--app", str(broken), timeout=600)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "C module 'crc16' has no C source in" in line
    # a port whose make leaves the module out: the firmware's symbol table says so
    shutil.copytree(example / "cmodules", broken / "cmodules", dirs_exist_ok=True)
    (broken / "mpforge.toml").write_text((example / "mpforge.toml").read_text()
                                         + '\n[make_vars]\nEXTRA_MOD_NAMES = ""\n')
    left_out = run_cli(real_project, "build", "--mirror", MIRROR, "--app", str(broken),
                       timeout=1800)
    assert left_out.returncode == 1
    (line,) = left_out.stderr.strip().splitlines()
    assert ("C module 'crc16' (cmodules/crc16) is not in the linked micropython: "
            "no mp_module_crc16 in its symbol table") in line


@needs_arm
@needs_qemu
def test_the_app_on_the_emulated_pyboard(real_project: Path, example: Path):  # noqa: F811
    build(real_project, "--port", "stmhal", "--board", "PYBV10_QEMU", "--app", str(example))
    elf = real_project / "dist" / "stmhal-PYBV10_QEMU" / "firmware.elf"
    with running(QEMU.format(elf=elf)) as emulation:
        ran = run_cli(real_project, "run", str(example / "selftest.py"), "--device", emulation.pty,
                      timeout=120)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == SELFTEST
        code = example.parent / "where.py"
        code.write_text("import os, thermostat, crc16\n"
                        "print(sorted(os.listdir('/flash')), thermostat, crc16)\n")
        where = run_cli(real_project, "run", str(code), "--device", emulation.pty, timeout=120)
        assert where.stdout.strip() == ("['README.txt', 'boot.py', 'main.py', 'pybcdc.inf'] "
                                        "<module 'thermostat'> <module 'crc16'>")


@needs_arm
def test_the_products_board_outside_the_checkout_builds_and_passes_deploys_checks(
        real_project: Path, example: Path):  # noqa: F811
    board = example / "boards" / "THERMO_V1"
    listed = run_cli(real_project, "build", "--port", "stmhal", "--board", "list", "--board-dir",
                     str(board), "--mirror", MIRROR, timeout=600)
    assert listed.returncode == 0, listed.stderr
    assert "THERMO_V1" in listed.stdout and "PYBV10_QEMU" in listed.stdout
    build(real_project, "--port", "stmhal", "--app", str(example))  # the app's board_dir
    dist = real_project / "dist" / "stmhal-THERMO_V1"
    manifest = json.loads((dist / "manifest.json").read_text())
    assert manifest["board"] == "THERMO_V1" and manifest["board_dir"]["path"] == str(board)
    assert manifest["app"]["name"] == "thermostat"
    strings = subprocess.run(["arm-none-eabi-strings", str(dist / "firmware.elf")], text=True,
                             capture_output=True).stdout
    assert "Thermostat v1" in strings  # the board's own name, from its folder
    # deploy takes the same options; a dry run checks the DfuSe file (parse, USB id, the
    # board's flash from the linker script its folder names) and prints the command
    fake = real_project.parent / "bin"
    fake.mkdir(exist_ok=True)
    if not (fake / "dfu-util").exists():
        (fake / "dfu-util").symlink_to(REPO / "tests" / "fakes" / "dfu-util")
    env = {"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "DFU_STATE": str(real_project.parent)}
    for options in (("--app", str(example)), ("--board-dir", str(board))):
        plan = run_cli(real_project, "deploy", "--dry-run", "--port", "stmhal", *options, env=env,
                       timeout=120)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert f"$ dfu-util -a 0 -d 0483:df11 -s :leave -D {dist / 'firmware.dfu'}" in plan.stdout
    if shutil.which("dfu-suffix"):
        suffix = subprocess.run(["dfu-suffix", "-c", str(dist / "firmware.dfu")], text=True,
                                capture_output=True)
        assert "Vendor ID:\t0x0483" in suffix.stdout and "Product ID:\t0xDF11" in suffix.stdout
