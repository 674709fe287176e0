"""Flash runners: their commands (a golden table), the checks of the files they write, the
registry that names them, and what the deploy flow does with what they declare.

Nothing here needs a flashing tool on this host: the DFU tests run the recording
stand-in (tests/fakes/dfu-util), and the flow's checks run with every tool counted
as installed (which tool is present is not what they test).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import REPO, project_for, run_task
from mpforge.core.config import Catalog
from mpforge.core.errors import ConfigError
from mpforge.core.project import Project
from mpforge.device import deploy
from mpforge.device.runners import RUNNERS, DeployError, FlashJob, Runner, UnknownRunner, register, runner_named
from mpforge.device.runners.esp import check_esp_image
from mpforge.device.runners.teensy import check_ihex
from mpforge.device.spec import parse_device

FAKES = Path(__file__).resolve().parents[1] / "fakes"

# --- runners ----------------------------------------------------------------------------

EXPECTED_ARGV = {
    ("dfu-util", False): [["dfu-util", "-a", "0", "-d", "0483:df11", "-s", ":leave", "-D", "fw.dfu"]],
    ("esptool", False): [["esptool.py", "--port", "/dev/ttyUSB0", "--baud", "460800", "write_flash",
                          "--flash_size=detect", "0", "fw.dfu"]],
    ("esptool", True): [["esptool.py", "--port", "/dev/ttyUSB0", "--baud", "460800", "erase_flash"],
                        ["esptool.py", "--port", "/dev/ttyUSB0", "--baud", "460800", "write_flash",
                         "--flash_size=detect", "0", "fw.dfu"]],
    ("teensy", False): [["teensy_loader_cli", "--mcu=mk20dx256", "-w", "-v", "fw.dfu"]],
}


def test_dfu_util_is_pinned_to_the_one_board_when_it_is_known():
    job = FlashJob(Path("fw.dfu"), "0483:df11", dfu_path="1-2", dfu_serial="3A")
    assert RUNNERS["dfu-util"]().commands(job) == [
        ["dfu-util", "-a", "0", "-d", "0483:df11", "-p", "1-2", "-S", "3A", "-s", ":leave", "-D", "fw.dfu"]]


@pytest.mark.parametrize("name, erase", list(EXPECTED_ARGV))
def test_runner_commands_match_the_golden_table(name, erase):
    job = FlashJob(Path("fw.dfu"), "0483:df11", "/dev/ttyUSB0", 460800, erase, "mk20dx256", "0")
    assert RUNNERS[name]().commands(job) == EXPECTED_ARGV[(name, erase)]


def test_runner_capabilities_are_enforced():
    with pytest.raises(DeployError, match="cannot erase"):
        RUNNERS["dfu-util"]().check(FlashJob(Path("x"), erase=True))
    with pytest.raises(DeployError, match="flashes over a serial port"):
        RUNNERS["esptool"]().check(FlashJob(Path("x")))
    with pytest.raises(DeployError, match="ftp to 192.168.1.1"):
        RUNNERS["cc3200"]().commands(FlashJob(Path("mcuimg.bin")))


def test_artifact_formats_of_the_other_runners_are_checked():
    check_ihex(b":0400000001020304F2\n:00000001FF\n", "ok.hex")
    with pytest.raises(DeployError, match="not an Intel HEX file: line 1: wrong length or checksum"):
        check_ihex(b":0400000001020304F3\n:00000001FF\n", "bad.hex")
    with pytest.raises(DeployError, match="no end-of-file record"):
        check_ihex(b":0400000001020304F2\n", "cut.hex")
    image = (bytes([0xE9, 1, 0, 0]) + b"\0" * 4 + (0x40100000).to_bytes(4, "little")
             + (4).to_bytes(4, "little") + b"abcd")
    check_esp_image(image, "fw.bin")
    with pytest.raises(DeployError, match="a segment runs past the end"):
        check_esp_image(image[:-1], "fw.bin")
    with pytest.raises(DeployError, match="magic byte 0xE9"):
        check_esp_image(b"root:x:0:0", "passwd")


def test_the_registry_holds_every_runner_by_its_name():
    assert sorted(RUNNERS) == ["cc3200", "dfu-util", "esptool", "openocd", "pydfu", "pyocd", "teensy"]
    for name, runner in RUNNERS.items():
        assert runner.name == name and issubclass(runner, Runner)
        assert isinstance(runner_named(name), runner)


def test_a_second_runner_with_a_taken_name_is_refused():
    class Another(Runner):
        name, program, install = "dfu-util", "true", ""

    with pytest.raises(ValueError, match="two runners are named 'dfu-util'"):
        register(Another)
    assert RUNNERS["dfu-util"] is not Another


def test_an_unknown_name_fails_naming_the_nearest_runner_and_all_of_them():
    with pytest.raises(UnknownRunner) as typo:
        runner_named("dfu-utl")
    assert isinstance(typo.value, ConfigError)
    assert typo.value.message == "unknown runner 'dfu-utl'"
    assert typo.value.hint == ("did you mean 'dfu-util'? runners: cc3200, dfu-util, esptool, openocd, "
                               "pydfu, pyocd, teensy")
    with pytest.raises(UnknownRunner) as far_off:
        runner_named("jlink")
    assert far_off.value.hint == "runners: cc3200, dfu-util, esptool, openocd, pydfu, pyocd, teensy"


def _flash_names(port) -> list[str]:
    return [name for name in (port.flash.runner, *port.flash.fallback) if name]


@pytest.mark.parametrize("port", [p for p in Catalog.load(REPO / "ports", REPO / "toolchains").ports.values()
                                  if _flash_names(p)], ids=lambda p: p.name)
def test_every_port_names_known_runners_that_write_its_artifact(port):
    for name in _flash_names(port):
        runner = runner_named(name)
        assert runner.writes_file_named(port.flash.artifact), (name, port.flash.artifact)


@pytest.fixture
def project(fixture_project: Path) -> Project:
    return project_for(fixture_project)


def _set_flash(root: Path, port: str, old: str, new: str) -> None:
    toml = root / "ports" / f"{port}.toml"
    text = toml.read_text()
    assert old in text
    toml.write_text(text.replace(old, new))


def test_an_unknown_runner_in_a_ports_file_names_the_file_and_key(fixture_project, project):
    _set_flash(fixture_project, "stmhal", 'fallback = ["pydfu"]', 'fallback = ["pydfo"]')
    target = project.target("stmhal", "PYBV11")
    with pytest.raises(UnknownRunner) as error:
        deploy.choose_runner(target, "dfu-util")  # refused even when --runner names another
    assert error.value.message == "ports/stmhal.toml: unknown runner 'pydfo' in [flash] fallback"
    assert error.value.hint.startswith("did you mean 'pydfu'?")
    _set_flash(fixture_project, "stmhal", 'runner = "dfu-util"', 'runner = "dfuutil"')
    result = run_task(fixture_project, "deploy", "--dry-run", "--port", "stmhal", "--board", "PYBV11")
    assert result.returncode == 1
    assert "ports/stmhal.toml: unknown runner 'dfuutil' in [flash] runner (did you mean 'dfu-util'?" \
        in result.stderr


def test_an_unknown_runner_option_is_refused(project):
    with pytest.raises(UnknownRunner, match="unknown runner 'teensy3'"):
        deploy.choose_runner(project.target("teensy"), "teensy3")


# --- the flow checks what each runner declares ------------------------------------------

#: a port (and board) each runner flashes
PORT_OF = {"dfu-util": ("stmhal", "PYBV11"), "pydfu": ("stmhal", "PYBV11"), "esptool": ("esp8266", None),
           "teensy": ("teensy", None), "cc3200": ("cc3200", None),
           "openocd": ("stmhal", "PYBV11"), "pyocd": ("teensy", None)}


@pytest.fixture
def every_tool_installed(monkeypatch):
    for runner in RUNNERS.values():
        monkeypatch.setattr(runner, "available", lambda self: True)


def _plan(project: Project, runner: str, *, port: tuple[str, str | None] | None = None,
          device: str | None = None, erase: bool = False) -> deploy.DeployPlan:
    port_name, board = port or PORT_OF[runner]
    return deploy.plan_deploy(project, project.target(port_name, board), file=None, runner_name=runner,
                              device=parse_device(device) if device else None, erase=erase, mirror=None,
                              dry_run=True)


@pytest.mark.usefixtures("every_tool_installed")
@pytest.mark.parametrize("name", sorted(RUNNERS))
def test_erase_is_planned_only_for_a_runner_that_can_erase(project, name):
    device = "/dev/ttyUSB0" if RUNNERS[name].needs_serial else None
    if RUNNERS[name].can_erase:
        commands = _plan(project, name, device=device, erase=True).commands
        plain = _plan(project, name, device=device).commands
        # one erase command first (esptool's erase_flash, pyocd's erase --chip), then the same writes
        erase_words = {"erase_flash", "erase"}
        assert commands[1:] == plain and erase_words & set(commands[0])
        assert not any(erase_words & set(argv) for argv in plain)
    else:
        with pytest.raises(DeployError, match=f"runner {name} cannot erase"):
            _plan(project, name, device=device, erase=True)


@pytest.mark.usefixtures("every_tool_installed")
def test_a_runner_that_needs_a_serial_port_is_refused_without_one(project):
    serial_runners = [name for name, runner in RUNNERS.items() if runner.needs_serial]
    assert serial_runners == ["esptool"]
    with pytest.raises(DeployError, match="runner esptool flashes over a serial port"):
        _plan(project, "esptool")
    assert _plan(project, "esptool", device="/dev/ttyUSB1").commands[0][:3] == ["esptool.py", "--port",
                                                                               "/dev/ttyUSB1"]


@pytest.mark.usefixtures("every_tool_installed")
def test_a_runner_is_refused_for_a_port_whose_artifact_it_does_not_write(project):
    with pytest.raises(DeployError) as wrong:
        _plan(project, "esptool", port=("stmhal", "PYBV11"), device="/dev/ttyUSB0")
    assert wrong.value.message == ("runner esptool cannot write firmware.dfu (stmhal-PYBV11): "
                                   "it writes ESP8266 flash image (.bin)")
    with pytest.raises(DeployError, match=r"it writes DfuSe file \(\.dfu\)"):
        _plan(project, "dfu-util", port=("teensy", None))
    assert _plan(project, "pydfu").runner == "pydfu"  # a runner of the kind the port builds


# --- flashing: the DFU device, and progress ----------------------------------------------

@pytest.fixture
def dfu_state(tmp_path, monkeypatch) -> Path:
    """The recording dfu-util first on PATH; returns its state folder (see tests/fakes/dfu-util)."""
    bin_dir, state = tmp_path / "bin", tmp_path / "dfu-state"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "dfu-util").symlink_to(FAKES / "dfu-util")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DFU_STATE", str(state))
    return state


def _dfu_plan(project: Project, runner: str, dfu_serial: str = "") -> deploy.DeployPlan:
    job = FlashJob(Path("fw.dfu"), "0483:df11", tree=project.tree, dfu_serial=dfu_serial)
    return deploy.DeployPlan("stmhal-PYBV11", Path("fw.dfu"), runner, [],
                             identity=deploy.BoardIdentity(dfu_serial=dfu_serial), job=job)


@pytest.mark.parametrize("line, percent", [
    ("Download\t[===========              ]  44%", 44),
    ("Writing at 0x00008000... (57 %)", 57),
    ("Download done.", None),
    ("File downloaded successfully", None),
    ("Erase   \t[=========================] 100%", 100),
])
def test_the_percentage_of_a_tools_progress_line(line, percent):
    assert deploy.percent_in(line) == percent


def test_flashing_reports_each_percentage_the_tool_prints(project, dfu_state):
    (dfu_state / "devices").write_text("1")
    seen: list[tuple[int, str]] = []
    deploy.flash_board(project, project.target("stmhal", "PYBV11"), _dfu_plan(project, "dfu-util"), None,
                       on_progress=lambda percent, line: seen.append((percent, line)))
    assert [percent for percent, _ in seen] == [0, 25, 50, 75, 100]  # what the stand-in prints
    assert all(line.startswith("Download\t[") and line.endswith(f"{p}%") for p, line in seen)
    assert (dfu_state / "flashed").read_text() == "fw.dfu"


def test_a_runner_that_cannot_pick_the_dfu_device_is_refused_when_several_are_attached(project, dfu_state):
    target = project.target("stmhal", "PYBV11")
    (dfu_state / "devices").write_text("2")  # 1-1 serial 30, 1-2 serial 31
    assert not RUNNERS["pydfu"].can_pick_dfu_device
    with pytest.raises(DeployError, match="pydfu writes the first DFU device it finds, and several are attached"):
        deploy.flash_board(project, target, _dfu_plan(project, "pydfu", dfu_serial="31"), None)
    assert not (dfu_state / "flashed").exists()
    assert RUNNERS["dfu-util"].can_pick_dfu_device
    deploy.flash_board(project, target, _dfu_plan(project, "dfu-util", dfu_serial="31"), None)
    assert (dfu_state / "flashed-path").read_text() == "1-2"
