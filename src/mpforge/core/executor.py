"""The one place where mpforge starts external programs.

Everything that runs a command (git, make, gcc probes, dfu-util, ...) goes
through :class:`Executor`. That gives, for free and in one place:

* argv lists only, never a shell string;
* every command logged, shell-quoted, before it runs;
* a dry-run mode that logs and returns a successful empty :class:`Result`;
* optional teeing of the full output into a log file;
* :class:`~mpforge.core.errors.CommandFailed` errors that carry the tail of the
  output, and :class:`~mpforge.core.errors.MissingTool` when the program does not
  exist at all.

Tests substitute the executor (see ``tests/test_executor.py``) or run it for
real with ``sys.executable -c ...`` as the stand-in tool.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.core.errors import CommandFailed, MissingTool

#: How many trailing output lines an error carries.
TAIL_LINES = 20


@dataclass
class Result:
    """What a finished command left behind."""

    argv: list[str]
    returncode: int = 0
    stdout: str = ""
    duration: float = 0.0
    dry_run: bool = False
    #: with ``measure=True``: the process's own CPU seconds (user + system).
    #: (Not its peak RSS: on Linux a child's ru_maxrss includes the parent's
    #: image before exec; a benchmark reads VmHWM from /proc/self/status.)
    cpu_seconds: float = 0.0
    #: the command ran past its ``timeout`` and was killed (``returncode`` is then the
    #: kill's status, -9): a timeout is said here, never encoded in the return code
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def __bool__(self) -> bool:  # ``if not ex.run(...):`` reads naturally
        return self.ok

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.stdout.rstrip().splitlines()[-lines:])


def quote(argv: Sequence[str]) -> str:
    """The command as a user could paste it into a shell."""
    return shlex.join(str(a) for a in argv)


@dataclass
class Executor:
    """Runs commands; see the module docstring.

    :param log: called with each quoted command line (and nothing else).
    :param dry_run: when true, commands are only logged.
    """

    log: Callable[[str], None] = lambda line: None
    dry_run: bool = False
    env: Mapping[str, str] = field(default_factory=dict)

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        log_file: Path | None = None,
        timeout: float | None = None,
        what: str | None = None,
        hint: str = "",
        mutates: bool = True,
        measure: bool = False,
        pass_fds: tuple[int, ...] = (),
        on_line: Callable[[str], None] | None = None,
    ) -> Result:
        """Run ``argv`` and return its :class:`Result`.

        Output (stdout and stderr merged) is captured; with ``log_file`` it is
        also appended there. ``check`` raises :class:`CommandFailed` on a
        non-zero exit, naming ``what`` (defaults to the program name).
        ``mutates=False`` marks read-only queries (``git rev-parse``, version
        probes) that still run under dry-run, so a dry run can plan.
        ``measure=True`` records the process's own CPU time (``os.wait4``),
        for benchmarks. ``on_line`` is called with each output line as it
        arrives (progress of a long run).
        """
        args = [os.fspath(a) for a in argv]
        where = f" (in {cwd})" if cwd else ""
        self.log(f"$ {quote(args)}{where}")
        if self.dry_run and mutates:
            return Result(args, dry_run=True)
        full_env = None
        if env or self.env:
            full_env = {**os.environ, **self.env, **(env or {})}
        search_path = (full_env or os.environ).get("PATH")
        if os.path.sep not in args[0] and shutil.which(args[0], path=search_path) is None:
            raise MissingTool(args[0], f"program not found: {args[0]}",
                              hint or "install it or add its folder to PATH; `invoke doctor` lists what is missing")
        start = time.monotonic()
        usage = None
        timed_out = False
        try:
            if on_line is not None:
                code, output = _run_streamed(args, cwd, full_env, timeout, on_line)
            elif measure:
                code, output, usage = _run_measured(args, cwd, full_env, timeout, pass_fds)
            else:
                proc = subprocess.run(
                    args, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    timeout=timeout, check=False, pass_fds=pass_fds,
                )
                output = proc.stdout.decode("utf-8", "replace")
                code = proc.returncode
        except FileNotFoundError as exc:
            raise MissingTool(args[0], f"program not found: {args[0]}",
                              hint or "install it or add its folder to PATH") from exc
        except subprocess.TimeoutExpired as exc:
            output = (exc.stdout or b"").decode("utf-8", "replace")
            code = -9  # subprocess kills the program on a timeout
            timed_out = True
            output += f"\n[mpforge: timed out after {timeout:g} s]"
        result = Result(args, code, output, time.monotonic() - start, timed_out=timed_out)
        if usage is not None:
            result.cpu_seconds = usage.ru_utime + usage.ru_stime
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with log_file.open("a", encoding="utf-8") as fh:
                fh.write(f"$ {quote(args)}{where}\n{output}")
                if not output.endswith("\n"):
                    fh.write("\n")
        if check and not result.ok:
            name = what or Path(args[0]).name
            status = f"timed out after {timeout:g} s" if timed_out else f"exited with status {code}"
            raise CommandFailed(f"{name} {status}: {quote(args)}", hint,
                                result.tail(), code)
        return result

    def output(self, argv: Sequence[str | os.PathLike[str]], **kwargs) -> str:
        """Run a read-only query and return its stripped output.

        With ``check=False`` a failing query returns ``""`` (never its error text).
        """
        kwargs.setdefault("mutates", False)
        result = self.run(argv, **kwargs)
        return result.stdout.strip() if result.ok else ""


def _run_measured(args: list[str], cwd, env, timeout: float | None, pass_fds=()):
    """Run to completion; return (exit code, output, the child's own rusage).

    The child is reaped with ``os.wait4`` so its CPU time is its own, not the
    sum over every child this process ever had.
    """
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=pass_fds)
    timer = threading.Timer(timeout, proc.kill) if timeout else None
    if timer:
        timer.start()
    try:
        output = proc.stdout.read() if proc.stdout else b""
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        if timer:
            timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait again
    if proc.stdout:
        proc.stdout.close()
    if timer and not timer.is_alive() and proc.returncode < 0 and timeout:
        raise subprocess.TimeoutExpired(args, timeout, output)
    return proc.returncode, output.decode("utf-8", "replace"), usage


def _run_streamed(args: list[str], cwd, env, timeout: float | None,
                  on_line: Callable[[str], None]) -> tuple[int, str]:
    """Run to completion, handing each output line to ``on_line`` as it comes.

    A carriage return ends a line too: progress meters redraw one line with ``\\r``.
    """
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    timer = threading.Timer(timeout, proc.kill) if timeout else None
    if timer:
        timer.start()
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
        if timer:
            timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(output)
