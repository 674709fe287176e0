"""mpforge's ``pyboard`` module, for the tree's ``tests/run-tests --target pyboard``.

``invoke test --device SPEC`` puts this folder first on ``PYTHONPATH``, so the
runner imports this module instead of the tree's ``tools/pyboard.py``: same
interface (``Pyboard``, ``enter_raw_repl``, ``execfile``, ``PyboardError``),
mpforge's transport underneath (:mod:`mpforge.device.transport`). A test that runs
past ``MPFORGE_TEST_TIMEOUT`` seconds is interrupted and reported as a crash,
and so is a file the raw REPL cannot carry (control bytes: the runner's
``feature_check/repl_emacs_check.py``), without the tree tool's 10 s wait;
a target that stops answering ends this runner with one line starting with
``mpforge-abort:`` (``mpforge-abort: no connection: ...`` when it did not answer
before any test ran), on which ``invoke test`` reports the test in progress as a
crash, brings the board back and goes on (:mod:`mpforge.testing.testrun`).

Connecting brings the board to a known prompt whatever state the last client
left it in (the tree's own ``run-tests`` leaves it in the raw REPL; a program
may be running): see :meth:`mpforge.device.transport.RawRepl.wait_for_prompt`. What
that found and did is one line starting with ``mpforge-note:`` in the
runner's output. On leaving, the board is handed back at the friendly prompt
(Ctrl-B), for the next client.
"""

import atexit
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from mpforge.core.environment import environment
from mpforge.core.errors import DeviceSpecError
from mpforge.device.spec import parse_device
from mpforge.device.transport import RawRepl, TestTimeout, TransportError, UnsendableCode, open_device
from mpforge.testing.testrun import ABORT_MARKER, CONNECT_FAILED

# parsed as in every mpforge process; a malformed value falls back to the default here
# (the parent process, where it is read first, already said so)
_settings = environment(strict=False)
TEST_TIMEOUT = _settings.test_timeout
SILENCE = _settings.silence
NOTE_MARKER = "mpforge-note:"
_open: list = []  # the Pyboards of this runner, closed at exit


class PyboardError(BaseException):
    pass


def _close_all() -> None:
    while _open:
        _open.pop().close()


def _note(device: str) -> Callable[[str], None]:
    """The line for what connecting to ``device`` found and did (stdout, as the
    runner's own lines, so they cannot interleave mid-line)."""
    def note(text: str) -> None:
        sys.stdout.write(f"{NOTE_MARKER} {device}: {text}\n")
        sys.stdout.flush()
    return note


def _abort(message: str) -> NoReturn:
    """The target is gone: say why, release it, and end this runner at once."""
    sys.stdout.write(f"{ABORT_MARKER} {message}\n")
    sys.stdout.flush()
    _close_all()
    os._exit(3)


atexit.register(_close_all)


class Pyboard:
    def __init__(self, device: str, baudrate: int = 115200, user: str = "micro", password: str = "python",
                 wait: float = 0) -> None:
        self.opened = None
        try:
            self.opened = open_device(parse_device(device), int(baudrate))  # the runner's --device
            _open.append(self)
            self.repl = RawRepl(self.opened.port, silence=SILENCE, note=_note(device))
            self.repl.wait_for_prompt()
        except (TransportError, DeviceSpecError) as exc:
            _abort(f"{CONNECT_FAILED} {exc.one_line()}")

    def close(self) -> None:
        if self.opened is None:
            return
        try:  # back to the friendly REPL for the next client; a gone board is no error here
            self.repl.write(b"\r\x02")
        except Exception:
            pass
        self.opened.close()
        self.opened = None

    def enter_raw_repl(self) -> None:
        try:
            self.repl.enter(soft_reset=True)
        except TransportError as exc:
            _abort(exc.one_line())

    def exit_raw_repl(self) -> None:
        self.repl.write(b"\r\x02")

    def exec_(self, command: str | bytes) -> bytes:
        if isinstance(command, str):
            command = command.encode("utf-8")
        try:
            out, err = self.repl.exec(command, TEST_TIMEOUT)
        except TestTimeout:
            raise PyboardError("timeout", TEST_TIMEOUT) from None
        except UnsendableCode as exc:
            # the tree's pyboard.py sends it anyway and ends in a timeout: the same crash, now
            raise PyboardError("unsendable", exc.message) from None
        except TransportError as exc:
            _abort(exc.one_line())
        if err:
            raise PyboardError("exception", out, err)
        return out

    def execfile(self, filename: str) -> bytes:
        with open(filename, "rb") as f:
            return self.exec_(f.read())
