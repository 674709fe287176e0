"""Expected outputs computed once: CPython's output for a test file, cached.

Most of the tree's test files have no ``.exp`` file: for each of them the tree's runner
(``tests/run-tests``) starts CPython (``MICROPY_CPYTHON3 -B FILE``) to learn what the
file should print, every run, on every shard. That output cannot change while the file,
the modules beside it that it may import, the CPython version and the options CPython is
given stay the same; so the first run stores it and later runs read it back.

How it reaches the runner: the runner runs inside mpforge's launcher
(:mod:`mpforge.testing.runner_launch`), which, when ``MPFORGE_EXP_CACHE`` names a
folder, hands the runner a ``subprocess.check_output`` that answers CPython's calls
from the cache (:func:`install`). Every other call goes through untouched. The
verdicts stay the runner's own: it compares its MicroPython output against what
``check_output`` returned, exactly as it would against a ``.exp`` file. The tree is
never written to (the cache lives in the folder given, e.g. ``build/test-cache``).

The key (:func:`key`) is the sha256 of: the CPython version (``MPFORGE_EXP_CPYTHON``,
the interpreter's ``sys.version``, set by :mod:`mpforge.testing.testrun`), the
arguments CPython is given other than the file, the file's content and the content of
every other ``.py`` file in its folder (a test may import its neighbours, as the
``import/`` tests do). A crash of CPython (a non-zero exit) is never stored: the runner
sees it as before. Entries are written atomically (a temporary file renamed), so shards
that compute the same entry at once cannot leave half of one.

A missing output is computed without starting CPython afresh when the runner's CPython
is the interpreter running the runner (the usual case: both are ``sys.executable``) and
its only option is ``-B``: the runner's process forks, and the child runs the file as
``python3 -B FILE`` would (:func:`run_forked`: ``__main__``, ``sys.argv``, ``sys.path[0]``
the file's folder, every module a fresh interpreter has not loaded at start forgotten,
stdout a fresh pipe, an uncaught exception a traceback and exit status 1). A fork costs about a millisecond, an
interpreter's start-up some twenty, which is most of a cold run's work.

``invoke test --no-exp-cache`` runs without it; ``invoke bench-test`` measures it cold
(an empty cache) and warm.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import subprocess
import sys
import traceback
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: the folder of cached outputs (unset: no cache)
CACHE_VARIABLE = "MPFORGE_EXP_CACHE"
#: CPython's ``sys.version``, as the runner's ``MICROPY_CPYTHON3`` reports it
VERSION_VARIABLE = "MPFORGE_EXP_CPYTHON"
#: the runner's CPython, as the tree's ``run-tests`` reads it
CPYTHON_VARIABLE = "MICROPY_CPYTHON3"


def _folder_digest(folder: Path, memo: dict[Path, str]) -> str:
    """One digest of every ``.py`` file in ``folder`` (names and contents), once per folder."""
    if folder not in memo:
        h = hashlib.sha256()
        for path in sorted(folder.glob("*.py")):
            h.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        memo[folder] = h.hexdigest()
    return memo[folder]


def key(version: str, options: Sequence[str], file: Path, memo: dict[Path, str] | None = None) -> str:
    """The cache key of CPython's output for ``file``; see the module docstring."""
    data = {"cpython": version, "options": list(options),
            "file": hashlib.sha256(file.read_bytes()).hexdigest(),
            "folder": _folder_digest(file.resolve().parent, {} if memo is None else memo)}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class ExpectedOutputs:
    """The cache folder: ``get``/``put`` by key, with hit and miss counts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits = 0
        self.misses = 0

    def path(self, entry: str) -> Path:
        return self.folder / entry[:2] / entry

    def get(self, entry: str) -> bytes | None:
        try:
            data = self.path(entry).read_bytes()
        except FileNotFoundError:
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, entry: str, output: bytes) -> None:
        path = self.path(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{entry}.{os.getpid()}")
        tmp.write_bytes(output)
        os.replace(tmp, path)


def _exit_status(exc: SystemExit) -> int:
    """The status ``sys.exit(code)`` gives, as CPython computes it (a message: printed, 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    sys.stderr.write(f"{exc.code}\n")
    return 1


_STARTUP_MODULES: set[str] | None = None


def startup_modules(cpython: str) -> set[str]:
    """The modules a fresh ``cpython -B`` has loaded before it runs a file (once a process)."""
    global _STARTUP_MODULES
    if _STARTUP_MODULES is None:
        listed = subprocess.run([cpython, "-B", "-c", "import sys; print(' '.join(sys.modules))"],
                                capture_output=True, text=True, check=True).stdout
        _STARTUP_MODULES = set(listed.split())
    return _STARTUP_MODULES


def run_forked(args: Sequence[str]) -> bytes:
    """What ``python3 -B FILE`` prints (``args`` is that command), computed in a forked child
    of this interpreter (``types``, ``builtins`` and ``sys`` are loaded by every interpreter
    at start); :class:`subprocess.CalledProcessError` for a non-zero exit, as
    ``check_output`` raises it. See the module docstring."""
    file = str(args[-1])
    preloaded = startup_modules(str(args[0]))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(read)
            os.dup2(write, 1)
            os.close(write)
            folder = os.path.dirname(os.path.abspath(file))
            # forget what this process imported that a fresh interpreter had not loaded: the
            # file imports it afresh, from its own folder first, as under python3 -B (where
            # float/types.py, say, is the types that a later `import json` meets)
            for name in [m for m in sys.modules if m not in preloaded and m != "__main__"]:
                del sys.modules[name]
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding=sys.stdout.encoding,
                                          errors=sys.stdout.errors)
            sys.argv = [file]
            launcher = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyboard_shim")
            sys.path[:] = [folder, *(p for p in sys.path if p not in ("", os.getcwd(), launcher))]
            sys.dont_write_bytecode = True
            try:
                # by hand, not runpy: runpy imports more (pkgutil, types) once the folder
                # is on the path, where float/types.py would be found first
                with open(file, "rb") as source:
                    compiled = compile(source.read(), file, "exec", dont_inherit=True)
                main = types.ModuleType("__main__")
                main.__file__ = os.path.abspath(file)  # as CPython 3.9+ sets it
                main.__builtins__ = builtins  # type: ignore[attr-defined]
                sys.modules["__main__"] = main
                exec(compiled, main.__dict__)
                status = 0
            except SystemExit as exc:
                status = _exit_status(exc)
            except BaseException:
                traceback.print_exc()
                status = 1
            sys.stdout.flush()
        finally:
            os._exit(status)
    os.close(write)
    chunks = []
    with os.fdopen(read, "rb") as pipe:
        while chunk := pipe.read(65536):
            chunks.append(chunk)
    _, wait = os.waitpid(pid, 0)
    output = b"".join(chunks)
    code = os.waitstatus_to_exitcode(wait)
    if code != 0:
        raise subprocess.CalledProcessError(code, list(args), output)
    return output


def _forkable(cpython: str, options: Sequence[str]) -> bool:
    """True when a fork of this interpreter computes what ``cpython *options FILE`` would."""
    same = os.path.realpath(cpython) == os.path.realpath(sys.executable) or cpython == sys.executable
    return same and list(options) == ["-B"] and hasattr(os, "fork")


def cached_check_output(cache: ExpectedOutputs, cpython: str, version: str,
                        real: Callable[..., Any], fork: bool = True) -> Callable[..., Any]:
    """A ``subprocess.check_output`` that answers ``[cpython, *options, FILE.py]`` from
    ``cache`` and hands every other call to ``real``."""
    memo: dict[Path, str] = {}

    def check_output(args: Any, *rest: Any, **kwargs: Any) -> Any:
        if (rest or kwargs or not isinstance(args, list | tuple) or len(args) < 2
                or args[0] != cpython or not str(args[-1]).endswith(".py")):
            return real(args, *rest, **kwargs)
        file = Path(str(args[-1]))
        if not file.is_file():
            return real(args)
        entry = key(version, [str(a) for a in args[1:-1]], file, memo)
        found = cache.get(entry)
        if found is not None:
            return found
        options = [str(a) for a in args[1:-1]]
        # a CPython crash raises, and is not stored
        output = run_forked(args) if fork and _forkable(cpython, options) else real(args)
        cache.put(entry, output)
        return output

    return check_output


def install(environ: dict[str, str] | os._Environ[str] = os.environ) -> ExpectedOutputs | None:
    """Replace ``subprocess.check_output`` in this process when the cache is asked for
    (``MPFORGE_EXP_CACHE`` set, with the CPython and its version known); returns the
    cache, or None (nothing changed)."""
    folder, version = environ.get(CACHE_VARIABLE), environ.get(VERSION_VARIABLE)
    cpython = environ.get(CPYTHON_VARIABLE)
    if not folder or not version or not cpython:
        return None
    cache = ExpectedOutputs(Path(folder))
    subprocess.check_output = cached_check_output(cache, cpython, version, subprocess.check_output)
    return cache
