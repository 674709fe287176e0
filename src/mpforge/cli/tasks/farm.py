"""``invoke farm``: start, stop and look at a local labgrid farm of emulated pyboards.

``invoke farm --start --boards 3`` builds the port's emulated board if ``dist/`` lacks
it, then starts the farm of :mod:`mpforge.device.farm` (QEMU boards, a labgrid
coordinator and exporter, the power service) and prints the ``LG_COORDINATOR`` line for
other shells; ``invoke farm --stop`` ends all of it; ``invoke farm`` (or ``--status``)
shows what runs and who holds which place.

``--status`` takes no lock (it changes nothing), so it answers while a test run holds
the checkout.
"""

from __future__ import annotations

import sys

from invoke import Context, Exit

from mpforge.cli import framework as fw
from mpforge.cli.framework import task
from mpforge.cli.ui import Console
from mpforge.core.errors import ConfigError, UsageError
from mpforge.device import emulate as emulate_mod
from mpforge.device import farm as farm_mod
from mpforge.firmware.selection import select


@task(shared=("mirror",), help=dict(
    start="build the emulated board if needed, then start the farm",
    stop="stop every process of the farm (boards, coordinator, exporter, power service)",
    status="show what runs and who holds which place (the default)",
    boards="how many emulated boards --start runs (default 3)",
    port="the port whose emulated board the farm runs (default stmhal: PYBV10_QEMU)"))
def farm(c: Context, start: bool = False, stop: bool = False, status: bool = False, boards: int = 3,
         port: str = "stmhal") -> None:
    """A local labgrid farm of emulated pyboards: --start, --stop, --status (the default)."""
    if start + stop + status > 1:
        raise UsageError("farm: --start, --stop and --status go alone", "give one of --start, --stop, --status")
    verbose = fw.options().verbose
    if start:
        _start(port, boards)
    elif stop:
        console = Console(verbose=verbose)
        project = fw.checkout()
        stopped = farm_mod.stop(project.root, note=console.info)
        console.ok(f"farm stopped ({', '.join(stopped)})" if stopped else "no farm runs here")
    else:
        _status(verbose)


def _start(port: str, boards: int) -> None:
    project = fw.checkout()
    console = fw.console_of(project)
    pipeline = fw.pipeline(project)
    chosen = select(project, port)
    if len(chosen.ports) != 1:
        raise ConfigError("invoke farm runs one port's emulated board", "give one --port")
    pipeline.tree(chosen.ports)  # the emulated board may come from the patch series
    plan = emulate_mod.plan(project, chosen.ports[0])
    result = pipeline.build_one(plan.target)
    command = plan.command.replace("{dist}", str(result.dist_dir)) + farm_mod.QEMU_EXTRA
    fw.release_checkout()  # the farm only reads dist/: other commands may use the checkout
    state = farm_mod.start(project.root, command, boards, note=console.detail)
    _show(console, farm_mod.status(project.root))
    console.ok(f"farm of {boards} {plan.target.board} board(s) running; clients: "
               f"export LG_COORDINATOR={state.coordinator} (from this checkout mpforge finds it by "
               "itself); `invoke farm --stop` ends it")


def _status(verbose: bool) -> None:
    console = Console(verbose=verbose)
    project = fw.checkout()
    found = farm_mod.status(project.root)
    if found is None:
        console.info("no farm runs here (`invoke farm --start --boards N` starts one)")
        return
    _show(console, found)
    if not found.healthy:
        dead = [role for role, alive in found.alive.items() if not alive]
        console.error(f"farm: not running: {', '.join(dead)} (`invoke farm --stop`, then --start)")
        raise Exit(code=1)
    console.ok(f"farm running: LG_COORDINATOR={found.state.coordinator}")


def _show(console: Console, found: farm_mod.FarmStatus | None) -> None:
    if found is None:
        return
    rows = []
    for board in found.state.boards:
        power = found.powered.get(board.place)
        rows.append((board.place, ",".join(f"{k}={v}" for k, v in found.state.tags.items()),
                     found.holders.get(board.place) or "free",
                     "-" if power is None and not board.qmp else ("on" if power else "off"),
                     board.pty))
    console.table(f"farm at {found.state.coordinator}", ["place", "tags", "held by", "power", "pty"], rows)
    for process in found.state.processes:
        console.detail(f"{process.role}: pid {process.pid}, "
                       f"{'running' if found.alive.get(process.role) else 'NOT running'}, log {process.log}")
    sys.stdout.flush()
