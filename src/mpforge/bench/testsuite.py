"""``invoke bench-test``: ``invoke test`` against the tree's own ``run-tests``.

The same tests, in each of ``rounds`` rounds (default three), three ways, one after the
other so the machine's load is alike for all three:

* the tree's runner alone (``run-tests``: one process, one board, CPython started for
  every expected output);
* ``invoke test`` **cold**: the command as a user types it (a new process: start-up, the
  up-to-date checks of tree, deplibs and build, then the sharded run) with an empty
  cache of expected outputs (:mod:`mpforge.testing.expcache`);
* ``invoke test`` **warm**: the same command again, the cache filled by the cold run.

The figures are the medians over the rounds; every verdict of every run is compared
with the runner's. The targets: cold at most 60% of the runner's time, warm at most 40%.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from mpforge.bench.targets import BenchTarget
from mpforge.core.errors import BenchError
from mpforge.core.project import Target
from mpforge.firmware.pipeline import Pipeline


@dataclass
class TestBench:
    """The medians of a bench-test run, and whether every verdict agreed."""

    __test__ = False
    where: str
    tests: int
    runner_seconds: float  # the tree's run-tests, one process (one board): median
    cold_seconds: float  # invoke test with an empty cache of expected outputs: median
    warm_seconds: float  # invoke test again, the cache filled: median
    jobs: int
    same_verdicts: bool
    differing: list[str]
    unexpected_failures: list[str]
    rounds: int = 1
    #: every round's (runner, cold, warm) seconds, for the record
    samples: list[tuple[float, float, float]] = field(default_factory=list)

    #: the targets: ``invoke test`` at most these fractions of the tree's runner's time
    COLD_LIMIT: ClassVar[float] = 0.6
    WARM_LIMIT: ClassVar[float] = 0.4

    @property
    def cold_ratio(self) -> float:
        """Cold invoke test's time over the runner's (0.0 when the runner took no time)."""
        return self.cold_seconds / self.runner_seconds if self.runner_seconds else 0.0

    @property
    def warm_ratio(self) -> float:
        return self.warm_seconds / self.runner_seconds if self.runner_seconds else 0.0

    @property
    def limits(self) -> list[BenchTarget]:
        """The targets, when there is a runner time to compare with: the two ratios, and
        not one verdict that differs from the runner's (a faster run that judges
        differently is no win)."""
        if not self.runner_seconds:
            return []
        return [BenchTarget("verdicts that differ from run-tests'", len(self.differing), 0, not self.differing,
                            ", ".join(self.differing)),
                BenchTarget("invoke test, cold / the tree's run-tests", round(self.cold_ratio, 3),
                            self.COLD_LIMIT, self.cold_ratio <= self.COLD_LIMIT),
                BenchTarget("invoke test, warm / the tree's run-tests", round(self.warm_ratio, 3),
                            self.WARM_LIMIT, self.warm_ratio <= self.WARM_LIMIT)]

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "cold_ratio": round(self.cold_ratio, 3), "warm_ratio": round(self.warm_ratio, 3),
                "targets_checked": [t.as_dict() for t in self.limits]}


def _runner_verdicts(output: str) -> dict[str, str]:
    from mpforge.testing.testrun import parse_line
    verdicts = {}
    for line in output.splitlines():
        parsed = parse_line(line)
        if parsed:
            verdicts[parsed[1]] = parsed[0].value
    return verdicts


def _invoke_verdicts(report: Path) -> tuple[dict[str, str], list[str]]:
    """``invoke test --json``'s verdicts as the runner says them (known = fail, fixed =
    pass, as the runner knows no baseline), and its unexpected failures."""
    data = json.loads(report.read_text())
    plain = {"known": "fail", "fixed": "pass", "flaky": "fail"}
    verdicts = {r["test"]: plain.get(r["verdict"], r["verdict"]) for r in data["results"]}
    return verdicts, [r["test"] for r in data["results"] if r["verdict"] == "fail"]


def bench_test(pipeline: Pipeline, target: Target, jobs: int, pattern: str | None,
               emulator: str | None, rounds: int = 3,
               before_timing: Callable[[], None] = lambda: None) -> TestBench:
    """Time the tree's runner alone, then ``invoke test`` cold and warm, ``rounds`` times;
    compare every verdict. See the module docstring.

    ``before_timing`` is called once everything is built, before the first timed command:
    the timed ``invoke test`` commands take the checkout's lock themselves, so a caller that
    holds it gives it up there.

    :class:`BenchError` when ``pattern`` selects no test (there would be nothing to time)
    or ``rounds`` is not positive.
    """
    from mpforge.device.transport import open_device
    from mpforge.testing.testrun import TestPlan, emulator_device, exp_cache_dir, select_tests

    if rounds < 1:
        raise BenchError(f"bench-test --rounds {rounds}: nothing would be timed", "use 1 or more")
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
    if emulator is None:
        env["MICROPY_MICROPYTHON"] = str(pipeline.build_one(target).dist_dir / plan.binary)
    else:
        emulator_device(pipeline, port, emulator)  # built before anything is timed
    command = [sys.executable, "-m", "mpforge", "test", "--port", port.name, "--jobs", str(jobs),
               *(["-k", pattern] if pattern else []), *(["--emulator", emulator] if emulator else [])]
    if pipeline.mirror:
        command += ["--mirror", pipeline.mirror]
    # everything is built: the timed commands take the checkout's lock themselves
    before_timing()
    samples: list[tuple[float, float, float]] = []
    differing: set[str] = set()
    failures: set[str] = set()
    for number in range(1, rounds + 1):
        project.console.step(f"round {number}/{rounds}: the tree's run-tests alone, {len(tests)} tests")
        round_args, opened = list(args), None
        if emulator:
            # the reference: the tree's own tools/pyboard.py against one emulated board
            opened = open_device(emulator_device(pipeline, port, emulator), executor=project.executor)
            round_args[2:2] = ["--target", plan.target, "--device", opened.port.port]
            env["PYTHONPATH"] = str(project.tree / "tools")
            opened.port.close()  # its pty stays open in QEMU; the runner reopens it
            time.sleep(3)  # the tree's pyboard.py does not wait for the board to boot
        started = time.monotonic()
        try:
            output = project.executor.run(round_args, cwd=tests_dir, env=env, check=False,
                                          mutates=False).stdout
        finally:
            if opened:
                opened.close()
        runner = time.monotonic() - started
        for leftover in list(tests_dir.glob("*.exp")) + list(tests_dir.glob("*.out")):
            leftover.unlink()
        theirs = _runner_verdicts(output)
        shutil.rmtree(exp_cache_dir(project), ignore_errors=True)  # cold: nothing cached
        times = []
        for kind in ("cold", "warm"):
            project.console.step(f"round {number}/{rounds}: invoke test, {kind}, {jobs} shard(s)")
            with tempfile.TemporaryDirectory(prefix="mpforge-bench-") as scratch:
                report = Path(scratch) / "report.json"
                started = time.monotonic()
                project.executor.run([*command, "--json", str(report)], cwd=project.root, check=False,
                                     mutates=False)
                times.append(time.monotonic() - started)
                if not report.exists():
                    raise BenchError(f"bench-test: invoke test ({kind}) wrote no report",
                                     f"run `{' '.join(command[2:])}` to see why")
                ours, unexpected = _invoke_verdicts(report)
            differing |= {t for t in set(ours) | set(theirs) if ours.get(t) != theirs.get(t)}
            failures |= set(unexpected)
        samples.append((round(runner, 3), round(times[0], 3), round(times[1], 3)))
    return TestBench(f"{port.name}" + (f" on {emulator}" if emulator else " (host)"), len(tests),
                     round(statistics.median(s[0] for s in samples), 2),
                     round(statistics.median(s[1] for s in samples), 2),
                     round(statistics.median(s[2] for s in samples), 2), jobs, not differing,
                     sorted(differing), sorted(failures), rounds, samples)
