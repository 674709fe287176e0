"""Flashing progress: what ``invoke deploy`` shows while a runner writes the board."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn

from mpforge.cli.ui import Console


@contextmanager
def flash_progress(console: Console, what: str) -> Iterator[Callable[[int, str], None]]:
    """The ``on_progress(percent, line)`` to hand :func:`mpforge.device.deploy.flash_board`,
    shown while the ``with`` block runs.

    On a terminal: a rich progress bar labelled ``what``, drawn from the first
    percentage on (a tool that prints none shows no bar) and stopped on leaving.
    In CI (plain output): a line ``what: N%`` each time a new quarter is reached
    (0, 25, 50, 75, 100 for a tool that counts up), so logs stay short.
    """
    if console.plain:
        last_quarter = -1

        def line_per_quarter(percent: int, line: str) -> None:
            nonlocal last_quarter
            if percent // 25 > last_quarter:
                last_quarter = percent // 25
                console.info(f"{what}: {percent}%")

        yield line_per_quarter
        return

    bar: Progress | None = None
    task: TaskID | None = None

    def update_bar(percent: int, line: str) -> None:
        nonlocal bar, task
        if bar is None:
            bar = Progress("[progress.description]{task.description}", BarColumn(),
                           TaskProgressColumn(), console=console.rich)
            bar.start()
            task = bar.add_task(what, total=100)
        assert task is not None
        bar.update(task, completed=percent)

    try:
        yield update_bar
    finally:
        if bar is not None:
            bar.stop()
