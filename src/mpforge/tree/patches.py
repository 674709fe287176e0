"""``invoke patch``: the patch series (quilt format) applied onto ``micropython/``, crash-safely.

``patches/series`` names one patch file per line (``#`` starts a comment; an
optional ``-pN`` after the name sets the strip level, default ``-p1``).

Guarantees:

* **nothing half-done**: whatever instant ``patch``, ``patch --revert`` or a
  build is stopped at (Ctrl-C, SIGTERM, SIGKILL, a power cut), the next
  ``patch``, ``patch --revert`` or ``build`` finds the tree either untouched
  or in a state it completes (see *the transaction* below);
* **nothing lost**: a file is only ever overwritten when its content is
  exactly what mpforge expects there; the user's own edits are kept, or the
  operation is refused naming the files;
* **idempotent**: a series already applied is a no-op success, also when the
  user edited files on top of it (the edits are kept);
* **revertible**: what was applied is recorded (name, sha256 and a copy of
  each patch), so ``--revert`` restores the pristine tree even after
  ``patches/`` changed, and an edited series is swapped in one step;
* **honest errors**: a failing patch is named with its first rejected hunk.

The transaction
---------------
``git apply`` never runs in the tree. The files the patches touch are copied
into a scratch folder inside the tree's git directory
(``.git/modules/micropython/mpforge-patches/``) and the patches are applied
there, one by one, so a patch that does not apply is found (and named) before
anything changed. Then:

1. ``journal.json`` is written into the scratch folder: for every file to
   change, the sha256 of its content before and after, and the record the
   operation ends with; the folder is renamed to ``txn/``. That rename is the
   commit point: before it the tree is untouched;
2. each changed file is replaced in one rename (its new content written next
   to it first);
3. the record ``applied.json`` is replaced in one rename;
4. ``journal.json`` is removed, then the rest of ``txn/``.

From the commit point on, Ctrl-C and SIGTERM are held back (steps 2-4 take
milliseconds). If the process dies anyway (SIGKILL, a power cut), the next
operation finds ``txn/journal.json`` and *rolls forward*:
each file is at its "before" content (written now) or at its "after" one
(left as is); a file at neither was edited since, and is never overwritten:
that is an error naming it. ``invoke patch --status`` shows such a tree as
"interrupted".

The fingerprint
---------------
The record holds, for every file the series touches, the sha256 before and
after. Hashing those few files classifies the tree without running git:
*applied* (all at "after"), *pristine* (all at "before"), *half-applied* (some
of each: left by an older mpforge killed in the middle of ``git apply``;
completed by ``patch``, rolled back by ``--revert``, never called applied), or
*edited* (anything else: the user's changes). :meth:`PatchQueue.fingerprint`
compares the whole tree with "pin + series" the same way, for the manifests.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from mpforge.core.errors import ConfigError, PatchError
from mpforge.core.executor import Executor, Result
from mpforge.core.state import (
    atomic_write_bytes,
    deferred_signals,
    disk_errors,
    fault_point,
    fsync_dir,
    pid_alive,
    read_json,
    write_json,
)

STATE_DIR = "mpforge-patches"
RECORD = "applied.json"
JOURNAL = "journal.json"
_HUNK_ERROR = re.compile(
    r"^error: (patch failed: .*|.*: patch does not apply|.*(?:does not exist|No such file).*"
    r"|.*already exists.*)$", re.MULTILINE)

#: sha256 of a file's content; None for "no such file"
Digest = str | None


@dataclass(frozen=True)
class Patch:
    """One entry of the series."""

    name: str
    path: Path
    strip: int = 1

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


class PatchState(str, Enum):
    APPLIED = "applied"
    NOT_APPLIED = "not applied"
    CONFLICTING = "conflicting"
    OUTDATED = "applied (older version)"
    EDITED = "applied, edited since"
    HALF = "half-applied"
    INTERRUPTED = "interrupted"


class TreeState(str, Enum):
    """The tree's files against a record's before/after fingerprint."""

    APPLIED = "applied"
    PRISTINE = "pristine"
    HALF = "half-applied"
    EDITED = "edited"


def read_series(patches_dir: Path) -> list[Patch]:
    """Parse ``patches/series``; every named file must exist."""
    series = patches_dir / "series"
    if not series.exists():
        return []
    patches: list[Patch] = []
    for number, raw in enumerate(series.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, *opts = line.split()
        strip = 1
        for opt in opts:
            if not re.fullmatch(r"-p\d+", opt):
                raise ConfigError(f"patches/series line {number}: unknown option '{opt}'",
                                  "only -pN is supported after a patch name")
            strip = int(opt[2:])
        path = patches_dir / name
        if not path.is_file():
            raise ConfigError(f"patches/series line {number}: no such patch '{name}'",
                              f"add patches/{name} or remove the line")
        patches.append(Patch(name, path, strip))
    return patches


@dataclass
class Record:
    """What is applied: the patches, and each touched file's sha256 before and after.

    ``files`` is None for a record written by an older mpforge (a plain list);
    it is then computed from the tree's commit (see :meth:`PatchQueue._files_of`).
    """

    patches: list[Patch]
    files: dict[str, tuple[Digest, Digest]] | None = None
    head: str = ""


@dataclass
class TreeFingerprint:
    """The tree's content against "pin + series" (recorded in every build manifest)."""

    pin: str
    digest: str  # sha256 over everything in the tree that differs from the pin
    expected: str  # the same digest for the pin with the series applied
    differing: list[str] = field(default_factory=list)  # where the tree is not pin + series

    @property
    def matches(self) -> bool:
        return self.digest == self.expected and not self.differing


def file_digest(path: Path) -> Digest:
    """sha256 of a file's content (of a link's target name); None when absent."""
    try:
        if path.is_symlink():
            return hashlib.sha256(b"symlink:" + os.fsencode(os.readlink(path))).hexdigest()
        if not path.is_file():
            return "not-a-file" if path.exists() else None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _copy_entry(src: Path, dest: Path) -> None:
    """Copy a file or a symlink (not what it points to), creating folders."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), dest)
    else:
        shutil.copy2(src, dest)


class _Scratch:
    """A folder of copies of some tree files, where ``git apply`` may run freely."""

    def __init__(self, queue: PatchQueue, root: Path) -> None:
        self.queue = queue
        self.root = root  # becomes txn/ when committed
        self.files = root / "tree"
        self.files.mkdir(parents=True)

    def seed_from_tree(self, paths: list[str]) -> None:
        for rel in paths:
            src = self.queue.tree / rel
            if src.is_symlink() or src.is_file():
                _copy_entry(src, self.files / rel)

    def digests(self, paths: list[str]) -> dict[str, Digest]:
        return {rel: file_digest(self.files / rel) for rel in paths}

    def apply(self, patches: list[Patch], *, reverse: bool = False,
              include: list[str] | None = None) -> Result:
        """``git apply`` of ``patches`` in order (one run per strip level)."""
        result = Result([], 0)
        groups: list[list[Patch]] = []
        for patch in patches:  # consecutive patches of one strip level share a run
            if groups and groups[-1][0].strip == patch.strip:
                groups[-1].append(patch)
            else:
                groups.append([patch])
        for group in groups:
            argv = ["git", "apply", "--whitespace=nowarn", "-v", f"-p{group[0].strip}"]
            if reverse:
                argv.append("-R")
            argv += [f"--include={p}" for p in include or []]
            argv += [str(p.path) for p in group]
            # outside any repository: git must not find the tree's git directory above
            result = self.queue.executor.run(argv, cwd=self.files, check=False, mutates=False,
                                             env={"GIT_CEILING_DIRECTORIES": str(self.root)})
            if not result.ok:
                return result
        return result

    def first_failure(self, patches: list[Patch], reverse: bool = False) -> PatchError | None:
        """Apply ``patches`` one by one; the error naming the first that does not apply."""
        for patch in patches:
            result = self.apply([patch], reverse=reverse)
            if not result.ok:
                hunks = _HUNK_ERROR.findall(result.stdout)
                where = hunks[0] if hunks else \
                    f"{', '.join(self.queue._touched_by(patch)) or patch.name}: {result.tail(1)}"
                if reverse:
                    return PatchError(f"patch {patch.name} cannot be reverted: {where}",
                                      "micropython/ was changed on top of it; `invoke patch --status`",
                                      result.tail())
                return PatchError(f"patch {patch.name} does not apply: {where}",
                                  "refresh the patch against the pinned tree, or `invoke patch --status`",
                                  result.tail())
        return None

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class PatchQueue:
    """The series of ``patches_dir`` against the git checkout ``tree``."""

    def __init__(self, patches_dir: Path, tree: Path, executor: Executor) -> None:
        # absolute: git runs in other folders (the tree, scratch folders) and must find them
        self.patches_dir = Path(patches_dir).absolute()
        self.tree = Path(tree).absolute()
        self.executor = executor
        #: things worth telling the user (an interrupted run finished, ...), newest last
        self.notes: list[str] = []
        self._touched_cache: dict[tuple[str, int], list[str]] = {}

    # -- where the state lives -------------------------------------------------------------

    def _query(self, *args: str) -> str:
        """A read-only git query on the tree; "" when it fails. A git killed by a signal
        (Ctrl-C reached it first) is an interruption, never an answer."""
        result = self.executor.run(["git", "-C", str(self.tree), *args], check=False, mutates=False)
        if result.returncode < 0 and not result.timed_out:
            raise KeyboardInterrupt
        return result.stdout.strip() if result.ok else ""

    @property
    def state_dir(self) -> Path:
        out = self._query("rev-parse", "--absolute-git-dir")
        if not out:
            raise PatchError(f"{self.tree} is not a git checkout", "run `invoke fetch` first")
        return Path(out) / STATE_DIR

    def _head(self) -> str:
        return self._query("rev-parse", "HEAD")

    def _warn(self, line: str) -> None:
        self.notes.append(line)

    # -- the record --------------------------------------------------------------------------

    def _read_record(self, state: Path) -> Record | None:
        data = read_json(state / RECORD, self._warn, expect=(dict, list))
        if not data:
            return None
        try:
            if isinstance(data, list):  # an older mpforge: NNN.patch copies, no fingerprint
                return Record([Patch(e["name"], state / f"{i:03d}.patch", e.get("strip", 1))
                               for i, e in enumerate(data)])
            patches = [Patch(e["name"], state / "patches" / f"{e['sha256']}.patch", e.get("strip", 1))
                       for e in data["patches"]]
            lost = [p.name for p in patches if not p.path.is_file()]
            if lost:
                raise PatchError(f"the patch record lost its copy of {', '.join(lost)} ({state})",
                                 "`invoke patch --status` shows the tree; remove "
                                 f"{state / RECORD} to forget the record")
            files = {rel: (d[0], d[1]) for rel, d in data["files"].items()}
            return Record(patches, files, data.get("head", ""))
        except (KeyError, TypeError, IndexError, AttributeError):
            self._warn(f"{state / RECORD} is damaged; treated as missing")
            return None

    def recorded(self) -> list[Patch]:
        """The patches the record says are applied, as the copies saved at apply time."""
        record = self._read_record(self.state_dir)
        return record.patches if record else []

    def applied(self) -> list[dict[str, str]]:
        """Name and sha256 of each applied patch, for build manifests."""
        return [{"name": p.name, "sha256": p.sha256} for p in self.recorded()]

    @staticmethod
    def _record_data(record: Record) -> dict:
        return {"format": 2, "head": record.head,
                "patches": [{"name": p.name, "sha256": p.sha256, "strip": p.strip}
                            for p in record.patches],
                "files": {rel: list(d) for rel, d in sorted((record.files or {}).items())}}

    # -- what the patches touch ----------------------------------------------------------------

    def _touched_by(self, patch: Patch) -> list[str]:
        key = (patch.sha256, patch.strip)
        if key not in self._touched_cache:
            result = self.executor.run(["git", "-C", str(self.tree), "apply", "--numstat", "-z",
                                        f"-p{patch.strip}", str(patch.path)],
                                       check=False, mutates=False)
            paths: list[str] = []
            if not result.ok:  # a damaged patch: its headers say enough to find the files,
                # and applying it will name the damage
                for line in patch.path.read_text(errors="replace").splitlines():
                    if line.startswith(("--- ", "+++ ")) and "/dev/null" not in line:
                        parts = line[4:].split("\t")[0].strip().split("/")[patch.strip:]
                        if parts and "/".join(parts) not in paths:
                            paths.append("/".join(parts))
                self._touched_cache[key] = paths
                return paths
            fields = result.stdout.split("\0")
            i = 0
            while i < len(fields):
                entry = fields[i]
                i += 1
                if not entry:
                    continue
                _, _, rel = entry.split("\t", 2) if entry.count("\t") >= 2 else ("", "", "")
                if rel:
                    paths.append(rel)
                else:  # a rename: the old and the new path follow
                    paths += [p for p in fields[i:i + 2] if p and p not in paths]
                    i += 2
            self._touched_cache[key] = paths
        return self._touched_cache[key]

    def _touched(self, patches: list[Patch]) -> list[str]:
        out: list[str] = []
        for patch in patches:
            out += [p for p in self._touched_by(patch) if p not in out]
        return out

    # -- scratch folders ---------------------------------------------------------------------

    def _scratch(self, state: Path) -> _Scratch:
        """A fresh scratch folder: in the state folder (it may become the journal), or, under
        ``--dry-run``, in the system's temporary folder (a dry run writes nothing)."""
        if self.executor.dry_run:
            return _Scratch(self, Path(tempfile.mkdtemp(prefix="mpforge-scratch-")))
        with disk_errors("cannot prepare the patch transaction"):
            state.mkdir(parents=True, exist_ok=True)
            root = Path(tempfile.mkdtemp(prefix=f"scratch-{os.getpid()}-", dir=state))
        return _Scratch(self, root)

    def _seed_from_commit(self, scratch: _Scratch, commit: str, paths: list[str]) -> None:
        """Put the files ``paths`` as ``commit`` has them (as git checks them out) into the scratch.

        Through a throw-away index in the scratch folder: ``read-tree`` fills it,
        ``checkout-index --prefix`` writes the files; the tree's own index is never touched.
        """
        if not paths:
            return
        git = ["git", "-C", str(self.tree)]
        present = self.executor.output(git + ["ls-tree", "-r", "-z", "--name-only", commit, "--", *paths],
                                       check=False).split("\0")
        present = [p for p in present if p in paths]
        if not present:
            return
        env = {"GIT_INDEX_FILE": str(scratch.root / "index")}
        self.executor.run(git + ["read-tree", commit], env=env, mutates=False, what="git read-tree")
        self.executor.run(git + ["checkout-index", f"--prefix={scratch.files}/", "--", *present],
                          env=env, mutates=False, what="git checkout-index")
        (scratch.root / "index").unlink(missing_ok=True)

    def _reference(self, patches: list[Patch], commit: str) -> dict[str, tuple[Digest, Digest]] | None:
        """Each file ``patches`` change, with its sha256 at ``commit`` and after the patches
        (None when they do not apply to that commit). Cached in the state folder."""
        state = self.state_dir
        key = hashlib.sha256(repr((commit, [(p.sha256, p.strip) for p in patches])).encode()).hexdigest()
        cache = state / "reference" / f"{key[:32]}.json"
        data = read_json(cache, None)
        if data is not None and "files" in data:
            return {rel: (d[0], d[1]) for rel, d in data["files"].items()} if data["files"] is not None \
                else None
        touched = self._touched(patches)
        scratch = self._scratch(state)
        try:
            self._seed_from_commit(scratch, commit, touched)
            before = scratch.digests(touched)
            ok = scratch.apply(patches).ok
            after = scratch.digests(touched)
        finally:
            scratch.remove()
        files = {rel: (before[rel], after[rel]) for rel in touched if before[rel] != after[rel]} \
            if ok else None
        if not self.executor.dry_run:
            write_json(cache, {"commit": commit, "files": {r: list(d) for r, d in files.items()}
                               if files is not None else None})
        return files

    def _files_of(self, record: Record) -> dict[str, tuple[Digest, Digest]]:
        if record.files is not None:
            return record.files
        files = self._reference(record.patches, self._head())
        if files is None:
            raise PatchError("the recorded patches do not apply to micropython/'s commit",
                             "`git -C micropython status` shows the changes; "
                             "`invoke fetch` then `invoke patch`")
        record.files = files
        return files

    # -- classification ------------------------------------------------------------------------

    def _classify(self, files: dict[str, tuple[Digest, Digest]]) -> tuple[TreeState, dict[str, str]]:
        where: dict[str, str] = {}
        for rel, (before, after) in files.items():
            now = file_digest(self.tree / rel)
            where[rel] = "after" if now == after else "before" if now == before else "other"
        kinds = set(where.values())
        if kinds <= {"after"}:
            return TreeState.APPLIED, where
        if kinds == {"before"}:
            return TreeState.PRISTINE, where
        if "other" not in kinds:
            return TreeState.HALF, where
        return TreeState.EDITED, where

    # -- the journal -------------------------------------------------------------------------

    def interrupted(self) -> dict | None:
        """The journal of an operation that was stopped between its commit point and its end."""
        journal = self.state_dir / "txn" / JOURNAL
        return read_json(journal, None) if journal.exists() else None

    def recover(self) -> str | None:
        """Finish an interrupted operation (see the module docstring); a line saying so, or None."""
        state = self.state_dir
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
        journal = read_json(journal_path, self._warn)
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

    def _roll_forward(self, txn: Path, journal: dict) -> None:
        files: dict[str, dict] = journal["files"]
        changed_since = []
        for rel, entry in files.items():
            dest = self.tree / rel
            _new_name(dest).unlink(missing_ok=True)  # a write cut short
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
                    _remove_empty_parents(dest.parent, self.tree)
                else:
                    _replace_with(dest, txn / "tree" / rel)
                fault_point("patch.write")
            record = journal.get("record")
            if record:
                write_json(self.state_dir / RECORD, record)
            else:
                (self.state_dir / RECORD).unlink(missing_ok=True)
            fsync_dir(self.state_dir)
            fault_point("patch.record")
            (txn / JOURNAL).unlink()
            fsync_dir(txn)
            shutil.rmtree(txn, ignore_errors=True)
        self._drop_unused_copies(record)

    def _drop_unused_copies(self, record: dict | None) -> None:
        state = self.state_dir
        keep = {f"{e['sha256']}.patch" for e in (record or {}).get("patches", [])}
        for copy in [*state.glob("patches/*.patch"), *state.glob("[0-9][0-9][0-9].patch")]:
            if copy.name not in keep or copy.parent == state:
                copy.unlink(missing_ok=True)

    def _commit(self, scratch: _Scratch, op: str, changes: dict[str, tuple[Digest, Digest]],
                record: Record | None) -> None:
        """Steps 1-4 of the transaction: ``changes`` maps a path to its digest now and after
        (its new content is in the scratch folder)."""
        if self.executor.dry_run:
            for rel in sorted(changes):
                self.executor.log(f"would write micropython/{rel}")
            scratch.remove()
            return
        state = self.state_dir
        record_data = self._record_data(record) if record else None
        with disk_errors("cannot prepare the patch transaction"):
            if record_data:  # the patch copies first: the record refers to them
                for patch, entry in zip(record.patches, record_data["patches"]):  # type: ignore[union-attr]
                    copy = state / "patches" / f"{entry['sha256']}.patch"
                    if not copy.exists():
                        atomic_write_bytes(copy, patch.path.read_bytes())
            journal = {"op": op, "head": self._head(),
                       "files": {rel: {"before": b, "after": a} for rel, (b, a) in sorted(changes.items())},
                       "record": record_data}
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
            files = self._reference(series, self._head())
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
            files = self._reference(series, self._head()) if series else None
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
            error = scratch.first_failure(list(reversed(record.patches)), reverse=True)
            if error is not None:
                edited = [rel for rel, w in where.items() if w == "other"]
                raise PatchError("the applied patches cannot be reverted: micropython/ was changed on top "
                                 f"of them ({', '.join(edited[:5]) or error.message})",
                                 "commit or stash your own changes in micropython/ first", error.details)
            after = scratch.digests(touched)
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
                error = scratch.first_failure(list(reversed(old)), reverse=True)
                if error is not None:
                    raise PatchError("the applied patches cannot be reverted: micropython/ was changed "
                                     "on top of them", "commit or stash your own changes in micropython/ first",
                                     error.details)
            middle = scratch.digests(touched)
            error = scratch.first_failure(series)
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
            result = scratch.apply(patches, reverse=reverse, include=todo)
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
            return scratch.apply(list(reversed(record.patches)), reverse=True).ok
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
            files = self._reference(series, self._head())
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
        scratch = _Scratch(self, Path(tempfile.mkdtemp(prefix="mpforge-check-")))
        try:
            scratch.seed_from_tree(self._touched(patches))
            return scratch.apply(patches).ok
        finally:
            scratch.remove()

    def _checks(self, patches: list[Patch], reverse: bool = False) -> bool:
        """``git apply --check`` against the tree itself (read-only)."""
        if len({p.strip for p in patches}) > 1:  # one run takes one -p
            return all(self._checks([p], reverse) for p in patches)
        argv = ["git", "-C", str(self.tree), "apply", "--check", "--whitespace=nowarn",
                *(["-R"] if reverse else []), f"-p{patches[0].strip}", *[str(p.path) for p in patches]]
        return self.executor.run(argv, check=False, mutates=False).ok

    # -- the fingerprint -----------------------------------------------------------------------

    def fingerprint(self, pin: str) -> TreeFingerprint:
        """The tree's content against pin + series: a digest of each, and where they differ.

        Only what differs from the pin is hashed (``git diff`` finds it, untracked files
        included), plus the checked-out commit of each initialised submodule and its
        local changes, so this is quick on the real tree.
        """
        series = read_series(self.patches_dir)
        expected_files = (self._reference(series, pin) or {}) if series else {}
        git = ["git", "-C", str(self.tree)]
        changed = set(filter(None, self.executor.output(
            git + ["diff", "--name-only", "-z", "--no-renames", "--ignore-submodules=all", pin],
            check=False).split("\0")))
        changed |= set(filter(None, self.executor.output(
            git + ["ls-files", "--others", "--exclude-standard", "-z"], check=False).split("\0")))
        # "pin" stands for "as at the pin"; everything else is a content digest
        actual: dict[str, Digest] = {}
        expected: dict[str, Digest] = {}
        differing: list[str] = []
        for rel in sorted(changed | set(expected_files)):
            actual[rel] = file_digest(self.tree / rel) if rel in changed else "pin"
            expected[rel] = expected_files[rel][1] if rel in expected_files else "pin"
            if actual[rel] != expected[rel]:
                differing.append(rel)
        # not output(): stripping would eat the first line's status column
        for line in self.executor.run(git + ["submodule", "status"], check=False,
                                      mutates=False).stdout.splitlines():
            fields = line[1:].split()
            if len(fields) < 2 or line.startswith("-"):
                continue  # not initialised: not part of what is built
            sha, rel = fields[0], fields[1]
            pinned = self.executor.output(git + ["ls-tree", pin, "--", rel], check=False).split()
            pinned_sha = pinned[2] if len(pinned) >= 3 else ""
            local = self.executor.output(["git", "-C", str(self.tree / rel), "diff", "HEAD", "--binary",
                                          "--no-ext-diff"], check=False)
            local_digest = hashlib.sha256(local.encode()).hexdigest() if local else ""
            actual[rel] = f"{sha}+{local_digest}"
            expected[rel] = f"{pinned_sha}+"
            if actual[rel] != expected[rel]:
                differing.append(f"{rel} (submodule: " + (f"at {sha[:10]}, pinned {pinned_sha[:10]}"
                                                          if sha != pinned_sha else "local changes") + ")")

        def digest(values: dict[str, Digest]) -> str:
            h = hashlib.sha256(pin.encode())
            for rel in sorted(values):
                if values[rel] != "pin":
                    h.update(f"\0{rel}\0{values[rel]}".encode())
            return h.hexdigest()

        return TreeFingerprint(pin, digest(actual), digest(expected), differing)


def _same(old: list[Patch], series: list[Patch]) -> bool:
    return [(p.name, p.sha256) for p in old] == [(p.name, p.sha256) for p in series]


def _new_name(dest: Path) -> Path:
    """Where a tree file's new content is written before its rename (found again after a crash)."""
    return dest.with_name(f".{dest.name}.mpforge-new")


def _replace_with(dest: Path, src: Path) -> None:
    """Replace ``dest`` by a copy of ``src`` in one rename (its mode included)."""
    tmp = _new_name(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp.unlink(missing_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), tmp)
    else:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
            fout.flush()
            os.fsync(fout.fileno())
        os.chmod(tmp, src.stat().st_mode & 0o7777)
    os.replace(tmp, dest)


def _remove_empty_parents(folder: Path, top: Path) -> None:
    while folder != top and folder.is_relative_to(top):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
