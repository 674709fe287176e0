"""The Teensy runner (``teensy_loader_cli``) and the check of the Intel HEX file it writes."""

from __future__ import annotations

import re
from pathlib import Path

from mpforge.core.project import Target
from mpforge.device.runners.base import ArtifactKind, DeployError, FlashJob, Runner, register

INTEL_HEX = ArtifactKind("Intel HEX file", ".hex")


@register
class Teensy(Runner):
    """``teensy_loader_cli`` for the port's MCU (``[flash] mcu``); it waits for the button."""

    name, program, install = "teensy", "teensy_loader_cli", "apt-get install teensy-loader-cli"
    writes = (INTEL_HEX,)

    def commands(self, job: FlashJob) -> list[list[str]]:
        return [["teensy_loader_cli", f"--mcu={job.mcu}", "-w", "-v", str(job.artifact)]]

    def validate(self, target: Target, path: Path) -> None:
        check_ihex(path.read_bytes(), path.name)


def check_ihex(data: bytes, what: str) -> None:
    """An Intel HEX file: every record well-formed with its checksum, ending in an EOF record."""
    def bad(problem: str) -> DeployError:
        return DeployError(f"{what} is not an Intel HEX file: {problem}",
                           "flash the .hex file `invoke build` makes for this port")

    try:
        lines = data.decode("ascii").split()
    except UnicodeDecodeError:
        raise bad("not text") from None
    if not lines:
        raise bad("empty")
    for number, line in enumerate(lines, 1):
        if not re.fullmatch(r":(?:[0-9A-Fa-f]{2}){5,}", line):
            raise bad(f"line {number} is not a record")
        record = bytes.fromhex(line[1:])
        if len(record) != record[0] + 5 or sum(record) & 0xFF:
            raise bad(f"line {number}: wrong length or checksum")
        if record[3] == 1:
            return
    raise bad("no end-of-file record")
