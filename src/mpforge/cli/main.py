"""The ``mpforge`` console script: the same task namespace as ``invoke``.

``mpforge build --port stmhal`` is ``invoke build --port stmhal`` without
needing ``tasks.py`` in the current folder.

The task namespace is imported inside :func:`main`, so a Ctrl-C (or SIGTERM)
while Python is still loading (invoke, rich, jinja2: a few hundred milliseconds)
ends quietly with status 130 (143) instead of a traceback (or invoke's silent
status 1): nothing has been done yet at that point. A task takes both signals
over when it starts (see :func:`mpforge.cli.tasks.reports_errors`).
"""

from __future__ import annotations

import os
import signal
import sys

from mpforge import __version__


def _stopped_early(signum: int, frame: object) -> None:
    # until a task starts (it then takes the signals over) nothing was done: a quiet exit,
    # immediate (an exception raised inside an import can surface as another error)
    os._exit(128 + signum)


def main() -> None:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _stopped_early)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _stopped_early)
    try:
        from invoke import Program

        from mpforge.cli.tasks import ns
    except KeyboardInterrupt:
        sys.exit(130)
    try:
        Program(namespace=ns, version=__version__, name="mpforge", binary="mpforge").run()
    finally:
        # the task is over (done, failed or stopped, and said so): a late Ctrl-C while
        # Python shuts down must not turn that outcome into a silent death by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
