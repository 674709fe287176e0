"""The OpenOCD runner: writes the board's Intel HEX file over SWD through a debug probe
(ST-Link, CMSIS-DAP), with the configs of the port's ``[debug.openocd]``.

Its checks are :mod:`.swd`'s: an Intel HEX file inside the board's flash, through the
probe ``--device probe:SERIAL`` names (``adapter serial``), never another when several
are attached. ``openocd ... -c "program FILE verify reset exit"`` erases the sectors
it writes, writes, reads back and starts the firmware.
"""

from __future__ import annotations

from pathlib import Path

from mpforge.core.config import OpenOcdDef
from mpforge.core.project import Target
from mpforge.device.runners.base import DeployError, FlashJob, Runner, register
from mpforge.device.runners.swd import check_hex_in_flash, job_debug, prepare_swd
from mpforge.device.runners.teensy import INTEL_HEX
from mpforge.device.spec import DeviceSpec


def openocd_config(spec: OpenOcdDef, serial: str = "") -> list[str]:
    """OpenOCD's options that reach the board: the probe's config, its serial (when one is
    named: that probe and no other), the chip's config, then the port's own commands.

    ``adapter serial`` must come after the interface config (which selects the adapter
    driver) and before ``init``; the gdb server of :mod:`mpforge.device.debug` starts
    OpenOCD with the same options."""
    argv = ["-f", spec.interface]
    if serial:
        argv += ["-c", f"adapter serial {serial}"]
    argv += ["-f", spec.target]
    for command in spec.commands:
        argv += ["-c", command]
    return argv


@register
class OpenOcd(Runner):
    """``openocd``: ``program`` (erase, write, verify, reset) through the port's probe."""

    name, program, install = "openocd", "openocd", "apt-get install openocd"
    writes = (INTEL_HEX,)

    def prepare(self, target: Target, job: FlashJob, device: DeviceSpec | None) -> FlashJob:
        return prepare_swd("openocd", target, job, device)

    def commands(self, job: FlashJob) -> list[list[str]]:
        spec = job_debug(job, self.name).openocd
        if spec is None:
            raise DeployError("runner openocd needs [debug.openocd] of the port", "add it to the port's data")
        # OpenOCD reads -c arguments as Tcl: a path with a space or brace would break the word
        path = str(job.artifact)
        if any(c in path for c in ' {}"[]$\\'):
            raise DeployError(f"openocd cannot take the path {path!r} in its program command",
                              "copy the file to a path without spaces, braces or quotes")
        return [["openocd", *openocd_config(spec, job.probe_serial),
                 "-c", f"program {path} verify reset exit"]]

    def validate(self, target: Target, path: Path) -> None:
        check_hex_in_flash(target, path)
