"""The scheduler of ``invoke test``: shards of the tree's runner, boards that crash and
come back (or not), the files of dropped boards, retries of failures.

:class:`SuiteRun` is one run of the suite. Each of its methods does one job:

* :meth:`SuiteRun.runner` runs one runner process (``run-tests``) over some files and
  turns its lines into verdicts (:meth:`SuiteRun.verdict`);
* :meth:`SuiteRun.shard` runs a shard to its end: after a board stops answering the test it
  was running is a crash (:meth:`SuiteRun.crash`), the board is recovered and a new runner
  goes on with the files left; a board that does not come back is dropped
  (:meth:`SuiteRun.drop`) and its files become *orphans*;
* :meth:`SuiteRun.in_parallel` runs several shards at once, one thread each;
* :meth:`SuiteRun.first_pass` runs every file once (orphans in further rounds, on the
  boards left), :meth:`SuiteRun.retry` runs failures again, :meth:`SuiteRun.report` sorts
  the verdicts into a :class:`~mpforge.testing.results.TestReport`.

What starts a runner process is the one thing injected (:data:`Runner`): the real one is
:func:`mpforge.testing.testrun.run_suite`'s, through the executor; the tests give a fake
that prints ``pass``/``FAIL`` lines and abort markers, so every path above is tested
without a process. See :mod:`mpforge.testing.testrun` for what the runner is.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from mpforge.core.errors import MpforgeError
from mpforge.testing.results import (
    ABORT_MARKER,
    CONNECT_FAILED,
    MAX_CRASHES_IN_A_ROW,
    TestReport,
    TestResult,
    Verdict,
    apply_baseline,
    parse_line,
)

#: One runner process: ``runner(shard, files, on_line)`` runs the tree's runner for shard
#: ``shard`` over ``files``, hands ``on_line`` each line it prints, and returns the tail of
#: its output (for an error message); a runner that cannot be started raises MpforgeError.
Runner = Callable[[int, list[str], Callable[[str], None]], str]

#: ``recover(shard, note)``: bring shard's board back after it stopped answering (False:
#: it did not come back), telling ``note`` how.
Recover = Callable[[int, Callable[[str], None]], bool]


def shard(tests: list[str], count: int) -> list[list[str]]:
    """Split round-robin into ``count`` shards; files with the same name share a shard
    (the runner names its ``.exp``/``.out`` leftovers after the file name only)."""
    shards: list[list[str]] = [[] for _ in range(max(1, count))]
    home: dict[str, int] = {}
    for index, test in enumerate(tests):
        name = os.path.basename(test)
        slot = home.setdefault(name, index % len(shards))
        shards[slot].append(test)
    return [s for s in shards if s]


class SuiteRun:
    """One run of ``tests`` in ``jobs`` shards (see the module docstring).

    ``tests_dir``: where the runner leaves a failure's ``.exp``/``.out`` files (read into
    the verdict, then removed). ``boards`` names each shard's board (verdicts carry it).
    Without ``recover`` a board that stops answering ends the run (``aborted``). ``note``
    hears what happened to the boards (also kept in the report's ``notes``);
    ``on_result`` sees the first pass's verdicts as they come.
    """

    def __init__(self, tests: list[str], jobs: int, runner: Runner, *, tests_dir: Path,
                 boards: list[str] | None = None, recover: Recover | None = None,
                 note: Callable[[str], None] | None = None,
                 on_result: Callable[[TestResult], None] | None = None) -> None:
        self.tests = tests
        self.jobs = jobs
        self._runner = runner
        self.tests_dir = tests_dir
        self.boards = boards or []
        self._recover = recover
        self._note = note
        self._on_result = on_result
        self._lock = threading.Lock()  # the shards' threads share what follows
        self.results: list[TestResult] = []
        self.errors: list[MpforgeError] = []
        self.aborted: list[str] = []
        self.notes: list[str] = []
        self.alive = set(range(len(shard(tests, jobs))))  # shards whose board still answers
        self.orphans: list[str] = []  # files of dropped boards, not run yet

    # --- small things ----------------------------------------------------------------

    def say(self, line: str) -> None:
        """A note on the boards: kept for the report, and told as it happens."""
        with self._lock:
            self.notes.append(line)
        if self._note:
            self._note(line)

    def board(self, index: int) -> str:
        """Shard ``index``'s board name ('' on the host)."""
        return self.boards[index] if index < len(self.boards) else ""

    def _add(self, result: TestResult, into: list[TestResult], report_each: bool) -> None:
        with self._lock:
            into.append(result)
        if self._on_result and report_each:
            self._on_result(result)

    # --- one runner process ----------------------------------------------------------

    def verdict(self, index: int, verdict: Verdict, test: str, seconds: float) -> TestResult:
        """The result of one ``pass``/``FAIL``/``skip`` line; a failure gets the expected
        and actual output from the files the runner left (which are removed)."""
        result = TestResult(test, verdict, round(seconds, 3), shard=index, board=self.board(index))
        if verdict == Verdict.FAIL:
            leftovers = [self.tests_dir / (os.path.basename(test) + ext) for ext in (".exp", ".out")]
            if all(p.exists() for p in leftovers):
                result.expected = leftovers[0].read_bytes().decode("utf-8", "replace")
                result.output = leftovers[1].read_bytes().decode("utf-8", "replace")
            for p in leftovers:
                p.unlink(missing_ok=True)
        return result

    def runner(self, index: int, files: list[str], into: list[TestResult],
               errors: list[MpforgeError], report_each: bool) -> tuple[list[str], str | None]:
        """One runner process for shard ``index`` over ``files``: the files it gave a
        verdict for, and its abort message (None: it did not abort). A runner that ends
        early without aborting is an error (into ``errors``)."""
        last = time.monotonic()
        reported: list[str] = []
        abort: list[str] = []

        def seen(line: str) -> None:
            nonlocal last
            if line.startswith(ABORT_MARKER):
                abort.append(line[len(ABORT_MARKER):].strip())
                return
            parsed = parse_line(line)
            if parsed is None:
                return
            now = time.monotonic()
            reported.append(parsed[1])
            self._add(self.verdict(index, parsed[0], parsed[1], now - last), into, report_each)
            last = now

        try:
            tail = self._runner(index, files, seen)
        except MpforgeError as exc:
            errors.append(exc)
            return reported, None
        if abort:
            return reported, abort[0]
        if len(reported) < len(files):
            errors.append(MpforgeError(
                f"run-tests (shard {index + 1}) stopped after {len(reported)} of {len(files)} tests",
                "see its output below", tail))
        return reported, None

    # --- one shard, its board crashing -----------------------------------------------

    def shard(self, index: int, files: list[str], into: list[TestResult],
              errors: list[MpforgeError], report_each: bool) -> None:
        """Shard ``index`` over ``files``: a runner, and after a crash of its board a new
        one over the files left (the board recovered), or those files to the orphans."""
        pending = list(files)
        crashes = 0
        while pending:
            reported, abort = self.runner(index, pending, into, errors, report_each)
            if abort is None:
                return
            left = [f for f in pending if f not in set(reported)]
            crashes = 1 if reported else crashes + 1
            if self._recover is None:  # no way to bring it back: the run ends here
                with self._lock:
                    self.aborted.append(abort)
                return
            left = self.crash(index, abort, left, into, report_each)
            if crashes >= MAX_CRASHES_IN_A_ROW or not self._recover(index, self.say):
                self.drop(index, left, f"{crashes} crashes in a row" if crashes >= MAX_CRASHES_IN_A_ROW
                          else "it did not come back")
                return
            pending = left

    def crash(self, index: int, abort: str, left: list[str], into: list[TestResult],
              report_each: bool) -> list[str]:
        """Shard ``index``'s board stopped answering (``abort`` says how) with ``left`` not
        run: the first of them was running, a crash (unless the board never answered at
        all); the files still to run."""
        name = self.board(index) or f"shard {index + 1}"
        if abort.startswith(CONNECT_FAILED) or not left:
            self.say(f"{name} did not answer ({abort})")
            return left
        crashed, rest = left[0], left[1:]
        self._add(TestResult(crashed, Verdict.FAIL, shard=index, board=self.board(index),
                             reason=f"crash: {name} stopped answering", output=abort + "\n"),
                  into, report_each)
        self.say(f"{crashed}: {name} stopped answering ({abort}); reported as a crash")
        return rest

    def drop(self, index: int, left: list[str], why: str) -> None:
        """Shard ``index``'s board is given up; its ``left`` files go to the others."""
        with self._lock:
            self.alive.discard(index)
            self.orphans.extend(left)
        name = self.board(index) or f"shard {index + 1}"
        self.say(f"{name} dropped ({why})" + (f"; its {len(left)} remaining test(s) go to the other boards"
                                              if left else ""))

    # --- shards at once, passes --------------------------------------------------------

    def in_parallel(self, groups: dict[int, list[str]], into: list[TestResult],
                    errors: list[MpforgeError], report_each: bool) -> None:
        """Shard index -> its files, all shards at once, one thread (runner) each."""
        threads = [threading.Thread(target=self.shard, args=(index, files, into, errors, report_each),
                                    daemon=True) for index, files in groups.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def first_pass(self) -> None:
        """Every file once: the shards, then the files of dropped boards on the boards
        left (in rounds), until none is left or no board is. The first error is raised."""
        self.in_parallel(dict(enumerate(shard(self.tests, self.jobs))), self.results, self.errors, True)
        while self.orphans and self.alive and not self.errors:
            moved, self.orphans[:] = list(self.orphans), []
            live = sorted(self.alive)
            groups = {live[i]: files for i, files in enumerate(shard(moved, len(live)))}
            self.say(f"{len(moved)} test(s) moved to "
                     + ", ".join(self.board(i) or f"shard {i + 1}" for i in groups))
            self.in_parallel(groups, self.results, self.errors, True)
        if self.errors:
            raise self.errors[0]
        if self.orphans:
            self.aborted.append(f"no board left to run {len(self.orphans)} test(s): "
                                + ", ".join(sorted(self.orphans)))

    def retry(self, retries: int) -> None:
        """The failures run again, up to ``retries`` times, each on its own shard (or on a
        board still answering, if its own was dropped); a pass on a retry makes it flaky."""
        for _ in range(retries):
            failing = {r.test: r for r in self.results if r.verdict == Verdict.FAIL}
            if not failing or self.aborted or not self.alive:  # nothing to retry, or the target is gone
                return
            groups: dict[int, list[str]] = {}
            live = sorted(self.alive)
            for turn, result in enumerate(failing.values()):
                home = result.shard if result.shard in self.alive else live[turn % len(live)]
                groups.setdefault(home, []).append(result.test)
            again: list[TestResult] = []
            # a retry runner that stops early leaves its tests failed: no error of its own
            self.in_parallel(groups, again, [], False)
            for retried in again:
                first = failing.pop(retried.test, None)
                if first is not None:
                    merge_retry(first, retried)
            for unreported in failing.values():
                unreported.attempts += 1

    def report(self, *, seconds: float, target: str, retries: int) -> TestReport:
        """The verdicts in the order the tests were given."""
        order = {t: i for i, t in enumerate(self.tests)}
        self.results.sort(key=lambda r: order.get(r.test, len(order)))
        return TestReport(self.results, round(seconds, 2), self.jobs, target,
                          aborted="; ".join(self.aborted), retries=retries, notes=self.notes)

    def run(self, *, known: Mapping[str, str] | None = None, retries: int = 0,
            target: str = "unix") -> TestReport:
        """The whole run: the first pass, the known differences applied to it (so a known
        one is never retried), the retries, the report."""
        started = time.monotonic()
        self.first_pass()
        apply_baseline(self.results, known or {})
        self.retry(retries)
        return self.report(seconds=time.monotonic() - started, target=target, retries=retries)


def merge_retry(result: TestResult, retry: TestResult) -> None:
    """Fold a retry's outcome into a failed ``result``: a pass makes it flaky (the first
    failure's diff is kept); anything else leaves it failed."""
    result.attempts += 1
    result.seconds = round(result.seconds + retry.seconds, 3)
    if retry.verdict == Verdict.PASS:
        result.verdict = Verdict.FLAKY
    elif retry.verdict == Verdict.FAIL and not (result.expected or result.output):
        result.expected, result.output = retry.expected, retry.output
