"""Typed errors raised by the mpforge library.

Every error a user can fix is an :class:`MpforgeError` carrying two pieces of
text: ``message`` says what went wrong, ``hint`` says what to do about it.
The library never prints and never exits; only the task layer
(:mod:`mpforge.cli.tasks`) turns these into a one-line message and a non-zero exit
status, with a traceback only under ``--debug``.
"""

from __future__ import annotations


class MpforgeError(Exception):
    """Base class: a problem the user can act on.

    :param message: what went wrong, in one line.
    :param hint: the fix, in one line (may be empty).
    :param details: optional extra lines (e.g. the tail of a failing command's
        output) shown below the message.
    """

    def __init__(self, message: str, hint: str = "", details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def one_line(self) -> str:
        """The message and the hint joined into the single line users see."""
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def __str__(self) -> str:
        return self.one_line()


class ConfigError(MpforgeError):
    """A port, board, toolchain or project definition is missing or malformed."""


class UsageError(MpforgeError):
    """A command line that cannot be carried out as given: options that go alone given
    together, a terminal needed and none there, a confirmation declined."""


class DataFileError(ConfigError):
    """A data file (a port, a toolchain, an app's ``mpforge.toml``) holds a key the model does
    not know, misses a required one, or holds a value of the wrong type: said in one line
    naming the file, the key (a dotted path, ``make.post[0]``), what was expected and what
    was found (see :mod:`mpforge.core.model.loader`)."""

    def __init__(self, file: str, key: str, expected: str, got: str, hint: str = "", *,
                 unknown: bool = False, missing: bool = False) -> None:
        if unknown:
            message = f"{file}: unknown key '{key}'"
        elif missing:
            message = f"{file}: missing required key '{key}': expected {expected}"
        else:
            message = f"{file}: {key}: expected {expected}, got {got}"
        super().__init__(message, hint)
        self.file = file
        self.key = key
        self.expected = expected
        self.got = got


class DeviceSpecError(ConfigError):
    """A ``--device`` value (or ``--farm``) that the device grammar refuses
    (:mod:`mpforge.device.spec`); ``spec`` is the text as given."""

    def __init__(self, spec: str, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.spec = spec


class UnknownTarget(ConfigError):
    """An unknown port or board name was asked for."""


class MissingTool(MpforgeError):
    """A host program or toolchain needed for the job is not installed."""

    def __init__(self, program: str, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.program = program


class CommandFailed(MpforgeError):
    """An external command exited with a non-zero status.

    ``details`` holds the tail of its output so the reason is visible without
    opening the log.
    """

    def __init__(self, message: str, hint: str = "", details: str = "",
                 returncode: int | None = None) -> None:
        super().__init__(message, hint, details)
        self.returncode = returncode


class GitError(MpforgeError):
    """A git operation on the project or the tree failed."""


class OfflineError(GitError):
    """A remote could not be reached and no mirror was configured."""


class DirtyTree(GitError):
    """``micropython/`` has local changes that an operation would discard."""


class PatchError(MpforgeError):
    """The patch series cannot be applied or reverted as asked."""


class BuildFailed(CommandFailed):
    """``make`` failed for a target; ``details`` holds the first compiler error."""


class StateError(MpforgeError):
    """A state file, a lock or a published folder could not be written (a full disk,
    a read-only or foreign file system, missing permissions): one clear line, never a
    traceback, and never half a file."""


class LockBusy(MpforgeError):
    """Another mpforge command holds the checkout's lock (and ``--no-wait`` was given)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same orderly stop as Ctrl-C (exit status 143)."""

    def __init__(self, signum: int = 15) -> None:
        super().__init__(signum)
        self.signum = signum


class UserWork(GitError):
    """``micropython/`` holds the user's own commits or branch, which a move would hide."""


class ReportError(MpforgeError):
    """A result file could not be written (the run's results themselves are intact)."""


# --- boards, flashing, benchmarks (raised by mpforge.device and mpforge.bench) ----------


class TransportError(MpforgeError):
    """The device could not be opened or spoke something we did not expect."""


class TargetSilent(TransportError):
    """The target stopped answering: the run cannot go on."""


class TestTimeout(TransportError):
    """A test ran too long; it was interrupted and the target answered."""

    __test__ = False


class UnsendableCode(TransportError):
    """The code holds raw-REPL control bytes (Ctrl-A..Ctrl-D): sent as is, it would leave
    or end the raw REPL half-way (the board would then never answer)."""


class DeployError(MpforgeError):
    """The firmware was not (or could not be) put on the board."""


class UnknownRunner(ConfigError):
    """A runner name (``--runner``, or ``[flash]`` in ``ports/<port>.toml``) that no runner has."""


class DfuSeError(MpforgeError):
    """A DfuSe file is corrupt or not for this board: it is never flashed."""


class DeviceError(MpforgeError):
    """A script or a terminal session could not be run on the board."""


class GuestError(MpforgeError):
    """The guest program failed (a Python exception on the board, or output we cannot read)."""


class BenchError(MpforgeError):
    """A benchmark has nothing to measure (an empty selection, no target built, no test)."""


class TargetMissed(BenchError):
    """``--check``: a benchmark's figure missed its target (or the run checked none)."""


# --- a board farm (raised by mpforge.device.labgrid and mpforge.device.farm) -------------


class FarmError(TransportError):
    """The board farm could not serve: no coordinator at the address, a device spec
    ``labgrid:...`` that names no place, a place without a serial port, a local farm that
    would not start."""


class PlaceBusy(FarmError):
    """The place (or every place matching the tags) is held by someone else; ``holders``
    names them (``host/user`` as labgrid says it), place by place."""

    def __init__(self, message: str, hint: str = "", holders: dict[str, str] | None = None) -> None:
        super().__init__(message, hint)
        self.holders = dict(holders or {})
