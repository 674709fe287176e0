"""``invoke ci``: a whole pipeline, non-interactively, with results CI systems show.

Steps (each one result: ok / failed / skipped, with its time): doctor, fetch,
patch, build (the matrix of the selected ports and boards), test (the host
suite when a host port is selected), size (against a baseline when given).
Everything that can run runs; the exit status is non-zero if anything failed.

Into ``--out`` (default ``ci-out/``):

``summary.json``  every step and target: status, time, sizes, test counts
``junit.xml``     a testsuite of build targets (one testcase each) plus the
                  host test suite: a red build shows as a failed testcase
``size.md``       the size table (with deltas against a baseline)
``summary.md``    the Markdown job summary, also appended to
                  ``$GITHUB_STEP_SUMMARY`` when that is set
"""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import doctor as doctor_mod
from . import size as size_mod
from .build import prepare_tree, with_needs
from .errors import MpforgeError
from .matrix import MatrixReport, Status, build_matrix, select_targets
from .project import Project
from .testrun import TestReport, Verdict, run_for_port, to_junit


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

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.steps)


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


def run_ci(project: Project, ports: list[str], board: str | None, out: Path, *,
           mirror: str | None, jobs: int, size_baseline: Path | None = None) -> CiReport:
    """Run the pipeline; see the module docstring."""
    console = project.console
    report = CiReport()
    out.mkdir(parents=True, exist_ok=True)

    def doctor(step: Step) -> None:
        checks = doctor_mod.diagnose(project, ports)
        missing = [c.name for c in checks if c.required and not c.found]
        if missing:  # the targets that need them are skipped by the build step
            step.detail = f"missing: {', '.join(missing)}"
            console.warn(f"doctor: {step.detail}")

    def fetch_and_patch(step: Step) -> None:
        tree = prepare_tree(project, with_needs(project, ports), mirror)
        step.detail = f"{tree.describe}, {len(tree.patches)} patches"

    def build(step: Step) -> None:
        targets = select_targets(project, ports, board)
        report.matrix = build_matrix(project, targets, jobs=jobs, mirror=mirror)
        failed = [r.target for r in report.matrix.failed]
        step.detail = f"{len(targets)} targets" + (f", failed: {', '.join(failed)}" if failed else "")
        if failed:
            step.status = "failed"

    def test(step: Step) -> None:
        host = [p for p in ports if project.catalog.port(p).test.get("host")]
        if not host:
            step.detail = "no host port selected"
            return
        if report.matrix and any(r.target == host[0] and r.status == Status.FAILED
                                 for r in report.matrix.results):
            step.status, step.detail = "skipped", f"{host[0]} did not build"
            return
        report.tests = run_for_port(project, host[0], jobs=jobs, mirror=mirror)
        t = report.tests
        step.detail = (f"{t.count(Verdict.PASS)} passed, {t.count(Verdict.FAIL)} failed, "
                       f"{t.count(Verdict.SKIP)} skipped, {t.count(Verdict.KNOWN)} known")
        if not t.ok:
            step.status = "failed"

    def size(step: Step) -> None:
        baseline = size_mod.load_baseline(size_baseline) if size_baseline else None
        built = {r.target for r in (report.matrix.results if report.matrix else [])
                 if r.status in (Status.OK, Status.CACHED)}
        current = {t: s for t, s in size_mod.current_sizes(project.dist_root).items() if t in built}
        report.sizes = size_mod.compare(current, baseline)
        (out / "size.md").write_text(size_mod.to_markdown(report.sizes, baseline is not None))

    _step(report, "doctor", console, doctor)
    _step(report, "fetch and patch", console, fetch_and_patch)
    fetched = report.steps[-1].status == "ok"
    for name, action in (("build", build), ("test", test), ("size", size)):
        if fetched:
            _step(report, name, console, action)
        else:
            report.steps.append(Step(name, "skipped", 0.0, "the tree could not be fetched"))
    write_outputs(report, out)
    return report


def _summary(report: CiReport) -> dict:
    data: dict = {"ok": report.ok, "steps": [asdict(s) for s in report.steps], "targets": [],
                  "tests": None}
    if report.matrix:
        data["targets"] = [{"target": r.target, "status": r.status.value, "seconds": round(r.duration, 2),
                            "reason": r.reason, "size": r.size} for r in report.matrix.results]
    if report.tests:
        data["tests"] = {v.value: report.tests.count(v) for v in Verdict}
    return data


def _junit(report: CiReport) -> str:
    suites = ET.Element("testsuites")
    if report.matrix:
        results = report.matrix.results
        build = ET.SubElement(suites, "testsuite", {
            "name": "build", "tests": str(len(results)),
            "failures": str(sum(r.status == Status.FAILED for r in results)),
            "skipped": str(sum(r.status == Status.SKIPPED for r in results))})
        for r in results:
            case = ET.SubElement(build, "testcase", {"classname": "build", "name": r.target,
                                                    "time": f"{r.duration:.2f}"})
            if r.status == Status.FAILED:
                failure = ET.SubElement(case, "failure", {"message": r.reason})
                failure.text = r.details or r.reason
            elif r.status == Status.SKIPPED:
                ET.SubElement(case, "skipped", {"message": r.reason})
    if report.tests:
        suites.append(ET.fromstring(to_junit(report.tests).split("?>", 1)[1]))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _markdown(report: CiReport) -> str:
    icon = {"ok": "✅", "failed": "❌", "skipped": "⏭️", "cached": "✅"}
    lines = ["## mpforge ci: " + ("passed" if report.ok else "failed"), "",
             "| step | status | time | detail |", "|---|---|---|---|"]
    lines += [f"| {s.name} | {icon.get(s.status, '')} {s.status} | {s.seconds:.1f} s | {s.detail} |"
              for s in report.steps]
    if report.matrix:
        lines += ["", "| target | status | time | text | data | bss | reason |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r.target} | {icon.get(r.status.value, '')} {r.status.value} | {r.duration:.1f} s | "
                  + " | ".join(str(r.size.get(k, "")) for k in ("text", "data", "bss"))
                  + f" | {r.reason} |" for r in report.matrix.results]
    if report.tests:
        t = report.tests
        lines += ["", f"Tests ({t.target}): {t.count(Verdict.PASS)} passed, {t.count(Verdict.FAIL)} failed, "
                  f"{t.count(Verdict.SKIP)} skipped, {t.count(Verdict.KNOWN)} known differences"]
    return "\n".join(lines) + "\n"


def write_outputs(report: CiReport, out: Path) -> None:
    (out / "summary.json").write_text(json.dumps(_summary(report), indent=2) + "\n")
    (out / "junit.xml").write_text(_junit(report))
    markdown = _markdown(report)
    (out / "summary.md").write_text(markdown)
    if not (out / "size.md").exists():
        (out / "size.md").write_text("No sizes: nothing was built.\n")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(markdown)
