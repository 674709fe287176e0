"""bench-build: labels that say what ran, no crash on an empty selection, --check, result files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from invoke import Context, Exit

from conftest import path_without, run_cli
from mpforge.bench import build
from mpforge.bench.build import BuildBench
from mpforge.cli.render import bench as render_bench
from mpforge.core.errors import BenchError


def bench(matrix: float, cpu: float, sequential: float) -> BuildBench:
    return BuildBench(["unix"], 2, matrix, cpu, sequential, [])


def test_targets_follow_the_figures() -> None:
    assert [(t.measured, t.met) for t in bench(10.0, 20.0, 20.0).limits] == [(1.0, True), (0.5, True)]
    assert [t.met for t in bench(10.0, 10.0, 11.0).limits] == [False, False]


def test_figures_without_a_divisor_give_no_target_and_no_crash() -> None:
    empty = bench(0.0, 0.0, 0.0)
    assert empty.limits == [] and empty.efficiency == 0.0 and empty.speedup == 0.0
    assert empty.as_dict()["targets_checked"] == []


def test_the_one_at_a_time_side_is_named_for_what_it_is() -> None:
    """Both sides run mpforge's pipeline: the table must not call one of them plain make."""
    rows = dict(render_bench.build_bench_rows(bench(10.0, 20.0, 20.0)))
    label = "one target at a time (mpforge's pipeline, make -j2 each)"
    assert label in rows
    assert not any("plain make" in name for name in rows)
    assert bench(10.0, 20.0, 20.0).as_dict()["sequential_is"] == label


def test_an_empty_selection_is_an_error_not_a_division() -> None:
    with pytest.raises(BenchError, match="holds no target"):
        build.bench_build(None, [], 2)  # type: ignore[arg-type]  # never reached


@pytest.mark.skipif(shutil.which("xc16-gcc") is not None, reason="XC16 is installed: pic16bit builds here")
def test_a_selection_with_nothing_buildable_is_one_line_and_exit_1(fixture_project: Path, fixture_mirror) -> None:
    """`bench-build --port pic16bit` without XC16: every target skipped, nothing to measure."""
    result = run_cli(fixture_project, "bench-build", "--port", "pic16bit", "--mirror", str(fixture_mirror.base),
                     env={"XC16_DIR": str(fixture_project / "no-xc16")})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "ZeroDivisionError" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if " error " in f" {line} "]
    assert len(errors) == 1 and "no target was built, nothing to measure: pic16bit" in errors[0]


def run_task(project: Path, monkeypatch: pytest.MonkeyPatch, figures: BuildBench, **flags: object) -> None:
    """``invoke bench-build`` in process, its measurement replaced by ``figures``."""
    from mpforge.cli.tasks import bench as tasks

    monkeypatch.chdir(project)
    monkeypatch.delenv("MPFORGE_ROOT", raising=False)
    monkeypatch.setattr(tasks.build_bench, "bench_build", lambda pipeline, targets, jobs: figures)
    tasks.bench_build.body(Context(), port="unix", jobs=2, **flags)


def test_check_exits_1_on_a_missed_target(fixture_project: Path, monkeypatch, capsys) -> None:
    missed = bench(10.0, 10.0, 11.0)  # both targets missed
    run_task(fixture_project, monkeypatch, missed)  # without --check: the figures, exit 0
    assert "NO" in capsys.readouterr().out
    with pytest.raises(Exit) as info:
        run_task(fixture_project, monkeypatch, missed, check=True)
    assert info.value.code == 1
    assert "bench-build: 2 of 2 targets missed" in capsys.readouterr().err
    run_task(fixture_project, monkeypatch, bench(10.0, 20.0, 20.0), check=True)  # met: exit 0


def test_record_writes_the_figures_with_the_run(fixture_project: Path, monkeypatch) -> None:
    run_task(fixture_project, monkeypatch, bench(10.0, 20.0, 20.0), record=True)
    data = json.loads((fixture_project / "bench-results" / "bench-build.json").read_text())
    assert data["matrix_wall"] == 10.0 and data["speedup"] == 0.5
    run = data["run"]
    assert set(run) >= {"command", "date", "mpforge", "project_commit", "tree_commit", "host"}
    assert run["command"].startswith("invoke ") and run["host"]["cores"]


def test_bench_build_measures_the_matrix_and_the_targets_one_by_one(fixture_project, fixture_mirror, tmp_path):
    ports = "unix,bare-arm" if shutil.which("arm-none-eabi-gcc") else "unix"
    out = tmp_path / "bench.json"
    result = run_cli(fixture_project, "bench-build", "--port", ports, "--jobs", "2",
                     "--mirror", str(fixture_mirror.base), "--json", str(out))
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["targets"] == ports.split(",") and figures["failed"] == []
    assert figures["matrix_wall"] > 0 and figures["sequential_wall"] > 0 and figures["cpu_total"] > 0
    assert figures["jobs"] == 2
    assert "matrix wall / one-at-a-time wall" in result.stdout
    # the file says which run it holds, and names no path of this machine
    assert figures["run"]["command"] == (f"invoke bench-build --port {ports} --jobs 2 --mirror '<mirror>' "
                                         "--json '<path>/bench.json'")
    assert str(tmp_path) not in out.read_text() and str(fixture_mirror.base) not in out.read_text()


@pytest.mark.skipif(shutil.which("ccache") is None, reason="needs ccache (apt-get install ccache)")
def test_bench_build_remote_cache_measures_a_second_checkout_against_cold_and_warm(fixture_project,
                                                                                   fixture_mirror, tmp_path):
    """--remote-cache on the fixture tree with a file: remote (the server tests are in
    tests/firmware/test_shared_cache.py): the second checkout elsewhere gets every object
    from the remote, its artifacts are the first's, and the figures are recorded."""
    remote = tmp_path / "remote"
    remote.mkdir()
    out = tmp_path / "remote.json"
    result = run_cli(fixture_project, "bench-build", "--port", "unix", "--remote-cache", f"file:{remote}",
                     "--json", str(out), "--mirror", str(fixture_mirror.base))
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    cold, second, warm = data["cold"]["ccache"], data["second_checkout"]["ccache"], data["warm_local"]["ccache"]
    assert cold["misses"] == 4 and cold["remote_hits"] == 0
    assert second["remote_hits"] == 4 and second["misses"] == 0 and second["local_hits"] == 0
    assert warm["local_hits"] == 4 and warm["remote_hits"] == 0
    assert data["differing"] == [] and data["remote_was_warm"] is False
    checked = {t["name"]: t for t in data["targets_checked"]}
    assert checked["second checkout: remote hits / compiles"]["measured"] == 1.0
    assert "a-second-checkout" not in subprocess.run(["git", "worktree", "list"], cwd=fixture_project,
                                                     capture_output=True, text=True).stdout


def test_bench_build_remote_cache_without_ccache_is_one_line_before_any_build(fixture_project, tmp_path):
    """Without ccache every figure would read 0, as if nothing hit: refused first."""
    out = tmp_path / "remote.json"
    result = run_cli(fixture_project, "bench-build", "--port", "unix", "--remote-cache", f"file:{tmp_path}",
                     "--json", str(out), env={"PATH": path_without(tmp_path, "ccache")})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "bench-build --remote-cache: ccache is not installed" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    assert not (fixture_project / "dist" / "unix").exists()
