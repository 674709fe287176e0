"""One mpforge command at a time changes a checkout.

Commands that change ``micropython/``, ``build/`` or ``dist/`` (fetch, patch,
deplibs, build, test, deploy, ci, the benchmarks) hold an exclusive
``fcntl.flock`` on ``build/.lock`` for as long as they run. A second command
waits, saying for whom (the lock file holds the PID and the command of its
holder), or with ``--no-wait`` fails in one line (:class:`~mpforge.core.errors.LockBusy`).

``flock`` belongs to the open file: the kernel drops it when the process ends,
however it ends (SIGKILL included), so a crashed command never leaves the
checkout locked, and the lock file itself is never removed (removing it would
let two commands lock two different files).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from mpforge.core.errors import LockBusy
from mpforge.core.state import disk_errors

LOCK_NAME = ".lock"


class CheckoutLock:
    """The lock of the checkout at ``root`` (``root/build/.lock``), held by ``command``."""

    def __init__(self, root: Path, command: str) -> None:
        self.path = Path(root) / "build" / LOCK_NAME
        self.command = command
        self.fd: int | None = None

    def _open(self) -> int:
        with disk_errors("cannot create the checkout's lock file"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it (``pid 1234: build``)."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            text = ""
        return text or "another process"

    def acquire(self, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> None:
        """Take the lock; wait for it (telling ``on_wait`` once) unless ``wait`` is false."""
        fd = self._open()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self.holder()
                if not wait:
                    raise LockBusy(f"another mpforge command is using this checkout ({holder})",
                                   "wait for it to finish, or run again without --no-wait to wait") from None
                if on_wait:
                    on_wait(f"waiting for another mpforge command to finish ({holder}) ...")
                fcntl.flock(fd, fcntl.LOCK_EX)  # Ctrl-C interrupts the wait
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}: {self.command}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def busy(self) -> str | None:
        """Who holds the lock right now, or None (for read-only commands that do not wait)."""
        if self.fd is not None:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return self.holder()
        finally:
            os.close(fd)
        return None

    def __enter__(self) -> CheckoutLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
