"""Many targets at once under one job budget: the parallel phase of a build.

:class:`~mpforge.firmware.pipeline.Pipeline` prepares the tree, the toolchains and the
deplibs, then hands the runnable targets to :func:`run`, which makes them in parallel:

* **one job budget** (``--jobs``, default: CPU count) shared by every make
  through make's own jobserver protocol: mpforge owns a pipe holding one
  token per job; starting a target takes a token (it pays for that make's
  implicit job slot) and each make, started with ``-j
  --jobserver-auth=R,W``, takes further tokens for its parallel compiles, so
  the sum of running compiles never exceeds the budget. A matrix of one target
  needs no jobserver: its make gets ``-j<budget>``;
* **one result per target** (nox style): ok, cached, failed (with the first
  error) or skipped (with the reason, e.g. a missing toolchain), with its
  duration, CPU time and text/data/bss;
* an ``on_change`` callback whenever a target's status changes: the task layer
  renders it (a live table on a terminal, a line per change in CI).

One failure does not stop the others.
"""

from __future__ import annotations

import os
import queue
import select
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from mpforge.core.errors import MpforgeError
from mpforge.core.project import Target
from mpforge.firmware.ccache import CcacheStats

if TYPE_CHECKING:
    from mpforge.firmware.target import BuildResult


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
    """One target's outcome in a matrix (and, while it runs, its progress)."""

    target: str
    status: Status = Status.QUEUED
    reason: str = ""
    details: str = ""
    duration: float = 0.0
    cpu_seconds: float = 0.0
    size: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    #: the build's result (ok or cached)
    built: BuildResult | None = None
    #: why it failed or was skipped, as raised (a single-target build re-raises it)
    error: MpforgeError | None = None

    def fail(self, exc: MpforgeError) -> None:
        self.status, self.reason, self.details, self.error = Status.FAILED, exc.one_line(), exc.details, exc

    def skip(self, exc: MpforgeError) -> None:
        self.status, self.reason, self.error = Status.SKIPPED, exc.one_line(), exc


#: called with a target's result each time its status changes
OnChange = Callable[[TargetResult], None]
#: given the targets about to be built, a ``with`` block that yields their :data:`OnChange`
#: (the task layer's display of a build, e.g. :class:`mpforge.cli.render.build.BuildProgress`)
Progress = Callable[[Sequence[Target]], AbstractContextManager[OnChange]]
#: makes one target: (target, jobs or None under a jobserver, make's extra environment,
#: the file descriptors make must inherit) -> its result
MakeOne = Callable[[Target, "int | None", dict[str, str], tuple[int, ...]], "BuildResult"]


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
    #: ccache's hits and misses over the whole run (None: built without ccache)
    ccache: CcacheStats | None = None
    _started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def failed(self) -> list[TargetResult]:
        return [r for r in self.results if r.status == Status.FAILED]

    @property
    def skipped(self) -> list[TargetResult]:
        return [r for r in self.results if r.status == Status.SKIPPED]

    @property
    def built(self) -> list[TargetResult]:
        return [r for r in self.results if r.status in (Status.OK, Status.CACHED)]

    def finish(self, ccache: CcacheStats | None) -> None:
        self.wall_seconds = time.monotonic() - self._started
        self.ccache = ccache


def run(targets: list[Target], results: dict[str, TargetResult], make: MakeOne, *, jobs: int,
        on_change: OnChange | None = None, keep_going: bool = True) -> float:
    """Make ``targets`` in parallel under a budget of ``jobs``; fill in ``results``.

    Returns the wall time of this parallel phase. ``make`` raising a
    :class:`~mpforge.core.errors.MpforgeError` fails its target only. Anything else is a
    bug in mpforge: with ``keep_going`` it fails its target, its traceback in the
    result's details (the other targets go on); without it (one target, made in this
    thread) it is raised, so ``--debug`` shows it where it happened.
    """
    started = time.monotonic()
    if not targets:
        return 0.0
    hear = on_change or (lambda result: None)
    stopping = threading.Event()  # Ctrl-C or SIGTERM reached the main thread

    def notify(result: TargetResult) -> None:
        # a make killed by the same Ctrl-C is not a failure worth a line of its own: the
        # task says once that the command was interrupted
        if not (stopping.is_set() or _interrupted(result.error)):
            hear(result)

    single = len(targets) == 1
    jobserver = None if single else Jobserver(jobs)
    work: queue.Queue[Target] = queue.Queue()
    for target in targets:
        work.put(target)

    def worker() -> None:
        while True:
            try:
                target = work.get_nowait()
            except queue.Empty:
                return
            result = results[target.name]
            token = b""
            try:
                if jobserver is not None:
                    token = jobserver.acquire()
                result.status, result.started = Status.BUILDING, time.monotonic()
                notify(result)
                if jobserver is None:
                    built = make(target, jobs, {}, ())
                else:
                    built = make(target, None, jobserver.make_env, jobserver.fds)
                result.status = Status.CACHED if built.cached else Status.OK
                result.size = built.manifest.get("size", {})
                result.cpu_seconds = built.cpu_seconds
                result.built = built
            except MpforgeError as exc:
                result.fail(exc)
            except Exception as exc:  # a bug must not hang the other workers
                if single and not keep_going:
                    raise
                result.status, result.reason = Status.FAILED, f"internal error: {exc!r}"
                result.details = traceback.format_exc()
                result.error = MpforgeError(result.reason, "a bug in mpforge: please report it with "
                                            "the traceback shown", result.details)
            finally:
                if token and jobserver is not None:
                    jobserver.release(token)
                result.duration = time.monotonic() - result.started if result.started else 0.0
            notify(result)

    if single:  # in this thread: Ctrl-C and --debug tracebacks reach the task directly
        worker()
        return time.monotonic() - started
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(jobs, len(targets)))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException:
        stopping.set()
        raise
    finally:
        assert jobserver is not None
        jobserver.close()
    return time.monotonic() - started


def _interrupted(error: MpforgeError | None) -> bool:
    """True for a command that died of Ctrl-C or SIGTERM (which stop mpforge too)."""
    code = getattr(error, "returncode", None)
    return code is not None and code in (-signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT,
                                         128 + signal.SIGTERM)
