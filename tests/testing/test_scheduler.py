"""The suite's scheduler (:class:`mpforge.testing.scheduler.SuiteRun`) with a fake runner:
shards, crashes and recovery, dropped boards and their files, retries, errors; no process.

The fake runner plays a board: ``FakeBoards(outcomes)`` answers each test with the verdict
``outcomes`` gives it (a list: one per try), or stops answering (``"crash"``: the abort
line the pyboard shim prints), and records which shard ran what."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mpforge.core.errors import MpforgeError
from mpforge.testing.results import ABORT_MARKER, CONNECT_FAILED, MAX_CRASHES_IN_A_ROW, Verdict
from mpforge.testing.scheduler import SuiteRun

TESTS = [f"basics/t{i}.py" for i in range(6)]


class FakeBoards:
    """The runner processes of a run. ``outcomes[test]``: what each try of it does
    (``pass``, ``FAIL``, ``skip``, ``crash``; the last one repeats); default ``pass``.
    ``dead``: shards whose board answers nothing (before any test). ``stop_after``:
    shard -> how many verdicts its runner gives before it ends without a word."""

    def __init__(self, outcomes: dict[str, list[str]] | None = None, dead: set[int] = frozenset(),
                 stop_after: dict[int, int] | None = None) -> None:
        self.outcomes = outcomes or {}
        self.dead = set(dead)
        self.stop_after = stop_after or {}
        self.tries: dict[str, int] = {}
        self.ran: list[tuple[int, list[str]]] = []  # (shard, files) of each runner started
        self._lock = threading.Lock()

    def __call__(self, index: int, files: list[str], on_line: Callable[[str], None]) -> str:
        with self._lock:
            self.ran.append((index, list(files)))
        if index in self.dead:
            on_line(f"{ABORT_MARKER} {CONNECT_FAILED} board {index} is silent")
            return ""
        for count, test in enumerate(files):
            if count == self.stop_after.get(index, -1):
                return "the tail of its output"
            with self._lock:
                tried = self.tries.get(test, 0)
                self.tries[test] = tried + 1
            plan = self.outcomes.get(test, ["pass"])
            outcome = plan[min(tried, len(plan) - 1)]
            if outcome == "crash":
                on_line(f"{ABORT_MARKER} no answer within 5 s")
                return ""
            on_line(f"{outcome} {test}")
        return ""


def suite(boards: FakeBoards, tmp_path: Path, *, jobs: int = 2, recover=None, tests=TESTS,
          **kwargs) -> SuiteRun:
    return SuiteRun(list(tests), jobs, boards, tests_dir=tmp_path, boards=[f"b{i}" for i in range(jobs)],
                    recover=recover, **kwargs)


def verdicts(report) -> dict[str, Verdict]:
    return {r.test: r.verdict for r in report.results}


def test_every_file_runs_once_in_its_shard_and_the_report_keeps_the_given_order(tmp_path):
    boards = FakeBoards()
    seen = []
    report = suite(boards, tmp_path, jobs=3, on_result=seen.append).run()
    assert sorted(boards.ran) == [(0, TESTS[0::3]), (1, TESTS[1::3]), (2, TESTS[2::3])]
    assert [r.test for r in report.results] == TESTS
    assert {r.test: r.board for r in report.results}["basics/t1.py"] == "b1"
    assert sorted(r.test for r in seen) == TESTS  # the first pass, as it came
    assert not report.aborted and report.notes == []


def test_a_failure_reads_and_removes_the_runners_leftovers(tmp_path):
    (tmp_path / "t2.py.exp").write_text("1\n")
    (tmp_path / "t2.py.out").write_text("2\n")
    report = suite(FakeBoards({"basics/t2.py": ["FAIL"]}), tmp_path).run()
    failed = next(r for r in report.results if r.test == "basics/t2.py")
    assert (failed.verdict, failed.expected, failed.output) == (Verdict.FAIL, "1\n", "2\n")
    assert not list(tmp_path.iterdir())


def test_known_differences_are_not_retried_and_a_passing_retry_is_flaky(tmp_path):
    boards = FakeBoards({"basics/t1.py": ["FAIL", "pass"], "basics/t2.py": ["FAIL"],
                         "basics/t3.py": ["FAIL"]})
    report = suite(boards, tmp_path).run(known={"basics/t3.py": "CPython differs"}, retries=2)
    got = {r.test: (r.verdict, r.attempts) for r in report.results}
    assert got["basics/t1.py"] == (Verdict.FLAKY, 2)
    assert got["basics/t2.py"] == (Verdict.FAIL, 3)  # failed every try
    assert boards.tries["basics/t3.py"] == 1 and got["basics/t3.py"][0] == Verdict.KNOWN
    # each failure retried on its own shard; t1 no more once it passed
    assert sorted(boards.ran[2:]) == [(0, ["basics/t2.py"]), (0, ["basics/t2.py"]), (1, ["basics/t1.py"])]


def test_a_crash_is_a_failure_the_board_recovered_and_the_shard_goes_on(tmp_path):
    recovered = []

    def recover(index, note):
        recovered.append(index)
        note(f"b{index} power-cycled")
        return True

    notes = []
    report = suite(FakeBoards({"basics/t2.py": ["crash", "pass"]}), tmp_path, recover=recover,
                   note=notes.append).run()
    crashed = next(r for r in report.results if r.test == "basics/t2.py")
    assert crashed.verdict == Verdict.FAIL and crashed.reason == "crash: b0 stopped answering"
    assert verdicts(report)["basics/t4.py"] == Verdict.PASS  # the rest of the shard ran
    assert recovered == [0]
    assert notes[0].startswith("basics/t2.py: b0 stopped answering") and "b0 power-cycled" in notes


def test_a_board_that_does_not_come_back_is_dropped_and_its_files_run_on_the_others(tmp_path):
    boards = FakeBoards({"basics/t2.py": ["crash"]})
    report = suite(boards, tmp_path, recover=lambda index, note: False).run()
    assert len(report.results) == len(TESTS)  # every file once
    assert verdicts(report)["basics/t4.py"] == Verdict.PASS
    assert (1, ["basics/t4.py"]) in boards.ran  # moved to the board left
    assert any("b0 dropped (it did not come back)" in n for n in report.notes)
    assert any("1 test(s) moved to b1" in n for n in report.notes)
    assert not report.aborted


def test_a_board_silent_from_the_start_crashes_no_test_and_is_dropped_after_three_tries(tmp_path):
    boards = FakeBoards(dead={0})
    report = suite(boards, tmp_path, recover=lambda index, note: True).run()
    assert [i for i, _ in boards.ran].count(0) == MAX_CRASHES_IN_A_ROW
    assert all(r.verdict == Verdict.PASS for r in report.results) and len(report.results) == len(TESTS)
    assert any(f"{MAX_CRASHES_IN_A_ROW} crashes in a row" in n for n in report.notes)


def test_with_no_board_left_the_run_is_aborted_naming_the_tests_not_run(tmp_path):
    report = suite(FakeBoards(dead={0, 1}), tmp_path, recover=lambda index, note: False).run()
    assert report.results == []
    assert report.aborted == f"no board left to run {len(TESTS)} test(s): " + ", ".join(TESTS)


def test_without_recovery_a_crash_ends_the_run_and_nothing_is_retried(tmp_path):
    boards = FakeBoards({"basics/t0.py": ["FAIL"], "basics/t3.py": ["crash"]})
    report = suite(boards, tmp_path).run(retries=3)
    assert report.aborted == "no answer within 5 s"
    assert boards.tries["basics/t0.py"] == 1


def test_a_runner_that_stops_early_is_an_error_with_its_output(tmp_path):
    with pytest.raises(MpforgeError) as caught:
        suite(FakeBoards(stop_after={1: 1}), tmp_path).run()
    assert "run-tests (shard 2) stopped after 1 of 3 tests" in str(caught.value.one_line())
    assert caught.value.details == "the tail of its output"


def test_a_runner_that_cannot_start_is_raised(tmp_path):
    def broken(index, files, on_line):
        raise MpforgeError("python3 not found", "install it")

    with pytest.raises(MpforgeError, match="python3 not found"):
        SuiteRun(TESTS, 2, broken, tests_dir=tmp_path).run()
