"""``invoke test``: the tree's own test suite, sharded, with known differences.

mpforge does not reimplement the tree's runner: it *drives* it. The test
files (the port's ``[test] dirs``, sorted, as ``tests/run-tests`` selects
them) are split into ``--jobs`` shards and each shard is one ``run-tests``
process given its files explicitly, so every verdict, skip rule and expected
output (``.exp`` file or CPython) is the runner's own. Its ``pass``/``FAIL``/
``skip`` lines are read as they come; for a failure, the ``.exp``/``.out``
files it leaves are read and removed.

On a device (``--device SPEC``), ``run-tests --target pyboard`` is started
through :mod:`mpforge.testing.runner_launch`, which puts mpforge's own ``pyboard``
module (:mod:`mpforge.testing.pyboard_shim`) first, and that runs each test over
:mod:`mpforge.device.transport`: per-test timeouts, soft reset between tests, and an
end of that runner (an ``mpforge-abort:`` line) when the target stops answering.

Boards (:mod:`mpforge.device.boards`): one shard per board. ``--device
'labgrid:board=PYBV10_QEMU' --jobs N`` acquires up to N places of a labgrid farm (fewer
when fewer are free: the report's notes say so) for the whole run, retries included,
and releases them on every way out; ``execpty:`` starts one emulator per shard; a
serial port is one board.

A board that stops answering does not end the run. The test it was running is a
crash (a failure whose reason names the board); the board is brought back
(:meth:`~mpforge.device.boards.Board.recover`: a farm place is power-cycled through its
power resource, an emulator started afresh) and a new runner goes on with the shard's
remaining files. A board that does not come back (or crashes
:data:`MAX_CRASHES_IN_A_ROW` times without a verdict in between) is dropped: its
remaining files are shared among the boards still answering, in further rounds, so
every test runs once. Only with no board left is the run aborted, naming the tests
that did not run.

The firmware (:func:`firmware_of`): before a device run, each board's banner is read
and must name the version of ``dist/<target>/manifest.json`` (for a farm, the target of
the places' ``board`` tag): a mismatch is refused in one line, before any test. The
report names the firmware (artifact, sha256, version, tree fingerprint; for a host run
the tested binary's) and each board (place, exporter, host, banner); each verdict
names its board.

Known differences: ``tests/baselines/<tree version>-cpython<X.Y>.toml`` lists
tests whose expected output the host's CPython cannot produce for this tree.
A listed failure is "known", not a failure; a listed test that passes is
reported as "fixed" so the baseline can shrink. Only unexpected failures fail
the run.

Flaky tests (``retries``, ``invoke test --retry-failed N``): after the first
pass, the files that failed (not the known ones) are run again, each on the
shard it ran on (same runner options, so the same ``--device``), up to ``N``
more times. One that passes on a retry gets the verdict "flaky": it does not
fail the run, but it is named in every report, with its first failure's diff,
so it can be fixed or listed. One that fails every try stays a failure.

The result files (:mod:`mpforge.cli.render.tests`) go through
:mod:`mpforge.cli.render.files`, so whatever a test printed (control bytes, colour
codes) they stay valid XML and JSON.
"""

from __future__ import annotations

import contextlib
import fnmatch
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.core.config import PortDef
from mpforge.core.environment import environment
from mpforge.core.errors import ConfigError, MpforgeError
from mpforge.core.project import Project, Target
from mpforge.device import boards as boards_mod
from mpforge.device.boards import Board
from mpforge.device.spec import DeviceSpec, ExecPty
from mpforge.firmware.pipeline import Pipeline
from mpforge.testing.baselines import RunOptions, baseline_path, load_baseline
from mpforge.testing.coverage import collect, coverage_target, reset_counters
from mpforge.testing.expcache import CACHE_VARIABLE, VERSION_VARIABLE
from mpforge.testing.firmware_check import Firmware, check_boards, device_firmware, firmware_of

# the result types and the runner's markers live in results; these names stay importable from here
from mpforge.testing.results import (  # noqa: F401
    ABORT_MARKER,
    CONNECT_FAILED,
    TestReport,
    TestResult,
    Verdict,
    apply_baseline,
    parse_line,
)
from mpforge.testing.scheduler import SuiteRun, shard  # noqa: F401


def select_tests(tests_dir: Path, dirs: list[str], pattern: str | None = None) -> list[str]:
    """The runner's own selection (``<dir>/*.py`` of each dir, sorted), filtered by ``-k``."""
    tests = sorted(p.relative_to(tests_dir).as_posix()
                   for d in dirs for p in (tests_dir / d).glob("*.py"))
    if pattern:  # a substring or a glob, matched anywhere in the path
        tests = [t for t in tests if fnmatch.fnmatch(t, f"*{pattern}*")]
    return tests


def run_suite(project: Project, *, tests_dir: Path, tests: list[str], jobs: int,
              runner_args: Callable[[int], list[str]], env: dict[str, str],
              python: str = "python3", on_result: Callable[[TestResult], None] | None = None,
              target: str = "unix", launcher: list[str] | None = None,
              known: Mapping[str, str] | None = None, retries: int = 0,
              boards: list[str] | None = None,
              recover: Callable[[int, Callable[[str], None]], bool] | None = None,
              note: Callable[[str], None] | None = None) -> TestReport:
    """Run ``tests`` in ``jobs`` shards of the tree's runner; see the module docstring.

    ``runner_args(i)`` gives shard ``i``'s extra options (``--target``/``--device``).
    ``known`` (test -> reason, from the baseline) is applied to the first pass, so a
    known difference is never retried; then the failures are retried ``retries``
    times at most, each on its own shard (``runner_args`` of the shard it ran on; of a
    board still answering if that one was dropped). ``on_result`` sees the first
    pass's results as they come.

    ``boards`` names each shard's board (verdicts carry it). ``recover(i, note)`` brings
    shard ``i``'s board back after it stopped answering, telling ``note`` how (False:
    drop it); without it,
    a board that stops answering ends the run (``aborted``). ``note`` hears what
    happened to the boards (also kept in the report's ``notes``).
    """
    def runner(index: int, files: list[str], on_line: Callable[[str], None]) -> str:
        done = project.executor.run([python, *(launcher or []), "run-tests", *runner_args(index), *files],
                                    cwd=tests_dir, env=env, check=False, on_line=on_line, mutates=False)
        return done.tail()

    return SuiteRun(tests, jobs, runner, tests_dir=tests_dir, boards=boards, recover=recover,
                    note=note, on_result=on_result).run(known=known, retries=retries, target=target)


@dataclass
class TestPlan:
    __test__ = False
    """What ``invoke test`` needs for a port, from ``ports/<port>.toml`` ``[test]``."""

    dirs: list[str]
    binary: str = ""  # the artifact run-tests runs (MICROPY_MICROPYTHON), for host ports
    target: str = "unix"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_port(cls, port: PortDef, device: bool) -> TestPlan:
        tests = port.test
        if not tests:
            raise ConfigError(f"port '{port.name}' defines no tests",
                              f"add a [test] table to ports/{port.name}.toml")
        key = "device" if device else "host"
        section = tests.device if device else tests.host
        if section is None:
            raise ConfigError(f"port '{port.name}' has no {key} tests",
                              "use --device for a board, or a host port such as unix")
        return cls(list(section.dirs), section.binary, section.target)


def emulator_device(pipeline: Pipeline, port: PortDef, emulator: str) -> ExecPty:
    """Build the port's emulator variant and return the ``execpty:`` spec that boots it."""
    from mpforge.device.emulate import plan

    pipeline.tree([port])  # the emulated board may come from the patch series
    emulation = plan(pipeline.project, port, emulator)
    result = pipeline.build_one(emulation.target)
    return ExecPty(emulation.command.replace("{dist}", str(result.dist_dir)))


def exp_cache_dir(project: Project) -> Path:
    """Where CPython's expected outputs are kept between runs (:mod:`mpforge.testing.expcache`)."""
    return project.root / "build" / "test-cache" / "expected"


def run_for_target(pipeline: Pipeline, target: Target, *, jobs: int, pattern: str | None = None,
                   device: DeviceSpec | None = None, emulator: str | None = None,
                   on_result: Callable[[TestResult], None] | None = None,
                   retries: int = 0, exp_cache: bool = True,
                   coverage: Path | None = None, run: RunOptions | None = None,
                   name: str = "", wait: float = 0.0) -> TestReport:
    """Run the suite of ``target``'s port: on the host (the target built first, through
    ``pipeline``: a no-op when it is current), on ``device``, or on ``jobs`` instances of
    the port's ``emulator``; failures (not known ones) are retried up to ``retries`` times
    on the shard they ran on. ``exp_cache``: CPython's expected outputs come from the
    cache where known (:mod:`mpforge.testing.expcache`); False computes every one.
    ``coverage``: run the port's coverage variant on the host and write its reports into
    that folder (:mod:`mpforge.testing.coverage`). ``run``: the runner's own options
    (:class:`RunOptions`). ``name``: what the report calls the suite (default: the
    port, or the board's run-tests target). ``wait``: seconds to wait for boards (farm
    places, serial ports) someone else holds."""
    project, port = pipeline.project, target.port
    if retries < 0:
        raise ConfigError(f"--retry-failed {retries}: not a number of retries", "use 0 or more")
    if coverage is not None:
        if device is not None or emulator:
            raise ConfigError("--coverage measures the host build", "drop --device/--emulator")
        target = coverage_target(target)
    firmware_target = target.name
    if emulator:
        from mpforge.device.emulate import plan as emulation_plan

        device = emulator_device(pipeline, port, emulator)
        firmware_target = emulation_plan(project, port, emulator).target.name
    plan = TestPlan.for_port(port, device is not None)
    tests_dir = project.tree / "tests"
    python = sys.executable  # the runner, and CPython for expected outputs
    env = {"MICROPY_CPYTHON3": python}
    if exp_cache:
        env.update({CACHE_VARIABLE: str(exp_cache_dir(project)), VERSION_VARIABLE: sys.version})
    # the runner always starts through mpforge's launcher: the cache of expected outputs
    # (host and device runs alike) and, on a device, mpforge's pyboard module
    launcher = ["-m", "mpforge.testing.runner_launch"]
    run = run or RunOptions()
    firmware: Firmware | None = None
    if device is None:  # built first: the build prepares the tree the tests come from
        result = pipeline.build_one(target)
        env["MICROPY_MICROPYTHON"] = str(result.dist_dir / plan.binary)
        if coverage is not None:
            reset_counters(target)
        firmware = firmware_of(project, target.name, plan.binary)
    tests = select_tests(tests_dir, list(run.dirs) or plan.dirs, pattern)
    if not tests:
        raise MpforgeError(f"no tests match {pattern!r}" if pattern else "no tests found",
                           "check -k, or the port's [test] dirs")
    flavours = [*run.flavours(), *([target.variant] if target.variant else [])]
    paths = [p for p in [baseline_path(project, python)] + [baseline_path(project, python, f) for f in flavours]
             if p.exists()]
    known: dict[str, str] = {}
    for path in paths:  # before the run: known differences are not retried
        known.update(load_baseline(path, port.name))
    with contextlib.ExitStack() as stack:
        held: list[Board] = []
        if device is not None:
            held = stack.enter_context(boards_mod.held(device, jobs, wait=wait, note=project.console.warn,
                                                       root=project.root))
            jobs = len(held)
            firmware = device_firmware(project, port, firmware_target,
                                        [b.lease.tags for b in held if b.lease])
            check_boards(project, held, firmware)

        def runner_args(index: int) -> list[str]:
            """Shard ``index``'s options: its board (on devices), then the run's own."""
            board = ["--target", plan.target, "--device", str(held[index].spec)] if held else []
            return [*board, *run.args()]

        def recover(index: int, note: Callable[[str], None]) -> bool:
            """Shard ``index``'s board back at its prompt within 3 silences (5 s at least)."""
            return held[index].recover(note, executor=project.executor,
                                       timeout=max(5.0, 3 * environment().silence))

        project.console.step(f"test {port.name}: {len(tests)} files in {min(jobs, len(tests))} shard(s)"
                             + (f" on {', '.join(b.name for b in held)}" if held and held[0].lease else "")
                             + (f", failures retried up to {retries} time(s)" if retries else ""))
        report = run_suite(project, tests_dir=tests_dir, tests=tests, jobs=jobs,
                           runner_args=runner_args, env=env, python=python, on_result=on_result,
                           target=name or (plan.target if device else port.name), launcher=launcher,
                           known=known, retries=retries, boards=[b.name for b in held] or None,
                           recover=recover if held else None, note=project.console.warn)
        report.boards = [b.describe() for b in held]
    report.firmware = firmware.describe() if firmware else {}
    report.baseline = ", ".join(str(p.relative_to(project.root)) for p in paths)
    if coverage is not None:
        project.console.step(f"coverage of {target.name}: gcovr")
        report.coverage = collect(target, coverage)
    return report
