"""The invoke tasks: thin wrappers that turn library results into output.

This is the only module that prints to the user and decides exit codes.
Library errors (:class:`~mpforge.core.errors.MpforgeError`) become one red line
plus a hint and exit status 1; a traceback is shown only with ``--debug``
(or ``MPFORGE_DEBUG=1``). ``tasks.py`` at the top of the checkout and the
``mpforge`` console script both serve :data:`ns`.

Why one long module: it is the task table. Each task is a thin wrapper (its options'
help texts, one call into the library, its rendering), and the wrapper that renders
errors, takes the checkout's lock and resolves the shared options is shared by all of
them; newer tasks live in modules of their own (``cli/farm.py``, ``cli/debug.py``,
``cli/mirror.py``, ``cli/verify.py``) and are added to :data:`ns` at the end.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json as json_lib
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Collection, Context, Exit, ParseError, Task
from invoke import task as invoke_task

from mpforge.bench import build as build_bench
from mpforge.bench import record as record_mod
from mpforge.bench import testsuite as test_bench
from mpforge.bench.gc import host as gc_host
from mpforge.bench.targets import BenchTarget
from mpforge.bench.targets import require as require_targets
from mpforge.ci import generate as cigen_mod
from mpforge.ci import run as ci_mod
from mpforge.cli import render
from mpforge.cli.options import SharedOptions, shared_options
from mpforge.cli.render import bench as render_bench
from mpforge.cli.render import ci as render_ci
from mpforge.cli.render import sizes as render_sizes
from mpforge.cli.render import tests as render_tests
from mpforge.cli.ui import Console
from mpforge.core import lock as lock_mod
from mpforge.core.errors import ConfigError, MpforgeError, ReportError, Terminated
from mpforge.core.project import TREE_DIR, Project, find_root
from mpforge.core.state import disk_error
from mpforge.device import deploy as deploy_mod
from mpforge.device import emulate as emulate_mod
from mpforge.device import repl as device_mod
from mpforge.device.labgrid import is_farm_spec
from mpforge.firmware import dist as dist_mod
from mpforge.firmware import doctor as doctor_mod
from mpforge.firmware import size as size_mod
from mpforge.firmware.deplibs import build_deplibs
from mpforge.firmware.pipeline import BuildOptions, Pipeline
from mpforge.firmware.selection import list_boards, select, split_names
from mpforge.testing import testrun as testrun_mod
from mpforge.tree import authoring
from mpforge.tree.fetch import fetch as fetch_tree
from mpforge.tree.git import Git
from mpforge.tree.patches import PatchQueue, PatchState

#: The only short flags, the same on every task that has the option. ``-h`` stays help
#: everywhere; ``--debug``, ``--ccache`` and the rest have none (invoke would otherwise
#: hand out first letters, so ``-h`` was ``--ccache`` in one task and ``-d`` meant
#: ``--debug`` in one and ``--device`` in another).
SHORT_FLAGS = {"port": "p", "ports": "p", "board": "b", "boards": "b", "device": "d",
               "jobs": "j", "verbose": "v", "k": "k"}


class MpforgeTask(Task):
    """An invoke task whose short flags come from :data:`SHORT_FLAGS` only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["auto_shortflags"] = False
        kwargs["help"] = {"no-wait": _NO_WAIT_HELP, **(kwargs.get("help") or {})}
        super().__init__(*args, **kwargs)
        if "no_wait" not in self.argspec(self.body).parameters:
            self.help.pop("no-wait", None)

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


def task(*args: Any, **kwargs: Any) -> Any:
    """``invoke.task`` with :class:`MpforgeTask` (fixed short flags)."""
    return invoke_task(*args, klass=MpforgeTask, **kwargs)


_HELP = {
    "verbose": "show every command run and chatter",
    "debug": "show a traceback on errors",
    "dry-run": "print the commands that would change things, change nothing",
    "mirror": "base URL or folder laid out like https://github.com/ (or env MPFORGE_MIRROR)",
}


def helps(*common: str, **specific: str) -> dict[str, str]:
    """Help texts for a task: its own plus the named shared ones."""
    return {**{name: _HELP[name] for name in common}, **specific}


def _debugging(kwargs: dict[str, Any]) -> bool:
    """``--debug``, or ``MPFORGE_DEBUG`` on (read leniently: this runs while reporting an error)."""
    from mpforge.core.environment import environment
    return bool(kwargs.get("debug")) or environment(strict=False).debug is True


#: tasks that change nothing in the checkout: they never take its lock
READ_ONLY_TASKS = {"doctor", "size", "ci_generate", "repl", "run", "mirror"}  # mirror: writes DIR only
_NO_WAIT_HELP = "if another mpforge command is using this checkout, fail at once instead of waiting"
_WAIT_HELP = ("seconds to wait for a board (a serial port, a labgrid place) someone else is using "
              "(default 0: fail at once, naming the holder)")


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM ends a command like Ctrl-C: the programs it started are asked to stop too
    (a terminal's Ctrl-C reaches them by itself, a SIGTERM to mpforge does not)."""
    for children in Path("/proc/self/task").glob("*/children"):
        try:
            pids = children.read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGTERM)
            except (OSError, ValueError):
                pass
    raise Terminated(signum)


def reports_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors, disk errors, Ctrl-C and SIGTERM into one clear line and an exit status;
    hold the checkout's lock while a command that changes it runs.

    Exit statuses: 1 for an error, 130 for Ctrl-C, 143 for SIGTERM (128 + the signal,
    as a shell reports them). Tasks not in :data:`READ_ONLY_TASKS` hold the checkout's
    lock (:mod:`mpforge.core.lock`) unless run with ``--dry-run`` (or ``patch --status``),
    and get a ``--no-wait`` option: fail at once when another command holds it.
    """
    locking = body.__name__ not in READ_ONLY_TASKS

    @functools.wraps(body)
    def wrapper(c: Context, *args: Any, **kwargs: Any) -> Any:
        no_wait = bool(kwargs.pop("no_wait", False))
        held = None
        on_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if on_main else None
        if on_main and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C: KeyboardInterrupt
        try:
            if locking and not kwargs.get("dry_run") and not kwargs.get("status"):
                try:
                    root = find_root()
                except ConfigError:
                    root = None  # the task itself says so
                if root is not None:
                    command = " ".join([body.__name__.replace("_", "-"), *sys.argv[2:]]).strip()
                    held = lock_mod.hold_for_command(
                        root, command, wait=not no_wait,
                        on_wait=lambda line: Console(stream=sys.stderr).warn(line))
            # under the lock: an explicit --mirror is remembered only by the command that runs
            _resolve_shared_options(c, kwargs)
            return body(c, *args, **kwargs)
        except MpforgeError as exc:
            if _debugging(kwargs):
                raise
            console = Console(stream=sys.stderr)
            console.error(exc.one_line())
            if exc.details:
                console.block(exc.details, to_err=True)
            raise Exit(code=1) from None
        except OSError as exc:  # a full disk, a read-only file system...: one line as well
            if _debugging(kwargs):
                raise
            Console(stream=sys.stderr).error(disk_error(exc, f"{body.__name__} failed").one_line()
                                             + " (--debug shows where)")
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
            lock_mod.release_held()
            if held is not None:
                held.release()
            if on_main:
                signal.signal(signal.SIGTERM, previous)

    if locking:  # --no-wait: a keyword the task's own signature does not have
        sig = inspect.signature(body)
        params = list(sig.parameters.values())
        params.append(inspect.Parameter("no_wait", inspect.Parameter.KEYWORD_ONLY, default=False,
                                        annotation=bool))
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper


#: the options every task shares, resolved in one place (:mod:`mpforge.cli.options`)
SHARED_OPTIONS = ("verbose", "debug", "dry_run", "mirror", "jobs", "ccache", "ccache_remote")


#: the shared options of the task running now (resolved by its :func:`reports_errors` wrapper)
_current: contextvars.ContextVar[SharedOptions] = contextvars.ContextVar("mpforge_shared_options")


def _resolve_shared_options(c: Context, kwargs: dict[str, Any]) -> None:
    """Resolve the shared options once per task: its flag, else the ``MPFORGE_*``
    environment, else invoke's configuration (``invoke.yaml``), else the default; the
    mirror also from what the checkout remembers (``--mirror`` is remembered, ``--mirror
    none`` forgets). The task's own parameters are replaced by the resolved values, and
    the options it has no parameter for (``jobs`` and ``ccache`` of the builds ``test``,
    ``deploy`` or ``ci`` make) reach its builds through :func:`_build_options`."""
    given = {name: kwargs[name] for name in SHARED_OPTIONS if name in kwargs}
    options = shared_options(c, **given)
    _current.set(options)
    for name in given:
        kwargs[name] = getattr(options, name)
    if options.warnings:
        console = Console(stream=sys.stderr)
        for warning in options.warnings:
            console.warn(warning)


def _options() -> SharedOptions:
    """The running task's shared options (see :func:`_resolve_shared_options`)."""
    return _current.get()


def _build_options(**overrides: Any) -> BuildOptions:
    """How the running task's builds are made: its shared ``jobs`` and ``ccache``
    (``ccache`` on means the project's setting: on when ccache is installed)."""
    options = _options()
    return BuildOptions(**{"jobs": options.jobs, "ccache": None if options.ccache else False,
                           "ccache_remote": options.ccache_remote, **overrides})


def _pipeline(project: Project, mirror: str | None, *, keep_going: bool = False) -> Pipeline:
    """The one build path for this command, with the task's build options."""
    return Pipeline(project, mirror, keep_going=keep_going, options=_build_options())


def _project(verbose: bool = False, dry_run: bool = False) -> Project:
    """The checkout, reporting through a :class:`Console` (rich, or plain in CI)."""
    return Project.discover(Console(verbose=verbose), dry_run=dry_run)


def _console(project: Project) -> Console:
    """The console :func:`_project` handed the project (the library sees a
    :class:`~mpforge.core.report.Reporter`; the tasks also draw tables)."""
    assert isinstance(project.console, Console)
    return project.console


def _write_json(path: str | None, data: object) -> None:
    """``--json FILE``: the figures as JSON (nothing when no file was asked for)."""
    if path:
        Path(path).write_text(json_lib.dumps(data, indent=2) + "\n")


@task(help=helps("mirror", "verbose", "debug", "dry-run",
                 port="port(s) whose submodules to fetch: NAME, A,B or all"))
@reports_errors
def fetch(c: Context, port: str = "unix", mirror: str | None = None, verbose: bool = False,
          debug: bool = False, dry_run: bool = False) -> None:
    """Check out micropython/ at its pin plus the submodules the port needs."""
    project = _project(verbose, dry_run)
    chosen = select(project, port)
    report = fetch_tree(project, chosen.ports, mirror)
    console = _console(project)
    state = "cloned" if report.cloned else "checked out" if report.checked_out else "already"
    console.ok(f"micropython/ {state} at {report.pin[:12]}")
    if report.submodules_initialised:
        console.ok(f"submodules: {', '.join(report.submodules_initialised)}")
    if report.local_changes:
        console.warn(f"micropython/ has local changes in {len(report.local_changes)} file(s); kept "
                     "(`invoke patch --status` shows whether they are the series)")


@task(help=helps("verbose", "debug", "dry-run", revert="restore the pristine tree",
                 status="list each patch's state",
                 new="write micropython/'s edits as a new last patch patches/00NN-NEW.patch",
                 message="the new patch's message (first line: its subject; default: its name)",
                 refresh="fold micropython/'s edits to the files of this patch (name or number) into it"))
@reports_errors
def patch(c: Context, revert: bool = False, status: bool = False, new: str | None = None,
          message: str | None = None, refresh: str | None = None, verbose: bool = False,
          debug: bool = False, dry_run: bool = False) -> None:
    """Apply patches/series onto micropython/ (crash-safe, idempotent); --new/--refresh write patches."""
    project = _project(verbose, dry_run)
    queue = PatchQueue(project.patches_dir, project.tree, project.executor)
    console = _console(project)
    if new or refresh:
        if sum(map(bool, (new, refresh, revert, status))) > 1 or (message and not new):
            raise Exit("patch: --new [--message] and --refresh go alone", code=1)
        pin = Git(project.executor).gitlink(project.root, TREE_DIR) if project.tree_is_submodule \
            else Git(project.executor).head(project.tree)
        try:
            authored = authoring.new_patch(queue, pin, new, message) if new else \
                authoring.refresh_patch(queue, pin, refresh or "")
        finally:
            for note in queue.notes:
                console.warn(note)
        if authored.skipped:
            console.warn(f"left out (build outputs, submodules): {', '.join(authored.skipped[:5])}")
        dry = "dry run: would have " if dry_run else ""
        console.ok(f"{dry}{'written' if new else 'refreshed'} patches/{authored.patch} "
                   f"({', '.join(authored.files)}); micropython/ is pin + series")
        return
    if status:
        busy = lock_mod.CheckoutLock(project.root, "patch --status").busy()
        states = queue.status()
        shown = [(p.name, "in progress (another command is running)"
                  if busy and state == PatchState.INTERRUPTED else state.value, p.sha256[:12])
                 for p, state in states]
        for note in queue.notes:
            console.warn(note)
        console.table("patch series", ["patch", "state", "sha256"], shown)
        kinds = {state for _, state in states}
        if busy:
            console.warn(f"another mpforge command is using this checkout ({busy}): "
                         "these states may be changing")
        elif PatchState.INTERRUPTED in kinds:
            console.warn("an interrupted `invoke patch` left micropython/ half-done: "
                         "`invoke patch` completes it (or `invoke patch --revert` undoes it)")
        elif PatchState.HALF in kinds:
            console.warn("micropython/ is half-patched (an interrupted run of an older mpforge): "
                         "`invoke patch` completes it, `invoke patch --revert` undoes it")
        if kinds & {PatchState.CONFLICTING, PatchState.INTERRUPTED, PatchState.HALF}:
            raise Exit(code=1)
        return
    try:
        done = queue.revert() if revert else queue.apply()
    finally:
        for note in queue.notes:
            console.warn(note)
    dry = "dry run: would have " if dry_run else ""
    if revert:
        console.ok(f"{dry}reverted {len(done)} patch(es)" if done
                   else "nothing to revert: the series is not applied")
        return
    console.ok(f"{dry}applied {len(done)} patch(es): {', '.join(p.name for p in done)}" if done
               else "patch series already applied")


@task(help=helps("mirror", "verbose", "debug", "dry-run",
                 port="port whose dependency libraries to build", clean="rebuild from scratch"))
@reports_errors
def deplibs(c: Context, port: str = "unix", clean: bool = False, mirror: str | None = None,
            verbose: bool = False, debug: bool = False, dry_run: bool = False) -> None:
    """Build a port's dependency libraries (axtls, libffi, ...) out of tree."""
    project = _project(verbose, dry_run)
    target = select(project, port).target()
    fetch_tree(project, [target.port], mirror)  # the deplibs do not depend on the patch series
    results = build_deplibs(target, clean)
    if not results:
        _console(project).ok(f"port {port} has no deplibs")
    for result in results:
        _console(project).ok(f"{result.name}: {result.prefix.relative_to(project.root)}")


@task(help=helps("mirror", "verbose", "debug", "dry-run",
                 port="port(s) to build: NAME or A,B (default unix)",
                 board="board of a board port, 'all' for every board in the tree, or 'list' "
                       "to list them (with the --board-dir / app board, if given)",
                 all="build every port (and every board)",
                 app="freeze this app folder's .py files and packages into the firmware; its "
                     "mpforge.toml may name modules, board_dir, c_modules, make_vars",
                 board_dir="build the board described in this folder outside the tree "
                           "(dist/<port>-<folder name>/)",
                 jobs="job budget shared by all makes (default: CPU count)",
                 clean="start from empty build dirs",
                 strict="a target skipped for a missing toolchain fails the run",
                 ccache="compile through ccache when it is installed (default on; "
                        "MPFORGE_CCACHE=0 turns it off for every task)",
                 ccache_remote="a shared compile cache, ccache's remote_storage: redis://HOST:PORT, "
                               "redis+unix:/PATH, http://HOST/PATH/, file:/PATH, with |read-only ... "
                               "(MPFORGE_CCACHE_REMOTE)",
                 variant="build the port's variant NAME ([variants] in its data: coverage, debug) "
                         "into dist/<target>-NAME/"))
@reports_errors
def build(c: Context, port: str = "unix", board: str | None = None, all: bool = False,
          jobs: int = 0, clean: bool = False, strict: bool = False, ccache: bool = True,
          ccache_remote: str | None = None, mirror: str | None = None, verbose: bool = False, debug: bool = False,
          dry_run: bool = False, app: str | None = None, board_dir: str | None = None,
          variant: str | None = None) -> None:
    """Fetch, patch, build deplibs and compile ports into dist/<target>/."""
    project = _project(verbose, dry_run)
    chosen = select(project, port, board if board != "list" else None, all=all, board_dir=board_dir, app=app,
                    variant=variant)
    pipeline = _pipeline(project, mirror, keep_going=chosen.many)
    if board == "list":  # the boards a build can take: the tree's (patched), and the folder given
        if not dry_run:
            pipeline.tree(chosen.ports)
        for each in chosen.ports:
            _console(project).table(f"boards of {each.name}", ["board", "folder", "note"],
                                  list_boards(project, each, board_dir, app))
        return
    targets = chosen.targets(pipeline)
    options = _build_options(clean=clean)
    with render.BuildProgress(_console(project), targets) as on_change:
        report = pipeline.build(targets, options, on_change)
    if chosen.many:
        if not render.show_matrix(_console(project), report, strict=strict):
            raise Exit(code=1)
        return
    if dry_run:
        _console(project).ok("dry run: nothing was changed")
        return
    result = report.results[0].built
    assert result is not None  # a single target's failure was raised
    result.ccache = report.ccache
    render.show_build(_console(project), result, project.root)


@task(help=helps(
    "mirror", "verbose", "debug",
    port="port whose test suite to run (default unix)",
    jobs="shards run in parallel (default: CPU count)",
    junit="write JUnit XML here", json="write the results as JSON here",
    k="only tests whose path matches (substring or glob)",
    device="run on a board: /dev/ttyACM0, auto, rfc2217://host:port, execpty:<command>, or labgrid "
           "places: labgrid:PLACE, labgrid:TAG=VALUE[,...] (--jobs N places, one shard each)",
    wait=_WAIT_HELP,
    emulator="run on emulated boards, one per shard (stmhal, minimal: qemu)",
    retry_failed="re-run failed tests up to N times on the same shard; one that then "
                 "passes is 'flaky' and does not fail the run (default 0)",
    no_exp_cache="compute every expected output with CPython (default: cached in build/test-cache)",
    coverage="run the port's coverage variant and write Cobertura XML, HTML and coverage per patch "
             "(gcovr) into --coverage-out",
    coverage_out="where --coverage writes its reports (default build/coverage)",
    emit="the runner's code emitter: bytecode (default) or native (its own baseline)",
    heapsize="the interpreter's heap size for every test, e.g. 32k (its own baseline)",
    dirs="test folders to run instead of the port's, e.g. thread (their own baseline)"))
@reports_errors
def test(c: Context, port: str = "unix", jobs: int = 0, junit: str | None = None,
         json: str | None = None, k: str | None = None, device: str | None = None,
         emulator: str | None = None, retry_failed: int = 0, no_exp_cache: bool = False,
         coverage: bool = False, coverage_out: str = "build/coverage", emit: str | None = None,
         heapsize: str | None = None, dirs: str | None = None, wait: int = 0,
         mirror: str | None = None, verbose: bool = False, debug: bool = False) -> None:
    """Run the tree's test suite (sharded) on the built port; exit 0 only without unexpected failures."""
    project = _project(verbose)
    pipeline = _pipeline(project, mirror)
    report = testrun_mod.run_for_target(pipeline, select(project, port).target(),
                                        jobs=jobs or os.cpu_count() or 1, pattern=k, device=device,
                                        emulator=emulator, retries=retry_failed,
                                        exp_cache=not no_exp_cache,
                                        coverage=project.root / coverage_out if coverage else None,
                                        run=testrun_mod.RunOptions(emit or "", heapsize or "",
                                                                   tuple(split_names(dirs or ""))),
                                        wait=wait)
    unwritten = None
    try:  # the result files first: whatever else happens, they are there
        render_tests.write_outputs(report, junit, json)
    except MpforgeError as exc:
        unwritten = exc
    render_tests.show_test_report(_console(project), report)
    if unwritten is not None:
        _console(project).error(unwritten.one_line())
    if not report.ok or unwritten is not None:
        raise Exit(code=1)


@task(help=helps("verbose", "debug", fix="apt-get install what the ports lack (as root)",
                 port="port(s) whose needs decide the exit status: NAME, A,B or all",
                 packages="only print the Debian packages the port(s) need, on one line"))
@reports_errors
def doctor(c: Context, fix: bool = False, port: str = "unix", packages: bool = False,
           verbose: bool = False, debug: bool = False) -> None:
    """What the ports need (toolchains, tools, Debian packages, autoconf macros), and what is missing."""
    project = _project(verbose)
    chosen = select(project, port).ports
    ports = [p.name for p in chosen]
    if packages:
        print(" ".join(project.catalog.debian_packages(ports)))
        return
    diagnosis = doctor_mod.diagnose(project, chosen)
    if fix:
        installed = doctor_mod.fix(project, diagnosis)
        if installed:
            _console(project).ok(f"installed: {' '.join(installed)}")
            diagnosis = doctor_mod.diagnose(project, chosen)
    rows = [(ch.kind, ch.name, ch.version or "missing", ", ".join(ch.ports),
             ch.note or ("" if ch.found else ch.provider)) for ch in diagnosis.checks]
    _console(project).table(f"what {', '.join(ports)} need{'s' if len(ports) == 1 else ''}",
                          ["kind", "name", "found", "needed by", "install / note"], rows)
    settings = _options()  # what this (and the next) command uses
    for line in settings.describe():
        if line.startswith("mirror:") and not settings.mirror:
            line += "; clones go to https://github.com/ (`--mirror BASE` once to use one)"
        _console(project).info(line)
    missing = diagnosis.missing_by_port()
    if missing:
        for name, pieces in missing.items():
            _console(project).error(f"missing for {name}: {', '.join(pieces)}")
        apt = diagnosis.missing_packages()
        hint = (f"sudo apt-get update && sudo apt-get install {' '.join(apt)} (or `invoke doctor --fix` as root)"
                if apt else "install what is shown in the table")
        _console(project).error(hint)
        raise Exit(code=1)
    _console(project).ok("everything the requested ports need is installed")


_CHECK_HELP = "exit 1 when a figure misses its target (or the run covers no target)"
_RECORD_HELP = "also write the figures and the run (commit, host, date, command) to bench-results/"


def _command_line() -> str:
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


def _bench_results(project: Project, name: str, figures: dict[str, Any], targets: list[BenchTarget],
                   *, json: str | None, record: bool, check: bool) -> None:
    """After a benchmark's tables: its result file(s), then ``--check``'s verdict.

    ``--json F`` and ``--record`` (``bench-results/<name>.json``) write the figures with
    the run that produced them (:func:`mpforge.bench.record.provenance`); ``--check`` raises
    :class:`~mpforge.core.errors.TargetMissed` when a target was missed, so the task
    exits 1 (the files are written first: a missed target is a figure worth keeping)."""
    paths = [Path(json)] if json else []
    if record:
        paths.append(record_mod.record_path(project, name))
    if paths:
        data = {"run": record_mod.provenance(project, _command_line()), **figures}
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_json(str(path), data)
            _console(project).ok(f"figures written to {path}")
    if check:
        require_targets(targets, name)


@task(name="bench-gc", help=helps(
    "mirror", "verbose", "debug",
    heaps="heap sizes, comma separated (default 8M,512M; host only)",
    thresholds="thresholds, comma separated; off = none, auto/D = gc.threshold(auto=D) "
               "(host: sizes, default off,1M; emulated: "
               "fractions of the heap, default off,heap/2,heap/3,heap/4,heap/8)",
    rounds="200-byte objects to churn through per run (default 250000: ~50 MB; host only)",
    repeat="runs per cell (host default 3, median reported; emulated default 2: "
           "the runs must give the same instruction counts)",
    callgrind="count instructions with valgrind (default on; --no-callgrind to skip; host only)",
    callgrind_rounds="objects per callgrind run (default 50000; host only)",
    feature="the patch to compare against its absence (default gc-alloc-threshold); "
            "'unpatched' is the series minus only that patch",
    emulator="measure on the port's emulated board instead (qemu: PYBV10_QEMU, instructions "
             "counted with -icount, heap figures over the raw REPL)",
    workloads="emulated: churn,pidigits,float,chaos (the default) or some of them",
    upstream="emulated: also measure this later upstream commit as a reference "
             "(default 93e353e; none to skip)",
    plot="emulated: write a PNG of largest free block and cost against the threshold "
         "(needs the plot extra: pip install -e '.[plot]')",
    json="also write the figures (and the run: commit, host, date, command) to this JSON file",
    record=_RECORD_HELP + "bench-gc.json (emulated: bench-gc-qemu.json)",
    check=_CHECK_HELP,
    jobs="parallel make jobs for the builds"))
@reports_errors
def bench_gc(c: Context, heaps: str = "8M,512M", thresholds: str | None = None,
             rounds: int = 250_000, repeat: int = 0, callgrind: bool = True,
             callgrind_rounds: int = 50_000, feature: str = "gc-alloc-threshold",
             emulator: str | None = None, workloads: str = "churn,pidigits,float,chaos",
             upstream: str = "93e353e", plot: str | None = None,
             json: str | None = None, record: bool = False, check: bool = False, jobs: int = 0,
             mirror: str | None = None, verbose: bool = False, debug: bool = False) -> None:
    """Benchmark the GC threshold: on the host (RSS, CPU, instructions) or an emulated board."""
    project = _project(verbose)
    if emulator:
        _bench_gc_emulated(project, emulator, thresholds, repeat or 2, feature, workloads,
                           upstream, plot, json, record, check, mirror)
        return
    if plot:
        raise Exit("--plot draws the emulated figures: add --emulator qemu", code=1)
    repeat = repeat or 3
    report = gc_host.bench_gc(
        project, heaps=[gc_host.parse_size(h) for h in heaps.split(",")],
        thresholds=[gc_host.parse_threshold(t) for t in (thresholds or "off,1M").split(",")],
        rounds=rounds, repeat=repeat, callgrind=callgrind, callgrind_rounds=callgrind_rounds,
        feature=feature, mirror=mirror, options=_build_options())
    render_bench.show_gc_host(_console(project), report, repeat)
    _bench_results(project, "bench-gc", report.as_dict(), report.targets, json=json, record=record,
                   check=check)


def _bench_gc_emulated(project: Project, emulator: str, thresholds: str | None, repeat: int,
                       feature: str, workloads: str, upstream: str, plot: str | None,
                       json: str | None, record: bool, check: bool, mirror: str | None) -> None:
    """``bench-gc --emulator``: the figures of :mod:`mpforge.bench.gc.emulated` as tables,
    JSON, PNG."""
    from mpforge.bench.gc import emulated, guest

    report = emulated.bench_emulated(
        project, emulator=emulator, workloads=guest.parse_workloads(workloads),
        divisors=(guest.parse_thresholds(thresholds) if thresholds
                  else list(guest.DEFAULT_DIVISORS)),
        repeat=repeat, feature=feature,
        upstream=None if upstream.lower() in ("", "none", "off") else upstream,
        mirror=mirror, options=_build_options())
    console = _console(project)
    render_bench.show_gc_emulated(console, report)
    if plot:
        render_bench.write_plot(report, Path(plot))
        console.ok(f"plot: {plot}")
    _bench_results(project, "bench-gc-qemu", report.as_dict(), report.targets, json=json,
                   record=record, check=check)


@task(name="bench-build", help=helps(
    "mirror", "verbose", "debug",
    port="ports: NAME, A,B or all (default all)",
    board="'all' (default) or one board name",
    jobs="job budget (default: CPU count)",
    json="also write the figures (and the run: commit, host, date, command) to this JSON file",
    record=_RECORD_HELP + "bench-build.json",
    check=_CHECK_HELP))
@reports_errors
def bench_build(c: Context, port: str = "all", board: str = "all", jobs: int = 0,
                json: str | None = None, record: bool = False, check: bool = False,
                mirror: str | None = None, verbose: bool = False, debug: bool = False) -> None:
    """Benchmark the build matrix against the same targets built one at a time (both from clean)."""
    project = _project(verbose)
    jobs = jobs or os.cpu_count() or 1
    pipeline = _pipeline(project, mirror, keep_going=True)
    targets = select(project, port, board).targets(pipeline)
    result = build_bench.bench_build(pipeline, targets, jobs)
    render_bench.show_build_bench(_console(project), result)
    _bench_results(project, "bench-build", result.as_dict(), result.limits, json=json, record=record,
                   check=check)


@task(name="bench-test", help=helps(
    "mirror", "verbose", "debug", port="port whose suite to time (default unix)",
    jobs="shards (default: CPU count)", k="only tests matching this",
    emulator="time emulated boards (qemu) instead of the host",
    json="also write the figures (and the run: commit, host, date, command) to this JSON file",
    record=_RECORD_HELP + "bench-test.json",
    check=_CHECK_HELP, rounds="rounds of run-tests, cold and warm invoke test (default 3; medians)"))
@reports_errors
def bench_test(c: Context, port: str = "unix", jobs: int = 0, k: str | None = None,
               emulator: str | None = None, json: str | None = None, record: bool = False,
               check: bool = False, rounds: int = 3, mirror: str | None = None, verbose: bool = False,
               debug: bool = False) -> None:
    """Benchmark invoke test (cold and warm) against the tree's run-tests, verdicts compared."""
    project = _project(verbose)
    result = test_bench.bench_test(_pipeline(project, mirror), select(project, port).target(),
                                   jobs or os.cpu_count() or 1, k, emulator, rounds)
    render_bench.show_test_bench(_console(project), result)
    _bench_results(project, "bench-test", result.as_dict(), result.limits, json=json, record=record,
                   check=check)


@task(help=helps("verbose", "debug",
                 baseline="compare with this saved size baseline (JSON)",
                 save="save the current sizes as a baseline to this file",
                 json="write sizes (and deltas) as JSON to this file",
                 markdown="write the table as Markdown to this file (for CI comments)"))
@reports_errors
def size(c: Context, baseline: str | None = None, save: str | None = None,
         json: str | None = None, markdown: str | None = None, verbose: bool = False,
         debug: bool = False) -> None:
    """Show text/data/bss of every built target, and the change against a baseline."""
    project = _project(verbose)
    base = size_mod.load_baseline(Path(baseline)) if baseline else None
    rows = size_mod.compare(size_mod.current_sizes(project.dist_root), base)
    with_base = base is not None
    _console(project).table("sizes" + (f" vs {baseline}" if baseline else ""),
                          render_sizes.columns(with_base), render_sizes.table_rows(rows, with_base))
    if save:
        _write_json(save, {"targets": {r.target: r.size for r in rows}})
        _console(project).ok(f"baseline saved to {save}")
    _write_json(json, render_sizes.to_json(rows))
    if markdown:
        Path(markdown).write_text(render_sizes.to_markdown(rows, with_base))


@task(help=helps(
    "mirror", "verbose", "debug",
    ports="ports: NAME, A,B or all (default unix)",
    boards="boards of board ports: NAME, A,B or all (default: each port's default)",
    out="folder for summary.json, junit.xml, size.md, summary.md (default ci-out)",
    size_baseline="compare sizes with this baseline (from `invoke size --save`)",
    jobs="job budget (default: CPU count)",
    retry_failed="re-run failed tests up to N times; one that then passes is "
                 "'flaky' and does not fail the run (default 1)",
    coverage="run the host suites on their coverage variant; Cobertura, HTML and coverage per "
             "patch into OUT/coverage/<port>/",
    tests="all (every suite the ports' data declares: host, its variants, emulated boards) or none"))
@reports_errors
def ci(c: Context, ports: str = "unix", boards: str | None = None, out: str = "ci-out",
       size_baseline: str | None = None, jobs: int = 0, retry_failed: int = 1, coverage: bool = False,
       tests: str = "all",
       mirror: str | None = None, verbose: bool = False, debug: bool = False) -> None:
    """The whole pipeline (doctor, fetch, patch, build, test, size) with CI result files."""
    project = _project(verbose)
    console = _console(project)
    try:
        chosen = select(project, ports, boards)
    except MpforgeError as exc:  # a typo in --ports: still the result files CI uploads, red
        report = ci_mod.CiReport(steps=[ci_mod.Step("select", "failed", 0.0, exc.one_line())])
    else:
        report = ci_mod.run_ci(chosen, mirror=mirror, options=_build_options(),
                               size_baseline=Path(size_baseline) if size_baseline else None,
                               retries=retry_failed, coverage=Path(out) / "coverage" if coverage else None,
                               tests=tests,
                               progress=lambda targets: render.BuildProgress(console, targets))
    try:  # the result files first: whatever else happens, they are there
        render_ci.write_outputs(report, Path(out))
    except ReportError as exc:
        report.output_error = exc.one_line()
    for suite in report.tests:
        render_tests.show_test_report(console, suite)
    render_ci.show_ci(console, report)
    if report.output_error:
        console.error(report.output_error)
    if not report.ok:
        failed = [s.name for s in report.steps if s.status == "failed"]
        if report.output_error:
            failed.append("result files")
        _console(project).error(f"ci failed: {', '.join(failed)} (results in {out}/)")
        raise Exit(code=1)
    _console(project).ok(f"ci passed (results in {out}/)")


@task(help=helps(
    "mirror", "verbose", "debug", "dry-run",
    port="port to flash (default stmhal)", board="board (default: the port's default)",
    device="the board's serial port (/dev/ttyACM0, auto, ...): bootloader entry, esptool, banner check "
           "(a labgrid place is refused unless it can be flashed from here)",
    file="flash this file instead of dist/<target>/",
    runner="use this runner: dfu-util, pydfu, esptool, teensy, cc3200",
    erase="erase the flash first (runners that can)", baud="serial speed for esptool",
    yes="do not ask for confirmation on a terminal",
    dfu_serial="flash the DFU device with this serial number (as `dfu-util -l` shows it), no other",
    repl="then open the board's REPL in this terminal (needs --device; Ctrl-] leaves)",
    app="the firmware with this app folder frozen in (as `invoke build --app`)",
    board_dir="the board described in this folder outside the tree (as `invoke build --board-dir`)",
    wait=_WAIT_HELP))
@reports_errors
def deploy(c: Context, port: str = "stmhal", board: str | None = None, device: str | None = None,
           file: str | None = None, runner: str | None = None, erase: bool = False,
           baud: int = 115200, yes: bool = False, dfu_serial: str | None = None,
           mirror: str | None = None, verbose: bool = False, debug: bool = False,
           dry_run: bool = False, repl: bool = False, app: str | None = None,
           board_dir: str | None = None, wait: int = 0) -> None:
    """Flash a board: the built firmware, checked first, with the port's runner."""
    if repl and not device:
        raise Exit("deploy --repl opens the REPL on the board's serial port: pass --device", code=1)
    project = _project(verbose)
    console = _console(project)
    if device and is_farm_spec(device):
        deploy_mod.check_farm_place(device, wait=wait, root=project.root, note=console.warn)
    target = select(project, port, board, board_dir=board_dir, app=app).target()
    # a dry run changes nothing on disk: no build, and not even the remembered mirror
    plan = deploy_mod.plan_deploy(project, target, file=file, runner_name=runner, device=device,
                                  erase=erase, mirror=None if dry_run else mirror,
                                  baud=baud, dfu_serial=dfu_serial, dry_run=dry_run,
                                  build_options=_build_options())
    for line in deploy_mod.describe_plan(plan):
        console.info(line)
    if dry_run:
        console.ok("dry run: nothing was flashed, built or changed")
        return
    if not yes and sys.stdin.isatty():
        answer = input(f"Flash {plan.artifact.name} to {plan.target}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise Exit("not flashed", code=1)
    with render.flash_progress(console, plan.artifact.name) as on_progress:
        deploy_mod.flash_board(project, target, plan, device, on_progress)
    banner = deploy_mod.await_banner(project, plan, device)
    if banner:
        first = next((row for row in banner.splitlines() if "MicroPython" in row), "").strip()
        console.ok(f"flashed {plan.target}; the board says: {first}")
    else:
        console.ok(f"flashed {plan.target}")
    if repl and device:
        _attach_repl(console, device, "deploy --repl")


@task(help=helps(
    "mirror", "verbose", "debug",
    port="port to run emulated (default stmhal: the PYBV10_QEMU board; also minimal)",
    pty="print the pty and keep the emulator running until Ctrl-C, for other clients",
    app="freeze this app folder into the emulated board (as `invoke build --app`)"))
@reports_errors
def emulate(c: Context, port: str = "stmhal", pty: bool = False, app: str | None = None,
            mirror: str | None = None, verbose: bool = False, debug: bool = False) -> None:
    """Build the port's emulated board if needed, start QEMU and attach to its REPL (Ctrl-] leaves)."""
    project = _project(verbose)
    console = _console(project)
    if not pty and not sys.stdin.isatty():
        raise Exit("invoke emulate attaches a terminal: run it on one, or pass --pty", code=1)
    pipeline = _pipeline(project, mirror)
    chosen = select(project, port)
    # the emulated board may come from the patch series: prepare the tree before naming it
    pipeline.tree(chosen.ports)
    if len(chosen.ports) != 1:
        raise ConfigError("invoke emulate runs one port's emulated board", "give one --port")
    plan = emulate_mod.plan(project, chosen.ports[0])
    target = select(project, port, plan.target.board, app=app).target() if app else plan.target
    result = pipeline.build_one(target)
    command = plan.command.replace("{dist}", str(result.dist_dir))
    with emulate_mod.running(command, executor=project.executor) as session:
        if pty:
            console.ok(f"{plan.target.name} running under QEMU; its REPL is on {session.pty} "
                       "(Ctrl-C stops it)")
            print(session.pty, flush=True)
            try:
                session.process.wait()
            except KeyboardInterrupt:
                pass
            return
        console.ok(f"{plan.target.name} running under QEMU on {session.pty}; Ctrl-] leaves")
        emulate_mod.attach_terminal(session.pty)


@task(name="ci-generate", help=helps(
    "verbose", "debug", provider="github or gitlab",
    output="write here (default: stdout)",
    runner="container (default: debian:bookworm, apt-get) or shell (self-hosted runners "
           "with the toolchains installed: no image, no apt-get)",
    with_xc16="XC16's install folder on the runner: generates the pic16bit job (sets XC16_DIR)",
    farm="add a device-test job on a labgrid farm: the places matching this spec "
         "(labgrid:board=PYBV10_QEMU), a runner tagged 'labgrid', LG_COORDINATOR as a variable"))
@reports_errors
def ci_generate(c: Context, provider: str = "github", output: str | None = None,
                runner: str = "container", with_xc16: str | None = None, farm: str | None = None,
                verbose: bool = False, debug: bool = False) -> None:
    """Render a CI pipeline (one job per port) from the ports and toolchains data."""
    project = _project(verbose)
    settings = cigen_mod.Settings(provider, runner, {"xc16": with_xc16} if with_xc16 else {}, farm or "")
    pipeline = cigen_mod.plan(project, settings)
    text = cigen_mod.render_plan(pipeline)
    notes = Console(stream=sys.stderr)  # stdout may be the pipeline itself
    for port, reason in pipeline.left_out.items():
        notes.warn(f"{port} left out: {reason}")
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
        notes.ok(f"{output}: {len(pipeline.jobs) + (1 if pipeline.farm else 0)} jobs ({provider}, {runner} runners)")
    else:
        sys.stdout.write(text)


_DEVICE_HELP = ("the board: /dev/ttyACM0, auto (the one pyboard found by USB id; default), "
                "rfc2217://host:port, execpty:<command> (the emulated pyboard's pty: "
                "`invoke emulate --pty`), or a labgrid place: labgrid:PLACE, labgrid:TAG=VALUE")


def _farm_root() -> Path | None:
    """The checkout, whose local farm (`invoke farm --start`) serves ``labgrid:`` specs when
    neither LG_COORDINATOR nor the configuration names a coordinator; None outside one."""
    try:
        return find_root()
    except ConfigError:
        return None


def _attach_repl(console: Console, device: str, what: str, wait: int = 0) -> None:
    """The board's REPL in this terminal until Ctrl-]; what connecting did, with -v."""
    if not sys.stdin.isatty():
        raise Exit(f"{what} attaches a terminal: run it on one "
                   "(`invoke run FILE` runs a script without one)", code=1)
    lock_mod.release_held()  # deploy --repl: what is left changes nothing in the checkout
    with device_mod.connect(device, note=console.detail, farm_note=console.warn, wait=wait,
                           root=_farm_root()) as session:
        console.ok(f"{device}: at the REPL ({session.recovery.found}); Ctrl-] leaves")
        device_mod.terminal(session)


@task(help=helps("verbose", "debug", device=_DEVICE_HELP, wait=_WAIT_HELP))
@reports_errors
def repl(c: Context, device: str = "auto", wait: int = 0, verbose: bool = False, debug: bool = False) -> None:
    """The board's REPL in this terminal, whatever state it was left in (Ctrl-] leaves)."""
    _attach_repl(Console(verbose=verbose), device, "invoke repl", wait)


@task(help=helps(
    "verbose", "debug", file="the script to run on the board", device=_DEVICE_HELP,
    reset="soft-reset the board first, for a fresh interpreter (default; --no-reset keeps "
          "its state)",
    timeout="interrupt the script after this many seconds (default 0: never)", wait=_WAIT_HELP))
@reports_errors
def run(c: Context, file: str, device: str = "auto", reset: bool = True, timeout: int = 0,
        wait: int = 0, verbose: bool = False, debug: bool = False) -> None:
    """Run a script on the board over the raw REPL, its output as it comes; exit 1 if it raises."""
    if file in ("-h", "--help"):  # invoke's parser gives a positional argument any next word
        _task_help("run")
    console = Console(verbose=verbose, stream=sys.stderr)  # stdout is the script's alone
    code = device_mod.read_script(file)
    with device_mod.connect(device, note=console.detail, farm_note=console.warn, wait=wait,
                           root=_farm_root()) as session:
        result = device_mod.run_script(session, code, _write_stdout, soft_reset=reset,
                                       timeout=timeout or None)
    if result.error:
        sys.stderr.write(result.error)
        sys.stderr.flush()
    if result.exit_code:
        raise Exit(code=result.exit_code)


def _task_help(name: str) -> None:
    """Invoke's own help for task ``name``, then exit 0 (what ``-h`` does for a task
    without a positional argument)."""
    from invoke import Program

    binary = "mpforge" if "mpforge" in Path(sys.argv[0]).parts[-2:] else "invoke"
    Program(namespace=ns, name="mpforge", binary=binary).run([binary, "--help", name])


def _write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


ns = Collection(fetch, patch, deplibs, build, doctor, test, deploy, emulate, size, ci, ci_generate,
                bench_gc, bench_build, bench_test, repl, run)
ns.add_task(__import__("mpforge.cli.farm", fromlist=["farm"]).farm)  # its module imports this one
ns.add_task(__import__("mpforge.cli.debug", fromlist=["debug"]).debug)  # its module imports this one
ns.add_task(__import__("mpforge.cli.mirror", fromlist=["mirror"]).mirror)  # the same
ns.add_task(__import__("mpforge.cli.verify", fromlist=["verify"]).verify)  # the same
ns.add_task(__import__("mpforge.cli.perf", fromlist=["perf"]).perf)  # the same
