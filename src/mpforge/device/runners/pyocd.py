"""The pyOCD runner: writes the board's Intel HEX file over SWD through a CMSIS-DAP or
ST-Link probe, for the chip of the port's ``[debug.pyocd]``.

Its checks are :mod:`.swd`'s (an Intel HEX file inside the board's flash, the probe
named by ``--device probe:SERIAL``, which pyOCD calls its unique ID, ``-u``). pyOCD
waits for a probe to be plugged in unless told not to: ``--no-wait`` makes a missing
probe an error at once. ``--erase`` erases the whole chip first (``pyocd erase --chip``).
Chips pyOCD has no built-in support for (the STM32F405, the MK20DX256) come from their
CMSIS pack: ``pyocd pack install CHIP`` once.
"""

from __future__ import annotations

from pathlib import Path

from mpforge.core.config import PyOcdDef
from mpforge.core.project import Target
from mpforge.device.runners.base import DeployError, FlashJob, Runner, register
from mpforge.device.runners.swd import check_hex_in_flash, job_debug, prepare_swd
from mpforge.device.runners.teensy import INTEL_HEX
from mpforge.device.spec import DeviceSpec


def pyocd_options(spec: PyOcdDef, serial: str = "") -> list[str]:
    """pyOCD's options that reach the board: the chip (``-t``), the probe (``-u``, when
    named), the port's own options; shared with the gdb server (:mod:`mpforge.device.debug`)."""
    return ["-t", spec.target, *(["-u", serial] if serial else []), *spec.options]


@register
class PyOcd(Runner):
    """``pyocd load``: erase what it writes, write, verify, reset; ``--erase``: the whole chip."""

    name, program, install = "pyocd", "pyocd", "pip install pyocd (and `pyocd pack install CHIP`)"
    can_erase = True
    writes = (INTEL_HEX,)

    def prepare(self, target: Target, job: FlashJob, device: DeviceSpec | None) -> FlashJob:
        return prepare_swd("pyocd", target, job, device)

    def commands(self, job: FlashJob) -> list[list[str]]:
        spec = job_debug(job, self.name).pyocd
        if spec is None:
            raise DeployError("runner pyocd needs [debug.pyocd] of the port", "add it to the port's data")
        options = pyocd_options(spec, job.probe_serial)
        erase = [["pyocd", "erase", "--chip", "--no-wait", *options]] if job.erase else []
        return erase + [["pyocd", "load", "--no-wait", *options, "--format", "hex", str(job.artifact)]]

    def validate(self, target: Target, path: Path) -> None:
        check_hex_in_flash(target, path)
