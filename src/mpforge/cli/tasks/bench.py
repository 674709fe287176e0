"""Benchmark tasks that print figures: ``bench-gc``, ``bench-build``, ``bench-test`` (the
performance gate, ``perf``, has its own module); ``--json``/``--record`` write them with the
run that produced them and ``--check`` fails on a missed target."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from invoke import Context

from mpforge.bench import build as build_bench
from mpforge.bench import record as record_mod
from mpforge.bench import testsuite as test_bench
from mpforge.bench.gc import host as gc_host
from mpforge.bench.targets import BenchTarget
from mpforge.bench.targets import require as require_targets
from mpforge.cli import framework as fw
from mpforge.cli.framework import task
from mpforge.cli.render import bench as render_bench
from mpforge.core.errors import UsageError
from mpforge.core.project import Project
from mpforge.firmware.selection import select


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
        data = {"run": record_mod.provenance(project, fw.command_line()), **figures}
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            fw.write_json(str(path), data)
            fw.console_of(project).ok(f"figures written to {path}")
    if check:
        require_targets(targets, name)


CHECK_HELP = "exit 1 when a figure misses its target (or the run covers no target)"
RECORD_HELP = "also write the figures and the run (commit, host, date, command) to bench-results/"


@task(name="bench-gc", shared=("mirror", "jobs"), help=dict(
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
    record=RECORD_HELP + "bench-gc.json (emulated: bench-gc-qemu.json)",
    check=CHECK_HELP,
    jobs="parallel make jobs for the builds"))
def bench_gc(c: Context, heaps: str = "8M,512M", thresholds: str | None = None,
             rounds: int = 250_000, repeat: int = 0, callgrind: bool = True,
             callgrind_rounds: int = 50_000, feature: str = "gc-alloc-threshold",
             emulator: str | None = None, workloads: str = "churn,pidigits,float,chaos",
             upstream: str = "93e353e", plot: str | None = None,
             json: str | None = None, record: bool = False, check: bool = False, jobs: int = 0) -> None:
    """Benchmark the GC threshold: on the host (RSS, CPU, instructions) or an emulated board."""
    project = fw.checkout()
    if emulator:
        _bench_gc_emulated(project, emulator, thresholds, repeat or 2, feature, workloads,
                           upstream, plot, json, record, check, fw.options().mirror)
        return
    if plot:
        raise UsageError("--plot draws the emulated figures", "add --emulator qemu")
    repeat = repeat or 3
    report = gc_host.bench_gc(
        project, heaps=[gc_host.parse_size(h) for h in heaps.split(",")],
        thresholds=[gc_host.parse_threshold(t) for t in (thresholds or "off,1M").split(",")],
        rounds=rounds, repeat=repeat, callgrind=callgrind, callgrind_rounds=callgrind_rounds,
        feature=feature, mirror=fw.options().mirror, options=fw.build_options())
    render_bench.show_gc_host(fw.console_of(project), report, repeat)
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
        mirror=mirror, options=fw.build_options())
    console = fw.console_of(project)
    render_bench.show_gc_emulated(console, report)
    if plot:
        render_bench.write_plot(report, Path(plot))
        console.ok(f"plot: {plot}")
    _bench_results(project, "bench-gc-qemu", report.as_dict(), report.targets, json=json,
                   record=record, check=check)


@task(name="bench-build", shared=("mirror", "jobs"), help=dict(
    port="ports: NAME, A,B or all (default all)",
    board="'all' (default) or one board name",
    jobs="job budget (default: CPU count)",
    json="also write the figures (and the run: commit, host, date, command) to this JSON file",
    record=RECORD_HELP + "bench-build.json",
    check=CHECK_HELP,
    remote_cache="instead: what a shared ccache at this URL saves a second checkout at another path "
                 "(cold, second checkout with an empty local cache, warm local; bench-build-remote.json)"))
def bench_build(c: Context, port: str = "all", board: str = "all", jobs: int = 0,
                json: str | None = None, record: bool = False, check: bool = False,
                remote_cache: str | None = None) -> None:
    """Benchmark the build matrix against the same targets built one at a time (both from clean)."""
    project = fw.checkout()
    jobs = jobs or os.cpu_count() or 1
    pipeline = fw.pipeline(project, keep_going=True)
    targets = select(project, port, board).targets(pipeline)
    if remote_cache is not None:
        from mpforge.bench import remote_cache as remote_bench
        from mpforge.firmware.ccache_remote import check_remote

        remote = remote_bench.bench_remote(pipeline, targets, jobs, check_remote(remote_cache, "--remote-cache"))
        render_bench.show_remote_bench(fw.console_of(project), remote)
        _bench_results(project, "bench-build-remote", remote.as_dict(), remote.limits, json=json,
                       record=record, check=check)
        return
    result = build_bench.bench_build(pipeline, targets, jobs)
    render_bench.show_build_bench(fw.console_of(project), result)
    _bench_results(project, "bench-build", result.as_dict(), result.limits, json=json, record=record,
                   check=check)


@task(name="bench-test", shared=("mirror", "jobs"), help=dict(
    port="port whose suite to time (default unix)",
    jobs="shards (default: CPU count)", k="only tests matching this",
    emulator="time emulated boards (qemu) instead of the host",
    json="also write the figures (and the run: commit, host, date, command) to this JSON file",
    record=RECORD_HELP + "bench-test.json",
    check=CHECK_HELP, rounds="rounds of run-tests, cold and warm invoke test (default 3; medians)"))
def bench_test(c: Context, port: str = "unix", jobs: int = 0, k: str | None = None,
               emulator: str | None = None, json: str | None = None, record: bool = False,
               check: bool = False, rounds: int = 3) -> None:
    """Benchmark invoke test (cold and warm) against the tree's run-tests, verdicts compared."""
    project = fw.checkout()
    result = test_bench.bench_test(fw.pipeline(project), select(project, port).target(),
                                   jobs or os.cpu_count() or 1, k, emulator, rounds,
                                   before_timing=fw.release_checkout)
    render_bench.show_test_bench(fw.console_of(project), result)
    _bench_results(project, "bench-test", result.as_dict(), result.limits, json=json, record=record,
                   check=check)
