"""The patch transaction's commit point: a rename, made durable, before any tree file changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import mpforge.tree.journal as journal_mod
from conftest import FIXTURES, make_repo
from mpforge.core.executor import Executor
from mpforge.tree.patches import PatchQueue


@pytest.fixture
def queue(tmp_path: Path) -> PatchQueue:
    make_repo(FIXTURES / "minitree", tmp_path / "tree")
    shutil.copytree(FIXTURES / "patches", tmp_path / "patches")
    return PatchQueue(tmp_path / "patches", tmp_path / "tree", Executor())


@pytest.mark.parametrize("op", ["apply", "revert"])
def test_the_scratch_folder_is_renamed_to_txn_and_synced_before_the_first_tree_write(queue, monkeypatch, op):
    if op == "revert":
        queue.apply()
    events: list[tuple[str, str]] = []
    rename, fsync_dir, replace_with = os.rename, journal_mod.fsync_dir, journal_mod.replace_with

    def record_rename(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
        events.append(("rename", Path(dest).name))
        rename(src, dest)

    def record_fsync(folder: Path) -> None:
        events.append(("fsync", folder.name))
        fsync_dir(folder)

    def record_write(dest: Path, src: Path) -> None:
        events.append(("write", dest.name))
        replace_with(dest, src)

    monkeypatch.setattr(journal_mod.os, "rename", record_rename)
    monkeypatch.setattr(journal_mod, "fsync_dir", record_fsync)
    monkeypatch.setattr(journal_mod, "replace_with", record_write)
    getattr(queue, op)()
    writes = [i for i, (what, _) in enumerate(events) if what == "write"]
    assert writes, events
    committed = events.index(("rename", "txn"))
    synced = events.index(("fsync", journal_mod.STATE_DIR), committed)
    assert committed < synced < writes[0], events
