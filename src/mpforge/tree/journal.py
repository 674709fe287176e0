"""The patch transaction: scratch copies, a journal, a commit by renames, and recovery.

:mod:`mpforge.tree.patches` decides *what* the tree's files become; this module
makes the change happen so that no instant of it, stopped by Ctrl-C, SIGTERM,
SIGKILL or a power cut, leaves the tree half-done.

Where the state lives
---------------------
Everything is kept in the tree's git directory, in :data:`STATE_DIR`
(``.git/modules/micropython/mpforge-patches/``), out of the work tree:
``applied.json`` (:data:`RECORD`, what is applied), ``patches/`` (a copy of each
applied patch, named by its sha256), ``reference/`` (cached digests),
``scratch-PID-*/`` (a :class:`Scratch` in use) and ``txn/`` (a committed
transaction).

The transaction
---------------
``git apply`` never runs in the tree. The files the patches touch are copied
into a :class:`Scratch` folder in the state folder, and the patches are applied
there, one by one, so a patch that does not apply is found (and named) before
anything changed. Then (:meth:`Journal.commit`):

1. ``journal.json`` is written into the scratch folder: for every file to
   change, the sha256 of its content before and after, and the record the
   operation ends with; the folder is renamed to ``txn/``. That rename is the
   commit point: before it the tree is untouched;
2. each changed file is replaced in one rename (its new content written next
   to it first, :func:`mpforge.tree.files.replace_with`);
3. the record ``applied.json`` is replaced in one rename;
4. ``journal.json`` is removed, then the rest of ``txn/``.

From the commit point on, Ctrl-C and SIGTERM are held back (steps 2-4 take
milliseconds). If the process dies anyway (SIGKILL, a power cut), the next
operation finds ``txn/journal.json`` and *rolls forward* (:meth:`Journal.recover`):
each file is at its "before" content (written now) or at its "after" one
(left as is); a file at neither was edited since, and is never overwritten:
that is an error naming it. ``invoke patch --status`` shows such a tree as
"interrupted".

The fault points of :func:`mpforge.core.state.fault_point` in this module
(``patch.journal``, ``patch.committed``, ``patch.write``, ``patch.record``) sit
between these steps; ``tests/test_faults.py`` kills the process at each.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mpforge.core.errors import PatchError
from mpforge.core.executor import Executor
from mpforge.core.model import documents
from mpforge.core.state import (
    deferred_signals,
    disk_errors,
    fault_point,
    fsync_dir,
    pid_alive,
    read_json,
    write_json,
)
from mpforge.tree.files import Digest, copy_entry, file_digest, new_name, remove_empty_parents, replace_with

#: the state folder's name, inside the tree's git directory
STATE_DIR = "mpforge-patches"
#: what is applied (see :class:`mpforge.tree.patches.Record`)
RECORD = "applied.json"
#: the journal of a committed transaction, in ``txn/``
JOURNAL = "journal.json"


class Scratch:
    """A folder of copies of some tree files (in ``files``), where ``git apply`` may run freely.

    A scratch folder made by :meth:`in_state` may become the transaction's ``txn/``
    (see the module docstring); one made by :meth:`temporary` never does.
    """

    def __init__(self, tree: Path, root: Path) -> None:
        self.tree = tree
        self.root = root  # becomes txn/ when committed
        self.files = root / "tree"
        self.files.mkdir(parents=True)

    @classmethod
    def temporary(cls, tree: Path, prefix: str) -> Scratch:
        """A scratch folder in the system's temporary folder (checks, dry runs: nothing is written)."""
        return cls(tree, Path(tempfile.mkdtemp(prefix=prefix)))

    @classmethod
    def in_state(cls, tree: Path, state: Path) -> Scratch:
        """A scratch folder in the state folder ``state``, named after this process (see
        :meth:`Journal.recover`, which removes those of dead processes)."""
        with disk_errors("cannot prepare the patch transaction"):
            state.mkdir(parents=True, exist_ok=True)
            root = Path(tempfile.mkdtemp(prefix=f"scratch-{os.getpid()}-", dir=state))
        return cls(tree, root)

    def seed_from_tree(self, paths: list[str]) -> None:
        """Copy the tree's files ``paths`` (those that exist) into the scratch folder."""
        for rel in paths:
            src = self.tree / rel
            if src.is_symlink() or src.is_file():
                copy_entry(src, self.files / rel)

    def digests(self, paths: list[str]) -> dict[str, Digest]:
        """Each of ``paths`` with the digest of its copy here (None: no such file)."""
        return {rel: file_digest(self.files / rel) for rel in paths}

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Journal:
    """The transactions on ``tree`` whose state lives in ``state`` (see the module docstring).

    ``notes`` is the caller's list of things worth telling the user ("finished an
    interrupted ..."); this class appends to it.
    """

    def __init__(self, tree: Path, state: Path, executor: Executor, notes: list[str]) -> None:
        self.tree = tree
        self.state = state
        self.executor = executor
        self.notes = notes

    def interrupted(self) -> dict[str, Any] | None:
        """The journal of an operation that was stopped between its commit point and its end."""
        journal = self.state / "txn" / JOURNAL
        return self._read(journal, None) if journal.exists() else None

    def _read(self, path: Path, warn: Callable[[str], None] | None) -> dict[str, Any] | None:
        """The journal at ``path`` (None: unreadable); a field of the wrong type is a
        :class:`PatchError` naming file and key, before anything is done with it."""
        journal = read_json(path, warn)
        if journal is not None:
            found = documents.shape_error(documents.Journal, journal)
            if found:
                key, expected, got = found
                raise PatchError(f"{path}: {key}: expected {expected}, got {got}; the journal of an "
                                 "interrupted `invoke patch` was edited, nothing was changed",
                                 "check micropython/ with `git -C micropython status`, then remove "
                                 f"{path.parent} and run `invoke patch` again")
        return journal

    def recover(self) -> str | None:
        """Finish an interrupted operation (see the module docstring); a line saying so, or None."""
        state = self.state
        if not state.exists():
            return None
        for leftover in state.glob("scratch-*"):  # scratch-PID-XXXX: a computation cut short
            pid = int(leftover.name.split("-")[1]) if leftover.name.split("-")[1].isdigit() else 0
            if pid != os.getpid() and pid_alive(pid):
                continue  # another live process (only ever a read-only `--status`)
            if not self.executor.dry_run:
                shutil.rmtree(leftover, ignore_errors=True)
        txn = state / "txn"
        journal_path = txn / JOURNAL
        if not journal_path.exists():
            if txn.exists() and not self.executor.dry_run:
                shutil.rmtree(txn, ignore_errors=True)  # finished; only its cleanup was cut short
            return None
        journal = self._read(journal_path, self.notes.append)
        if journal is None:
            raise PatchError(f"the journal of an interrupted `invoke patch` is unreadable ({journal_path})",
                             "check micropython/ with `git -C micropython status`, then remove "
                             f"{txn} and run `invoke patch` again")
        what = "`invoke patch --revert`" if journal.get("op") == "revert" else "`invoke patch`"
        if self.executor.dry_run:
            line = f"an interrupted {what} would be finished first"
            self.notes.append(line)
            return line
        self._roll_forward(txn, journal)
        line = f"finished an interrupted {what} ({len(journal['files'])} file(s))"
        self.notes.append(line)
        return line

    def commit(self, scratch: Scratch, op: str, changes: dict[str, tuple[Digest, Digest]],
               record: dict[str, Any] | None, head: str) -> None:
        """Steps 1-4 of the transaction (never called in a dry run).

        ``changes`` maps a path to its digest now and after (its new content is in
        ``scratch``); ``record`` is the content ``applied.json`` ends with (None: removed).
        ``op`` ("apply" or "revert") and ``head`` are kept in the journal for the message
        of a later recovery.
        """
        state = self.state
        with disk_errors("cannot prepare the patch transaction"):
            journal = {"op": op, "head": head,
                       "files": {rel: {"before": b, "after": a} for rel, (b, a) in sorted(changes.items())},
                       "record": record}
            write_json(scratch.root / JOURNAL, journal)
            fault_point("patch.journal")
            if (state / "txn").exists():  # a finished transaction whose cleanup was cut short
                shutil.rmtree(state / "txn")
        # from the commit point to the end Ctrl-C and SIGTERM wait (milliseconds): only a
        # SIGKILL or a power cut leaves the journal for the next command to finish
        with deferred_signals():
            with disk_errors("cannot commit the patch transaction"):
                os.rename(scratch.root, state / "txn")  # the commit point
                fsync_dir(state)
            fault_point("patch.committed")
            self._roll_forward(state / "txn", journal)

    def _roll_forward(self, txn: Path, journal: dict[str, Any]) -> None:
        """Steps 2-4: bring every file of the journal to its "after" content, then the record."""
        files: dict[str, dict[str, Digest]] = journal["files"]
        changed_since = []
        for rel, entry in files.items():
            dest = self.tree / rel
            new_name(dest).unlink(missing_ok=True)  # a write cut short
            now = file_digest(dest)
            if now not in (entry["before"], entry["after"]):
                changed_since.append(rel)
        if changed_since:
            raise PatchError(
                f"an interrupted `invoke patch` left micropython/ half-done, and "
                f"{', '.join(changed_since[:5])} changed since; nothing was overwritten",
                f"put those files back (`git -C micropython diff` shows them), or remove {txn} "
                "to give up the interrupted run")
        with deferred_signals(), disk_errors("cannot write micropython/"):
            for rel, entry in sorted(files.items()):
                dest = self.tree / rel
                if file_digest(dest) == entry["after"]:
                    continue
                if entry["after"] is None:
                    dest.unlink(missing_ok=True)
                    remove_empty_parents(dest.parent, self.tree)
                else:
                    replace_with(dest, txn / "tree" / rel)
                fault_point("patch.write")
            record = journal.get("record")
            if record:
                write_json(self.state / RECORD, record)
            else:
                (self.state / RECORD).unlink(missing_ok=True)
            fsync_dir(self.state)
            fault_point("patch.record")
            (txn / JOURNAL).unlink()
            fsync_dir(txn)
            shutil.rmtree(txn, ignore_errors=True)
        self._drop_unused_copies(record)

    def _drop_unused_copies(self, record: dict[str, Any] | None) -> None:
        """Remove the patch copies the record no longer names (and an older mpforge's NNN.patch)."""
        keep = {f"{e['sha256']}.patch" for e in (record or {}).get("patches", [])}
        for copy in [*self.state.glob("patches/*.patch"), *self.state.glob("[0-9][0-9][0-9].patch")]:
            if copy.name not in keep or copy.parent == self.state:
                copy.unlink(missing_ok=True)
