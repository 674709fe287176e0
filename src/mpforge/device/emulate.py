"""``invoke emulate``: a port's firmware running under QEMU, its REPL at hand.

A port that can run emulated says how in ``ports/<port>.toml``::

    [test.emulator.qemu]
    board = "PYBV10_QEMU"     # the variant built for the emulator (optional)
    command = "qemu-system-arm -M netduinoplus2 ... -serial pty -kernel {dist}/firmware.elf"

The same table serves ``invoke test --emulator qemu``. Here the variant is
built (a no-op when ``dist/`` is current), QEMU is started with the UART on a
pty (``-serial pty``: QEMU 7 refuses ``-nographic -serial stdio``, which the
monitor also wants), and the pty is handed to a terminal program or printed
for other clients (``mpremote connect PTY``, the tree's ``tools/pyboard.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mpforge.core.config import PortDef
from mpforge.core.errors import ConfigError
from mpforge.core.executor import Executor, Running
from mpforge.core.project import Project, Target

if TYPE_CHECKING:
    import serial


@dataclass(frozen=True)
class EmulatorPlan:
    """What to build and how to start it."""

    target: Target
    command: str  # with ``{dist}`` still to fill in


@dataclass
class Emulation:
    """A running emulator and the pty its UART is on."""

    process: Running
    pty: str


def plan(project: Project, port: PortDef, emulator: str = "qemu") -> EmulatorPlan:
    """The emulator table of ``port``, or a :class:`ConfigError` naming the ports that have one."""
    emulators = port.test.emulators
    if emulator not in emulators:
        able = sorted(name for name, p in project.catalog.ports.items()
                      if emulator in p.test.emulators)
        raise ConfigError(f"port '{port.name}' has no emulator '{emulator}'",
                          f"ports that run under {emulator}: {', '.join(able) or 'none'}")
    spec = emulators[emulator]
    # the board is the data's word (it may come from the patch series, not yet applied):
    # not checked against the tree's boards/ here; the build checks it after patching
    target = Target(port, spec.board or port.default_board, project.catalog.toolchain_for(port), project)
    return EmulatorPlan(target, spec.command)


@contextmanager
def running(command: str, timeout: float = 15.0, executor: Executor | None = None) -> Iterator[Emulation]:
    """Start ``command`` (which must announce a pty) through ``executor`` (a plain
    :class:`Executor` when None) and stop it on leaving the block."""
    from mpforge.device.spec import ExecPty
    from mpforge.device.transport import start_pty_program

    process, pty = start_pty_program(ExecPty(command), timeout, executor)
    with process:  # Running.stop on the way out: the executor's one stop sequence
        yield Emulation(process, pty)


def attach_terminal(pty: str | serial.SerialBase, greet: bytes = b"") -> None:
    """pyserial's miniterm on ``pty`` until Ctrl-] (needs a terminal on stdin).

    ``pty`` is a path, or a port already open (``invoke repl`` hands over the one it
    brought to the prompt). ``greet`` is sent once the terminal shows what comes in
    (a carriage return: the board prints a fresh prompt).
    """
    import serial
    from serial.tools.miniterm import Miniterm

    port = serial.Serial(pty, 115200, timeout=1) if isinstance(pty, str) else pty
    port.timeout = 1  # miniterm's reader thread blocks in read()
    term = Miniterm(port, echo=False, eol="crlf", filters=["direct"])
    term.exit_character = chr(0x1D)  # Ctrl-]
    term.menu_character = chr(0x14)  # Ctrl-T
    term.set_rx_encoding("UTF-8")
    term.set_tx_encoding("UTF-8")
    term.start()
    if greet:
        port.write(greet)
    try:
        term.join(True)
    except KeyboardInterrupt:
        pass
    term.join()
    term.close()
