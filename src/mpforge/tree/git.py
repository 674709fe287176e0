"""Git plumbing: the mirror mapping, reachability checks, submodule state.

A *mirror* is a base URL or folder laid out like GitHub
(``BASE/micropython/micropython.git``, ``BASE/pfalcon/axtls.git``...). Every
git command mpforge runs gets ``url.BASE/.insteadOf=https://github.com/`` in its
environment (``GIT_CONFIG_COUNT``, ``GIT_CONFIG_KEY_<n>``, ``GIT_CONFIG_VALUE_<n>``,
git 2.31+), which the clones ``git submodule`` starts inherit, so nested submodules
resolve through the same mirror. Not ``-c KEY=VALUE``: git splits that at the first
``=``, and a mirror folder whose path holds one became a wrong key. Local mirror folders
also need ``protocol.file.allow=always`` since git 2.38. Entries the user's environment
already has are kept (ours are numbered after them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mpforge.core.errors import CommandFailed, GitError, OfflineError
from mpforge.core.executor import Executor, Result
from mpforge.tree.bundle import unpack_bundle

GITHUB = "https://github.com/"
#: Seconds a reachability probe of a remote may take before we call it unreachable.
PROBE_TIMEOUT = 20.0
#: Keep git from prompting for credentials and from stalling on a dead link.
GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
    "GIT_HTTP_LOW_SPEED_TIME": "30",
}


def normalise_mirror(mirror: str | None) -> str | None:
    """A mirror base as git wants it: absolute for folders, no trailing slash; a bundle file
    (``invoke mirror DIR --bundle FILE``) is unpacked into a cache folder, which is the mirror
    (see :mod:`mpforge.tree.bundle`)."""
    if not mirror:
        return None
    if "://" in mirror or mirror.startswith("git@"):
        return mirror.rstrip("/")
    path = Path(mirror).expanduser().resolve()
    if path.is_file():
        return str(unpack_bundle(path))
    return str(path)


def config_env(mirror: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """``GIT_CONFIG_*`` variables mapping GitHub to ``mirror`` (none without one), numbered
    after those ``base`` (the process environment) already holds."""
    if not mirror:
        return {}
    environ = os.environ if base is None else base
    try:
        first = max(0, int(environ.get("GIT_CONFIG_COUNT", "0")))
    except ValueError:
        first = 0
    entries = [("protocol.file.allow", "always"), (f"url.{mirror}/.insteadOf", GITHUB)]
    env = {"GIT_CONFIG_COUNT": str(first + len(entries))}
    for n, (key, value) in enumerate(entries, start=first):
        env[f"GIT_CONFIG_KEY_{n}"] = key
        env[f"GIT_CONFIG_VALUE_{n}"] = value
    return env


def refusal(repo: Path, result: Result) -> GitError:
    """git's own first ``fatal:`` line for a command that failed in ``repo``, as a
    :class:`GitError`; for "dubious ownership" (the checkout belongs to another user) the
    hint is the ``safe.directory`` setting git itself suggests."""
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    said = next((line for line in lines if line.startswith(("fatal:", "error:"))), lines[0] if lines else "")
    said = said.removeprefix("fatal: ").removeprefix("error: ") or f"exit status {result.returncode}"
    if "dubious ownership" in said:
        owner = repo.resolve()
        return GitError(f"git refuses to read {repo}: {said}",
                        f"the checkout belongs to another user; if you trust it: "
                        f"git config --global --add safe.directory {owner}")
    return GitError(f"git cannot read {repo}: {said}", "check the checkout with `git status`")


def mirrored(url: str, mirror: str | None) -> str:
    """The URL git will really use for ``url`` under ``mirror``."""
    if mirror and url.startswith(GITHUB):
        return f"{mirror}/{url[len(GITHUB):]}"
    return url


@dataclass
class Git:
    """Runs git for one working tree through the project's executor."""

    executor: Executor
    mirror: str | None = None

    def config_env(self) -> dict[str, str]:
        """The environment that gives git (and the gits it starts) the mirror mapping."""
        return config_env(self.mirror)

    def run(self, repo: Path, *args: str, check: bool = True, mutates: bool = True,
            timeout: float | None = None, what: str = "git", hint: str = "") -> Result:
        return self.executor.run(["git", "-C", str(repo), *args],
                                 env={**GIT_ENV, **self.config_env()}, check=check, mutates=mutates,
                                 timeout=timeout, what=what, hint=hint)

    def query(self, repo: Path, *args: str) -> str:
        """A read-only git command's output; empty on failure."""
        result = self.run(repo, *args, check=False, mutates=False)
        return result.stdout.strip() if result.ok else ""

    # -- facts about a working tree ------------------------------------------------

    def is_checkout(self, path: Path) -> bool:
        """True when ``path`` is the top of its own git working tree."""
        if not (path / ".git").exists():
            return False
        top = self.query(path, "rev-parse", "--show-toplevel")
        return bool(top) and Path(top).resolve() == path.resolve()

    def head(self, path: Path) -> str:
        return self.query(path, "rev-parse", "HEAD")

    def has_commit(self, path: Path, sha: str) -> bool:
        return self.run(path, "cat-file", "-e", f"{sha}^{{commit}}",
                        check=False, mutates=False).ok

    def changed_files(self, path: Path) -> list[str]:
        """Tracked files with local modifications (untracked and ignored files do not count)."""
        result = self.run(path, "status", "--porcelain", "--untracked-files=no",
                          "--ignore-submodules=all", check=False, mutates=False)
        # not query(): stripping would eat the first line's status column
        return [line[3:] for line in result.stdout.splitlines() if line.strip()] if result.ok else []

    def gitlink(self, repo: Path, path: str) -> str:
        """The commit a superproject pins for submodule ``path`` (from its index).

        git refusing to read ``repo`` at all (a checkout owned by another user: "dubious
        ownership") is its own line, with git's words, not "not a submodule"."""
        result = self.run(repo, "ls-files", "-s", "--", path, check=False, mutates=False)
        if not result.ok:
            raise refusal(repo, result)
        fields = result.stdout.split()
        if len(fields) < 2 or fields[0] != "160000":
            raise GitError(f"'{path}' is not a submodule of {repo.name}",
                           "the project must be a git checkout with micropython/ as a submodule")
        return fields[1]

    def submodule_url(self, repo: Path, path: str) -> str:
        url = self.query(repo, "config", "-f", ".gitmodules", "--get", f"submodule.{path}.url")
        if not url:
            raise GitError(f"no URL for submodule '{path}' in {repo.name}/.gitmodules",
                           "check the path against .gitmodules")
        return url

    def git_dir(self, path: Path) -> Path:
        result = self.run(path, "rev-parse", "--absolute-git-dir", check=False, mutates=False)
        if not result.ok and "dubious ownership" in result.stdout:
            raise refusal(path, result)
        if not result.ok or not result.stdout.strip():
            raise GitError(f"{path} is not a git checkout", "run `invoke fetch` first")
        return Path(result.stdout.strip())

    # -- network ------------------------------------------------------------------

    def probe(self, url: str, cwd: Path) -> None:
        """Fail fast with :class:`OfflineError` when ``url`` (after mirroring) is unreachable."""
        real = mirrored(url, self.mirror)
        local = self.mirror and "://" not in real
        # like git itself, accept FOLDER or FOLDER.git for a local repository
        if local and not (Path(real).exists() or Path(real + ".git").exists()):
            raise OfflineError(f"mirror has no {real}",
                               f"add {url[len(GITHUB):]} to the mirror folder, or drop --mirror")
        try:
            self.run(cwd, "ls-remote", "--heads", url, timeout=PROBE_TIMEOUT,
                     what="git ls-remote", mutates=False)
        except CommandFailed as exc:
            if self.mirror:
                raise OfflineError(f"cannot read {real} (mirror of {url})",
                                   "check the mirror folder or URL", exc.details) from exc
            raise OfflineError(f"cannot reach {url}",
                               "offline? pass --mirror BASE (or set MPFORGE_MIRROR) "
                               "to clone from a local mirror", exc.details) from exc
