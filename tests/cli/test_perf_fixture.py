"""invoke perf on the fixture tree, under a real valgrind: --per-patch names the patch that
slowed the allocator down, a patch that leaves the binary byte-identical is 0 and same,
--base REF reads REF's series from git; bad input is one line and writes nothing.

The fixture interpreter runs the workload file argv[1] names (``alloc N`` allocates N
times through ``gc_alloc``, the hot path ``0003-slow-alloc.patch`` slows down; ``raise``
exits 1). ``0004-comment-only.patch`` changes a comment on gc.c's first line only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, git, run_cli

pytestmark = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")

SLOW, COMMENT = "0003-slow-alloc.patch", "0004-comment-only.patch"


def add_patches(project: Path, *names: str) -> None:
    for name in names:
        shutil.copyfile(FIXTURES / "perf" / name, project / "patches" / name)
        with (project / "patches" / "series").open("a") as series:
            series.write(f"{name}\n")


def workload(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


def perf(project: Path, mirror: Path, *args: str):  # type: ignore[no-untyped-def]
    return run_cli(project, "perf", "--mirror", str(mirror), *args, timeout=900)


def test_per_patch_names_the_slow_patch_and_an_identical_binary_is_same(fixture_project, fixture_mirror,
                                                                        tmp_path):
    add_patches(fixture_project, SLOW, COMMENT)
    allocs = workload(tmp_path, "allocs", "alloc 3000\nsum 1 2\n")
    out, md = tmp_path / "perf.json", tmp_path / "perf.md"
    result = perf(fixture_project, fixture_mirror.base, "--per-patch", "--workloads", str(allocs),
                  "--json", str(out), "--markdown", str(md), "--check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "allocs (regression" in result.stderr + result.stdout
    assert f"in {SLOW}" in result.stderr + result.stdout

    data = json.loads(out.read_text())
    comparisons = data["comparisons"]
    assert [(c["base"], c["head"]) for c in comparisons] == [
        ("pin", "0001-gc-threshold-decl.patch"), ("0001-gc-threshold-decl.patch", "0002-gc-threshold.patch"),
        ("0002-gc-threshold.patch", SLOW), (SLOW, COMMENT)]
    rows = {c["head"]: c["workloads"][0] for c in comparisons}
    slow = rows[SLOW]
    assert slow["verdict"] == "regression" and slow["head"] > slow["base"] and slow["delta_pct"] > 1
    assert slow["top"][0]["function"] == "gc_alloc" and slow["top"][0]["delta"] > 3000 * 50
    same = rows[COMMENT]
    assert (same["verdict"], same["delta_pct"], same["base"]) == ("same", 0.0, same["head"])
    assert same["base"] == slow["head"]  # the slow binary, counted once (memo by sha256)
    # the threshold (0002) collects more often: a real, smaller change, not the slowdown's
    assert rows["0002-gc-threshold.patch"]["head"] != rows["0002-gc-threshold.patch"]["base"]
    sizes = {c["head"]: c["size"] for c in comparisons}
    assert sizes[SLOW]["head"]["text"] > sizes[SLOW]["base"]["text"] > 0
    assert sizes[COMMENT]["base"] == sizes[COMMENT]["head"]

    table = md.read_text()
    assert f"## 0002-gc-threshold.patch -> {SLOW}" in table
    assert "| allocs |" in table and "| regression |" in table and "`gc_alloc`" in table
    assert "Code size: text " in table


def test_base_ref_reads_the_series_at_the_ref_and_an_unknown_ref_builds_nothing(fixture_project,
                                                                                fixture_mirror, tmp_path):
    git(fixture_project, "tag", "before-slow")
    add_patches(fixture_project, SLOW)
    git(fixture_project, "add", "patches")
    git(fixture_project, "commit", "-q", "-m", "slow")
    allocs = workload(tmp_path, "allocs", "alloc 3000\n")
    out = tmp_path / "perf.json"

    unknown = perf(fixture_project, fixture_mirror.base, "--base", "no-such-branch", "--workloads",
                   str(allocs), "--json", str(out))
    assert unknown.returncode == 1
    said = (unknown.stderr + unknown.stdout).strip().splitlines()
    assert [line for line in said if "no-such-branch" in line] == said and len(said) == 1
    assert not out.exists() and not (fixture_project / "dist").exists()
    assert not (fixture_project / "build" / "variants").exists()

    result = perf(fixture_project, fixture_mirror.base, "--base", "before-slow", "--workloads", str(allocs),
                  "--json", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    (comparison,) = json.loads(out.read_text())["comparisons"]
    assert (comparison["base"], comparison["head"]) == ("before-slow", "pin + series")
    (row,) = comparison["workloads"]
    assert row["verdict"] == "regression" and row["top"][0]["function"] == "gc_alloc"
    series = (fixture_project / "build" / "variants" / "perf-base" / "patches" / "series").read_text()
    assert SLOW not in series and "0002-gc-threshold.patch" in series


def test_a_workload_that_raises_stops_the_run_and_writes_nothing(fixture_project, fixture_mirror, tmp_path):
    bad = workload(tmp_path, "broken", "sum 1 2\nraise\n")
    out, md = tmp_path / "perf.json", tmp_path / "perf.md"
    result = perf(fixture_project, fixture_mirror.base, "--workloads", str(bad), "--json", str(out),
                  "--markdown", str(md), "--record")
    assert result.returncode != 0
    assert "broken: exited with status 1 under valgrind" in result.stderr + result.stdout
    assert "Traceback (most recent" not in result.stderr
    assert not out.exists() and not md.exists()
    assert not (fixture_project / "bench-results").exists()


def test_valgrind_missing_is_one_line(fixture_project, tmp_path):
    out = tmp_path / "perf.json"
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run_cli(fixture_project, "perf", "--json", str(out), env={"PATH": str(empty)})
    assert result.returncode != 0
    assert "valgrind is not installed" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr and not out.exists()


def test_a_ref_pinning_a_commit_nobody_has_is_refused_before_building(fixture_project, fixture_mirror,
                                                                      tmp_path):
    missing = "0123456789abcdef0123456789abcdef01234567"
    git(fixture_project, "update-index", "--cacheinfo", f"160000,{missing},micropython")
    git(fixture_project, "commit", "-q", "-m", "pin a commit nobody has")
    git(fixture_project, "tag", "elsewhere")
    git(fixture_project, "reset", "-q", "--hard", "HEAD~1")
    out = tmp_path / "perf.json"
    result = perf(fixture_project, fixture_mirror.base, "--base", "elsewhere", "--json", str(out))
    assert result.returncode == 1
    said = (result.stderr + result.stdout).strip().splitlines()
    assert "pins micropython at 0123456789, which neither micropython/ nor the mirror has" in said[-1]
    assert not out.exists() and not (fixture_project / "build" / "variants").exists()
