"""How a program is started, waited for, timed out and stopped; and the registry of every
program mpforge started (see :mod:`mpforge.core.executor`, the one way in, which uses these)."""

from __future__ import annotations

import io
import os
import re
import resource
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping

PathArg = str | os.PathLike[str]

#: How long a program started with :meth:`~mpforge.core.executor.Executor.start` has to exit
#: after SIGTERM before :meth:`~mpforge.core.executor.Running.stop` kills it.
STOP_GRACE = 5.0

#: util-linux's setpriv (on every Debian system): sets the parent-death signal, then execs
_SETPRIV = shutil.which("setpriv")
#: every program started and not yet reaped, but those started with ``outlive=True``
_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


def spawn(args: list[str], *, outlive: bool = False, **popen: object) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(args, **popen)``, tied to mpforge's life and registered (see the
    module docstring), unless ``outlive``: then in a session of its own, and neither."""
    if outlive:
        return subprocess.Popen(args, start_new_session=True, **popen)  # type: ignore[call-overload]
    argv = [_SETPRIV, "--pdeathsig", "TERM", "--", *args] if _SETPRIV else args
    process: subprocess.Popen[bytes] = subprocess.Popen(argv, **popen)  # type: ignore[call-overload]
    with _live_lock:
        _live.add(process)
    return process


def _forget(process: subprocess.Popen[bytes]) -> None:
    """``process`` was reaped: out of the registry."""
    with _live_lock:
        _live.discard(process)


def _registered() -> list[subprocess.Popen[bytes]]:
    """The registry's programs, read without its lock (a signal handler may call this while
    the main thread holds it)."""
    while True:
        try:
            return list(_live)
        except RuntimeError:  # another thread changed it meanwhile: read again
            continue


def signal_all(signum: int) -> list[int]:
    """Send ``signum`` to every program mpforge started that still runs; their pids.
    Safe inside a signal handler: it waits for nothing and takes no lock."""
    sent = []
    for process in _registered():
        if process.returncode is None:
            try:
                os.kill(process.pid, signum)
                sent.append(process.pid)
            except ProcessLookupError:
                pass
    return sent


def stop_all(grace: float = STOP_GRACE) -> list[int]:
    """Stop (:func:`stop_process`) every registered program that still runs; their pids.
    The task layer calls this when a task ends, however it ends: nothing it started is left."""
    stopped = []
    for process in _registered():
        if process.poll() is None:
            stop_process(process, grace)
            stopped.append(process.pid)
        _forget(process)
    return stopped


def stop_process(process: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> bool:
    """Stop ``process``: SIGTERM, up to ``grace`` s for it to exit, then SIGKILL; reaped
    either way. The one stop sequence (:meth:`Running.stop` and the executor's own
    clean-up use it). Returns True when SIGKILL was needed. A process that has already
    exited is only reaped."""
    if process.poll() is not None:
        _forget(process)
        return False
    process.terminate()
    try:
        process.wait(grace)
        return False
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return True
    finally:
        _forget(process)


def run_captured(args: list[str], cwd: PathArg | None, env: Mapping[str, str] | None,
                  timeout: float | None, pass_fds: tuple[int, ...]) -> tuple[int, str, bool]:
    """Run to completion; return (exit code, output, timed out)."""
    proc = spawn(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.STDOUT, pass_fds=pass_fds)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # as subprocess.run does on a timeout: SIGKILL, then what it wrote
        output, _ = proc.communicate()
        return -9, output.decode("utf-8", "replace"), True
    finally:
        if proc.returncode is None:  # Ctrl-C while it ran: the program goes too
            stop_process(proc, grace=0)
        _forget(proc)
    return proc.returncode, output.decode("utf-8", "replace"), False


class _Deadline:
    """Calls ``kill`` after ``timeout`` s (None: never), unless :meth:`cancel` came first,
    and remembers that it did: whether a run timed out is this flag (and the kill's
    status), never a guess from the return code alone."""

    def __init__(self, kill: Callable[[], None], timeout: float | None) -> None:
        self.fired = False
        self._kill = kill
        self._lock = threading.Lock()
        self._over = False
        self._timer = threading.Timer(timeout, self._fire) if timeout else None
        if self._timer:
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if not self._over:
                self.fired = True
                self._kill()

    def cancel(self) -> None:
        """The process has ended: no kill from now on."""
        with self._lock:
            self._over = True
        if self._timer:
            self._timer.cancel()

    def timed_out(self, returncode: int) -> bool:
        """The run ended because of this deadline (it fired and the program died of SIGKILL)."""
        return self.fired and returncode == -signal.SIGKILL


def _kill_pid(pid: int) -> None:
    """SIGKILL by pid, for a child that ``os.wait4`` (not Popen) reaps."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:  # already gone
        pass


def run_measured(args: list[str], cwd: PathArg | None, env: Mapping[str, str] | None,
                  timeout: float | None, pass_fds: tuple[int, ...] = ()
                  ) -> tuple[int, str, resource.struct_rusage | None, bool]:
    """Run to completion; return (exit code, output, the child's own rusage, timed out).

    The child is reaped with ``os.wait4`` so its CPU time is its own, not the
    sum over every child this process ever had.
    """
    proc = spawn(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.STDOUT, pass_fds=pass_fds)
    deadline = _Deadline(lambda: _kill_pid(proc.pid), timeout)
    try:
        output = proc.stdout.read() if proc.stdout else b""
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait again
    finally:
        deadline.cancel()
        if proc.returncode is None:  # interrupted before the child was reaped
            stop_process(proc, grace=0)
        _forget(proc)
        if proc.stdout:
            proc.stdout.close()
    return proc.returncode, output.decode("utf-8", "replace"), usage, deadline.timed_out(proc.returncode)


def run_streamed(args: list[str], cwd: PathArg | None, env: Mapping[str, str] | None,
                  timeout: float | None, on_line: Callable[[str], None]) -> tuple[int, str, bool]:
    """Run to completion, handing each output line to ``on_line`` as it comes;
    return (exit code, output, timed out).

    A carriage return ends a line too: progress meters redraw one line with ``\\r``.
    """
    proc = spawn(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.STDOUT)
    deadline = _Deadline(proc.kill, timeout)
    output: list[str] = []
    pending = ""
    try:
        stdout = proc.stdout
        assert isinstance(stdout, io.BufferedReader)
        while chunk := stdout.read1(4096):
            text = chunk.decode("utf-8", "replace")
            output.append(text)
            pending += text
            *complete, pending = re.split(r"\r\n|\r|\n", pending)
            for line in complete:
                on_line(line)
        if pending:
            on_line(pending)
        proc.wait()
    finally:
        deadline.cancel()
        stop_process(proc, grace=0)  # on_line raised, or Ctrl-C: the program goes too
        if proc.stdout:
            proc.stdout.close()
    return proc.returncode, "".join(output), deadline.timed_out(proc.returncode)
