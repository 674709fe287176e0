"""The SWD runners (openocd, pyocd): their commands, the checks of what they write (an
Intel HEX file inside the board's flash, through the one probe named), and the deploy
flow with them, against a recording stand-in (tests/fakes/swd_tool.py); plus the real
OpenOCD parsing every probe config the ports' data names, when it is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, project_for, run_task
from mpforge.core.config import Catalog, DebugDef, OpenOcdDef, PyOcdDef
from mpforge.core.errors import DeviceSpecError
from mpforge.core.project import Project
from mpforge.device.runners import RUNNERS, DeployError, FlashJob
from mpforge.device.runners.dfu import flash_regions
from mpforge.device.runners.swd import check_hex_in_flash, hex_ranges, probe_serial
from mpforge.device.spec import ProbeSpec, parse_device

FAKES = Path(__file__).resolve().parents[1] / "fakes"
CATALOG = Catalog.load(REPO / "ports", REPO / "toolchains")
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")

DEBUG = DebugDef("gdb-multiarch", "firmware.elf", "openocd",
                 OpenOcdDef("interface/stlink.cfg", "target/stm32f4x.cfg", ("reset_config srst_only",)),
                 PyOcdDef("stm32f405rgtx", ("-O", "connect_mode=under-reset")))


def _job(**kwargs) -> FlashJob:
    return FlashJob(Path("fw.hex"), debug=DEBUG, **kwargs)


# --- commands ------------------------------------------------------------------------------

EXPECTED_ARGV = {
    ("openocd", "", False): [["openocd", "-f", "interface/stlink.cfg", "-f", "target/stm32f4x.cfg",
                              "-c", "reset_config srst_only", "-c", "program fw.hex verify reset exit"]],
    ("openocd", "066DFF", False): [["openocd", "-f", "interface/stlink.cfg", "-c", "adapter serial 066DFF",
                                    "-f", "target/stm32f4x.cfg", "-c", "reset_config srst_only",
                                    "-c", "program fw.hex verify reset exit"]],
    ("pyocd", "", False): [["pyocd", "load", "--no-wait", "-t", "stm32f405rgtx", "-O",
                            "connect_mode=under-reset", "--format", "hex", "fw.hex"]],
    ("pyocd", "0240000034", True): [
        ["pyocd", "erase", "--chip", "--no-wait", "-t", "stm32f405rgtx", "-u", "0240000034", "-O",
         "connect_mode=under-reset"],
        ["pyocd", "load", "--no-wait", "-t", "stm32f405rgtx", "-u", "0240000034", "-O",
         "connect_mode=under-reset", "--format", "hex", "fw.hex"]],
}


@pytest.mark.parametrize("name, serial, erase", list(EXPECTED_ARGV))
def test_swd_commands_match_the_golden_table(name, serial, erase):
    assert RUNNERS[name]().commands(_job(probe_serial=serial, erase=erase)) == EXPECTED_ARGV[(name, serial, erase)]


def test_openocd_cannot_erase_and_refuses_a_path_tcl_would_split():
    with pytest.raises(DeployError, match="runner openocd cannot erase"):
        RUNNERS["openocd"]().check(_job(erase=True))
    with pytest.raises(DeployError, match="openocd cannot take the path"):
        RUNNERS["openocd"]().commands(FlashJob(Path("my fw.hex"), debug=DEBUG))
    with pytest.raises(DeployError, match=r"needs the port's \[debug\] probe configs"):
        RUNNERS["pyocd"]().commands(FlashJob(Path("fw.hex")))


@pytest.mark.parametrize("name", ["openocd", "pyocd"])
def test_swd_runners_write_the_hex_file_of_stmhal_and_teensy(name):
    runner = RUNNERS[name]()
    assert runner.artifact_name(CATALOG.port("stmhal")) == "firmware.hex"  # not the port's DFU file
    assert runner.artifact_name(CATALOG.port("teensy")) == "micropython.hex"
    assert RUNNERS["dfu-util"]().artifact_name(CATALOG.port("stmhal")) == "firmware.dfu"  # unchanged
    for port in ("stmhal", "teensy"):
        debug = CATALOG.port(port).debug
        assert getattr(debug, name) is not None, f"{port} declares no [debug.{name}]"


# --- what they write -----------------------------------------------------------------------

def _record(address: int, kind: int, payload: bytes) -> str:
    body = bytes([len(payload), address >> 8 & 0xFF, address & 0xFF, kind]) + payload
    return ":" + (body + bytes([-sum(body) & 0xFF])).hex().upper()


def _hex(*chunks: tuple[int, bytes]) -> bytes:
    """An Intel HEX file writing each ``(address, data)``, 16 bytes a record, each record
    after an extended linear address record (so a chunk may cross a 64 KiB boundary)."""
    lines = []
    for base, data in chunks:
        for i in range(0, len(data), 16):
            address = base + i
            lines += [_record(0, 4, (address >> 16).to_bytes(2, "big")),
                      _record(address & 0xFFFF, 0, data[i:i + 16])]
    return ("\n".join([*lines, ":00000001FF"]) + "\n").encode()


def test_hex_ranges_follow_extended_addresses_and_merge_adjacent_records():
    data = _hex((0x08000000, b"\x01" * 40), (0x08020000, b"\x02" * 8), (0x0800FFF0, b"\x03" * 32))
    assert hex_ranges(data) == [(0x08000000, 0x08000028), (0x08020000, 0x08020008),
                                (0x0800FFF0, 0x08010010)]
    # a segment address record (type 02) moves the base by 16 * its value
    segment = ("\n".join([_record(0, 2, (0x1000).to_bytes(2, "big")), _record(0x10, 0, b"\x01" * 4),
                          ":00000001FF"]) + "\n").encode()
    assert hex_ranges(segment) == [(0x10010, 0x10014)]


@pytest.fixture
def fetched(fixture_project: Path, fixture_mirror) -> Project:
    """The fixture checkout with its tree fetched (the boards' linker scripts)."""
    result = run_task(fixture_project, "fetch", "--port", "stmhal", "--mirror", str(fixture_mirror.base))
    assert result.returncode == 0, result.stderr
    return project_for(fixture_project)


@pytest.mark.parametrize("name", ["openocd", "pyocd"])
def test_a_hex_file_outside_the_boards_flash_or_not_hex_is_refused(fetched, tmp_path, name):
    target = fetched.target("stmhal", "PYBV11")  # LD_FILE: FLASH 0x08000000, 1 MiB
    runner = RUNNERS[name]()
    good = tmp_path / "good.hex"
    good.write_bytes(_hex((0x08000000, b"\x01" * 64), (0x080FFFF0, b"\x01" * 16)))
    runner.validate(target, good)
    past_the_end = tmp_path / "past.hex"
    past_the_end.write_bytes(_hex((0x080FFFF0, b"\x01" * 32)))
    with pytest.raises(DeployError, match=r"past.hex writes 0x080ffff0..0x08100010, outside the flash of "
                                          r"stmhal-PYBV11"):
        runner.validate(target, past_the_end)
    not_hex = tmp_path / "passwd"
    not_hex.write_text("root:x:0:0\n")
    with pytest.raises(DeployError, match="passwd is not an Intel HEX file"):
        runner.validate(target, not_hex)


def test_a_board_built_like_another_has_that_boards_flash(fetched, tmp_path):
    """A board whose make file includes another's (as PYBV10_QEMU includes PYBV10's) takes
    its linker script from there."""
    boards = fetched.tree / "stmhal" / "boards"
    (boards / "LIKE11").mkdir()
    (boards / "LIKE11" / "mpconfigboard.h").write_text("")
    (boards / "LIKE11" / "mpconfigboard.mk").write_text("include boards/PYBV11/mpconfigboard.mk\n")
    like = fetched.target("stmhal", "LIKE11")
    assert flash_regions(like) == flash_regions(fetched.target("stmhal", "PYBV11")) == [(0x08000000, 0x100000)]
    past_the_end = tmp_path / "past.hex"
    past_the_end.write_bytes(_hex((0x080FFFF0, b"\x01" * 32)))
    with pytest.raises(DeployError, match="outside the flash of stmhal-LIKE11"):
        check_hex_in_flash(like, past_the_end)


def test_a_port_without_a_known_flash_range_is_refused(fetched, tmp_path):
    """The range comes from the linker script: without one nothing can be checked, so nothing
    is written."""
    target = fetched.target("stmhal", "PYBV11")
    port = target.port
    blind = type(target)(port.__class__(**{**port.__dict__, "flash": type(port.flash)()}), target.board,
                         target.toolchain, fetched)
    good = tmp_path / "good.hex"
    good.write_bytes(_hex((0x08000000, b"\x01" * 16)))
    with pytest.raises(DeployError, match="the flash of stmhal-PYBV11 is not known"):
        check_hex_in_flash(blind, good)


# --- the probe: named, or the only one ------------------------------------------------------

def _sysfs(root: Path, probes: list[tuple[str, str, str]]) -> Path:
    """A /sys whose USB bus holds ``probes`` (vendor, product, serial) and a keyboard."""
    devices = root / "bus" / "usb" / "devices"
    for i, (vendor, product, serial) in enumerate([*probes, ("046d", "c31c", "")]):
        device = devices / f"1-{i + 1}"
        device.mkdir(parents=True)
        (device / "idVendor").write_text(vendor + "\n")
        (device / "idProduct").write_text(product + "\n")
        if serial:
            (device / "serial").write_text(serial + "\n")
    return root


def test_the_probe_is_named_by_its_serial_and_nothing_else():
    # the probe: grammar itself is tests/device/test_spec.py's
    assert probe_serial(None) == "" and probe_serial(ProbeSpec("066DFF")) == "066DFF"
    for wrong in ("/dev/ttyACM0", "auto", "dfu:serial=3A", "labgrid:pyb-1", "execpty:qemu"):
        with pytest.raises(DeployError, match=f"an SWD runner writes through a debug probe, not --device {wrong}"):
            probe_serial(parse_device(wrong))
    with pytest.raises(DeviceSpecError, match="names no probe"):
        probe_serial(parse_device("probe:"))


@pytest.mark.parametrize("name", ["openocd", "pyocd"])
def test_several_probes_and_none_named_is_refused(fixture_project, tmp_path, monkeypatch, name):
    project = project_for(fixture_project)
    target = project.target("stmhal", "PYBV11")
    monkeypatch.setenv("MPFORGE_SYSFS", str(_sysfs(tmp_path / "sys", [("0483", "374b", "AAA1"),
                                                                      ("0d28", "0204", "BBB2")])))
    runner = RUNNERS[name]()
    with pytest.raises(DeployError) as several:
        runner.prepare(target, FlashJob(Path("fw.hex")), None)
    assert several.value.message == "2 debug probes attached (0483:374b serial AAA1, 0d28:0204 serial BBB2)"
    assert "--device probe:SERIAL" in several.value.hint
    job = runner.prepare(target, FlashJob(Path("fw.hex")), ProbeSpec("BBB2"))
    assert job.probe_serial == "BBB2" and job.debug == target.port.debug
    assert any("BBB2" in word for word in runner.commands(job)[-1])
    monkeypatch.setenv("MPFORGE_SYSFS", str(_sysfs(tmp_path / "one", [("0483", "374b", "AAA1")])))
    assert runner.prepare(target, FlashJob(Path("fw.hex")), None).probe_serial == ""  # the only one


def test_a_port_without_the_runners_probe_is_refused(fixture_project):
    project = project_for(fixture_project)
    with pytest.raises(DeployError, match=r"port esp8266 declares no openocd probe"):
        RUNNERS["openocd"]().prepare(project.target("esp8266"), FlashJob(Path("fw.hex")), None)


# --- the deploy flow, with the recording stand-in ---------------------------------------------

@pytest.fixture
def swd_state(tmp_path) -> tuple[dict[str, str], Path]:
    """openocd and pyocd first on PATH as the recording stand-in; (env, its state folder)."""
    bin_dir, state = tmp_path / "bin", tmp_path / "swd-state"
    bin_dir.mkdir()
    state.mkdir()
    for name in ("openocd", "pyocd"):
        (bin_dir / name).symlink_to(FAKES / "swd_tool.py")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SWD_STATE": str(state),
           "MPFORGE_SYSFS": str(tmp_path / "no-sys")}
    return env, state


def _calls(state: Path) -> list[list[str]]:
    log = state / "calls"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_dry_run_prints_the_swd_command_and_runs_nothing(fixture_project, swd_state):
    env, state = swd_state
    result = run_task(fixture_project, "deploy", "--dry-run", "--port", "teensy", "--runner", "openocd",
                     "--device", "probe:066DFF", env=env)
    assert result.returncode == 0, result.stderr
    assert "runner: openocd" in result.stdout
    assert ("$ openocd -f interface/cmsis-dap.cfg -c 'adapter serial 066DFF' -f target/kx.cfg "
            "-c 'program ") in result.stdout
    assert "micropython.hex verify reset exit'" in result.stdout
    assert _calls(state) == []


@needs_arm
@pytest.mark.parametrize("name", ["openocd", "pyocd"])
def test_deploy_writes_the_boards_hex_file_through_the_named_probe(fixture_project, fixture_mirror,
                                                                   swd_state, name):
    env, state = swd_state
    result = run_task(fixture_project, "deploy", "--yes", "--port", "stmhal", "--board", "PYBV11",
                     "--runner", name, "--device", "probe:066DFF", "--mirror", str(fixture_mirror.base),
                     env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    hex_file = str(fixture_project / "dist" / "stmhal-PYBV11" / "firmware.hex")
    if name == "openocd":
        assert _calls(state) == [["openocd", "-f", "interface/stlink.cfg", "-c", "adapter serial 066DFF",
                                  "-f", "target/stm32f4x.cfg", "-c", f"program {hex_file} verify reset exit"]]
    else:
        assert _calls(state) == [["pyocd", "load", "--no-wait", "-t", "stm32f405rgtx", "-u", "066DFF",
                                  "--format", "hex", hex_file]]
    assert "flashed stmhal-PYBV11" in result.stdout
    # the tool's failure is the command's: one line, exit 1
    (state / "fail").write_text("Error: open failed")
    failed = run_task(fixture_project, "deploy", "--yes", "--port", "stmhal", "--board", "PYBV11",
                     "--runner", name, "--mirror", str(fixture_mirror.base), env=env, timeout=300)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr


# --- the real OpenOCD ---------------------------------------------------------------------

OPENOCD_PORTS = [p for p in CATALOG.ports.values() if p.debug.openocd is not None]


@pytest.mark.skipif(shutil.which("openocd") is None, reason="openocd is not installed (apt-get install openocd)")
@pytest.mark.parametrize("port", OPENOCD_PORTS, ids=lambda p: p.name)
def test_the_real_openocd_parses_the_probe_configs_of_the_data(port):
    """``-c shutdown`` right after the configs: they parse, no probe needed (with ``init`` it
    would look for the probe and fail here)."""
    spec = port.debug.openocd
    assert spec is not None
    from mpforge.device.runners.openocd import openocd_config
    result = subprocess.run(["openocd", *openocd_config(spec, "066DFF"), "-c", "shutdown"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "shutdown command invoked" in result.stderr
