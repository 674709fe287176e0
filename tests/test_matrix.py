"""The build matrix on the fixture tree: job budget, isolation, caching, missing toolchains.

The fixture's bare-arm and stmhal ports are compiled by the real
arm-none-eabi-gcc, driven by this repo's real ports/*.toml; stmhal's boards
come from the fixture tree's boards/ (PYBV10, PYBV11, and BROKEN, whose code
does not compile on purpose).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import Mirror, run_cli

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                reason="needs arm-none-eabi-gcc (apt-get install gcc-arm-none-eabi)")


def matrix(project: Path, mirror: Mirror, *args: str, env: dict[str, str] | None = None):
    return run_cli(project, "build", "--mirror", str(mirror.base), "--no-ccache", *args, env=env)


def summary(stdout: str) -> dict[str, str]:
    """target -> status, from the summary table."""
    rows = stdout.split("build matrix:", 1)[1].splitlines()[2:]
    cells = [r.split() for r in rows]
    return {c[0]: c[1] for c in cells if len(c) > 1 and ":" not in c[0]  # not a log line
            and c[1] in ("ok", "cached", "failed", "skipped")}


def test_boards_come_from_the_tree_and_one_failure_does_not_stop_the_others(fixture_project,
                                                                            fixture_mirror):
    result = matrix(fixture_project, fixture_mirror, "--port", "stmhal,bare-arm", "--board", "all")
    assert result.returncode == 1
    assert summary(result.stdout) == {"stmhal-BROKEN": "failed", "stmhal-PYBV10": "ok",
                                      "stmhal-PYBV11": "ok", "bare-arm": "ok"}
    assert "board.c:3:12: error" in result.stderr  # the first compiler error, shown
    for name in ("stmhal-PYBV10", "stmhal-PYBV11"):
        dist = fixture_project / "dist" / name
        assert {p.name for p in dist.iterdir()} == {"firmware.dfu", "firmware.hex",
                                                    "firmware.elf", "manifest.json"}
        manifest = json.loads((dist / "manifest.json").read_text())
        assert manifest["board"] == name.split("-")[1]
        assert manifest["size"]["text"] > 0
    bare = fixture_project / "dist" / "bare-arm"
    assert (bare / "firmware.bin").stat().st_size > 0  # from the port's post-build objcopy
    assert not (fixture_project / "dist" / "stmhal-BROKEN").exists()


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_the_job_budget_bounds_all_compiles_together(fixture_project, fixture_mirror, tmp_path, jobs):
    track = tmp_path / "jobs"
    result = matrix(fixture_project, fixture_mirror, "--port", "stmhal,bare-arm", "--board", "all",
                    "--jobs", str(jobs), env={"TRACK_JOBS": str(track)})
    assert summary(result.stdout)["stmhal-PYBV11"] == "ok", result.stdout + result.stderr
    most = int((track / "max").read_text())
    assert most <= jobs
    if jobs > 1:
        assert most >= 2  # several makes did share the budget


def test_a_noop_rerun_is_all_cached_and_a_change_rebuilds(fixture_project, fixture_mirror):
    args = ("--port", "stmhal,bare-arm,unix", "--board", "PYBV11")
    assert matrix(fixture_project, fixture_mirror, *args).returncode == 0
    again = matrix(fixture_project, fixture_mirror, *args)
    assert again.returncode == 0
    assert set(summary(again.stdout).values()) == {"cached"}

    board = fixture_project / "micropython" / "stmhal" / "boards" / "PYBV11" / "board.c"
    before = (fixture_project / "dist" / "stmhal-PYBV11" / "firmware.elf").read_bytes()
    board.write_text(board.read_text().replace("board_id = 6;", "board_id = 7;"))
    changed = matrix(fixture_project, fixture_mirror, *args)
    assert changed.returncode == 0
    assert summary(changed.stdout)["stmhal-PYBV11"] == "ok"
    assert (fixture_project / "dist" / "stmhal-PYBV11" / "firmware.elf").read_bytes() != before


def path_without(folder: Path, prefix: str) -> str:
    """A PATH with every program of this one except those whose name starts with ``prefix``."""
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            link = folder / name
            if not name.startswith(prefix) and not link.exists():
                link.symlink_to(os.path.join(directory, name))
    return str(folder)


def test_a_missing_toolchain_skips_its_targets_and_strict_fails(fixture_project, fixture_mirror,
                                                                tmp_path):
    env = {"PATH": path_without(tmp_path / "bin", "arm-none-eabi-")}
    result = matrix(fixture_project, fixture_mirror, "--port", "unix,bare-arm", env=env)
    assert result.returncode == 0, result.stderr
    rows = summary(result.stdout)
    assert rows == {"unix": "ok", "bare-arm": "skipped"}
    assert "toolchain arm-none-eabi not found" in result.stdout
    assert "apt-get install gcc-arm-none-eabi" in result.stdout
    strict = matrix(fixture_project, fixture_mirror, "--port", "unix,bare-arm", "--strict", env=env)
    assert strict.returncode == 1
    assert "1 skipped (--strict)" in strict.stderr


def test_unknown_board_lists_the_boards_of_the_tree(fixture_project, fixture_mirror):
    result = matrix(fixture_project, fixture_mirror, "--port", "stmhal", "--board", "NOPE")
    assert result.returncode == 1
    assert "unknown board 'NOPE' for port 'stmhal' (valid boards: BROKEN, PYBV10, PYBV11)" in result.stderr


def test_artifacts_are_byte_identical_across_checkout_folders(fixture_project, fixture_mirror,
                                                              tmp_path):
    other = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(fixture_project, other, symlinks=True)
    args = ("--port", "stmhal,bare-arm", "--board", "PYBV11")
    for project in (fixture_project, other):
        assert matrix(project, fixture_mirror, *args).returncode == 0
    for target in ("stmhal-PYBV11", "bare-arm"):
        first = json.loads((fixture_project / "dist" / target / "manifest.json").read_text())
        second = json.loads((other / "dist" / target / "manifest.json").read_text())
        assert first["artifacts"] == second["artifacts"]
        assert first["source_date_epoch"] == second["source_date_epoch"] > 0
