"""``invoke debug``: gdb on a built target, its sources mapped to this checkout.

Three ways to reach the program, chosen from the port's data:

- **emulated** (the port has ``[test.emulator.qemu]`` and the board is its board):
  QEMU is started halted (``-S``) with its gdb stub on a unix socket in a private
  temporary folder (``-chardev socket,path=S,server=on,wait=off,id=g -gdb chardev:g``:
  no TCP port, so two sessions never clash), its UART on a pty as ``invoke emulate``
  has it; gdb connects with ``target remote S``;
- **host** (a port without emulator or probe, the unix port): gdb runs the program
  itself; the program is stripped, and gdb finds its debug file beside it through its
  ``.gnu_debuglink`` (see ``ports/unix.toml``);
- **probe** (any other board): the gdb server of the port's ``[debug] server``
  (OpenOCD with ``[debug.openocd]``'s configs, or pyOCD with ``[debug.pyocd]``;
  ``probe="pyocd"`` chooses it) on a free local TCP port, through the probe
  ``probe_serial`` names (else the one attached), its output in
  ``build/<target>/debug-server.log``; gdb connects with ``target extended-remote``.

Every build has ``-g`` with ``-ffile-prefix-map=<checkout>=.`` (``toolchains/*.toml``): the
debug info names sources relative to the checkout, and gdb is told
``set substitute-path . <checkout>`` and runs in the checkout, so ``list``, ``break
file:line`` and ``bt`` show this tree's files.

:func:`session` starts what the way needs and stops it on leaving its block (also on
Ctrl-C: the caller sees ``KeyboardInterrupt`` after the programs are stopped);
:func:`gdb_argv` is the debugger's command line for a session; :func:`run_gdb` runs it,
interactively or with ``--batch FILE`` (then gdb's exit status is the command's).
The server programs run in a session of their own (``setsid``), so a Ctrl-C typed at
gdb to interrupt the target reaches gdb only, never QEMU or the probe's server.
"""

from __future__ import annotations

import shlex
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mpforge.core.config import DebugDef, PortDef
from mpforge.core.errors import ConfigError, DeviceError
from mpforge.core.executor import Executor, Running
from mpforge.core.project import Project, Target
from mpforge.device.runners.openocd import openocd_config
from mpforge.device.runners.pyocd import pyocd_options

Way = Literal["emulated", "host", "probe"]

#: seconds a gdb server (QEMU, OpenOCD, pyOCD) has to come up
SERVER_WAIT = 15.0

#: QEMU's gdb stub on a unix socket (``{socket}``), the CPU halted until gdb says continue
QEMU_GDB_STUB = " -chardev socket,path={socket},server=on,wait=off,id=mpforge-gdb -gdb chardev:mpforge-gdb -S"


@dataclass(frozen=True)
class DebugPlan:
    """What ``invoke debug`` builds and how it reaches it (see the module docstring)."""

    target: Target
    way: Way
    spec: DebugDef
    #: the emulator's command, ``{dist}`` still to fill (emulated only)
    emulator: str = ""
    #: the gdb server (probe only): ``openocd`` or ``pyocd``
    server: str = ""

    def elf(self) -> Path:
        """The file gdb reads: ``[debug] elf`` of the target's ``dist/`` folder."""
        return self.target.dist_dir / self.spec.elf


def debug_spec(port: PortDef) -> DebugDef:
    """The port's ``[debug]``, or a :class:`ConfigError` naming the ports that have one."""
    if not port.debug:
        raise ConfigError(f"port '{port.name}' declares no debugger",
                          f"add [debug] to ports/{port.name}.toml (gdb, elf), as stmhal.toml and unix.toml do")
    return port.debug


def default_board(port: PortDef) -> str:
    """The board ``invoke debug`` takes without ``--board``: the emulator's, when the port
    runs under QEMU (nothing to plug in), else the port's default."""
    emulator = port.test.emulators.get("qemu")
    return (emulator.board if emulator and emulator.board else port.default_board) if port.has_boards else ""


def plan(target: Target, probe: str | None = None) -> DebugPlan:
    """How to debug ``target``: emulated, on the host, or through a probe (``probe``:
    ``openocd``/``pyocd``, default the port's ``[debug] server``)."""
    port = target.port
    spec = debug_spec(port)
    emulator = port.test.emulators.get("qemu")
    if probe is None and emulator is not None and (emulator.board or port.default_board) == target.board:
        return DebugPlan(target, "emulated", spec, emulator=emulator.command)
    server = probe or spec.server
    if not server:
        if port.has_boards:
            raise ConfigError(f"{target.name} runs neither under QEMU nor through a probe mpforge knows",
                              f"declare [debug] server and its probe in ports/{port.name}.toml")
        return DebugPlan(target, "host", spec)
    if server not in ("openocd", "pyocd"):
        raise ConfigError(f"--probe {server}: not a gdb server mpforge runs", "use openocd or pyocd")
    if getattr(spec, server) is None:
        raise ConfigError(f"port '{port.name}' declares no {server} probe",
                          f"add [debug.{server}] to ports/{port.name}.toml")
    return DebugPlan(target, "probe", spec, server=server)


# --- the running session -------------------------------------------------------------

@dataclass
class DebugSession:
    """What :func:`session` started: where gdb connects, and the REPL's pty (emulated)."""

    plan: DebugPlan
    #: gdb's connect command (``target remote S``); "" on the host (gdb runs the program)
    connect: str = ""
    pty: str = ""
    programs: list[Running] = field(default_factory=list)


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick), for a probe's gdb server."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(address: str | tuple[str, int], program: Running, log: Path | None,
                   seconds: float = SERVER_WAIT) -> None:
    """Wait until the server listens: a unix socket path exists (QEMU's stub is not
    connected to, which would be a gdb session of its own), or a TCP address accepts a
    connection (closed at once: OpenOCD and pyOCD take the next); a :class:`DeviceError`
    with the server's last output when it ends or is too slow first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if program.poll() is not None:
            break
        if isinstance(address, str):
            if Path(address).exists():
                return
            time.sleep(0.05)
            continue
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.connect(address)
                return
            except OSError:
                pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-1500:] if log and log.exists() else ""
    ended = program.poll() is not None
    raise DeviceError(f"{program.what} {'ended' if ended else 'did not listen'} before gdb could connect"
                      + (f" (exit status {program.returncode})" if ended else f" within {seconds:g} s"),
                      "is the probe connected and powered? (see the server's output below)"
                      if program.what in ("openocd", "pyocd") else "see the output below", tail)


def _in_own_session(argv: list[str]) -> list[str]:
    """``argv`` run through ``setsid``: a Ctrl-C typed at gdb does not reach it."""
    return ["setsid", *argv]


@contextmanager
def session(project: Project, debug_plan: DebugPlan, *, probe_serial: str = "",
            executor: Executor | None = None) -> Iterator[DebugSession]:
    """Start what ``debug_plan`` needs (QEMU, or the probe's gdb server; nothing on the
    host) and stop all of it on leaving the block, whatever ends it."""
    executor = executor if executor is not None else project.executor
    target = debug_plan.target
    elf = debug_plan.elf()
    if not executor.dry_run and not elf.is_file():
        raise DeviceError(f"{elf.name} is not in dist/{target.name}",
                          f"check [debug] elf in ports/{target.port.name}.toml")
    with ExitStack() as stack:
        if debug_plan.way == "host":
            yield DebugSession(debug_plan)
            return
        if debug_plan.way == "emulated":
            from mpforge.device.spec import ExecPty
            from mpforge.device.transport import start_pty_program

            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mpforge-gdb-")))
            sock = folder / "gdb.sock"
            command = (debug_plan.emulator.replace("{dist}", str(target.dist_dir))
                       + QEMU_GDB_STUB.format(socket=sock))
            if executor.dry_run:
                executor.log(f"$ setsid {command}")
                yield DebugSession(debug_plan, f"target remote {sock}")
                return
            qemu, pty = start_pty_program(ExecPty(shlex.join(_in_own_session(shlex.split(command)))),
                                          SERVER_WAIT, executor)
            stack.callback(qemu.stop)
            wait_listening(str(sock), qemu, None)
            yield DebugSession(debug_plan, f"target remote {sock}", pty, [qemu])
            return
        port = free_port()
        argv = server_argv(debug_plan, port, probe_serial)
        log = target.build_dir / "debug-server.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        server = executor.start(_in_own_session(argv), stdout="log", log_file=log, what=debug_plan.server,
                                hint=_SERVER_INSTALL[debug_plan.server])
        stack.callback(server.stop)
        if not server.dry_run:
            wait_listening(("127.0.0.1", port), server, log)
        yield DebugSession(debug_plan, f"target extended-remote 127.0.0.1:{port}", programs=[server])


_SERVER_INSTALL = {"openocd": "apt-get install openocd",
                   "pyocd": "pip install pyocd (then `pyocd pack install CHIP`)"}


def server_argv(debug_plan: DebugPlan, port: int, probe_serial: str = "") -> list[str]:
    """The probe's gdb server listening on ``port`` of this machine only, through the
    probe ``probe_serial`` (else the one attached)."""
    spec = debug_plan.spec
    if debug_plan.server == "openocd":
        assert spec.openocd is not None
        return ["openocd", *openocd_config(spec.openocd, probe_serial),
                "-c", "bindto 127.0.0.1", "-c", f"gdb_port {port}",
                "-c", "telnet_port disabled", "-c", "tcl_port disabled"]
    assert spec.pyocd is not None
    return ["pyocd", "gdbserver", "--no-wait", *pyocd_options(spec.pyocd, probe_serial),
            "--port", str(port), "--telnet-port", "0"]


def gdb_argv(project: Project, debug_session: DebugSession, batch: Path | None = None) -> list[str]:
    """gdb's command line: the ELF, the sources mapped to the checkout, the connection
    (or, on the host, the program to run), then ``batch``'s commands and exit
    (``-batch``: gdb's exit status is that of the script's last command)."""
    debug_plan = debug_session.plan
    root = project.root
    argv = [debug_plan.spec.gdb, "-q"]
    if batch is not None:
        argv += ["-batch", "-nx"]  # a script's result must not depend on the user's ~/.gdbinit
    argv += ["-ex", f"set substitute-path . {root}", "-ex", f"directory {root}"]
    if debug_plan.way == "host":
        argv += ["-ex", f"file {debug_plan.elf()}"]
    else:
        # a firmware ELF carries no program to run: only its symbols and debug info
        argv += ["-ex", f"file {debug_plan.elf()}", "-ex", debug_session.connect]
    if batch is not None:
        argv += ["-x", str(batch)]
    return argv


def check_tools(project: Project, debug_plan: DebugPlan) -> None:
    """The debugger and the probe's server are installed, else a :class:`MissingTool`
    naming their Debian package (``toolchains/host-tools.toml``)."""
    from mpforge.firmware.toolchain import find_tool

    names = [debug_plan.spec.gdb, *([debug_plan.server] if debug_plan.server else [])]
    for name in names:
        tool = project.catalog.tools.get(name)
        if tool is None:
            raise ConfigError(f"ports/{debug_plan.target.port.name}.toml: unknown host tool '{name}' in [debug]",
                              "define it in toolchains/host-tools.toml")
        find_tool(tool, project.executor)


@dataclass(frozen=True)
class FlashUse:
    """How much of one flash region of the board's linker script a firmware fills."""

    origin: int
    size: int
    used: int

    def __str__(self) -> str:
        return (f"flash at {self.origin:#010x}: {self.used:,} of {self.size:,} bytes "
                f"({100 * self.used / self.size:.1f}%)")


def flash_use(debug_plan: DebugPlan) -> list[FlashUse]:
    """The firmware's use of each flash region it loads into (a ``-O0`` build is bigger).

    The linker refuses a firmware that overflows a region; this shows how close one
    comes. Each loaded section (``objdump -h``: CONTENTS, ALLOC, LOAD, by its load
    address, so ``.data``'s initial values count where they are stored) goes to the
    smallest flash region of the board's linker script that holds it. Empty for a
    host program, or a port whose data names no linker script."""
    from mpforge.device.runners.dfu import flash_regions

    target = debug_plan.target
    if debug_plan.way == "host" or not (target.port.flash.ld_file or target.port.flash.ld_file_var):
        return []
    regions = sorted(flash_regions(target), key=lambda region: region[1])
    objdump = f"{target.toolchain.cross_compile}objdump"
    table = target.project.executor.output([objdump, "-h", str(debug_plan.elf())], what=objdump)
    used: dict[tuple[int, int], int] = {}
    lines = table.splitlines()
    for header, flags in zip(lines, lines[1:]):
        words = header.split()
        if len(words) < 7 or not words[0].isdigit() or "LOAD" not in flags:
            continue
        size, lma = int(words[2], 16), int(words[4], 16)
        region = next((r for r in regions if r[0] <= lma and lma + size <= r[0] + r[1]), None)
        if region is not None and size:
            used[region] = used.get(region, 0) + size
    return [FlashUse(origin, size, total) for (origin, size), total in sorted(used.items())]


def check_batch(path: str) -> Path:
    """``--batch FILE``: an existing, readable gdb script."""
    batch = Path(path)
    if not batch.is_file():
        raise ConfigError(f"no gdb script {path}", "pass --batch FILE, a file of gdb commands")
    return batch.resolve()


def start_gdb(project: Project, argv: list[str], *, interactive: bool,
              executor: Executor | None = None) -> Running:
    """Start gdb in the checkout (relative source paths resolve there), on this terminal;
    the caller waits for it (:meth:`Running.wait`) and stops it on the way out."""
    executor = executor if executor is not None else project.executor
    return executor.start(argv, cwd=project.root, stdin="inherit" if interactive else "devnull",
                          stdout="inherit", what=Path(argv[0]).name,
                          hint="apt-get install gdb-multiarch (gdb for host programs)")
