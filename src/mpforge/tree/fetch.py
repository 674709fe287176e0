"""``invoke fetch``: bring ``micropython/`` to its pin, with the submodules a port needs.

The pin is the gitlink the project records for ``micropython/``; nothing
else decides it. Fetching:

1. checks the tree: at the pin already, missing, or elsewhere. The user's work
   is never moved silently: a tree on a branch, or at commits no branch holds,
   is refused with how to keep them (:class:`UserWork`); commits on top of the
   pin are kept as they are (and builds say so); a tree that would have to move
   *and* has local changes is never touched (:class:`DirtyTree`); local
   changes at the pin (an applied patch series, say) are kept and reported;
2. probes the remote first when a clone is needed, so being offline fails in
   seconds with the URL and the ``--mirror`` option named;
3. runs ``git submodule update --init`` for the tree and then for the port's
   nested submodules, all through the mirror mapping. A clone that fails (a
   mirror that lacks the pinned commit, say) is removed again: a failed fetch
   leaves the tree as it was, and the next fetch from a good mirror just works.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.core.config import PortDef, SourceDef
from mpforge.core.errors import CommandFailed, DirtyTree, GitError, MpforgeError, UserWork
from mpforge.core.project import TREE_DIR, Project
from mpforge.tree.git import Git


@dataclass
class FetchReport:
    """What :func:`fetch` did, for the task layer to print and tests to check."""

    pin: str
    cloned: bool = False
    checked_out: bool = False
    submodules_initialised: list[str] = field(default_factory=list)
    sources_fetched: list[str] = field(default_factory=list)
    #: port -> why its pinned sources could not be fetched (only with ``keep_going``)
    failed_ports: dict[str, MpforgeError] = field(default_factory=dict)
    local_changes: list[str] = field(default_factory=list)
    #: commits of the user's on top of the pin, kept (builds use them)
    ahead: int = 0


def submodule_ready(git: Git, repo: Path, path: str) -> bool:
    """True when ``repo/path`` is checked out at the commit ``repo`` pins."""
    sub = repo / path
    return git.is_checkout(sub) and git.head(sub) == git.gitlink(repo, path)


def fetch(project: Project, ports: Sequence[PortDef], mirror: str | None, *,
          keep_going: bool = False) -> FetchReport:
    """Initialise the tree at its pin and the nested submodules ``ports`` need.

    With ``keep_going``, a port whose own pinned sources cannot be fetched is
    recorded in ``report.failed_ports`` instead of failing the whole fetch (a
    build of many targets then fails that port's targets alone).
    """
    git = Git(project.executor, mirror)
    root, tree = project.root, project.tree
    rel = TREE_DIR if project.tree_is_submodule else None
    if rel is None:
        # Another tree (MPFORGE_TREE, a variant): not ours to move; only its submodules.
        report = FetchReport(pin=git.head(tree))
    else:
        pin = git.gitlink(root, rel)
        report = FetchReport(pin=pin)
        if git.is_checkout(tree) and _abandoned_clone(git, tree):
            # an empty clone a failed fetch of an older mpforge left: start again
            project.console.warn("micropython/ holds an empty clone left by a failed fetch: cloning again")
            _remove_clone(git, root, rel, tree)
        if git.is_checkout(tree):
            head = git.head(tree)
            changes = git.changed_files(tree)
            if head != pin:
                if not git.has_commit(tree, pin):
                    git.probe(git.submodule_url(root, rel), root)
                    _fetch_pin(git, tree, pin, git.submodule_url(root, rel))
                report.ahead = _ahead_of_pin(git, tree, head, pin)
                if report.ahead:
                    project.console.warn(
                        f"micropython/ is {report.ahead} commit(s) ahead of the pin {pin[:10]} (yours): "
                        "kept as it is; builds use it and their manifests say so")
                else:
                    _refuse_user_work(git, tree, head, pin)
                    if changes:
                        shown = ", ".join(changes[:5]) + (" ..." if len(changes) > 5 else "")
                        raise DirtyTree(
                            f"micropython/ is at {head[:10]}, not the pin {pin[:10]}, and has "
                            f"local changes ({shown})",
                            "commit or stash them in micropython/, or `invoke patch --revert` if they "
                            "are the series")
                    git.run(root, "submodule", "update", "--init", "--", rel, what="git submodule update")
                    report.checked_out = True
            report.local_changes = changes
        else:
            git.probe(git.submodule_url(root, rel), root)
            _clone_or_undo(git, root, rel, tree, pin, git.submodule_url(root, rel))
            report.cloned = True

    wanted: list[str] = []
    for port in ports:
        for path in port.submodules:
            if path not in wanted:
                wanted.append(path)
    missing = [p for p in wanted if not submodule_ready(git, tree, p)]
    for path in missing:
        if not git.is_checkout(tree / path):
            git.probe(git.submodule_url(tree, path), tree)
    if missing:
        fresh = [p for p in missing if not git.is_checkout(tree / p)
                 and not (git.git_dir(tree) / "modules" / p).exists()]
        try:
            git.run(tree, "submodule", "update", "--init", "--", *missing,
                    what="git submodule update", hint="check the mirror or your network")
        except CommandFailed:
            for path in fresh:  # leave no half clone behind: the next fetch starts clean
                if not submodule_ready(git, tree, path):
                    _remove_clone(git, tree, path, tree / path)
            raise
        report.submodules_initialised = missing

    for port in ports:
        try:
            for source in port.sources:
                if fetch_source(project, git, source):
                    report.sources_fetched.append(source.name)
        except MpforgeError as exc:
            if not keep_going:
                raise
            # one port's SDK missing from a mirror must not stop the other ports
            report.failed_ports[port.name] = exc
    return report


def fetch_source(project: Project, git: Git, source: SourceDef) -> bool:
    """Check out a port's pinned source at its commit; True when anything was done."""
    dest = project.source_dir(source.name)
    if git.is_checkout(dest) and git.head(dest) == source.rev:
        return False
    fresh = not git.is_checkout(dest)
    if fresh:
        git.probe(source.url, project.root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() and not any(dest.iterdir()):
            dest.rmdir()
        git.run(project.root, "clone", "--no-checkout", source.url, str(dest),
                what=f"git clone ({source.name})", hint="check the mirror or your network")
    try:
        if not git.has_commit(dest, source.rev):
            git.run(dest, "fetch", "origin", what=f"git fetch ({source.name})")
        if not fresh and git.changed_files(dest):
            raise DirtyTree(f"build/sources/{source.name} has local changes",
                            f"remove build/sources/{source.name} to fetch it again")
        git.run(dest, "checkout", "-q", "--detach", source.rev, what=f"git checkout ({source.name})",
                hint=f"is {source.rev[:12]} a commit of {source.url}?")
    except MpforgeError:
        if fresh and not project.executor.dry_run:  # no clone without its commit is left behind
            shutil.rmtree(dest, ignore_errors=True)
        raise
    return True


# --- the tree's own moves ----------------------------------------------------------------

def _abandoned_clone(git: Git, tree: Path) -> bool:
    """True for a clone with nothing checked out and nothing in its folder (a failed clone)."""
    if git.query(tree, "ls-files"):
        return False
    return not [p for p in tree.iterdir() if p.name != ".git"]


def _remove_clone(git: Git, repo: Path, rel: str, folder: Path) -> None:
    """Undo ``git submodule update --init`` of submodule ``rel`` of ``repo``: its git directory
    and what was checked out; the (empty) folder stays, as a fresh clone of the project has it."""
    if git.executor.dry_run:
        return
    modules = git.git_dir(repo) / "modules" / rel
    shutil.rmtree(modules, ignore_errors=True)
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _clone_or_undo(git: Git, root: Path, rel: str, tree: Path, pin: str, url: str) -> None:
    """Clone the tree at its pin; if that fails, remove the clone again (see the module docstring)."""
    modules = git.git_dir(root) / "modules" / rel
    existed = modules.exists()
    try:
        git.run(root, "submodule", "update", "--init", "--", rel, what="git submodule update",
                hint="check the mirror or your network")
    except CommandFailed as exc:
        lacks_pin = modules.exists() and not git.run(modules, "cat-file", "-e", f"{pin}^{{commit}}",
                                                     check=False, mutates=False).ok
        if not existed:
            _remove_clone(git, root, rel, tree)
        if lacks_pin:
            raise GitError(f"{_where(git, url)} has no commit {pin[:12]}, the pin of micropython/: "
                           "nothing was kept", "update the mirror (or pass another --mirror), then "
                           "`invoke fetch` again", exc.details) from exc
        raise


def _where(git: Git, url: str) -> str:
    from mpforge.tree.git import mirrored

    return mirrored(url, git.mirror)


def _fetch_pin(git: Git, tree: Path, pin: str, url: str) -> None:
    """Bring the pin into an existing clone (moving nothing); refuse a remote without it."""
    git.run(tree, "fetch", "-q", "origin", what="git fetch", hint="check the mirror or your network")
    if not git.has_commit(tree, pin):
        git.run(tree, "fetch", "-q", "origin", pin, check=False, what="git fetch")
    if not git.has_commit(tree, pin):
        raise GitError(f"{_where(git, url)} has no commit {pin[:12]}, the pin of micropython/: "
                       "nothing was changed", "update the mirror (or pass another --mirror), then "
                       "`invoke fetch` again")


def _ahead_of_pin(git: Git, tree: Path, head: str, pin: str) -> int:
    """How many commits ``head`` has on top of ``pin`` (0: ``pin`` is not its ancestor)."""
    if not head or not git.run(tree, "merge-base", "--is-ancestor", pin, head, check=False,
                               mutates=False).ok:
        return 0
    count = git.query(tree, "rev-list", "--count", f"{pin}..{head}")
    return int(count) if count.isdigit() else 0


def _refuse_user_work(git: Git, tree: Path, head: str, pin: str) -> None:
    """Moving ``micropython/`` from ``head`` to ``pin`` must lose nothing, or it is refused.

    Safe: ``head`` is an older pin (an ancestor of the pin), or a commit some branch,
    tag or remote branch holds. Not safe: a checked-out branch (the user's, to
    switch themselves), or commits nothing holds (they would only survive in the
    reflog).
    """
    branch = git.query(tree, "symbolic-ref", "-q", "--short", "HEAD")
    if branch:
        raise UserWork(f"micropython/ is on your branch '{branch}' (at {head[:10]}), not the pin "
                       f"{pin[:10]}: not moved",
                       f"to build the pin: `git -C micropython checkout --detach {pin[:12]}` (your branch "
                       "stays); to build your work: rebase it onto the pin (then it is kept)")
    if not head or git.run(tree, "merge-base", "--is-ancestor", head, pin, check=False,
                           mutates=False).ok:
        return
    holders = git.query(tree, "for-each-ref", "--count=1", "--contains", head, "--format=%(refname)",
                        "refs/heads", "refs/tags", "refs/remotes")
    if holders:
        return
    raise UserWork(f"micropython/ is at {head[:10]}, a commit no branch holds (your work?), not the "
                   f"pin {pin[:10]}: not moved",
                   "keep it with `git -C micropython branch my-work`, then `invoke fetch` checks out "
                   "the pin; or rebase it onto the pin to build it")
