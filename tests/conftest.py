"""Shared fixtures: real git repositories built from ``tests/fixtures``.

``fixture_mirror`` lays out a mirror folder exactly like the one users pass to
``--mirror`` (``BASE/<owner>/<name>.git``): the fixture MicroPython tree, whose
``.gitmodules`` point at ``https://github.com/pfalcon/axtls`` and friends, and
the stand-in deplib repositories. ``fixture_project`` is an mpforge checkout
(this repo's real ``ports/`` and ``toolchains/``) whose ``micropython/``
submodule is pinned to the fixture tree. Nothing here touches the network.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from mpforge.cli.ui import Console
from mpforge.core.executor import Executor
from mpforge.core.project import Project
from mpforge.testing.baselines import baseline_path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "fixture", "GIT_AUTHOR_EMAIL": "fixture@example.invalid",
    "GIT_COMMITTER_NAME": "fixture", "GIT_COMMITTER_EMAIL": "fixture@example.invalid",
    "GIT_AUTHOR_DATE": "2016-07-20T12:00:00Z", "GIT_COMMITTER_DATE": "2016-07-20T12:00:00Z",
}

DEPS = {  # submodule path in the tree -> GitHub owner/name, as in the real tree
    "lib/axtls": "pfalcon/axtls",
    "lib/berkeley-db-1.xx": "pfalcon/berkeley-db-1.xx",
    "lib/libffi": "atgreen/libffi",
}


def git(cwd: Path, *args: str) -> str:
    """Run git for a fixture (deterministic identity and dates)."""
    out = subprocess.run(["git", "-c", "protocol.file.allow=always", *args], cwd=cwd,
                         env={**os.environ, **GIT_ENV}, check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return out.stdout.strip()


def make_repo(src: Path, dest: Path) -> str:
    """Copy ``src`` into a new repository at ``dest`` with one commit; returns its sha."""
    shutil.copytree(src, dest)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", f"fixture {src.name}")
    return git(dest, "rev-parse", "HEAD")


def add_gitlink(repo: Path, path: str, url: str, sha: str) -> None:
    """Record a submodule by its gitlink and .gitmodules entry, without cloning it."""
    git(repo, "config", "-f", ".gitmodules", f"submodule.{path}.path", path)
    git(repo, "config", "-f", ".gitmodules", f"submodule.{path}.url", url)
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sha},{path}")
    git(repo, "add", ".gitmodules")


@dataclass
class Mirror:
    base: Path
    tree_sha: str
    work: Path  # non-bare working copy of the fixture tree, to make more commits

    def bare(self, owner_name: str) -> Path:
        return self.base / f"{owner_name}.git"


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_as_on_a_terminal():
    """Ctrl-C reaches the tests (and the commands they start) as it does on a terminal.

    A CI runner may start the suite with SIGINT ignored (a background job of a
    non-interactive shell); an ignored signal stays ignored in every child, and the
    tests of what Ctrl-C does would see nothing happen."""
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(scope="session", autouse=True)
def private_ccache(tmp_path_factory: pytest.TempPathFactory):
    """Fixture builds compile through ccache: keep its files out of the user's own cache."""
    before = os.environ.get("CCACHE_DIR")
    os.environ["CCACHE_DIR"] = str(tmp_path_factory.mktemp("ccache"))
    yield
    if before is None:
        os.environ.pop("CCACHE_DIR", None)
    else:
        os.environ["CCACHE_DIR"] = before


@pytest.fixture(scope="session")
def fixture_mirror(tmp_path_factory: pytest.TempPathFactory) -> Mirror:
    root = tmp_path_factory.mktemp("mirror-src")
    base = tmp_path_factory.mktemp("mirror")
    shas = {}
    for path, owner_name in DEPS.items():
        name = Path(path).name
        shas[path] = make_repo(FIXTURES / "deps" / name, root / name)
        (base / owner_name).parent.mkdir(parents=True, exist_ok=True)
        git(root, "clone", "-q", "--bare", str(root / name), str(base / f"{owner_name}.git"))
    tree = root / "minitree"
    make_repo(FIXTURES / "minitree", tree)
    for path, owner_name in DEPS.items():
        add_gitlink(tree, path, f"https://github.com/{owner_name}", shas[path])
    git(tree, "commit", "-q", "-m", "add submodules")
    (base / "micropython").mkdir()
    git(root, "clone", "-q", "--bare", str(tree), str(base / "micropython" / "micropython.git"))
    return Mirror(base, git(tree, "rev-parse", "HEAD"), tree)


@pytest.fixture
def fixture_project(tmp_path: Path, fixture_mirror: Mirror) -> Path:
    """An mpforge checkout pinned to the fixture tree, not yet fetched."""
    return make_project(tmp_path / "proj", fixture_mirror)


def make_project(proj: Path, fixture_mirror: Mirror) -> Path:
    """``fixture_project`` at ``proj``: for a fixture of a wider scope (a build that
    several tests only read)."""
    (proj / "patches").mkdir(parents=True)
    shutil.copytree(REPO / "ports", proj / "ports")
    shutil.copytree(REPO / "toolchains", proj / "toolchains")
    shutil.copytree(FIXTURES / "patches", proj / "patches", dirs_exist_ok=True)
    git(proj, "init", "-q", "-b", "main")
    git(proj, "add", "-A")
    add_gitlink(proj, "micropython", "https://github.com/micropython/micropython.git",
                fixture_mirror.tree_sha)
    git(proj, "commit", "-q", "-m", "project")
    (proj / "micropython").mkdir()  # as a fresh clone leaves it: an empty folder
    return proj


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A git repository holding the fixture tree (one commit), for the patch queue's tests."""
    repo = tmp_path / "tree"
    make_repo(FIXTURES / "minitree", repo)
    return repo


@pytest.fixture
def patches(tmp_path: Path) -> Path:
    """A copy of the fixture patch series (``series`` and its patch files)."""
    folder = tmp_path / "patches"
    shutil.copytree(FIXTURES / "patches", folder)
    return folder


def project_for(root: Path, dry_run: bool = False) -> Project:
    console = Console(plain=True, verbose=True)
    return Project(root, console, Executor(log=console.detail, dry_run=dry_run))


def run_cli(cwd: Path, *args: str, env: dict[str, str | None] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real ``mpforge`` console entry point in ``cwd`` (plain output, no TTY).

    It runs as this interpreter (``sys.executable``), not as whatever ``python`` the
    test's PATH finds: a venv's python reached any other way does not see the venv.
    ``env`` adds to this process's environment; a value None removes the variable (a
    machine that sets ``MPFORGE_MIRROR`` for every command, as CI may, must not decide
    a test of the other sources of the mirror).
    """
    full_env = {**os.environ, "CI": "1", **{k: v for k, v in (env or {}).items() if v is not None}}
    for name in [k for k, v in (env or {}).items() if v is None]:
        full_env.pop(name, None)
    full_env.pop("MPFORGE_ROOT", None)
    return subprocess.run([sys.executable, "-m", "mpforge", *args], cwd=cwd, env=full_env, text=True,
                          capture_output=True, timeout=timeout)


def ended_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` is gone (or a zombie its new parent has not reaped yet) within
    ``seconds``; if not, it is killed, so a failing test leaves nothing running."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return False


def write_baseline(project_root: Path, entries: dict[str, str]) -> Path:
    path = baseline_path(project_for(project_root), sys.executable)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f'[[known]]\ntest = "{t}"\nreason = "{r}"\n\n' for t, r in entries.items()))
    return path


# --- the task wiring, in-process ---------------------------------------------------------

class _Timeout(BaseException):
    """Raised in the main thread when an in-process task overruns ``run_task``'s timeout
    (a BaseException: a task's ``except Exception`` must not swallow it)."""


@contextmanager
def _fd_capture() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """File descriptors 1 and 2 (and ``sys.stdout`` / ``sys.stderr`` over them) into two
    temporary files for the block, as a child's pipes would hold them: what mpforge prints
    and what the programs it starts print (make, gcc, a fake board) land in one stream each,
    in the order written. Nothing is a TTY, as under ``run_cli``."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    streams = sys.stdout, sys.stderr, sys.stdin
    for stream in streams[:2]:
        stream.flush()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", write_through=True)
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 (closed below)
        yield out, err
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        sys.stdin.close()
        sys.stdout, sys.stderr, sys.stdin = streams
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _read(file: BinaryIO) -> str:
    file.seek(0)
    text = file.read().decode("utf-8", errors="replace")
    file.close()
    return text


def run_task(cwd: Path, *args: str, env: dict[str, str | None] | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``run_cli``, in this process: the console script's own invoke program
    (:func:`mpforge.cli.main.make_program` over the task namespace) parses ``args`` and runs
    the task here, with the same environment (``CI=1``, ``env`` added, ``MPFORGE_ROOT``
    removed), folder, ``sys.argv`` and no TTY; the result is what ``run_cli`` returns
    (stdout, stderr, the exit status: 0, the task's ``Exit`` code, 1 and a traceback on
    stderr for an uncaught exception, as Python's own exit gives).

    For tests of the task wiring and rendering: it saves the interpreter's start (about a
    second on a loaded 2-core machine) per call. Everything a task changes in the process
    is put back: the environment, the working folder, ``sys.argv``, the signal handlers,
    the streams, and the per-process records of the library (``dist.published``, the fault
    injection's pass counts). What needs a process boundary (signals sent to mpforge,
    ``kill -9``, the lock held by another process, the console script itself, a fresh
    interpreter's imports) keeps ``run_cli``.

    ``timeout`` is kept too: SIGALRM interrupts a task that overruns it, and
    ``subprocess.TimeoutExpired`` is raised, as ``run_cli`` would.
    """
    from mpforge.cli.main import make_program
    from mpforge.cli.tasks import ns
    from mpforge.core import processes, state
    from mpforge.firmware import dist

    if "MPFORGE_FAULT" in {**os.environ, **(env or {})}:
        # a fault point kills or stops the process it is in: here, the test run itself
        raise ValueError("MPFORGE_FAULT needs a process of its own: use run_cli")
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_argv = sys.argv
    saved_signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    os.environ["CI"] = "1"
    for name, value in (env or {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    os.environ.pop("MPFORGE_ROOT", None)
    argv = [str(Path(processes.__file__).parents[1] / "__main__.py"), *args]
    code = 0

    def overran(signum: int, frame: object) -> None:
        raise _Timeout

    try:
        os.chdir(cwd)
        sys.argv = argv
        dist.published.clear()
        state._passes.clear()
        with _fd_capture() as (out, err):
            signal.signal(signal.SIGALRM, overran)
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                make_program(ns).run(argv)
            except SystemExit as exc:
                code = _exit_status(exc)
            except _Timeout:
                code = -1
            except BaseException:  # what the interpreter would print before exiting 1
                traceback.print_exc()
                code = 1
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                processes.stop_all()  # as the process's end would (the task layer did already)
    finally:
        for signum, handler in saved_signals.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        dist.published.clear()
        state._passes.clear()
    stdout, stderr = _read(out), _read(err)
    if code == -1:
        raise subprocess.TimeoutExpired(["mpforge", *args], timeout, stdout, stderr)
    return subprocess.CompletedProcess(["mpforge", *args], code, stdout, stderr)


def _exit_status(exc: SystemExit) -> int:
    """The status the interpreter exits with for ``exc`` (a message is printed, status 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def path_without(tmp_path: Path, program: str) -> str:
    """A PATH with every folder of this one, the folders holding ``program`` replaced by a
    copy of their links without it."""
    folders = []
    for index, folder in enumerate(os.environ["PATH"].split(os.pathsep)):
        if not (Path(folder) / program).exists():
            folders.append(folder)
            continue
        copy = tmp_path / f"path{index}"
        copy.mkdir()
        for entry in Path(folder).iterdir():
            if entry.name != program:
                (copy / entry.name).symlink_to(entry)
        folders.append(str(copy))
    return os.pathsep.join(folders)
