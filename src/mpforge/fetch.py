"""``invoke fetch``: bring ``micropython/`` to its pin, with the submodules a port needs.

The pin is the gitlink the project records for ``micropython/``; nothing
else decides it. Fetching:

1. checks the tree: at the pin already, missing, or elsewhere. A tree that is
   elsewhere *and* has local changes is never touched (:class:`DirtyTree`);
   local changes at the pin (an applied patch series, say) are kept and
   reported;
2. probes the remote first when a clone is needed, so being offline fails in
   seconds with the URL and the ``--mirror`` option named;
3. runs ``git submodule update --init`` for the tree and then for the port's
   nested submodules, all through the mirror mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import SourceDef
from .errors import DirtyTree
from .git import Git
from .project import TREE_DIR, Project


@dataclass
class FetchReport:
    """What :func:`fetch` did, for the task layer to print and tests to check."""

    pin: str
    cloned: bool = False
    checked_out: bool = False
    submodules_initialised: list[str] = field(default_factory=list)
    sources_fetched: list[str] = field(default_factory=list)
    local_changes: list[str] = field(default_factory=list)


def submodule_ready(git: Git, repo: Path, path: str) -> bool:
    """True when ``repo/path`` is checked out at the commit ``repo`` pins."""
    sub = repo / path
    return git.is_checkout(sub) and git.head(sub) == git.gitlink(repo, path)


def fetch(project: Project, ports: list[str], mirror: str | None) -> FetchReport:
    """Initialise the tree at its pin and the nested submodules ``ports`` need."""
    git = Git(project.executor, mirror)
    root, tree = project.root, project.tree
    rel = TREE_DIR if project.tree_is_submodule else None
    for name in ports:  # validate names before touching anything
        project.catalog.port(name)

    if rel is None:
        # Another tree (MPFORGE_TREE, a variant): not ours to move; only its submodules.
        report = FetchReport(pin=git.head(tree))
    else:
        pin = git.gitlink(root, rel)
        report = FetchReport(pin=pin)
        if git.is_checkout(tree):
            head = git.head(tree)
            changes = git.changed_files(tree)
            if head != pin and changes:
                shown = ", ".join(changes[:5]) + (" ..." if len(changes) > 5 else "")
                raise DirtyTree(
                    f"micropython/ is at {head[:10]}, not the pin {pin[:10]}, and has "
                    f"local changes ({shown})",
                    "commit or stash them in micropython/, or `invoke patch --revert` if they are the series")
            if head != pin:
                if not git.has_commit(tree, pin):
                    git.probe(git.submodule_url(root, rel), root)
                git.run(root, "submodule", "update", "--init", "--", rel, what="git submodule update")
                report.checked_out = True
            report.local_changes = changes
        else:
            git.probe(git.submodule_url(root, rel), root)
            git.run(root, "submodule", "update", "--init", "--", rel, what="git submodule update",
                    hint="check the mirror or your network")
            report.cloned = True

    wanted: list[str] = []
    for name in ports:
        for path in project.catalog.port(name).submodules:
            if path not in wanted:
                wanted.append(path)
    missing = [p for p in wanted if not submodule_ready(git, tree, p)]
    for path in missing:
        if not git.is_checkout(tree / path):
            git.probe(git.submodule_url(tree, path), tree)
    if missing:
        git.run(tree, "submodule", "update", "--init", "--", *missing,
                what="git submodule update", hint="check the mirror or your network")
        report.submodules_initialised = missing

    for name in ports:
        for source in project.catalog.port(name).sources:
            if fetch_source(project, git, source):
                report.sources_fetched.append(source.name)
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
        git.run(project.root, "clone", "--no-checkout", source.url, str(dest),
                what=f"git clone ({source.name})", hint="check the mirror or your network")
    if not git.has_commit(dest, source.rev):
        git.run(dest, "fetch", "origin", what=f"git fetch ({source.name})")
    if not fresh and git.changed_files(dest):
        raise DirtyTree(f"build/sources/{source.name} has local changes",
                        f"remove build/sources/{source.name} to fetch it again")
    git.run(dest, "checkout", "-q", "--detach", source.rev, what=f"git checkout ({source.name})",
            hint=f"is {source.rev[:12]} a commit of {source.url}?")
    return True
