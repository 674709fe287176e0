"""USB DFU runners (``dfu-util``, the tree's ``pydfu``) and the checks of the DfuSe
files they write: the file parses, carries the board's USB id, and writes only
into the board's flash (read from its linker script)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mpforge.core.project import Target
from mpforge.device import dfuse
from mpforge.device.runners.base import ArtifactKind, DeployError, FlashJob, Runner, register

DFUSE_FILE = ArtifactKind("DfuSe file", ".dfu")


@register
class DfuUtil(Runner):
    """``dfu-util``: writes the one DFU device named by its USB path or serial number."""

    name, program, install = "dfu-util", "dfu-util", "apt-get install dfu-util"
    needs_dfu_device = True
    can_pick_dfu_device = True
    writes = (DFUSE_FILE,)

    def commands(self, job: FlashJob) -> list[list[str]]:
        # a DfuSe file carries its own addresses; :leave starts the firmware afterwards;
        # -p / -S: that device and no other, whatever else is attached
        which = [*(["-p", job.dfu_path] if job.dfu_path else []),
                 *(["-S", job.dfu_serial] if job.dfu_serial else [])]
        return [["dfu-util", "-a", "0", "-d", job.usb_id, *which, "-s", ":leave", "-D",
                 str(job.artifact)]]

    def validate(self, target: Target, path: Path) -> None:
        check_dfuse(target, path)


@register
class Pydfu(Runner):
    """The tree's ``tools/pydfu.py`` (needs pyusb): writes the first DFU device it finds."""

    name, program, install = "pydfu", sys.executable, "pip install pyusb (pydfu is the tree's tools/pydfu.py)"
    needs_dfu_device = True
    writes = (DFUSE_FILE,)

    def available(self) -> bool:
        try:
            import usb.core  # noqa: F401
        except ImportError:
            return False
        return True

    def commands(self, job: FlashJob) -> list[list[str]]:
        assert job.tree is not None
        return [[sys.executable, str(job.tree / "tools" / "pydfu.py"), "-u", str(job.artifact)]]

    def validate(self, target: Target, path: Path) -> None:
        check_dfuse(target, path)


def _size(text: str) -> int:
    """A linker-script length: 0x100000, 1024K, 1M."""
    if text.strip().lower().startswith("0x"):
        return int(text.strip(), 16)
    match = re.fullmatch(r"(\d+)\s*([KkMm]?)", text.strip())
    if not match:
        raise DeployError(f"cannot read the flash size {text!r}", "check the linker script")
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1 << 20}[match.group(2).lower()]


def flash_regions(target: Target) -> list[tuple[int, int]]:
    """The board's flash, from its linker script (named by the board's make file, or the port)."""
    flash = target.port.flash
    ld = flash.ld_file
    if flash.ld_file_var:
        mk = target.board_folder / "mpconfigboard.mk"  # the tree's, or one outside it (--board-dir)
        text = mk.read_text() if mk.exists() else ""
        # a board built like another includes its make file (PYBV10_QEMU: boards/PYBV10/...)
        for included in re.findall(r"^include\s+(\S+)", text, re.MULTILINE):
            if (target.port_dir / included).is_file():
                text += "\n" + (target.port_dir / included).read_text()
        match = re.search(rf"^{flash.ld_file_var}\s*=\s*(\S+)", text, re.MULTILINE)
        if not match:
            raise DeployError(f"{mk.name} of {target.board} names no {flash.ld_file_var}",
                              "is the tree fetched?")
        ld = match.group(1)
    if not ld:
        return []
    script = (target.port_dir / ld).read_text()
    regions = re.findall(r"FLASH\w*\s*\([^)]*\)\s*:\s*ORIGIN\s*=\s*(0x[0-9a-fA-F]+)\s*,\s*"
                         r"LENGTH\s*=\s*(\w+)", script)
    return [(int(origin, 16), _size(length)) for origin, length in regions]


def check_dfuse(target: Target, path: Path) -> None:
    """A DfuSe file for this board: it parses, carries the board's USB id, and writes
    only into the board's flash (see :mod:`mpforge.device.dfuse`)."""
    usb_id = target.port.flash.usb_id
    vid, pid = (int(x, 16) for x in usb_id.split(":")) if usb_id else (0, 0)
    parsed = dfuse.parse(path.read_bytes(), path.name)
    dfuse.check(parsed, usb_id=(vid, pid), flash=flash_regions(target), what=path.name)
