"""Result files that load whatever a test printed, and flaky tests (retries).

The JUnit files are read back with junitparser, a third-party parser CI tools
resemble, not only with the ElementTree that wrote them.
"""

from __future__ import annotations

import json
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junitparser import JUnitXml, TestSuite

from conftest import project_for, run_task, write_baseline
from mpforge.ci import run as ci_mod
from mpforge.cli.render import ci as render_ci
from mpforge.cli.render.files import element, readable, xml_text
from mpforge.cli.render.tests import to_json, to_junit, write_outputs
from mpforge.core.errors import ReportError
from mpforge.firmware.matrix import MatrixReport, Status, TargetResult
from mpforge.testing.testrun import TestReport, TestResult, Verdict, run_suite

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "board.py"

#: what a misbehaving test prints: NUL, SOH, backspace, a colour code, DEL, a C1 control
CONTROL = "a\x00b\x01c\x08d\x1b[31mred\x1b[0m\x7fe\x85f"


def cases(path: Path) -> dict[str, object]:
    """``classname/name`` -> junitparser TestCase, over every suite of the file."""
    xml = JUnitXml.fromfile(str(path))
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    return {f"{case.classname}/{case.name}": case for suite in suites for case in suite}


# --- XML-safe text ------------------------------------------------------------------


def test_every_character_xml_forbids_is_spelled_out_and_the_rest_is_kept():
    every = "".join(chr(c) for c in range(0x3000)) + "\ud800\udfff\ufffe\uffff\U0001f600"
    parsed = ET.fromstring(xml_text(element(None, "t", {"a": every}, every)))
    assert parsed.text == parsed.get("a") == readable(every)
    assert readable("\x1b") == "\\x1b" and len(readable("\x1b")) == 4
    assert readable("\r\n") == "\\r\n" and readable("\t") == "\t"
    assert readable("\ud800") == "\\ud800" and readable("\uffff") == "\\uffff"
    assert readable("é ☃ \U0001f600 \\x1b") == "é ☃ \U0001f600 \\x1b"  # untouched


def _report(results: list[TestResult], retries: int = 0, aborted: str = "") -> TestReport:
    return TestReport(results, 1.5, 2, "unix", aborted=aborted, retries=retries)


def test_junit_and_json_carry_control_bytes_readably(tmp_path):
    failing = TestResult("basics/ctrl.py", Verdict.FAIL, 0.1, expected="expected\n",
                         output=CONTROL + "\n")
    flaky = TestResult("misc/\x1bodd.py", Verdict.FLAKY, 0.2, expected="1\n", output="\x02\n",
                       attempts=2)
    known = TestResult("misc/known.py", Verdict.KNOWN, reason="CPython says \x1b[1mit\x1b[0m")
    report = _report([failing, flaky, known, TestResult("basics/ok.py", Verdict.PASS)], retries=1,
                     aborted="board said \x04 and died")
    junit, out = tmp_path / "sub" / "junit.xml", tmp_path / "r.json"
    write_outputs(report, str(junit), str(out))  # the folder is created

    found = cases(junit)
    text = found["basics/ctrl.py"].result[0].text
    assert "\\x1b[31mred" in text and "\\x00b\\x01c\\x08d" in text and "\\x7fe\\x85f" in text
    assert "-expected" in text
    odd = found["misc/\\x1bodd.py"]
    assert odd.is_passed and "flaky" in odd.system_out and "+\\x02" in odd.system_out
    assert "\\x1b[1mit" in found["misc/known.py"].result[0].message

    data = json.loads(out.read_text())
    assert data["counts"]["flaky"] == 1 and data["flaky"] == ["misc/\\x1bodd.py"]
    diffs = {r["test"]: r.get("diff") for r in data["results"]}
    assert "\\x1b[31mred" in diffs["basics/ctrl.py"] and "\x1b" not in out.read_text()
    assert data["aborted"] == "board said \\x04 and died"


def test_a_diff_is_cut_at_newlines_only():
    result = TestResult("t.py", Verdict.FAIL, expected="a\x0cb\x1cc\n", output="a\x0cb\x1cX\n")
    diff = result.diff().split("\n")
    assert "-a\x0cb\x1cc" in diff and "+a\x0cb\x1cX" in diff  # one line each, not three


def test_an_unwritable_file_does_not_stop_the_others(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = tmp_path / "r.json"
    with pytest.raises(ReportError, match="could not write 1 result file"):
        write_outputs(_report([TestResult("a.py", Verdict.PASS)]), str(blocker / "junit.xml"),
                      str(out))
    assert json.loads(out.read_text())["counts"]["pass"] == 1


def test_ci_junit_is_built_from_elements_and_makes_build_errors_safe(tmp_path):
    matrix = MatrixReport([
        TargetResult("unix", Status.OK, duration=1.0),
        TargetResult("stmhal-PYBV10", Status.FAILED, reason="main.c:3: error: \x1b[01;31mboom",
                     details="main.c:3:1: \x1b[01;31merror:\x1b[m stray '\\200'\x00"),
        TargetResult("esp8266", Status.SKIPPED, reason="no xtensa\x07"),
    ], 1.0, 2)
    tests = _report([TestResult("basics/ctrl.py", Verdict.FAIL, expected="x\n", output=CONTROL)])
    report = ci_mod.CiReport(steps=[ci_mod.Step("build", "failed", 1.0, "failed: \x1bstmhal")],
                             matrix=matrix, tests=[tests])
    render_ci.write_outputs(report, tmp_path / "ci-out")
    found = cases(tmp_path / "ci-out" / "junit.xml")
    broken = found["build/stmhal-PYBV10"].result[0]
    assert "\\x1b[01;31merror:" in broken.text and "\\x00" in broken.text
    assert "\\x1b[01;31mboom" in broken.message
    assert found["build/esp8266"].is_skipped and found["build/unix"].is_passed
    assert "\\x1b[31mred" in found["basics/ctrl.py"].result[0].text
    summary = json.loads((tmp_path / "ci-out" / "summary.json").read_text())
    assert summary["failed_tests"] == ["unix: basics/ctrl.py"]
    assert "\x1b" not in (tmp_path / "ci-out" / "summary.md").read_text()


# --- retries and flaky tests, with a stand-in runner -----------------------------------

FAKE_RUNNER = textwrap.dedent('''\
    """Stand-in for run-tests: logs its arguments; each file says how it behaves."""
    import json, os, sys
    args = sys.argv[1:]
    device = args[args.index("--device") + 1]
    files = [a for a in args if a.endswith(".py")]
    with open("calls.jsonl", "a") as log:
        log.write(json.dumps({"device": device, "files": files}) + "\\n")
    for test in files:
        kind = open(test).read().strip()
        marker = test.replace("/", "_") + ".tried"
        tries = int(open(marker).read()) if os.path.exists(marker) else 0
        open(marker, "w").write(str(tries + 1))
        passes = kind == "pass" or (kind == "flaky" and tries >= 1)
        if kind == "crash" and tries >= 1:
            sys.exit(2)  # a retry runner that dies before reporting
        if passes:
            print("pass ", test)
        else:
            base = os.path.basename(test)
            open(base + ".exp", "w").write("wanted\\n")
            open(base + ".out", "w").write(f"try {tries + 1} on {device} \\x1b[31m\\n")
            print("FAIL ", test)
        sys.stdout.flush()
    ''')


def fake_tests(tmp_path: Path, kinds: dict[str, str]) -> Path:
    tests_dir = tmp_path / "tests"
    for test, kind in kinds.items():
        (tests_dir / test).parent.mkdir(parents=True, exist_ok=True)
        (tests_dir / test).write_text(kind + "\n")
    (tests_dir / "run-tests").write_text(FAKE_RUNNER)
    return tests_dir


def calls(tests_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (tests_dir / "calls.jsonl").read_text().splitlines()]


KINDS = {"a/pass1.py": "pass", "a/flaky.py": "flaky", "a/broken.py": "fail", "a/known.py": "fail",
         "b/pass2.py": "pass", "b/broken2.py": "fail", "b/crash.py": "crash"}


def run_fake(tmp_path: Path, retries: int) -> tuple[TestReport, Path]:
    tests_dir = fake_tests(tmp_path, KINDS)
    report = run_suite(project_for(tmp_path), tests_dir=tests_dir, tests=sorted(KINDS), jobs=3,
                       runner_args=lambda i: ["--device", f"dev{i}"], env={},
                       python=sys.executable, known={"a/known.py": "a listed difference"},
                       retries=retries)
    return report, tests_dir


def test_failures_are_retried_on_their_own_shard_and_a_pass_on_retry_is_flaky(tmp_path):
    report, tests_dir = run_fake(tmp_path, retries=2)
    verdicts = {r.test: r.verdict for r in report.results}
    assert verdicts == {"a/pass1.py": Verdict.PASS, "a/flaky.py": Verdict.FLAKY,
                        "a/broken.py": Verdict.FAIL, "a/known.py": Verdict.KNOWN,
                        "b/pass2.py": Verdict.PASS, "b/broken2.py": Verdict.FAIL,
                        "b/crash.py": Verdict.FAIL}
    assert report.ok is False and [r.test for r in report.flaky] == ["a/flaky.py"]
    by_test = {r.test: r for r in report.results}
    assert by_test["a/flaky.py"].attempts == 2  # passed on its first retry: not run again
    assert by_test["a/broken.py"].attempts == 3 and by_test["b/crash.py"].attempts == 3
    assert by_test["a/known.py"].attempts == 1

    home = {f: c["device"] for c in calls(tests_dir)[:3] for f in c["files"]}
    retried = [(c["device"], f) for c in calls(tests_dir)[3:] for f in c["files"]]
    assert retried and all(home[f] == device for device, f in retried)  # same shard, same device
    assert "a/known.py" not in {f for _, f in retried}  # known differences are not retried
    assert "a/pass1.py" not in {f for _, f in retried}
    assert sorted(f for _, f in retried) == sorted(
        ["a/flaky.py", "a/broken.py", "b/broken2.py", "b/crash.py"]  # first retry
        + ["a/broken.py", "b/broken2.py", "b/crash.py"])  # second retry: the flaky one passed

    # the first failure's diff is kept, for the flaky test as for the failures
    assert "+try 1 on" in by_test["a/flaky.py"].diff()
    assert "+try 1 on" in by_test["a/broken.py"].diff()
    assert not list(tests_dir.glob("*.exp")) and not list(tests_dir.glob("*.out"))

    junit = tmp_path / "junit.xml"
    junit.write_text(to_junit(report))
    found = cases(junit)
    assert found["a/flaky.py"].is_passed and "+try 1 on" in found["a/flaky.py"].system_out
    assert "\\x1b[31m" in found["a/broken.py"].result[0].text
    assert "failed all 3 tries" in found["a/broken.py"].result[0].message
    data = to_json(report)
    assert data["counts"]["flaky"] == 1 and data["flaky"] == ["a/flaky.py"]


def test_without_retries_a_flaky_test_is_a_failure(tmp_path):
    report, tests_dir = run_fake(tmp_path, retries=0)
    assert {r.test: r.verdict for r in report.results}["a/flaky.py"] == Verdict.FAIL
    assert len(calls(tests_dir)) == 3 and not report.flaky


# --- the real tasks on the fixture tree ------------------------------------------------


def test_ci_with_a_test_printing_control_bytes_fails_cleanly_with_loadable_junit(
        fixture_project, fixture_mirror, tmp_path):
    assert run_task(fixture_project, "fetch", "--mirror", str(fixture_mirror.base)).returncode == 0
    write_baseline(fixture_project, {"misc/drift.py": "the fixture's drift", "misc/fixed.py": "old"})
    # the fixture interpreter prints 4; the expected output is full of control bytes
    tests = fixture_project / "micropython" / "tests"
    (tests / "misc" / "ctrl.py").write_text("print(2 + 2)\n")
    (tests / "misc" / "ctrl.py.exp").write_bytes(CONTROL.encode() + b"\n")
    out = tmp_path / "ci-out"
    result = run_task(fixture_project, "ci", "--ports", "unix", "--out", str(out),
                     "--mirror", str(fixture_mirror.base))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "ci failed: test" in result.stderr
    assert "FAIL misc/ctrl.py (failed all 2 tries)" in result.stderr  # ci retries once
    assert "\x1b" not in result.stderr  # shown escaped, not sent to the terminal

    found = cases(out / "junit.xml")
    failure = found["misc/ctrl.py"].result[0]
    assert "-a\\x00b\\x01c\\x08d\\x1b[31mred" in failure.text and "+4" in failure.text
    assert found["build/unix"].is_passed and found["basics/sum1.py"].is_passed
    summary = json.loads((out / "summary.json").read_text())
    # the suite and its native variant run the same file (thread/ does not hold it)
    assert summary["failed_tests"] == ["unix: misc/ctrl.py", "unix-native: misc/ctrl.py"]
    assert summary["tests"]["fail"] == 2


FLAKY_ON_A_BOARD = '''\
import os
marker = {marker!r}
if os.path.exists(marker):
    print(4)
else:
    open(marker, "w").close()
    print(5)
'''


def test_a_flaky_test_on_a_device_is_retried_on_it_and_does_not_fail_the_run(
        fixture_project, fixture_mirror, tmp_path):
    assert run_task(fixture_project, "fetch", "--mirror", str(fixture_mirror.base)).returncode == 0
    write_baseline(fixture_project, {"misc/drift.py": "the fixture's drift", "misc/fixed.py": "old"})
    marker = tmp_path / "tried-once"
    tests = fixture_project / "micropython" / "tests"
    (tests / "misc" / "flaky.py").write_text(FLAKY_ON_A_BOARD.format(marker=str(marker)))
    (tests / "misc" / "flaky.py.exp").write_text("4\n")
    device = ["--port", "minimal", "--jobs", "2", "--device", f"execpty:{sys.executable} {FAKE}"]

    plain = run_task(fixture_project, "test", *device, "-k", "misc/")
    assert plain.returncode == 1 and "FAIL misc/flaky.py" in plain.stderr  # no retry: a failure

    marker.unlink()
    junit, out = tmp_path / "junit.xml", tmp_path / "r.json"
    result = run_task(fixture_project, "test", *device, "--retry-failed", "1",
                     "--junit", str(junit), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "1 flaky test(s), passed on a retry" in result.stdout and "misc/flaky.py" in result.stdout
    data = json.loads(out.read_text())
    verdicts = {r["test"]: r["verdict"] for r in data["results"]}
    assert verdicts["misc/flaky.py"] == "flaky" and verdicts["misc/drift.py"] == "known"
    assert data["flaky"] == ["misc/flaky.py"] and data["counts"]["fail"] == 0
    flaky = next(r for r in data["results"] if r["test"] == "misc/flaky.py")
    assert flaky["attempts"] == 2 and "-4" in flaky["diff"] and "+5" in flaky["diff"]
    case = cases(junit)["misc/flaky.py"]
    assert case.is_passed and "+5" in case.system_out


def test_a_farm_run_names_the_firmware_and_the_board_of_every_verdict(tmp_path):
    firmware = {"firmware-target": "stmhal-PYBV10_QEMU", "firmware-artifact": "firmware.dfu",
                "firmware-sha256": "7c" * 32, "firmware-version": "v1.8.2-20-g04c27e5eaa+s.b9b19e51",
                "tree-describe": "v1.8.2-20-g04c27e5eaa-dirty", "tree-fingerprint": "b5" * 32}
    boards = [{"place": "pyb-1", "exporter": "mpforge-farm", "host": "127.0.0.1", "coordinator": "c:1",
               "banner": "MicroPython v1.8.2-20-g04c27e5eaa on 2026-12-03; PYBv1.0-QEMU"},
              {"place": "pyb-2", "exporter": "mpforge-farm", "host": "127.0.0.1", "coordinator": "c:1"}]
    report = TestReport([TestResult("basics/a.py", Verdict.PASS, board="pyb-1"),
                         TestResult("basics/b.py", Verdict.FAIL, board="pyb-2", output="target said nothing\n",
                                    reason="crash: pyb-2 stopped answering")],
                        1.0, 2, "pyboard", firmware=firmware, boards=boards,
                        notes=["pyb-2: power-cycled through labgrid"])
    junit = tmp_path / "j.xml"
    junit.write_text(to_junit(report))
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    props = {p.name: p.value for p in suite.properties()}
    assert {k: props[k] for k in firmware} == firmware
    assert props["board.pyb-1.banner"].startswith("MicroPython v1.8.2") and props["board.pyb-2.host"] == "127.0.0.1"
    assert props["note"] == "pyb-2: power-cycled through labgrid"
    cases = {case.name: case for case in suite}
    for name, place in (("a.py", "pyb-1"), ("b.py", "pyb-2")):
        named = {p.get("name"): p.get("value") for p in cases[name]._elem.iter("property")}
        assert named == {"board": place, "place": place, "exporter": "mpforge-farm", "host": "127.0.0.1",
                         "firmware-sha256": "7c" * 32}
    assert cases["b.py"].result[0].message == "crash: pyb-2 stopped answering"
    data = to_json(report)
    assert data["firmware"] == firmware and data["boards"] == boards
    assert [r["board"] for r in data["results"]] == ["pyb-1", "pyb-2"]
