"""``invoke deploy``: put a built firmware on a board, safely, in one command.

The flow (every step a clear, one-line error when it cannot go on):

1. the artifact: ``dist/<target>/`` (built first if missing or stale), or
   ``--file``; a dist artifact must match the sha256 in its manifest;
2. checks before any write: the file must be a valid artifact of the runner's
   format (:meth:`Runner.validate`: a DfuSe file that parses, carries the
   board's USB id and writes only into the board's flash, read from the
   board's linker script; an ESP8266 image; an Intel HEX file), whatever its
   name (``--file /etc/passwd`` goes nowhere);
3. the runner, from ``ports/<port>.toml`` ``[flash]`` (``runner``, then
   ``fallback``), or ``--runner``: small classes behind :class:`Runner`, each
   declaring what it needs (a DFU device, a serial port) and what it can do
   (erase);
4. for a DFU runner, the board's identity: ``--dfu-serial`` (or ``--device
   dfu:serial=S`` / ``dfu:path=P``) names a DFU device; a serial ``--device``
   is placed on the USB bus (its USB path, from sysfs), and the DFU device at
   that path is the board's. Only that device is flashed (``dfu-util -p PATH``);
   a DFU device that is not it, or that cannot be matched to it, is refused,
   never guessed. With no DFU device present the board on ``--device`` is sent
   to its bootloader over the raw REPL (``pyb.bootloader()``) and its DFU
   device is awaited;
5. flash. ``--dry-run`` changes nothing anywhere: no fetch, no patch, no make,
   nothing published; it says what would be built and prints the commands;
6. with a serial device: wait for the board to come back and check that its
   banner names the tree version of what was flashed.

To add a runner: subclass :class:`Runner`, set ``name``, ``program``,
``install`` and the capability flags, implement :meth:`Runner.commands` (pure:
argv lists, tested against a golden table), and add it to :data:`RUNNERS`.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from mpforge.build.target import build, sha256_file
from mpforge.core.environment import environment
from mpforge.core.errors import MissingTool, MpforgeError
from mpforge.core.executor import quote
from mpforge.core.project import Project, Target
from mpforge.core.state import read_json
from mpforge.device import dfuse
from mpforge.device.transport import RawRepl, TransportError, find_boards, open_device


def dfu_wait() -> float:
    """Seconds to wait for the board's DFU device (``MPFORGE_DFU_WAIT``, read now)."""
    return environment().dfu_wait


def port_wait() -> float:
    """Seconds to wait for the board's serial port after flashing (``MPFORGE_PORT_WAIT``, read now)."""
    return environment().port_wait


class DeployError(MpforgeError):
    """The firmware was not (or could not be) put on the board."""


#: the largest file any runner is given (the biggest flash of any port is 4 MiB)
MAX_ARTIFACT = 16 << 20


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
    dfu_path: str = ""  # the one DFU device to write (dfu-util -p), when known
    dfu_serial: str = ""  # ... or its serial number (dfu-util -S)


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

    def validate(self, target: Target, path: Path) -> None:
        """Refuse a file that is not an artifact this runner can write to ``target``."""

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
        # a DfuSe file carries its own addresses; :leave starts the firmware afterwards;
        # -p / -S: that device and no other, whatever else is attached
        which = [*(["-p", job.dfu_path] if job.dfu_path else []),
                 *(["-S", job.dfu_serial] if job.dfu_serial else [])]
        return [["dfu-util", "-a", "0", "-d", job.usb_id, *which, "-s", ":leave", "-D",
                 str(job.artifact)]]

    def validate(self, target: Target, path: Path) -> None:
        check_dfuse(target, path)


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

    def validate(self, target: Target, path: Path) -> None:
        check_dfuse(target, path)


class Esptool(Runner):
    name, program, install = "esptool", "esptool.py", "pip install 'esptool<5'"
    needs_serial = True
    can_erase = True

    def commands(self, job: FlashJob) -> list[list[str]]:
        base = ["esptool.py", "--port", job.serial, "--baud", str(job.baud)]
        erase = [base + ["erase_flash"]] if job.erase else []
        return erase + [base + ["write_flash", "--flash_size=detect", job.offset, str(job.artifact)]]

    def validate(self, target: Target, path: Path) -> None:
        check_esp_image(path.read_bytes(), path.name)


class Teensy(Runner):
    name, program, install = "teensy", "teensy_loader_cli", "apt-get install teensy-loader-cli"

    def commands(self, job: FlashJob) -> list[list[str]]:
        return [["teensy_loader_cli", f"--mcu={job.mcu}", "-w", "-v", str(job.artifact)]]

    def validate(self, target: Target, path: Path) -> None:
        check_ihex(path.read_bytes(), path.name)


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
    ld = flash.ld_file
    if flash.ld_file_var:
        mk = target.board_folder / "mpconfigboard.mk"  # the tree's, or one outside it (--board-dir)
        match = re.search(rf"^{flash.ld_file_var}\s*=\s*(\S+)", mk.read_text(), re.MULTILINE) \
            if mk.exists() else None
        if not match:
            raise DeployError(f"{mk.name} of {target.board} names no {flash.ld_file_var}",
                              "is the tree fetched?")
        ld = match.group(1)
    if not ld:
        return []
    script = (target.port_dir / ld).read_text()
    regions = re.findall(r"FLASH\w*\s*\([^)]*\)\s*:\s*ORIGIN\s*=\s*(0x[0-9a-fA-F]+)\s*,\s*"
                         r"LENGTH\s*=\s*(\w+)", script)
    return [(int(origin, 16), _size(length)) for origin, length in regions]


def check_dfuse(target: Target, path: Path) -> None:
    """A DfuSe file for this board: it parses, carries the board's USB id, and writes
    only into the board's flash (see :mod:`mpforge.device.dfuse`)."""
    usb_id = target.port.flash.usb_id
    vid, pid = (int(x, 16) for x in usb_id.split(":")) if usb_id else (0, 0)
    parsed = dfuse.parse(path.read_bytes(), path.name)
    dfuse.check(parsed, usb_id=(vid, pid), flash=flash_regions(target), what=path.name)


def check_esp_image(data: bytes, what: str) -> None:
    """An ESP8266 flash image (what ``firmware-combined.bin`` starts with): magic 0xE9, then
    its segments, each inside the file."""
    def bad(problem: str) -> DeployError:
        return DeployError(f"{what} is not an ESP8266 firmware image: {problem}",
                           "flash the firmware-combined.bin `invoke build --port esp8266` makes")

    if len(data) < 8 or data[0] != 0xE9:
        raise bad("no image header (magic byte 0xE9)")
    segments, offset = data[1], 8
    if not 1 <= segments <= 16:
        raise bad(f"{segments} segments")
    for _ in range(segments):
        if offset + 8 > len(data):
            raise bad("truncated segment header")
        size = int.from_bytes(data[offset + 4:offset + 8], "little")
        offset += 8 + size
        if offset > len(data):
            raise bad("a segment runs past the end of the file")


def check_ihex(data: bytes, what: str) -> None:
    """An Intel HEX file: every record well-formed with its checksum, ending in an EOF record."""
    def bad(problem: str) -> DeployError:
        return DeployError(f"{what} is not an Intel HEX file: {problem}",
                           "flash the .hex file `invoke build` makes for this port")

    try:
        lines = data.decode("ascii").split()
    except UnicodeDecodeError:
        raise bad("not text") from None
    if not lines:
        raise bad("empty")
    for number, line in enumerate(lines, 1):
        if not re.fullmatch(r":(?:[0-9A-Fa-f]{2}){5,}", line):
            raise bad(f"line {number} is not a record")
        record = bytes.fromhex(line[1:])
        if len(record) != record[0] + 5 or sum(record) & 0xFF:
            raise bad(f"line {number}: wrong length or checksum")
        if record[3] == 1:
            return
    raise bad("no end-of-file record")


@dataclass(frozen=True)
class DfuDevice:
    """One device ``dfu-util -l`` lists (once, not once per alt setting)."""

    path: str  # USB bus-port path, e.g. "1-2": the physical socket
    serial: str
    line: str


def dfu_devices(executor, usb_id: str) -> list[DfuDevice]:
    """The DFU devices with ``usb_id`` that ``dfu-util -l`` lists."""
    out = executor.output(["dfu-util", "-l"], check=False)
    seen: dict[str, DfuDevice] = {}
    for line in out.splitlines():
        if f"[{usb_id}]" in line:
            path = re.search(r'path="([^"]*)"', line)
            serial = re.search(r'serial="([^"]*)"', line)
            key = path.group(1) if path else line
            seen.setdefault(key, DfuDevice(path.group(1) if path else "",
                                           serial.group(1) if serial else "", line.strip()))
    return list(seen.values())


def usb_path_of(port: str) -> str:
    """The USB path (``1-2``, as ``dfu-util -l`` says ``path=``) of the USB device behind a
    serial port, from sysfs; "" when it has none (a pty, a network port, no sysfs).

    ``MPFORGE_SYSFS`` replaces ``/sys`` (the tests give a fake one).
    """
    if "://" in port or port.startswith("execpty:"):
        return ""
    name = Path(os.path.realpath(port)).name
    device = environment().sysfs / "class" / "tty" / name / "device"
    if not device.exists():
        return ""
    interface = Path(os.path.realpath(device)).name  # "1-2:1.0": configuration 1, interface 0
    return interface.split(":")[0] if ":" in interface else ""


@dataclass
class BoardIdentity:
    """Which DFU device is the board to flash (empty: not known, see :func:`identify`)."""

    dfu_serial: str = ""
    usb_path: str = ""
    serial_port: str = ""  # the board's serial port (--device), if any

    @property
    def known(self) -> bool:
        return bool(self.dfu_serial or self.usb_path)

    def matches(self, device: DfuDevice) -> bool:
        return ((not self.dfu_serial or device.serial == self.dfu_serial)
                and (not self.usb_path or device.path == self.usb_path))

    def describe(self) -> str:
        parts = [f"serial {self.dfu_serial}" if self.dfu_serial else "",
                 f"USB path {self.usb_path}" if self.usb_path else ""]
        what = " and ".join(p for p in parts if p)
        if self.serial_port and self.usb_path:
            return f"the board on {self.serial_port} ({what})"
        return f"the DFU device with {what}" if what else "the one DFU device attached"


def identify(device: str | None, dfu_serial: str | None) -> BoardIdentity:
    """The board's identity from ``--device`` and ``--dfu-serial``."""
    identity = BoardIdentity(dfu_serial=dfu_serial or "")
    if device and device.startswith("dfu:"):
        key, _, value = device[4:].partition("=")
        if key not in ("serial", "path") or not value:
            raise DeployError(f"cannot read --device {device}",
                              "use dfu:serial=SERIAL or dfu:path=BUS-PORT (as `dfu-util -l` shows them)")
        if key == "serial":
            identity.dfu_serial = value
        else:
            identity.usb_path = value
        return identity
    if device:
        port = device
        if device == "auto":
            boards = find_boards()
            port = boards[0] if len(boards) == 1 else ""
        identity.serial_port = device
        identity.usb_path = usb_path_of(port.removeprefix("port:")) if port else ""
    return identity


# --- the flow ------------------------------------------------------------------------

@dataclass
class DeployPlan:
    target: str
    artifact: Path
    runner: str
    commands: list[list[str]]
    bootloader: str = ""  # the serial device sent to its bootloader first
    expect: str = ""  # what the banner must name afterwards
    identity: BoardIdentity = field(default_factory=BoardIdentity)
    job: FlashJob | None = None
    would_build: str = ""  # --dry-run: what a real run would build first


def choose_runner(target: Target, name: str | None) -> Runner:
    flash = target.port.flash
    names = [name] if name else [flash.runner, *flash.fallback]
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


def pick_artifact(target: Target, file: str | None, mirror: str | None,
                  dry_run: bool = False) -> tuple[Path, dict, str]:
    """The artifact to flash and its manifest (empty for --file), checked against it.

    The third value is, under ``dry_run``, what a real run would build first
    ("" when nothing); a dry run never builds.
    """
    flash = target.port.flash
    if file:
        path = Path(file)
        if not path.is_file():
            raise DeployError(f"no such file: {file}" if not path.exists() else
                              f"{file} is not a regular file", "check --file")
        if path.stat().st_size > MAX_ARTIFACT:
            raise DeployError(f"{file} is {path.stat().st_size} bytes: no firmware is that big",
                              "check --file")
        return path, {}, ""
    manifest_path = target.dist_dir / "manifest.json"
    if dry_run:
        manifest = read_json(manifest_path) or {}
        name = flash.artifact or (manifest.get("artifacts") or [{}])[0].get("name") \
            or (target.port.artifacts[0].name if target.port.artifacts else "firmware")
        if not manifest or not (target.dist_dir / name).is_file():
            return target.dist_dir / name, {}, f"{target.name} (not built yet: fetch, patch, make)"
        return target.dist_dir / name, manifest, \
            f"{target.name} again if its inputs changed (a no-op otherwise)"
    build(target, mirror=mirror)  # builds when missing or stale, a no-op otherwise
    manifest = read_json(manifest_path, target.project.console.warn) or {}
    name = flash.artifact or (manifest.get("artifacts") or [{}])[0].get("name", "")
    entry = next((a for a in manifest.get("artifacts", []) if a.get("name") == name), None)
    if entry is None:
        raise DeployError(f"dist/{target.name} has no {name}", f"check [flash] in ports/{target.port.name}.toml")
    path = target.dist_dir / name
    if sha256_file(path) != entry["sha256"]:
        raise DeployError(f"dist/{target.name}/{name} differs from its manifest (sha256)",
                          "rebuild with `invoke build --clean`; do not flash a file that changed")
    return path, manifest, ""


def plan_deploy(project: Project, target: Target, *, file: str | None, runner_name: str | None,
                device: str | None, erase: bool, mirror: str | None, baud: int = 115200,
                dfu_serial: str | None = None, dry_run: bool = False) -> DeployPlan:
    """Everything up to (not including) touching the board: artifact, checks, runner, commands.

    ``dry_run``: nothing is built or written; the artifact is checked if it is there.
    """
    runner = choose_runner(target, runner_name)
    artifact, manifest, would_build = pick_artifact(target, file, mirror, dry_run)
    if artifact.is_file():  # (under --dry-run it may not be built yet: checked after the build)
        if dry_run and manifest:
            entry = next((a for a in manifest.get("artifacts", []) if a.get("name") == artifact.name), None)
            if entry and sha256_file(artifact) != entry.get("sha256"):
                raise DeployError(f"dist/{target.name}/{artifact.name} differs from its manifest (sha256)",
                                  "rebuild with `invoke build --clean`; do not flash a file that changed")
        runner.validate(target, artifact)
    flash = target.port.flash
    usb_id = flash.usb_id
    identity = identify(device, dfu_serial) if runner.needs_dfu_device else BoardIdentity()
    serial_device = device if device and not device.startswith("dfu:") else None
    job = FlashJob(artifact, usb_id, (device or "") if runner.needs_serial else "", baud, erase,
                   flash.mcu, flash.offset, project.tree,
                   dfu_path=identity.usb_path, dfu_serial=identity.dfu_serial)
    runner.check(job)
    bootloader = serial_device if (runner.needs_dfu_device and serial_device) else ""
    expect = manifest.get("tree", {}).get("describe", "")
    return DeployPlan(target.name, artifact, runner.name, runner.commands(job), bootloader, expect,
                      identity, job, would_build)


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


def find_board_dfu(project: Project, plan: DeployPlan, device: str | None) -> DfuDevice:
    """The DFU device of the board to flash, or a :class:`DeployError`: never another board.

    See the module docstring (step 4). The board on a serial ``--device`` is sent
    to its bootloader only when no DFU device at all is attached, so the device
    that then appears cannot be confused with another one.
    """
    executor, console = project.executor, project.console
    usb_id = plan.job.usb_id if plan.job else ""
    identity = plan.identity
    present = dfu_devices(executor, usb_id)
    listed = "; ".join(d.line for d in present)
    if identity.known:
        mine = [d for d in present if identity.matches(d)]
        others = [d for d in present if not identity.matches(d)]
        if len(mine) > 1:
            raise DeployError(f"{len(mine)} DFU devices match {identity.describe()}: {listed}",
                              "unplug all but the board to flash")
        if mine:
            return mine[0]
        if others and identity.serial_port:
            raise DeployError(f"a DFU device is attached that is not {identity.describe()}: "
                              + "; ".join(d.line for d in others),
                              "unplug it (or flash it by name: --dfu-serial SERIAL), then deploy again")
        if not identity.serial_port:
            raise DeployError(f"no DFU device {usb_id} is {identity.describe()}"
                              + (f" (attached: {listed})" if present else ""),
                              "check --dfu-serial / --device dfu:...; `dfu-util -l` lists the devices")
    else:
        if present and identity.serial_port:
            raise DeployError(f"cannot tell whether the attached DFU device is the board on "
                              f"{identity.serial_port}: that port has no USB path to match ({listed})",
                              "name the DFU device: --dfu-serial SERIAL (`dfu-util -l` shows it), "
                              "or unplug it")
        if len(present) > 1:
            raise DeployError(f"{len(present)} DFU devices {usb_id} attached: {listed}",
                              "unplug all but the board to flash, or name it with --dfu-serial SERIAL")
        if present:
            return present[0]
        if not device:
            raise DeployError(f"no DFU device {usb_id} found",
                              "pass --device PORT (or auto) of the running board, or put it in "
                              "DFU mode: connect 3V3 to DFU (BOOT0) and press reset")
    if not device:
        raise DeployError("no DFU device and no board to put in DFU mode",
                          "pass --device PORT (or auto) of the running board")
    console.step(f"bootloader: pyb.bootloader() on {device}")
    try:
        enter_bootloader(device)
    except TransportError as exc:
        raise DeployError(f"could not send {device} to its bootloader: {exc.message}",
                          exc.hint) from None
    appeared = wait_for(lambda: dfu_devices(executor, usb_id), dfu_wait(),
                        f"no DFU device {usb_id} appeared",
                        "connect 3V3 to DFU (BOOT0) and press reset, then run deploy again")
    mine = [d for d in appeared if identity.matches(d)] if identity.known else appeared
    if len(appeared) > 1 or len(mine) != 1:
        raise DeployError(f"{len(appeared)} DFU device(s) appeared, {len(mine)} of them "
                          f"{identity.describe() if identity.known else 'matching'}: "
                          + "; ".join(d.line for d in appeared), "unplug the others and deploy again")
    return mine[0]


def run_deploy(project: Project, target: Target, plan: DeployPlan, device: str | None) -> str:
    """Carry out a plan; returns the banner the board showed afterwards ('' without a device)."""
    console, executor = project.console, project.executor
    usb_id = target.port.flash.usb_id
    runner = RUNNERS[plan.runner]()
    commands = plan.commands
    if runner.needs_dfu_device:
        chosen = find_board_dfu(project, plan, device)
        assert plan.job is not None
        if runner.name == "pydfu" and len(dfu_devices(executor, usb_id)) > 1:
            raise DeployError("pydfu writes the first DFU device it finds, and several are attached",
                              "install dfu-util (it writes the one board), or unplug the others")
        commands = runner.commands(replace(plan.job, dfu_path=chosen.path or plan.job.dfu_path))
    console.step(f"flash {plan.artifact.name} with {plan.runner}")
    with FlashProgress(console, plan.artifact.name) as progress:
        for argv in commands:
            executor.run(argv, what=plan.runner, hint=f"is the board connected? ({runner.install})",
                         on_line=progress.line)
    if not device or device.startswith(("execpty:", "dfu:")):
        return ""  # no serial port to watch the board come back on
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

    shown = wait_for(banner, port_wait(), f"{device} did not come back",
                     "check the board; the firmware was written")
    if plan.expect and plan.expect not in shown:
        line = next((row for row in shown.splitlines() if "MicroPython" in row), shown.strip()[:80])
        raise DeployError(f"the board runs '{line.strip()}', not {plan.expect}",
                          "the flash did not take: run deploy again")
    return shown


class FlashProgress:
    """The percentages a flashing tool prints (dfu-util, esptool: ``NN%``), shown as a
    rich progress bar on a terminal and as a line per quarter in CI."""

    def __init__(self, console, what: str) -> None:
        self.console, self.what = console, what
        self.bar: Any = None  # a rich Progress on a terminal
        self.task: Any = None
        self.shown = -1

    def __enter__(self) -> FlashProgress:
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
    if plan.would_build:
        lines.insert(0, f"first: build {plan.would_build}")
    if RUNNERS[plan.runner].needs_dfu_device:
        lines.append(f"board: {plan.identity.describe()} (any other DFU device attached is refused)")
    if plan.bootloader:
        lines.append(f"first: pyb.bootloader() over the raw REPL on {plan.bootloader}, "
                     f"then wait for the DFU device")
    lines += [f"$ {quote(argv)}" for argv in plan.commands]
    if plan.expect:
        lines.append(f"then: the banner must name {plan.expect}")
    return lines
