"""invoke test on the fixture tree: sharding, verdicts, baselines, JUnit/JSON, the device path."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import run_task, write_baseline
from mpforge.testing.testrun import (
    TestResult,
    Verdict,
    apply_baseline,
    parse_line,
    select_tests,
    shard,
)

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "board.py"


def test_shards_are_balanced_and_same_named_files_stay_together():
    tests = ["basics/a.py", "basics/b.py", "misc/a.py", "basics/c.py", "misc/d.py"]
    shards = shard(tests, 2)
    assert sorted(t for s in shards for t in s) == sorted(tests)
    home = next(s for s in shards if "basics/a.py" in s)
    assert "misc/a.py" in home  # both leave a.py.exp behind: one runner at a time
    assert shard(tests, 9)[0] and len(shard(tests, 9)) <= len(tests)
    assert shard([], 4) == []


def test_runner_lines_are_parsed():
    assert parse_line("pass  basics/int1.py") == (Verdict.PASS, "basics/int1.py")
    assert parse_line("FAIL  misc/x.py") == (Verdict.FAIL, "misc/x.py")
    assert parse_line("skip  cmdline/cmd_showbc.py") == (Verdict.SKIP, "cmdline/cmd_showbc.py")
    assert parse_line("518 tests performed (17122 individual testcases)") is None


def test_baseline_turns_listed_failures_into_known_and_flags_fixed_ones():
    results = [TestResult("a.py", Verdict.FAIL), TestResult("b.py", Verdict.PASS),
               TestResult("c.py", Verdict.FAIL), TestResult("d.py", Verdict.SKIP)]
    apply_baseline(results, {"a.py": "CPython 3.11 words it differently", "b.py": "old drift"})
    assert [r.verdict for r in results] == [Verdict.KNOWN, Verdict.FIXED, Verdict.FAIL, Verdict.SKIP]
    assert results[0].reason == "CPython 3.11 words it differently"


def test_host_suite_verdicts_match_one_unsharded_runner(fixture_project, fixture_mirror, tmp_path):
    out = tmp_path / "r.json"
    result = run_task(fixture_project, "test", "--mirror", str(fixture_mirror.base), "--jobs", "3",
                     "--json", str(out))
    assert result.returncode == 1  # misc/drift.py fails and no baseline lists it
    ours = {r["test"]: r["verdict"] for r in json.loads(out.read_text())["results"]}
    tests_dir = fixture_project / "micropython" / "tests"
    # the runner's leftovers were read and removed
    assert not list(tests_dir.glob("*.exp")) and not list(tests_dir.glob("*.out"))
    single = subprocess.run([sys.executable, "run-tests"], cwd=tests_dir, text=True,
                            stdout=subprocess.PIPE,
                            env={"MICROPY_MICROPYTHON": str(fixture_project / "dist" / "unix" / "micropython"),
                                 "PATH": "/usr/bin:/bin"}).stdout
    theirs = {line.split()[1]: {"pass": "pass", "FAIL": "fail", "skip": "skip"}[line.split()[0]]
              for line in single.splitlines() if line.split() and line.split()[0] in ("pass", "FAIL", "skip")}
    assert ours == theirs and len(ours) == 9
    assert "FAIL misc/drift.py" in result.stderr and "-5" in result.stderr and "+4" in result.stderr


def test_baseline_makes_the_run_green_and_junit_is_valid(fixture_project, fixture_mirror, tmp_path):
    # the baseline is named after the tree's version: fetch the tree first
    assert run_task(fixture_project, "fetch", "--mirror", str(fixture_mirror.base)).returncode == 0
    write_baseline(fixture_project, {"misc/drift.py": "expected output the fixture cannot give",
                                     "misc/fixed.py": "was broken once"})
    junit, out = tmp_path / "junit.xml", tmp_path / "r.json"
    result = run_task(fixture_project, "test", "--mirror", str(fixture_mirror.base),
                     "--junit", str(junit), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "misc/fixed.py passes but is listed as a known difference" in result.stdout
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "9" and suite.get("failures") == "0"
    cases = {f"{c.get('classname')}/{c.get('name')}": c for c in suite.iter("testcase")}
    assert cases["misc/drift.py"].find("skipped").get("message").startswith("known difference:")
    assert cases["misc/skipped.py"].find("skipped") is not None
    assert cases["basics/sum3.py"].find("failure") is None
    counts = json.loads(out.read_text())["counts"]
    assert counts == {"pass": 6, "fail": 0, "skip": 1, "known": 1, "fixed": 1, "flaky": 0}

    # what was tested: the binary's sha256, the tree version and fingerprint (dist/unix's manifest)
    from junitparser import JUnitXml

    manifest = json.loads((fixture_project / "dist" / "unix" / "manifest.json").read_text())
    binary = fixture_project / "dist" / "unix" / "micropython"
    props = {p.name: p.value for p in next(iter(JUnitXml.fromfile(str(junit)))).properties()}
    assert props["firmware-sha256"] == hashlib.sha256(binary.read_bytes()).hexdigest()
    assert props["firmware-artifact"] == "micropython" and props["firmware-target"] == "unix"
    assert props["firmware-version"] == (manifest.get("version") or manifest["tree"]["describe"]) != ""
    assert props["tree-describe"] == manifest["tree"]["describe"]
    assert props["tree-fingerprint"] == manifest["tree"]["fingerprint"] != ""
    assert json.loads(out.read_text())["firmware"] == \
        {k: v for k, v in props.items() if k.startswith(("firmware-", "tree-"))}


def test_junit_failure_text_is_the_diff(fixture_project, fixture_mirror, tmp_path):
    junit = tmp_path / "junit.xml"
    run_task(fixture_project, "test", "--mirror", str(fixture_mirror.base), "-k", "drift",
            "--junit", str(junit))
    (case,) = ET.parse(junit).getroot().iter("testcase")
    failure = case.find("failure")
    assert "misc/drift.py (expected)" in failure.text and "-5" in failure.text and "+4" in failure.text


def test_k_selects_and_an_empty_selection_is_an_error(fixture_project, fixture_mirror, tmp_path):
    tests_dir = Path(__file__).resolve().parents[1] / "fixtures" / "minitree" / "tests"
    assert select_tests(tests_dir, ["basics", "misc"], "sum[12]") == ["basics/sum1.py", "basics/sum2.py"]
    result = run_task(fixture_project, "test", "--mirror", str(fixture_mirror.base), "-k", "nomatch")
    assert result.returncode == 1
    assert "no tests match 'nomatch'" in result.stderr


def test_device_suite_runs_over_execpty_through_our_transport(fixture_project, fixture_mirror, tmp_path):
    # fetch the tree first (a device run does not build anything)
    assert run_task(fixture_project, "fetch", "--mirror", str(fixture_mirror.base)).returncode == 0
    out = tmp_path / "r.json"
    result = run_task(fixture_project, "test", "--port", "minimal", "--jobs", "2",
                     "--device", f"execpty:{sys.executable} {FAKE}", "--json", str(out))
    verdicts = {r["test"]: r["verdict"] for r in json.loads(out.read_text())["results"]}
    assert verdicts["basics/sum4.py"] == "pass"
    assert verdicts["misc/drift.py"] == "fail" and verdicts["misc/skipped.py"] == "skip"
    assert len(verdicts) == 9
    assert result.returncode == 1


def test_a_target_that_stops_answering_is_a_crash_and_the_run_goes_on(fixture_project, fixture_mirror, tmp_path):
    assert run_task(fixture_project, "fetch", "--mirror", str(fixture_mirror.base)).returncode == 0
    out = tmp_path / "r.json"
    result = run_task(fixture_project, "test", "--port", "minimal", "--jobs", "1",
                     "--device", f"execpty:{sys.executable} {FAKE}", "--json", str(out),
                     env={"FAKE_SILENT_AFTER": "2", "MPFORGE_SILENCE": "1"}, timeout=240)
    assert result.returncode == 1
    data = json.loads(out.read_text())
    tests = [r["test"] for r in data["results"]]
    assert sorted(tests) == sorted(set(tests)) and len(tests) == 9  # every test once
    crashes = [r for r in data["results"] if r.get("reason", "").startswith("crash")]
    assert crashes and all(r["verdict"] == "fail" and "stopped answering" in r["reason"] for r in crashes)
    assert any(r["verdict"] == "pass" for r in data["results"])  # the emulator came back, fresh
    assert not data["aborted"]
    said = result.stdout + result.stderr
    assert "stopped answering" in said and "reported as a crash" in said


def test_a_baseline_entry_can_be_a_known_difference_of_some_ports_only(tmp_path):
    from mpforge.testing.baselines import load_baseline

    path = tmp_path / "b.toml"
    path.write_text('[[known]]\ntest = "a.py"\nreason = "everywhere"\n\n'
                    '[[known]]\ntest = "b.py"\nreason = "unix only"\nports = ["unix"]\n')
    assert load_baseline(path, "unix") == {"a.py": "everywhere", "b.py": "unix only"}
    assert load_baseline(path, "stmhal") == {"a.py": "everywhere"}
    assert load_baseline(path) == {"a.py": "everywhere", "b.py": "unix only"}
