"""Cross-compiled ports on the pinned upstream tree (marker ``realtree``).

Needs ``MPFORGE_MIRROR`` (with, for esp8266, ``espressif/ESP8266_NONOS_SDK`` and
``pfalcon/esp-open-lwip`` too) and the Debian toolchains (``invoke doctor --port all``).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from test_realtree import MIRROR, real_project  # noqa: F401  (the shared fixture)

from conftest import run_cli

pytestmark = [
    pytest.mark.realtree,
    pytest.mark.skipif(not MIRROR, reason="real-tree tests need MPFORGE_MIRROR"),
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc"),
]

ARM_TARGETS = ("stmhal-PYBV10", "minimal", "bare-arm", "teensy", "qemu-arm", "cc3200-WIPY")


@pytest.fixture(scope="module")
def arm_matrix(real_project: Path) -> dict:  # noqa: F811
    result = run_cli(real_project, "build", "--mirror", MIRROR, "--port",
                     "stmhal,minimal,bare-arm,teensy,qemu-arm,cc3200", "--no-ccache", timeout=3600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return {t: json.loads((real_project / "dist" / t / "manifest.json").read_text())
            for t in ARM_TARGETS}


def test_every_arm_target_has_its_artifacts_and_sizes(arm_matrix, real_project):  # noqa: F811
    expected = {"stmhal-PYBV10": {"firmware.dfu", "firmware.hex", "firmware.elf"},
                "minimal": {"firmware.elf", "firmware.dfu", "firmware.bin"},
                "bare-arm": {"firmware.elf", "firmware.bin"},
                "teensy": {"micropython.hex", "micropython.elf"},
                "qemu-arm": {"firmware.elf"},
                "cc3200-WIPY": {"mcuimg.bin", "bootloader.bin"}}
    for target, names in expected.items():
        manifest = arm_matrix[target]
        assert {a["name"] for a in manifest["artifacts"]} == names
        assert manifest["size"]["text"] > 10_000
        assert manifest["source_date_epoch"] > 0


def test_no_firmware_memset_calls_itself(arm_matrix, real_project):  # noqa: F811
    for target in ("stmhal-PYBV10", "minimal", "bare-arm", "qemu-arm"):
        elf = real_project / "dist" / target / "firmware.elf"
        dump = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], text=True,
                              stdout=subprocess.PIPE, check=True).stdout
        body = dump.split("<memset>:", 1)[1].split("\n\n", 1)[0]
        assert "<memset>" not in body, f"{target}: memset calls itself"


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="needs qemu-system-arm")
def test_minimal_firmware_boots_to_the_repl_under_qemu(arm_matrix, real_project):  # noqa: F811
    elf = real_project / "dist" / "minimal" / "firmware.elf"
    qemu = subprocess.Popen(["qemu-system-arm", "-M", "netduinoplus2", "-nographic",
                             "-monitor", "none", "-serial", "stdio", "-kernel", str(elf)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        seen = read_until(qemu, b">>> ", 20)
        assert b"MicroPython v1.8.2" in seen and b"minimal" in seen
        qemu.stdin.write(b"print(6 * 7)\r")
        qemu.stdin.flush()
        assert b"42" in read_until(qemu, b"42", 10)
    finally:
        qemu.kill()
        qemu.wait()


def read_until(proc: subprocess.Popen, marker: bytes, seconds: float) -> bytes:
    data = b""
    deadline = time.monotonic() + seconds
    while marker not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            data += os.read(proc.stdout.fileno(), 4096)
    return data


@pytest.mark.skipif(shutil.which("xtensa-lx106-elf-gcc") is None or shutil.which("esptool.py") is None,
                    reason="needs gcc-xtensa-lx106 and esptool<5")
def test_esp8266_builds_firmware_combined_with_iram_report(real_project):  # noqa: F811
    result = run_cli(real_project, "build", "--mirror", MIRROR, "--port", "esp8266", timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    manifest = json.loads((real_project / "dist" / "esp8266" / "manifest.json").read_text())
    combined = next(a for a in manifest["artifacts"] if a["name"] == "firmware-combined.bin")
    assert 400_000 < combined["size"] < 1_000_000
    assert manifest["size"]["iram_limit"] == 32768
    assert 30_000 < manifest["size"]["iram"] <= 32768
    info = subprocess.run(["esptool.py", "image_info",
                           str(real_project / "dist" / "esp8266" / "firmware-combined.bin")],
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout
    assert "ESP8266" in info and "Entry point: 40100004" in info


def test_pic16bit_without_xc16_fails_fast_naming_it(real_project):  # noqa: F811
    if shutil.which("xc16-gcc") or os.environ.get("XC16_DIR"):
        pytest.skip("XC16 is installed here")
    result = run_cli(real_project, "build", "--port", "pic16bit")
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[0]
    assert "toolchain xc16 not found" in line and "XC16_DIR" in line and "microchip.com" in line


def test_stmhal_dfu_files_parse_and_fit_their_boards_flash(arm_matrix, real_project):  # noqa: F811
    from conftest import project_for
    from mpforge.device import dfuse
    from mpforge.device.runners.dfu import flash_regions

    project = project_for(real_project)
    target = project.target("stmhal", "PYBV10")
    parsed = dfuse.parse((real_project / "dist" / "stmhal-PYBV10" / "firmware.dfu").read_bytes())
    regions = flash_regions(target)
    # STM32F405: 1 MiB of FLASH (and its FLASH_ISR/FLASH_TEXT parts), from boards/stm32f405.ld
    assert (0x08000000, 0x100000) in regions
    dfuse.check(parsed, usb_id=(0x0483, 0xDF11), flash=regions)
    assert [e.address for e in parsed.targets[0].elements] == [0x08000000, 0x08020000]


def test_deploy_dry_run_plans_dfu_util_for_the_pyboard(arm_matrix, real_project):  # noqa: F811
    result = run_cli(real_project, "deploy", "--port", "stmhal", "--board", "PYBV10", "--dry-run",
                     "--mirror", MIRROR)
    assert result.returncode == 0, result.stderr
    if shutil.which("dfu-util"):
        assert "$ dfu-util -a 0 -d 0483:df11 -s :leave -D" in result.stdout
    else:  # the port's fallback runner, the tree's own tools/pydfu.py
        assert "runner: pydfu" in result.stdout and "tools/pydfu.py -u " in result.stdout
    assert "the banner must name v1.8.2-20" in result.stdout
