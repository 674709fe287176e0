"""Rendering in one place: what the tasks show of library results.

The library reports through return values (reports, results) and callbacks
(progress); nothing below :mod:`mpforge.cli` builds a table or a progress bar.
This module turns those values into what a person reads: rich tables and bars
on a terminal, plain lines when ``CI`` is set or no terminal is attached (the
:class:`~mpforge.cli.ui.Console` decides which), and Markdown where a CI
provider shows a summary.
"""

from __future__ import annotations

# --- flashing (deploy) -------------------------------------------------------


# --- building ----------------------------------------------------------------
