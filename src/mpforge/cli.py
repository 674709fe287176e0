"""The ``mpforge`` console script: the same task namespace as ``invoke``.

``mpforge build --port stmhal`` is ``invoke build --port stmhal`` without
needing ``tasks.py`` in the current folder.
"""

from __future__ import annotations

from invoke import Program

from . import __version__
from .tasks import ns

program = Program(namespace=ns, version=__version__, name="mpforge", binary="mpforge")


def main() -> None:
    program.run()
