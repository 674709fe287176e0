"""``invoke perf --base REF``: what the checkout held at git ref REF (its series and its pin).

A pull request's base is a branch of this very checkout, so REF is read from the
checkout's own git history, never from the working files:

* REF is resolved with ``git rev-parse --verify --quiet REF^{commit}``; a name that is
  not a commit is a :class:`~mpforge.core.errors.UsageError` naming it, raised before
  anything is built;
* the series is ``git show REF:patches/series`` and each patch file it names
  (``git cat-file blob``, byte for byte), written to a folder of its own under the
  build folder, then read by :func:`mpforge.tree.series.read_series` like any series (a
  line naming a missing patch is the same error as in ``patches/``);
* the pin is REF's gitlink for ``micropython`` (``git ls-tree REF micropython``).

The caller builds it as a variant tree (:func:`mpforge.tree.variants.variant_project`);
a pin other than the current one must be a commit ``micropython/`` has or can fetch
from the mirror (:func:`mpforge.tree.variants.resolve_commit`), else it is refused.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from mpforge.core.errors import GitError, UsageError
from mpforge.core.project import Project
from mpforge.tree.series import Patch, read_series

#: the submodule path of the tree in the checkout
TREE_PATH = "micropython"


@dataclass(frozen=True)
class SeriesAtRef:
    """REF as given, the commit it names, its series (files under ``folder``) and its pin."""

    ref: str
    commit: str
    patches: list[Patch]
    pin: str


def _git(project: Project, *args: str) -> str | None:
    """A read-only git query in the checkout: its output (not stripped), None when it failed."""
    result = project.executor.run(["git", "-C", str(project.root), *args], check=False,
                                  mutates=False, what="git")
    return result.stdout if result.ok else None


def resolve(project: Project, ref: str) -> str:
    """The full sha ``ref`` names in the checkout, or a UsageError naming it."""
    if ref.startswith("-"):
        raise UsageError(f"perf: --base {ref!r} is not a git ref", "give a branch, tag or commit")
    out = _git(project, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if not out or not out.strip():
        raise UsageError(f"perf: --base {ref}: no such commit in this checkout",
                         "give a branch, tag or commit of this checkout (git fetch it first)")
    return out.strip()


def read_at(project: Project, ref: str, folder: Path) -> SeriesAtRef:
    """REF's series, copied into ``folder`` (emptied first), and REF's pin of the tree."""
    commit = resolve(project, ref)
    listing = _git(project, "ls-tree", commit, TREE_PATH) or ""
    fields = listing.split()
    if len(fields) < 3 or fields[1] != "commit":
        raise GitError(f"perf: --base {ref}: {TREE_PATH}/ is not a submodule at {commit[:10]}",
                       "compare with a commit of this project that pins the tree")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    series_text = _git(project, "cat-file", "blob", f"{commit}:patches/series")
    if series_text is not None:
        (folder / "series").write_text(series_text)
        names = _git(project, "ls-tree", "--name-only", f"{commit}:patches") or ""
        for name in names.splitlines():
            if name and name != "series" and name.endswith(".patch"):
                blob = project.executor.run(
                    ["git", "-C", str(project.root), "cat-file", "blob", f"{commit}:patches/{name}"],
                    mutates=False, what="git cat-file")
                (folder / name).write_text(blob.stdout)
    return SeriesAtRef(ref, commit, read_series(folder), fields[2])
