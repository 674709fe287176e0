"""The ``mpforge`` console script: the same task namespace as ``invoke``.

``mpforge build --port stmhal`` is ``invoke build --port stmhal`` without
needing ``tasks.py`` in the current folder.

``invoke`` loads the project configuration (``invoke.yaml`` next to ``tasks.py``) as it
finds ``tasks.py``; a program with a fixed namespace finds no file and so loads none.
The program of :func:`make_program` loads the ``invoke.yaml`` of the checkout the
command runs in (:func:`mpforge.core.project.find_root`: the nearest folder with
``ports/`` and ``toolchains/``, or ``MPFORGE_ROOT``), so both commands see the same
``mpforge:`` settings (see :mod:`mpforge.cli.options`). Outside a checkout it loads
nothing more.

The task namespace is imported inside :func:`main`, so a Ctrl-C (or SIGTERM)
while Python is still loading (invoke, rich, jinja2: a few hundred milliseconds)
ends quietly with status 130 (143) instead of a traceback (or invoke's silent
status 1): nothing has been done yet at that point. A task takes both signals
over when it starts; :mod:`mpforge.cli.signals` holds every handler.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from mpforge import __version__
from mpforge.cli import signals

if TYPE_CHECKING:
    from invoke import Collection, Program


def make_program(namespace: Collection) -> Program:
    """The console script's invoke program serving ``namespace``, with the checkout's
    ``invoke.yaml`` loaded as invoke's project configuration."""
    from invoke import Program

    from mpforge.core.errors import ConfigError
    from mpforge.core.project import find_root

    class CheckoutProgram(Program):
        def create_config(self) -> None:
            super().create_config()
            try:
                root = find_root()
            except ConfigError:
                return  # not in a checkout (or a malformed setting, which the task reports)
            # invoke takes the folder and looks for invoke.yaml / .yml / .json / .py in it
            self.config.set_project_location(str(root))
            self.config.load_project()

    return CheckoutProgram(namespace=namespace, version=__version__, name="mpforge", binary="mpforge")


def main() -> None:
    signals.quiet_until_task()
    try:
        from mpforge.cli.tasks import ns
    except KeyboardInterrupt:
        sys.exit(130)
    try:
        make_program(ns).run()
    finally:
        # the task is over (done, failed or stopped, and said so)
        signals.ignore_from_now()
