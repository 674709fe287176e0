"""``invoke bench-gc``: what the GC threshold patch buys, measured.

The workload churns through ~50 MB of short-lived 200-byte objects (with a
little live data), on the unix port, for each heap size and threshold:

* **peak RSS**: the workload reads its own ``VmHWM`` from
  ``/proc/self/status`` as it ends (the peak of its address space after
  ``exec``; a child's ``ru_maxrss`` would include the benchmark's own image);
* **CPU seconds**: the process's user + system time (``os.wait4``), median
  of ``repeat`` runs;
* **instructions**: ``valgrind --tool=callgrind`` totals of the patched binary
  with the threshold off against the unpatched one, on the same workload.

The patched binary is the project's ``dist/unix`` build; the unpatched one is
a variant tree with the series minus the feature patch (see
:mod:`mpforge.tree.variants`). The targets come from the feature's issue and are
checked at the end.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from mpforge.core.errors import MpforgeError
from mpforge.core.project import Project, Target
from mpforge.firmware.matrix import Status
from mpforge.firmware.pipeline import BuildOptions, Pipeline, build_one
from mpforge.tree.patches import read_series
from mpforge.tree.variants import variant_project

MIB = 1024 * 1024

WORKLOAD = """\
# mpforge bench-gc workload: churn of short-lived 200-byte objects.
import gc, sys
threshold = int(sys.argv[1])      # bytes; -1: leave the GC as it is
rounds = int(sys.argv[2])
if threshold >= 0:
    gc.threshold(threshold)
live = [bytearray(200) for i in range(200)]   # a little data in use
for i in range(rounds):
    junk = bytearray(200)
peak = 0
with open('/proc/self/status') as f:
    for line in f:
        if line.startswith('VmHWM:'):
            peak = int(line.split()[1])
print('vmhwm_kib', peak)
"""


@dataclass
class Run:
    binary: str  # "patched" or "unpatched"
    heap: int
    threshold: int  # bytes, -1 = off
    peak_rss_kib: int
    cpu_seconds: float


@dataclass
class Report:
    runs: list[Run] = field(default_factory=list)
    instructions: dict[str, int] = field(default_factory=dict)  # "patched-off"/"unpatched" -> Ir
    callgrind_heap: int = 0
    callgrind_rounds: int = 0
    rounds: int = 0
    targets: list[tuple[str, float, float, bool]] = field(default_factory=list)

    def run(self, binary: str, heap: int, threshold: int) -> Run | None:
        return next((r for r in self.runs
                     if (r.binary, r.heap, r.threshold) == (binary, heap, threshold)), None)

    def as_dict(self) -> dict:
        return {"runs": [asdict(r) for r in self.runs], "instructions": self.instructions,
                "callgrind_heap": self.callgrind_heap, "callgrind_rounds": self.callgrind_rounds,
                "rounds": self.rounds,
                "targets": [{"name": n, "value": v, "limit": lim, "met": ok}
                            for n, v, lim, ok in self.targets]}


def parse_size(text: str) -> int:
    """``512M`` -> bytes; ``off``/``-1`` -> -1 (for thresholds)."""
    text = text.strip()
    if text in ("off", "-1"):
        return -1
    match = re.fullmatch(r"(\d+)([KkMm]?)", text)
    if not match:
        raise MpforgeError(f"not a size: {text!r}", "use bytes, or K/M suffixes: 8M, 256K, off")
    return int(match.group(1)) * {"": 1, "k": 1024, "m": MIB}[match.group(2).lower()]


def _heap_arg(heap: int) -> str:
    return f"heapsize={heap // 1024}K"


def _feature_prefix(project: Project, feature: str) -> list:
    series = read_series(project.patches_dir)
    for index, patch in enumerate(series):
        if feature in patch.name:
            return series[:index]
    raise MpforgeError(f"no patch in patches/series matches '{feature}'",
                       "pass --feature with part of the feature patch's name")


def binaries(project: Project, feature: str, jobs: int | None) -> dict[str, Path]:
    """Build (or reuse) the patched unix binary and the one without ``feature``."""
    options = BuildOptions(jobs=jobs or 0)
    patched = build_one(project.target("unix"), mirror=None, options=options)
    baseline = variant_project(project, "without-" + feature, _feature_prefix(project, feature),
                               project.catalog.port("unix"))
    unpatched = build_one(baseline.target("unix"), mirror=None, options=options)
    return {"patched": patched.dist_dir / "micropython",
            "unpatched": unpatched.dist_dir / "micropython"}


def measure(project: Project, binary: Path, script: Path, heap: int, threshold: int,
            rounds: int) -> tuple[int, float]:
    """One run: (peak RSS in KiB, CPU seconds)."""
    result = project.executor.run(
        [str(binary), "-X", _heap_arg(heap), str(script), str(threshold), str(rounds)],
        measure=True, mutates=False, what="bench-gc workload")
    match = re.search(r"vmhwm_kib (\d+)", result.stdout)
    if not match:
        raise MpforgeError("the workload did not report its peak RSS", "", result.tail())
    return int(match.group(1)), result.cpu_seconds


def instructions(project: Project, binary: Path, script: Path, heap: int, rounds: int) -> int:
    """Instructions executed (callgrind's ``Collected``) for one run, threshold untouched."""
    result = project.executor.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(binary),
         "-X", _heap_arg(heap), str(script), "-1", str(rounds)],
        mutates=False, what="valgrind", hint="apt-get install valgrind")
    match = re.search(r"Collected\s*:\s*(\d+)", result.stdout)
    if not match:
        raise MpforgeError("callgrind printed no instruction total", "", result.tail())
    return int(match.group(1))


def bench_gc(project: Project, *, heaps: list[int], thresholds: list[int], rounds: int,
             repeat: int, callgrind: bool, callgrind_rounds: int, feature: str,
             jobs: int | None = None) -> Report:
    """Build both binaries and measure every heap x threshold; see the module docstring."""
    paths = binaries(project, feature, jobs)
    work = project.build_root / "bench-gc"
    work.mkdir(parents=True, exist_ok=True)
    script = work / "churn.py"
    script.write_text(WORKLOAD)

    report = Report(rounds=rounds)
    plan = [("unpatched", heap, -1) for heap in heaps]
    plan += [("patched", heap, t) for heap in heaps for t in thresholds]
    for binary, heap, threshold in plan:
        samples = [measure(project, paths[binary], script, heap, threshold, rounds)
                   for _ in range(repeat)]
        report.runs.append(Run(binary, heap, threshold,
                               int(statistics.median(s[0] for s in samples)),
                               round(statistics.median(s[1] for s in samples), 3)))
        project.console.info(f"{binary:9} heap {heap // MIB} MiB threshold "
                             f"{'off' if threshold < 0 else f'{threshold // 1024} KiB'}: done")
    if callgrind:
        report.callgrind_heap, report.callgrind_rounds = min(heaps), callgrind_rounds
        for name, binary in (("patched-off", "patched"), ("unpatched", "unpatched")):
            report.instructions[name] = instructions(project, paths[binary], script,
                                                     report.callgrind_heap, callgrind_rounds)
    report.targets = check_targets(report, heaps, thresholds)
    return report


def check_targets(report: Report, heaps: list[int], thresholds: list[int]) -> list:
    """The feature's targets, for whichever of them the measured grid covers."""
    targets = []
    big, small = max(heaps), min(heaps)
    for t in (x for x in thresholds if x > 0):
        with_t, without = report.run("patched", big, t), report.run("patched", big, -1)
        if with_t and without:
            ratio = with_t.peak_rss_kib / without.peak_rss_kib
            targets.append((f"peak RSS, {big // MIB} MiB heap, threshold {t // 1024} KiB vs off",
                            round(ratio, 3), 0.10, ratio <= 0.10))
        on_small = report.run("patched", small, t)
        if with_t and on_small and big != small:
            ratio = with_t.cpu_seconds / max(on_small.cpu_seconds, 1e-3)
            targets.append((f"CPU, threshold {t // 1024} KiB, {big // MIB} MiB vs {small // MIB} MiB heap",
                            round(ratio, 3), 1.5, ratio <= 1.5))
    if len(report.instructions) == 2:
        ratio = report.instructions["patched-off"] / report.instructions["unpatched"]
        targets.append(("instructions, patched (threshold off) vs unpatched",
                        round(ratio, 4), 1.01, abs(ratio - 1) <= 0.01))
    return targets


# --- invoke bench-build: the build matrix against one-after-another make ----------


@dataclass
class BuildBench:
    targets: list[str]
    jobs: int
    matrix_wall: float  # parallel phase of a clean matrix build
    cpu_total: float  # CPU seconds of every make in it (and what make ran)
    sequential_wall: float  # the same targets, from clean, plain make -j<jobs>, one by one
    failed: list[str]

    #: the targets: matrix wall within 10% of the CPU time spread over every core, and at
    #: least 15% faster than the same targets made one after another
    EFFICIENCY_LIMIT: ClassVar[float] = 1.1
    SPEEDUP_LIMIT: ClassVar[float] = 0.85

    @property
    def efficiency(self) -> float:
        """matrix wall / (CPU seconds / cores): 1.0 means every core was busy all along."""
        return self.matrix_wall / (self.cpu_total / self.jobs)

    @property
    def speedup(self) -> float:
        """matrix wall / sequential wall."""
        return self.matrix_wall / self.sequential_wall

    @property
    def limits(self) -> list[tuple[str, float, float, bool]]:
        """(target, measured, limit, met) for each figure with a target."""
        return [("matrix wall / (CPU s / cores)", self.efficiency, self.EFFICIENCY_LIMIT,
                 self.efficiency <= self.EFFICIENCY_LIMIT),
                ("matrix wall / sequential wall", self.speedup, self.SPEEDUP_LIMIT,
                 self.speedup <= self.SPEEDUP_LIMIT)]

    def as_dict(self) -> dict:
        return {**asdict(self), "efficiency": round(self.efficiency, 3),
                "speedup": round(self.speedup, 3)}


def bench_build(pipeline: Pipeline, targets: list[Target], jobs: int) -> BuildBench:
    """Build ``targets`` from clean as a matrix under one budget of ``jobs``, then each
    from clean again, one after another, as a matrix of one (plain ``make -j<jobs>``).

    Both without ccache (cold compiles) and with the deplibs kept (built once, before
    either measurement starts)."""
    console = pipeline.project.console
    console.step(f"matrix: {len(targets)} targets from clean, one job budget of {jobs}")
    options = BuildOptions(jobs=jobs, clean=True, ccache=False, clean_deplibs=False)
    report = pipeline.build(targets, options)
    built = [r for r in report.results if r.status == Status.OK]
    cpu_total = sum(r.cpu_seconds for r in built)

    console.step(f"sequential: plain make -j{jobs}, one target after another, from clean")
    names = {r.target for r in built}
    failed = [r.target for r in report.failed]
    sequential = 0.0
    for target in (t for t in targets if t.name in names):
        alone = pipeline.build([target], options)
        if alone.failed:  # a figure of a failed make would flatter the sequential side
            failed.append(f"{target.name} (alone: {alone.failed[0].reason})")
            continue
        sequential += alone.parallel_seconds
        console.info(f"{target.name}: {alone.parallel_seconds:.1f} s")
    return BuildBench([r.target for r in built], jobs, round(report.parallel_seconds, 2),
                      round(cpu_total, 2), round(sequential, 2), failed)


# --- invoke bench-test: invoke test against the tree's run-tests -----------------


@dataclass
class TestBench:
    __test__ = False
    where: str
    tests: int
    runner_seconds: float  # the tree's run-tests, one process (one board)
    ours_seconds: float  # invoke test, sharded
    jobs: int
    same_verdicts: bool
    differing: list[str]
    unexpected_failures: list[str]

    #: the target: ``invoke test`` takes at most 60% of the tree's runner's time
    RATIO_LIMIT: ClassVar[float] = 0.6

    @property
    def ratio(self) -> float:
        return self.ours_seconds / self.runner_seconds

    @property
    def limits(self) -> list[tuple[str, float, float, bool]]:
        """(target, measured, limit, met) for each figure with a target."""
        return [("invoke test / the tree's run-tests", self.ratio, self.RATIO_LIMIT,
                 self.ratio <= self.RATIO_LIMIT)]

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": round(self.ratio, 3)}


def _runner_verdicts(output: str) -> dict[str, str]:
    from mpforge.testing.testrun import parse_line
    verdicts = {}
    for line in output.splitlines():
        parsed = parse_line(line)
        if parsed:
            verdicts[parsed[1]] = parsed[0].value
    return verdicts


def bench_test(pipeline: Pipeline, target: Target, jobs: int, pattern: str | None,
               emulator: str | None) -> TestBench:
    """Time the tree's runner alone, then ``invoke test``; compare every verdict."""
    import sys
    import time

    from mpforge.device.transport import open_device
    from mpforge.testing.testrun import TestPlan, Verdict, emulator_device, run_for_target, select_tests

    project, port = pipeline.project, target.port
    tests_dir = project.tree / "tests"
    plan = TestPlan.for_port(port, emulator is not None)
    tests = select_tests(tests_dir, plan.dirs, pattern)
    env = {"MICROPY_CPYTHON3": sys.executable}
    args = [sys.executable, "run-tests", *tests]
    opened = None
    if emulator:
        # the reference: the tree's own tools/pyboard.py against one emulated board
        spec = emulator_device(pipeline, port, emulator)
        opened = open_device(spec)
        args[2:2] = ["--target", plan.target, "--device", opened.port.port]
        env["PYTHONPATH"] = str(project.tree / "tools")
        opened.port.close()  # its pty stays open in QEMU; the runner reopens it
        time.sleep(3)  # the tree's pyboard.py does not wait for the board to boot
    else:
        env["MICROPY_MICROPYTHON"] = str(pipeline.build_one(target).dist_dir / plan.binary)
    project.console.step(f"the tree's run-tests alone: {len(tests)} tests")
    started = time.monotonic()
    try:
        output = project.executor.run(args, cwd=tests_dir, env=env, check=False, mutates=False).stdout
    finally:
        if opened:
            opened.close()
    runner_seconds = time.monotonic() - started
    for leftover in list(tests_dir.glob("*.exp")) + list(tests_dir.glob("*.out")):
        leftover.unlink()
    theirs = _runner_verdicts(output)

    project.console.step(f"invoke test: {jobs} shard(s)")
    started = time.monotonic()
    report = run_for_target(pipeline, target, jobs=jobs, pattern=pattern, emulator=emulator)
    ours_seconds = time.monotonic() - started
    raw = {r.test: ("fail" if r.verdict in (Verdict.FAIL, Verdict.KNOWN) else
                    "pass" if r.verdict in (Verdict.PASS, Verdict.FIXED) else r.verdict.value)
           for r in report.results}
    differing = sorted(t for t in set(raw) | set(theirs) if raw.get(t) != theirs.get(t))
    return TestBench(f"{port.name}" + (f" on {emulator}" if emulator else " (host)"), len(tests),
                     round(runner_seconds, 2), round(ours_seconds, 2), jobs, not differing,
                     differing, [r.test for r in report.failures])
