"""Builds: a live matrix (or a line per change in CI), the summary table, one target's artifacts."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from mpforge.cli.ui import Console, human_size
from mpforge.core.project import Target
from mpforge.firmware.matrix import DONE, MatrixReport, OnChange, Status, TargetResult
from mpforge.firmware.size import regions_note
from mpforge.firmware.target import BuildResult


def _size_cells(size: dict[str, int]) -> list[str]:
    return [str(size.get(k, "")) for k in ("text", "data", "bss")]


def matrix_rows(results: Sequence[TargetResult]) -> list[tuple[str, ...]]:
    """The summary table's rows: one per target."""
    return [(r.target, r.status.value, f"{r.duration:.1f} s", *_size_cells(r.size), _ccache_cell(r),
             r.reason or regions_note(r.size)) for r in results]


def _ccache_cell(result: TargetResult) -> str:
    """ccache's figures for the target, from its own stats log: local/remote hits, misses."""
    stats = result.built.ccache if result.built else None
    return stats.cell() if stats else ""


MATRIX_COLUMNS = ["target", "status", "time", "text", "data", "bss", "ccache local/remote/miss", "reason"]
_STYLES = {Status.OK: "green", Status.CACHED: "green", Status.FAILED: "red",
           Status.SKIPPED: "yellow", Status.BUILDING: "cyan", Status.QUEUED: "dim"}


def _live_table(results: Sequence[TargetResult]) -> Table:
    table = Table(title="build matrix", title_justify="left")
    for column in MATRIX_COLUMNS:
        table.add_column(column)
    now = time.monotonic()
    for r in results:
        elapsed = r.duration if r.status in DONE else (now - r.started if r.started else 0.0)
        table.add_row(r.target, Text(r.status.value, style=_STYLES[r.status]),
                      f"{elapsed:.1f} s" if elapsed else "", *_size_cells(r.size), _ccache_cell(r),
                      r.reason)
    return table


class BuildProgress:
    """Shows a build's progress as its ``on_change`` hears of it (``with BuildProgress(console,
    targets) as on_change: pipeline.build(targets, options, on_change)``).

    A matrix: a live table on a terminal, a line per change in CI. The live table starts
    with the first make (after the tree, the toolchains and the deplibs are prepared: their
    own spinners must not meet it) and shows the targets skipped or failed before that too.
    One target: the step line ``make <target>`` (make's output is in its build.log).
    """

    def __init__(self, console: Console, targets: Sequence[Target]) -> None:
        self.console = console
        self.single = len(targets) == 1
        self.results: dict[str, TargetResult] = {}
        self.order = [t.name for t in targets]
        self.live: Any = None
        self._lock = threading.Lock()  # results arrive from the matrix's worker threads

    def __enter__(self) -> OnChange:
        return self.on_change

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def _table(self) -> Table:
        return _live_table([self.results[n] for n in self.order if n in self.results])

    def on_change(self, result: TargetResult) -> None:
        with self._lock:
            self.results[result.target] = result
            if self.single:
                if result.status == Status.BUILDING:
                    self.console.step(f"make {result.target}")
                return
            if self.live is None and result.status == Status.BUILDING:
                self.live = self.console.live(self._table)
                if self.live is not None:
                    self.live.start()
            if self.live is not None or not self.console.plain:
                return  # the live table shows it (or will, from the first make on)
            if result.status == Status.BUILDING:
                self.console.info(f"{result.target}: building")
            elif result.status in (Status.OK, Status.CACHED):
                self.console.ok(f"{result.target}: {result.status.value} in {result.duration:.1f} s")
            elif result.status == Status.FAILED:
                self.console.error(f"{result.target}: failed: {result.reason}")
            elif result.status == Status.SKIPPED:
                self.console.warn(f"{result.target}: skipped: {result.reason}")


def show_matrix(console: Console, report: MatrixReport, *, strict: bool = False) -> bool:
    """The summary of a matrix build: the table, ccache's figures, each failure with its
    first error, and a closing line. Returns False when the build failed (or, with
    ``strict``, skipped a target)."""
    console.table(f"build matrix: {len(report.results)} targets, -j{report.jobs}, "
                  f"{report.wall_seconds:.1f} s", MATRIX_COLUMNS, matrix_rows(report.results))
    if report.ccache:
        console.info(report.ccache.describe())
    for failed in report.failed:
        console.error(f"{failed.target}: {failed.reason}")
        if failed.details:
            console.block(failed.details, to_err=True)
    if report.failed or (strict and report.skipped):
        what = f"{len(report.failed)} failed" + (f", {len(report.skipped)} skipped (--strict)"
                                                 if strict and report.skipped else "")
        console.error(f"build matrix: {what} of {len(report.results)} targets")
        return False
    console.ok(f"{len(report.built)} of {len(report.results)} targets built"
               + (f", {len(report.skipped)} skipped" if report.skipped else ""))
    return True


def show_build(console: Console, result: BuildResult, root: Path) -> None:
    """One target's build: its artifacts (size, sha256), where they are, the app frozen in,
    ccache's figures."""
    rows = [(a["name"], human_size(a["size"]), a["sha256"][:16]) for a in result.manifest["artifacts"]]
    console.table(f"dist/{result.target}", ["artifact", "size", "sha256"], rows)
    verb = "built" if result.changed else "up to date"
    console.ok(f"{result.target} {verb} in {result.duration:.1f} s -> {result.dist_dir.relative_to(root)}/")
    app = result.manifest.get("app")
    if app:
        console.info(f"app {app['name']}: {len(app['frozen'])} file(s) frozen"
                     + (f" ({app['freeze']})" if app["frozen"] else "")
                     + (f", C modules {', '.join(m['name'] for m in app['c_modules'])}"
                        if app["c_modules"] else ""))
    if result.ccache:
        console.info(result.ccache.describe())
