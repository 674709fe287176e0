"""The tree's tools/pydfu.py (what ``deploy --runner pydfu`` runs), patched by the series,
on today's Python, against a fake USB backend (``tests/fakes/usb``: a stand-in ``usb``
package with one STM32 in DfuSe mode). Marker ``realtree``: it needs the pinned tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_realtree import MIRROR, real_project  # noqa: F401  (the shared fixture)

from conftest import run_cli
from mpforge.device import dfuse

pytestmark = [pytest.mark.realtree,
              pytest.mark.skipif(not MIRROR, reason="real-tree tests need a mirror")]

FAKES = Path(__file__).resolve().parents[1] / "fakes"


@pytest.fixture(scope="module")
def pydfu(real_project: Path) -> Path:  # noqa: F811
    """tools/pydfu.py of the fetched and patched tree (nothing built)."""
    for step in (("fetch", "--mirror", MIRROR), ("patch",)):
        result = run_cli(real_project, *step, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
    return real_project / "micropython" / "tools" / "pydfu.py"


def run_pydfu(pydfu: Path, *args: str, fake_usb: bool = True, state: Path | None = None,
              **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if fake_usb:
        full["PYTHONPATH"] = str(FAKES)
    if state is not None:
        full["FAKE_USB_STATE"] = str(state)
    full.update(env)
    return subprocess.run([sys.executable, str(pydfu), *args], env=full, text=True,
                          capture_output=True, timeout=120)


def dfu_file(path: Path, elements: list[tuple[int, bytes]], corrupt: bool = False) -> Path:
    data = dfuse.write([dfuse.Target(0, "ST...", [dfuse.Element(a, d) for a, d in elements])],
                       0x0483, 0xDF11)
    if corrupt:
        data = data[:-1] + bytes([data[-1] ^ 0xFF])  # the CRC no longer matches
    path.write_bytes(data)
    return path


def memory(story: dict) -> dict[int, int]:
    """Address -> byte, from the writes the fake device saw."""
    image: dict[int, int] = {}
    for address, hexdata in story["writes"]:
        for offset, byte in enumerate(bytes.fromhex(hexdata)):
            image[address + offset] = byte
    return image


def test_help_works_on_this_python_without_pyusb(pydfu: Path):
    result = run_pydfu(pydfu, "--help", fake_usb=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: pydfu.py") and "--mass-erase" in result.stdout
    bad = run_pydfu(pydfu, "--no-such-option", fake_usb=False)
    assert bad.returncode == 2 and "unrecognized arguments" in bad.stderr


def test_a_device_without_pyusb_names_the_package(pydfu: Path):
    probe = subprocess.run([sys.executable, "-c", "import usb"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("pyusb is installed here")
    result = run_pydfu(pydfu, "-l", fake_usb=False)
    assert result.returncode != 0
    assert "needs pyusb (pip install pyusb)" in result.stderr


@pytest.mark.parametrize("old_pyusb", [False, True], ids=["pyusb-1.x", "pyusb-1.0.0b1"])
def test_list_shows_the_device_and_its_flash_layout(pydfu: Path, old_pyusb: bool):
    env = {"FAKE_USB_GET_STRING_LENGTH": "1"} if old_pyusb else {}
    result = run_pydfu(pydfu, "-l", **env)
    assert result.returncode == 0, result.stderr
    assert "Bus 1 Device 005: ID 0483:df11" in result.stdout
    assert "0x8000000  4 pages of  16K bytes" in result.stdout
    assert "0x8020000  7 pages of 128K bytes" in result.stdout


def test_upload_walks_every_element_erasing_each_page_it_touches(pydfu: Path, tmp_path: Path):
    low = bytes(range(256)) * 2  # 512 bytes across the 16K page boundary at 0x08004000
    high = bytes((7 * i) & 0xFF for i in range(5000))
    path = dfu_file(tmp_path / "firmware.dfu", [(0x08003F00, low), (0x08020000, high)])
    state = tmp_path / "usb.json"
    result = run_pydfu(pydfu, "-u", str(path), state=state)
    assert result.returncode == 0, result.stderr
    assert "DfuSe v1" in result.stdout and "b'" not in result.stdout  # names decoded
    assert "0, address: 0x08003f00, size: 512" in result.stdout
    assert "1, address: 0x08020000, size: 5000" in result.stdout
    (story,) = json.loads(state.read_text())
    assert story["errors"] == []
    assert sorted(set(story["erased"])) == [0x08000000, 0x08004000, 0x08020000]
    assert not story["mass_erase"] and story["left"]
    image = memory(story)
    assert bytes(image[0x08003F00 + i] for i in range(len(low))) == low
    assert bytes(image[0x08020000 + i] for i in range(len(high))) == high
    assert len(image) == len(low) + len(high)


def test_mass_erase_then_upload_erases_no_page(pydfu: Path, tmp_path: Path):
    path = dfu_file(tmp_path / "firmware.dfu", [(0x08000000, b"\x01\x02\x03" * 100)])
    state = tmp_path / "usb.json"
    result = run_pydfu(pydfu, "-m", "-u", str(path), state=state)
    assert result.returncode == 0, result.stderr
    (story,) = json.loads(state.read_text())
    assert story["mass_erase"] and story["erased"] == [] and story["errors"] == []
    assert bytes(memory(story)[0x08000000 + i] for i in range(300)) == b"\x01\x02\x03" * 100


def test_a_file_with_a_bad_crc_is_not_written(pydfu: Path, tmp_path: Path):
    path = dfu_file(tmp_path / "firmware.dfu", [(0x08000000, b"\xAA" * 64)], corrupt=True)
    state = tmp_path / "usb.json"
    result = run_pydfu(pydfu, "-u", str(path), state=state)
    assert "CRC ERROR" in result.stdout
    (story,) = json.loads(state.read_text())
    assert story["writes"] == [] and story["erased"] == [] and not story["left"]


def test_two_devices_are_refused(pydfu: Path, tmp_path: Path):
    result = run_pydfu(pydfu, "-u", "whatever.dfu", FAKE_USB_DEVICES="2")
    assert result.returncode == 1 and "Multiple DFU devices found" in result.stderr
    none = run_pydfu(pydfu, "-u", "whatever.dfu", FAKE_USB_DEVICES="0")
    assert none.returncode == 1 and "No DFU device found" in none.stderr
