"""``invoke patch --new`` / ``--refresh`` through the real command line, on the fixture project."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Mirror, project_for, run_task
from mpforge.tree.fingerprint import tree_fingerprint
from mpforge.tree.patches import PatchQueue


def snapshot(tree: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(tree).parts}


def matches(project: Path, pin: str) -> bool:
    proj = project_for(project)
    return tree_fingerprint(PatchQueue(proj.patches_dir, proj.tree, proj.executor), pin).matches


@pytest.fixture
def patched(fixture_project: Path, fixture_mirror: Mirror) -> Path:
    for args in (("fetch", "--port", "unix", "--mirror", str(fixture_mirror.base)), ("patch",)):
        result = run_task(fixture_project, *args)
        assert result.returncode == 0, result.stdout + result.stderr
    return fixture_project


def test_new_then_revert_and_apply_reproduces_the_tree(patched, fixture_mirror):
    gc = patched / "micropython" / "py" / "gc.c"
    gc.write_text(gc.read_text().replace("static void gc_collect(void) {",
                                         "/* a comment */\nstatic void gc_collect(void) {"))
    before = snapshot(patched / "micropython")
    assert not matches(patched, fixture_mirror.tree_sha)
    result = run_task(patched, "patch", "--new", "gc-comment", "--message", "py/gc: a comment")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "patches/0003-gc-comment.patch (py/gc.c)" in result.stdout
    series = (patched / "patches" / "series").read_text().split()
    assert series[-1] == "0003-gc-comment.patch"
    assert "Subject: [PATCH] py/gc: a comment" in (patched / "patches" / "0003-gc-comment.patch").read_text()
    assert matches(patched, fixture_mirror.tree_sha)
    for args in (("patch", "--revert"), ("patch",)):
        step = run_task(patched, *args)
        assert step.returncode == 0, step.stdout + step.stderr
    assert snapshot(patched / "micropython") == before
    assert matches(patched, fixture_mirror.tree_sha)
    status = run_task(patched, "patch", "--status")
    assert status.returncode == 0 and status.stdout.count("applied") >= 3


def test_refresh_works_inside_hunks_and_a_later_patch_file_is_refused_in_one_line(patched, fixture_mirror):
    gc = patched / "micropython" / "py" / "gc.c"
    gc.write_text(gc.read_text().replace("gc_threshold_bytes = 300;", "gc_threshold_bytes = 512;"))
    refused = run_task(patched, "patch", "--refresh", "0001")
    assert refused.returncode == 1
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "0002-gc-threshold.patch" in lines[0] and "Traceback" not in refused.stderr
    done = run_task(patched, "patch", "--refresh", "0002")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gc_threshold_bytes = 512;" in (patched / "patches" / "0002-gc-threshold.patch").read_text()
    assert matches(patched, fixture_mirror.tree_sha)
