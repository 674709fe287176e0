"""invoke perf on the emulated pyboard, bad input: one line naming it, exit != 0, nothing
written, before anything is fetched or built."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import path_without, run_cli


def test_qemu_missing_is_one_line_and_writes_nothing(fixture_project: Path, tmp_path: Path) -> None:
    out = fixture_project / "perf.json"
    path = path_without(tmp_path, "qemu-system-arm")
    assert shutil.which("qemu-system-arm", path=path) is None
    result = run_cli(fixture_project, "perf", "--port", "stmhal", "--board", "PYBV10_QEMU",
                     "--workloads", "int_loops", "--json", str(out), env={"PATH": path})
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert any("qemu-system-arm is not installed" in line for line in lines), result.stderr
    assert "Traceback" not in result.stderr + result.stdout and not out.exists()
    # nothing fetched or built (the command's lock is all there is)
    assert [p.name for p in (fixture_project / "build").iterdir()] == [".lock"]
    assert not any((fixture_project / "micropython").iterdir())


def test_a_workload_left_out_on_the_board_is_one_line(fixture_project: Path) -> None:
    result = run_cli(fixture_project, "perf", "--port", "stmhal", "--workloads", "floats,sets")
    assert result.returncode != 0
    assert "sets does not run on stmhal-PYBV10_QEMU: MemoryError" in result.stderr
    assert "Traceback" not in result.stderr
