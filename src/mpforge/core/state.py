"""State files that no crash can leave half-written, and that cost a rebuild, not a traceback, when damaged.

mpforge keeps a few small files that say what was done: ``build/<target>/inputs.json``,
``dist/<target>/manifest.json``, the deplib stamps, the patch record. Each is written
here, and only here, the same way:

1. the new content goes into a temporary file *in the same folder*
   (``.NAME.tmp-PID``), which is flushed and ``fsync``-ed;
2. one ``os.replace`` puts it in place (a rename is atomic within a file system:
   a reader sees the old file or the new one, never a mix);
3. the folder is ``fsync``-ed, so the rename itself survives a power cut.

Reading is the mirror image: :func:`read_json` returns ``None`` for a missing file
*and* for a damaged one (truncated by an older mpforge, edited by hand), after
one line to the ``warn`` callback. Callers treat ``None`` as "no state": a stamp
that cannot be read means "rebuild", which is always safe.

Disk trouble (``ENOSPC``, a read-only file system, permissions) becomes a
:class:`~mpforge.core.errors.StateError` naming the path and what to do, through
:func:`disk_errors`.

Two more helpers belong to the same concern, keeping things whole:

* :func:`deferred_signals` holds Ctrl-C and SIGTERM back for the few
  milliseconds of a critical section (renames that belong together) and
  delivers them right after;
* :func:`fault_point` is the test seam of the fault-injection tests: with
  ``MPFORGE_FAULT=NAME[@N][:SIGNAL]`` in the environment the process sends
  itself SIGNAL (default SIGKILL; ``STOP`` to freeze it there while a test
  sends a real Ctrl-C) the Nth time it passes the point NAME. Without that
  variable it does nothing. Every point is declared in :data:`FAULT_POINTS`
  (kept in :mod:`mpforge.core.environment`, which parses the variable and
  refuses a name not declared there); passing an undeclared point is a
  programming error, raised whether or not the variable is set.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mpforge.core.environment import FAULT_POINTS, environment
from mpforge.core.errors import StateError

Warn = Callable[[str], None]


# --- writing ----------------------------------------------------------------------------

def temp_name(path: Path) -> Path:
    """The temporary sibling a new version of ``path`` is written to before its rename."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename is still atomic
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` by ``data`` in one rename (see the module docstring)."""
    with disk_errors(f"cannot write {path}"):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_name(path)
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            fault_point("state.write")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(path.parent)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def copy_atomic(src: Path, dest: Path) -> None:
    """Copy a file to ``dest`` (any file system) so ``dest`` is never half a copy."""
    with disk_errors(f"cannot copy {src.name} to {dest.parent}"):
        tmp = temp_name(dest)
        try:
            shutil.copy2(src, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def move_file(src: Path, dest: Path) -> None:
    """Move a file, also across file systems (``build/`` on another disk than the tree).

    ``os.replace`` cannot cross file systems (``EXDEV``); then the file is copied
    next to ``dest`` and renamed into place, and only then is ``src`` removed.
    """
    with disk_errors(f"cannot move {src.name} to {dest.parent}"):
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(src, dest)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
        copy_atomic(src, dest)
        src.unlink()


# --- reading ----------------------------------------------------------------------------

def read_json(path: Path, warn: Warn | None = None,
              expect: type | tuple[type, ...] | None = dict) -> Any | None:
    """The JSON in ``path``, or ``None`` when it is missing or damaged.

    A damaged file (not JSON, or not of type ``expect``) is reported through
    ``warn`` in one line and treated as missing; the caller's next
    :func:`write_json` replaces it.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        if warn:
            warn(f"cannot read {path} ({exc.strerror}); treated as missing")
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        if warn:
            why = "empty" if not raw.strip() else f"damaged: {getattr(exc, 'msg', exc)}"
            warn(f"{path} is {why}; treated as missing")
        return None
    if expect is not None and not isinstance(data, expect):
        if warn:
            kinds = expect if isinstance(expect, tuple) else (expect,)
            warn(f"{path} does not hold a JSON {' or '.join(k.__name__ for k in kinds)}; "
                 "treated as missing")
        return None
    return data


# --- disk errors ------------------------------------------------------------------------

_HINTS = {
    errno.ENOSPC: ("no space left on the device", "free some space and run the command again "
                   "(build/ can always be removed)"),
    errno.EDQUOT: ("disk quota exceeded", "free some space and run the command again"),
    errno.EROFS: ("read-only file system", "run from a writable checkout"),
    errno.EACCES: ("permission denied", "check who owns the folder (a command once run as root?)"),
    errno.EPERM: ("operation not permitted", "check who owns the folder (a command once run as root?)"),
    errno.EIO: ("input/output error", "check the disk"),
}


def disk_error(exc: OSError, what: str) -> StateError:
    """One line for an :class:`OSError`: what failed, why, and what to do."""
    reason, hint = _HINTS.get(exc.errno or 0, (exc.strerror or str(exc), ""))
    # the file a full disk was noticed on may be the source of a copy: ``what`` says where
    named = exc.filename and exc.errno not in (errno.ENOSPC, errno.EDQUOT)
    where = f" ({exc.filename})" if named and str(exc.filename) not in what else ""
    return StateError(f"{what}: {reason}{where}", hint)


@contextlib.contextmanager
def disk_errors(what: str) -> Iterator[None]:
    """Turn an :class:`OSError` raised inside into a :class:`StateError` saying ``what`` failed."""
    try:
        yield
    except StateError:
        raise
    except OSError as exc:
        raise disk_error(exc, what) from exc


# --- signals ----------------------------------------------------------------------------

@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back inside the block; deliver them when it ends.

    For critical sections of a few milliseconds (renames that belong together).
    Only the main thread can change signal handlers; elsewhere the block runs
    as is (a worker thread is not interrupted by signals anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])  # now handled the usual way


# --- fault injection (tests) ------------------------------------------------------------

_passes: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Stop here if ``MPFORGE_FAULT`` says so (see the module docstring); else nothing.

    ``name`` must be one of :data:`FAULT_POINTS` (a ValueError otherwise: a point
    renamed in code but not there would never fire, and its kill test would not kill).
    """
    if name not in FAULT_POINTS:
        raise ValueError(f"fault point {name!r} is not declared in mpforge.core.environment.FAULT_POINTS")
    fault = environment().fault
    if fault is None or fault.point != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] != fault.nth:
        return
    signal.raise_signal(fault.signum)  # SIGSTOP: a test sends what it wants, then SIGCONT


# --- processes --------------------------------------------------------------------------

def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (leftovers of dead processes may be removed)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
