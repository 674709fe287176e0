"""The ``mpforge`` console script: the same task namespace as ``invoke``.

``mpforge build --port stmhal`` is ``invoke build --port stmhal`` without
needing ``tasks.py`` in the current folder.

The task namespace is imported inside :func:`main`, so a Ctrl-C while Python is
still loading (invoke, rich, jinja2: a few hundred milliseconds) ends quietly
with status 130 instead of a traceback (or invoke's silent status 1): nothing has been
done yet at that point. A task takes Ctrl-C over when it starts (see
:func:`mpforge.tasks.reports_errors`).
"""

from __future__ import annotations

import signal
import sys

from . import __version__


def _stopped_early(signum: int, frame: object) -> None:
    # until a task starts (it then takes Ctrl-C over): nothing done yet, a quiet 130
    raise SystemExit(128 + signum)


def main() -> None:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _stopped_early)
    try:
        from invoke import Program

        from .tasks import ns
    except KeyboardInterrupt:
        sys.exit(130)
    try:
        Program(namespace=ns, version=__version__, name="mpforge", binary="mpforge").run()
    finally:
        # the task is over (done, failed or stopped, and said so): a late Ctrl-C while
        # Python shuts down must not turn that outcome into a silent death by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_IGN)
