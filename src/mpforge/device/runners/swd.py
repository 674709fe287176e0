"""What the SWD runners (:mod:`.openocd`, :mod:`.pyocd`) share: the file they write is an
Intel HEX file whose every byte lands in the board's flash, and the probe they write
through is the one the user named.

The checks are the DFU runners' (:mod:`.dfu`): the file's content, whatever its name,
and its addresses against the flash regions of the board's linker script
(:func:`~.dfu.flash_regions`: ``[flash] ld_file`` or the board's ``ld_file_var``).

The probe: ``--device probe:SERIAL`` names it by its USB serial number (what ``lsusb -v``
calls iSerial, ``pyocd list`` its unique ID); the runner then writes through that
probe and no other. Without one, the runner writes through the one probe attached;
when the USB bus shows several probes (read from sysfs, ``MPFORGE_SYSFS`` in tests),
it refuses before anything is written, naming their serials.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mpforge.core.config import DebugDef
from mpforge.core.environment import environment
from mpforge.core.project import Target
from mpforge.device.runners.base import DeployError, FlashJob
from mpforge.device.runners.dfu import flash_regions
from mpforge.device.runners.teensy import check_ihex
from mpforge.device.spec import DeviceSpec, ProbeSpec

#: USB vendor:product of the usual SWD probes: ST-Link v2, v2-1, v3 (STMicroelectronics),
#: DAPLink/CMSIS-DAP (Arm mbed), J-Link (SEGGER), and the Raspberry Pi debug probe
PROBE_USB_IDS = frozenset({
    "0483:3748", "0483:374b", "0483:374d", "0483:374e", "0483:374f", "0483:3752", "0483:3753",
    "0483:3754", "0d28:0204", "1366:0101", "1366:0105", "1366:1015", "2e8a:000c",
})


def probe_serial(device: DeviceSpec | None) -> str:
    """The probe serial ``--device probe:SERIAL`` names ("" for no device); any other
    device is refused: an SWD runner writes through a probe, not a serial port."""
    if device is None:
        return ""
    if not isinstance(device, ProbeSpec):
        raise DeployError(f"an SWD runner writes through a debug probe, not --device {device}",
                          "name the probe as --device probe:SERIAL (its USB serial: `lsusb -v`, "
                          "`pyocd list`), or leave --device out when one probe is attached")
    return device.serial


def attached_probes() -> list[tuple[str, str]]:
    """``(usb id, serial)`` of every SWD probe on the USB bus, from sysfs (empty without one)."""
    found: list[tuple[str, str]] = []
    devices = environment().sysfs / "bus" / "usb" / "devices"
    if not devices.is_dir():
        return found
    for device in sorted(devices.iterdir()):
        try:
            usb_id = f"{(device / 'idVendor').read_text().strip()}:{(device / 'idProduct').read_text().strip()}"
        except OSError:
            continue
        if usb_id.lower() in PROBE_USB_IDS:
            serial = device / "serial"
            found.append((usb_id, serial.read_text().strip() if serial.exists() else ""))
    return found


def prepare_swd(runner: str, target: Target, job: FlashJob, device: DeviceSpec | None) -> FlashJob:
    """``job`` with the port's ``[debug]`` and the probe's serial; refused when the port
    declares no probe for ``runner`` or several probes are attached and none is named."""
    debug = target.port.debug
    if getattr(debug, runner.replace("-", "_"), None) is None:
        raise DeployError(f"port {target.port.name} declares no {runner} probe",
                          f"add [debug.{runner}] to ports/{target.port.name}.toml (see stmhal.toml)")
    serial = probe_serial(device)
    if not serial:
        probes = attached_probes()
        if len(probes) > 1:
            listed = ", ".join(f"{usb_id} serial {s or '?'}" for usb_id, s in probes)
            raise DeployError(f"{len(probes)} debug probes attached ({listed})",
                              "name the board's probe: --device probe:SERIAL")
    return replace(job, debug=debug, probe_serial=serial)


def job_debug(job: FlashJob, runner: str) -> DebugDef:
    """The job's ``[debug]`` (set by :func:`prepare_swd`), or a :class:`DeployError`."""
    if job.debug is None:
        raise DeployError(f"runner {runner} needs the port's [debug] probe configs",
                          "deploy through `invoke deploy`, which reads them")
    return job.debug


def check_hex_in_flash(target: Target, path: Path) -> None:
    """An Intel HEX file (:func:`~.teensy.check_ihex`) every data byte of which lies in the
    board's flash, read from its linker script."""
    data = path.read_bytes()
    check_ihex(data, path.name)
    flash = flash_regions(target)
    if not flash:
        raise DeployError(f"the flash of {target.name} is not known, so {path.name} cannot be checked",
                          f"name the linker script in [flash] of ports/{target.port.name}.toml "
                          "(ld_file, or ld_file_var for a board's make variable)")
    for start, end in hex_ranges(data):
        if not any(origin <= start and end <= origin + size for origin, size in flash):
            raise DeployError(f"{path.name} writes {start:#010x}..{end:#010x}, outside the flash of "
                              f"{target.name}", "build the firmware for this board (MCU)")


def hex_ranges(data: bytes) -> list[tuple[int, int]]:
    """The address ranges ``[start, end)`` the data records of an Intel HEX file write
    (extended segment and linear addresses applied), adjacent records merged."""
    ranges: list[tuple[int, int]] = []
    base = 0
    for line in data.decode("ascii").split():
        record = bytes.fromhex(line[1:])
        count, offset, kind = record[0], int.from_bytes(record[1:3], "big"), record[3]
        payload = record[4:4 + count]
        if kind == 0 and count:
            start = base + offset
            if ranges and ranges[-1][1] == start:
                ranges[-1] = (ranges[-1][0], start + count)
            else:
                ranges.append((start, start + count))
        elif kind == 2:
            base = int.from_bytes(payload, "big") << 4
        elif kind == 4:
            base = int.from_bytes(payload, "big") << 16
        elif kind == 1:
            break
    return ranges
