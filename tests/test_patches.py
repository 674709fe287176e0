"""The patch queue against a real git checkout of the fixture tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, git, make_repo
from mpforge.errors import ConfigError, PatchError
from mpforge.executor import Executor
from mpforge.patches import PatchQueue, PatchState, read_series

GC_C = "py/gc.c"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    repo = tmp_path / "tree"
    make_repo(FIXTURES / "minitree", repo)
    return repo


@pytest.fixture
def patches(tmp_path: Path) -> Path:
    folder = tmp_path / "patches"
    shutil.copytree(FIXTURES / "patches", folder)
    return folder


def queue(patches: Path, tree: Path) -> PatchQueue:
    return PatchQueue(patches, tree, Executor())


def pristine(tree: Path) -> bool:
    return git(tree, "status", "--porcelain") == ""


def conflicting_patch(folder: Path, name: str = "0003-conflict.patch") -> None:
    """A patch whose context does not match the tree (second hunk is wrong)."""
    (folder / name).write_text(
        "--- a/py/gc.c\n+++ b/py/gc.c\n@@ -1,3 +1,3 @@\n"
        " this line is not in the tree\n-neither is this\n+nor this\n")
    with (folder / "series").open("a") as fh:
        fh.write(f"{name}\n")


def test_series_parsing_skips_comments_and_reads_strip_levels(patches):
    series = read_series(patches)
    assert [(p.name, p.strip) for p in series] == [
        ("0001-gc-threshold-decl.patch", 1), ("0002-gc-threshold.patch", 1)]


def test_series_naming_a_missing_file_is_a_config_error(patches):
    (patches / "series").write_text("nosuch.patch\n")
    with pytest.raises(ConfigError, match="line 1: no such patch 'nosuch.patch'"):
        read_series(patches)


def test_series_with_an_unknown_option_is_refused(patches):
    (patches / "series").write_text("0001-gc-threshold-decl.patch -R\n")
    with pytest.raises(ConfigError, match="unknown option '-R'"):
        read_series(patches)


def test_apply_then_reapply_is_a_noop_and_records_name_and_sha(patches, tree):
    q = queue(patches, tree)
    applied = q.apply()
    assert [p.name for p in applied] == ["0001-gc-threshold-decl.patch", "0002-gc-threshold.patch"]
    assert "gc_threshold_bytes = 300" in (tree / GC_C).read_text()
    assert q.apply() == []  # no-op success
    record = q.applied()
    assert [r["name"] for r in record] == [p.name for p in applied]
    assert record[0]["sha256"] == applied[0].sha256
    assert [s for _, s in q.status()] == [PatchState.APPLIED, PatchState.APPLIED]


def test_revert_restores_the_pristine_tree(patches, tree):
    q = queue(patches, tree)
    q.apply()
    assert not pristine(tree)
    assert len(q.revert()) == 2
    assert pristine(tree)
    assert q.revert() == []  # nothing left to revert
    assert q.applied() == []


def test_a_failing_patch_leaves_the_tree_untouched_and_is_named_with_its_hunk(patches, tree):
    conflicting_patch(patches)
    q = queue(patches, tree)
    with pytest.raises(PatchError) as info:
        q.apply()
    assert "patch 0003-conflict.patch does not apply" in info.value.message
    assert "py/gc.c" in info.value.message
    assert pristine(tree)  # the two good patches were not applied either
    states = dict((p.name, s) for p, s in q.status())
    assert states["0001-gc-threshold-decl.patch"] == PatchState.NOT_APPLIED
    assert states["0003-conflict.patch"] == PatchState.CONFLICTING


def test_an_edited_series_swaps_old_patches_for_new(patches, tree):
    q = queue(patches, tree)
    q.apply()
    p2 = patches / "0002-gc-threshold.patch"
    p2.write_text(p2.read_text().replace("gc_threshold_bytes = 300", "gc_threshold_bytes = 500"))
    assert [s for _, s in q.status()][1] == PatchState.OUTDATED
    assert len(q.apply()) == 2
    assert "gc_threshold_bytes = 500" in (tree / GC_C).read_text()
    assert "= 300" not in (tree / GC_C).read_text()


def test_failed_swap_puts_the_old_series_back(patches, tree):
    q = queue(patches, tree)
    q.apply()
    before = (tree / GC_C).read_text()
    conflicting_patch(patches)
    with pytest.raises(PatchError):
        q.apply()
    assert (tree / GC_C).read_text() == before
    assert len(q.applied()) == 2


def test_revert_works_after_the_patch_files_are_gone(patches, tree):
    q = queue(patches, tree)
    q.apply()
    shutil.rmtree(patches)
    patches.mkdir()
    assert len(q.revert()) == 2
    assert pristine(tree)


def test_revert_refuses_when_user_changes_sit_on_top(patches, tree):
    q = queue(patches, tree)
    q.apply()
    src = tree / GC_C
    src.write_text(src.read_text().replace("since_collect = 0;", "since_collect = 1;"))
    with pytest.raises(PatchError, match="cannot be reverted"):
        q.revert()
    assert "since_collect = 1;" in src.read_text()  # user's edit kept


def test_unrecorded_applied_series_is_detected_and_revertible(patches, tree):
    q = queue(patches, tree)
    for p in read_series(patches):
        git(tree, "apply", str(p.path))
    assert [s for _, s in q.status()] == [PatchState.APPLIED, PatchState.APPLIED]
    assert len(q.revert()) == 2
    assert pristine(tree)


def test_not_a_checkout_is_a_clear_error(patches, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(PatchError, match="not a git checkout"):
        queue(patches, plain).apply()


def test_edits_on_top_of_an_applied_series_are_kept_by_reapply(patches, tree):
    q = queue(patches, tree)
    q.apply()
    src = tree / GC_C
    src.write_text(src.read_text().replace("since_collect = 0;", "since_collect = 1;"))
    assert q.apply() == []
    assert "since_collect = 1;" in src.read_text()


def test_a_tree_reset_under_a_stale_record_gets_the_series_again(patches, tree):
    q = queue(patches, tree)
    q.apply()
    git(tree, "checkout", "-q", ".")
    assert len(q.apply()) == 2
    assert "gc_threshold_bytes = 300" in (tree / GC_C).read_text()
