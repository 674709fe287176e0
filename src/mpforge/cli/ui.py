"""Terminal output: rich on a terminal, plain timestamped lines in CI.

The library reports progress through a :class:`Console` object; it never
calls ``print``. :func:`make_console` picks the flavour: rich when stdout is a
TTY and ``CI`` is unset, plain lines otherwise (so CI logs stay greppable and
free of control codes).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TextIO

from rich.console import Console as RichConsole
from rich.table import Table
from rich.text import Text

from mpforge.core.environment import environment


def wants_plain(stream: TextIO | None = None) -> bool:
    """True when output should be plain lines: ``CI`` is set or not a TTY.

    Never fails (it runs while another error is reported): a malformed ``MPFORGE_*``
    value is left to the command that needs it.
    """
    stream = stream or sys.stdout
    return environment(strict=False).ci or not stream.isatty()


class Console:
    """Where the library says things. Quiet commands go to :meth:`detail`."""

    def __init__(self, *, plain: bool | None = None, verbose: bool = False,
                 stream: TextIO | None = None, err_stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.err_stream = err_stream or sys.stderr
        self.plain = wants_plain(self.stream) if plain is None else plain
        self.verbose = verbose
        self._rich = self._make_rich(self.stream)
        self._rich_err = self._make_rich(self.err_stream)
        self._lock = threading.Lock()  # matrix builds report from several threads

    def _make_rich(self, stream: TextIO) -> RichConsole:
        return RichConsole(file=stream, highlight=False, force_terminal=not self.plain,
                           no_color=self.plain, width=None if not self.plain else 200)

    def _line(self, tag: str, text: str, style: str, to_err: bool = False) -> None:
        stream = self.err_stream if to_err else self.stream
        with self._lock:
            if self.plain:
                stamp = time.strftime("%H:%M:%S")
                stream.write(f"{stamp} {tag:<5} {text}\n")
                stream.flush()
            else:
                rich = self._rich_err if to_err else self._rich
                # the text is the library's and the user's (paths, "Ctrl-]", "[flash]"):
                # never markup; only the tag is styled
                line = Text(f"{tag} ", style=style or "")
                line.append(text)
                rich.print(line, soft_wrap=True)

    def step(self, text: str) -> None:
        """A stage of the job starts (``fetch``, ``patch``, ``build unix``)."""
        self._line("==>", text, "bold cyan")

    def info(self, text: str) -> None:
        self._line("  ", text, "")

    def ok(self, text: str) -> None:
        self._line("ok", text, "bold green")

    def warn(self, text: str) -> None:
        self._line("warn", text, "bold yellow")

    def error(self, text: str) -> None:
        """Always on stderr, so ``2>`` captures exactly the failure."""
        self._line("error", text, "bold red", to_err=True)

    def detail(self, text: str) -> None:
        """Commands and chatter: only with ``--verbose``."""
        if self.verbose:
            self._line("  ", text, "dim")

    def block(self, text: str, to_err: bool = False) -> None:
        """A multi-line excerpt (compiler error, diff) shown as is, indented."""
        stream = self.err_stream if to_err else self.stream
        for line in text.rstrip().splitlines():
            stream.write(f"    {line}\n")
        stream.flush()

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A table: rich box on a terminal, aligned text columns otherwise."""
        if self.plain:
            widths = [max([len(c)] + [len(str(r[i])) for r in rows]) for i, c in enumerate(columns)]
            self.stream.write(f"{title}\n")
            fmt = "  ".join(f"{{:<{w}}}" for w in widths)
            self.stream.write(fmt.format(*columns).rstrip() + "\n")
            for row in rows:
                self.stream.write(fmt.format(*[str(c) for c in row]).rstrip() + "\n")
            self.stream.flush()
            return
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*[str(c) for c in row])
        self._rich.print(table)

    @property
    def rich(self) -> RichConsole:
        """The rich console behind this one, for widgets (progress bars) on a terminal."""
        return self._rich

    def live(self, render: Callable[[], Any]) -> Any:
        """A live-updating view on a terminal (``render()`` returns a rich renderable); None in plain mode."""
        if self.plain:
            return None
        from rich.live import Live
        return Live(render(), console=self._rich, refresh_per_second=4, transient=False,
                    get_renderable=render)

    def status(self, text: str) -> AbstractContextManager[Any]:
        """A context manager showing a spinner on a terminal (a line otherwise)."""
        if self.plain:
            self.step(text)
            return _NullContext()
        return self._rich.status(text)


class _NullContext:
    def __enter__(self) -> _NullContext:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def human_size(n: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
