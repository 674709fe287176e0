"""The firmware a test run tests, and the check that a board runs it.

A run's verdicts are tied to an artifact: :func:`firmware_of` reads ``dist/<target>/``'s
manifest (artifact, sha256, version string, tree fingerprint) and every result file
names it. Before a device run, :func:`check_boards` reads each board's banner and
refuses, in one line, a board whose banner does not name that firmware's version.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpforge.core.config import PortDef
from mpforge.core.errors import TransportError
from mpforge.core.project import Project
from mpforge.device import boards as boards_mod
from mpforge.device.boards import Board


@dataclass(frozen=True)
class Firmware:
    """What a run tested: the artifact of ``dist/<target>/`` (its name and sha256, from the
    manifest), its version string (the manifest's ``version``, which the board's banner
    names; ``tree.describe`` for a manifest without one), the tree's ``git describe``
    and its fingerprint (pin plus patch series)."""

    target: str
    artifact: str
    sha256: str
    version: str
    fingerprint: str
    describe_: str = ""

    def describe(self) -> dict[str, str]:
        """As the result files name it."""
        return {"firmware-target": self.target, "firmware-artifact": self.artifact,
                "firmware-sha256": self.sha256, "firmware-version": self.version,
                "tree-describe": self.describe_, "tree-fingerprint": self.fingerprint}


def firmware_of(project: Project, target_name: str, artifact: str = "") -> Firmware | None:
    """The firmware of ``dist/<target_name>/`` from its manifest (None without one):
    ``artifact`` names the file (default: the first the manifest lists); its sha256 is
    the manifest's (the file's own when the manifest does not list it)."""
    from mpforge.core.state import read_json
    from mpforge.firmware.manifest import sha256_file

    folder = project.dist_root / target_name
    manifest = read_json(folder / "manifest.json")
    if not manifest:
        return None
    listed = {a.get("name", ""): a.get("sha256", "") for a in manifest.get("artifacts") or []
              if isinstance(a, dict)}
    name = artifact or next(iter(listed), "")
    digest = listed.get(name) or (sha256_file(folder / name) if name and (folder / name).is_file() else "")
    tree = manifest.get("tree") or {}
    described = str(tree.get("describe", ""))
    version = manifest.get("version") if isinstance(manifest.get("version"), str) else ""
    return Firmware(target_name, name, digest, version or described, str(tree.get("fingerprint", "")), described)


class FirmwareMismatch(TransportError):
    """The board runs another firmware than the one in ``dist/``."""


def check_banner(board_name: str, banner: str, firmware: Firmware) -> None:
    """Refuse, in one line, a board whose banner does not name ``firmware``'s version."""
    if firmware.version and firmware.version not in banner:
        raise FirmwareMismatch(
            f"{board_name} runs '{banner or 'no MicroPython banner'}', not {firmware.version} "
            f"(dist/{firmware.target})",
            "flash it (invoke deploy --device ...), or build what it runs; the board must run "
            "the firmware whose verdicts these are")


def device_firmware(project: Project, port: PortDef, default: str, tags: list[dict[str, str]]) -> Firmware | None:
    """The firmware a device run checks boards against: the places' ``board`` tag's target
    when they all name one that was built, else ``default``'s."""
    named = {t.get("board", "") for t in tags}
    candidates = [port.target_name(next(iter(named)))] if len(named) == 1 and "" not in named else []
    flash = port.flash.artifact if port.flash else ""
    for name in [*candidates, default]:
        found = firmware_of(project, name, flash or "")
        if found is not None:
            return found
    return None


def check_boards(project: Project, held: list[Board], firmware: Firmware | None) -> None:
    """Read each board's banner and refuse one that does not run ``firmware`` (an
    ``execpty:`` board is the emulator just built: not opened twice)."""
    if firmware is None:
        project.console.warn("no manifest in dist/ for the firmware under test: "
                             "the boards' firmware is not checked (build it, or deploy it, first)")
    for board in held:
        if board.restarts_itself:
            continue
        banner = boards_mod.read_banner(board)
        if firmware is not None:
            check_banner(board.name, banner, firmware)
