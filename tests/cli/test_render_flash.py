"""Rendering of library results (mpforge.cli.render), one section per kind of result."""

from __future__ import annotations

import io
import re

from mpforge.cli.render import flash_progress
from mpforge.cli.ui import Console

# --- flashing (deploy) -------------------------------------------------------


def _shown(stream: io.StringIO) -> list[int]:
    return [int(n) for n in re.findall(r"fw\.dfu: (\d+)%", stream.getvalue())]


def test_flash_progress_in_ci_is_a_line_per_quarter():
    stream = io.StringIO()
    with flash_progress(Console(plain=True, stream=stream), "fw.dfu") as on_progress:
        for percent in range(0, 101, 5):
            on_progress(percent, f"Download [...] {percent}%")
    assert _shown(stream) == [0, 25, 50, 75, 100]


def test_flash_progress_in_ci_shows_the_first_percentage_of_each_new_quarter():
    stream = io.StringIO()
    with flash_progress(Console(plain=True, stream=stream), "fw.dfu") as on_progress:
        for percent in (10, 20, 60, 61, 74, 99, 100):
            on_progress(percent, f"({percent} %)")
    assert _shown(stream) == [10, 60, 99, 100]


def test_flash_progress_on_a_terminal_is_a_bar_drawn_once_a_percentage_comes():
    silent = io.StringIO()
    with flash_progress(Console(plain=False, stream=silent), "fw.dfu"):
        pass  # a tool that prints no percentage: no bar at all
    assert silent.getvalue() == ""
    stream = io.StringIO()
    with flash_progress(Console(plain=False, stream=stream), "fw.dfu") as on_progress:
        on_progress(40, "Download 40%")
        on_progress(100, "Download 100%")
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    assert "fw.dfu" in drawn and "100%" in drawn and "━" in drawn
