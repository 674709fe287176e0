"""Tasks on boards: ``deploy`` (flash), ``emulate`` (QEMU), ``repl`` and ``run`` (a
script over the raw REPL)."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Context, Exit

from mpforge.cli import framework as fw
from mpforge.cli import render
from mpforge.cli.framework import WAIT_HELP, task
from mpforge.cli.ui import Console
from mpforge.core.errors import ConfigError, UsageError
from mpforge.core.project import find_root
from mpforge.device import deploy as deploy_mod
from mpforge.device import emulate as emulate_mod
from mpforge.device import repl as device_mod
from mpforge.device.spec import DeviceSpec, parse_device
from mpforge.firmware.selection import select


@task(shared=("mirror", "dry_run"), help=dict(
    port="port to flash (default stmhal)", board="board (default: the port's default)",
    device="the board's serial port (/dev/ttyACM0, auto, ...): bootloader entry, esptool, banner check "
           "(a labgrid place is refused unless it can be flashed from here)",
    file="flash this file instead of dist/<target>/",
    runner="use this runner: dfu-util, pydfu, esptool, teensy, cc3200",
    erase="erase the flash first (runners that can)", baud="serial speed for esptool",
    yes="do not ask for confirmation on a terminal",
    dfu_serial="flash the DFU device with this serial number (as `dfu-util -l` shows it), no other",
    repl="then open the board's REPL in this terminal (needs --device; Ctrl-] leaves)",
    app="the firmware with this app folder frozen in (as `invoke build --app`)",
    board_dir="the board described in this folder outside the tree (as `invoke build --board-dir`)",
    wait=WAIT_HELP))
def deploy(c: Context, port: str = "stmhal", board: str | None = None, device: str | None = None,
           file: str | None = None, runner: str | None = None, erase: bool = False,
           baud: int = 115200, yes: bool = False, dfu_serial: str | None = None, repl: bool = False,
           app: str | None = None,
           board_dir: str | None = None, wait: int = 0) -> None:
    """Flash a board: the built firmware, checked first, with the port's runner."""
    if repl and not device:
        raise UsageError("deploy --repl opens the REPL on the board's serial port", "pass --device")
    spec = fw.device_spec(device)
    project = fw.checkout()
    console = fw.console_of(project)
    if spec is not None and spec.is_farm:
        deploy_mod.check_farm_place(spec, wait=wait, root=project.root, note=console.warn)
    target = select(project, port, board, board_dir=board_dir, app=app).target()
    # a dry run changes nothing on disk: no build, and not even the remembered mirror
    plan = deploy_mod.plan_deploy(project, target, file=file, runner_name=runner, device=spec,
                                  erase=erase, mirror=None if fw.options().dry_run else fw.options().mirror,
                                  baud=baud, dfu_serial=dfu_serial, dry_run=fw.options().dry_run,
                                  build_options=fw.build_options())
    for line in deploy_mod.describe_plan(plan):
        console.info(line)
    if fw.options().dry_run:
        console.ok("dry run: nothing was flashed, built or changed")
        return
    if not yes and sys.stdin.isatty():
        answer = input(f"Flash {plan.artifact.name} to {plan.target}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise UsageError("not flashed", "answer y to flash (or pass --yes)")
    with render.flash_progress(console, plan.artifact.name) as on_progress:
        deploy_mod.flash_board(project, target, plan, spec, on_progress)
    banner = deploy_mod.await_banner(project, plan, spec)
    if banner:
        first = next((row for row in banner.splitlines() if "MicroPython" in row), "").strip()
        console.ok(f"flashed {plan.target}; the board says: {first}")
    else:
        console.ok(f"flashed {plan.target}")
    if repl and spec is not None:
        _attach_repl(console, spec, "deploy --repl")


@task(shared=("mirror",), help=dict(
    port="port to run emulated (default stmhal: the PYBV10_QEMU board; also minimal)",
    pty="print the pty and keep the emulator running until Ctrl-C, for other clients",
    app="freeze this app folder into the emulated board (as `invoke build --app`)"))
def emulate(c: Context, port: str = "stmhal", pty: bool = False, app: str | None = None) -> None:
    """Build the port's emulated board if needed, start QEMU and attach to its REPL (Ctrl-] leaves)."""
    project = fw.checkout()
    console = fw.console_of(project)
    if not pty and not sys.stdin.isatty():
        raise UsageError("invoke emulate attaches a terminal", "run it on one, or pass --pty")
    pipeline = fw.pipeline(project)
    chosen = select(project, port)
    # the emulated board may come from the patch series: prepare the tree before naming it
    pipeline.tree(chosen.ports)
    if len(chosen.ports) != 1:
        raise ConfigError("invoke emulate runs one port's emulated board", "give one --port")
    plan = emulate_mod.plan(project, chosen.ports[0])
    target = select(project, port, plan.target.board, app=app).target() if app else plan.target
    result = pipeline.build_one(target)
    command = plan.command.replace("{dist}", str(result.dist_dir))
    fw.release_checkout()  # the emulator only reads dist/: other commands may use the checkout
    with emulate_mod.running(command, executor=project.executor) as session:
        if pty:
            console.ok(f"{plan.target.name} running under QEMU; its REPL is on {session.pty} "
                       "(Ctrl-C stops it)")
            print(session.pty, flush=True)
            try:
                session.process.wait()
            except KeyboardInterrupt:
                pass
            return
        console.ok(f"{plan.target.name} running under QEMU on {session.pty}; Ctrl-] leaves")
        emulate_mod.attach_terminal(session.pty)


def _farm_root() -> Path | None:
    """The checkout, whose local farm (`invoke farm --start`) serves ``labgrid:`` specs when
    neither LG_COORDINATOR nor the configuration names a coordinator; None outside one."""
    try:
        return find_root()
    except ConfigError:
        return None


def _attach_repl(console: Console, device: DeviceSpec, what: str, wait: int = 0) -> None:
    """The board's REPL in this terminal until Ctrl-]; what connecting did, with -v."""
    if not sys.stdin.isatty():
        raise UsageError(f"{what} attaches a terminal", "run it on one (`invoke run FILE` runs a "
                         "script without one)")
    fw.release_checkout()  # deploy --repl: what is left changes nothing in the checkout
    with device_mod.connect(device, note=console.detail, farm_note=console.warn, wait=wait,
                           root=_farm_root()) as session:
        console.ok(f"{device}: at the REPL ({session.recovery.found}); Ctrl-] leaves")
        device_mod.terminal(session)


DEVICE_HELP = ("the board: /dev/ttyACM0, auto (the one pyboard found by USB id; default), "
               "rfc2217://host:port, execpty:<command> (the emulated pyboard's pty: "
               "`invoke emulate --pty`), or a labgrid place: labgrid:PLACE, labgrid:TAG=VALUE")


@task(locks=False, help=dict(device=DEVICE_HELP, wait=WAIT_HELP))
def repl(c: Context, device: str = "auto", wait: int = 0) -> None:
    """The board's REPL in this terminal, whatever state it was left in (Ctrl-] leaves)."""
    _attach_repl(Console(verbose=fw.options().verbose), parse_device(device), "invoke repl", wait)


@task(locks=False, help=dict(file="the script to run on the board", device=DEVICE_HELP,
    reset="soft-reset the board first, for a fresh interpreter (default; --no-reset keeps "
          "its state)",
    timeout="interrupt the script after this many seconds (default 0: never)", wait=WAIT_HELP))
def run(c: Context, file: str, device: str = "auto", reset: bool = True, timeout: int = 0,
        wait: int = 0) -> None:
    """Run a script on the board over the raw REPL, its output as it comes; exit 1 if it raises."""
    fw.show_help_if_asked(file, run)
    console = Console(verbose=fw.options().verbose, stream=sys.stderr)  # stdout is the script's alone
    spec = parse_device(device)
    code = device_mod.read_script(file)
    with device_mod.connect(spec, note=console.detail, farm_note=console.warn, wait=wait,
                           root=_farm_root()) as session:
        result = device_mod.run_script(session, code, _write_stdout, soft_reset=reset,
                                       timeout=timeout or None)
    if result.error:
        sys.stderr.write(result.error)
        sys.stderr.flush()
    if result.exit_code:
        raise Exit(code=result.exit_code)


def _write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
