"""invoke perf's bad input: one line naming it, exit != 0, nothing written."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_an_unknown_workload_is_one_line_and_writes_nothing(fixture_project: Path) -> None:
    out = fixture_project / "perf.json"
    result = run_cli(fixture_project, "perf", "--workloads", "floats,nosuch", "--json", str(out))
    assert result.returncode != 0
    assert "unknown workload 'nosuch'" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr and not out.exists()


def test_an_unsupported_port_is_one_line(fixture_project: Path) -> None:
    result = run_cli(fixture_project, "perf", "--port", "esp8266")
    assert result.returncode != 0 and "not supported yet" in result.stderr + result.stdout
