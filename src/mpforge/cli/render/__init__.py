"""Rendering in one place: what people and CI systems see of library results.

The library reports through return values (reports, results) and callbacks
(``on_change`` of a build, ``on_progress`` of a flash); nothing below
:mod:`mpforge.cli` builds a table, a progress bar or a result file. These
modules turn the values into text: rich tables and bars on a terminal, plain
lines when ``CI`` is set or no terminal is attached (the
:class:`~mpforge.cli.ui.Console` decides which), and the files CI systems read.

``build``   a build's progress (live matrix or a line per change), its summary, one target's artifacts
``flash``   a flashing tool's progress
``tests``   a test run on the terminal; its JUnit XML and JSON files
``ci``      ``invoke ci``'s table and its result files (summary.json, junit.xml, summary.md, size.md)
``sizes``   size tables: terminal rows, JSON, Markdown
``bench``   the benchmarks' figures and targets, and bench-gc's plot
``files``   what every result file goes through: XML-safe text, atomic-enough writes
"""

from mpforge.cli.render.build import BuildProgress, show_build, show_matrix
from mpforge.cli.render.flash import flash_progress

__all__ = ["BuildProgress", "flash_progress", "show_build", "show_matrix"]
