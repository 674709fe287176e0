"""bench-gc's pure parts (sizes, the target checks, the feature patch) and bench-build on the fixture."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import project_for, run_cli
from mpforge.bench.runs import MIB, Report, Run, _feature_prefix, check_targets, parse_size
from mpforge.core.errors import MpforgeError


def test_parse_size():
    assert parse_size("8M") == 8 * MIB
    assert parse_size("256k") == 256 * 1024
    assert parse_size("4096") == 4096
    assert parse_size("off") == -1
    with pytest.raises(MpforgeError, match="not a size"):
        parse_size("lots")


def report(rss_with: int, rss_without: int, cpu_big: float, cpu_small: float,
           instr: tuple[int, int] | None) -> Report:
    r = Report(runs=[Run("patched", 512 * MIB, MIB, rss_with, cpu_big),
                     Run("patched", 512 * MIB, -1, rss_without, 0.07),
                     Run("patched", 8 * MIB, MIB, 3000, cpu_small),
                     Run("patched", 8 * MIB, -1, 10000, 0.04)])
    if instr:
        r.instructions = {"patched-off": instr[0], "unpatched": instr[1]}
    return r


def test_targets_are_computed_from_the_grid():
    met = check_targets(report(3000, 60000, 0.04, 0.04, (1005, 1000)), [8 * MIB, 512 * MIB],
                        [-1, MIB])
    assert [(name.split(",")[0], value, ok) for name, value, _, ok in met] == [
        ("peak RSS", 0.05, True), ("CPU", 1.0, True), ("instructions", 1.005, True)]
    missed = check_targets(report(9000, 60000, 0.09, 0.04, (1020, 1000)), [8 * MIB, 512 * MIB],
                           [-1, MIB])
    assert [ok for *_, ok in missed] == [False, False, False]


def test_targets_not_covered_by_the_grid_are_left_out():
    assert check_targets(report(3000, 60000, 0.04, 0.04, None), [512 * MIB], [-1]) == []


def test_feature_prefix_is_the_series_before_the_feature(fixture_project):
    project = project_for(fixture_project)
    assert [p.name for p in _feature_prefix(project, "gc-threshold.patch")] == [
        "0001-gc-threshold-decl.patch"]
    with pytest.raises(MpforgeError, match="no patch in patches/series matches 'nope'"):
        _feature_prefix(project, "nope")


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
    assert "matrix wall / sequential wall" in result.stdout
