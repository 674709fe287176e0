"""``invoke ci``: its result files and its closing table.

Into ``--out`` (default ``ci-out/``):

``summary.json``  every step and target: status, time, sizes, test counts
``junit.xml``     a testsuite of build targets (one testcase each) plus one
                  testsuite per test suite run: a red build shows as a failed testcase
                  (built as one element tree, every text made XML-safe by
                  :mod:`mpforge.cli.render.files`, so it loads whatever a test printed)
``size.md``       the size table (with deltas against a baseline)
``summary.md``    the Markdown job summary, also appended to
                  ``$GITHUB_STEP_SUMMARY`` when that is set
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from mpforge.ci.run import CiReport
from mpforge.cli.render.files import element, json_clean, readable, write_files, xml_text
from mpforge.cli.render.sizes import to_markdown as sizes_markdown
from mpforge.cli.render.tests import coverage_rows, junit_suite
from mpforge.cli.ui import Console
from mpforge.core.errors import ReportError
from mpforge.firmware.matrix import Status
from mpforge.testing.testrun import Verdict


def show_ci(console: Console, report: CiReport) -> None:
    """The steps of a CI run, as a table."""
    console.table("ci", ["step", "status", "time", "detail"],
                  [(s.name, s.status, f"{s.seconds:.1f} s", readable(s.detail)) for s in report.steps])


def _summary(report: CiReport) -> dict:
    data: dict = {"ok": report.ok, "steps": [asdict(s) for s in report.steps], "targets": [],
                  "tests": None}
    if report.matrix:
        data["targets"] = [{"target": r.target, "status": r.status.value, "seconds": round(r.duration, 2),
                            "reason": r.reason, "size": r.size,
                            # its own figures (ccache's stats log): local/remote hits, misses, errors
                            "ccache": r.built.ccache.as_dict() if r.built and r.built.ccache else None}
                           for r in report.matrix.results]
        data["ccache"] = report.matrix.ccache.as_dict() if report.matrix.ccache else None
    if report.tests:
        data["tests"] = {v.value: sum(t.count(v) for t in report.tests) for v in Verdict}
        data["flaky_tests"] = [f"{t.target}: {r.test}" for t in report.tests for r in t.flaky]
        data["failed_tests"] = [f"{t.target}: {r.test}" for t in report.tests for r in t.failures]
        data["suites"] = [{"name": t.target, "baseline": t.baseline, "aborted": t.aborted or None,
                           **{v.value: t.count(v) for v in Verdict},
                           **({"coverage": t.coverage.as_dict()} if t.coverage else {})}
                          for t in report.tests]
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
    for tests in report.tests:
        suites.append(junit_suite(tests))
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
    for t in report.tests:
        lines += ["", f"Tests ({t.target}): {t.count(Verdict.PASS)} passed, {t.count(Verdict.FAIL)} failed, "
                  f"{t.count(Verdict.SKIP)} skipped, {t.count(Verdict.KNOWN)} known differences, "
                  f"{t.count(Verdict.FLAKY)} flaky"]
        if t.failures:
            lines += ["", "Failed: " + ", ".join(f"`{readable(r.test)}`" for r in t.failures)]
        if t.flaky:
            lines += ["", "Flaky (failed, then passed on a retry; fix them or list them): "
                      + ", ".join(f"`{readable(r.test)}`" for r in t.flaky)]
        if t.coverage is not None:
            c = t.coverage
            lines += ["", f"Coverage ({t.target}): {c.percent:.1f}% of {c.lines} lines, "
                      f"`py/` {c.core_percent:.1f}% of {c.core_lines}", "",
                      "| patch | added lines gcov counts | covered | % |", "|---|---|---|---|"]
            lines += [f"| {patch} | {n} | {covered} | {pct} |" for patch, n, covered, pct in coverage_rows(c)]
    return "\n".join(lines) + "\n"


def write_outputs(report: CiReport, out: Path) -> None:
    """Write the result files into ``out``; each one that can be written is, then a
    :class:`~mpforge.core.errors.ReportError` names the others. Also appends the Markdown
    summary to ``$GITHUB_STEP_SUMMARY`` when that is set."""
    markdown = _markdown(report)
    files = {out / "summary.json": json.dumps(_summary(report), indent=2) + "\n",
             out / "junit.xml": _junit(report),
             out / "summary.md": markdown,
             out / "size.md": sizes_markdown(report.sizes, report.size_baseline)
             if report.sizes else "No sizes: nothing was built.\n"}
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
