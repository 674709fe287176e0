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

Three ways in, for three kinds of program:

* :meth:`Executor.run` runs a command to its end and returns its :class:`Result`.
  A command that runs past its ``timeout`` is killed and says so in
  :attr:`Result.timed_out` (never only in a return code).
* :meth:`Executor.output` is a read-only query whose output is the answer: it
  raises :class:`CommandFailed` when the query fails, so a failure can never be
  read as empty output. :meth:`Executor.query` is the same query for a caller that
  has an answer to "the query failed": it returns None then, never ``""``.
* :meth:`Executor.start` starts a program that runs beside mpforge (QEMU, the
  ``execpty:`` program of a device spec, later a gdb server) and returns a
  :class:`Running` handle. :meth:`Running.stop` is the one way such a program is
  stopped: SIGTERM, ``grace`` seconds to exit, then SIGKILL.

Every program started any of these ways is in one registry until it is reaped:
:func:`signal_all` (the task layer's SIGTERM handler) and :func:`stop_all` (the end of
every task) reach them all, so no caller needs to find mpforge's children another way.
And each is tied to mpforge's life: started through util-linux's ``setpriv
--pdeathsig TERM``, it gets SIGTERM from the kernel when mpforge dies, even by SIGKILL,
where no handler runs (a ``make`` so stopped lets the compile it waits for finish and
starts no other). Only a program meant to outlive the command (a farm's servers, started
with ``outlive=True``) is in neither.

Tests substitute the executor (see ``tests/core/test_executor.py``) or run it for
real with ``sys.executable -c ...`` as the stand-in tool.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from mpforge.core.errors import CommandFailed, MissingTool
from mpforge.core.processes import (
    STOP_GRACE,
    run_captured,
    run_measured,
    run_streamed,
    signal_all,
    spawn,
    stop_all,
    stop_process,
)

#: How many trailing output lines an error carries.
TAIL_LINES = 20

#: where a started program's input comes from (``inherit``: mpforge's own stdin)
StdinChoice = Literal["devnull", "pipe", "inherit"]
#: where a started program's output (stdout and stderr, merged) goes: ``pipe`` for the
#: caller to read (:attr:`Running.stdout`), ``log`` appends it to ``log_file``,
#: ``inherit`` shares mpforge's own stdout and stderr
StdoutChoice = Literal["devnull", "pipe", "log", "inherit"]

PathArg = str | os.PathLike[str]

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


@dataclass(eq=False)
class Running:
    """A program started with :meth:`Executor.start`, running beside mpforge.

    ``process`` is None under dry-run: the program was logged, not started, and
    every method is a no-op that says so (:attr:`dry_run`, ``returncode`` None).
    Stop it with :meth:`stop` (idempotent), or use the handle as a context manager,
    which stops it on leaving the block::

        with executor.start(["qemu-system-arm", ...], stdout="pipe") as qemu:
            ...
    """

    argv: list[str]
    process: subprocess.Popen[bytes] | None
    what: str
    #: SIGTERM was not enough: the last :meth:`stop` had to kill the program
    killed: bool = False
    _log: IO[str] | None = field(default=None, repr=False)

    @property
    def dry_run(self) -> bool:
        """True when the program was not started (dry run)."""
        return self.process is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def stdout(self) -> IO[bytes] | None:
        """The program's merged output, with ``stdout="pipe"``; else None."""
        return self.process.stdout if self.process else None

    @property
    def stdin(self) -> IO[bytes] | None:
        """The program's input, with ``stdin="pipe"``; else None."""
        return self.process.stdin if self.process else None

    @property
    def returncode(self) -> int | None:
        """Its exit status once it has ended (negative: killed by that signal); None while
        it runs, and under dry-run."""
        return self.process.returncode if self.process else None

    def poll(self) -> int | None:
        """The exit status if the program has ended, else None (always None under dry-run)."""
        return self.process.poll() if self.process else None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the program to end by itself (``subprocess.TimeoutExpired`` after
        ``timeout`` s); its exit status. Under dry-run there is nothing to wait for: None."""
        if self.process is None:
            return None
        return self.process.wait(timeout)

    def stop(self, grace: float = STOP_GRACE) -> int | None:
        """Stop the program (see :func:`stop_process`) and close what mpforge holds of it
        (its pipes, the log file). Idempotent: a second call, or a call after the program
        ended by itself, only returns the exit status (None under dry-run)."""
        if self.process is None:
            return None
        if stop_process(self.process, grace):
            self.killed = True
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except OSError:  # a pipe the program left half-written
                    pass
        if self._log is not None and not self._log.closed:
            how = f"killed after {grace:g} s" if self.killed else "stopped"
            self._log.write(f"[mpforge: {self.what} {how}, status {self.process.returncode}]\n")
            self._log.close()
        return self.process.returncode

    def __enter__(self) -> Running:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


@dataclass
class Executor:
    """Runs commands; see the module docstring.

    :param log: called with each quoted command line (and nothing else).
    :param dry_run: when true, commands are only logged.
    """

    log: Callable[[str], None] = lambda line: None
    dry_run: bool = False
    env: Mapping[str, str] = field(default_factory=dict)

    def _environment(self, env: Mapping[str, str] | None) -> dict[str, str] | None:
        """The environment a command gets: None (mpforge's own) unless something is added."""
        if env or self.env:
            return {**os.environ, **self.env, **(env or {})}
        return None

    @staticmethod
    def _require(program: str, env: Mapping[str, str] | None, hint: str, cwd: PathArg | None = None) -> None:
        """:class:`MissingTool` unless ``program`` is found on the PATH, or is a path (from
        ``cwd`` when relative) to a file that exists. (A program started through setpriv
        that does not exist would be setpriv's exit status 127: this says it first.)"""
        if os.path.sep in program:
            if not Path(cwd or ".", program).exists():
                raise MissingTool(program, f"program not found: {program}",
                                  hint or "install it or add its folder to PATH")
            return
        search_path = (env or os.environ).get("PATH")
        if shutil.which(program, path=search_path) is None:
            raise MissingTool(program, f"program not found: {program}",
                              hint or "install it or add its folder to PATH; `invoke doctor` lists what is missing")

    def run(
        self,
        argv: Sequence[PathArg],
        *,
        cwd: PathArg | None = None,
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
        non-zero exit or a timeout, naming ``what`` (defaults to the program name).
        ``timeout`` kills the command after that many seconds: the result says
        ``timed_out`` (whichever of the three ways below it ran).
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
        full_env = self._environment(env)
        self._require(args[0], full_env, hint, cwd)
        start = time.monotonic()
        usage = None
        try:
            if on_line is not None:
                code, output, timed_out = run_streamed(args, cwd, full_env, timeout, on_line)
            elif measure:
                code, output, usage, timed_out = run_measured(args, cwd, full_env, timeout, pass_fds)
            else:
                code, output, timed_out = run_captured(args, cwd, full_env, timeout, pass_fds)
        except FileNotFoundError as exc:
            raise MissingTool(args[0], f"program not found: {args[0]}",
                              hint or "install it or add its folder to PATH") from exc
        if timed_out:
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

    def output(
        self,
        argv: Sequence[PathArg],
        *,
        cwd: PathArg | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        what: str | None = None,
        hint: str = "",
        mutates: bool = False,
    ) -> str:
        """Run a read-only query and return its stripped output.

        A query that fails (non-zero exit, timeout) raises :class:`CommandFailed`:
        its output is never read as the answer. A caller that can go on without the
        answer uses :meth:`query`.
        """
        return self.run(argv, cwd=cwd, env=env, timeout=timeout, what=what, hint=hint,
                        mutates=mutates).stdout.strip()

    def query(
        self,
        argv: Sequence[PathArg],
        *,
        cwd: PathArg | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        hint: str = "",
    ) -> str | None:
        """Run a read-only query: its stripped output, or None when it failed (non-zero
        exit, timeout): a failure is never ``""``, so it cannot pass for an empty answer.
        A program that does not exist is still :class:`MissingTool`."""
        result = self.run(argv, cwd=cwd, env=env, timeout=timeout, hint=hint,
                          check=False, mutates=False)
        return result.stdout.strip() if result.ok else None

    def start(
        self,
        argv: Sequence[PathArg],
        *,
        cwd: PathArg | None = None,
        env: Mapping[str, str] | None = None,
        log_file: Path | None = None,
        what: str | None = None,
        hint: str = "",
        pass_fds: tuple[int, ...] = (),
        stdin: StdinChoice = "devnull",
        stdout: StdoutChoice = "devnull",
        outlive: bool = False,
    ) -> Running:
        """Start ``argv`` to run beside mpforge and return its :class:`Running` handle.

        The command is logged like :meth:`run`'s (and, with ``log_file``, written
        there, followed by the program's output when ``stdout="log"``). Under
        dry-run nothing starts: the handle's :attr:`Running.dry_run` says so.
        A program that does not exist is :class:`MissingTool` (``hint`` says what
        to do). ``stdin`` and ``stdout`` choose where the program reads and writes
        (stderr always goes with stdout). Stop the program with
        :meth:`Running.stop`, or start it in a ``with`` block. ``outlive=True`` is for a
        program meant to run on after this command (a farm's server): in a session of its
        own, not tied to mpforge's life, and not stopped when the task ends.
        """
        args = [os.fspath(a) for a in argv]
        name = what or Path(args[0]).name
        if stdout == "log" and log_file is None:
            raise ValueError("start(stdout='log') needs a log_file")
        where = f" (in {cwd})" if cwd else ""
        self.log(f"$ {quote(args)}{where}")
        if self.dry_run:
            return Running(args, None, name)
        full_env = self._environment(env)
        self._require(args[0], full_env, hint, cwd)
        log: IO[str] | None = None
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log = log_file.open("a", encoding="utf-8")
            log.write(f"$ {quote(args)}{where}\n")
            log.flush()
        out: int | IO[str] | None = {"devnull": subprocess.DEVNULL, "pipe": subprocess.PIPE,
                                     "log": log, "inherit": None}[stdout]
        try:
            process = spawn(
                args, outlive=outlive, cwd=cwd, env=full_env, pass_fds=pass_fds,
                stdin={"devnull": subprocess.DEVNULL, "pipe": subprocess.PIPE, "inherit": None}[stdin],
                stdout=out, stderr=None if stdout == "inherit" else subprocess.STDOUT)
        except FileNotFoundError as exc:
            if log is not None:
                log.close()
            raise MissingTool(args[0], f"program not found: {args[0]}",
                              hint or "install it or add its folder to PATH") from exc
        except BaseException:
            if log is not None:
                log.close()
            raise
        return Running(args, process, name, _log=log)


__all__ = ["STOP_GRACE", "Executor", "Result", "Running", "quote", "signal_all", "stop_all", "stop_process"]
