"""Using a board from the host: its REPL in this terminal, a script run on it.

``invoke repl`` and ``invoke run`` (and ``invoke deploy --repl``) share one way
in: :func:`connect` opens a device spec (:mod:`mpforge.device.spec`: a serial port, ``auto``,
``rfc2217://``, ``execpty:<command>``: see :mod:`mpforge.device.transport`; or a
labgrid place, ``labgrid:PLACE`` / ``labgrid:TAG=VALUE``, acquired for the session and
released when it ends: :mod:`mpforge.device.boards`) and brings
the board to its friendly prompt whatever state the last client left it in
(:meth:`~mpforge.device.transport.RawRepl.wait_for_prompt`), reporting what that
took through ``note``.

:func:`run_script` is the tree's ``pyboard.py FILE`` done with mpforge's
transport: enter the raw REPL (a soft reset first, by default: a fresh
interpreter), send the file, stream what it prints as it prints it, and leave
the board at the friendly prompt. Its :class:`ScriptResult` carries the exit
status a shell expects: 0 when the script ended normally, 1 when it raised,
130 when Ctrl-C on the host stopped it.

:func:`terminal` hands the open port to pyserial's miniterm
(:func:`mpforge.device.emulate.attach_terminal`) until Ctrl-]. Both are written on
mpforge's transport rather than on mpremote, so they need nothing beyond
pyserial and keep ``execpty:`` (the emulated pyboard) working; mpremote itself
works on our firmware too (see docs/devices.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mpforge.core.environment import environment
from mpforge.core.errors import DeviceError
from mpforge.core.executor import Executor
from mpforge.device import boards
from mpforge.device.spec import DeviceSpec
from mpforge.device.transport import (
    BANNER_TIMEOUT,
    Opened,
    RawRepl,
    Recovery,
    ScriptRun,
    TestTimeout,
    UnsendableCode,
    open_device,
)


@dataclass
class Session:
    """An open board at its friendly prompt."""

    spec: DeviceSpec
    opened: Opened
    repl: RawRepl
    recovery: Recovery
    board: boards.Board | None = None  # the board (a farm place: its lease) behind ``spec``


@contextmanager
def connect(spec: DeviceSpec, *, note: Callable[[str], None] | None = None,
            silence: float | None = None, timeout: float = BANNER_TIMEOUT, wait: float = 0.0,
            executor: Executor | None = None, root: Path | None = None,
            farm_note: Callable[[str], None] | None = None) -> Iterator[Session]:
    """Open ``spec``, bring the board to ``>>> `` and close it (stop an ``execpty:``
    program, release a farm place) on leaving the block. ``note`` hears what recovery
    found and did; ``farm_note`` (default ``note``) who holds a place waited for, and
    what the farm did.

    ``silence`` is how long the board may say nothing while mpforge waits for an answer
    (None: ``MPFORGE_SILENCE``, 10 s, read now: see :mod:`mpforge.core.environment`).
    ``wait``: seconds to wait for a port or place someone else holds (then one line
    naming the holder). ``executor`` starts an ``execpty:`` program (logged);
    ``root`` lets the checkout's local farm be the coordinator.
    """
    if silence is None:
        silence = environment().silence
    with boards.one(spec, wait=wait, note=farm_note or note, root=root) as board:
        opened = open_device(board.spec, executor=executor, wait=wait)
        try:
            repl = RawRepl(opened.port, silence=silence, note=note)
            recovery = repl.wait_for_prompt(timeout)
            yield Session(spec, opened, repl, recovery, board)
        finally:
            opened.close()


@dataclass
class ScriptResult:
    """How a script ended on the board."""

    error: str  # the traceback it raised ('' when it ended normally)
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        """0: ended normally; 1: raised; 130: stopped by Ctrl-C on the host (as a shell's)."""
        if self.interrupted:
            return 130
        return 1 if self.error else 0


class LineEndings:
    """The board's ``\\r\\n`` as ``\\n`` for the host, across chunk boundaries: a chunk
    ending in ``\\r`` keeps it until the next one shows what follows."""

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self.sink = sink
        self.held = b""

    def __call__(self, chunk: bytes) -> None:
        data = self.held + chunk
        self.held = b""
        if data.endswith(b"\r"):
            data, self.held = data[:-1], b"\r"
        if data:
            self.sink(data.replace(b"\r\n", b"\n"))

    def flush(self) -> None:
        if self.held:
            self.sink(self.held)
            self.held = b""


def read_script(path: str | Path) -> bytes:
    """The script's bytes, or a :class:`DeviceError` that names the file."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DeviceError(f"cannot read {path}: {exc.strerror}", "check the file name") from None


def run_script(session: Session, code: bytes, out: Callable[[bytes], None], *,
               soft_reset: bool = True, timeout: float | None = None) -> ScriptResult:
    """Run ``code`` on the board; ``out`` gets what it prints as it comes (with host line
    endings). The board is left at the friendly prompt, whatever happened."""
    repl = session.repl
    repl.enter(soft_reset=soft_reset)
    endings = LineEndings(out)
    try:
        ran: ScriptRun = repl.exec_stream(code, endings, timeout)
    except (TestTimeout, UnsendableCode):
        endings.flush()
        repl.leave()  # the board answered (or was sent nothing): back to the friendly prompt
        raise
    # a board that stopped answering (TargetSilent) is not talked to any more
    endings.flush()
    repl.leave()
    error = ran.error.replace(b"\r\n", b"\n").decode("utf-8", "replace")
    return ScriptResult(error, ran.interrupted)


def terminal(session: Session) -> None:
    """The board's REPL in this terminal (pyserial's miniterm) until Ctrl-]."""
    from mpforge.device.emulate import attach_terminal

    # a carriage return makes the board print a fresh prompt once the terminal shows it
    attach_terminal(session.opened.port, greet=b"\r")
