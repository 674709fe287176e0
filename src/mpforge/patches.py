"""``invoke patch``: the patch series (quilt format) applied onto ``micropython/``.

``patches/series`` names one patch file per line (``#`` starts a comment; an
optional ``-pN`` after the name sets the strip level, default ``-p1``).

Guarantees:

* **atomic**: every patch is checked first (``git apply --check`` on the whole
  series, in order); only if all apply is the tree touched, in one
  ``git apply`` run, which is itself all-or-nothing;
* **idempotent**: a series already applied is a no-op success, also when
  the user edited files on top of it (the edits are kept);
* **revertible**: what was applied is recorded (name + sha256 + a copy of
  each patch) inside the tree's git directory, so ``--revert`` restores the
  pristine tree even after ``patches/`` changed, and an edited series is
  swapped in by reverting the old one first;
* **honest errors**: a failing patch is named with its first rejected hunk.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from .errors import ConfigError, PatchError
from .executor import Executor

STATE_DIR = "mpforge-patches"
_HUNK_ERROR = re.compile(
    r"^error: (patch failed: .*|.*: patch does not apply|.*(?:does not exist|No such file).*"
    r"|.*already exists.*)$", re.MULTILINE)


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


class PatchQueue:
    """The series of ``patches_dir`` against the git checkout ``tree``."""

    def __init__(self, patches_dir: Path, tree: Path, executor: Executor) -> None:
        self.patches_dir = patches_dir
        self.tree = tree
        self.executor = executor

    # -- the record of what is applied ----------------------------------------------

    @property
    def state_dir(self) -> Path:
        out = self.executor.output(["git", "-C", str(self.tree), "rev-parse", "--absolute-git-dir"],
                                   check=False)
        if not out:
            raise PatchError(f"{self.tree} is not a git checkout", "run `invoke fetch` first")
        return Path(out) / STATE_DIR

    def recorded(self) -> list[Patch]:
        """The patches the record says are applied, as the copies saved at apply time."""
        index = self.state_dir / "applied.json"
        if not index.exists():
            return []
        entries = json.loads(index.read_text())
        return [Patch(e["name"], self.state_dir / f"{i:03d}.patch", e.get("strip", 1))
                for i, e in enumerate(entries)]

    def applied(self) -> list[dict[str, str]]:
        """Name and sha256 of each applied patch, for build manifests."""
        return [{"name": p.name, "sha256": p.sha256} for p in self.recorded()]

    def _record(self, patches: list[Patch]) -> None:
        state = self.state_dir
        if state.exists():
            shutil.rmtree(state)
        if not patches:
            return
        state.mkdir(parents=True)
        for i, patch in enumerate(patches):
            shutil.copyfile(patch.path, state / f"{i:03d}.patch")
        (state / "applied.json").write_text(json.dumps(
            [{"name": p.name, "sha256": p.sha256, "strip": p.strip} for p in patches], indent=2))

    # -- git apply ------------------------------------------------------------------

    def _git_apply(self, patches: list[Patch], *, reverse: bool = False, check: bool = False):
        argv = ["git", "-C", str(self.tree), "apply", "--whitespace=nowarn", "-v"]
        if reverse:
            argv.append("-R")
        if check:
            argv.append("--check")
        strips = {p.strip for p in patches}
        if len(strips) > 1:  # one run takes one -p; mixed levels go one by one
            results = [self._git_apply([p], reverse=reverse, check=check) for p in patches]
            return next((r for r in results if not r.ok), results[-1])
        argv.append(f"-p{strips.pop()}")
        argv += [str(p.path) for p in patches]
        return self.executor.run(argv, check=False, mutates=not check)

    def _applies(self, patches: list[Patch], reverse: bool = False) -> bool:
        return not patches or self._git_apply(patches, reverse=reverse, check=True).ok

    def _first_failure(self, patches: list[Patch]) -> PatchError:
        """Find the first patch of ``patches`` that does not apply, with its rejected hunk."""
        for k in range(1, len(patches) + 1):
            result = self._git_apply(patches[:k], check=True)
            if not result.ok:
                hunks = _HUNK_ERROR.findall(result.stdout)
                where = hunks[0] if hunks else result.tail(3)
                return PatchError(f"patch {patches[k - 1].name} does not apply: {where}",
                                  "refresh the patch against the pinned tree, or `invoke patch --status`",
                                  result.tail())
        return PatchError("the series does not apply", "see `invoke patch --status`")

    # -- the three operations ----------------------------------------------------------

    def apply(self) -> list[Patch]:
        """Apply the series; returns the patches newly applied (empty for a no-op)."""
        series = read_series(self.patches_dir)
        old = self.recorded()
        if _same(old, series):
            if self._applies(list(reversed(old)), reverse=True):
                return []
            if not (series and self._applies(series)):
                # applied, with the user's own edits on top: theirs to keep
                return []
            old = []  # the tree was reset under a stale record: apply afresh
        if old:
            self._revert_recorded(old)
        if not self._applies(series):
            error = self._first_failure(series)
            if old:  # put back what was there (its record was never cleared)
                self._git_apply(old)
            raise error
        if series:
            result = self._git_apply(series)
            if not result.ok:
                raise PatchError("git apply failed after a clean check", "retry", result.tail())
        self._record(series)
        return series

    def revert(self) -> list[Patch]:
        """Restore the pristine tree; returns the patches reverted."""
        old = self.recorded()
        if not old:
            # No record (it was wiped, say): revert the series if it is applied as a whole.
            series = read_series(self.patches_dir)
            if series and self._applies(list(reversed(series)), reverse=True):
                old = series
            else:
                return []
        self._revert_recorded(old)
        self._record([])
        return old

    def _revert_recorded(self, old: list[Patch]) -> None:
        backwards = list(reversed(old))
        if not self._applies(backwards, reverse=True):
            raise PatchError("the applied patches cannot be reverted: micropython/ was changed on top of them",
                             "commit or stash your own changes in micropython/ first")
        result = self._git_apply(backwards, reverse=True)
        if not result.ok:
            raise PatchError("git apply -R failed after a clean check", "retry", result.tail())

    def status(self) -> list[tuple[Patch, PatchState]]:
        """Each series patch with its state against the current tree."""
        series = read_series(self.patches_dir)
        old = self.recorded()
        chain_ok = bool(old) and self._applies(list(reversed(old)), reverse=True)
        recorded = {p.name: p.sha256 for p in old} if chain_ok else {}
        states: list[tuple[Patch, PatchState]] = []
        pending: list[Patch] = []
        for patch in series:
            if patch.name in recorded:
                state = PatchState.APPLIED if recorded[patch.name] == patch.sha256 else PatchState.OUTDATED
            elif self._applies(pending + [patch]):
                pending.append(patch)
                state = PatchState.NOT_APPLIED
            elif self._applies([patch], reverse=True):
                state = PatchState.APPLIED
            else:
                state = PatchState.CONFLICTING
            states.append((patch, state))
        return states


def _same(old: list[Patch], series: list[Patch]) -> bool:
    return [(p.name, p.sha256) for p in old] == [(p.name, p.sha256) for p in series]
