"""The CC3200 (WiPy) "runner": no tool is packaged for it, so it explains the documented
procedure instead of guessing one."""

from __future__ import annotations

from mpforge.device.runners.base import ArtifactKind, DeployError, FlashJob, Runner, register

CC3200_IMAGE = ArtifactKind("CC3200 application image", ".bin")


@register
class Cc3200(Runner):
    """No tool is packaged for the CC3200: the documented procedure, not a guess."""

    name, program, install = "cc3200", "", ""
    writes = (CC3200_IMAGE,)

    def available(self) -> bool:
        return True

    def commands(self, job: FlashJob) -> list[list[str]]:
        raise DeployError(
            "no flashing tool for the CC3200 is packaged",
            f"on a running WiPy: ftp to 192.168.1.1 (user micro, password python), "
            f"put {job.artifact.name} into /flash/sys/, then reset; a blank board: TI's "
            f"CCS UniFlash with the serial bootloader (SOP2 jumper)")
