"""``invoke ci``: a whole pipeline, non-interactively, with results CI systems show.

Steps (each one result: ok / failed / skipped, with its time): doctor, fetch,
patch, build (the matrix of the selected ports and boards), test (the host
suite when a host port is selected; failures retried ``retries`` times, default
once, and a test that passes on a retry is "flaky", named but not failing),
size (against a baseline when given). Everything that can run runs; the exit
status is non-zero if anything failed.

Into ``--out`` (default ``ci-out/``):

``summary.json``  every step and target: status, time, sizes, test counts
``junit.xml``     a testsuite of build targets (one testcase each) plus the
                  host test suite: a red build shows as a failed testcase
                  (built as one element tree, every text made XML-safe by
                  :mod:`mpforge.testing.reports`, so it loads whatever a test printed)
``size.md``       the size table (with deltas against a baseline)
``summary.md``    the Markdown job summary, also appended to
                  ``$GITHUB_STEP_SUMMARY`` when that is set
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mpforge.build import doctor as doctor_mod
from mpforge.build import size as size_mod
from mpforge.build.matrix import MatrixReport, OnChange, Status
from mpforge.build.pipeline import BuildOptions, Pipeline
from mpforge.build.selection import Selection
from mpforge.core.errors import MpforgeError
from mpforge.testing.reports import ReportError, element, json_clean, readable, write_files, xml_text
from mpforge.testing.testrun import TestReport, Verdict, junit_suite, run_for_target


@dataclass
class Step:
    name: str
    status: str = "skipped"  # ok / failed / skipped
    seconds: float = 0.0
    detail: str = ""


@dataclass
class CiReport:
    steps: list[Step] = field(default_factory=list)
    matrix: MatrixReport | None = None
    tests: TestReport | None = None
    sizes: list = field(default_factory=list)
    size_markdown: str = ""  # the size table, written as size.md with the other files
    #: result files that could not be written (the run itself is described in full)
    output_error: str = ""

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.steps) and not self.output_error


def _step(report: CiReport, name: str, console, action) -> object:
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


def run_ci(selection: Selection, out: Path, *, mirror: str | None, jobs: int,
           size_baseline: Path | None = None, retries: int = 1,
           on_change: OnChange | None = None) -> CiReport:
    """Run the pipeline; see the module docstring. Never raises for what a step or a
    result file ran into: that is recorded in the report (``ok`` is then false).
    ``on_change`` hears of each target's progress in the build step."""
    project = selection.project
    console = project.console
    ports = [p.name for p in selection.ports]
    pipeline = Pipeline(project, mirror, keep_going=True)
    report = CiReport()

    def doctor(step: Step) -> None:
        checks = doctor_mod.diagnose(project, ports)
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
        report.matrix = pipeline.build(targets, BuildOptions(jobs=jobs), on_change)
        failed = [r.target for r in report.matrix.failed]
        step.detail = f"{len(targets)} targets" + (f", failed: {', '.join(failed)}" if failed else "")
        if report.matrix.ccache:
            step.detail += f"; {report.matrix.ccache.describe()}"
        if failed:
            step.status = "failed"

    def test(step: Step) -> None:
        host = [p for p in selection.ports if p.test.host]
        if not host:
            step.detail = "no host port selected"
            return
        target = project.target(host[0].name)
        if report.matrix and any(r.target == target.name and r.status == Status.FAILED
                                 for r in report.matrix.results):
            step.status, step.detail = "skipped", f"{target.name} did not build"
            return
        report.tests = run_for_target(pipeline, target, jobs=jobs, retries=retries)
        t = report.tests
        step.detail = _test_counts(t)
        if t.aborted:
            step.detail += f"; aborted: {t.aborted}"
        if not t.ok:
            step.status = "failed"

    def size(step: Step) -> None:
        baseline = size_mod.load_baseline(size_baseline) if size_baseline else None
        built = {r.target for r in (report.matrix.results if report.matrix else [])
                 if r.status in (Status.OK, Status.CACHED)}
        current = {t: s for t, s in size_mod.current_sizes(project.dist_root).items() if t in built}
        report.sizes = size_mod.compare(current, baseline)
        report.size_markdown = size_mod.to_markdown(report.sizes, baseline is not None)

    _step(report, "doctor", console, doctor)
    _step(report, "fetch and patch", console, fetch_and_patch)
    fetched = report.steps[-1].status == "ok"
    for name, action in (("build", build), ("test", test), ("size", size)):
        if fetched:
            _step(report, name, console, action)
        else:
            report.steps.append(Step(name, "skipped", 0.0, "the tree could not be fetched"))
    try:
        write_outputs(report, out)
    except ReportError as exc:
        report.output_error = exc.one_line()
    return report


def _test_counts(tests: TestReport) -> str:
    """``512 passed, 1 failed, 20 skipped, 4 known, 1 flaky (basics/x.py)``."""
    text = (f"{tests.count(Verdict.PASS)} passed, {tests.count(Verdict.FAIL)} failed, "
            f"{tests.count(Verdict.SKIP)} skipped, {tests.count(Verdict.KNOWN)} known")
    if tests.flaky:
        text += f", {len(tests.flaky)} flaky ({', '.join(r.test for r in tests.flaky)})"
    return text


def _summary(report: CiReport) -> dict:
    data: dict = {"ok": report.ok, "steps": [asdict(s) for s in report.steps], "targets": [],
                  "tests": None}
    if report.matrix:
        data["targets"] = [{"target": r.target, "status": r.status.value, "seconds": round(r.duration, 2),
                            "reason": r.reason, "size": r.size} for r in report.matrix.results]
        data["ccache"] = report.matrix.ccache.as_dict() if report.matrix.ccache else None
    if report.tests:
        data["tests"] = {v.value: report.tests.count(v) for v in Verdict}
        data["flaky_tests"] = [r.test for r in report.tests.flaky]
        data["failed_tests"] = [r.test for r in report.tests.failures]
    return json_clean(data)  # type: ignore[return-value]


def _junit(report: CiReport) -> str:
    """``<testsuites>``: the build targets (one testcase each) and the host test suite,
    built as elements (never text parsed back), every text XML-safe."""
    suites = element(None, "testsuites")
    if report.matrix:
        results = report.matrix.results
        build = element(suites, "testsuite", {
            "name": "build", "tests": len(results),
            "failures": sum(r.status == Status.FAILED for r in results),
            "skipped": sum(r.status == Status.SKIPPED for r in results)})
        for r in results:
            case = element(build, "testcase", {"classname": "build", "name": r.target,
                                               "time": f"{r.duration:.2f}"})
            if r.status == Status.FAILED:
                element(case, "failure", {"message": r.reason}, r.details or r.reason)
            elif r.status == Status.SKIPPED:
                element(case, "skipped", {"message": r.reason})
    if report.tests:
        suites.append(junit_suite(report.tests))
    return xml_text(suites)


def _markdown(report: CiReport) -> str:
    icon = {"ok": "✅", "failed": "❌", "skipped": "⏭️", "cached": "✅"}
    lines = ["## mpforge ci: " + ("passed" if report.ok else "failed"), "",
             "| step | status | time | detail |", "|---|---|---|---|"]
    lines += [f"| {s.name} | {icon.get(s.status, '')} {s.status} | {s.seconds:.1f} s | {readable(s.detail)} |"
              for s in report.steps]
    if report.matrix:
        lines += ["", "| target | status | time | text | data | bss | reason |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r.target} | {icon.get(r.status.value, '')} {r.status.value} | {r.duration:.1f} s | "
                  + " | ".join(str(r.size.get(k, "")) for k in ("text", "data", "bss"))
                  + f" | {readable(r.reason)} |" for r in report.matrix.results]
        if report.matrix.ccache:
            lines += ["", report.matrix.ccache.markdown()]
    if report.tests:
        t = report.tests
        lines += ["", f"Tests ({t.target}): {t.count(Verdict.PASS)} passed, {t.count(Verdict.FAIL)} failed, "
                  f"{t.count(Verdict.SKIP)} skipped, {t.count(Verdict.KNOWN)} known differences, "
                  f"{t.count(Verdict.FLAKY)} flaky"]
        if t.failures:
            lines += ["", "Failed: " + ", ".join(f"`{readable(r.test)}`" for r in t.failures)]
        if t.flaky:
            lines += ["", "Flaky (failed, then passed on a retry; fix them or list them): "
                      + ", ".join(f"`{readable(r.test)}`" for r in t.flaky)]
    return "\n".join(lines) + "\n"


def write_outputs(report: CiReport, out: Path) -> None:
    """Write the result files into ``out``; each one that can be written is, then a
    :class:`~mpforge.testing.reports.ReportError` names the others. Also appends the Markdown
    summary to ``$GITHUB_STEP_SUMMARY`` when that is set."""
    markdown = _markdown(report)
    files = {out / "summary.json": json.dumps(_summary(report), indent=2) + "\n",
             out / "junit.xml": _junit(report),
             out / "summary.md": markdown,
             out / "size.md": report.size_markdown or "No sizes: nothing was built.\n"}
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    problems: list[str] = []
    try:
        write_files(files)
    except ReportError as exc:
        problems.append(exc.message)
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as fh:
                fh.write(markdown)
        except OSError as exc:
            problems.append(f"$GITHUB_STEP_SUMMARY ({step_summary}): {exc.strerror or exc}")
    if problems:
        raise ReportError("; ".join(problems), "check the path and its permissions")
