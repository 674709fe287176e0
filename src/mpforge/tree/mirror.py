"""``invoke mirror``: make, update and check a GitHub-shaped mirror of what the ports need.

A mirror (see :mod:`mpforge.tree.git` and docs/mirrors.md)
is a folder of bare repositories laid out like GitHub, ``BASE/OWNER/NAME.git``.
:func:`needed` works out what the ports need, and nothing more:

* the tree (``micropython/micropython``) at the project's pin of ``micropython/``;
* each submodule the ports name (``lib/axtls``, ...) at the commit the pin records
  for it, at the URL the pin's ``.gitmodules`` gives (read from the tree
  repository of the mirror itself, so no checkout is needed);
* each port's pinned sources (``[[sources]]``: the esp8266 SDK, lwIP) at their ``rev``.

:func:`make_mirror` brings each of those repositories into the mirror with exactly
the pinned commits (and their history), from GitHub or from another mirror
(``--from BASE``: a folder, a URL or a bundle), by ``git fetch URL SHA``: each
pinned commit becomes a branch ``mpforge/pin-SHA`` (what a clone fetches), with the
upstream tags on its history (``git describe``, and so the firmware's version
string, needs them). A repository is made in a temporary folder and renamed into
place only once it holds its commits, so a stopped run never leaves one that
looks complete; an existing one is updated in place (git's fetch is safe to stop).

:func:`check_mirror` verifies a mirror: every repository present, every pinned
commit in it (``git cat-file -e``), and ``git fsck`` of each; it names what is
missing. Every git call goes through the project's executor.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.core.config import PortDef
from mpforge.core.errors import CommandFailed, ConfigError, GitError, MpforgeError
from mpforge.core.executor import Executor
from mpforge.core.project import TREE_DIR, Project
from mpforge.core.state import fault_point
from mpforge.tree.git import GIT_ENV, GITHUB, Git

#: the branch a pinned commit gets in a mirror repository
PIN_BRANCH = "mpforge/pin-"


@dataclass
class Needed:
    """One repository of the mirror and the commits the ports need from it."""

    name: str  # OWNER/NAME, as on GitHub
    url: str  # https://github.com/OWNER/NAME(.git)
    #: commit -> what needs it ("micropython/", "micropython/lib/axtls", "esp8266 source esp8266-sdk")
    commits: dict[str, str] = field(default_factory=dict)

    @property
    def rel(self) -> str:
        """Its folder in the mirror."""
        return f"{self.name}.git"


@dataclass
class RepoReport:
    """What :func:`make_mirror` did to one repository."""

    name: str
    action: str  # "created", "updated", "up to date", "failed"
    fetched: list[str] = field(default_factory=list)
    size: int = 0
    error: MpforgeError | None = None


@dataclass
class MirrorReport:
    """What :func:`make_mirror` or :func:`check_mirror` found: one entry per repository, and the
    problems (each names a repository, and a commit or what ``git fsck`` said)."""

    base: Path
    repos: list[RepoReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(r.size for r in self.repos)

    @property
    def ok(self) -> bool:
        return not self.problems


def github_name(url: str) -> str:
    """``OWNER/NAME`` of a GitHub URL (``https://github.com/OWNER/NAME(.git)``)."""
    if not url.startswith(GITHUB):
        raise ConfigError(f"{url} is not on GitHub: a mirror is laid out like https://github.com/",
                          "only GitHub URLs can be mirrored")
    name = url[len(GITHUB):].rstrip("/").removesuffix(".git")
    if name.count("/") != 1:
        raise ConfigError(f"{url} is not a GitHub repository URL (OWNER/NAME)", "check the URL in the data")
    return name


def folder_size(path: Path) -> int:
    """Bytes in the files under ``path`` (a link to a repository counts what it points to)."""
    total = 0
    for dirpath, _, files in os.walk(path.resolve()):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _add(found: dict[str, Needed], url: str, sha: str, what: str) -> None:
    name = github_name(url)
    entry = found.setdefault(name, Needed(name, url))
    entry.commits.setdefault(sha, what)


def _tree_origin(project: Project) -> tuple[str, str]:
    """The tree's URL and pin, as the project records them."""
    git = Git(project.executor)
    return git.submodule_url(project.root, TREE_DIR), git.gitlink(project.root, TREE_DIR)


def needed(project: Project, ports: Sequence[PortDef], tree_repo: Path | None) -> tuple[list[Needed], list[str]]:
    """What ``ports`` need in a mirror (see the module docstring), and what could not be told.

    ``tree_repo`` is a repository holding the pin (the mirror's own copy of the tree);
    without it, the project's ``micropython/`` checkout is asked when it has the pin.
    """
    executor = project.executor
    url, pin = _tree_origin(project)
    found: dict[str, Needed] = {}
    _add(found, url, pin, f"{TREE_DIR}/")
    unknown: list[str] = []
    paths: list[str] = []
    for port in ports:
        paths += [p for p in port.submodules if p not in paths]
    reader = None
    for candidate in (tree_repo, project.tree):
        if candidate is not None and candidate.exists() and executor.run(
                ["git", "-C", str(candidate), "cat-file", "-e", f"{pin}^{{commit}}"],
                check=False, mutates=False).ok:
            reader = candidate
            break
    if paths and reader is None:
        unknown.append(f"the submodules {', '.join(paths)}: no repository holds the pin {pin[:12]} to read "
                       ".gitmodules from")
    for path in paths if reader is not None else []:
        sub_url = executor.query(["git", "-C", str(reader), "config", "--blob", f"{pin}:.gitmodules",
                                  "--get", f"submodule.{path}.url"])
        listed = (executor.query(["git", "-C", str(reader), "ls-tree", pin, "--", path]) or "").split()
        if not sub_url or len(listed) < 3 or listed[0] != "160000":
            unknown.append(f"{TREE_DIR}/{path}: not a submodule at the pin {pin[:12]}")
            continue
        _add(found, sub_url, listed[2], f"{TREE_DIR}/{path}")
    for port in ports:
        for source in port.sources:
            _add(found, source.url, source.rev, f"{port.name} source {source.name}")
    return list(found.values()), unknown


# -- making ---------------------------------------------------------------------------------

def make_mirror(project: Project, ports: Sequence[PortDef], base: Path, source: str | None) -> MirrorReport:
    """Create or update the mirror ``base`` with what ``ports`` need, fetched from ``source``
    (a mirror base, normalised; None: GitHub). A repository that cannot be fetched is a problem
    of the report, and the others are still made."""
    git = Git(project.executor, source)
    report = MirrorReport(base)
    url, pin = _tree_origin(project)
    tree = Needed(github_name(url), url, {pin: f"{TREE_DIR}/"})
    report.repos.append(_ensure(git, base, tree, report))
    tree_repo = base / tree.rel
    wanted, unknown = needed(project, ports, tree_repo if tree_repo.exists() else None)
    report.problems += unknown
    for entry in wanted:
        if entry.name != tree.name:
            report.repos.append(_ensure(git, base, entry, report))
    return report


def _ensure(git: Git, base: Path, entry: Needed, report: MirrorReport) -> RepoReport:
    """Bring ``entry``'s commits into ``base/OWNER/NAME.git`` (see the module docstring)."""
    dest = base / entry.rel
    done = RepoReport(entry.name, "up to date")
    exists = dest.exists()
    work = dest
    if not exists:
        if not git.executor.dry_run:
            dest.parent.mkdir(parents=True, exist_ok=True)
            for stale in dest.parent.glob(f".{dest.name}.tmp-*"):  # a run stopped while making it
                shutil.rmtree(stale, ignore_errors=True)
        work = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        git.executor.run(["git", "init", "-q", "--bare", str(work)], what="git init")
    try:
        missing = [sha for sha in entry.commits if not _has(git.executor, work, sha)]
        if missing:
            _fetch(git, work, entry, missing)
            done.fetched = missing
            done.action = "updated" if exists else "created"
        if not git.executor.dry_run:
            absent = [sha for sha in entry.commits if not _has(git.executor, work, sha)]
            if absent:
                raise GitError(f"{entry.url} (through {git.mirror or 'the network'}) has no commit "
                               f"{absent[0][:12]} ({entry.commits[absent[0]]})",
                               "check the pin, or fetch from another --from mirror")
            _set_head(git.executor, work, next(iter(entry.commits)))
        if not exists and not git.executor.dry_run:
            fault_point("mirror.fetched")
            os.replace(work, dest)
    except MpforgeError as exc:
        if not exists:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                dest.parent.rmdir()  # an OWNER folder made for it alone
        done.action, done.error = "failed", exc
        report.problems.append(f"{entry.rel}: {exc.one_line()}")
        return done
    done.size = folder_size(dest) if dest.exists() else 0
    return done


def _has(executor: Executor, repo: Path, sha: str) -> bool:
    return repo.exists() and executor.run(["git", "-C", str(repo), "cat-file", "-e", f"{sha}^{{commit}}"],
                                          check=False, mutates=False).ok


def _fetch(git: Git, repo: Path, entry: Needed, missing: list[str]) -> None:
    """``git fetch URL SHA:refs/heads/mpforge/pin-SHA`` for each missing commit, then the
    upstream tags whose commits are on their history."""
    refspecs = [f"{sha}:refs/heads/{PIN_BRANCH}{sha}" for sha in missing]
    try:
        git.run(repo, "fetch", "-q", "--no-tags", entry.url, *refspecs, what=f"git fetch ({entry.name})",
                hint="check the network or the --from mirror")
    except CommandFailed as exc:
        if git.executor.dry_run:
            raise
        # a server that refuses commits by id: all its branches, then the pins from them
        if not git.run(repo, "fetch", "-q", "--no-tags", entry.url, "+refs/heads/*:refs/mpforge-all/*",
                       check=False).ok:
            raise  # unreachable: the first failure says it best
        for sha in missing:
            if not _has(git.executor, repo, sha):
                raise GitError(f"{entry.url} has no commit {sha[:12]} ({entry.commits[sha]})",
                               "check the pin, or fetch from another --from mirror", exc.details) from exc
            git.run(repo, "update-ref", f"refs/heads/{PIN_BRANCH}{sha}", sha)
        refs = git.executor.run(["git", "-C", str(repo), "for-each-ref", "--format=%(refname)",
                                 "refs/mpforge-all/"], mutates=False).stdout.split()
        for ref in refs:
            git.run(repo, "update-ref", "-d", ref)
    if git.executor.dry_run:
        return
    remote_tags = git.run(repo, "ls-remote", "--tags", entry.url, check=False, mutates=False)
    if not remote_tags.ok:
        return  # tags are a nicety (git describe); the pins are there
    peeled: dict[str, str] = {}
    for line in remote_tags.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if not ref.startswith("refs/tags/"):
            continue
        if ref.endswith("^{}"):
            peeled[ref[:-3]] = sha
        else:
            peeled.setdefault(ref, sha)
    history = set(git.executor.run(["git", "-C", str(repo), "rev-list", *entry.commits], mutates=False,
                                   what="git rev-list").stdout.split())
    have = set(git.executor.run(["git", "-C", str(repo), "for-each-ref", "--format=%(refname)", "refs/tags/"],
                                mutates=False).stdout.split())
    tags = sorted(ref for ref, sha in peeled.items() if sha in history and ref not in have)
    if tags:
        git.run(repo, "fetch", "-q", "--no-tags", entry.url, *[f"{t}:{t}" for t in tags],
                check=False, what=f"git fetch tags ({entry.name})")


def _set_head(executor: Executor, repo: Path, sha: str) -> None:
    """Point HEAD at a pin branch unless it names a branch the repository has (a clone checks
    HEAD out)."""
    head = executor.query(["git", "-C", str(repo), "symbolic-ref", "-q", "HEAD"])
    if head and executor.run(["git", "-C", str(repo), "rev-parse", "-q", "--verify", head],
                             check=False, mutates=False).ok:
        return
    executor.run(["git", "-C", str(repo), "symbolic-ref", "HEAD", f"refs/heads/{PIN_BRANCH}{sha}"],
                 env=GIT_ENV, what="git symbolic-ref")


# -- checking -------------------------------------------------------------------------------

def _find_repo(base: Path, entry: Needed) -> Path | None:
    """The repository of ``entry`` in ``base``: ``OWNER/NAME.git``, or ``OWNER/NAME`` as git
    accepts it too."""
    for candidate in (base / entry.rel, base / entry.name):
        if candidate.exists():
            return candidate
    return None


def check_mirror(project: Project, ports: Sequence[PortDef], base: Path, fsck: bool = True) -> MirrorReport:
    """Verify that the mirror ``base`` holds every pinned commit ``ports`` need (and that
    ``git fsck`` passes in each of its repositories); the report names what is missing."""
    executor = project.executor
    report = MirrorReport(base)
    url, _ = _tree_origin(project)
    tree_entry = Needed(github_name(url), url)
    tree_repo = _find_repo(base, tree_entry)
    wanted, unknown = needed(project, ports, tree_repo)
    report.problems += unknown
    for entry in wanted:
        repo = _find_repo(base, entry)
        if repo is None:
            report.problems.append(f"{entry.rel}: missing (needed by {', '.join(sorted(set(entry.commits.values())))})")
            report.repos.append(RepoReport(entry.name, "missing"))
            continue
        done = RepoReport(entry.name, "ok", size=folder_size(repo))
        for sha, what in entry.commits.items():
            if not _has(executor, repo, sha):
                report.problems.append(f"{entry.rel}: no commit {sha[:12]} ({what})")
                done.action = "incomplete"
        if fsck:
            result = executor.run(["git", "-C", str(repo), "fsck", "--no-dangling", "--no-progress"],
                                  check=False, mutates=False)
            if not result.ok:
                first = next((line for line in result.stdout.splitlines() if line.strip()), "failed")
                report.problems.append(f"{entry.rel}: git fsck: {first}")
                done.action = "damaged"
        report.repos.append(done)
    return report
