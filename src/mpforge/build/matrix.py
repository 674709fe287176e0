"""Building many targets at once under one job budget.

``invoke build --all`` (or ``--port a,b --board all``) selects a list of
targets, prepares the tree once, then builds the targets in parallel:

* **one job budget** (``--jobs``, default: CPU count) shared by every make
  through make's own jobserver protocol: mpforge owns a pipe holding one
  token per job; starting a target takes a token (it pays for that make's
  implicit job slot) and each make, started with ``-j
  --jobserver-auth=R,W``, takes further tokens for its parallel compiles, so
  the sum of running compiles never exceeds the budget;
* **one result per target** (nox style): ok, cached, failed (with the first
  error) or skipped (with the reason, e.g. a missing toolchain), with its
  duration and text/data/bss;
* a live table on a terminal, a line per change in CI, and a summary table.

One failure does not stop the others.
"""

from __future__ import annotations

import os
import queue
import select
import threading
import time
from dataclasses import dataclass, field
from enum import Enum

from rich.table import Table

from mpforge.build.target import TreeInfo, build_needs, build_target, port_deplibs, prepare_tree, regions_note, with_needs
from mpforge.build.ccache import Ccache, CcacheStats
from mpforge.core.errors import MissingTool, MpforgeError
from mpforge.core.project import Project, Target
from mpforge.build.toolchain import find_toolchain


class Status(str, Enum):
    QUEUED = "queued"
    BUILDING = "building"
    OK = "ok"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"


DONE = {Status.OK, Status.CACHED, Status.FAILED, Status.SKIPPED}


@dataclass
class TargetResult:
    target: str
    status: Status = Status.QUEUED
    reason: str = ""
    details: str = ""
    duration: float = 0.0
    cpu_seconds: float = 0.0
    size: dict[str, int] = field(default_factory=dict)
    started: float = 0.0


def select_targets(project: Project, ports: list[str], board: str | None) -> list[Target]:
    """Targets for port names and ``--board`` (a name, ``all``, or None for each port's default).

    In a selection of several ports, a board applies to the ports that have
    boards; the others are built as they are.
    """
    targets: list[Target] = []
    for name in ports:
        port = project.catalog.port(name)
        if not port.has_boards and len(ports) > 1:
            targets.append(project.target(name))
        elif board == "all" and port.has_boards:
            boards = port.boards(project.tree) or [port.default_board]
            targets += [project.target(name, b) for b in boards]
        elif board and "," in board and port.has_boards:
            targets += [project.target(name, b.strip()) for b in board.split(",") if b.strip()]
        elif board and board != "all":
            targets.append(project.target(name, board))
        else:
            targets.append(project.target(name))
    return targets


class Jobserver:
    """A GNU make jobserver: a pipe of job tokens shared by every make we start."""

    def __init__(self, slots: int) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_inheritable(self.read_fd, True)
        os.set_inheritable(self.write_fd, True)
        os.write(self.write_fd, b"+" * slots)

    @property
    def make_env(self) -> dict[str, str]:
        # make 4.3 reads the fds from --jobserver-auth; -j without a number means "use it"
        return {"MAKEFLAGS": f"-j --jobserver-auth={self.read_fd},{self.write_fd}"}

    @property
    def fds(self) -> tuple[int, int]:
        return (self.read_fd, self.write_fd)

    def acquire(self) -> bytes:
        """Wait for a token. make turns the shared pipe non-blocking, so wait with select()."""
        while True:
            select.select([self.read_fd], [], [])
            try:
                token = os.read(self.read_fd, 1)
            except BlockingIOError:  # another reader took it first
                continue
            if token:
                return token

    def release(self, token: bytes) -> None:
        os.write(self.write_fd, token)

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


@dataclass
class MatrixReport:
    results: list[TargetResult]
    wall_seconds: float
    jobs: int
    #: the parallel phase alone (after fetch, patch, deplibs and needed ports)
    parallel_seconds: float = 0.0
    deplib_vars: dict[str, dict[str, str]] = field(default_factory=dict)
    #: ccache's hits and misses over the whole run (None: built without ccache)
    ccache: CcacheStats | None = None

    @property
    def failed(self) -> list[TargetResult]:
        return [r for r in self.results if r.status == Status.FAILED]

    @property
    def skipped(self) -> list[TargetResult]:
        return [r for r in self.results if r.status == Status.SKIPPED]


def _table(results: list[TargetResult], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("target", "status", "time", "text", "data", "bss", "reason"):
        table.add_column(column)
    styles = {Status.OK: "green", Status.CACHED: "green", Status.FAILED: "red",
              Status.SKIPPED: "yellow", Status.BUILDING: "cyan", Status.QUEUED: "dim"}
    now = time.monotonic()
    for r in results:
        elapsed = r.duration if r.status in DONE else (now - r.started if r.started else 0.0)
        table.add_row(r.target, f"[{styles[r.status]}]{r.status.value}[/]",
                      f"{elapsed:.1f} s" if elapsed else "",
                      *[str(r.size.get(k, "")) for k in ("text", "data", "bss")], r.reason)
    return table


def summary_rows(results: list[TargetResult]) -> list[tuple[str, ...]]:
    return [(r.target, r.status.value, f"{r.duration:.1f} s",
             *[str(r.size.get(k, "")) for k in ("text", "data", "bss")],
             r.reason or regions_note(r.size))
            for r in results]


def _fail_port_targets(targets: list[Target], results: dict[str, TargetResult],
                       failures: dict[str, MpforgeError]) -> list[Target]:
    """Mark the targets of ports that failed to prepare as failed; return the others."""
    for target in targets:
        exc = failures.get(target.port.name)
        if exc is not None:
            result = results[target.name]
            result.status, result.reason, result.details = Status.FAILED, exc.one_line(), exc.details
    return [t for t in targets if t.port.name not in failures]


def build_matrix(project: Project, targets: list[Target], *, jobs: int, mirror: str | None,
                 clean: bool = False, ccache: bool | None = None,
                 clean_deplibs: bool | None = None) -> MatrixReport:
    """Build ``targets`` in parallel; see the module docstring.

    ``ccache``: True/False forces it on or off, None takes the project's setting
    (:mod:`mpforge.build.ccache`); the report carries its hits and misses.
    """
    console = project.console
    started = time.monotonic()
    cache = Ccache.for_build(project, ccache)
    counters_before = cache.counters() if cache else {}
    results = {t.name: TargetResult(t.name) for t in targets}
    order = [t.name for t in targets]

    # A missing toolchain skips its targets (and their preparation).
    runnable: list[Target] = []
    for target in targets:
        try:
            find_toolchain(target.toolchain, project.executor)
            runnable.append(target)
        except MissingTool as exc:
            results[target.name].status = Status.SKIPPED
            results[target.name].reason = exc.one_line()
    ports = sorted({t.port.name for t in runnable})
    tree: TreeInfo | None = None
    if runnable:
        tree = prepare_tree(project, with_needs(project, ports), mirror, keep_going=True)
        runnable = _fail_port_targets(runnable, results, tree.failed_ports)
        build_needs(project, sorted({t.port.name for t in runnable}), tree, jobs, ccache)
    deplib_vars: dict[str, dict[str, str]] = {}
    deplib_failures: dict[str, MpforgeError] = {}
    for target in runnable:
        name = target.port.name
        if name not in deplib_vars and name not in deplib_failures:
            try:
                deplib_vars[name] = port_deplibs(target, clean if clean_deplibs is None else clean_deplibs)
            except MpforgeError as exc:  # this port's targets fail; the others go on
                deplib_failures[name] = exc
    runnable = _fail_port_targets(runnable, results, deplib_failures)

    parallel_started = time.monotonic()
    jobserver = Jobserver(jobs)
    work: queue.Queue[Target] = queue.Queue()
    for target in runnable:
        work.put(target)

    # None in CI: then report() writes a line per change instead
    live = console.live(lambda: _table([results[n] for n in order], "build matrix"))

    def report(result: TargetResult) -> None:
        if live is None:
            if result.status == Status.BUILDING:
                console.info(f"{result.target}: building")
            elif result.status in (Status.OK, Status.CACHED):
                console.ok(f"{result.target}: {result.status.value} in {result.duration:.1f} s")
            elif result.status == Status.FAILED:
                console.error(f"{result.target}: failed: {result.reason}")

    def worker() -> None:
        while True:
            try:
                target = work.get_nowait()
            except queue.Empty:
                return
            result = results[target.name]
            token = b""
            try:
                token = jobserver.acquire()
                result.status, result.started = Status.BUILDING, time.monotonic()
                report(result)
                assert tree is not None  # prepared before any target is queued
                built = build_target(target, tree, deplib_vars[target.port.name], jobs=None,
                                     clean=clean, make_env=jobserver.make_env,
                                     pass_fds=jobserver.fds, ccache=ccache)
                result.status = Status.CACHED if built.cached else Status.OK
                result.size = built.manifest.get("size", {})
                result.cpu_seconds = built.cpu_seconds
            except MpforgeError as exc:
                result.status, result.reason, result.details = Status.FAILED, exc.one_line(), exc.details
            except Exception as exc:  # a bug must not hang the other workers
                result.status, result.reason = Status.FAILED, f"internal error: {exc!r}"
            finally:
                if token:
                    jobserver.release(token)
                result.duration = time.monotonic() - result.started if result.started else 0.0
            report(result)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(jobs, len(runnable)))]
    try:
        if live:
            live.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        if live:
            live.stop()
        jobserver.close()
    return MatrixReport([results[n] for n in order], time.monotonic() - started, jobs,
                        time.monotonic() - parallel_started, deplib_vars,
                        cache.stats_since(counters_before) if cache else None)
