"""``invoke bench-test``: ``invoke test`` against the tree's own ``run-tests``.

The same tests, first through the tree's runner alone (one process, one board), then
through ``invoke test`` (sharded); every verdict is compared. The target: ``invoke
test`` takes at most 60% of the runner's time.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import ClassVar

from mpforge.bench.targets import BenchTarget
from mpforge.core.errors import BenchError
from mpforge.core.project import Target
from mpforge.firmware.pipeline import Pipeline


@dataclass
class TestBench:
    __test__ = False
    where: str
    tests: int
    runner_seconds: float  # the tree's run-tests, one process (one board)
    ours_seconds: float  # invoke test, sharded
    jobs: int
    same_verdicts: bool
    differing: list[str]
    unexpected_failures: list[str]

    #: the target: ``invoke test`` takes at most 60% of the tree's runner's time
    RATIO_LIMIT: ClassVar[float] = 0.6

    @property
    def ratio(self) -> float:
        """invoke test's time over the runner's (0.0 when the runner took no time)."""
        return self.ours_seconds / self.runner_seconds if self.runner_seconds else 0.0

    @property
    def limits(self) -> list[BenchTarget]:
        """The target, when there is a runner time to compare with."""
        if not self.runner_seconds:
            return []
        return [BenchTarget("invoke test / the tree's run-tests", round(self.ratio, 3),
                            self.RATIO_LIMIT, self.ratio <= self.RATIO_LIMIT)]

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ratio": round(self.ratio, 3),
                "targets_checked": [t.as_dict() for t in self.limits]}


def _runner_verdicts(output: str) -> dict[str, str]:
    from mpforge.testing.testrun import parse_line
    verdicts = {}
    for line in output.splitlines():
        parsed = parse_line(line)
        if parsed:
            verdicts[parsed[1]] = parsed[0].value
    return verdicts


def bench_test(pipeline: Pipeline, target: Target, jobs: int, pattern: str | None,
               emulator: str | None) -> TestBench:
    """Time the tree's runner alone, then ``invoke test``; compare every verdict.

    :class:`BenchError` when ``pattern`` selects no test (there would be nothing to time).
    """
    from mpforge.device.transport import open_device
    from mpforge.testing.testrun import TestPlan, Verdict, emulator_device, run_for_target, select_tests

    project, port = pipeline.project, target.port
    tests_dir = project.tree / "tests"
    plan = TestPlan.for_port(port, emulator is not None)
    tests = select_tests(tests_dir, plan.dirs, pattern)
    if not tests:
        raise BenchError(f"bench-test: no test of {port.name} matches"
                         + (f" -k {pattern!r}" if pattern else ""),
                         "widen -k, or leave it out to time the whole suite")
    env = {"MICROPY_CPYTHON3": sys.executable}
    args = [sys.executable, "run-tests", *tests]
    opened = None
    if emulator:
        # the reference: the tree's own tools/pyboard.py against one emulated board
        spec = emulator_device(pipeline, port, emulator)
        opened = open_device(spec)
        args[2:2] = ["--target", plan.target, "--device", opened.port.port]
        env["PYTHONPATH"] = str(project.tree / "tools")
        opened.port.close()  # its pty stays open in QEMU; the runner reopens it
        time.sleep(3)  # the tree's pyboard.py does not wait for the board to boot
    else:
        env["MICROPY_MICROPYTHON"] = str(pipeline.build_one(target).dist_dir / plan.binary)
    project.console.step(f"the tree's run-tests alone: {len(tests)} tests")
    started = time.monotonic()
    try:
        output = project.executor.run(args, cwd=tests_dir, env=env, check=False, mutates=False).stdout
    finally:
        if opened:
            opened.close()
    runner_seconds = time.monotonic() - started
    for leftover in list(tests_dir.glob("*.exp")) + list(tests_dir.glob("*.out")):
        leftover.unlink()
    theirs = _runner_verdicts(output)

    project.console.step(f"invoke test: {jobs} shard(s)")
    started = time.monotonic()
    report = run_for_target(pipeline, target, jobs=jobs, pattern=pattern, emulator=emulator)
    ours_seconds = time.monotonic() - started
    raw = {r.test: ("fail" if r.verdict in (Verdict.FAIL, Verdict.KNOWN) else
                    "pass" if r.verdict in (Verdict.PASS, Verdict.FIXED) else r.verdict.value)
           for r in report.results}
    differing = sorted(t for t in set(raw) | set(theirs) if raw.get(t) != theirs.get(t))
    return TestBench(f"{port.name}" + (f" on {emulator}" if emulator else " (host)"), len(tests),
                     round(runner_seconds, 2), round(ours_seconds, 2), jobs, not differing,
                     differing, [r.test for r in report.failures])
