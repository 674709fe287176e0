"""What a test run yields: each test's :class:`Verdict` and :class:`TestResult`, the run's
:class:`TestReport`, the markers the runner's output carries and how a line of it is read."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mpforge.testing.coverage import CoverageReport

_LINE = re.compile(r"^(pass|FAIL|skip) +(\S+)\s*$")
#: what the pyboard shim prints before it gives up on a silent target
ABORT_MARKER = "mpforge-abort:"
#: how the shim's abort line goes on when the board did not answer before any test ran
CONNECT_FAILED = "no connection:"
#: a board that crashes this many times in a row (no verdict in between) is dropped
MAX_CRASHES_IN_A_ROW = 3


class Verdict(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    KNOWN = "known"
    FIXED = "fixed"  # listed as a known difference, but passes now
    FLAKY = "flaky"  # failed, then passed on a retry: does not fail the run


def _lines(text: str) -> list[str]:
    """``text`` cut after each newline only (``str.splitlines`` would also cut at the
    form feeds, record separators and the like a test may print)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


@dataclass
class TestResult:
    """One test file's outcome. For a failure, ``expected``/``output`` are the first
    failing try's; ``attempts`` counts the tries (1 without retries)."""

    __test__ = False  # not a pytest class
    test: str
    verdict: Verdict
    seconds: float = 0.0
    expected: str = ""
    output: str = ""
    reason: str = ""
    attempts: int = 1
    shard: int = 0  # the shard (runner options, device) it ran on; retries use the same
    board: str = ""  # the board it ran on (a farm place, a device spec); '' on the host

    def diff(self) -> str:
        """The unified diff of the (first) failing try's expected and actual output."""
        return "".join(difflib.unified_diff(
            _lines(self.expected), _lines(self.output),
            fromfile=f"{self.test} (expected)", tofile=f"{self.test} (output)"))

    def failure_text(self) -> str:
        """What to show for a failure: the diff, else the raw output, else a placeholder."""
        return self.diff() or self.output or "(no output)"


@dataclass
class TestReport:
    __test__ = False
    results: list[TestResult]
    seconds: float
    jobs: int
    target: str
    baseline: str = ""
    aborted: str = ""
    retries: int = 0  # the retry budget the run had (--retry-failed)
    #: with ``coverage``: what gcovr measured and wrote (:mod:`mpforge.testing.coverage`)
    coverage: CoverageReport | None = None
    #: what was tested (:meth:`Firmware.describe`); empty when dist/ has no manifest for it
    firmware: dict[str, str] = field(default_factory=dict)
    #: the boards, in shard order (:meth:`mpforge.device.boards.Board.describe`)
    boards: list[dict[str, str]] = field(default_factory=list)
    #: what happened to the boards: power cycles, boards dropped, tests moved, fewer places
    notes: list[str] = field(default_factory=list)

    def count(self, verdict: Verdict) -> int:
        return sum(r.verdict == verdict for r in self.results)

    @property
    def failures(self) -> list[TestResult]:
        return [r for r in self.results if r.verdict == Verdict.FAIL]

    @property
    def flaky(self) -> list[TestResult]:
        """Tests that failed, then passed on a retry (they do not fail the run)."""
        return [r for r in self.results if r.verdict == Verdict.FLAKY]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.aborted


def apply_baseline(results: list[TestResult], known: Mapping[str, str]) -> None:
    for result in results:
        if result.test in known:
            if result.verdict == Verdict.FAIL:
                result.verdict, result.reason = Verdict.KNOWN, known[result.test]
            elif result.verdict == Verdict.PASS:
                result.verdict, result.reason = Verdict.FIXED, known[result.test]


def parse_line(line: str) -> tuple[Verdict, str] | None:
    match = _LINE.match(line)
    if not match:
        return None
    return {"pass": Verdict.PASS, "FAIL": Verdict.FAIL, "skip": Verdict.SKIP}[match.group(1)], \
        match.group(2)
