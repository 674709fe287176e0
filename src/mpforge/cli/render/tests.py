"""A test run: its JUnit and JSON files, and what the terminal shows of it.

The files go through :mod:`mpforge.cli.render.files`, so whatever a test printed
(control bytes, colour sequences) cannot make them unreadable; the terminal shows
the same escaped text.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from mpforge.cli.render.files import element, json_clean, write_files, xml_text
from mpforge.cli.render.files import readable as safe
from mpforge.cli.ui import Console
from mpforge.testing.coverage import CoverageReport
from mpforge.testing.testrun import TestReport, TestResult, Verdict


def _tries(result: TestResult) -> str:
    return f"{result.attempts} tries" if result.attempts != 1 else "1 try"


def junit_suite(report: TestReport) -> ET.Element:
    """The ``<testsuite>`` of a run: one testcase per test file.

    A failure's text is the diff; a known difference is a skipped case with its
    reason; a flaky test is a *passing* case with ``flaky``/``attempts``
    properties and a ``<system-out>`` holding its first failure's diff. Every
    text and attribute is made safe by :func:`mpforge.cli.render.files.element`.

    What was tested is in the suite's ``<properties>``: the firmware
    (``firmware-sha256``, ``firmware-version``, ``tree-fingerprint``, ...: the host
    binary on the host) and each board as ``board.NAME.KEY`` (``place``,
    ``exporter``, ``host``, ``banner`` for a farm place). On a device, each testcase
    names its ``board`` (and ``place``, ``host``) and the ``firmware-sha256``. A crash
    (the board stopped answering) is a failure whose message names the board.
    """
    suite = element(None, "testsuite", {
        "name": f"micropython-{report.target}", "tests": len(report.results),
        "failures": report.count(Verdict.FAIL),
        "skipped": report.count(Verdict.SKIP) + report.count(Verdict.KNOWN),
        "errors": 1 if report.aborted else 0, "time": f"{report.seconds:.2f}"})
    suite_properties: list[tuple[str, object]] = [("retry-failed", report.retries)] if report.retries else []
    suite_properties += list(report.firmware.items())
    boards: dict[str, dict[str, str]] = {}
    for about in report.boards:
        board = about.get("place") or about.get("device", "")
        boards[board] = about
        suite_properties += [(f"board.{board}.{key}", value) for key, value in about.items()]
    suite_properties += [("note", line) for line in report.notes]
    if suite_properties:
        properties = element(suite, "properties")
        for key, value in suite_properties:
            element(properties, "property", {"name": key, "value": value})
    for result in report.results:
        classname, _, name = result.test.rpartition("/")
        case = element(suite, "testcase", {"classname": classname or "tests", "name": name,
                                           "time": f"{result.seconds:.3f}"})
        case_properties: list[tuple[str, object]] = []
        if result.verdict in (Verdict.FAIL, Verdict.FLAKY) and result.attempts > 1:
            case_properties += [("flaky", str(result.verdict == Verdict.FLAKY).lower()),
                                ("attempts", result.attempts)]
        if result.board:
            about = boards.get(result.board, {})
            case_properties += [("board", result.board),
                                *((key, about[key]) for key in ("place", "exporter", "host") if key in about),
                                *([("firmware-sha256", report.firmware["firmware-sha256"])]
                                  if report.firmware.get("firmware-sha256") else [])]
        if case_properties:
            properties = element(case, "properties")
            for key, value in case_properties:
                element(properties, "property", {"name": key, "value": value})
        if result.verdict == Verdict.FAIL:
            message = result.reason if result.reason.startswith("crash") else "output differs from expected"
            if result.attempts > 1:
                message += f" (failed all {_tries(result)})"
            element(case, "failure", {"message": message}, result.failure_text())
        elif result.verdict == Verdict.FLAKY:
            element(case, "system-out", None,
                    f"flaky: failed, then passed on try {result.attempts} of "
                    f"{report.retries + 1}; the first failure:\n{result.failure_text()}")
        elif result.verdict == Verdict.SKIP:
            element(case, "skipped", {"message": "skipped by the runner"})
        elif result.verdict == Verdict.KNOWN:
            element(case, "skipped", {"message": f"known difference: {result.reason}"})
        elif result.verdict == Verdict.FIXED:
            element(case, "system-out", None,
                    f"listed as a known difference ({result.reason}) but passes: shrink the baseline")
    if report.aborted:
        element(suite, "error", {"message": report.aborted}, report.aborted)
    return suite


def to_junit(report: TestReport) -> str:
    """JUnit XML (a ``<testsuite>`` document, see :func:`junit_suite`); always valid XML."""
    return xml_text(junit_suite(report))


def to_json(report: TestReport) -> dict:
    """The run as a JSON-able dict: counts per verdict, flaky tests by name, and each
    test's verdict, time, tries and (failed or flaky) its first failure's diff."""
    return json_clean({
        "target": report.target, "seconds": report.seconds, "jobs": report.jobs,
        "baseline": report.baseline, "aborted": report.aborted or None,
        "retry_failed": report.retries,
        "firmware": report.firmware or None, "boards": report.boards, "notes": report.notes,
        "counts": {v.value: report.count(v) for v in Verdict},
        "flaky": [r.test for r in report.flaky],
        **({"coverage": report.coverage.as_dict()} if report.coverage else {}),
        "results": [{"test": r.test, "verdict": r.verdict.value, "seconds": r.seconds,
                     **({"attempts": r.attempts} if r.attempts != 1 else {}),
                     **({"board": r.board} if r.board else {}),
                     **({"reason": r.reason} if r.reason else {}),
                     **({"diff": r.failure_text()}
                        if r.verdict in (Verdict.FAIL, Verdict.FLAKY) else {})}
                    for r in report.results],
    })  # type: ignore[return-value]


def write_outputs(report: TestReport, junit: str | None, json_file: str | None) -> None:
    """Write the asked-for result files; every one that can be written is, then a
    :class:`~mpforge.core.errors.ReportError` names those that could not."""
    files: dict[Path, str] = {}
    if junit:
        files[Path(junit)] = to_junit(report)
    if json_file:
        files[Path(json_file)] = json.dumps(to_json(report), indent=2) + "\n"
    write_files(files)


def show_test_report(console: Console, report: TestReport) -> None:
    """Failures with their diffs, flaky tests with their first failure's, the counts,
    and one closing line naming the flaky tests (control bytes a test printed are
    shown escaped, as in the result files, so they cannot garble the terminal)."""
    V = Verdict
    for failure in report.failures:
        tries = f" (failed all {failure.attempts} tries)" if failure.attempts > 1 else ""
        where = f" on {safe(failure.board)}" if failure.board else ""
        crash = f": {safe(failure.reason)}" if failure.reason.startswith("crash") else ""
        console.error(f"FAIL {safe(failure.test)}{where}{tries}{crash}")
        console.block(safe(failure.failure_text()), to_err=True)
    for flaky in report.flaky:
        console.warn(f"FLAKY {safe(flaky.test)}: failed, then passed on try {flaky.attempts}; "
                     "its first failure:")
        console.block(safe(flaky.failure_text()))
    for fixed in (r for r in report.results if r.verdict == V.FIXED):
        console.warn(f"{fixed.test} passes but is listed as a known difference: "
                     f"remove it from {report.baseline or 'the baseline'}")
    console.table(f"tests: {report.target}, {report.jobs} shard(s), {report.seconds:.1f} s",
                  ["passed", "failed", "skipped", "known", "fixed", "flaky"],
                  [(str(report.count(V.PASS)), str(report.count(V.FAIL)), str(report.count(V.SKIP)),
                    str(report.count(V.KNOWN)), str(report.count(V.FIXED)), str(report.count(V.FLAKY)))])
    if report.flaky:
        console.warn(f"{len(report.flaky)} flaky test(s), passed on a retry (fix them or list "
                     f"them in {report.baseline or 'the baseline'}): "
                     + ", ".join(safe(r.test) for r in report.flaky))
    if report.coverage is not None:
        show_coverage(console, report.coverage)
    if report.firmware:
        console.info(f"firmware: {report.firmware.get('firmware-target', '')} "
                     f"{report.firmware.get('firmware-version', '')}, {report.firmware.get('firmware-artifact', '')} "
                     f"sha256 {report.firmware.get('firmware-sha256', '')[:16]}")
    for about in report.boards:
        if "place" in about:
            console.info(f"board: place {about['place']} (exporter {about.get('exporter', '')} on "
                         f"{about.get('host', '')}): {safe(about.get('banner', ''))}")
    if report.aborted:
        console.error(f"test run aborted: {report.aborted}")
    elif report.ok:
        console.ok("no unexpected failure")


def coverage_rows(coverage: CoverageReport) -> list[tuple[str, str, str, str]]:
    """The per-patch table: patch, added executable lines, covered, percent."""
    return [(row.patch, str(row.lines), str(row.covered),
             "-" if row.percent is None else f"{row.percent:.1f}%") for row in coverage.patches]


def show_coverage(console: Console, coverage: CoverageReport) -> None:
    """Line coverage overall and of ``py/``, the per-patch table, and where the reports are."""
    console.table(f"coverage: {coverage.percent:.1f}% of {coverage.lines} lines, "
                  f"py/ {coverage.core_percent:.1f}% of {coverage.core_lines}",
                  ["patch", "added lines run by gcov", "covered", "%"], coverage_rows(coverage))
    console.info(f"coverage reports: {coverage.cobertura} (Cobertura), {coverage.html} (HTML)")
