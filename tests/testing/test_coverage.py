""":mod:`mpforge.testing.coverage`: which lines each patch adds, and ``invoke test --coverage``
on the fixture tree (the real host compiler, gcov and gcovr)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import git, project_for, run_task
from mpforge.testing.coverage import PatchCoverage, _replay, lines_added_by, patch_coverage
from mpforge.tree.series import read_series


def test_replaying_hunks_gives_each_line_its_owner():
    owners = [None] * 5  # upstream's five lines
    hunk = ["@@ -2,2 +2,3 @@", " two", "-three", "+THREE", "+three and a half"]
    after = _replay(owners, hunk, "0001")
    assert after == [None, None, "0001", "0001", None, None]
    # a later patch that rewrites a line takes it over; an insertion after line 0 starts the file
    later = _replay(after, ["@@ -0,0 +1 @@", "+first", "@@ -3,1 +4,1 @@", "-THREE", "+three"], "0002")
    assert later == ["0002", None, None, "0002", "0001", None, None]


def test_a_new_file_is_all_its_patch_and_a_later_edit_is_the_later_patch(tmp_path):
    tree = tmp_path / "tree"
    (tree / "py").mkdir(parents=True)
    (tree / "py" / "a.c").write_text("int a;\nint b;\n")
    git(tree, "init", "-q", "-b", "main")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "pin")
    patches = tmp_path / "patches"
    patches.mkdir()
    (patches / "0001-new.patch").write_text(
        "--- /dev/null\n+++ b/py/new.c\n@@ -0,0 +1,2 @@\n+int x;\n+int y;\n"
        "--- a/py/a.c\n+++ b/py/a.c\n@@ -1,2 +1,3 @@\n int a;\n+int a2;\n int b;\n")
    (patches / "0002-edit.patch").write_text(
        "--- a/py/new.c\n+++ b/py/new.c\n@@ -1,2 +1,2 @@\n-int x;\n+long x;\n int y;\n")
    (patches / "series").write_text("0001-new.patch\n0002-edit.patch\n")
    project = project_for(tmp_path)
    project.tree = tree
    added = lines_added_by(project, read_series(patches), git(tree, "rev-parse", "HEAD"))
    assert added == {"0001-new.patch": {"py/new.c": {2}, "py/a.c": {2}}, "0002-edit.patch": {"py/new.c": {1}}}
    rows = patch_coverage(added, {"py/new.c": {1: 4, 2: 0}, "py/a.c": {1: 1}})  # a.c:2 is not executable
    assert rows == [PatchCoverage("0001-new.patch", 1, 0, ["py/new.c:2"]),
                    PatchCoverage("0002-edit.patch", 1, 1, [])]


needs_gcovr = pytest.mark.skipif(
    subprocess.run([sys.executable, "-m", "gcovr", "--version"], capture_output=True).returncode != 0
    or shutil.which("gcov") is None, reason="needs gcovr (pip install -e '.[test]') and gcov (Debian gcc)")


@needs_gcovr
def test_invoke_test_coverage_writes_cobertura_html_and_the_patch_table(fixture_project, fixture_mirror,
                                                                       tmp_path):
    out = tmp_path / "cov"
    assert run_task(fixture_project, "fetch", "--mirror", str(fixture_mirror.base)).returncode == 0
    # a test of our own that reaches the patched allocator (the fixture's threshold is 300 bytes)
    basics = fixture_project / "micropython" / "tests" / "basics"
    (basics / "alloc1.py").write_text("alloc 5\n")
    (basics / "alloc1.py.exp").write_text("collections 1\n")
    result = run_task(fixture_project, "test", "--port", "unix", "-k", "basics", "--coverage",
                     "--coverage-out", str(out), "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    # its own build, never the default one
    assert (fixture_project / "dist" / "unix-coverage" / "micropython").is_file()
    assert not (fixture_project / "dist" / "unix").exists()
    assert list((fixture_project / "build" / "unix-coverage").rglob("*.gcda"))
    patches = {row["patch"]: row for row in json.loads((out / "patches.json").read_text())}
    threshold = patches["0002-gc-threshold.patch"]
    assert threshold["lines"] > 0 and 0 < threshold["covered"] <= threshold["lines"]
    assert patches["0001-gc-threshold-decl.patch"]["lines"] == 0  # a declaration in a header
    assert "0002-gc-threshold.patch" in result.stdout and "coverage:" in result.stdout
    assert (out / "html" / "index.html").is_file()
    # gcovr's own reader takes the Cobertura file back and finds the same lines
    again = subprocess.run([sys.executable, "-m", "gcovr", "--cobertura-add-tracefile", str(out / "coverage.xml"),
                            "--json-summary", "-"], capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    report = json.loads((tmp_path / "r.json").read_text())["coverage"]
    assert summary["line_total"] == report["lines"] and summary["line_covered"] == report["covered"]
    # a second run starts from zero counters: the same counts, not doubled ones
    counts = (out / "coverage.json").read_text()
    assert run_task(fixture_project, "test", "--port", "unix", "-k", "basics", "--coverage",
                   "--coverage-out", str(out)).returncode == 0
    assert {r["patch"]: r for r in json.loads((out / "patches.json").read_text())} == patches
    assert json.loads((out / "coverage.json").read_text()) == json.loads(counts)


def test_a_port_without_a_coverage_variant_is_refused_in_one_line(fixture_project, fixture_mirror):
    result = run_task(fixture_project, "test", "--port", "minimal", "--mirror", str(fixture_mirror.base),
                     "--coverage")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "port 'minimal' has no variant 'coverage'" in line
