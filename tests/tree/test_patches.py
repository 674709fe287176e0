"""The patch queue (and its journal) against a real git checkout of the fixture tree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import git
from mpforge.core.errors import PatchError
from mpforge.core.executor import Executor
from mpforge.tree.patches import PatchQueue, PatchState, read_series

GC_C = "py/gc.c"


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


# --- crash safety: the journal, half-applied trees ------------------------------------------

def half_apply(patches: Path, tree: Path, only: str = "py/gc.h") -> None:
    """What an older mpforge left when killed inside `git apply`: one file patched, not the other."""
    for p in read_series(patches):
        git(tree, "apply", f"--include={only}", str(p.path))


def legacy_record(patches: Path, tree: Path) -> None:
    """The record an older mpforge wrote: a list, with NNN.patch copies, no fingerprint."""
    state = Path(git(tree, "rev-parse", "--absolute-git-dir")) / "mpforge-patches"
    state.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, p in enumerate(read_series(patches)):
        shutil.copyfile(p.path, state / f"{i:03d}.patch")
        entries.append({"name": p.name, "sha256": p.sha256, "strip": p.strip})
    (state / "applied.json").write_text(json.dumps(entries))


def content(tree: Path) -> dict[str, str]:
    return {f: (tree / f).read_text() for f in ("py/gc.c", "py/gc.h")}


def test_a_half_applied_tree_is_never_called_applied_and_is_completed(patches, tree):
    q = queue(patches, tree)
    q.apply()
    patched = content(tree)
    q.revert()
    half_apply(patches, tree)
    legacy_record(patches, tree)
    assert {s for _, s in q.status()} == {PatchState.HALF}
    assert q.apply() == read_series(patches)  # completed, not "already applied"
    assert any("half-patched" in n and "completed" in n for n in q.notes)
    assert content(tree) == patched
    assert [s for _, s in q.status()] == [PatchState.APPLIED, PatchState.APPLIED]


def test_a_half_applied_tree_without_record_is_rolled_back_by_revert(patches, tree):
    q = queue(patches, tree)
    half_apply(patches, tree)
    assert {s for _, s in queue(patches, tree).status()} == {PatchState.HALF}
    assert len(q.revert()) == 2
    assert pristine(tree)


def test_a_half_applied_tree_with_edits_is_refused_and_left_alone(patches, tree):
    half_apply(patches, tree)
    src = tree / GC_C
    src.write_text(src.read_text() + "/* mine */\n")
    before = content(tree)
    with pytest.raises(PatchError, match=r"partly patched \(py/gc.h\) and has other changes \(py/gc.c\)"):
        queue(patches, tree).apply()
    assert content(tree) == before
    assert {s for _, s in queue(patches, tree).status()} == {PatchState.HALF}


def test_an_interrupted_journal_with_a_file_changed_since_is_refused(patches, tree):
    q = queue(patches, tree)
    q.apply()
    q.revert()
    state = q.state_dir
    # a journal as a killed apply leaves it: committed, nothing written yet
    scratch = tree.parent / "scratch"
    (scratch / "tree" / "py").mkdir(parents=True)
    queue(patches, tree).apply()
    after = content(tree)
    queue(patches, tree).revert()
    for name, text in after.items():
        (scratch / "tree" / name).write_text(text)
    import hashlib

    def sha(text):
        return hashlib.sha256(text.encode()).hexdigest()

    files = {name: {"before": sha((tree / name).read_text()), "after": sha(text)} for name, text in after.items()}
    (scratch / "journal.json").write_text(json.dumps({"op": "apply", "files": files, "record": None}))
    shutil.move(scratch, state / "txn")
    assert {s for _, s in q.status()} == {PatchState.INTERRUPTED}
    src = tree / GC_C
    src.write_text("/* the user's rewrite */\n")
    with pytest.raises(PatchError, match=r"left micropython/ half-done, and py/gc.c changed since"):
        q.apply()
    assert src.read_text() == "/* the user's rewrite */\n"  # never overwritten
    git(tree, "checkout", "-q", "--", GC_C)
    assert q.apply() == []  # the journal rolled forward: the series is applied
    assert content(tree) == after


def test_an_edited_series_is_swapped_in_one_transaction(patches, tree):
    q = queue(patches, tree)
    q.apply()
    p2 = patches / "0002-gc-threshold.patch"
    p2.write_text(p2.read_text().replace("gc_threshold_bytes = 300", "gc_threshold_bytes = 500"))
    calls = []
    original = q._commit
    q._commit = lambda *a, **k: (calls.append(a[1]), original(*a, **k))  # type: ignore[method-assign]
    q.apply()
    assert calls == ["apply"]  # one commit: the tree was never without a series


def test_a_series_applied_by_hand_is_recorded_without_touching_the_tree(patches, tree):
    for p in read_series(patches):
        git(tree, "apply", str(p.path))
    before = content(tree)
    q = queue(patches, tree)
    assert q.apply() == []
    assert content(tree) == before
    assert [r["name"] for r in q.applied()] == [p.name for p in read_series(patches)]


def test_a_dry_run_writes_nothing_anywhere(patches, tree):
    q = PatchQueue(patches, tree, Executor(dry_run=True))
    assert len(q.apply()) == 2
    assert pristine(tree)
    assert not (Path(git(tree, "rev-parse", "--absolute-git-dir")) / "mpforge-patches").exists()


def test_a_record_that_lost_its_patch_copies_is_a_clear_error(patches, tree):
    q = queue(patches, tree)
    q.apply()
    for copy in (q.state_dir / "patches").iterdir():
        copy.unlink()
    with pytest.raises(PatchError, match="lost its copy of"):
        q.revert()


def test_a_patch_editing_a_file_an_earlier_patch_creates_is_not_applied_not_conflicting(patches, tree):
    # as 0015 edits the emulated board 0008 adds: on a pristine (or reverted) tree the
    # pair applies in order, so --status says "not applied", and apply takes both
    (patches / "0003-new-board.patch").write_text(
        "--- /dev/null\n+++ b/boards/NEW/board.h\n@@ -0,0 +1,2 @@\n+#define NEW 1\n+#define UART 0\n")
    (patches / "0004-new-board-uart.patch").write_text(
        "--- a/boards/NEW/board.h\n+++ b/boards/NEW/board.h\n@@ -1,2 +1,2 @@\n #define NEW 1\n"
        "-#define UART 0\n+#define UART 1\n")
    with (patches / "series").open("a") as fh:
        fh.write("0003-new-board.patch\n0004-new-board-uart.patch\n")
    q = queue(patches, tree)
    assert {state for _, state in q.status()} == {PatchState.NOT_APPLIED}
    assert pristine(tree)  # the check changed nothing
    q.apply()
    assert (tree / "boards" / "NEW" / "board.h").read_text() == "#define NEW 1\n#define UART 1\n"
    q.revert()
    assert {state for _, state in q.status()} == {PatchState.NOT_APPLIED}
