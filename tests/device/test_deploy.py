"""Deploy: DfuSe checks and the whole flow against stand-ins (the runners: test_runners.py).

The hardware edge is faked: a recording dfu-util on PATH (tests/fakes/dfu-util)
and a MicroPython board on a pty (tests/fakes/board.py) behind a device link
that disappears while the board is in its bootloader.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from conftest import run_task
from fakes.board import FakeBoard
from mpforge.device import deploy as deploy_mod
from mpforge.device import dfuse
from mpforge.firmware.manifest import expected_version

FAKES = Path(__file__).resolve().parents[1] / "fakes"
#: on the tests that build firmware for the board (the DfuSe checks need no compiler)
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="needs arm-none-eabi-gcc")

USB = (0x0483, 0xDF11)
FLASH = [(0x08000000, 0x100000)]


def good_file() -> bytes:
    return dfuse.write([dfuse.Target(0, "ST...", [dfuse.Element(0x08000000, b"\x01" * 64),
                                                   dfuse.Element(0x08020000, b"\x02" * 32)])],
                       *USB)


# --- DfuSe ---------------------------------------------------------------------------

def test_dfuse_round_trip_and_check():
    parsed = dfuse.parse(good_file())
    assert (parsed.vid, parsed.pid) == USB
    assert [(e.address, len(e.data)) for e in parsed.targets[0].elements] == [(0x08000000, 64),
                                                                            (0x08020000, 32)]
    dfuse.check(parsed, usb_id=USB, flash=FLASH)


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "CRC mismatch"),
    (lambda d: d[:40], "no DFU suffix"),
    (lambda d: b"XfuSe" + d[5:], "CRC mismatch"),
    (lambda d: d[:20] + b"\xff" + d[21:], "CRC mismatch"),
    (lambda d: b"", "only 0 bytes"),
])
def test_corrupt_files_are_refused(damage, message):
    with pytest.raises(dfuse.DfuSeError, match=message):
        dfuse.parse(damage(good_file()))


def test_a_consistent_file_with_a_bad_prefix_is_refused():
    data = bytearray(good_file())
    data[0:5] = b"XfuSe"  # then fix the CRC, as a careless tool would
    data[-4:] = (~__import__("zlib").crc32(bytes(data[:-4])) & 0xFFFFFFFF).to_bytes(4, "little")
    with pytest.raises(dfuse.DfuSeError, match="no DfuSe prefix"):
        dfuse.parse(bytes(data))


def test_files_for_another_board_are_refused():
    other_usb = dfuse.parse(dfuse.write([dfuse.Target(0, "", [dfuse.Element(0x08000000, b"x")])],
                                        0x1209, 0x0001))
    with pytest.raises(dfuse.DfuSeError, match="for USB device 1209:0001, not this board's 0483:df11"):
        dfuse.check(other_usb, usb_id=USB, flash=FLASH)
    too_big = dfuse.parse(dfuse.write([dfuse.Target(0, "", [dfuse.Element(0x080F0000, b"x" * 0x20000)])],
                                      *USB))
    with pytest.raises(dfuse.DfuSeError, match="outside this board's flash"):
        dfuse.check(too_big, usb_id=USB, flash=FLASH)


# --- the flow ---------------------------------------------------------------------------

@pytest.fixture
def stand_in(tmp_path):
    """PATH with the recording dfu-util first, and its state folder."""
    bin_dir, state = tmp_path / "bin", tmp_path / "dfu-state"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "dfu-util").symlink_to(FAKES / "dfu-util")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DFU_STATE": str(state),
           "MPFORGE_DFU_WAIT": "4", "MPFORGE_PORT_WAIT": "8"}
    return env, state


def calls(state: Path) -> list[str]:
    return (state / "calls").read_text().splitlines() if (state / "calls").exists() else []


def deploy(project, mirror, *args, env):
    return run_task(project, "deploy", "--port", "stmhal", "--board", "PYBV11", "--mirror",
                   str(mirror.base), *args, env=env, timeout=300)


def build_pyboard(project, mirror, env):
    result = run_task(project, "build", "--port", "stmhal", "--board", "PYBV11", "--mirror",
                     str(mirror.base), env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads((project / "dist" / "stmhal-PYBV11" / "manifest.json").read_text())


def fake_sysfs(root: Path, tty: str, usb_path: str) -> Path:
    """A /sys where serial port ``tty`` (a pty's basename) hangs off USB device ``usb_path``."""
    interface = root / "devices" / "usb1" / usb_path / f"{usb_path}:1.0"
    interface.mkdir(parents=True)
    (root / "class" / "tty" / tty).mkdir(parents=True)
    (root / "class" / "tty" / tty / "device").symlink_to(interface)
    return root


def test_the_board_to_flash_is_identified_from_the_parsed_device(tmp_path, monkeypatch):
    """identify(): a dfu: spec names the DFU device; a serial port (auto: the one board found)
    is placed on the USB bus; a probe is refused. (The grammar: tests/device/test_spec.py.)"""
    from mpforge.device import transport
    from mpforge.device.deploy import identify
    from mpforge.device.runners import DeployError
    from mpforge.device.spec import Auto, DfuSpec, ProbeSpec, SerialPath, SerialUrl

    monkeypatch.setenv("MPFORGE_SYSFS", str(fake_sysfs(tmp_path / "sys", "ttyACM3", "1-4")))
    (tmp_path / "ttyACM3").touch()
    port = str(tmp_path / "ttyACM3")
    assert identify(None, "S1") == deploy_mod.BoardIdentity(dfu_serial="S1")
    assert identify(DfuSpec(serial="A1"), "S1") == deploy_mod.BoardIdentity(dfu_serial="A1")
    assert identify(DfuSpec(path="1-2"), "S1") == deploy_mod.BoardIdentity(dfu_serial="S1", usb_path="1-2")
    assert identify(SerialPath(port), None) == deploy_mod.BoardIdentity(usb_path="1-4", serial_port=port)
    assert identify(SerialUrl("rfc2217://h:1"), None) == deploy_mod.BoardIdentity(serial_port="rfc2217://h:1")
    found = [port]
    monkeypatch.setattr(transport, "find_boards", lambda: list(found))
    assert identify(Auto(), None) == deploy_mod.BoardIdentity(usb_path="1-4", serial_port="auto")
    found.append("/dev/ttyACM9")  # two boards: auto is not one, its USB path not known
    assert identify(Auto(), "S1") == deploy_mod.BoardIdentity(dfu_serial="S1", serial_port="auto")
    with pytest.raises(DeployError, match="a DFU runner writes a board in DFU mode, not the debug probe"):
        identify(ProbeSpec("066DFF"), None)


@needs_arm
def test_dry_run_prints_the_plan_and_changes_nothing(fixture_project, fixture_mirror, stand_in):
    env, state = stand_in
    before = sorted(p.relative_to(fixture_project) for p in fixture_project.rglob("*"))
    result = deploy(fixture_project, fixture_mirror, "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "first: build stmhal-PYBV11 (not built yet: fetch, patch, make)" in result.stdout
    assert "$ dfu-util -a 0 -d 0483:df11 -s :leave -D" in result.stdout
    assert "firmware.dfu" in result.stdout and "dry run: nothing was flashed" in result.stdout
    assert calls(state) == []
    # nothing fetched, patched, built or published: not a file more
    assert sorted(p.relative_to(fixture_project) for p in fixture_project.rglob("*")) == before


@needs_arm
def test_a_dfu_device_of_another_board_is_refused(fixture_project, fixture_mirror, stand_in, tmp_path):
    """deploy --device A while board B sits in DFU mode: B is never flashed, A never touched."""
    env, state = stand_in
    build_pyboard(fixture_project, fixture_mirror, env)
    board_a = FakeBoard(on_bootloader=lambda: (tmp_path / "A-in-bootloader").touch()).start()
    (state / "devices").write_text("1-1 B0B\n")  # board B, in DFU mode on another socket
    try:
        # A's port placed on the USB bus (socket 1-2) ...
        sysfs = fake_sysfs(tmp_path / "sys", Path(board_a.path).name, "1-2")
        placed = deploy(fixture_project, fixture_mirror, "--yes", "--device", board_a.path,
                        env={**env, "MPFORGE_SYSFS": str(sysfs)})
        # ... or not placeable at all (a pty, a network port)
        unplaced = deploy(fixture_project, fixture_mirror, "--yes", "--device", board_a.path, env=env)
    finally:
        board_a.close()
    assert placed.returncode == 1
    assert f"a DFU device is attached that is not the board on {board_a.path} (USB path 1-2)" \
        in placed.stderr and 'serial="B0B"' in placed.stderr
    assert unplaced.returncode == 1
    assert f"cannot tell whether the attached DFU device is the board on {board_a.path}" in unplaced.stderr
    assert "--dfu-serial" in unplaced.stderr
    assert not any("-D" in c for c in calls(state)) and not (state / "flashed").exists()
    assert not (tmp_path / "A-in-bootloader").exists()


@needs_arm
def test_dfu_serial_flashes_that_board_only(fixture_project, fixture_mirror, stand_in):
    env, state = stand_in
    build_pyboard(fixture_project, fixture_mirror, env)
    (state / "devices").write_text("2")  # 1-1 serial 30, 1-2 serial 31
    result = deploy(fixture_project, fixture_mirror, "--yes", "--dfu-serial", "31", env=env)
    assert result.returncode == 0, result.stderr
    assert calls(state)[-1].startswith("-a 0 -d 0483:df11 -p 1-2 -S 31 -s :leave -D ")
    assert (state / "flashed-path").read_text() == "1-2"
    (state / "devices").write_text("2")
    missing = deploy(fixture_project, fixture_mirror, "--yes", "--dfu-serial", "99", env=env)
    assert missing.returncode == 1 and "no DFU device 0483:df11 is the DFU device with serial 99" \
        in missing.stderr


@needs_arm
def test_the_board_on_a_placed_port_is_flashed_at_its_own_socket(fixture_project, fixture_mirror,
                                                                stand_in, tmp_path):
    env, state = stand_in
    build_pyboard(fixture_project, fixture_mirror, env)
    board = FakeBoard(on_bootloader=lambda: (state / "devices").write_text("1-2 A1\n")).start()
    try:
        sysfs = fake_sysfs(tmp_path / "sys", Path(board.path).name, "1-2")
        result = deploy(fixture_project, fixture_mirror, "--yes", "--device", "dfu:path=1-2",
                        env={**env, "MPFORGE_SYSFS": str(sysfs)})
        assert result.returncode == 1 and "no DFU device 0483:df11 is the DFU device with USB path 1-2" \
            in result.stderr  # not in DFU mode yet, and no serial port given to send it there
        result = deploy(fixture_project, fixture_mirror, "--yes", "--device", board.path,
                        env={**env, "MPFORGE_SYSFS": str(sysfs), "MPFORGE_PORT_WAIT": "1"})
    finally:
        board.close()
    assert "pyb.bootloader() on" in result.stdout
    assert any(c.startswith("-a 0 -d 0483:df11 -p 1-2 -s :leave -D") for c in calls(state))
    assert (state / "flashed-path").read_text() == "1-2"


@pytest.mark.parametrize("content", [b"root:x:0:0:root:/root:/bin/bash\n", b"", b"\x7fELF" + b"\0" * 60])
def test_a_file_that_is_no_firmware_is_refused(fixture_project, fixture_mirror, stand_in, tmp_path,
                                               content):
    env, state = stand_in
    (state / "devices").write_text("1")
    fake = tmp_path / "passwd"
    fake.write_bytes(content)
    result = deploy(fixture_project, fixture_mirror, "--yes", "--file", str(fake), env=env)
    assert result.returncode == 1
    assert "passwd is not a valid DfuSe file" in result.stderr
    assert calls(state) == []


@needs_arm
def test_a_board_in_dfu_mode_is_flashed(fixture_project, fixture_mirror, stand_in):
    env, state = stand_in
    (state / "devices").write_text("1")
    result = deploy(fixture_project, fixture_mirror, "--yes", env=env)
    assert result.returncode == 0, result.stderr
    assert calls(state)[0] == "-l"
    # pinned to the one device listed (-p): a board plugged in meanwhile is not written
    assert calls(state)[1].startswith("-a 0 -d 0483:df11 -p 1-1 -s :leave -D ")
    assert (state / "flashed").read_text().endswith("dist/stmhal-PYBV11/firmware.dfu")
    # the tool's progress (redrawn with \r) reaches the user: a line per quarter in CI
    assert "firmware.dfu: 50%" in result.stdout and "firmware.dfu: 100%" in result.stdout


@needs_arm
def test_two_dfu_devices_are_refused(fixture_project, fixture_mirror, stand_in):
    env, state = stand_in
    (state / "devices").write_text("2")
    result = deploy(fixture_project, fixture_mirror, "--yes", env=env)
    assert result.returncode == 1
    assert "2 DFU devices 0483:df11 attached" in result.stderr and 'path="1-2"' in result.stderr
    assert not (state / "flashed").exists()


@needs_arm
def test_corrupt_or_changed_artifacts_are_refused_before_any_write(fixture_project, fixture_mirror,
                                                                   stand_in, tmp_path):
    env, state = stand_in
    (state / "devices").write_text("1")
    bad = tmp_path / "bad.dfu"
    bad.write_bytes(good_file()[:-1] + b"\x00")
    result = deploy(fixture_project, fixture_mirror, "--yes", "--file", str(bad), env=env)
    assert result.returncode == 1 and "bad.dfu is not a valid DfuSe file: CRC mismatch" in result.stderr
    # a dist artifact that no longer matches its manifest
    build_pyboard(fixture_project, fixture_mirror, env)
    artifact = fixture_project / "dist" / "stmhal-PYBV11" / "firmware.dfu"
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    result = deploy(fixture_project, fixture_mirror, "--yes", env=env)
    assert result.returncode == 1 and "differs from its manifest" in result.stderr
    assert calls(state) == [] and not (state / "flashed").exists()


@needs_arm
def test_one_command_no_jumper_bootloader_flash_and_banner(fixture_project, fixture_mirror,
                                                           stand_in, tmp_path):
    env, state = stand_in
    manifest = build_pyboard(fixture_project, fixture_mirror, env)
    describe = expected_version(manifest)  # the firmware's version: pin + series id
    assert "+s." in describe
    link = tmp_path / "ttyPYB"
    boards = []

    def in_bootloader():
        link.unlink()  # the serial port goes away with the firmware
        (state / "devices").write_text("1")
        threading.Thread(target=come_back, daemon=True).start()

    def come_back():
        while not (state / "flashed").exists():
            threading.Event().wait(0.05)
        new = FakeBoard(banner=f"MicroPython {describe} on 2016-07-20; fake pyboard").start()
        boards.append(new)
        link.symlink_to(new.path)

    old = FakeBoard(on_bootloader=in_bootloader).start()
    boards.append(old)
    link.symlink_to(old.path)
    try:
        result = deploy(fixture_project, fixture_mirror, "--yes", "--device", str(link), env=env)
    finally:
        for board in boards:
            board.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pyb.bootloader() on" in result.stdout
    assert f"the board says: MicroPython {describe}" in result.stdout
    assert any(c.startswith("-a 0 -d 0483:df11") for c in calls(state))


@needs_arm
def test_no_dfu_device_after_bootloader_times_out_clearly(fixture_project, fixture_mirror,
                                                          stand_in, tmp_path):
    env, state = stand_in
    board = FakeBoard(on_bootloader=lambda: None).start()  # it never shows up in DFU mode
    try:
        result = deploy(fixture_project, fixture_mirror, "--yes", "--device", board.path, env=env)
    finally:
        board.close()
    assert result.returncode == 1
    assert "no DFU device 0483:df11 appeared within 4 s" in result.stderr
    assert "connect 3V3 to DFU" in result.stderr
    assert not (state / "flashed").exists()
