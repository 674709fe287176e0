"""invoke test on the pinned upstream tree (marker ``realtree``): host and emulated pyboard."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_realtree import MIRROR, real_project  # noqa: F401  (the shared fixture)

from conftest import run_cli

pytestmark = [pytest.mark.realtree,
              pytest.mark.skipif(not MIRROR, reason="real-tree tests need MPFORGE_MIRROR")]


def test_host_suite_has_no_unexpected_failure(real_project: Path, tmp_path: Path):  # noqa: F811
    junit, out = tmp_path / "junit.xml", tmp_path / "r.json"
    result = run_cli(real_project, "test", "--mirror", MIRROR, "--junit", str(junit),
                     "--json", str(out), timeout=1800)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    counts = json.loads(out.read_text())["counts"]
    assert counts["fail"] == 0 and counts["fixed"] == 0
    assert counts["known"] == 13  # the CPython 3.11 drift listed in tests/baselines/
    assert counts["pass"] > 500
    suite = ET.parse(junit).getroot()
    assert int(suite.get("tests")) == sum(counts.values()) and suite.get("failures") == "0"


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="needs qemu-system-arm and arm-none-eabi-gcc")
def test_emulated_pyboard_runs_device_tests_over_the_transport(real_project: Path, tmp_path: Path):  # noqa: F811
    out = tmp_path / "r.json"
    result = run_cli(real_project, "test", "--mirror", MIRROR, "--port", "stmhal", "--emulator",
                     "qemu", "--jobs", "2", "-k", "basics/int", "--json", str(out), timeout=1800)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["target"] == "pyboard"
    assert data["counts"]["pass"] >= 25 and data["counts"]["fail"] == 0


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="needs qemu-system-arm and arm-none-eabi-gcc")
def test_minimal_port_serves_the_raw_repl_under_qemu(real_project: Path, tmp_path: Path):  # noqa: F811
    out = tmp_path / "r.json"
    # the minimal port lacks most features (a 2 KiB heap): run tests it can pass
    run_cli(real_project, "test", "--mirror", MIRROR, "--port", "minimal", "--emulator", "qemu",
            "--jobs", "1", "-k", "basics/[0a][pns]", "--json", str(out), timeout=1800)
    data = json.loads(out.read_text())
    assert data["aborted"] is None  # the raw REPL and soft reboot answered every time
    verdicts = {r["test"]: r["verdict"] for r in data["results"]}
    assert verdicts["basics/0prelim.py"] == "pass" and verdicts["basics/andor.py"] == "pass"
    assert verdicts["basics/assign1.py"] == "pass"
