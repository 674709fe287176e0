"""The invoke tasks: thin wrappers that turn library results into output.

This is the only module that prints to the user and decides exit codes.
Library errors (:class:`~mpforge.errors.MpforgeError`) become one red line
plus a hint and exit status 1; a traceback is shown only with ``--debug``
(or ``MPFORGE_DEBUG=1``). ``tasks.py`` at the top of the checkout and the
``mpforge`` console script both serve :data:`ns`.
"""

from __future__ import annotations

import functools
import json as json_lib
import os
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Any

from invoke import Collection, Context, Exit, Task
from invoke import task as invoke_task

from . import bench as bench_mod
from . import build as build_mod
from . import ccache as ccache_mod
from . import ci as ci_mod
from . import deploy as deploy_mod
from . import cigen as cigen_mod
from . import doctor as doctor_mod
from . import matrix as matrix_mod
from . import size as size_mod
from . import testrun as testrun_mod
from .deplibs import build_deplibs
from .errors import MpforgeError
from .fetch import fetch as fetch_tree
from .git import mirror_from_env
from .patches import PatchQueue, PatchState
from .project import Project
from .ui import Console, human_size

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
        super().__init__(*args, **kwargs)

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        short = SHORT_FLAGS.get(name)
        if short and short not in opts["names"] and short not in taken_names:
            opts["names"].append(short)
        return opts


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
    return bool(kwargs.get("debug")) or os.environ.get("MPFORGE_DEBUG") == "1"


def reports_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors and Ctrl-C into one clear line and a non-zero exit."""

    @functools.wraps(body)
    def wrapper(c: Context, *args: Any, **kwargs: Any) -> Any:
        try:
            return body(c, *args, **kwargs)
        except MpforgeError as exc:
            if _debugging(kwargs):
                raise
            console = Console(stream=sys.stderr)
            console.error(exc.one_line())
            if exc.details:
                console.block(exc.details, to_err=True)
            raise Exit(code=1) from None
        except KeyboardInterrupt:
            Console(stream=sys.stderr).error("interrupted; nothing was published to dist/")
            raise Exit(code=130) from None

    return wrapper


def _project(verbose: bool = False, dry_run: bool = False) -> Project:
    return Project.discover(Console(verbose=verbose), dry_run=dry_run)


def _write_json(path: str | None, data: object) -> None:
    """``--json FILE``: the figures as JSON (nothing when no file was asked for)."""
    if path:
        Path(path).write_text(json_lib.dumps(data, indent=2) + "\n")


def _ports(port: str, project: Project) -> list[str]:
    """``unix``, ``unix,stmhal`` or ``all``."""
    if port == "all":
        return sorted(project.catalog.ports)
    return [p.strip() for p in port.split(",") if p.strip()]


@task(help=helps("mirror", "verbose", "debug", "dry-run",
                 port="port(s) whose submodules to fetch: NAME, A,B or all"))
@reports_errors
def fetch(c: Context, port: str = "unix", mirror: str | None = None, verbose: bool = False,
          debug: bool = False, dry_run: bool = False) -> None:
    """Check out micropython/ at its pin plus the submodules the port needs."""
    project = _project(verbose, dry_run)
    report = fetch_tree(project, _ports(port, project), mirror_from_env(mirror))
    console = project.console
    state = "cloned" if report.cloned else "checked out" if report.checked_out else "already"
    console.ok(f"micropython/ {state} at {report.pin[:12]}")
    if report.submodules_initialised:
        console.ok(f"submodules: {', '.join(report.submodules_initialised)}")
    if report.local_changes:
        console.warn(f"micropython/ has local changes in {len(report.local_changes)} file(s); kept "
                     "(`invoke patch --status` shows whether they are the series)")


@task(help=helps("verbose", "debug", "dry-run", revert="restore the pristine tree",
                 status="list each patch's state"))
@reports_errors
def patch(c: Context, revert: bool = False, status: bool = False, verbose: bool = False,
          debug: bool = False, dry_run: bool = False) -> None:
    """Apply patches/series onto micropython/ (atomic, idempotent)."""
    project = _project(verbose, dry_run)
    queue = PatchQueue(project.patches_dir, project.tree, project.executor)
    console = project.console
    if status:
        rows = [(p.name, state.value, p.sha256[:12]) for p, state in queue.status()]
        console.table("patch series", ["patch", "state", "sha256"], rows)
        if any(state == PatchState.CONFLICTING for _, state in queue.status()):
            raise Exit(code=1)
        return
    if revert:
        done = queue.revert()
        console.ok(f"reverted {len(done)} patch(es)" if done else "nothing to revert: tree is pristine")
        return
    done = queue.apply()
    console.ok(f"applied {len(done)} patch(es): {', '.join(p.name for p in done)}" if done
               else "patch series already applied")


@task(help=helps("mirror", "verbose", "debug", "dry-run",
                 port="port whose dependency libraries to build", clean="rebuild from scratch"))
@reports_errors
def deplibs(c: Context, port: str = "unix", clean: bool = False, mirror: str | None = None,
            verbose: bool = False, debug: bool = False, dry_run: bool = False) -> None:
    """Build a port's dependency libraries (axtls, libffi, ...) out of tree."""
    project = _project(verbose, dry_run)
    target = project.target(port)
    fetch_tree(project, [port], mirror_from_env(mirror))
    results = build_deplibs(target, clean)
    if not results:
        project.console.ok(f"port {port} has no deplibs")
    for result in results:
        project.console.ok(f"{result.name}: {result.prefix.relative_to(project.root)}")


@task(help=helps("mirror", "verbose", "debug", "dry-run",
                 port="port(s) to build: NAME or A,B (default unix)",
                 board="board of a board port, or 'all' for every board in the tree",
                 all="build every port (and every board)",
                 jobs="job budget shared by all makes (default: CPU count)",
                 clean="start from empty build dirs",
                 strict="a target skipped for a missing toolchain fails the run",
                 ccache="compile through ccache when it is installed (default on)"))
@reports_errors
def build(c: Context, port: str = "unix", board: str | None = None, all: bool = False,
          jobs: int = 0, clean: bool = False, strict: bool = False, ccache: bool = True,
          mirror: str | None = None, verbose: bool = False, debug: bool = False,
          dry_run: bool = False) -> None:
    """Fetch, patch, build deplibs and compile ports into dist/<target>/."""
    project = _project(verbose, dry_run)
    ports = _ports("all" if all else port, project)
    for name in ports:  # unknown names fail before anything is fetched
        project.catalog.port(name)
    if all and board is None:
        board = "all"
    if board and not dry_run and any(project.catalog.port(p).has_boards for p in ports):
        # board names are checked against the tree's boards/ folders: fetch it first
        fetch_tree(project, build_mod.with_needs(project, ports), mirror_from_env(mirror))
    if len(ports) > 1 or board == "all":
        _build_matrix(project, ports, board, jobs or os.cpu_count() or 1, clean, strict, ccache,
                      mirror_from_env(mirror))
        return
    target = project.target(ports[0], board)
    result = build_mod.build(target, jobs=jobs or None, clean=clean, mirror=mirror_from_env(mirror))
    console = project.console
    if dry_run:
        console.ok("dry run: nothing was changed")
        return
    rows = [(a["name"], human_size(a["size"]), a["sha256"][:16]) for a in result.manifest["artifacts"]]
    console.table(f"dist/{result.target}", ["artifact", "size", "sha256"], rows)
    verb = "built" if result.changed else "up to date"
    console.ok(f"{result.target} {verb} in {result.duration:.1f} s -> "
               f"{result.dist_dir.relative_to(project.root)}/")


def _build_matrix(project: Project, ports: list[str], board: str | None, jobs: int, clean: bool,
                  strict: bool, ccache: bool, mirror: str | None) -> None:
    console = project.console
    targets = matrix_mod.select_targets(project, ports, board)
    cache = ccache_mod.Ccache.detect(project) if ccache else None
    before = cache.stats() if cache else None
    report = matrix_mod.build_matrix(project, targets, jobs=jobs, mirror=mirror, clean=clean,
                                     cc_prefix=cache.prefix if cache else None)
    console.table(f"build matrix: {len(targets)} targets, -j{jobs}, {report.wall_seconds:.1f} s",
                  ["target", "status", "time", "text", "data", "bss", "reason"],
                  matrix_mod.summary_rows(report.results))
    if cache and before is not None:
        console.info(cache.describe(before, cache.stats()))
    for failed in report.failed:
        console.error(f"{failed.target}: {failed.reason}")
        if failed.details:
            console.block(failed.details, to_err=True)
    if report.failed or (strict and report.skipped):
        what = f"{len(report.failed)} failed" + (f", {len(report.skipped)} skipped (--strict)"
                                                 if strict and report.skipped else "")
        console.error(f"build matrix: {what} of {len(report.results)} targets")
        raise Exit(code=1)
    console.ok(f"{sum(r.status.value in ('ok', 'cached') for r in report.results)} of "
               f"{len(report.results)} targets built"
               + (f", {len(report.skipped)} skipped" if report.skipped else ""))


@task(help=helps(
    "mirror", "verbose", "debug",
    port="port whose test suite to run (default unix)",
    jobs="shards run in parallel (default: CPU count)",
    junit="write JUnit XML here", json="write the results as JSON here",
    k="only tests whose path matches (substring or glob)",
    device="run on a board: /dev/ttyACM0, auto, rfc2217://host:port or execpty:<command>",
    emulator="run on emulated boards, one per shard (stmhal, minimal: qemu)"))
@reports_errors
def test(c: Context, port: str = "unix", jobs: int = 0, junit: str | None = None,
         json: str | None = None, k: str | None = None, device: str | None = None,
         emulator: str | None = None, mirror: str | None = None, verbose: bool = False,
         debug: bool = False) -> None:
    """Run the tree's test suite (sharded) on the built port; exit 0 only without unexpected failures."""
    project = _project(verbose)
    report = testrun_mod.run_for_port(project, port, jobs=jobs or os.cpu_count() or 1,
                                      pattern=k, device=device, emulator=emulator,
                                      mirror=mirror_from_env(mirror))
    _show_test_report(project.console, report)
    testrun_mod.write_outputs(report, junit, json)
    if not report.ok:
        raise Exit(code=1)


def _show_test_report(console: Console, report) -> None:
    V = testrun_mod.Verdict
    for failure in report.failures:
        console.error(f"FAIL {failure.test}")
        console.block(failure.diff() or failure.output or "(no output)", to_err=True)
    for fixed in (r for r in report.results if r.verdict == V.FIXED):
        console.warn(f"{fixed.test} passes but is listed as a known difference: "
                     f"remove it from {report.baseline or 'the baseline'}")
    console.table(f"tests: {report.target}, {report.jobs} shard(s), {report.seconds:.1f} s",
                  ["passed", "failed", "skipped", "known", "fixed"],
                  [(str(report.count(V.PASS)), str(report.count(V.FAIL)), str(report.count(V.SKIP)),
                    str(report.count(V.KNOWN)), str(report.count(V.FIXED)))])
    if report.aborted:
        console.error(f"test run aborted: {report.aborted}")
    elif report.ok:
        console.ok("no unexpected failure")


@task(help=helps("verbose", "debug", fix="apt-get install what is missing (as root)",
                 port="port(s) whose needs decide the exit status: NAME, A,B or all"))
@reports_errors
def doctor(c: Context, fix: bool = False, port: str = "unix", verbose: bool = False,
           debug: bool = False) -> None:
    """Show every toolchain and host tool: found, version, or how to install it."""
    project = _project(verbose)
    ports = _ports(port, project)
    checks = doctor_mod.diagnose(project, ports)
    if fix:
        installed = doctor_mod.fix(project, checks)
        if installed:
            project.console.ok(f"installed: {' '.join(installed)}")
            checks = doctor_mod.diagnose(project, ports)
    rows = [(ch.kind, ch.name, ch.version or "missing", "yes" if ch.required else "",
             ch.note or ("" if ch.found else ch.provider)) for ch in checks]
    project.console.table(f"toolchains and host tools (required for: {', '.join(ports)})",
                          ["kind", "name", "version", "required", "install / note"], rows)
    missing = [ch.name for ch in checks if ch.required and not ch.found]
    if missing:
        project.console.error(f"missing for {', '.join(ports)}: {', '.join(missing)} "
                              "(run `invoke doctor --fix` as root, or install as shown)")
        raise Exit(code=1)
    project.console.ok("everything the requested ports need is installed")


@task(name="bench-gc", help=helps(
    "verbose", "debug",
    heaps="heap sizes, comma separated (default 8M,512M)",
    thresholds="thresholds, comma separated; off = none (default off,1M)",
    rounds="200-byte objects to churn through per run (default 250000: ~50 MB)",
    repeat="runs per cell; the median is reported (default 3)",
    callgrind="count instructions with valgrind (default on; --no-callgrind to skip)",
    callgrind_rounds="objects per callgrind run (default 50000)",
    feature="the patch to compare against its absence (default gc-alloc-threshold)",
    json="also write the figures to this JSON file",
    jobs="parallel make jobs for the two builds"))
@reports_errors
def bench_gc(c: Context, heaps: str = "8M,512M", thresholds: str = "off,1M",
             rounds: int = 250_000, repeat: int = 3, callgrind: bool = True,
             callgrind_rounds: int = 50_000, feature: str = "gc-alloc-threshold",
             json: str | None = None, jobs: int = 0, verbose: bool = False,
             debug: bool = False) -> None:
    """Benchmark the GC threshold: peak RSS, CPU and instructions, patched vs unpatched."""
    project = _project(verbose)
    report = bench_mod.bench_gc(
        project, heaps=[bench_mod.parse_size(h) for h in heaps.split(",")],
        thresholds=[bench_mod.parse_size(t) for t in thresholds.split(",")],
        rounds=rounds, repeat=repeat, callgrind=callgrind, callgrind_rounds=callgrind_rounds,
        feature=feature, jobs=jobs or None)
    console = project.console
    mib = bench_mod.MIB
    rows = [(r.binary, f"{r.heap // mib} MiB",
             "off" if r.threshold < 0 else f"{r.threshold // 1024} KiB",
             f"{r.peak_rss_kib / 1024:.1f} MiB", f"{r.cpu_seconds:.3f}") for r in report.runs]
    console.table(f"bench-gc: {report.rounds} x 200-byte objects (median of {repeat})",
                  ["binary", "heap", "threshold", "peak RSS", "CPU s"], rows)
    if report.instructions:
        console.table(f"instructions (callgrind, {report.callgrind_heap // mib} MiB heap, "
                      f"{report.callgrind_rounds} objects, threshold off)",
                      ["binary", "instructions"],
                      [(k, f"{v:,}") for k, v in report.instructions.items()])
    console.table("targets", ["target", "measured", "limit", "met"],
                  [(n, v, lim, "yes" if ok else "NO") for n, v, lim, ok in report.targets])
    _write_json(json, report.as_dict())


@task(name="bench-build", help=helps(
    "mirror", "verbose", "debug",
    port="ports: NAME, A,B or all (default all)",
    board="'all' (default) or one board name",
    jobs="job budget (default: CPU count)",
    json="also write the figures to this JSON file"))
@reports_errors
def bench_build(c: Context, port: str = "all", board: str = "all", jobs: int = 0,
                json: str | None = None, mirror: str | None = None, verbose: bool = False,
                debug: bool = False) -> None:
    """Benchmark the build matrix against plain make, target after target (both from clean)."""
    project = _project(verbose)
    jobs = jobs or os.cpu_count() or 1
    targets = matrix_mod.select_targets(project, _ports(port, project), board)
    result = bench_mod.bench_build(project, targets, jobs, mirror_from_env(mirror))
    console = project.console
    console.table(f"bench-build: {len(result.targets)} targets, {jobs} cores", ["figure", "value"], [
        ("matrix wall time (parallel phase)", f"{result.matrix_wall:.1f} s"),
        ("CPU seconds of all compiles", f"{result.cpu_total:.1f} s"),
        ("CPU seconds / cores", f"{result.cpu_total / jobs:.1f} s"),
        (f"plain make -j{jobs}, one target after another", f"{result.sequential_wall:.1f} s"),
    ])
    console.table("targets", ["target", "measured", "limit", "met"], [
        ("matrix wall / (CPU s / cores)", f"{result.efficiency:.3f}", "1.1",
         "yes" if result.efficiency <= 1.1 else "NO"),
        ("matrix wall / sequential wall", f"{result.speedup:.3f}", "0.85",
         "yes" if result.speedup <= 0.85 else "NO"),
    ])
    if result.failed:
        console.warn(f"failed (left out of the figures): {', '.join(result.failed)}")
    _write_json(json, result.as_dict())


@task(name="bench-test", help=helps(
    "mirror", "verbose", "debug", port="port whose suite to time (default unix)",
    jobs="shards (default: CPU count)", k="only tests matching this",
    emulator="time emulated boards (qemu) instead of the host",
    json="also write the figures to this JSON file"))
@reports_errors
def bench_test(c: Context, port: str = "unix", jobs: int = 0, k: str | None = None,
               emulator: str | None = None, json: str | None = None, mirror: str | None = None,
               verbose: bool = False, debug: bool = False) -> None:
    """Benchmark invoke test against the tree's run-tests (same tests, verdicts compared)."""
    project = _project(verbose)
    result = bench_mod.bench_test(project, port, jobs or os.cpu_count() or 1, k, emulator,
                                  mirror_from_env(mirror))
    console = project.console
    console.table(f"bench-test: {result.where}, {result.tests} tests", ["figure", "value"], [
        ("tree's run-tests, one process", f"{result.runner_seconds:.1f} s"),
        (f"invoke test, {result.jobs} shards", f"{result.ours_seconds:.1f} s"),
        ("ratio (target <= 0.6)", f"{result.ratio:.3f}"),
        ("identical verdicts", "yes" if result.same_verdicts else f"NO: {', '.join(result.differing)}"),
        ("unexpected failures", ", ".join(result.unexpected_failures) or "none"),
    ])
    _write_json(json, result.as_dict())


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
    project.console.table("sizes" + (f" vs {baseline}" if baseline else ""),
                          size_mod.columns(with_base), size_mod.table_rows(rows, with_base))
    if save:
        _write_json(save, {"targets": {r.target: r.size for r in rows}})
        project.console.ok(f"baseline saved to {save}")
    _write_json(json, size_mod.to_json(rows))
    if markdown:
        Path(markdown).write_text(size_mod.to_markdown(rows, with_base))


@task(help=helps(
    "mirror", "verbose", "debug",
    ports="ports: NAME, A,B or all (default unix)",
    boards="boards of board ports: NAME, A,B or all (default: each port's default)",
    out="folder for summary.json, junit.xml, size.md, summary.md (default ci-out)",
    size_baseline="compare sizes with this baseline (from `invoke size --save`)",
    jobs="job budget (default: CPU count)"))
@reports_errors
def ci(c: Context, ports: str = "unix", boards: str | None = None, out: str = "ci-out",
       size_baseline: str | None = None, jobs: int = 0, mirror: str | None = None,
       verbose: bool = False, debug: bool = False) -> None:
    """The whole pipeline (doctor, fetch, patch, build, test, size) with CI result files."""
    project = _project(verbose)
    report = ci_mod.run_ci(project, _ports(ports, project), boards, Path(out),
                           mirror=mirror_from_env(mirror), jobs=jobs or os.cpu_count() or 1,
                           size_baseline=Path(size_baseline) if size_baseline else None)
    project.console.table("ci", ["step", "status", "time", "detail"],
                          [(s.name, s.status, f"{s.seconds:.1f} s", s.detail) for s in report.steps])
    if not report.ok:
        project.console.error(f"ci failed: {', '.join(s.name for s in report.steps if s.status == 'failed')} "
                              f"(results in {out}/)")
        raise Exit(code=1)
    project.console.ok(f"ci passed (results in {out}/)")


@task(help=helps(
    "mirror", "verbose", "debug", "dry-run",
    port="port to flash (default stmhal)", board="board (default: the port's default)",
    device="the board's serial port (/dev/ttyACM0, auto, ...): bootloader entry, esptool, banner check",
    file="flash this file instead of dist/<target>/",
    runner="use this runner: dfu-util, pydfu, esptool, teensy, cc3200",
    erase="erase the flash first (runners that can)", baud="serial speed for esptool",
    yes="do not ask for confirmation on a terminal"))
@reports_errors
def deploy(c: Context, port: str = "stmhal", board: str | None = None, device: str | None = None,
           file: str | None = None, runner: str | None = None, erase: bool = False,
           baud: int = 115200, yes: bool = False, mirror: str | None = None,
           verbose: bool = False, debug: bool = False, dry_run: bool = False) -> None:
    """Flash a board: the built firmware, checked first, with the port's runner."""
    project = _project(verbose)
    console = project.console
    target = project.target(port, board)
    plan = deploy_mod.plan_deploy(project, target, file=file, runner_name=runner, device=device,
                                  erase=erase, mirror=mirror_from_env(mirror), baud=baud)
    for line in deploy_mod.describe_plan(plan):
        console.info(line)
    if dry_run:
        console.ok("dry run: nothing was flashed")
        return
    if not yes and sys.stdin.isatty():
        answer = input(f"Flash {plan.artifact.name} to {plan.target}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise Exit("not flashed", code=1)
    banner = deploy_mod.run_deploy(project, target, plan, device)
    if banner:
        first = next((l for l in banner.splitlines() if "MicroPython" in l), "").strip()
        console.ok(f"flashed {plan.target}; the board says: {first}")
    else:
        console.ok(f"flashed {plan.target}")


@task(name="ci-generate", help=helps(
    "verbose", "debug", provider="github or gitlab",
    output="write here (default: stdout)"))
@reports_errors
def ci_generate(c: Context, provider: str = "github", output: str | None = None,
                verbose: bool = False, debug: bool = False) -> None:
    """Render a CI pipeline (one job per port) from the ports and toolchains data."""
    text = cigen_mod.render(_project(verbose), provider)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
    else:
        sys.stdout.write(text)


ns = Collection(fetch, patch, deplibs, build, doctor, test, deploy, size, ci, ci_generate,
                bench_gc, bench_build, bench_test)
