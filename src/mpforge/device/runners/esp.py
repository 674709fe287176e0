"""The ESP8266 runner (``esptool.py``, over a serial port) and the check of the flash
image it writes. (Not named ``esptool.py``: that would shadow the tool's own module.)"""

from __future__ import annotations

from pathlib import Path

from mpforge.core.project import Target
from mpforge.device.runners.base import ArtifactKind, DeployError, FlashJob, Runner, register

ESP_IMAGE = ArtifactKind("ESP8266 flash image", ".bin")


@register
class Esptool(Runner):
    """``esptool.py write_flash`` at the port's offset; ``erase_flash`` first with ``--erase``."""

    name, program, install = "esptool", "esptool.py", "pip install 'esptool<5'"
    needs_serial = True
    can_erase = True
    writes = (ESP_IMAGE,)

    def commands(self, job: FlashJob) -> list[list[str]]:
        base = ["esptool.py", "--port", job.serial, "--baud", str(job.baud)]
        erase = [base + ["erase_flash"]] if job.erase else []
        return erase + [base + ["write_flash", "--flash_size=detect", job.offset, str(job.artifact)]]

    def validate(self, target: Target, path: Path) -> None:
        check_esp_image(path.read_bytes(), path.name)


def check_esp_image(data: bytes, what: str) -> None:
    """An ESP8266 flash image (what ``firmware-combined.bin`` starts with): magic 0xE9, then
    its segments, each inside the file."""
    def bad(problem: str) -> DeployError:
        return DeployError(f"{what} is not an ESP8266 firmware image: {problem}",
                           "flash the firmware-combined.bin `invoke build --port esp8266` makes")

    if len(data) < 8 or data[0] != 0xE9:
        raise bad("no image header (magic byte 0xE9)")
    segments, offset = data[1], 8
    if not 1 <= segments <= 16:
        raise bad(f"{segments} segments")
    for _ in range(segments):
        if offset + 8 > len(data):
            raise bad("truncated segment header")
        size = int.from_bytes(data[offset + 4:offset + 8], "little")
        offset += 8 + size
        if offset > len(data):
            raise bad("a segment runs past the end of the file")
