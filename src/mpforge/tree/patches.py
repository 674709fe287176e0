"""``invoke patch``: the patch series (quilt format) applied onto ``micropython/``, crash-safely.

The series itself (``patches/series``, :class:`Patch`) is read by
:mod:`mpforge.tree.series`; the transaction that changes the tree's files is
:mod:`mpforge.tree.journal`'s; comparing the whole tree with "pin + series" for
the manifests is :mod:`mpforge.tree.fingerprint`'s. This module is the queue:
it decides what ``apply``, ``revert`` and ``status`` do with the tree as it is.

Guarantees:

* **nothing half-done**: whatever instant ``patch``, ``patch --revert`` or a
  build is stopped at (Ctrl-C, SIGTERM, SIGKILL, a power cut), the next
  ``patch``, ``patch --revert`` or ``build`` finds the tree either untouched
  or in a state it completes (see :mod:`mpforge.tree.journal`);
* **nothing lost**: a file is only ever overwritten when its content is
  exactly what mpforge expects there; the user's own edits are kept, or the
  operation is refused naming the files;
* **idempotent**: a series already applied is a no-op success, also when the
  user edited files on top of it (the edits are kept);
* **revertible**: what was applied is recorded (name, sha256 and a copy of
  each patch), so ``--revert`` restores the pristine tree even after
  ``patches/`` changed, and an edited series is swapped in one step;
* **honest errors**: a failing patch is named with its first rejected hunk.

How the tree is read (the record, the files a patch touches, the tree classified
as applied / pristine / half-applied / edited) is :mod:`mpforge.tree.record`'s;
``git apply`` never runs in the tree, only on copies in a
:class:`~mpforge.tree.journal.Scratch` folder, so a patch that does not apply is
found, and named, before anything changed.
"""

from __future__ import annotations

import hashlib
from enum import Enum
from pathlib import Path
from typing import Any

from mpforge.core.errors import PatchError
from mpforge.core.state import atomic_write_bytes, disk_errors, fault_point, read_json
from mpforge.tree.files import Digest
from mpforge.tree.journal import Journal, Scratch
from mpforge.tree.record import Record, RecordedTree, TreeState
from mpforge.tree.series import Patch, read_series

#: importable from here, as before the series, record and journal had modules of their own
__all__ = ["Patch", "PatchQueue", "PatchState", "Record", "TreeState", "read_series"]

#: in the state folder: a patch written by ``patch --new``/``--refresh`` whose record is not
#: written yet (see :mod:`mpforge.tree.authoring`; :meth:`PatchQueue.recover` finishes it)
AUTHORING = "authoring.json"


class PatchState(str, Enum):
    """A series patch against the tree, as ``invoke patch --status`` shows it."""

    APPLIED = "applied"
    NOT_APPLIED = "not applied"
    CONFLICTING = "conflicting"
    OUTDATED = "applied (older version)"
    EDITED = "applied, edited since"
    HALF = "half-applied"
    INTERRUPTED = "interrupted"


class PatchQueue(RecordedTree):
    """The series of ``patches_dir`` against the git checkout ``tree``: apply, revert, status.

    What it reads (the record, the files a patch touches, the classification) is
    :class:`~mpforge.tree.record.RecordedTree`'s; this class decides what each
    operation does and commits it through :class:`~mpforge.tree.journal.Journal`.
    """

    # -- the journal -------------------------------------------------------------------------

    def _journal(self) -> Journal:
        return Journal(self.tree, self.state_dir, self.executor, self.notes)

    def interrupted(self) -> dict[str, Any] | None:
        """The journal of an operation that was stopped between its commit point and its end."""
        return self._journal().interrupted()

    def recover(self) -> str | None:
        """Finish an interrupted operation (see :mod:`mpforge.tree.journal`) and an interrupted
        ``patch --new``/``--refresh`` (:meth:`_finish_authoring`); a line saying so, or None."""
        line = self._journal().recover()
        return self._finish_authoring() or line

    def _finish_authoring(self, interrupted: bool = True) -> str | None:
        """Write the record a ``patch --new``/``--refresh`` announced in :data:`AUTHORING`, when the
        series file and the patch file are the ones it wrote (else the run stopped before the
        series changed: nothing to finish); then remove the marker."""
        marker = self.state_dir / AUTHORING
        if not marker.exists() or self.executor.dry_run:
            return None
        data = read_json(marker, self.notes.append)
        if data is None:  # damaged (reported): nothing it says can be trusted
            marker.unlink(missing_ok=True)
            return None
        series_file = self.patches_dir / "series"
        patch_file = self.patches_dir / str(data.get("patch", ""))
        line = None
        try:
            same = (hashlib.sha256(series_file.read_bytes()).hexdigest() == data.get("series")
                    and hashlib.sha256(patch_file.read_bytes()).hexdigest() == data.get("patch_sha256"))
        except OSError:
            same = False
        if same:
            series = read_series(self.patches_dir)
            recorded = [(e["name"], e["sha256"]) for e in data["record"]["patches"]]
            files = {rel: (d[0], d[1]) for rel, d in data["record"]["files"].items()}
            if _same_entries(series, recorded) and self._classify(files)[0] in (TreeState.APPLIED,
                                                                                TreeState.EDITED):
                self._write_record_only(Record(series, files, data["record"].get("head", "")))
                if interrupted:
                    line = f"finished an interrupted `invoke patch --new/--refresh` ({patch_file.name})"
                    self.notes.append(line)
        marker.unlink(missing_ok=True)
        return line

    def _commit(self, scratch: Scratch, op: str, changes: dict[str, tuple[Digest, Digest]],
                record: Record | None) -> None:
        """Commit ``changes`` (a path to its digest now and after; its new content is in the
        scratch folder) and ``record`` (None: no record) as one transaction; under
        ``--dry-run``, log what would be written."""
        if self.executor.dry_run:
            for rel in sorted(changes):
                self.executor.log(f"would write micropython/{rel}")
            scratch.remove()
            return
        state = self.state_dir
        record_data = self._record_data(record) if record else None
        with disk_errors("cannot prepare the patch transaction"):
            if record is not None and record_data:  # the patch copies first: the record refers to them
                for patch, entry in zip(record.patches, record_data["patches"]):
                    copy = state / "patches" / f"{entry['sha256']}.patch"
                    if not copy.exists():
                        atomic_write_bytes(copy, patch.path.read_bytes())
        Journal(self.tree, state, self.executor, self.notes).commit(scratch, op, changes, record_data,
                                                                    self._head())

    # -- the three operations ------------------------------------------------------------------

    def apply(self) -> list[Patch]:
        """Apply the series; returns the patches newly applied (empty for a no-op)."""
        if self.recover() and self.executor.dry_run:
            return []  # a dry run stops at "an interrupted run would be finished first"
        state = self.state_dir
        series = read_series(self.patches_dir)
        record = self._read_record(state)
        if record is None:
            if not series:
                return []
            files = self.reference(series, self._head())
            if files:  # an unrecorded series may be there already, in whole or in part
                record = Record(series, files)
                how, where = self._classify(files)
                if how == TreeState.APPLIED:  # applied by hand: record it
                    self._write_record_only(record)
                    return []
                if how == TreeState.HALF:
                    self._complete(record)
                    return series
                if how == TreeState.EDITED and "after" in where.values():
                    # part of the series is there, and other changes too
                    if "before" in where.values() or not self._reverts_cleanly(state, record):
                        raise self._half_and_edited(where)
                    self._write_record_only(record)  # applied by hand, edited on top: record it
                    return []
            return self._fresh(state, series, base=None)

        files = self._files_of(record)
        how, where = self._classify(files)
        same = _same(record.patches, series)  # (before a commit drops an older record's copies)
        if how == TreeState.HALF:
            self._complete(record)
            if same:
                return series
            record = self._read_record(state) or record
            how = TreeState.APPLIED
        if same:
            if how == TreeState.APPLIED:
                return []
            if how == TreeState.EDITED and "after" in where.values():
                if "before" in where.values():
                    raise self._half_and_edited(where)
                # applied, with the user's own edits on top (even where they clash with
                # the series, so that it would not revert): theirs to keep
                return []
            return self._fresh(state, series, base=None)  # pristine (or edited) under a stale record
        if how == TreeState.PRISTINE:
            return self._fresh(state, series, base=None)
        return self._fresh(state, series, base=record)  # swap: the old series out, the new in

    def revert(self) -> list[Patch]:
        """Restore the pristine tree; returns the patches reverted."""
        if self.recover() and self.executor.dry_run:
            return []
        state = self.state_dir
        record = self._read_record(state)
        if record is None:
            series = read_series(self.patches_dir)
            files = self.reference(series, self._head()) if series else None
            if not files:
                return []
            record = Record(series, files)
            how, where = self._classify(files)
            if how == TreeState.PRISTINE:
                return []
            if how == TreeState.EDITED and "after" not in where.values():
                return []  # none of the series is here; the rest is the user's
        else:
            how, where = self._classify(self._files_of(record))
            if how == TreeState.PRISTINE:
                self._write_record_only(None)  # a stale record: the tree was reset under it
                return []
        if how == TreeState.HALF:
            self._roll_back(record)
            return record.patches
        touched = self._touched(record.patches)
        scratch = self._scratch(state)
        try:
            scratch.seed_from_tree(touched)
            now = scratch.digests(touched)
            error = self._first_failure(scratch, list(reversed(record.patches)), reverse=True)
            if error is not None:
                edited = [rel for rel, w in where.items() if w == "other"]
                raise PatchError("the applied patches cannot be reverted: micropython/ was changed on top "
                                 f"of them ({', '.join(edited[:5]) or error.message})",
                                 "commit or stash your own changes in micropython/ first", error.details)
            after = scratch.digests(touched)
            fault_point("patch.scratch")
            self._commit(scratch, "revert", {r: (now[r], after[r]) for r in touched if now[r] != after[r]},
                         None)
        finally:
            scratch.remove()
        return record.patches

    def _fresh(self, state: Path, series: list[Patch], base: Record | None) -> list[Patch]:
        """Apply ``series`` onto the tree as it is (first reverting ``base``), in one transaction."""
        old = base.patches if base else []
        touched = self._touched(old + series)
        scratch = self._scratch(state)
        try:
            scratch.seed_from_tree(touched)
            now = scratch.digests(touched)
            if old:
                error = self._first_failure(scratch, list(reversed(old)), reverse=True)
                if error is not None:
                    raise PatchError("the applied patches cannot be reverted: micropython/ was changed "
                                     "on top of them", "commit or stash your own changes in micropython/ first",
                                     error.details)
            middle = scratch.digests(touched)
            error = self._first_failure(scratch, series)
            if error is not None:
                raise error  # nothing was touched
            after = scratch.digests(touched)
            fault_point("patch.scratch")
            record = Record(series, {r: (middle[r], after[r]) for r in touched if middle[r] != after[r]},
                            self._head())
            changes = {r: (now[r], after[r]) for r in touched if now[r] != after[r]}
            self._commit(scratch, "apply", changes, record if series else None)
        finally:
            scratch.remove()
        return series

    def _complete(self, record: Record) -> None:
        """A half-applied series (no journal: an older mpforge was killed mid-apply): patch the
        files still at their "before" content, and nothing else."""
        self._finish_half(record, goal="after")

    def _roll_back(self, record: Record) -> None:
        """The same half-applied series taken back: unpatch the files at their "after" content."""
        self._finish_half(record, goal="before")

    def _finish_half(self, record: Record, goal: str) -> None:
        """Bring every file of a half-applied ``record`` to ``goal`` ("after" or "before")."""
        files = self._files_of(record)
        _, where = self._classify(files)
        start = "before" if goal == "after" else "after"
        todo = [rel for rel, w in where.items() if w == start]
        self._partial(record, todo, goal, reverse=goal == "before")
        state, done = ("unpatched", "completed") if goal == "after" else ("patched", "rolled back")
        self.notes.append(f"micropython/ was half-patched ({len(todo)} of {len(files)} file(s) "
                          f"{state}, left by an interrupted run): {done}")

    def _partial(self, record: Record, todo: list[str], goal: str, reverse: bool) -> None:
        files = self._files_of(record)
        patches = [p for p in record.patches if set(self._touched_by(p)) & set(todo)]
        if reverse:
            patches.reverse()
        scratch = self._scratch(self.state_dir)
        try:
            scratch.seed_from_tree(todo)
            now = scratch.digests(todo)
            result = self._apply(scratch, patches, reverse=reverse, include=todo)
            got = scratch.digests(todo)
            index = 1 if goal == "after" else 0
            wrong = [rel for rel in todo if got[rel] != files[rel][index]]
            if not result.ok or wrong:
                what = "completed" if goal == "after" else "rolled back"
                raise PatchError(f"micropython/ is half-patched and cannot be {what}"
                                 f" ({', '.join(wrong[:5]) or result.tail(1)})",
                                 "`git -C micropython checkout -- .` restores the pristine tree "
                                 "(it discards all changes), then `invoke patch`", result.tail())
            self._commit(scratch, "apply" if goal == "after" else "revert",
                         {rel: (now[rel], got[rel]) for rel in todo},
                         record if goal == "after" else None)
        finally:
            scratch.remove()

    def _reverts_cleanly(self, state: Path, record: Record) -> bool:
        touched = self._touched(record.patches)
        scratch = self._scratch(state)
        try:
            scratch.seed_from_tree(touched)
            return self._apply(scratch, list(reversed(record.patches)), reverse=True).ok
        finally:
            scratch.remove()

    def _half_and_edited(self, where: dict[str, str]) -> PatchError:
        patched = [r for r, w in where.items() if w == "after"]
        other = [r for r, w in where.items() if w == "other"]
        return PatchError(f"micropython/ is partly patched ({', '.join(patched[:3])}) and has other "
                          f"changes ({', '.join(other[:3])}): nothing was touched",
                          "`git -C micropython diff` shows them; keep yours elsewhere, then "
                          "`git -C micropython checkout -- .` and `invoke patch`")

    def _write_record_only(self, record: Record | None) -> None:
        """Record (or forget) a series without touching the tree, as one transaction."""
        if self.executor.dry_run:
            return
        if record is not None:
            record.head = record.head or self._head()
        scratch = self._scratch(self.state_dir)
        try:
            self._commit(scratch, "apply" if record else "revert", {}, record)
        finally:
            scratch.remove()

    def status(self) -> list[tuple[Patch, PatchState]]:
        """Each series patch with its state against the current tree (changes nothing)."""
        series = read_series(self.patches_dir)
        if self.interrupted() is not None:
            return [(p, PatchState.INTERRUPTED) for p in series]
        record = self._read_record(self.state_dir)
        if record is not None:
            how, where = self._classify(self._files_of(record))
            if how == TreeState.HALF:
                return [(p, PatchState.HALF) for p in series]
            if how in (TreeState.APPLIED, TreeState.EDITED) and (
                    how == TreeState.APPLIED or self._reverts_cleanly(self.state_dir, record)):
                recorded = {p.name: p.sha256 for p in record.patches}
                edited = {r for r, w in where.items() if w == "other"}
                states = []
                pending: list[Patch] = []
                for patch in series:
                    if patch.name in recorded:
                        state = PatchState.APPLIED if recorded[patch.name] == patch.sha256 \
                            else PatchState.OUTDATED
                        if state == PatchState.APPLIED and edited & set(self._touched_by(patch)):
                            state = PatchState.EDITED
                    elif self._apply_in_order(pending + [patch]):
                        pending.append(patch)
                        state = PatchState.NOT_APPLIED
                    else:
                        state = PatchState.CONFLICTING
                    states.append((patch, state))
                return states
            if how == TreeState.EDITED and "before" in where.values() and "after" in where.values():
                return [(p, PatchState.HALF) for p in series]
        elif series:
            files = self.reference(series, self._head())
            if files:
                how, where = self._classify(files)
                partly = how == TreeState.EDITED and "after" in where.values() and (
                    "before" in where.values()
                    or not self._reverts_cleanly(self.state_dir, Record(series, files)))
                if how == TreeState.HALF or partly:
                    return [(p, PatchState.HALF) for p in series]
        states = []
        pending = []
        for patch in series:
            if self._apply_in_order(pending + [patch]):
                pending.append(patch)
                state = PatchState.NOT_APPLIED
            elif self._checks([patch], reverse=True):
                state = PatchState.APPLIED
            else:
                state = PatchState.CONFLICTING
            states.append((patch, state))
        return states

    def _apply_in_order(self, patches: list[Patch]) -> bool:
        """Whether ``patches`` apply one after the other to the tree as it is.

        Tried on copies of the files they touch in a temporary folder, as :meth:`apply`
        does it: ``git apply --check`` of several patches inside the tree's repository
        refuses a patch that edits a file an earlier one creates (0015 edits the board
        0008 adds), so a pristine tree would call it conflicting. Changes nothing.
        """
        scratch = Scratch.temporary(self.tree, "mpforge-check-")
        try:
            scratch.seed_from_tree(self._touched(patches))
            return self._apply(scratch, patches).ok
        finally:
            scratch.remove()

    def _checks(self, patches: list[Patch], reverse: bool = False) -> bool:
        """``git apply --check`` against the tree itself (read-only)."""
        if len({p.strip for p in patches}) > 1:  # one run takes one -p
            return all(self._checks([p], reverse) for p in patches)
        argv = ["git", "-C", str(self.tree), "apply", "--check", "--whitespace=nowarn",
                *(["-R"] if reverse else []), f"-p{patches[0].strip}", *[str(p.path) for p in patches]]
        return self.executor.run(argv, check=False, mutates=False).ok

def _same_entries(series: list[Patch], entries: list[tuple[str, str]]) -> bool:
    return [(p.name, p.sha256) for p in series] == entries


def _same(old: list[Patch], series: list[Patch]) -> bool:
    return [(p.name, p.sha256) for p in old] == [(p.name, p.sha256) for p in series]
