"""invoke ci and ci-generate on the fixture tree."""

from __future__ import annotations

import json
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import run_cli, write_baseline

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "board.py"

#: on the tests that build the ARM ports (the others stop before any compiler runs)
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="needs arm-none-eabi-gcc")


@needs_arm
def test_a_broken_target_is_red_while_the_others_still_run(fixture_project, fixture_mirror, tmp_path):
    assert run_cli(fixture_project, "fetch", "--mirror", str(fixture_mirror.base)).returncode == 0
    write_baseline(fixture_project, {"misc/drift.py": "the fixture's drift", "misc/fixed.py": "old"})
    # stmhal's emulated boards: the fake board on a pty stands in for QEMU (hardware edge)
    emulated(fixture_project)
    out, summary_file = tmp_path / "ci-out", tmp_path / "step-summary.md"
    result = run_cli(fixture_project, "ci", "--ports", "unix,stmhal,bare-arm", "--boards", "all",
                     "--out", str(out), "--mirror", str(fixture_mirror.base),
                     env={"GITHUB_STEP_SUMMARY": str(summary_file)})
    assert result.returncode == 1
    assert "ci failed: build" in result.stderr

    summary = json.loads((out / "summary.json").read_text())
    steps = {s["name"]: s["status"] for s in summary["steps"]}
    assert steps == {"doctor": "ok", "fetch and patch": "ok", "build": "failed", "test": "ok",
                     "size": "ok"}
    targets = {t["target"]: t["status"] for t in summary["targets"]}
    assert targets == {"unix": "ok", "stmhal-BROKEN": "failed", "stmhal-PYBV10": "ok",
                       "stmhal-PYBV11": "ok", "bare-arm": "ok"}
    # every suite the data declares: unix, its run variants, stmhal on its emulated boards
    suites = {x["name"]: x for x in summary["suites"]}
    assert list(suites) == ["unix", "unix-native", "unix-thread", "stmhal (qemu)"]
    assert [suites[n]["pass"] for n in suites] == [6, 6, 1, 6]
    assert suites["stmhal (qemu)"]["known"] == 1 and suites["stmhal (qemu)"]["fixed"] == 1
    assert summary["tests"]["pass"] == 19 and summary["tests"]["fail"] == 0

    suites = ET.parse(out / "junit.xml").getroot()
    build = next(s for s in suites if s.get("name") == "build")
    assert build.get("failures") == "1"
    failed = [c.get("name") for c in build if c.find("failure") is not None]
    assert failed == ["stmhal-BROKEN"]
    names = [s.get("name") for s in suites]
    assert names == ["build", "micropython-unix", "micropython-unix-native", "micropython-unix-thread",
                     "micropython-stmhal (qemu)"]

    size_md = (out / "size.md").read_text()
    assert "| stmhal-PYBV11 |" in size_md and "BROKEN" not in size_md
    assert "❌ failed" in (out / "summary.md").read_text()
    assert summary_file.read_text() == (out / "summary.md").read_text()


def emulated(project: Path) -> None:
    """Point stmhal's emulator at the fake board (and a board of the fixture tree)."""
    data = project / "ports" / "stmhal.toml"
    text = data.read_text()
    start = text.index("[test.emulator.qemu]")
    end = text.index("\n[", start + 1)
    data.write_text(text[:start] + "[test.emulator.qemu]\nboard = \"PYBV10\"\n"
                    f"command = {json.dumps(f'{sys.executable} {FAKE}')}\n" + text[end:])


def test_a_fetch_failure_skips_the_rest_and_still_writes_results(fixture_project, tmp_path):
    out = tmp_path / "ci-out"
    result = run_cli(fixture_project, "ci", "--out", str(out), "--mirror", str(tmp_path / "nomirror"))
    assert result.returncode == 1
    steps = {s["name"]: s["status"] for s in json.loads((out / "summary.json").read_text())["steps"]}
    assert steps["fetch and patch"] == "failed"
    assert steps["build"] == steps["test"] == steps["size"] == "skipped"
    assert ET.parse(out / "junit.xml").getroot().tag == "testsuites"


def test_a_typo_in_ports_still_writes_the_result_files_ci_uploads(fixture_project, tmp_path):
    out = tmp_path / "ci-out"
    result = run_cli(fixture_project, "ci", "--ports", "unix,fo", "--out", str(out))
    assert result.returncode == 1
    assert "unknown port 'fo'" in result.stderr + result.stdout
    steps = {s["name"]: s["status"] for s in json.loads((out / "summary.json").read_text())["steps"]}
    assert steps == {"select": "failed"}
    assert ET.parse(out / "junit.xml").getroot().tag == "testsuites"
