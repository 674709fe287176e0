"""``invoke ci``: a whole pipeline, non-interactively, with results CI systems show.

Steps (each one result: ok / failed / skipped, with its time): doctor, fetch,
patch, build (the matrix of the selected ports and boards), test, size
(against a baseline when given).

The test step runs every suite the selected ports' data declares
(:func:`suites`): a host port's suite (on its coverage variant with
``coverage``), then each of its ``[test.host.variants]`` (``--emit native``,
``thread/``), each with its own baseline; a port without a host suite but with an
emulator (stmhal: QEMU) runs its device suite on emulated boards, one per shard.
Failures are retried ``retries`` times (default once); a test that passes on a
retry is "flaky", named but not failing. Everything that can run runs; the exit
status is non-zero if anything failed. :func:`run_ci` returns a
:class:`CiReport`; the result files (``summary.json``, ``junit.xml``,
``summary.md``, ``size.md``) are written from it by :mod:`mpforge.cli.render.ci`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.core.config import PortDef
from mpforge.core.errors import ConfigError, MpforgeError
from mpforge.core.report import Reporter
from mpforge.firmware import doctor as doctor_mod
from mpforge.firmware import size as size_mod
from mpforge.firmware.matrix import MatrixReport, Progress, Status
from mpforge.firmware.pipeline import BuildOptions, Pipeline
from mpforge.firmware.selection import Selection
from mpforge.testing.testrun import RunOptions, TestReport, Verdict, run_for_target


@dataclass
class Step:
    name: str
    status: str = "skipped"  # ok / failed / skipped
    seconds: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class Suite:
    """One test suite of a CI run: a name for the reports, and how to run it."""

    name: str
    port: PortDef
    run: RunOptions = RunOptions()
    emulator: str = ""  # run on the port's emulated boards
    coverage: bool = False  # on the port's coverage variant


def suites(ports: Sequence[PortDef], *, coverage: bool = False) -> list[Suite]:
    """The suites a CI run tests, from the ports' data; see the module docstring."""
    found: list[Suite] = []
    for port in ports:
        host = port.test.host
        if host is not None:
            measured = coverage and "coverage" in port.variants
            found.append(Suite(port.name + ("-coverage" if measured else ""), port, coverage=measured))
            found += [Suite(f"{port.name}-{v.name}", port, RunOptions.of(v)) for v in host.variants.values()]
        elif port.test.device is not None and port.test.emulators:
            emulator = sorted(port.test.emulators)[0]
            found.append(Suite(f"{port.name} ({emulator})", port, emulator=emulator))
    return found


@dataclass
class CiReport:
    steps: list[Step] = field(default_factory=list)
    matrix: MatrixReport | None = None
    #: one report per suite, in the order run
    tests: list[TestReport] = field(default_factory=list)
    sizes: list = field(default_factory=list)
    #: the sizes were compared with a baseline (the size table then shows deltas)
    size_baseline: bool = False
    #: result files that could not be written (the run itself is described in full)
    output_error: str = ""

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.steps) and not self.output_error


def _step(report: CiReport, name: str, console: Reporter, action: Callable[[Step], object]) -> object:
    """Run one step, recording its outcome; a library error fails the step, not the run."""
    step = Step(name)
    report.steps.append(step)
    console.step(name)
    started = time.monotonic()
    try:
        result = action(step)
        if step.status == "skipped":
            step.status = "ok"
        return result
    except MpforgeError as exc:
        step.status, step.detail = "failed", exc.one_line()
        console.error(f"{name}: {exc.one_line()}")
        return None
    finally:
        step.seconds = round(time.monotonic() - started, 2)


def run_ci(selection: Selection, *, mirror: str | None, options: BuildOptions,
           size_baseline: Path | None = None, retries: int = 1,
           progress: Progress | None = None, coverage: Path | None = None,
           tests: str = "all") -> CiReport:
    """Run the pipeline; see the module docstring. Never raises for what a step ran
    into: that is recorded in the report (``ok`` is then false).
    ``options``: how the targets are built (its job budget also shards the tests);
    ``progress``: what hears of each target's progress in the build step;
    ``coverage``: measure the host suites on their coverage variant, reports there;
    ``tests``: ``all`` (every suite the data declares) or ``none`` (build only: a board
    matrix whose suite runs in a job of its own)."""
    if tests not in ("all", "none"):
        raise ConfigError(f"--tests {tests}: not a choice", "use all or none")
    project = selection.project
    console = project.console
    pipeline = Pipeline(project, mirror, keep_going=True, options=options)
    report = CiReport()

    def doctor(step: Step) -> None:
        checks = doctor_mod.diagnose(project, selection.ports)
        missing = [c.name for c in checks if c.required and not c.found]
        if missing:  # the targets that need them are skipped by the build step
            step.detail = f"missing: {', '.join(missing)}"
            console.warn(f"doctor: {step.detail}")

    def fetch_and_patch(step: Step) -> None:
        tree = pipeline.tree(selection.ports)
        if tree.failed_ports:
            raise next(iter(tree.failed_ports.values()))
        step.detail = f"{tree.describe}, {len(tree.patches)} patches"

    def build(step: Step) -> None:
        targets = selection.targets(pipeline)
        with progress(targets) if progress else nullcontext(None) as on_change:
            report.matrix = pipeline.build(targets, options, on_change)
        failed = [r.target for r in report.matrix.failed]
        step.detail = f"{len(targets)} targets" + (f", failed: {', '.join(failed)}" if failed else "")
        if report.matrix.ccache:
            step.detail += f"; {report.matrix.ccache.describe()}"
        if failed:
            step.status = "failed"

    def test(step: Step) -> None:
        if tests == "none":
            step.detail = "--tests none"
            return
        planned = suites(selection.ports, coverage=coverage is not None)
        if not planned:
            step.detail = "no port with a host or emulated test suite selected"
            return
        details, failed = [], False
        for suite in planned:
            target = project.target(suite.port.name)
            if report.matrix and any(r.target == target.name and r.status == Status.FAILED
                                     for r in report.matrix.results):
                details.append(f"{suite.name}: skipped, {target.name} did not build")
                continue
            try:
                result = run_for_target(pipeline, target, jobs=options.budget, retries=retries,
                                       emulator=suite.emulator or None, run=suite.run, name=suite.name,
                                       coverage=(coverage / suite.port.name) if suite.coverage and coverage
                                       else None)
            except MpforgeError as exc:  # one suite that cannot run does not hide the others
                details.append(f"{suite.name}: {exc.one_line()}")
                failed = True
                continue
            report.tests.append(result)
            detail = f"{suite.name}: {_test_counts(result)}"
            if result.aborted:
                detail += f"; aborted: {result.aborted}"
            if result.coverage is not None:
                detail += f"; coverage {result.coverage.percent:.1f}% of lines"
            details.append(detail)
            failed = failed or not result.ok
        step.detail = "; ".join(details)
        if failed:
            step.status = "failed"

    def size(step: Step) -> None:
        baseline = size_mod.load_baseline(size_baseline) if size_baseline else None
        built = {r.target for r in (report.matrix.results if report.matrix else [])
                 if r.status in (Status.OK, Status.CACHED)}
        current = {t: s for t, s in size_mod.current_sizes(project.dist_root).items() if t in built}
        report.sizes = size_mod.compare(current, baseline)
        report.size_baseline = baseline is not None

    _step(report, "doctor", console, doctor)
    _step(report, "fetch and patch", console, fetch_and_patch)
    fetched = report.steps[-1].status == "ok"
    for name, action in (("build", build), ("test", test), ("size", size)):
        if fetched:
            _step(report, name, console, action)
        else:
            report.steps.append(Step(name, "skipped", 0.0, "the tree could not be fetched"))
    return report


def _test_counts(tests: TestReport) -> str:
    """``512 passed, 1 failed, 20 skipped, 4 known, 1 flaky (basics/x.py)``."""
    text = (f"{tests.count(Verdict.PASS)} passed, {tests.count(Verdict.FAIL)} failed, "
            f"{tests.count(Verdict.SKIP)} skipped, {tests.count(Verdict.KNOWN)} known")
    if tests.flaky:
        text += f", {len(tests.flaky)} flaky ({', '.join(r.test for r in tests.flaky)})"
    return text


