"""``invoke debug``: build a target if needed and step through it in gdb.

``invoke debug --port stmhal --board PYBV10_QEMU`` starts the emulated pyboard halted
under QEMU, prints the pty of its REPL and opens gdb-multiarch on ``firmware.elf``
connected to QEMU's gdb stub; ``continue`` boots it. ``--port unix`` runs gdb on
``dist/unix/micropython`` (its debug file found beside it). Another board is reached
through its probe's gdb server (``[debug] server`` of the port, or ``--probe``), the
probe named by ``--device probe:SERIAL`` when several are attached. ``--variant debug``
debugs the ``-O0`` build (``dist/<target>-debug``). ``--batch FILE`` runs a gdb script
without a terminal and exits with gdb's status.

The work is :mod:`mpforge.device.debug`'s; this module builds, prints and waits. While
gdb runs on the terminal, Ctrl-C belongs to gdb (it interrupts the program being
debugged); leaving gdb, or Ctrl-C under ``--batch``, stops every program the command
started.
"""

from __future__ import annotations

import sys

from invoke import Context, Exit

from mpforge.cli import framework as fw
from mpforge.cli import signals
from mpforge.cli.framework import task
from mpforge.core.errors import ConfigError, UsageError
from mpforge.core.executor import Running
from mpforge.device import debug as debug_mod
from mpforge.device.runners.swd import probe_serial
from mpforge.firmware.selection import select


@task(shared=("mirror",), help=dict(
    port="the port to debug (default stmhal)",
    board="the board (default: the emulated board of a port that has one, else the port's default)",
    variant="debug another build of the target, e.g. debug (-O0, dist/<target>-debug)",
    batch="run this gdb script without a terminal and exit with gdb's status",
    probe="on hardware: the gdb server, openocd or pyocd (default: [debug] server of the port)",
    device="on hardware: the probe, as probe:SERIAL (its USB serial), when several are attached"))
def debug(c: Context, port: str = "stmhal", board: str | None = None, variant: str | None = None,
          batch: str | None = None, probe: str | None = None, device: str | None = None) -> None:
    """Step through a target in gdb: under QEMU, on the host, or through a debug probe."""
    if batch is None and not sys.stdin.isatty():
        raise UsageError("invoke debug runs gdb on this terminal", "run it on one, or pass --batch FILE")
    project = fw.checkout()
    console = fw.console_of(project)
    script = debug_mod.check_batch(batch) if batch else None
    serial = probe_serial(fw.device_spec(device))
    chosen = select(project, port)
    if len(chosen.ports) != 1:
        raise ConfigError("invoke debug debugs one target", "give one --port")
    port_def = chosen.ports[0]
    debug_mod.debug_spec(port_def)  # a port without [debug] fails before anything is built
    pipeline = fw.pipeline(project)
    pipeline.tree(chosen.ports)  # the emulated board may come from the patch series
    target = select(project, port, board or debug_mod.default_board(port_def) or None,
                    variant=variant).target(pipeline)
    plan = debug_mod.plan(target, probe)
    debug_mod.check_tools(project, plan)
    pipeline.build_one(target)
    for use in debug_mod.flash_use(plan):
        console.info(f"{plan.spec.elf}: {use}")
    fw.release_checkout()  # from here on only dist/ is read: other commands may use the checkout
    with debug_mod.session(project, plan, probe_serial=serial) as session:
        if session.pty:
            console.ok(f"{target.name} halted under QEMU (gdb's `continue` boots it); "
                       f"its REPL is on {session.pty}")
            print(session.pty, flush=True)
        elif plan.way == "probe":
            console.ok(f"{target.name}: {plan.server} serves gdb ({session.connect.split()[-1]})")
        argv = debug_mod.gdb_argv(project, session, script)
        gdb = debug_mod.start_gdb(project, argv, interactive=script is None)
        try:
            status = _wait(gdb, interactive=script is None)
        finally:
            gdb.stop()
    if status:
        raise Exit(code=status)


def _wait(gdb: Running, *, interactive: bool) -> int:
    """gdb's exit status. On the terminal Ctrl-C is gdb's (it interrupts the target), so
    this process ignores it meanwhile; under ``--batch`` it stops the command."""
    if not interactive:
        return gdb.wait() or 0
    with signals.interrupts_to_child():
        return gdb.wait() or 0
