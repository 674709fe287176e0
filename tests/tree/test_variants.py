"""Variant trees: the pinned tree with another series, built beside the main one."""

from __future__ import annotations

import subprocess

from conftest import git, project_for
from mpforge.firmware.pipeline import build_one
from mpforge.tree.fetch import fetch
from mpforge.tree.patches import read_series
from mpforge.tree.variants import resolve_commit, variant_project


def collections(binary) -> str:
    out = subprocess.run([binary], input="alloc 10\n", text=True, stdout=subprocess.PIPE,
                         check=True).stdout
    return out.splitlines()[-1]


def test_variant_without_the_series_builds_an_unpatched_binary(fixture_project, fixture_mirror):
    project = project_for(fixture_project)
    main = build_one(project.target("unix"), mirror=str(fixture_mirror.base))
    assert collections(main.dist_dir / "micropython") == "collections 3"  # patched

    first = read_series(project.patches_dir)[:1]
    variant = variant_project(project, "first-only", first, project.catalog.port("unix"))
    assert variant.tree == fixture_project / "build" / "variants" / "first-only" / "tree"
    assert git(variant.tree, "rev-parse", "HEAD") == fixture_mirror.tree_sha
    assert (variant.tree / "lib" / "axtls").is_symlink()

    result = build_one(variant.target("unix"), mirror=None)
    assert collections(result.dist_dir / "micropython") == "collections 0"  # no threshold
    assert [p["name"] for p in result.manifest["patches"]] == ["0001-gc-threshold-decl.patch"]
    assert result.dist_dir == fixture_project / "build" / "variants" / "first-only" / "dist" / "unix"

    # the main tree and its series are untouched; deplibs were shared, not rebuilt
    assert len(read_series(project.patches_dir)) == 2
    assert "gc_threshold_bytes" in (fixture_project / "micropython" / "py" / "gc.c").read_text()
    assert not (fixture_project / "build" / "variants" / "first-only" / "build" / "deplibs").exists()

    # a second call reuses the worktree
    again = variant_project(project, "first-only", first, project.catalog.port("unix"))
    assert build_one(again.target("unix"), mirror=None).changed is False


def test_a_variant_can_sit_at_another_commit_of_the_tree(fixture_project, fixture_mirror):
    project = project_for(fixture_project)
    fetch(project, [project.catalog.port("unix")], str(fixture_mirror.base))
    # a later commit of the tree's history (as upstream's commits after the pin are)
    later = git(project.tree, "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "later")
    assert resolve_commit(project, later[:10]) == later
    missing = "0123456789abcdef0123456789abcdef01234567"
    assert resolve_commit(project, missing, str(fixture_mirror.base)) is None

    variant = variant_project(project, "reference", read_series(project.patches_dir)[:1], project.catalog.port("unix"),
                              later)
    assert git(variant.tree, "rev-parse", "HEAD") == later
    assert git(project.tree, "rev-parse", "HEAD") == fixture_mirror.tree_sha  # untouched
    # the same variant name without a commit: back at the pin
    again = variant_project(project, "reference", [], project.catalog.port("unix"))
    assert git(again.tree, "rev-parse", "HEAD") == fixture_mirror.tree_sha
