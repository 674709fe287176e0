"""What every flash runner shares: the :class:`Runner` base class, the
:class:`FlashJob` it writes, and the registry that names the runners.

A runner is data first: its class attributes declare what it needs (a board in
DFU mode, a serial port), what it can do (erase, write one chosen DFU device)
and which kinds of file it writes. :mod:`mpforge.device.deploy` reads those
declarations to plan a flash; a runner's own code only builds argv lists
(:meth:`Runner.commands`, pure) and checks a file's content
(:meth:`Runner.validate`).
"""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from mpforge.core.config import DebugDef, PortDef
from mpforge.core.errors import DeployError, UnknownRunner
from mpforge.core.project import Target
from mpforge.device.spec import DeviceSpec


@dataclass(frozen=True)
class ArtifactKind:
    """A kind of firmware file a runner writes: what it is, and the suffix its files carry.

    The suffix is how a port's dist artifact is matched to a runner; a file's
    content is what :meth:`Runner.validate` checks (``--file`` may carry any name).
    """

    description: str  # "DfuSe file"
    suffix: str  # ".dfu"

    def __str__(self) -> str:
        return f"{self.description} ({self.suffix})"


@dataclass
class FlashJob:
    """Everything a runner needs to write one artifact."""

    artifact: Path
    usb_id: str = ""  # "0483:df11"
    serial: str = ""  # a serial port, for runners that flash over one
    baud: int = 115200
    erase: bool = False
    mcu: str = ""
    offset: str = "0"
    tree: Path | None = None
    dfu_path: str = ""  # the one DFU device to write (dfu-util -p), when known
    dfu_serial: str = ""  # ... or its serial number (dfu-util -S)
    probe_serial: str = ""  # the one SWD probe to write through (its USB serial), when known
    debug: DebugDef | None = None  # the port's [debug]: the probe's configs (SWD runners)


class Runner:
    """One flashing tool. Subclasses declare what they need and build argv lists.

    The declarations (class attributes) are what the deploy flow reads:

    - ``name``: the name ``[flash] runner`` and ``--runner`` use;
    - ``program``: the executable that must be on PATH (see :meth:`available`);
    - ``install``: one line telling the user how to get it;
    - ``needs_dfu_device``: the board must be in its DFU bootloader (found by USB id);
    - ``can_pick_dfu_device``: it writes one chosen DFU device (else the first it finds,
      so the flow refuses when several are attached);
    - ``needs_serial``: it flashes over a serial port (``--device``);
    - ``can_erase``: it can erase the whole flash first (``--erase``);
    - ``writes``: the kinds of file it writes.
    """

    name: ClassVar[str]
    program: ClassVar[str]
    install: ClassVar[str]
    needs_dfu_device: ClassVar[bool] = False
    can_pick_dfu_device: ClassVar[bool] = False
    needs_serial: ClassVar[bool] = False
    can_erase: ClassVar[bool] = False
    writes: ClassVar[tuple[ArtifactKind, ...]] = ()

    def available(self) -> bool:
        """Whether the tool is installed here."""
        return shutil.which(self.program) is not None

    def commands(self, job: FlashJob) -> list[list[str]]:
        """The argv lists that write ``job`` (pure: nothing is run)."""
        raise NotImplementedError

    def validate(self, target: Target, path: Path) -> None:
        """Refuse a file that is not an artifact this runner can write to ``target``."""

    def writes_file_named(self, name: str) -> bool:
        """Whether a file called ``name`` is of a kind this runner writes (by its suffix)."""
        return any(name.endswith(kind.suffix) for kind in self.writes)

    def artifact_name(self, port: PortDef) -> str:
        """The file of ``dist/<target>/`` this runner writes for ``port``: ``[flash] artifact``
        when it is of a kind the runner writes, else the port's first artifact that is
        (an SWD runner writes stmhal's ``firmware.hex``, not the ``.dfu`` DFU writes); else
        ``[flash] artifact``, which the deploy flow then refuses, naming the kinds."""
        wanted = port.flash.artifact
        if not wanted or self.writes_file_named(wanted) or not self.writes:
            return wanted
        return next((a.name for a in port.artifacts if a.dist and self.writes_file_named(a.name)), wanted)

    def prepare(self, target: Target, job: FlashJob, device: DeviceSpec | None) -> FlashJob:
        """The job completed with what this runner needs of the target and ``--device``
        (an SWD runner: the probe's configs and serial); the default needs nothing more."""
        return job

    def check(self, job: FlashJob) -> None:
        """Refuse a job that asks for what this runner cannot do or lacks what it needs."""
        if job.erase and not self.can_erase:
            raise DeployError(f"runner {self.name} cannot erase", "drop --erase")
        if self.needs_serial and not job.serial:
            raise DeployError(f"runner {self.name} flashes over a serial port",
                              "pass --device /dev/ttyUSB0 (or another port)")


#: every runner by its name; filled by :func:`register` as the family modules load
RUNNERS: dict[str, type[Runner]] = {}


def register(runner: type[Runner]) -> type[Runner]:
    """Class decorator: make ``runner`` known by its ``name`` (names are unique)."""
    if runner.name in RUNNERS:
        raise ValueError(f"two runners are named {runner.name!r}")
    RUNNERS[runner.name] = runner
    return runner


def runner_named(name: str, *, file: str = "", key: str = "") -> Runner:
    """The runner called ``name``, or an :class:`UnknownRunner` naming the valid ones and
    the nearest to ``name``.

    ``file`` and ``key`` say where the name was read (``stmhal.toml``, ``[flash] runner``),
    so that a typo in a port's data names its place, as unknown keys do.
    """
    if name in RUNNERS:
        return RUNNERS[name]()
    where = f"{file}: " if file else ""
    near = difflib.get_close_matches(name, list(RUNNERS), n=1)
    guess = f"did you mean '{near[0]}'? " if near else ""
    raise UnknownRunner(f"{where}unknown runner '{name}'" + (f" in {key}" if key else ""),
                        f"{guess}runners: {', '.join(sorted(RUNNERS))}")
