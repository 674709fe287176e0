"""``invoke bench-gc``: what the GC threshold patch buys on the host, measured.

The workload (``programs/host_churn.py``) churns through ~50 MB of short-lived
200-byte objects (with a little live data), on the unix port, for each heap size
and threshold:

* **peak RSS**: the workload reads its own ``VmHWM`` from
  ``/proc/self/status`` as it ends (the peak of its address space after
  ``exec``; a child's ``ru_maxrss`` would include the benchmark's own image);
* **CPU seconds**: the process's user + system time (``os.wait4``), median
  of ``repeat`` runs;
* **instructions**: ``valgrind --tool=callgrind`` totals of the patched binary
  with the threshold off against the unpatched one, on the same workload.

The patched binary is the project's ``dist/unix`` build; the unpatched one is the
series minus the feature patch, every other patch kept
(:mod:`mpforge.bench.gc.variants`, the same tree the emulated half compares). Both
are built through the pipeline with the command's mirror and build options. The
targets come from the feature's issue and are checked at the end.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mpforge.bench.gc.guest import host_workload
from mpforge.bench.gc.variants import LABELS, build_variant
from mpforge.bench.targets import BenchTarget
from mpforge.core.errors import MpforgeError
from mpforge.core.project import Project
from mpforge.firmware.pipeline import BuildOptions, Pipeline

MIB = 1024 * 1024


@dataclass
class Run:
    binary: str  # "patched" or "unpatched"
    heap: int
    threshold: int  # bytes, -1 = off, -D = auto/D
    peak_rss_kib: int
    cpu_seconds: float


@dataclass
class Report:
    runs: list[Run] = field(default_factory=list)
    instructions: dict[str, int] = field(default_factory=dict)  # "patched-off"/"unpatched" -> Ir
    callgrind_heap: int = 0
    callgrind_rounds: int = 0
    rounds: int = 0
    targets: list[BenchTarget] = field(default_factory=list)

    def run(self, binary: str, heap: int, threshold: int) -> Run | None:
        return next((r for r in self.runs
                     if (r.binary, r.heap, r.threshold) == (binary, heap, threshold)), None)

    def as_dict(self) -> dict[str, object]:
        return {"binaries": {name: LABELS[name] for name in ("patched", "unpatched")},
                "runs": [asdict(r) for r in self.runs], "instructions": self.instructions,
                "callgrind_heap": self.callgrind_heap, "callgrind_rounds": self.callgrind_rounds,
                "rounds": self.rounds, "targets": [t.as_dict() for t in self.targets]}


def parse_size(text: str) -> int:
    """``512M`` -> bytes; ``off``/``-1`` -> -1 (for thresholds)."""
    text = text.strip()
    if text in ("off", "-1"):
        return -1
    match = re.fullmatch(r"(\d+)([KkMm]?)", text)
    if not match:
        raise MpforgeError(f"not a size: {text!r}", "use bytes, or K/M suffixes: 8M, 256K, off")
    return int(match.group(1)) * {"": 1, "k": 1024, "m": MIB}[match.group(2).lower()]


def parse_threshold(text: str) -> int:
    """A host threshold: a size (:func:`parse_size`), ``off``/``-1``, or ``auto/D``
    (``gc.threshold(auto=D)``, D >= 2), stored as ``-D``."""
    match = re.fullmatch(r"auto/(\d+)", text.strip())
    if not match:
        return parse_size(text)
    if int(match.group(1)) < 2:
        raise MpforgeError(f"{text.strip()} is not a threshold", "use auto/2 or more")
    return -int(match.group(1))


def threshold_text(threshold: int) -> str:
    """-1 -> ``off``, -2 -> ``auto/2``, 1048576 -> ``1024 KiB``."""
    if threshold < -1:
        return f"auto/{-threshold}"
    return "off" if threshold < 0 else f"{threshold // 1024} KiB"


def _heap_arg(heap: int) -> str:
    return f"heapsize={heap // 1024}K"


def binaries(project: Project, feature: str, *, mirror: str | None,
             options: BuildOptions) -> dict[str, Path]:
    """Build (or reuse) the patched unix binary and the one without ``feature``."""
    unix = project.catalog.port("unix")
    patched = Pipeline(project, mirror, options=options).build_one(project.target("unix"))
    unpatched = build_variant(project, feature, unix, None, mirror=mirror, options=options)
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
             mirror: str | None = None, options: BuildOptions | None = None) -> Report:
    """Build both binaries and measure every heap x threshold; see the module docstring."""
    paths = binaries(project, feature, mirror=mirror, options=options or BuildOptions())
    work = project.build_root / "bench-gc"
    work.mkdir(parents=True, exist_ok=True)
    script = work / "churn.py"
    script.write_text(host_workload())

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
                             f"{threshold_text(threshold)}: done")
    if callgrind:
        report.callgrind_heap, report.callgrind_rounds = min(heaps), callgrind_rounds
        for name, binary in (("patched-off", "patched"), ("unpatched", "unpatched")):
            report.instructions[name] = instructions(project, paths[binary], script,
                                                     report.callgrind_heap, callgrind_rounds)
    report.targets = check_targets(report, heaps, thresholds)
    return report


def check_targets(report: Report, heaps: list[int], thresholds: list[int]) -> list[BenchTarget]:
    """The feature's targets, for whichever of them the measured grid covers."""
    targets = []
    big, small = max(heaps), min(heaps)
    for t in (x for x in thresholds if x > 0):
        with_t, without = report.run("patched", big, t), report.run("patched", big, -1)
        if with_t and without:
            ratio = with_t.peak_rss_kib / without.peak_rss_kib
            targets.append(BenchTarget(f"peak RSS, {big // MIB} MiB heap, threshold {t // 1024} KiB vs off",
                                       round(ratio, 3), 0.10, ratio <= 0.10))
        on_small = report.run("patched", small, t)
        if with_t and on_small and big != small:
            ratio = with_t.cpu_seconds / max(on_small.cpu_seconds, 1e-3)
            targets.append(BenchTarget(f"CPU, threshold {t // 1024} KiB, {big // MIB} MiB vs "
                                       f"{small // MIB} MiB heap", round(ratio, 3), 1.5, ratio <= 1.5))
    if len(report.instructions) == 2:
        ratio = report.instructions["patched-off"] / report.instructions["unpatched"]
        targets.append(BenchTarget("instructions, patched (threshold off) vs unpatched",
                                   round(ratio, 4), 1.01, abs(ratio - 1) <= 0.01))
    return targets
