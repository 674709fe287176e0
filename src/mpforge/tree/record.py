"""What is applied to the tree, and the tree's files classified against it.

:class:`RecordedTree` is the read-only half of the patch queue
(:class:`mpforge.tree.patches.PatchQueue` is the other half, which changes the
tree): where the state lives, the record of what is applied
(``applied.json``: :class:`Record`), which files a patch touches, the digests
those files have at a commit before and after a series (:meth:`RecordedTree.reference`,
also what :mod:`mpforge.tree.fingerprint` compares the whole tree with), and
the classification of the tree.

Classifying the tree
--------------------
The record holds, for every file the series touches, the sha256 before and
after. Hashing those few files classifies the tree without running git
(:class:`TreeState`): *applied* (all at "after"), *pristine* (all at "before"),
*half-applied* (some of each: left by an older mpforge killed in the middle of
``git apply``; completed by ``patch``, rolled back by ``--revert``, never called
applied), or *edited* (anything else: the user's changes).

``git apply`` never runs in the tree: patches are tried on copies of the files
they touch, in a :class:`~mpforge.tree.journal.Scratch` folder.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from mpforge.core.errors import PatchError
from mpforge.core.executor import Executor, Result
from mpforge.core.state import read_json, write_json
from mpforge.tree.files import Digest, file_digest
from mpforge.tree.journal import RECORD, STATE_DIR, Scratch
from mpforge.tree.series import Patch

_HUNK_ERROR = re.compile(
    r"^error: (patch failed: .*|.*: patch does not apply|.*(?:does not exist|No such file).*"
    r"|.*already exists.*)$", re.MULTILINE)


class TreeState(str, Enum):
    """The tree's files against a record's before/after fingerprint."""

    APPLIED = "applied"
    PRISTINE = "pristine"
    HALF = "half-applied"
    EDITED = "edited"


@dataclass
class Record:
    """What is applied: the patches, and each touched file's sha256 before and after.

    ``files`` is None for a record written by an older mpforge (a plain list);
    it is then computed from the tree's commit (see :meth:`RecordedTree._files_of`).
    """

    patches: list[Patch]
    files: dict[str, tuple[Digest, Digest]] | None = None
    head: str = ""


def _git_apply(executor: Executor, scratch: Scratch, patches: list[Patch], *, reverse: bool = False,
               include: list[str] | None = None) -> Result:
    """``git apply`` of ``patches`` in order on the copies in ``scratch`` (one run per strip level)."""
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
        result = executor.run(argv, cwd=scratch.files, check=False, mutates=False,
                              env={"GIT_CEILING_DIRECTORIES": str(scratch.root)})
        if not result.ok:
            return result
    return result


class RecordedTree:
    """The git checkout ``tree``, what the record says is applied to it, and the series of
    ``patches_dir``: everything the patch queue reads (it changes nothing)."""

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
    def _record_data(record: Record) -> dict[str, Any]:
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

    def _scratch(self, state: Path) -> Scratch:
        """A fresh scratch folder: in the state folder (it may become the journal), or, under
        ``--dry-run``, in the system's temporary folder (a dry run writes nothing)."""
        if self.executor.dry_run:
            return Scratch.temporary(self.tree, "mpforge-scratch-")
        return Scratch.in_state(self.tree, state)

    def _apply(self, scratch: Scratch, patches: list[Patch], *, reverse: bool = False,
               include: list[str] | None = None) -> Result:
        """``git apply`` of ``patches`` in order on the copies in ``scratch``."""
        return _git_apply(self.executor, scratch, patches, reverse=reverse, include=include)

    def _first_failure(self, scratch: Scratch, patches: list[Patch], reverse: bool = False) -> PatchError | None:
        """Apply ``patches`` one by one in ``scratch``; the error naming the first that does not apply."""
        for patch in patches:
            result = self._apply(scratch, [patch], reverse=reverse)
            if not result.ok:
                hunks = _HUNK_ERROR.findall(result.stdout)
                where = hunks[0] if hunks else \
                    f"{', '.join(self._touched_by(patch)) or patch.name}: {result.tail(1)}"
                if reverse:
                    return PatchError(f"patch {patch.name} cannot be reverted: {where}",
                                      "micropython/ was changed on top of it; `invoke patch --status`",
                                      result.tail())
                return PatchError(f"patch {patch.name} does not apply: {where}",
                                  "refresh the patch against the pinned tree, or `invoke patch --status`",
                                  result.tail())
        return None

    def _seed_from_commit(self, scratch: Scratch, commit: str, paths: list[str]) -> None:
        """Put the files ``paths`` as ``commit`` has them (as git checks them out) into the scratch.

        Through a throw-away index in the scratch folder: ``read-tree`` fills it,
        ``checkout-index --prefix`` writes the files; the tree's own index is never touched.
        """
        if not paths:
            return
        git = ["git", "-C", str(self.tree)]
        # a failing ls-tree is an error, never "none of them exist at that commit"
        listed = self.executor.run(git + ["ls-tree", "-r", "-z", "--name-only", commit, "--", *paths],
                                   mutates=False, what="git ls-tree").stdout.split("\0")
        present = [p for p in listed if p in paths]
        if not present:
            return
        env = {"GIT_INDEX_FILE": str(scratch.root / "index")}
        self.executor.run(git + ["read-tree", commit], env=env, mutates=False, what="git read-tree")
        self.executor.run(git + ["checkout-index", f"--prefix={scratch.files}/", "--", *present],
                          env=env, mutates=False, what="git checkout-index")
        (scratch.root / "index").unlink(missing_ok=True)

    def reference(self, patches: list[Patch], commit: str) -> dict[str, tuple[Digest, Digest]] | None:
        """Each file ``patches`` change, with its sha256 at ``commit`` and after the patches
        (None when they do not apply to that commit). Cached in the state folder.

        The classification compares the tree with it; so does
        :func:`mpforge.tree.fingerprint.tree_fingerprint`, for the pin.
        """
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
            ok = self._apply(scratch, patches).ok
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
        files = self.reference(record.patches, self._head())
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
