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
   ``fallback``), or ``--runner``: small classes in :mod:`mpforge.device.runners`,
   each declaring what it needs (a DFU device, a serial port), what it can do
   (erase, write one chosen DFU device) and the kinds of file it writes; this
   flow checks those declarations against the job;
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

A labgrid place (``--device labgrid:PLACE``) is acquired to look at its resources:
mpforge flashes through a DFU device or a serial port *on this machine*, so a place
is refused in one line, naming what it has (:func:`check_farm_place`): without a
flashing resource (most places are a serial port and a power switch), or with one
only its exporter's host can use (flash it there, or with ``labgrid-client``).

Progress: while a runner writes, :func:`flash_board` calls ``on_progress(percent,
line)`` with each percentage the tool prints; how it is shown (a bar, a line per
quarter) is the caller's business (:mod:`mpforge.cli.render`).

To add a runner: see :mod:`mpforge.device.runners`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from mpforge.core.environment import environment
from mpforge.core.errors import MissingTool
from mpforge.core.executor import Executor, quote
from mpforge.core.project import Project, Target
from mpforge.core.state import read_json
from mpforge.device.runners import DeployError, FlashJob, Runner, runner_named
from mpforge.device.spec import DeviceSpec, DfuSpec, ProbeSpec, SerialPath
from mpforge.device.transport import RawRepl, TransportError, open_device, resolve_auto
from mpforge.firmware.manifest import expected_version, sha256_file
from mpforge.firmware.pipeline import BuildOptions, build_one


def dfu_wait() -> float:
    """Seconds to wait for the board's DFU device (``MPFORGE_DFU_WAIT``, read now)."""
    return environment().dfu_wait


def port_wait() -> float:
    """Seconds to wait for the board's serial port after flashing (``MPFORGE_PORT_WAIT``, read now)."""
    return environment().port_wait

#: the largest file any runner is given (the biggest flash of any port is 4 MiB)
MAX_ARTIFACT = 16 << 20


# --- facts about the board ----------------------------------------------------------

@dataclass(frozen=True)
class DfuDevice:
    """One device ``dfu-util -l`` lists (once, not once per alt setting)."""

    path: str  # USB bus-port path, e.g. "1-2": the physical socket
    serial: str
    line: str


def dfu_devices(executor: Executor, usb_id: str) -> list[DfuDevice]:
    """The DFU devices with ``usb_id`` that ``dfu-util -l`` lists."""
    # a failing listing raises (CommandFailed): it must not read as "no DFU device attached"
    out = executor.output(["dfu-util", "-l"], hint="`dfu-util -l` lists the DFU devices; check USB access")
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
    """The USB path (``1-2``, as ``dfu-util -l`` says ``path=``) of the USB device behind the
    serial port at path ``port``, from sysfs; "" when it has none (a pty, no sysfs).

    ``MPFORGE_SYSFS`` replaces ``/sys`` (the tests give a fake one).
    """
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


def identify(device: DeviceSpec | None, dfu_serial: str | None) -> BoardIdentity:
    """The board's identity (for a DFU runner) from ``--device`` and ``--dfu-serial``: a
    ``dfu:`` spec names the DFU device; a serial port is placed on the USB bus (``auto``:
    the one board found, if one is; else its USB path is not known). A probe is refused."""
    identity = BoardIdentity(dfu_serial=dfu_serial or "")
    if isinstance(device, DfuSpec):
        if device.serial:
            identity.dfu_serial = device.serial
        else:
            identity.usb_path = device.path
        return identity
    if isinstance(device, ProbeSpec):
        raise DeployError(f"a DFU runner writes a board in DFU mode, not the debug probe --device {device}",
                          "name the board: --device PORT (or auto), dfu:serial=SERIAL or dfu:path=BUS-PORT; "
                          "or write through the probe: --runner openocd / pyocd")
    if device is not None:
        try:
            port = resolve_auto(device)
        except TransportError:
            port = device  # none or several boards found: no USB path to match
        identity.serial_port = str(device)
        identity.usb_path = usb_path_of(port.path) if isinstance(port, SerialPath) else ""
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
    """The runner that flashes ``target``: ``name`` (``--runner``) when given, else the first
    installed of ``[flash] runner`` and ``fallback``.

    Every runner the port's data names must exist, used now or not: a typo there fails
    naming the file and the key (as an unknown key does), never falls through.
    """
    flash = target.port.flash
    source = f"ports/{target.port.name}.toml"
    named = [("runner", flash.runner), *(("fallback", fallback) for fallback in flash.fallback)]
    declared = [runner_named(runner, file=source, key=f"[flash] {key}") for key, runner in named if runner]
    candidates = [runner_named(name)] if name else declared
    if not candidates:
        raise DeployError(f"port {target.port.name} has no flash method", f"see {source}")
    for runner in candidates:
        if runner.available():
            return runner
    raise MissingTool(candidates[0].program, f"no flashing tool for {target.name}: "
                      f"{' or '.join(r.name for r in candidates)}",
                      "; or ".join(r.install for r in candidates))


def check_runner_writes(runner: Runner, target: Target, name: str) -> None:
    """Refuse a port's artifact called ``name`` when it is of no kind ``runner`` writes.

    Only dist artifacts are matched by name; ``--file`` may be called anything and
    is checked by its content (:meth:`Runner.validate`).
    """
    if runner.writes and not runner.writes_file_named(name):
        kinds = " or ".join(str(kind) for kind in runner.writes)
        raise DeployError(f"runner {runner.name} cannot write {name} ({target.name}): it writes {kinds}",
                          f"use the port's runner (see [flash] in ports/{target.port.name}.toml)")


def pick_artifact(target: Target, file: str | None, mirror: str | None,
                  dry_run: bool = False, build_options: BuildOptions | None = None,
                  artifact_name: str = "") -> tuple[Path, dict, str]:
    """The artifact to flash (``artifact_name``, default ``[flash] artifact``) and its
    manifest (empty for --file), checked against it.

    The third value is, under ``dry_run``, what a real run would build first
    ("" when nothing); a dry run never builds.
    """
    flash = replace(target.port.flash, artifact=artifact_name or target.port.flash.artifact)
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
    # builds when missing or stale, a no-op otherwise
    build_one(target, mirror=mirror, options=build_options)
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
                device: DeviceSpec | None, erase: bool, mirror: str | None, baud: int = 115200,
                dfu_serial: str | None = None, dry_run: bool = False,
                build_options: BuildOptions | None = None) -> DeployPlan:
    """Everything up to (not including) touching the board: artifact, checks, runner, commands.

    ``dry_run``: nothing is built or written; the artifact is checked if it is there.
    """
    runner = choose_runner(target, runner_name)
    name = runner.artifact_name(target.port)  # an SWD runner writes the .hex, not the .dfu
    if not file and name:  # known before building it
        check_runner_writes(runner, target, name)
    artifact, manifest, would_build = pick_artifact(target, file, mirror, dry_run, build_options, name)
    if not file:
        check_runner_writes(runner, target, artifact.name)
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
    serial_device = device if device is not None and not isinstance(device, DfuSpec) else None
    serial = str(device) if runner.needs_serial and device is not None and device.is_serial else ""
    job = FlashJob(artifact, usb_id, serial, baud, erase,
                   flash.mcu, flash.offset, project.tree,
                   dfu_path=identity.usb_path, dfu_serial=identity.dfu_serial)
    job = runner.prepare(target, job, device)  # an SWD runner: the probe's configs and serial
    runner.check(job)  # what it needs (a serial port) and what it cannot do (erase)
    bootloader = str(serial_device) if (runner.needs_dfu_device and serial_device) else ""
    expect = expected_version(manifest) if manifest else ""  # the banner names pin + series
    return DeployPlan(target.name, artifact, runner.name, runner.commands(job), bootloader, expect,
                      identity, job, would_build)


def enter_bootloader(device: DeviceSpec) -> None:
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


T = TypeVar("T")


def wait_for(check: Callable[[], T], seconds: float, what: str, hint: str) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise DeployError(f"{what} within {seconds:g} s", hint)


def find_board_dfu(project: Project, plan: DeployPlan, device: DeviceSpec | None) -> DfuDevice:
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
        if device is None:
            raise DeployError(f"no DFU device {usb_id} found",
                              "pass --device PORT (or auto) of the running board, or put it in "
                              "DFU mode: connect 3V3 to DFU (BOOT0) and press reset")
    if device is None:
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


#: told each percentage a flashing tool prints: ``on_progress(percent, line)``, 0..100
ProgressCallback = Callable[[int, str], None]


def percent_in(line: str) -> int | None:
    """The percentage in a flashing tool's progress line (dfu-util's ``Download [==] 42%``,
    esptool's ``(42 %)``), at most 100; None when the line shows none."""
    match = re.search(r"(\d{1,3})\s*%", line)
    return min(100, int(match.group(1))) if match else None


def flash_board(project: Project, target: Target, plan: DeployPlan, device: DeviceSpec | None,
                on_progress: ProgressCallback | None = None) -> None:
    """Write the plan's artifact: find the board (a DFU runner: its DFU device, through
    its bootloader if need be), then run the runner's commands.

    Every output line of the tool goes to the console's detail; each one showing a
    percentage also to ``on_progress``.
    """
    console, executor = project.console, project.executor
    usb_id = target.port.flash.usb_id
    runner = runner_named(plan.runner)
    commands = plan.commands
    if runner.needs_dfu_device:
        chosen = find_board_dfu(project, plan, device)
        assert plan.job is not None
        if not runner.can_pick_dfu_device and len(dfu_devices(executor, usb_id)) > 1:
            raise DeployError(f"{runner.name} writes the first DFU device it finds, and several are attached",
                              "install dfu-util (it writes the one board), or unplug the others")
        commands = runner.commands(replace(plan.job, dfu_path=chosen.path or plan.job.dfu_path))

    def tool_line(line: str) -> None:
        console.detail(line)
        percent = percent_in(line)
        if percent is not None and on_progress is not None:
            on_progress(percent, line)

    console.step(f"flash {plan.artifact.name} with {plan.runner}")
    for argv in commands:
        executor.run(argv, what=plan.runner, hint=f"is the board connected? ({runner.install})",
                     on_line=tool_line)


def await_banner(project: Project, plan: DeployPlan, device: DeviceSpec | None) -> str:
    """After a flash: wait for the board on the serial ``device`` to come back and check that
    its banner names the tree version flashed; returns the banner ('' without a serial device)."""
    if device is None or not device.is_serial:
        return ""  # no serial port to watch the board come back on
    project.console.step(f"waiting for {device} to come back")
    spec = device

    def banner() -> str:
        try:
            opened = open_device(spec, executor=project.executor)
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


def check_farm_place(spec: DeviceSpec, *, wait: float = 0.0, root: Path | None = None,
                     note: Callable[[str], None] | None = None) -> None:
    """Refuse to deploy to the labgrid place ``spec`` (acquired for the look, then
    released), in one line saying what it lacks or has: see the module docstring."""
    from mpforge.device.boards import one

    with one(spec, wait=wait, note=note, root=root) as board:
        lease = board.lease
        assert lease is not None
        if not lease.flashing:
            raise DeployError(f"place {lease.place} has no flashing resource "
                              f"(it has {', '.join(lease.resources) or 'nothing'})",
                              "flash the board where it is plugged in (invoke deploy --device /dev/ttyACM0), "
                              f"or add a DFU device to the place: labgrid-client -p {lease.place} add-match "
                              "EXPORTER/GROUP/NetworkDFUDevice")
        raise DeployError(f"place {lease.place} is flashed through {', '.join(lease.flashing)} on "
                          f"{lease.host}: mpforge flashes only boards attached to this machine",
                          f"on {lease.host}: invoke deploy --device /dev/ttyACM0; or labgrid-client "
                          f"-p {lease.place} dfu download ...")


def describe_plan(plan: DeployPlan) -> list[str]:
    lines = [f"target: {plan.target}", f"artifact: {plan.artifact}", f"runner: {plan.runner}"]
    if plan.would_build:
        lines.insert(0, f"first: build {plan.would_build}")
    if runner_named(plan.runner).needs_dfu_device:
        lines.append(f"board: {plan.identity.describe()} (any other DFU device attached is refused)")
    if plan.bootloader:
        lines.append(f"first: pyb.bootloader() over the raw REPL on {plan.bootloader}, "
                     f"then wait for the DFU device")
    lines += [f"$ {quote(argv)}" for argv in plan.commands]
    if plan.expect:
        lines.append(f"then: the banner must name {plan.expect}")
    return lines
