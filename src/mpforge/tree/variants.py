"""Variant trees: the same pinned tree with another patch series, side by side.

A benchmark compares the patched tree with the unpatched one (or with a
prefix of the series) without touching ``micropython/``. A variant is:

* a ``git worktree`` of the tree at the same commit (or at another commit of
  its history, for a reference build of a later upstream change), under
  ``build/variants/<name>/tree`` (objects are shared, so it is cheap);
* the port's nested submodules as links to the main tree's checkouts (they
  are only read: deplibs build from exported copies);
* its own patch series folder, build folder and dist folder;
* the main project's data and deplib cache.
"""

from __future__ import annotations

import shutil

from mpforge.core.config import PortDef
from mpforge.core.errors import GitError
from mpforge.core.project import Project
from mpforge.tree.git import Git
from mpforge.tree.patches import Patch


def resolve_commit(project: Project, commit: str, mirror: str | None = None) -> str | None:
    """The full sha of ``commit`` in the tree's repository, fetched through the mirror
    when the clone lacks it; None when neither has it (the caller says what it skips)."""
    git = Git(project.executor, mirror)
    full = git.query(project.tree, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    if full:
        return full
    fetched = git.run(project.tree, "fetch", "--quiet", "origin", commit, check=False,
                      what="git fetch (variant commit)")
    if not fetched.ok:
        return None
    return git.query(project.tree, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}") or None


def variant_project(project: Project, name: str, patches: list[Patch], port: PortDef,
                    commit: str | None = None) -> Project:
    """A :class:`Project` whose tree is the pinned tree with ``patches`` only.

    ``commit``: check the variant out there instead of at the pin (a full sha,
    see :func:`resolve_commit`); the patches must still apply to it.
    """
    git = Git(project.executor)
    base = project.build_root / "variants" / name
    tree = base / "tree"
    commit = commit or git.head(project.tree)
    if not commit:
        raise GitError("micropython/ is not fetched", "run `invoke fetch` first")
    if git.is_checkout(tree) and git.head(tree) != commit:
        git.run(project.tree, "worktree", "remove", "--force", str(tree))
    if not git.is_checkout(tree):
        if tree.exists():
            shutil.rmtree(tree)
        git.run(project.tree, "worktree", "prune")
        git.run(project.tree, "worktree", "add", "--detach", str(tree), commit,
                what="git worktree add")
    for sub in port.submodules:
        link, real = tree / sub, project.tree / sub
        if not link.is_symlink():
            if link.is_dir():
                link.rmdir()  # the empty folder git leaves for a submodule
            link.symlink_to(real, target_is_directory=True)

    series_dir = base / "patches"
    if series_dir.exists():
        shutil.rmtree(series_dir)
    series_dir.mkdir(parents=True)
    lines = []
    for patch in patches:
        shutil.copyfile(patch.path, series_dir / patch.name)
        lines.append(f"{patch.name} -p{patch.strip}")
    (series_dir / "series").write_text("".join(f"{line}\n" for line in lines))

    return Project(project.root, project.console, project.executor, tree=tree,
                   patches_dir=series_dir, build_root=base / "build", dist_root=base / "dist")
