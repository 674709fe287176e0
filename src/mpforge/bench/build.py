"""``invoke bench-build``: the build matrix against the same targets built one at a time.

Both sides go through mpforge's own pipeline, from clean, without ccache (cold
compiles), with the deplibs built once before either is timed:

* **matrix**: every target at once, under one jobserver budget of ``jobs``;
* **one at a time**: each target alone, a matrix of one: its make gets the whole
  budget (``make -j<jobs>`` through the same jobserver), one after another. This is
  what a user gets building target after target with mpforge, not a hand-typed
  ``make`` in the tree: the same make command line, variables and out-of-tree folders.

The targets: the matrix keeps every core busy (wall time within 10% of the CPU time
spread over the cores) and takes at most 85% of the one-at-a-time wall time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

from mpforge.bench.targets import BenchTarget
from mpforge.core.errors import BenchError
from mpforge.core.project import Target
from mpforge.firmware.matrix import Status
from mpforge.firmware.pipeline import BuildOptions, Pipeline

#: what the one-at-a-time side is, as tables and JSON name it
ONE_AT_A_TIME = "one target at a time (mpforge's pipeline, make -j{jobs} each)"


@dataclass
class BuildBench:
    targets: list[str]
    jobs: int
    matrix_wall: float  # parallel phase of a clean matrix build
    cpu_total: float  # CPU seconds of every make in it (and what make ran)
    sequential_wall: float  # the same targets from clean, one at a time (see ONE_AT_A_TIME)
    failed: list[str]
    skipped: list[str] = field(default_factory=list)

    #: the targets: matrix wall within 10% of the CPU time spread over every core, and at
    #: most 85% of the same targets built one at a time
    EFFICIENCY_LIMIT: ClassVar[float] = 1.1
    SPEEDUP_LIMIT: ClassVar[float] = 0.85

    @property
    def efficiency(self) -> float:
        """matrix wall / (CPU seconds / cores): 1.0 means every core was busy all along."""
        return self.matrix_wall / (self.cpu_total / self.jobs) if self.cpu_total else 0.0

    @property
    def speedup(self) -> float:
        """matrix wall / one-at-a-time wall."""
        return self.matrix_wall / self.sequential_wall if self.sequential_wall else 0.0

    @property
    def limits(self) -> list[BenchTarget]:
        """The targets, for the figures this run has (none without a figure to divide by)."""
        targets = []
        if self.cpu_total:
            targets.append(BenchTarget("matrix wall / (CPU s / cores)", round(self.efficiency, 3),
                                       self.EFFICIENCY_LIMIT, self.efficiency <= self.EFFICIENCY_LIMIT))
        if self.sequential_wall:
            targets.append(BenchTarget("matrix wall / one-at-a-time wall", round(self.speedup, 3),
                                       self.SPEEDUP_LIMIT, self.speedup <= self.SPEEDUP_LIMIT))
        return targets

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "sequential_is": ONE_AT_A_TIME.format(jobs=self.jobs),
                "efficiency": round(self.efficiency, 3), "speedup": round(self.speedup, 3),
                "targets_checked": [t.as_dict() for t in self.limits]}


def bench_build(pipeline: Pipeline, targets: list[Target], jobs: int) -> BuildBench:
    """Build ``targets`` from clean as a matrix under one budget of ``jobs``, then each
    alone from clean, one after another; see the module docstring.

    :class:`BenchError` when the selection is empty or no target of it could be built
    (a missing toolchain skips its targets): there is nothing to compare.
    """
    if not targets:
        raise BenchError("bench-build: the selection holds no target", "pick ports with --port")
    console = pipeline.project.console
    console.step(f"matrix: {len(targets)} targets from clean, one job budget of {jobs}")
    options = BuildOptions(jobs=jobs, clean=True, ccache=False, clean_deplibs=False)
    report = pipeline.build(targets, options)
    built = [r for r in report.results if r.status == Status.OK]
    failed = [f"{r.target} ({r.reason})" for r in report.failed]
    skipped = [f"{r.target} ({r.reason})" for r in report.skipped]
    if not built:
        left = "; ".join(failed + skipped) or "nothing was made"
        raise BenchError(f"bench-build: no target was built, nothing to measure: {left}",
                         "install what `invoke doctor --port P` names, or pick other ports")
    cpu_total = sum(r.cpu_seconds for r in built)

    console.step(f"then {ONE_AT_A_TIME.format(jobs=jobs)}, from clean")
    names = {r.target for r in built}
    sequential = 0.0
    for target in (t for t in targets if t.name in names):
        alone = pipeline.build([target], options)
        if alone.failed:  # a figure of a failed make would flatter the one-at-a-time side
            failed.append(f"{target.name} (alone: {alone.failed[0].reason})")
            continue
        sequential += alone.parallel_seconds
        console.info(f"{target.name}: {alone.parallel_seconds:.1f} s")
    # a target that failed alone stays in the matrix's figures (against the matrix) and
    # is named in ``failed``
    return BuildBench([r.target for r in built], jobs, round(report.parallel_seconds, 2), round(cpu_total, 2),
                      round(sequential, 2), failed, skipped)
