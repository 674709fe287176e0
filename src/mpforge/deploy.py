"""``invoke deploy``: put a built firmware on a board, safely, in one command.

The flow (every step a clear, one-line error when it cannot go on):

1. the artifact: ``dist/<target>/`` (built first if missing or stale), or
   ``--file``; a dist artifact must match the sha256 in its manifest;
2. checks before any write: a DfuSe file must parse, carry the board's USB
   id, and put every element inside the board's flash (read from the board's
   linker script in the tree);
3. the runner, from ``ports/<port>.toml`` ``[flash]`` (``runner``, then
   ``fallback``), or ``--runner``: small classes behind :class:`Runner`, each
   declaring what it needs (a DFU device, a serial port) and what it can do
   (erase);
4. for a DFU runner with no DFU device present: if the board runs
   MicroPython on a serial port (``--device``, or ``auto``), it is sent to its
   bootloader over the raw REPL (``pyb.bootloader()``) and the DFU device is
   awaited; two DFU devices are refused (never flash the wrong board);
5. flash (``--dry-run`` prints the plan and the commands, and touches nothing);
6. with a serial device: wait for the board to come back and check that its
   banner names the tree version of what was flashed.

To add a runner: subclass :class:`Runner`, set ``name``, ``program``,
``install`` and the capability flags, implement :meth:`Runner.commands` (pure:
argv lists, tested against a golden table), and add it to :data:`RUNNERS`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from . import dfuse
from .build import build, sha256_file
from .errors import MissingTool, MpforgeError
from .executor import quote
from .project import Project, Target
from .transport import RawRepl, TransportError, open_device

DFU_WAIT = float(os.environ.get("MPFORGE_DFU_WAIT", "15"))
PORT_WAIT = float(os.environ.get("MPFORGE_PORT_WAIT", "20"))


class DeployError(MpforgeError):
    """The firmware was not (or could not be) put on the board."""


@dataclass
class FlashJob:
    """Everything a runner needs to write one artifact."""

    artifact: Path
    usb_id: str = ""  # "0483:df11"
    serial: str = ""  # a serial port, for runners that flash over one
    baud: int = 115200
    erase: bool = False
    mcu: str = ""
    offset: str = "0"
    tree: Path | None = None


class Runner:
    """One flashing tool. Subclasses declare what they need and build argv lists."""

    name: ClassVar[str]
    program: ClassVar[str]
    install: ClassVar[str]
    needs_dfu_device: ClassVar[bool] = False
    needs_serial: ClassVar[bool] = False
    can_erase: ClassVar[bool] = False

    def available(self) -> bool:
        return shutil.which(self.program) is not None

    def commands(self, job: FlashJob) -> list[list[str]]:
        raise NotImplementedError

    def check(self, job: FlashJob) -> None:
        if job.erase and not self.can_erase:
            raise DeployError(f"runner {self.name} cannot erase", "drop --erase")
        if self.needs_serial and not job.serial:
            raise DeployError(f"runner {self.name} flashes over a serial port",
                              "pass --device /dev/ttyUSB0 (or another port)")


class DfuUtil(Runner):
    name, program, install = "dfu-util", "dfu-util", "apt-get install dfu-util"
    needs_dfu_device = True

    def commands(self, job: FlashJob) -> list[list[str]]:
        # a DfuSe file carries its own addresses; :leave starts the firmware afterwards
        return [["dfu-util", "-a", "0", "-d", job.usb_id, "-s", ":leave", "-D", str(job.artifact)]]


class Pydfu(Runner):
    name, program, install = "pydfu", sys.executable, "pip install pyusb (pydfu is the tree's tools/pydfu.py)"
    needs_dfu_device = True

    def available(self) -> bool:
        try:
            import usb.core  # noqa: F401
        except ImportError:
            return False
        return True

    def commands(self, job: FlashJob) -> list[list[str]]:
        assert job.tree is not None
        return [[sys.executable, str(job.tree / "tools" / "pydfu.py"), "-u", str(job.artifact)]]


class Esptool(Runner):
    name, program, install = "esptool", "esptool.py", "pip install 'esptool<5'"
    needs_serial = True
    can_erase = True

    def commands(self, job: FlashJob) -> list[list[str]]:
        base = ["esptool.py", "--port", job.serial, "--baud", str(job.baud)]
        erase = [base + ["erase_flash"]] if job.erase else []
        return erase + [base + ["write_flash", "--flash_size=detect", job.offset, str(job.artifact)]]


class Teensy(Runner):
    name, program, install = "teensy", "teensy_loader_cli", "apt-get install teensy-loader-cli"

    def commands(self, job: FlashJob) -> list[list[str]]:
        return [["teensy_loader_cli", f"--mcu={job.mcu}", "-w", "-v", str(job.artifact)]]


class Cc3200(Runner):
    """No tool is packaged for the CC3200: the documented procedure, not a guess."""

    name, program, install = "cc3200", "", ""

    def available(self) -> bool:
        return True

    def commands(self, job: FlashJob) -> list[list[str]]:
        raise DeployError(
            "no flashing tool for the CC3200 is packaged",
            f"on a running WiPy: ftp to 192.168.1.1 (user micro, password python), "
            f"put {job.artifact.name} into /flash/sys/, then reset; a blank board: TI's "
            f"CCS UniFlash with the serial bootloader (SOP2 jumper)")


RUNNERS: dict[str, type[Runner]] = {r.name: r for r in (DfuUtil, Pydfu, Esptool, Teensy, Cc3200)}


# --- facts about the board ----------------------------------------------------------

def _size(text: str) -> int:
    """A linker-script length: 0x100000, 1024K, 1M."""
    if text.strip().lower().startswith("0x"):
        return int(text.strip(), 16)
    match = re.fullmatch(r"(\d+)\s*([KkMm]?)", text.strip())
    if not match:
        raise DeployError(f"cannot read the flash size {text!r}", "check the linker script")
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1 << 20}[match.group(2).lower()]


def flash_regions(target: Target) -> list[tuple[int, int]]:
    """The board's flash, from its linker script (named by the board's make file, or the port)."""
    flash = target.port.flash
    ld = flash.get("ld_file", "")
    if flash.get("ld_file_var"):
        mk = target.port_dir / target.port.boards_dir / target.board / "mpconfigboard.mk"
        match = re.search(rf"^{flash['ld_file_var']}\s*=\s*(\S+)", mk.read_text(), re.MULTILINE) \
            if mk.exists() else None
        if not match:
            raise DeployError(f"{mk.name} of {target.board} names no {flash['ld_file_var']}",
                              "is the tree fetched?")
        ld = match.group(1)
    if not ld:
        return []
    script = (target.port_dir / ld).read_text()
    regions = re.findall(r"FLASH\w*\s*\([^)]*\)\s*:\s*ORIGIN\s*=\s*(0x[0-9a-fA-F]+)\s*,\s*"
                         r"LENGTH\s*=\s*(\w+)", script)
    return [(int(origin, 16), _size(length)) for origin, length in regions]


def dfu_devices(executor, usb_id: str) -> list[str]:
    """``dfu-util -l`` lines for devices with ``usb_id`` (one per device, not per alt setting)."""
    out = executor.output(["dfu-util", "-l"], check=False)
    seen = {}
    for line in out.splitlines():
        if f"[{usb_id}]" in line:
            path = re.search(r'path="([^"]*)"', line)
            seen.setdefault(path.group(1) if path else line, line.strip())
    return list(seen.values())


# --- the flow ------------------------------------------------------------------------

@dataclass
class DeployPlan:
    target: str
    artifact: Path
    runner: str
    commands: list[list[str]]
    bootloader: str = ""  # the serial device sent to its bootloader first
    expect: str = ""  # what the banner must name afterwards


def choose_runner(target: Target, name: str | None) -> Runner:
    flash = target.port.flash
    names = [name] if name else [flash.get("runner", "")] + list(flash.get("fallback", []))
    names = [n for n in names if n]
    if not names:
        raise DeployError(f"port {target.port.name} has no flash method", f"see ports/{target.port.name}.toml")
    for candidate in names:
        if candidate not in RUNNERS:
            raise DeployError(f"unknown runner '{candidate}'", f"known: {', '.join(RUNNERS)}")
        runner = RUNNERS[candidate]()
        if runner.available():
            return runner
    missing = [RUNNERS[n] for n in names]
    raise MissingTool(missing[0].program, f"no flashing tool for {target.name}: "
                      f"{' or '.join(r.name for r in missing)}",
                      "; or ".join(r.install for r in missing))


def pick_artifact(target: Target, file: str | None, mirror: str | None) -> tuple[Path, dict]:
    """The artifact to flash and its manifest (empty for --file), checked against it."""
    flash = target.port.flash
    if file:
        path = Path(file)
        if not path.is_file():
            raise DeployError(f"no such file: {file}", "check --file")
        return path, {}
    build(target, mirror=mirror)  # builds when missing or stale, a no-op otherwise
    manifest = json.loads((target.dist_dir / "manifest.json").read_text())
    name = flash.get("artifact") or manifest["artifacts"][0]["name"]
    entry = next((a for a in manifest["artifacts"] if a["name"] == name), None)
    if entry is None:
        raise DeployError(f"dist/{target.name} has no {name}", f"check [flash] in ports/{target.port.name}.toml")
    path = target.dist_dir / name
    if sha256_file(path) != entry["sha256"]:
        raise DeployError(f"dist/{target.name}/{name} differs from its manifest (sha256)",
                          "rebuild with `invoke build --clean`; do not flash a file that changed")
    return path, manifest


def plan_deploy(project: Project, target: Target, *, file: str | None, runner_name: str | None,
                device: str | None, erase: bool, mirror: str | None, baud: int = 115200) -> DeployPlan:
    """Everything up to (not including) touching the board: artifact, checks, runner, commands."""
    artifact, manifest = pick_artifact(target, file, mirror)
    flash = target.port.flash
    usb_id = flash.get("usb_id", "")
    if artifact.suffix == ".dfu":
        vid, pid = (int(x, 16) for x in usb_id.split(":")) if usb_id else (0, 0)
        parsed = dfuse.parse(artifact.read_bytes(), artifact.name)
        dfuse.check(parsed, usb_id=(vid, pid), flash=flash_regions(target), what=artifact.name)
    runner = choose_runner(target, runner_name)
    job = FlashJob(artifact, usb_id, device if runner.needs_serial else "", baud, erase,
                   flash.get("mcu", ""), flash.get("offset", "0"), project.tree)
    runner.check(job)
    bootloader = device if (runner.needs_dfu_device and device) else ""
    expect = manifest.get("tree", {}).get("describe", "")
    return DeployPlan(target.name, artifact, runner.name, runner.commands(job), bootloader, expect)


def enter_bootloader(device: str) -> None:
    """Ask MicroPython on ``device`` to jump to its DFU bootloader (no answer comes back)."""
    opened = open_device(device)
    try:
        repl = RawRepl(opened.port, silence=5)
        repl.wait_for_prompt(10)
        repl.enter(soft_reset=False)
        code = b"import pyb\npyb.bootloader()\n"
        repl.write(code + b"\x04")
        repl.read_until(b"OK", 5)
    finally:
        opened.close()


def wait_for(check, seconds: float, what: str, hint: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise DeployError(f"{what} within {seconds:g} s", hint)


def run_deploy(project: Project, target: Target, plan: DeployPlan, device: str | None) -> str:
    """Carry out a plan; returns the banner the board showed afterwards ('' without a device)."""
    console, executor = project.console, project.executor
    usb_id = target.port.flash.get("usb_id", "")
    runner = RUNNERS[plan.runner]
    if runner.needs_dfu_device:
        present = dfu_devices(executor, usb_id)
        if len(present) > 1:
            raise DeployError(f"{len(present)} DFU devices {usb_id} attached: " + "; ".join(present),
                              "unplug all but the board to flash")
        if not present:
            if not device:
                raise DeployError(f"no DFU device {usb_id} found",
                                  "pass --device PORT (or auto) of the running board, or put it in "
                                  "DFU mode: connect 3V3 to DFU (BOOT0) and press reset")
            console.step(f"bootloader: pyb.bootloader() on {device}")
            try:
                enter_bootloader(device)
            except TransportError as exc:
                raise DeployError(f"could not send {device} to its bootloader: {exc.message}",
                                  exc.hint) from None
            present = wait_for(lambda: dfu_devices(executor, usb_id), DFU_WAIT,
                               f"no DFU device {usb_id} appeared",
                               "connect 3V3 to DFU (BOOT0) and press reset, then run deploy again")
            if len(present) > 1:
                raise DeployError(f"{len(present)} DFU devices appeared", "unplug the others")
    console.step(f"flash {plan.artifact.name} with {plan.runner}")
    with FlashProgress(console, plan.artifact.name) as progress:
        for argv in plan.commands:
            executor.run(argv, what=plan.runner, hint=f"is the board connected? ({runner.install})",
                         on_line=progress.line)
    if not device or device.startswith("execpty:"):
        return ""
    console.step(f"waiting for {device} to come back")
    spec = device

    def banner() -> str:
        try:
            opened = open_device(spec)
        except TransportError:
            return ""
        try:
            repl = RawRepl(opened.port, silence=3)
            repl.wait_for_prompt(5)
            repl.write(b"\x04")  # soft reset: the banner again
            return repl.read_until(b">>> ", 10).decode("utf-8", "replace")
        except TransportError:
            return ""
        finally:
            opened.close()

    shown = wait_for(banner, PORT_WAIT, f"{device} did not come back",
                     "check the board; the firmware was written")
    if plan.expect and plan.expect not in shown:
        line = next((l for l in shown.splitlines() if "MicroPython" in l), shown.strip()[:80])
        raise DeployError(f"the board runs '{line.strip()}', not {plan.expect}",
                          "the flash did not take: run deploy again")
    return shown


class FlashProgress:
    """The percentages a flashing tool prints (dfu-util, esptool: ``NN%``), shown as a
    rich progress bar on a terminal and as a line per quarter in CI."""

    def __init__(self, console, what: str) -> None:
        self.console, self.what = console, what
        self.bar = None
        self.task = None
        self.shown = -1

    def __enter__(self) -> "FlashProgress":
        if not self.console.plain:
            from rich.progress import BarColumn, Progress, TaskProgressColumn
            self.bar = Progress("[progress.description]{task.description}", BarColumn(),
                                TaskProgressColumn(), console=self.console.rich)
            self.bar.start()
            self.task = self.bar.add_task(self.what, total=100)
        return self

    def line(self, text: str) -> None:
        self.console.detail(text)
        match = re.search(r"(\d{1,3})\s*%", text)
        if not match:
            return
        percent = min(100, int(match.group(1)))
        if self.bar is not None:
            self.bar.update(self.task, completed=percent)
        elif percent // 25 > self.shown // 25:
            self.shown = percent
            self.console.info(f"{self.what}: {percent}%")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def describe_plan(plan: DeployPlan) -> list[str]:
    lines = [f"target: {plan.target}", f"artifact: {plan.artifact}", f"runner: {plan.runner}"]
    if plan.bootloader:
        lines.append(f"first: pyb.bootloader() over the raw REPL on {plan.bootloader}, "
                     f"then wait for the DFU device")
    lines += [f"$ {quote(argv)}" for argv in plan.commands]
    if plan.expect:
        lines.append(f"then: the banner must name {plan.expect}")
    return lines
