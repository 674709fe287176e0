"""How the library reports progress: the :class:`Reporter` it is handed.

Library code never prints. It returns results, raises typed errors, and tells
whoever runs it what it is doing through the reporter its
:class:`~mpforge.core.project.Project` carries: a step starting, a fact worth
knowing, a warning, a command run (``detail``, shown with ``-v``). The command
line hands in :class:`mpforge.cli.ui.Console` (rich on a terminal, plain lines in
CI); a library user may hand in anything with these methods, or nothing
(:class:`NullReporter`, the default: silent).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol


class Reporter(Protocol):
    """What the library may tell the person running it, and nothing more."""

    def step(self, text: str) -> None:
        """A step of the work starts (``fetch``, ``patch``, ``make stmhal-PYBV10``)."""

    def info(self, text: str) -> None:
        """A fact worth knowing (``applied 9 patch(es)``)."""

    def ok(self, text: str) -> None:
        """Something finished well."""

    def warn(self, text: str) -> None:
        """Something the user should look at; the work goes on."""

    def error(self, text: str) -> None:
        """Something failed; the work goes on where it can (a CI step, a matrix target)."""

    def detail(self, text: str) -> None:
        """Chatter: each command run, and what it said (shown with ``-v``)."""

    def status(self, text: str) -> AbstractContextManager[object]:
        """A long step in progress, for as long as the ``with`` block lasts."""


class NullReporter:
    """A :class:`Reporter` that says nothing."""

    def step(self, text: str) -> None:
        pass

    def info(self, text: str) -> None:
        pass

    def ok(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass

    def error(self, text: str) -> None:
        pass

    def detail(self, text: str) -> None:
        pass

    def status(self, text: str) -> AbstractContextManager[object]:
        return nullcontext()
