"""``invoke farm``: a local labgrid farm of emulated pyboards, to try the farm and for CI.

``invoke farm --start --boards 3`` starts, all on 127.0.0.1 on free ports, N QEMU
pyboards (``ports/stmhal.toml``'s emulator command, started stopped with a QMP socket
each, their UARTs on ptys), a labgrid coordinator, a power service (labgrid's ``rest``
power model backed by QMP) and a labgrid exporter, and creates places ``pyb-1`` ..
``pyb-N`` tagged ``board=PYBV10_QEMU``. Clients reach it with ``LG_COORDINATOR`` (the
address ``status`` prints) or, from this checkout, without it
(:func:`mpforge.device.labgrid.coordinator_address`).

The package, one job a module:

- :mod:`.state`: what the farm leaves in ``.mpforge/farm/`` and how any command reads it;
- :mod:`.supervisor`: the process that starts, watches and stops the farm's programs
  (through :mod:`mpforge.core.executor`);
- :mod:`.power`: the boards' power switch (QMP) and its HTTP service;
- :mod:`.lab`: the farm as a labgrid lab (exporter configuration, ser2net, places);
- :mod:`.control`: ``start``, ``stop`` and ``status``, as ``invoke farm`` calls them.

The board command is any program that announces its pty as QEMU does ("char device
redirected to /dev/pts/N"); ``{qmp}`` in it is replaced by the board's QMP socket path
(only boards with one get a power port), ``{index}`` by its number. The tests use the
fake boards of ``tests/fakes/`` this way.
"""

from mpforge.device.farm.control import start, status, stop
from mpforge.device.farm.lab import exporter_config, ser2net_path
from mpforge.device.farm.power import PowerSwitch, QmpError, qmp, qmp_running, serving
from mpforge.device.farm.state import (
    EXPORTER_NAME,
    QEMU_EXTRA,
    STATE_DIR,
    FarmBoard,
    FarmProcess,
    FarmState,
    FarmStatus,
    free_port,
    load_state,
    running_coordinator,
    supervisor_pid,
)

__all__ = [
    "EXPORTER_NAME", "QEMU_EXTRA", "STATE_DIR", "FarmBoard", "FarmProcess", "FarmState", "FarmStatus", "PowerSwitch",
    "QmpError", "exporter_config", "free_port", "load_state", "qmp", "qmp_running", "running_coordinator",
    "ser2net_path", "serving", "start", "status", "stop", "supervisor_pid",
]
