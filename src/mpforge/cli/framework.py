"""The task machinery: how an invoke task of mpforge is declared, run and reported.

A task is a function in one of the subject modules of :mod:`mpforge.cli.tasks`, declared
with :func:`task`::

    @task(shared=("mirror", "dry_run"), locks=True,
          help={"port": "port(s) whose submodules to fetch"})
    def fetch(c: Context, port: str = "unix") -> None:
        project = checkout()
        ...

What the declaration gives the function, so that no task writes it again:

* **Shared options, injected.** ``--verbose`` and ``--debug`` on every task, plus those it
  names in ``shared`` (``mirror``, ``dry_run``, ``jobs``, ``ccache``, ``ccache_remote``),
  with their help texts. The function does not declare them: they are resolved once
  (flag, ``MPFORGE_*``, ``invoke.yaml``, default; :mod:`mpforge.cli.options`) and read with
  :func:`options`. A task that also wants one as a parameter (its own help text, say) may
  declare it, and gets the resolved value.
* **The checkout's lock, declared.** ``locks=True`` (the default) holds the lock
  (:mod:`mpforge.core.lock`) while the task runs and adds ``--no-wait``; ``locks=False``
  for a task that changes nothing in the checkout; a function of the parsed arguments for a
  task whose read-only-ness depends on them (``patch --status``). ``--dry-run`` never locks.
  A task whose last part only reads ``dist/`` gives the lock up early with
  :func:`release_checkout`; the library never touches it.
* **Errors rendered one way.** A :class:`~mpforge.core.errors.MpforgeError` (a
  :class:`~mpforge.core.errors.UsageError` for a command line that cannot be carried out as
  given) becomes one red line with its hint and exit status 1; an ``OSError`` (a full disk)
  one line too; Ctrl-C 130 and SIGTERM 143, saying what was published. A traceback only
  with ``--debug`` (or ``MPFORGE_DEBUG=1``).
* **Signals and programs.** Around the task, :func:`mpforge.cli.signals.task_signals`; after
  it, however it ended, :func:`mpforge.core.executor.stop_all`: nothing it started is left
  running.
* **Short flags** from :data:`SHORT_FLAGS` only, the same on every task.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import json as json_lib
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invoke import Context, Exit, ParseError, Task
from invoke import task as invoke_task

from mpforge.cli import signals
from mpforge.cli.options import SharedOptions, shared_options
from mpforge.cli.ui import Console
from mpforge.core import executor
from mpforge.core import lock as lock_mod
from mpforge.core.errors import ConfigError, MpforgeError, Terminated
from mpforge.core.project import Project, find_root
from mpforge.core.state import disk_error
from mpforge.device.spec import DeviceSpec, parse_device
from mpforge.firmware import dist as dist_mod
from mpforge.firmware.pipeline import BuildOptions, Pipeline

#: The only short flags, the same on every task that has the option. ``-h`` stays help
#: everywhere; ``--debug``, ``--ccache`` and the rest have none (invoke would otherwise
#: hand out first letters, so ``-h`` was ``--ccache`` in one task and ``-d`` meant
#: ``--debug`` in one and ``--device`` in another).
SHORT_FLAGS = {"port": "p", "ports": "p", "board": "b", "boards": "b", "device": "d",
               "jobs": "j", "verbose": "v", "k": "k"}

#: The shared options: name -> (default, help). Every task has the first two.
SHARED: dict[str, tuple[Any, str]] = {
    "verbose": (False, "show every command run and chatter"),
    "debug": (False, "show a traceback on errors"),
    "dry_run": (False, "print the commands that would change things, change nothing"),
    "mirror": (None, "base URL or folder laid out like https://github.com/ (or env MPFORGE_MIRROR)"),
    "jobs": (0, "job budget shared by all makes (default: CPU count)"),
    "ccache": (True, "compile through ccache when it is installed (default on; "
                     "MPFORGE_CCACHE=0 turns it off for every task)"),
    "ccache_remote": (None, "a shared compile cache, ccache's remote_storage: redis://HOST:PORT, "
                            "redis+unix:/PATH, http://HOST/PATH/, file:/PATH, with |read-only ... "
                            "(MPFORGE_CCACHE_REMOTE)"),
}
ALWAYS = ("verbose", "debug")

NO_WAIT_HELP = "if another mpforge command is using this checkout, fail at once instead of waiting"
WAIT_HELP = ("seconds to wait for a board (a serial port, a labgrid place) someone else is using "
             "(default 0: fail at once, naming the holder)")

#: ``locks=``: always, never, or decided by the parsed arguments
LockRule = bool | Callable[[Mapping[str, Any]], bool]


class MpforgeTask(Task):
    """An invoke task whose short flags come from :data:`SHORT_FLAGS` only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Any]:
        """invoke's, but the help texts stay: invoke pops each as it makes the argument, so
        a second parse of the same task (``invoke run -h`` shows help from inside the
        task) would list the options bare."""
        texts = dict(self.help)
        try:
            return super().get_arguments(ignore_unknown_help)
        finally:
            self.help = texts

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        short = SHORT_FLAGS.get(name)
        if short and short not in opts["names"] and short not in taken_names:
            opts["names"].append(short)
        if name == "jobs":  # checked while parsing: `--jobs abc` is one line, not a traceback
            opts["kind"] = job_count
        return opts


def job_count(text: str) -> int:
    """``--jobs N``: a whole number from 1 to :data:`~mpforge.core.environment.MAX_JOBS`."""
    from mpforge.core.environment import MAX_JOBS
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_JOBS:
        raise ParseError(f"--jobs takes a whole number from 1 to {MAX_JOBS}, not '{text}'")
    return int(value)


@dataclass
class TaskRun:
    """One run of a task: its name, resolved options and the checkout lock it holds."""

    name: str
    options: SharedOptions | None = None
    lock: lock_mod.CheckoutLock | None = field(default=None, repr=False)

    def release(self) -> None:
        """Give the checkout's lock up (idempotent)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None


_run: contextvars.ContextVar[TaskRun] = contextvars.ContextVar("mpforge_task_run")


def options() -> SharedOptions:
    """The running task's shared options, resolved."""
    run = _run.get()
    assert run.options is not None, "options() is read inside a task, after resolution"
    return run.options


def release_checkout() -> None:
    """Give the checkout's lock up before the task ends: for a last part that changes
    nothing in the checkout (an emulator or gdb session that only reads ``dist/``)."""
    _run.get().release()


def task(*, name: str | None = None, help: Mapping[str, str] | None = None,
         shared: Sequence[str] = (), locks: LockRule = True,
         positional: Sequence[str] | None = None) -> Callable[[Callable[..., Any]], MpforgeTask]:
    """Declare an mpforge task (see the module docstring). ``help`` holds the texts of the
    task's own options (a shared option's text may be overridden there)."""
    unknown = [n for n in shared if n not in SHARED]
    if unknown:
        raise ValueError(f"unknown shared option(s): {', '.join(unknown)}")
    names = tuple(dict.fromkeys((*ALWAYS, *shared)))

    def declare(body: Callable[..., Any]) -> MpforgeTask:
        texts = {n.replace("_", "-"): SHARED[n][1] for n in names}
        if locks is not False:
            texts["no-wait"] = NO_WAIT_HELP
        for key, text in (help or {}).items():  # a shared option's own text, under its one key
            texts[key.replace("_", "-") if key.replace("-", "_") in SHARED else key] = text
        wrapper = _wrap(body, names, locks)
        made: MpforgeTask = invoke_task(name=name, help=texts, klass=MpforgeTask,
                                        positional=list(positional) if positional is not None else None
                                        )(wrapper)
        return made

    return declare


def _wrap(body: Callable[..., Any], names: tuple[str, ...], locks: LockRule) -> Callable[..., Any]:
    """The function invoke calls: ``body`` with the shared options, the lock, the signals
    and the error rendering around it."""
    sig = inspect.signature(body)
    own = set(sig.parameters)
    command_name = body.__name__.replace("_", "-")

    @functools.wraps(body)
    def wrapper(c: Context, *args: Any, **kwargs: Any) -> Any:
        no_wait = bool(kwargs.pop("no_wait", False))
        given = {n: kwargs[n] if n in own else kwargs.pop(n) for n in names if n in kwargs}
        run = TaskRun(command_name)
        token = _run.set(run)
        try:
            with signals.task_signals():
                try:
                    if _wants_lock(locks, kwargs, given):
                        run.lock = _take_lock(command_name, no_wait)
                    # under the lock: an explicit --mirror is remembered only by the command that runs
                    run.options = shared_options(c, **given)
                    if run.options.warnings:
                        console = Console(stream=sys.stderr)
                        for warning in run.options.warnings:
                            console.warn(warning)
                    for n in names:
                        if n in own:
                            kwargs[n] = getattr(run.options, n)
                    return body(c, *args, **kwargs)
                except MpforgeError as exc:
                    if _debugging(given):
                        raise
                    console = Console(stream=sys.stderr)
                    console.error(exc.one_line())
                    if exc.details:
                        console.block(exc.details, to_err=True)
                    raise Exit(code=1) from None
                except OSError as exc:  # a full disk, a read-only file system...: one line as well
                    if _debugging(given):
                        raise
                    Console(stream=sys.stderr).error(
                        disk_error(exc, f"{command_name} failed").one_line() + " (--debug shows where)")
                    raise Exit(code=1) from None
                except KeyboardInterrupt as exc:
                    signame, code = ("SIGTERM", 143) if isinstance(exc, Terminated) else ("Ctrl-C", 130)
                    done = dist_mod.published
                    what = ("nothing was published to dist/" if not done else
                            f"dist/ holds complete builds only ({', '.join(done)} published before the stop)")
                    Console(stream=sys.stderr).error(f"interrupted ({signame}); {what}; the next command "
                                                     "finishes or undoes anything half-done")
                    raise Exit(code=code) from None
                finally:
                    executor.stop_all()
                    run.release()
        finally:
            _run.reset(token)

    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    for n in names:
        if n not in own:
            params.append(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=SHARED[n][0]))
    if locks is not False:  # --no-wait
        params.append(inspect.Parameter("no_wait", inspect.Parameter.KEYWORD_ONLY, default=False,
                                        annotation=bool))
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper


def _wants_lock(locks: LockRule, kwargs: Mapping[str, Any], given: Mapping[str, Any]) -> bool:
    if given.get("dry_run"):
        return False
    return locks(kwargs) if callable(locks) else locks


def _take_lock(command_name: str, no_wait: bool) -> lock_mod.CheckoutLock | None:
    try:
        root = find_root()
    except ConfigError:
        return None  # not in a checkout: the task itself says so
    command = " ".join([command_name, *sys.argv[2:]]).strip()
    lock = lock_mod.CheckoutLock(root, command)
    lock.acquire(not no_wait, lambda line: Console(stream=sys.stderr).warn(line))
    return lock


def _debugging(given: Mapping[str, Any]) -> bool:
    """``--debug``, or ``MPFORGE_DEBUG`` on (read leniently: this runs while reporting an error)."""
    from mpforge.core.environment import environment
    return bool(given.get("debug")) or environment(strict=False).debug is True


# --- what the tasks share once running --------------------------------------------------

def checkout(*, dry_run: bool | None = None) -> Project:
    """The checkout, reporting through a :class:`Console` (rich, or plain in CI), with the
    running task's ``--verbose`` and ``--dry-run``."""
    opts = options()
    project = Project.discover(Console(verbose=opts.verbose),
                               dry_run=opts.dry_run if dry_run is None else dry_run)
    # a publish killed between its two renames left the last build aside: put it back
    # (or, under --dry-run, say so) before the command reads dist/
    with contextlib.suppress(OSError):
        for line in dist_mod.tidy_dist(project.dist_root, project.executor.dry_run):
            project.console.info(line)
    return project


def console_of(project: Project) -> Console:
    """The console :func:`checkout` handed the project (the library sees a
    :class:`~mpforge.core.report.Reporter`; the tasks also draw tables)."""
    assert isinstance(project.console, Console)
    return project.console


def device_spec(text: str | None) -> DeviceSpec | None:
    """``--device TEXT`` read once, where the command line is: the library takes the typed
    :class:`~mpforge.device.spec.DeviceSpec` and never parses a text again. A malformed
    value (an empty one too) is one :class:`~mpforge.core.errors.DeviceSpecError` line
    before anything runs; ``None`` for no ``--device``."""
    return None if text is None else parse_device(text)


def build_options(**overrides: Any) -> BuildOptions:
    """How the running task's builds are made: its shared ``jobs``, ``ccache`` (on means
    the project's setting: on when ccache is installed) and ``ccache_remote``."""
    opts = options()
    return BuildOptions(**{"jobs": opts.jobs, "ccache": None if opts.ccache else False,
                           "ccache_remote": opts.ccache_remote, **overrides})


def pipeline(project: Project, *, keep_going: bool = False) -> Pipeline:
    """The one build path for this command, with the task's mirror and build options."""
    return Pipeline(project, options().mirror, keep_going=keep_going, options=build_options())


def write_json(path: str | None, data: object) -> None:
    """``--json FILE``: the figures as JSON (nothing when no file was asked for)."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json_lib.dumps(data, indent=2) + "\n")


def command_line() -> str:
    """The command as typed, for a result file: ``invoke <task> <options>``, with the
    mirror's location and absolute paths left out (a committed file names no machine path)."""
    words: list[str] = []
    for word in sys.argv[1:]:
        if words and words[-1] == "--mirror":
            word = "<mirror>"
        elif word.startswith("--mirror="):
            word = "--mirror=<mirror>"
        elif os.path.isabs(word):
            word = f"<path>/{os.path.basename(word)}"
        words.append(word)
    return "invoke " + shlex.join(words)


def show_help_if_asked(value: str, declared: Task) -> None:
    """invoke's parser gives a positional argument any next word, ``-h`` included: then
    invoke's own help for the ``declared`` task, and exit 0."""
    if value not in ("-h", "--help"):
        return
    from invoke import Collection, Program

    binary = "mpforge" if "mpforge" in Path(sys.argv[0]).parts[-2:] else "invoke"
    Program(namespace=Collection(declared), name="mpforge", binary=binary).run(
        [binary, "--help", declared.name])
