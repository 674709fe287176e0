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
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Mirror, run_task

#: on the tests that compile the ARM ports (the others stop before any compiler runs)
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="needs arm-none-eabi-gcc (apt-get install gcc-arm-none-eabi)")


def matrix(project: Path, mirror: Mirror, *args: str, env: dict[str, str] | None = None):
    return run_task(project, "build", "--mirror", str(mirror.base), "--no-ccache", *args, env=env)


def summary(stdout: str) -> dict[str, str]:
    """target -> status, from the summary table."""
    rows = stdout.split("build matrix:", 1)[1].splitlines()[2:]
    cells = [r.split() for r in rows]
    return {c[0]: c[1] for c in cells if len(c) > 1 and ":" not in c[0]  # not a log line
            and c[1] in ("ok", "cached", "failed", "skipped")}


@needs_arm
def test_boards_come_from_the_tree_and_one_failure_does_not_stop_the_others(fixture_project,
                                                                            fixture_mirror):
    result = matrix(fixture_project, fixture_mirror, "--port", "stmhal,bare-arm", "--board", "all")
    assert result.returncode == 1
    assert summary(result.stdout) == {"stmhal-BROKEN": "failed", "stmhal-PYBV10": "ok",
                                      "stmhal-PYBV11": "ok", "bare-arm": "ok"}
    assert "board.c:3:12: error" in result.stderr  # the first compiler error, shown
    for name in ("stmhal-PYBV10", "stmhal-PYBV11"):
        dist = fixture_project / "dist" / name
        assert {p.name for p in dist.iterdir()} == {"firmware.dfu", "firmware.hex", "firmware.elf",
                                                    "manifest.json", "sbom.spdx.json", "provenance.intoto.json"}
        manifest = json.loads((dist / "manifest.json").read_text())
        assert manifest["board"] == name.split("-")[1]
        assert manifest["size"]["text"] > 0
    bare = fixture_project / "dist" / "bare-arm"
    assert (bare / "firmware.bin").stat().st_size > 0  # from the port's post-build objcopy
    assert not (fixture_project / "dist" / "stmhal-BROKEN").exists()


@needs_arm
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


@needs_arm
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


@needs_arm
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


@needs_arm
def test_a_port_whose_sources_cannot_be_fetched_fails_alone(fixture_project, fixture_mirror):
    # like esp8266 with a mirror lacking its SDK: bare-arm with a pinned source the mirror lacks
    sdk = (fixture_project / "ports" / "bare-arm.toml").read_text() + '''
[[sources]]
name = "vendor-sdk"
url = "https://github.com/vendor/missing-sdk.git"
rev = "0123456789abcdef0123456789abcdef01234567"
'''
    (fixture_project / "ports" / "bare-sdk.toml").write_text(sdk)
    result = matrix(fixture_project, fixture_mirror, "--port", "bare-arm,bare-sdk")
    assert result.returncode == 1
    assert summary(result.stdout) == {"bare-arm": "ok", "bare-sdk": "failed"}
    assert "vendor/missing-sdk" in result.stderr  # the reason names what could not be fetched
    assert (fixture_project / "dist" / "bare-arm" / "firmware.bin").exists()


def test_the_mirror_given_once_is_remembered_by_later_commands(fixture_project, fixture_mirror):
    first = run_task(fixture_project, "fetch", "--port", "bare-arm", "--mirror",
                    str(fixture_mirror.base))  # the tree only: unix's submodules come later
    assert first.returncode == 0, first.stderr
    env = {k: v for k, v in os.environ.items() if k != "MPFORGE_MIRROR"}
    unset: dict[str, str | None] = {"MPFORGE_MIRROR": None}  # run_cli adds to os.environ: remove it
    doctor = run_task(fixture_project, "doctor", env=unset)
    assert f"mirror: {fixture_mirror.base}" in doctor.stdout
    # a later build clones what fetch did not (unix's submodules), without --mirror
    assert not (fixture_project / "micropython" / "lib" / "axtls" / ".git").exists()
    built = subprocess.run([sys.executable, "-m", "mpforge", "build", "--port", "unix", "--no-ccache"],
                           cwd=fixture_project, env={**env, "CI": "1"}, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert (fixture_project / "dist" / "unix" / "micropython").exists()
    forgotten = run_task(fixture_project, "fetch", "--mirror", "none", env=unset)
    assert forgotten.returncode == 0  # everything is there already: nothing to clone
    assert "mirror: none" in run_task(fixture_project, "doctor", env=unset).stdout


@needs_arm
def test_board_a_comma_b_builds_those_boards_of_one_port(fixture_project, fixture_mirror):
    result = matrix(fixture_project, fixture_mirror, "--port", "stmhal", "--board", "PYBV10,PYBV11")
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout) == {"stmhal-PYBV10": "ok", "stmhal-PYBV11": "ok"}
