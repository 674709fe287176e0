"""mpforge's ``pyboard`` module, for the tree's ``tests/run-tests --target pyboard``.

``invoke test --device SPEC`` puts this folder first on ``PYTHONPATH``, so the
runner imports this module instead of the tree's ``tools/pyboard.py``: same
interface (``Pyboard``, ``enter_raw_repl``, ``execfile``, ``PyboardError``),
mpforge's transport underneath (:mod:`mpforge.transport`). A test that runs
past ``MPFORGE_TEST_TIMEOUT`` seconds is interrupted and reported as a crash,
and so is a file the raw REPL cannot carry (control bytes: the runner's
``feature_check/repl_emacs_check.py``), without the tree tool's 10 s wait;
a target that stops answering ends the run with one line starting with
``mpforge-abort:``, which ``invoke test`` reports as the reason.
"""

import atexit
import os
import sys

from mpforge.testrun import ABORT_MARKER
from mpforge.transport import RawRepl, TestTimeout, TransportError, UnsendableCode, open_device

TEST_TIMEOUT = float(os.environ.get("MPFORGE_TEST_TIMEOUT", "30"))
SILENCE = float(os.environ.get("MPFORGE_SILENCE", "10"))
_open = []


class PyboardError(BaseException):
    pass


def _close_all():
    while _open:
        _open.pop().close()


def _abort(message):
    """The target is gone: say why, release it, and end this runner at once."""
    sys.stdout.write(f"{ABORT_MARKER} {message}\n")
    sys.stdout.flush()
    _close_all()
    os._exit(3)


atexit.register(_close_all)


class Pyboard:
    def __init__(self, device, baudrate=115200, user="micro", password="python", wait=0):
        try:
            self.opened = open_device(device, int(baudrate))
            _open.append(self.opened)
            self.repl = RawRepl(self.opened.port, silence=SILENCE)
            self.repl.wait_for_prompt()
        except TransportError as exc:
            _abort(exc.one_line())

    def close(self):
        self.opened.close()

    def enter_raw_repl(self):
        try:
            self.repl.enter(soft_reset=True)
        except TransportError as exc:
            _abort(exc.one_line())

    def exit_raw_repl(self):
        self.repl.write(b"\r\x02")

    def exec_(self, command):
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

    def execfile(self, filename):
        with open(filename, "rb") as f:
            return self.exec_(f.read())
