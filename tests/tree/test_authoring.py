"""Patch authoring (``invoke patch --new`` / ``--refresh``) on a real git checkout of the fixture tree.

The fixture series: 0001 touches ``py/gc.h``, 0002 touches ``py/gc.c``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, git
from mpforge.core.errors import PatchError
from mpforge.core.executor import Executor
from mpforge.tree.authoring import _check_series, new_patch, next_number, refresh_patch
from mpforge.tree.fingerprint import tree_fingerprint
from mpforge.tree.journal import Scratch
from mpforge.tree.patches import AUTHORING, PatchQueue, read_series

GC_C = "py/gc.c"
GC_H = "py/gc.h"


def applied_queue(patches: Path, tree: Path) -> tuple[PatchQueue, str]:
    q = PatchQueue(patches, tree, Executor())
    q.apply()
    return q, git(tree, "rev-parse", "HEAD")


def snapshot(tree: Path) -> dict[str, bytes]:
    """Every file of the tree except git's own."""
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(tree).parts}


def edit(tree: Path, rel: str, old: str, new: str) -> None:
    path = tree / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1))


def test_new_writes_a_git_style_patch_appends_it_and_leaves_pin_plus_series(patches, tree):
    q, pin = applied_queue(patches, tree)
    edit(tree, GC_C, "static void gc_collect(void) {", "/* collect everything */\nstatic void gc_collect(void) {")
    (tree / "py" / "gcnote.txt").write_text("an untracked new file\n")
    (tree / "py" / "gc.o").write_bytes(b"\0object")  # a build output: never in a patch
    (tree / "build-PYBV10").mkdir()
    (tree / "build-PYBV10" / "firmware.elf").write_bytes(b"\0elf")  # ignored by the tree's .gitignore
    before = snapshot(tree)
    assert not tree_fingerprint(q, pin).matches

    done = new_patch(q, pin, "gc-comment", "py/gc: a comment\n\nWhy it is there.")

    assert done.patch == "0003-gc-comment.patch"
    assert done.files == [GC_C, "py/gcnote.txt"]
    assert "py/gc.o" in done.skipped
    text = (patches / done.patch).read_text()
    assert text.startswith("From: ") and "\nSubject: [PATCH] py/gc: a comment\n\nWhy it is there.\n\n---\n" in text
    assert "diff --git a/py/gc.c b/py/gc.c\nindex " in text
    assert "--- a/py/gc.c\n+++ b/py/gc.c\n" in text
    assert "diff --git a/py/gcnote.txt b/py/gcnote.txt\nnew file mode 100644\n" in text
    assert "--- /dev/null\n+++ b/py/gcnote.txt\n" in text
    assert "gc.o" not in text and "firmware.elf" not in text
    assert [p.name for p in read_series(patches)][-1] == done.patch
    assert tree_fingerprint(q, pin).matches or tree_fingerprint(q, pin).differing == ["py/gc.o"]
    assert not (q.state_dir / AUTHORING).exists()
    assert [r["name"] for r in q.applied()][-1] == done.patch  # recorded as applied
    assert q.apply() == []  # already applied: a no-op

    # the round trip: revert and apply reproduce the tree
    (tree / "py" / "gc.o").unlink()
    assert len(q.revert()) == 3
    assert git(tree, "status", "--porcelain", "--ignored=no") == ""
    q.apply()
    after = snapshot(tree)
    before.pop("py/gc.o")
    assert after == before
    assert tree_fingerprint(q, pin).matches


def test_new_refuses_nothing_to_do_a_taken_name_and_an_unapplied_series(patches, tree):
    q, pin = applied_queue(patches, tree)
    with pytest.raises(PatchError, match="nothing to make a patch of"):
        new_patch(q, pin, "empty")
    edit(tree, GC_C, "heap_used = 0;", "heap_used = 0; /* reset */")
    with pytest.raises(PatchError, match="0002-gc-threshold.patch"):
        new_patch(q, pin, "gc-threshold")
    with pytest.raises(PatchError, match="not a patch name"):
        new_patch(q, pin, "../evil")
    q2 = PatchQueue(patches, tree, Executor())
    git(tree, "checkout", "--", GC_H)  # 0001 taken out by hand: the series is not applied
    with pytest.raises(PatchError, match="series is not applied"):
        new_patch(q2, pin, "gc-reset")
    assert [p.name for p in read_series(patches)] == ["0001-gc-threshold-decl.patch", "0002-gc-threshold.patch"]
    assert not list(patches.glob("0003-*"))


def test_new_numbers_after_the_highest_patch(patches):
    (patches / "0014-x.patch").write_text("")
    assert next_number(patches) == 15


def test_refresh_folds_an_edit_inside_the_patch_hunks(patches, tree):
    q, pin = applied_queue(patches, tree)
    header = (patches / "0002-gc-threshold.patch").read_text().split("diff --git")[0]
    edit(tree, GC_C, "gc_threshold_bytes = 300;", "gc_threshold_bytes = 400;")
    before = snapshot(tree)

    done = refresh_patch(q, pin, "0002")

    assert done.patch == "0002-gc-threshold.patch" and done.files == [GC_C]
    text = (patches / done.patch).read_text()
    assert text.startswith(header)  # the message is kept
    assert "+size_t gc_threshold_bytes = 400;" in text and "= 300" not in text
    assert len(read_series(patches)) == 2
    assert tree_fingerprint(q, pin).matches
    q.revert()
    q.apply()
    assert snapshot(tree) == before


def test_refresh_refuses_an_edit_in_a_later_patch_file_naming_it(patches, tree):
    q, pin = applied_queue(patches, tree)
    edit(tree, GC_C, "gc_threshold_bytes = 300;", "gc_threshold_bytes = 400;")
    old = (patches / "0001-gc-threshold-decl.patch").read_bytes()
    with pytest.raises(PatchError) as info:
        refresh_patch(q, pin, "0001-gc-threshold-decl")
    assert "belongs to 0002-gc-threshold.patch, a later patch" in info.value.message
    assert "--refresh 0002-gc-threshold.patch" in info.value.hint
    assert (patches / "0001-gc-threshold-decl.patch").read_bytes() == old


def test_refresh_refuses_a_file_no_patch_touches_suggesting_new(patches, tree):
    q, pin = applied_queue(patches, tree)
    edit(tree, "py/obj.c", "", "/* mine */\n")
    with pytest.raises(PatchError) as info:
        refresh_patch(q, pin, "0002")
    assert "py/obj.c is in no patch" in info.value.message and "--new" in info.value.hint


def test_refresh_refuses_an_edit_in_an_earlier_patch_file_naming_it(patches, tree):
    q, pin = applied_queue(patches, tree)
    edit(tree, GC_H, "extern size_t gc_threshold_bytes;", "extern size_t gc_threshold_bytes; /* bytes */")
    with pytest.raises(PatchError, match="belongs to 0001-gc-threshold-decl.patch, not 0002"):
        refresh_patch(q, pin, "0002")


def test_new_and_refresh_under_dry_run_write_nothing(patches, tree):
    q, pin = applied_queue(patches, tree)
    edit(tree, GC_C, "gc_threshold_bytes = 300;", "gc_threshold_bytes = 400;")
    dry = PatchQueue(patches, tree, Executor(dry_run=True))
    series = (patches / "series").read_bytes()
    patch = (patches / "0002-gc-threshold.patch").read_bytes()
    assert not new_patch(dry, pin, "gc-four-hundred").written
    assert not refresh_patch(dry, pin, "0002").written
    assert (patches / "series").read_bytes() == series
    assert (patches / "0002-gc-threshold.patch").read_bytes() == patch
    assert not list(patches.glob("0003-*"))


def _killed_new(patches: Path, tree: Path, fault: str) -> subprocess.CompletedProcess[str]:
    code = ("import sys; from pathlib import Path; from mpforge.core.executor import Executor;"
            "from mpforge.tree.patches import PatchQueue; from mpforge.tree.authoring import new_patch;"
            "q = PatchQueue(Path(sys.argv[1]), Path(sys.argv[2]), Executor());"
            "new_patch(q, sys.argv[3], 'gc-four-hundred')")
    env = {**os.environ, "MPFORGE_FAULT": fault, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-c", code, str(patches), str(tree), git(tree, "rev-parse", "HEAD")],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("fault", ["state.write@1", "state.write@2", "patch.author", "state.write@3",
                                   "state.write@4", "patch.journal", "patch.record"])
def test_new_killed_at_any_step_leaves_a_series_that_names_only_existing_files(patches, tree, fault):
    q, pin = applied_queue(patches, tree)
    edit(tree, GC_C, "gc_threshold_bytes = 300;", "gc_threshold_bytes = 400;")
    before = snapshot(tree)
    result = _killed_new(patches, tree, fault)
    assert result.returncode == -9, result.stdout + result.stderr
    series = read_series(patches)  # raises if a line names a missing file
    q = PatchQueue(patches, tree, Executor())
    assert q.apply() == []  # finishes the record, or keeps the edit on top of the old series
    assert snapshot(tree) == before  # the edit is never lost
    if len(series) == 3:  # the series was written: the record is finished, pin + series
        assert tree_fingerprint(q, pin).matches
        assert not (q.state_dir / AUTHORING).exists()
        q.revert()
        q.apply()
        assert snapshot(tree) == before
    else:
        assert not tree_fingerprint(q, pin).matches  # the edit is still an edit


def test_an_interrupted_new_is_finished_by_the_next_patch(patches, tree):
    q, pin = applied_queue(patches, tree)
    edit(tree, GC_C, "gc_threshold_bytes = 300;", "gc_threshold_bytes = 400;")
    assert _killed_new(patches, tree, "patch.author").returncode == -9
    marker = json.loads((q.state_dir / AUTHORING).read_text())
    assert marker["patch"] == "0003-gc-four-hundred.patch"
    assert len(read_series(patches)) == 2  # stopped before the series changed
    # a --new run again overwrites the patch file no series line names, and completes
    done = new_patch(PatchQueue(patches, tree, Executor()), pin, "gc-four-hundred")
    assert done.patch == "0003-gc-four-hundred.patch"
    assert len(read_series(patches)) == 3 and tree_fingerprint(q, pin).matches


def test_the_series_check_refuses_a_series_that_would_not_reproduce_the_tree(patches, tree, tmp_path):
    q, pin = applied_queue(patches, tree)
    series = read_series(patches)
    scratch = Scratch(tree, tmp_path / "check")
    assert set(_check_series(q, scratch, series, pin, [GC_C])) == {GC_C, GC_H}  # as the tree is
    edit(tree, GC_C, "gc_threshold_bytes = 300;", "gc_threshold_bytes = 400;")
    with pytest.raises(PatchError, match=r"would not reproduce micropython/ \(py/gc.c\)"):
        _check_series(q, Scratch(tree, tmp_path / "check2"), series, pin, [GC_C])
    with pytest.raises(PatchError, match="py/obj.c would not be in the series"):
        _check_series(q, Scratch(tree, tmp_path / "check3"), series, pin, ["py/obj.c"])


def test_a_refresh_killed_after_the_patch_file_is_finished_by_the_next_patch(patches, tree):
    q, pin = applied_queue(patches, tree)
    edit(tree, GC_C, "gc_threshold_bytes = 300;", "gc_threshold_bytes = 400;")
    before = snapshot(tree)
    code = ("import sys; from pathlib import Path; from mpforge.core.executor import Executor;"
            "from mpforge.tree.patches import PatchQueue; from mpforge.tree.authoring import refresh_patch;"
            "q = PatchQueue(Path(sys.argv[1]), Path(sys.argv[2]), Executor());"
            "refresh_patch(q, sys.argv[3], '0002')")
    env = {**os.environ, "MPFORGE_FAULT": "patch.author", "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-c", code, str(patches), str(tree), pin], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stdout + result.stderr
    assert "= 400;" in (patches / "0002-gc-threshold.patch").read_text()  # written, not yet recorded
    q = PatchQueue(patches, tree, Executor())
    assert q.apply() == []
    assert any("finished an interrupted" in note for note in q.notes)
    assert tree_fingerprint(q, pin).matches and snapshot(tree) == before
    q.revert()
    q.apply()
    assert snapshot(tree) == before
